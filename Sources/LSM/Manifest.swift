// The manifest: the durable record of which segments make up the database (Format/manifest.md).
//
// Version edits are records of a record log in `<db>/manifest-<n>/`. The file `<db>/CURRENT`
// names the manifest in use and is replaced atomically. Opening replays the edits; then (and
// whenever a manifest holds more than `manifestEditsMax` edits) a fresh manifest is written
// whose first edit is a snapshot of the whole state, CURRENT is switched to it, and the old
// manifest is removed. A crash at any point leaves CURRENT naming a complete manifest.

import FileIO
import RecordLog
import StorageFormat
import Wire

/// The state the manifest describes: the fold of its edits.
struct ManifestState {
    var segments: [UInt64: SegmentDescriptor] = [:]
    var nextFileNumber: UInt64 = 1
    var lastSequence: UInt64 = 0
    var walReplayFrom: UInt64 = 0
    var appliedIndexes: [UInt64: UInt64] = [:]

    mutating func apply(_ edit: VersionEdit, levelCount: Int) throws(StorageError) {
        if edit.isSnapshot { self = ManifestState() }
        if let value = edit.nextFileNumber { nextFileNumber = max(nextFileNumber, value) }
        if let value = edit.lastSequence { lastSequence = max(lastSequence, value) }
        if let value = edit.walReplayFrom { walReplayFrom = max(walReplayFrom, value) }
        for (stream, index) in edit.appliedIndexes { appliedIndexes[stream] = max(index, appliedIndexes[stream] ?? 0) }
        for deleted in edit.deletedSegments {
            guard let existing = segments.removeValue(forKey: deleted.number), existing.level == deleted.level else {
                throw .inconsistent("manifest deletes segment \(deleted.number) at level \(deleted.level), which it does not hold")
            }
        }
        for added in edit.addedSegments {
            guard added.level < levelCount else {
                throw .inconsistent("manifest puts segment \(added.number) at level \(added.level); the engine has \(levelCount) levels")
            }
            guard segments.updateValue(added, forKey: added.number) == nil else {
                throw .inconsistent("manifest adds segment \(added.number) twice")
            }
            nextFileNumber = max(nextFileNumber, added.number + 1)
        }
    }

    var snapshot: VersionEdit {
        var edit = VersionEdit()
        edit.isSnapshot = true
        edit.nextFileNumber = nextFileNumber
        edit.lastSequence = lastSequence
        edit.walReplayFrom = walReplayFrom
        edit.appliedIndexes = appliedIndexes
        edit.addedSegments = segments.values.sorted { $0.number < $1.number }
        return edit
    }
}

final class Manifest {
    let directory: String
    let fileSystem: any FileSystem
    let editsMax: Int
    let levelCount: Int
    private(set) var name: String
    private var log: RecordLog
    private var editCount = 0
    private(set) var state: ManifestState
    /// Set after a failed write: which manifest CURRENT names is then unknown, so no further
    /// edit may be recorded until the database is reopened.
    private var failure: StorageError?

    static func directoryName(_ number: UInt64) -> String {
        let digits = String(number)
        return "manifest-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    static func number(fromDirectoryName name: String) -> UInt64? {
        guard name.hasPrefix("manifest-") else { return nil }
        return UInt64(name.dropFirst("manifest-".count))
    }

    static var logOptions: RecordLogOptions { RecordLogOptions() }

    private init(directory: String, fileSystem: any FileSystem, editsMax: Int, levelCount: Int,
                 name: String, log: RecordLog, editCount: Int, state: ManifestState) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.editsMax = editsMax
        self.levelCount = levelCount
        self.name = name
        self.log = log
        self.editCount = editCount
        self.state = state
    }

    /// Whether `directory` holds a database (a CURRENT file).
    static func exists(directory: String, fileSystem: any FileSystem) -> Bool {
        fileSystem.fileExists(joinPath(directory, ManifestFormat.currentFileName))
    }

    /// Reads CURRENT and replays the manifest it names (read-only: for tools and for open).
    static func read(directory: String, fileSystem: any FileSystem, levelCount: Int) throws(StorageError) -> (name: String, state: ManifestState, edits: Int) {
        let currentPath = joinPath(directory, ManifestFormat.currentFileName)
        let bytes: [UInt8]
        do throws(FileIOError) {
            let handle = try fileSystem.open(currentPath, options: .read)
            defer { handle.close() }
            bytes = try handle.readAll()
        } catch { throw .io(error) }
        let name: String
        do throws(DecodeError) { name = try ManifestFormat.decodeCurrent(bytes) } catch {
            throw .corruption(path: currentPath, error)
        }
        let path = joinPath(directory, name)
        guard fileSystem.isDirectory(path) else { throw .inconsistent("CURRENT names \(name), which does not exist") }
        // Read-only: the manifest is replaced after it is read (or only inspected, by tools).
        let records: [StoredRecord]
        do throws(LogError) { records = try RecordLog.readLive(directory: path, fileSystem: fileSystem, stream: ManifestFormat.stream) } catch {
            throw mapLogError(error, path: path)
        }
        var state = ManifestState()
        for (position, record) in records.enumerated() {
            guard record.kind == ManifestFormat.recordKind else {
                throw .corruption(path: path, DecodeError(field: "manifest record kind", offset: record.lsn, reason: .invalidValue(UInt64(record.kind))))
            }
            let edit: VersionEdit
            do throws(DecodeError) { edit = try ManifestFormat.decode(record.payload) } catch {
                throw .corruption(path: path + " (record LSN \(record.lsn))", error)
            }
            guard position > 0 || edit.isSnapshot else {
                throw .inconsistent("manifest \(name) does not start with a snapshot edit")
            }
            try state.apply(edit, levelCount: levelCount)
        }
        guard !records.isEmpty else { throw .inconsistent("manifest \(name) is empty") }
        return (name, state, records.count)
    }

    static func mapLogError(_ error: LogError, path: String) -> StorageError {
        switch error {
        case let .io(io): return .io(io)
        case let .locked(what): return .locked(what)
        default: return .log(error)
        }
    }

    /// Opens the manifest of an existing database (replaying it and writing a fresh one), or
    /// creates one for a new database.
    static func open(directory: String, fileSystem: any FileSystem, editsMax: Int, levelCount: Int) throws(StorageError) -> Manifest {
        var state = ManifestState()
        var previousNumber: UInt64 = 0
        if exists(directory: directory, fileSystem: fileSystem) {
            let read = try read(directory: directory, fileSystem: fileSystem, levelCount: levelCount)
            state = read.state
            previousNumber = number(fromDirectoryName: read.name) ?? 0
        } else {
            // No CURRENT: a new database only if nothing of an old one is there. Otherwise
            // creating a fresh manifest would orphan (and then delete) the old segments.
            let entries: [String]
            do throws(FileIOError) { entries = try fileSystem.list(directory) } catch { throw .io(error) }
            let leftovers = entries.filter {
                number(fromDirectoryName: $0) != nil || StorageEngine.segmentNumber(fromFileName: $0) != nil
                    || ($0 == StorageEngine.walDirectoryName && !((try? fileSystem.list(joinPath(directory, $0))) ?? []).filter { $0 != "LOCK" }.isEmpty)
            }
            guard leftovers.isEmpty else {
                throw .inconsistent("\(directory) has no CURRENT file but holds \(leftovers.prefix(3).joined(separator: ", ")): not opening it as a new database (see vectron-tool repair)")
            }
        }
        var highest = previousNumber
        do throws(FileIOError) {
            for entry in try fileSystem.list(directory) { highest = max(highest, number(fromDirectoryName: entry) ?? 0) }
        } catch { throw .io(error) }
        let (name, log) = try create(number: highest + 1, snapshot: state.snapshot, directory: directory, fileSystem: fileSystem)
        let manifest = Manifest(directory: directory, fileSystem: fileSystem, editsMax: editsMax, levelCount: levelCount,
                                name: name, log: log, editCount: 1, state: state)
        manifest.removeStaleManifests()
        return manifest
    }

    /// Writes a new manifest holding `snapshot` and switches CURRENT to it.
    private static func create(number: UInt64, snapshot: VersionEdit, directory: String, fileSystem: any FileSystem) throws(StorageError) -> (String, RecordLog) {
        let name = directoryName(number)
        let path = joinPath(directory, name)
        let log: RecordLog
        do throws(LogError) {
            (log, _) = try RecordLog.open(directory: path, fileSystem: fileSystem, options: logOptions)
            try log.append(LogRecord(stream: ManifestFormat.stream, kind: ManifestFormat.recordKind, payload: ManifestFormat.encode(snapshot)))
        } catch { throw mapLogError(error, path: path) }
        do throws(FileIOError) {
            try fileSystem.syncDirectory(directory)
            try fileSystem.writeAtomically(joinPath(directory, ManifestFormat.currentFileName), ManifestFormat.encodeCurrent(manifestName: name))
        } catch {
            log.close()
            throw .io(error)
        }
        return (name, log)
    }

    /// Writes a fresh manifest describing `state`, switches CURRENT to it and removes the others
    /// (repair). Returns its name.
    static func create(directory: String, fileSystem: any FileSystem, state: ManifestState) throws(StorageError) -> String {
        var highest: UInt64 = 0
        do throws(FileIOError) {
            for entry in try fileSystem.list(directory) { highest = max(highest, number(fromDirectoryName: entry) ?? 0) }
        } catch { throw .io(error) }
        let (name, log) = try create(number: highest + 1, snapshot: state.snapshot, directory: directory, fileSystem: fileSystem)
        let manifest = Manifest(directory: directory, fileSystem: fileSystem, editsMax: 1, levelCount: ManifestFormat.levelCountMax,
                                name: name, log: log, editCount: 1, state: state)
        manifest.removeStaleManifests()
        manifest.close()
        return name
    }

    /// Removes manifest directories other than the current one (best effort: a leftover is
    /// removed by the next open).
    func removeStaleManifests() {
        guard let entries = try? fileSystem.list(directory) else { return }
        for entry in entries where entry != name && Self.number(fromDirectoryName: entry) != nil {
            let path = joinPath(directory, entry)
            for file in (try? fileSystem.list(path)) ?? [] { try? fileSystem.remove(joinPath(path, file)) }
            try? fileSystem.remove(path)
        }
        try? fileSystem.syncDirectory(directory)
    }

    /// Durably records an edit (and rewrites the manifest when it has grown too long).
    func record(_ edit: VersionEdit) throws(StorageError) {
        if let failure { throw .failed("an earlier manifest write failed: \(failure)") }
        var next = state
        try next.apply(edit, levelCount: levelCount)
        do throws(StorageError) {
            do throws(LogError) {
                try log.append(LogRecord(stream: ManifestFormat.stream, kind: ManifestFormat.recordKind, payload: ManifestFormat.encode(edit)))
            } catch { throw Self.mapLogError(error, path: joinPath(directory, name)) }
            state = next
            editCount += 1
            if editCount > editsMax {
                let number = (Self.number(fromDirectoryName: name) ?? 0) + 1
                let (newName, newLog) = try Self.create(number: number, snapshot: state.snapshot, directory: directory, fileSystem: fileSystem)
                log.close()
                log = newLog
                name = newName
                editCount = 1
                removeStaleManifests()
            }
        } catch {
            failure = error
            throw error
        }
    }

    func close() { log.close() }
}
