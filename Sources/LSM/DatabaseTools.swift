// Offline checks and repair of a whole database directory, for `vectron-tool` (the engine must
// not have the database open; repair takes its lock).
//
// `check` reads CURRENT and the manifest without changing anything and compares them with the
// files: every named segment exists, has the recorded size and whole-file checksum, opens,
// holds the recorded entry count and key range, and reads back block by block (every checksum,
// the key order, each key found through the index and the Bloom filter); levels ≥ 1 are
// disjoint; segment files no manifest names are reported.
//
// `repair` makes a damaged database openable again, losing only what is unreadable: corrupt
// segments go to `quarantine/` (never deleted), and when anything was wrong the surviving
// segments are merged into fresh level-1 segments under a new manifest. The merge resolves
// versions by their sequence numbers, so it is correct whatever levels the survivors came from.

import Checksum
import FileIO
import RecordLog
import StorageFormat
import Wire

public struct DatabaseCheck: Sendable {
    public struct Segment: Sendable {
        public var path: String
        public var descriptor: SegmentDescriptor?
        public var problems: [String]
    }

    public var manifestName: String?
    public var lastSequence: UInt64 = 0
    public var segments: [Segment] = []
    /// Problems with CURRENT, the manifest or the level structure.
    public var problems: [String] = []
    /// Segment files no manifest names (left by an interrupted flush or compaction).
    public var orphans: [String] = []

    public var isIntact: Bool { problems.isEmpty && segments.allSatisfy { $0.problems.isEmpty } }
}

public struct DatabaseRepairReport: Sendable {
    public var actions: [String] = []
    /// Segments moved to quarantine, with what they held.
    public var lost: [String] = []
    public var changed: Bool { !actions.isEmpty }
}

public enum DatabaseTools {
    public static let quarantineDirectory = "quarantine"

    /// Whether `directory` looks like a storage-engine database.
    public static func isDatabase(_ directory: String, fileSystem: any FileSystem) -> Bool {
        Manifest.exists(directory: directory, fileSystem: fileSystem)
    }

    public static func check(directory: String, fileSystem: any FileSystem) -> DatabaseCheck {
        var result = DatabaseCheck()
        var named: [UInt64: SegmentDescriptor] = [:]
        do throws(StorageError) {
            let read = try Manifest.read(directory: directory, fileSystem: fileSystem, levelCount: ManifestFormat.levelCountMax)
            result.manifestName = read.name
            result.lastSequence = read.state.lastSequence
            named = read.state.segments
        } catch {
            result.problems.append("manifest: \(error)")
        }
        for descriptor in named.values.sorted(by: { $0.number < $1.number }) {
            let path = joinPath(directory, StorageEngine.segmentFileName(descriptor.number))
            result.segments.append(DatabaseCheck.Segment(path: path, descriptor: descriptor,
                                                         problems: checkSegment(path: path, descriptor: descriptor, fileSystem: fileSystem)))
        }
        // Level structure: levels ≥ 1 hold disjoint user-key ranges.
        var byLevel: [Int: [SegmentDescriptor]] = [:]
        for descriptor in named.values { byLevel[descriptor.level, default: []].append(descriptor) }
        for (level, descriptors) in byLevel where level > 0 {
            let sorted = descriptors.sorted { compareInternalKeys($0.smallestKey, $1.smallestKey) < 0 }
            for index in sorted.indices.dropFirst()
            where compareBytes(userPart(sorted[index - 1].largestKey), userPart(sorted[index].smallestKey)) >= 0 {
                result.problems.append("level \(level): segments \(sorted[index - 1].number) and \(sorted[index].number) overlap")
            }
        }
        if let names = try? fileSystem.list(directory) {
            for name in names {
                if let number = StorageEngine.segmentNumber(fromFileName: name), named[number] == nil {
                    result.orphans.append(joinPath(directory, name))
                }
            }
        }
        return result
    }

    /// XXH3-64 of a whole file.
    static func fileChecksum(_ handle: any FileHandle, size: UInt64) throws(FileIOError) -> UInt64 {
        let hasher = XXH3Stream()
        var offset: UInt64 = 0
        while offset < size {
            let chunk = try handle.read(at: offset, count: Int(min(1 << 20, size - offset)))
            if chunk.isEmpty { break }
            hasher.update(chunk)
            offset += UInt64(chunk.count)
        }
        return hasher.digest
    }

    /// Every check of one segment against its descriptor (nil: no manifest entry to compare).
    public static func checkSegment(path: String, descriptor: SegmentDescriptor?, fileSystem: any FileSystem) -> [String] {
        var problems: [String] = []
        guard fileSystem.fileExists(path) else { return ["missing"] }
        let handle: any FileHandle
        do throws(FileIOError) { handle = try fileSystem.open(path, options: .read) } catch { return ["cannot open: \(error)"] }
        defer { handle.close() }
        do throws(FileIOError) {
            let size = try handle.size()
            if let descriptor {
                if size != descriptor.fileBytes { problems.append("size \(size) bytes, the manifest says \(descriptor.fileBytes)") }
                let checksum = try fileChecksum(handle, size: size)
                if checksum != descriptor.checksum {
                    problems.append("file checksum \(hex(checksum)), the manifest says \(hex(descriptor.checksum))")
                }
            }
        } catch { return ["cannot read: \(error)"] }
        let reader: SegmentReader
        do throws(SegmentError) { reader = try SegmentReader(handle: handle) } catch {
            problems.append(error.description)
            return problems
        }
        if let descriptor {
            if reader.properties.entryCount != descriptor.entryCount {
                problems.append("\(reader.properties.entryCount) entries, the manifest says \(descriptor.entryCount)")
            }
            if reader.properties.smallestKey != descriptor.smallestKey || reader.properties.largestKey != descriptor.largestKey {
                problems.append("key range differs from the manifest")
            }
        }
        // Read back every block in order; find every key through the index and the filter.
        let cursor = SegmentCursor(reader)
        var count: UInt64 = 0
        do throws(SegmentError) {
            try cursor.seekToFirst()
            while cursor.isValid {
                let key = cursor.key
                count += 1
                if reader.footer.keyOrder == .internalKey, let descriptor {
                    let sequence = InternalKey.trailer(key).sequence
                    if sequence < descriptor.smallestSequence || sequence > descriptor.largestSequence {
                        problems.append("entry sequence \(sequence) outside the recorded \(descriptor.smallestSequence)...\(descriptor.largestSequence)")
                        break
                    }
                }
                if try reader.get(key) == nil {
                    problems.append("a key in block \(count) is not found by lookup (index or filter inconsistent)")
                    break
                }
                try cursor.next()
            }
        } catch {
            problems.append(error.description)
            return problems
        }
        if count != reader.properties.entryCount {
            problems.append("blocks hold \(count) entries, the properties say \(reader.properties.entryCount)")
        }
        return problems
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// Repairs a database directory (see the file comment). Unflushed writes in the WAL stay
    /// there and are replayed by the next open.
    public static func repair(directory: String, fileSystem: any FileSystem,
                              options: StorageOptions = StorageOptions()) throws(StorageError) -> DatabaseRepairReport {
        var report = DatabaseRepairReport()
        let lock: any FileLock
        do throws(FileIOError) { lock = try fileSystem.lock(joinPath(directory, StorageEngine.lockFileName)) } catch {
            if error.kind == .locked { throw .locked(directory) }
            throw .io(error)
        }
        defer { lock.unlock() }
        let check = check(directory: directory, fileSystem: fileSystem)
        if check.isIntact {
            for orphan in check.orphans {
                try? fileSystem.remove(orphan)
                report.actions.append("removed \(fileName(of: orphan)), which no manifest names")
            }
            return report
        }
        // Candidates: the segments the manifest names, or every segment file when it cannot be
        // read. Corrupt ones go to quarantine.
        let manifestReadable = check.manifestName != nil
        var candidates: [(path: String, descriptor: SegmentDescriptor?)] = check.segments.map { ($0.path, $0.descriptor) }
        if !manifestReadable {
            candidates = check.orphans.map { ($0, nil) }
        } else {
            for orphan in check.orphans {
                try? fileSystem.remove(orphan)
                report.actions.append("removed \(fileName(of: orphan)), which no manifest names")
            }
        }
        var survivors: [SegmentFile] = []
        // The survivors' newest sequence, not the manifest's: WAL batches newer than every
        // survivor are replayed by the next open, which recovers what a quarantined segment held
        // if the WAL still has it.
        var lastSequence: UInt64 = 0
        var nextNumber: UInt64 = 1
        let quarantine = joinPath(directory, quarantineDirectory)
        for candidate in candidates {
            let number = StorageEngine.segmentNumber(fromFileName: fileName(of: candidate.path)) ?? 0
            nextNumber = max(nextNumber, number + 1)
            let problems = checkSegment(path: candidate.path, descriptor: candidate.descriptor, fileSystem: fileSystem)
            if problems == ["missing"] {
                report.lost.append("segment \(fileName(of: candidate.path)) is missing" + describe(candidate.descriptor))
                continue
            }
            guard problems.isEmpty else {
                do throws(FileIOError) {
                    try fileSystem.createDirectory(quarantine)
                    try fileSystem.rename(candidate.path, to: joinPath(quarantine, fileName(of: candidate.path)))
                    try fileSystem.syncDirectory(quarantine)
                    try fileSystem.syncDirectory(directory)
                } catch { throw .io(error) }
                report.actions.append("moved \(fileName(of: candidate.path)) to \(quarantineDirectory)/: \(problems.joined(separator: "; "))")
                report.lost.append("segment \(fileName(of: candidate.path))" + describe(candidate.descriptor))
                continue
            }
            let handle: any FileHandle
            do throws(FileIOError) { handle = try fileSystem.open(candidate.path, options: .read) } catch { throw .io(error) }
            let reader: SegmentReader
            do throws(SegmentError) { reader = try SegmentReader(handle: handle) } catch {
                handle.close()
                throw StorageError(error)
            }
            guard reader.footer.keyOrder == .internalKey else {
                reader.close()
                report.actions.append("skipped \(fileName(of: candidate.path)): not an engine segment (bytewise key order)")
                continue
            }
            lastSequence = max(lastSequence, reader.properties.largestSequence)
            let descriptor = candidate.descriptor ?? SegmentDescriptor(
                level: 0, number: number, fileBytes: reader.size, checksum: 0, entryCount: reader.properties.entryCount,
                smallestSequence: reader.properties.smallestSequence, largestSequence: reader.properties.largestSequence,
                smallestKey: reader.properties.smallestKey, largestKey: reader.properties.largestKey)
            survivors.append(SegmentFile(descriptor: descriptor, reader: reader, path: candidate.path, fileSystem: fileSystem, cache: nil))
        }
        // Merge the survivors into level 1 (no snapshots exist offline: keep the newest version
        // of each key, drop deletions — everything older is in the merge too).
        let writerOptions = options.segmentWriterOptions
        var outputs: [SegmentDescriptor] = []
        let merged = MergingIterator(survivors.map { SegmentIterator($0) })
        try merged.seekToFirst()
        var builder: SegmentBuilder?
        var previous: [UInt8]?
        while merged.isValid {
            let key = merged.key
            defer { previous = key }
            if let previous, sameUserKey(previous, key) {
                try merged.next()
                continue
            }
            if InternalKey.trailer(key).kindByte == ValueKind.deletion.rawValue {
                try merged.next()
                continue
            }
            if let current = builder, current.estimatedBytes >= UInt64(options.segmentBytesTarget) {
                outputs.append(try current.finish().0)
                builder = nil
            }
            if builder == nil {
                builder = try SegmentBuilder(directory: directory, fileSystem: fileSystem, options: writerOptions, number: nextNumber, level: 1)
                nextNumber += 1
            }
            try builder!.add(key, merged.value)
            try merged.next()
        }
        if let current = builder { outputs.append(try current.finish().0) }
        var state = ManifestState()
        state.lastSequence = lastSequence
        state.nextFileNumber = nextNumber
        for output in outputs { state.segments[output.number] = output }
        let manifest = try Manifest.create(directory: directory, fileSystem: fileSystem, state: state)
        report.actions.append("merged \(survivors.count) surviving segments into \(outputs.count) at level 1 under the new manifest \(manifest)")
        for survivor in survivors {
            survivor.obsolete.store(true, ordering: .releasing)
        }
        survivors.removeAll()  // their files are deleted as the last references go
        return report
    }

    static func describe(_ descriptor: SegmentDescriptor?) -> String {
        guard let descriptor else { return "" }
        return ": level \(descriptor.level), \(descriptor.entryCount) entries, sequences \(descriptor.smallestSequence)...\(descriptor.largestSequence)"
    }
}
