// A shard: the state machine of one shard group. Its committed commands are applied to two
// sides — the node's storage engine (each point's vector and payload under the shard's key
// prefix, Format/shard.md §3) and the shard's `VectorState` (HNSW index and key map) — and the
// reads (retrieve, search, scroll, count) are answered from them.
//
// Durability comes from the Raft log, not from either side: the storage engine runs without a
// write-ahead log of its own (`WALMode.external`) and records with each batch the log index it
// reflects; the vector side is checkpointed now and then. After a crash each side replays the
// log from its own index (`replayFrom` is the lower one), so nothing is rebuilt from scratch,
// and the log may be compacted only through `compactableIndex`: what both sides hold durably,
// counting the vector side at its second-newest checkpoint so that a damaged newest checkpoint
// can be replaced by the one before it.

import Basics
import FileIO
import JSON
import LSM
import Payload
import VectorIndex
import Wire

public enum ShardError: Error, Equatable, CustomStringConvertible {
    case io(FileIOError)
    case storage(StorageError)
    case index(VectorIndexError)
    case checkpoint(String)
    case corrupt(path: String, String)
    /// A committed entry did not decode: the log is damaged or was written by a newer version.
    case badEntry(index: UInt64, String)
    /// The log no longer holds the entries this shard needs to catch up.
    case gap(needed: UInt64, first: UInt64)
    case invalidArgument(String)
    /// A snapshot that does not fit this shard (another group, an older index, another shape).
    case snapshot(String)
    /// An install of a snapshot stopped half way (a crash): the shard's storage was cleared and it
    /// applies nothing until a snapshot is installed.
    case needsSnapshot

    public var description: String {
        switch self {
        case let .io(error): "shard I/O error: \(error)"
        case let .storage(error): "shard storage: \(error)"
        case let .index(error): "shard index: \(error)"
        case let .checkpoint(text): "shard checkpoint: \(text)"
        case let .corrupt(path, text): "shard file \(path) is damaged: \(text)"
        case let .badEntry(index, text): "the shard's log entry \(index) does not decode: \(text)"
        case let .gap(needed, first): "the shard needs log entry \(needed), but the log starts at \(first)"
        case let .invalidArgument(text): "invalid argument: \(text)"
        case let .snapshot(text): "shard snapshot: \(text)"
        case .needsSnapshot: "the shard's snapshot install did not finish: it needs a snapshot before it applies its log"
        }
    }
}

/// A point as a read returns it.
public struct ShardPoint: Sendable, Equatable {
    public var key: [UInt8]
    public var record: PointRecord
}

public struct ShardHit: Sendable, Equatable {
    public var key: [UInt8]
    public var score: Float
    public var record: PointRecord
}

/// Decides whether a point passes a query's filter, from its key and payload text.
public typealias PointPredicate = @Sendable (_ key: [UInt8], _ payload: [UInt8]) -> Bool

public final class Shard: @unchecked Sendable {
    public let group: UInt64
    public let directory: String
    public let configuration: HNSWConfiguration
    let engine: StorageEngine
    let fileSystem: any FileSystem
    let prefix: [UInt8]
    let upper: [UInt8]
    public private(set) var vectors: VectorState
    /// The largest payload a point keeps (a payload change that would pass it is skipped).
    public static let payloadBytesMax = 4 << 20
    /// Threads the vector side may use for one command's inserts.
    public var insertThreads = 1

    /// Serialises applies and checkpoints.
    private let applyLock = ConditionLock()
    private var storageApplied: UInt64
    private var applied: UInt64
    /// Applied indexes of the checkpoints kept on disk, newest first (at most two).
    private var checkpointIndexes: [UInt64]

    /// Opens the shard of `group`: the storage side as the engine holds it, the vector side from
    /// the newest checkpoint in `directory` that loads (an older one if the newest is damaged),
    /// or empty. The caller then replays the log after `replayFrom`.
    public init(group: UInt64, directory: String, engine: StorageEngine, fileSystem: any FileSystem,
                configuration: HNSWConfiguration) throws(ShardError) {
        self.group = group
        self.directory = directory
        self.configuration = configuration
        self.engine = engine
        self.fileSystem = fileSystem
        (prefix, upper) = Self.keyRange(group: group)
        try Self.ensureDirectory(directory, fileSystem: fileSystem)
        // A snapshot install that a crash interrupted (§6.4) is finished or undone first.
        var needsSnapshot = false
        let markerPath = joinPath(directory, ShardSnapshot.markerName)
        if fileSystem.fileExists(markerPath) {
            let target: UInt64?
            do throws(FileIOError) {
                let handle = try fileSystem.open(markerPath, options: .read)
                defer { handle.close() }
                target = ShardSnapshot.decodeMarker(try handle.readAll())
            } catch {
                throw .io(error)
            }
            if let target, target > 0, (engine.durableAppliedIndexes[group] ?? 0) >= target {
                // The storage side is complete (its applied index goes with its last batch):
                // move the checkpoint in if it is still staged.
                try Self.finishInstall(applied: target, directory: directory, fileSystem: fileSystem)
            } else {
                try Self.abandonInstall(group: group, directory: directory, engine: engine, fileSystem: fileSystem)
                needsSnapshot = true
            }
        } else {
            // Files staged by an install that stopped before its marker: nothing refers to them.
            do throws(FileIOError) {
                for name in try fileSystem.list(directory) where name.hasPrefix("snapshot-") {
                    try fileSystem.remove(joinPath(directory, name))
                }
            } catch {
                throw .io(error)
            }
        }
        self.needsSnapshot = needsSnapshot
        var found = try VectorState.checkpoints(in: directory, fileSystem: fileSystem)
        var loaded: VectorState?
        var failures: [String] = []
        while loaded == nil, let newest = found.first {
            do throws(ShardError) {
                loaded = try VectorState.loadCheckpoint(directory: directory, applied: newest, fileSystem: fileSystem)
            } catch {
                failures.append("\(error)")
                Self.setAside(checkpoint: found.removeFirst(), directory: directory, fileSystem: fileSystem)
            }
        }
        if let loaded {
            vectors = loaded
        } else {
            do throws(VectorIndexError) { vectors = try VectorState(configuration: configuration) } catch { throw .index(error) }
        }
        checkpointIndexes = found
        // A shard that needs a snapshot holds nothing: it stands at index 0 whatever the
        // engine's (max-merged) applied index of the group still says.
        storageApplied = needsSnapshot ? 0 : engine.durableAppliedIndexes[group] ?? 0
        applied = max(storageApplied, vectors.appliedIndex)
        publishedApplied = min(storageApplied, vectors.appliedIndex)
        self.loadFailures = failures
        if loaded == nil && storageApplied > 0 {
            // No checkpoint loads (every one damaged, or the directory lost) but the storage side
            // holds the points as of `storageApplied`: rebuild the index from them, so replay
            // needs only the log after that — what compaction kept — not the whole log.
            try rebuildVectors()
        }
    }

    /// An interrupted snapshot install left the shard empty: it applies nothing until
    /// `installSnapshot` runs again.
    public let needsSnapshot: Bool

    /// Creates `directory` if it is missing, durably (its entry survives a power loss before
    /// files go into it).
    static func ensureDirectory(_ directory: String, fileSystem: any FileSystem) throws(ShardError) {
        do throws(FileIOError) {
            if !fileSystem.isDirectory(directory) {
                try fileSystem.createDirectory(directory)
                var parent = directory
                for _ in 0..<2 {
                    guard let slash = parent.lastIndex(of: "/"), slash != parent.startIndex else { break }
                    parent = String(parent[..<slash])
                    try fileSystem.syncDirectory(parent)
                }
            }
        } catch {
            throw .io(error)
        }
    }

    /// Points the vector side was rebuilt from at open (0: it loaded a checkpoint or started empty).
    public private(set) var rebuiltPoints = 0

    private func rebuildVectors() throws(ShardError) {
        let iterator: StorageIterator
        do throws(StorageError) { iterator = try engine.makeIterator(lower: prefix, upper: upper) } catch { throw .storage(error) }
        var batch: [ShardCommand.Point] = []
        func insert() throws(ShardError) {
            guard !batch.isEmpty else { return }
            do throws(VectorIndexError) {
                try vectors.apply(.upsert(batch), at: storageApplied, threads: Self.rebuildThreads)
            } catch {
                throw .index(error)
            }
            rebuiltPoints += batch.count
            batch.removeAll(keepingCapacity: true)
        }
        while let (key, record) = try nextPoint(iterator) {
            batch.append(ShardCommand.Point(key: key, vector: record.vector, payload: []))
            if batch.count == 1024 { try insert() }
        }
        try insert()
        vectors.skip(to: storageApplied)
        applied = storageApplied
        publishedApplied = storageApplied
    }

    static let rebuildThreads = 2

    /// Renames a checkpoint that failed to load to `….damaged` (kept for a post-mortem, no
    /// longer listed, loaded or counted as one of the two kept).
    static func setAside(checkpoint applied: UInt64, directory: String, fileSystem: any FileSystem) {
        for name in [VectorState.indexFileName(applied), VectorState.keysFileName(applied)] {
            let path = joinPath(directory, name)
            guard fileSystem.fileExists(path) else { continue }
            try? fileSystem.rename(path, to: path + ".damaged")
        }
        try? fileSystem.syncDirectory(directory)
    }

    /// Checkpoints that failed to load at open (each was passed over for an older one).
    public let loadFailures: [String]

    static func prefix(group: UInt64) -> [UInt8] {
        var key = [UInt8](repeating: 0, count: 9)
        for shift in 0..<8 { key[shift] = UInt8(truncatingIfNeeded: group >> (56 - 8 * UInt64(shift))) }
        key[8] = 0x70  // "p": points
        return key
    }

    func storageKey(_ key: [UInt8]) -> [UInt8] { prefix + key }

    // MARK: Indexes

    /// The index after which the log must be replayed into this shard.
    public var replayFrom: UInt64 { applyLock.withLock { min(storageApplied, vectors.appliedIndex) } }
    /// The last index applied to both sides.
    public var appliedIndex: UInt64 { applyLock.withLock { applied } }
    /// The log may be compacted through this index: both sides hold it durably, the vector side
    /// in a checkpoint it can fall back to if the newest one is damaged. With a single
    /// checkpoint there is none to fall back to, so nothing is compactable on its account.
    public var compactableIndex: UInt64 {
        let durable = engine.durableAppliedIndexes[group] ?? 0
        return applyLock.withLock {
            let fallback = checkpointIndexes.count >= 2 ? checkpointIndexes.last! : 0
            return min(durable, fallback)
        }
    }

    /// Fails unless the log, starting at `firstIndex`, still holds every entry to replay.
    public func ensureCovered(firstIndex: UInt64) throws(ShardError) {
        let needed = replayFrom + 1
        if firstIndex > needed { throw .gap(needed: needed, first: firstIndex) }
    }

    // MARK: Applying

    /// Applies committed entries in order (`data` empty for entries without a command, such as
    /// a new leader's first). Entries a side already reflects are skipped by that side.
    public func apply(_ entries: [(index: UInt64, data: [UInt8])]) throws(ShardError) {
        guard let last = entries.last else { return }
        try applyLock.withLock { () throws(ShardError) in
            if needsSnapshot { throw .needsSnapshot }
            var commands: [(UInt64, ShardCommand?)] = []
            commands.reserveCapacity(entries.count)
            for entry in entries where entry.index > min(storageApplied, vectors.appliedIndex) {
                if entry.data.isEmpty {
                    commands.append((entry.index, nil))
                    continue
                }
                do throws(DecodeError) { commands.append((entry.index, try ShardCommand.decode(entry.data))) } catch {
                    throw .badEntry(index: entry.index, "\(error)")
                }
            }
            // Storage side: one batch for all of them.
            if last.index > storageApplied {
                var batch = WriteBatch()
                var overlay: [[UInt8]: PointRecord?] = [:]
                for (index, command) in commands where index > storageApplied {
                    if let command { try applyToStorage(command, batch: &batch, overlay: &overlay) }
                }
                batch.setAppliedIndex(stream: group, index: last.index)
                do throws(StorageError) { try engine.write(batch) } catch { throw .storage(error) }
                storageApplied = last.index
            }
            // Vector side.
            for (index, command) in commands where index > vectors.appliedIndex {
                if let command {
                    do throws(VectorIndexError) { try vectors.apply(command, at: index, threads: insertThreads) } catch {
                        // A command the leader accepted always fits the collection; a failure
                        // here is a bug or a damaged entry.
                        throw .badEntry(index: index, "\(error)")
                    }
                } else {
                    vectors.skip(to: index)
                }
            }
            vectors.skip(to: last.index)
            applied = max(applied, last.index)
        }
        publish(appliedIndex)
    }

    private func currentRecord(_ key: [UInt8], overlay: [[UInt8]: PointRecord?]) throws(ShardError) -> PointRecord? {
        if let pending = overlay[key] { return pending }
        let bytes: [UInt8]?
        do throws(StorageError) { bytes = try engine.get(storageKey(key)) } catch { throw .storage(error) }
        guard let bytes else { return nil }
        do throws(DecodeError) { return try PointRecord.decode(bytes) } catch {
            throw .corrupt(path: engine.directory, "the point record under group \(group) does not decode: \(error)")
        }
    }

    private func applyToStorage(_ command: ShardCommand, batch: inout WriteBatch, overlay: inout [[UInt8]: PointRecord?]) throws(ShardError) {
        func store(_ key: [UInt8], _ record: PointRecord?) {
            overlay[key] = .some(record)
            if let record { batch.put(storageKey(key), record.encode()) } else { batch.delete(storageKey(key)) }
        }
        func parseObject(_ bytes: [UInt8]) throws(ShardError) -> JSONObject {
            let value: JSONValue
            do throws(JSONError) { value = try JSONParser.parse(bytes) } catch {
                throw .invalidArgument("a payload does not parse: \(error)")
            }
            guard case .object(let object) = value else { throw .invalidArgument("a payload is not a JSON object") }
            return object
        }
        func updatePayloads(_ keys: [[UInt8]], _ change: (inout JSONObject) throws(ShardError) -> Void) throws(ShardError) {
            for key in keys {
                guard var record = try currentRecord(key, overlay: overlay) else { continue }
                // A stored payload parses (this shard wrote it) unless it is deeper than the
                // parser's default; a change that would make it too large or too deep is
                // skipped — alike on every replica, so the shard never stops on user input.
                guard var object = try? parseObject(record.payload) else { continue }
                try change(&object)
                let payload = JSONValue.object(object).serialized()
                guard payload.count <= Self.payloadBytesMax, (try? JSONParser.parse(payload)) != nil else { continue }
                record.payload = payload
                store(key, record)
            }
        }
        switch command {
        case .upsert(let points):
            for point in points {
                store(point.key, PointRecord(vector: normalised(point.vector), payload: point.payload))
            }
        case .delete(let keys):
            for key in keys where try currentRecord(key, overlay: overlay) != nil { store(key, nil) }
        case .setPayload(let keys, let payload, let path):
            // The gateway checked the payload; one that does not parse changes nothing.
            guard let new = try? parseObject(payload) else { break }
            try updatePayloads(keys) { (object: inout JSONObject) throws(ShardError) in
                // The gateway checked the path; one that does not parse changes nothing, alike on
                // every replica.
                if let path { try? PayloadUpdate.set(new, into: &object, key: path) } else { PayloadUpdate.set(new, into: &object) }
            }
        case .overwritePayload(let keys, let payload):
            guard let new = try? parseObject(payload) else { break }
            try updatePayloads(keys) { (object: inout JSONObject) throws(ShardError) in object = new }
        case .deletePayloadKeys(let keys, let paths):
            try updatePayloads(keys) { (object: inout JSONObject) throws(ShardError) in
                try? PayloadUpdate.deleteKeys(paths, from: &object)
            }
        case .clearPayload(let keys):
            try updatePayloads(keys) { (object: inout JSONObject) throws(ShardError) in object = JSONObject() }
        }
    }

    /// What the index stores for a vector (unit length for cosine), so that a retrieve returns
    /// what a search scores.
    func normalised(_ vector: [Float]) -> [Float] {
        guard configuration.metric == .cosine else { return vector }
        var norm: Float = 0
        for value in vector { norm += value * value }
        norm = norm.squareRoot()
        guard norm > 0, norm.isFinite else { return vector }
        return vector.map { $0 / norm }
    }

    /// Runs `body` once `index` is applied to both sides: at once if it is, else on the thread
    /// that applies it
    /// (`true`), or with `false` once the shard has stopped applying (`fail`). Waiters have a
    /// lock of their own: the Raft driver calls this and must never wait for an apply.
    public func whenApplied(_ index: UInt64, _ body: @escaping @Sendable (Bool) -> Void) {
        let now: Bool? = waiterLock.withLock {
            if publishedApplied >= index { return true }
            if stopped { return false }
            appliedWaiters.append((index, body))
            return nil
        }
        if let now { body(now) }
    }

    private let waiterLock = ConditionLock()
    private var publishedApplied: UInt64 = 0
    private var stopped = false
    private var appliedWaiters: [(UInt64, @Sendable (Bool) -> Void)] = []

    private func publish(_ index: UInt64) {
        let ready: [@Sendable (Bool) -> Void] = waiterLock.withLock {
            publishedApplied = max(publishedApplied, index)
            guard !appliedWaiters.isEmpty else { return [] }
            var ready: [@Sendable (Bool) -> Void] = []
            appliedWaiters.removeAll { waiter in
                guard waiter.0 <= publishedApplied else { return false }
                ready.append(waiter.1)
                return true
            }
            return ready
        }
        for waiter in ready { waiter(true) }
    }

    /// The shard stopped applying its log (an I/O failure): every waiter, now and later, is told.
    public func fail() {
        let waiting: [@Sendable (Bool) -> Void] = waiterLock.withLock {
            stopped = true
            defer { appliedWaiters = [] }
            return appliedWaiters.map(\.1)
        }
        for waiter in waiting { waiter(false) }
    }

    // MARK: Checkpoints

    /// Makes both sides durable at the current applied index: flushes the storage engine and
    /// writes a vector checkpoint, keeping the one before it and deleting older ones.
    public func checkpoint() throws(ShardError) {
        try applyLock.withLock { () throws(ShardError) in try checkpointLocked() }
    }

    private func checkpointLocked() throws(ShardError) {
        if needsSnapshot { throw .needsSnapshot }
        do throws(StorageError) { try engine.flush() } catch { throw .storage(error) }
        let index = vectors.appliedIndex
        if checkpointIndexes.first == index { return }
        try vectors.saveCheckpoint(directory: directory, fileSystem: fileSystem)
        checkpointIndexes.insert(index, at: 0)
        while checkpointIndexes.count > 2 {
            let old = checkpointIndexes.removeLast()
            do throws(FileIOError) {
                try fileSystem.remove(joinPath(directory, VectorState.indexFileName(old)))
                try fileSystem.remove(joinPath(directory, VectorState.keysFileName(old)))
            } catch {
                throw .io(error)
            }
        }
    }

    // MARK: Snapshots (Format/shard.md §6)

    /// Writes a snapshot of the shard at its applied index to `path` (atomically and durably)
    /// and says what it holds. Both sides must stand at the same index (after an open, once the
    /// log is replayed). Applies wait only while the view is pinned — a checkpoint at the
    /// applied index (written unless there is one) and a storage-engine snapshot — not while
    /// the file is written.
    @discardableResult
    public func exportSnapshot(to path: String) throws(ShardError) -> ShardSnapshotInfo {
        let pinned: (applied: UInt64, storage: LSM.Snapshot, index: any FileHandle, keys: any FileHandle) =
            try applyLock.withLock { () throws(ShardError) in
                guard storageApplied == vectors.appliedIndex else {
                    throw .snapshot("the storage side stands at index \(storageApplied), the vector side at \(vectors.appliedIndex): replay the log first")
                }
                try checkpointLocked()
                let applied = vectors.appliedIndex
                do throws(FileIOError) {
                    // Open handles keep the files readable even if later checkpoints delete them.
                    let index = try fileSystem.open(joinPath(directory, VectorState.indexFileName(applied)), options: .read)
                    let keys: any FileHandle
                    do throws(FileIOError) {
                        keys = try fileSystem.open(joinPath(directory, VectorState.keysFileName(applied)), options: .read)
                    } catch {
                        index.close()
                        throw error
                    }
                    return (applied, engine.snapshot(), index, keys)
                } catch {
                    throw .io(error)
                }
            }
        defer {
            pinned.storage.release()
            pinned.index.close()
            pinned.keys.close()
        }
        let temporary = path + ".tmp"
        let handle: any FileHandle
        do throws(FileIOError) { handle = try fileSystem.open(temporary, options: [.read, .write, .create, .truncate]) } catch { throw .io(error) }
        var closed = false, renamed = false
        defer {
            if !closed { handle.close() }
            if !renamed { try? fileSystem.remove(temporary) }
        }
        let writer: ShardSnapshot.Writer
        do throws(FileIOError) { writer = try ShardSnapshot.Writer(handle: handle, group: group, applied: pinned.applied) } catch { throw .io(error) }
        let iterator: StorageIterator
        do throws(StorageError) { iterator = try engine.makeIterator(lower: prefix, upper: upper, snapshot: pinned.storage) } catch { throw .storage(error) }
        while true {
            let entry: (key: [UInt8], value: [UInt8])?
            do throws(StorageError) { entry = try iterator.next() } catch { throw .storage(error) }
            guard let entry else { break }
            // Damage the engine's checksums missed is not passed on.
            do throws(DecodeError) { _ = try PointRecord.decode(entry.value) } catch {
                throw .corrupt(path: engine.directory, "the point record under group \(group) does not decode: \(error)")
            }
            let added: Bool
            do throws(FileIOError) { added = try writer.addPoint(key: Array(entry.key[prefix.count...]), record: entry.value) } catch { throw .io(error) }
            guard added else { throw .corrupt(path: engine.directory, "the storage engine returned group \(group)'s keys out of order") }
        }
        do throws(FileIOError) {
            try writer.addFile(.keysFile, from: pinned.keys)
            try writer.addFile(.indexFile, from: pinned.index)
            try writer.finish()
            try handle.sync()
            handle.close()
            closed = true
            try fileSystem.rename(temporary, to: path)
            renamed = true
            try fileSystem.syncDirectory(parentDirectory(of: path))
        } catch {
            throw .io(error)
        }
        return writer.info
    }

    /// Installs the snapshot at `path` as the state of shard `group` and opens the shard. The
    /// shard must not be open. The snapshot is checked whole before anything changes (a damaged
    /// one is `.corrupt` and leaves the shard as it was); then the shard's storage keys are
    /// replaced by the snapshot's points and its checkpoints by the snapshot's. A crash part
    /// way is finished or undone at the next open (§6.4). The snapshot must be newer than what
    /// the storage side holds.
    public static func installSnapshot(from path: String, group: UInt64, directory: String, engine: StorageEngine,
                                       fileSystem: any FileSystem, configuration: HNSWConfiguration) throws(ShardError) -> Shard {
        try ensureDirectory(directory, fileSystem: fileSystem)
        do throws(StorageError) { try engine.flush() } catch { throw .storage(error) }
        let durable = engine.durableAppliedIndexes[group] ?? 0
        // One handle for both passes: what is installed is what was checked, even if another
        // file takes the name meanwhile.
        let handle: any FileHandle
        do throws(FileIOError) { handle = try fileSystem.open(path, options: .read) } catch { throw .io(error) }
        defer { handle.close() }
        let header = try ShardSnapshot.Reader(handle: handle, path: path)
        guard header.group == group else {
            throw .snapshot("the snapshot is of group \(header.group), not \(group)")
        }
        let applied = header.appliedIndex
        guard applied > durable else {
            throw .snapshot("the snapshot stands at index \(applied); the shard's storage already holds index \(durable)")
        }
        // 1. Check it whole, staging the checkpoint files beside the shard's own.
        let stagedIndex = joinPath(directory, ShardSnapshot.stagedIndexName(applied))
        let stagedKeys = joinPath(directory, ShardSnapshot.stagedKeysName(applied))
        do throws(ShardError) {
            _ = try ShardSnapshot.check(header, configuration: configuration, staging: fileSystem, indexPath: stagedIndex, keysPath: stagedKeys)
        } catch {
            try? fileSystem.remove(stagedIndex)
            try? fileSystem.remove(stagedKeys)
            throw error
        }
        // 2. The marker: from here a crash is finished or undone at open.
        do throws(FileIOError) {
            try fileSystem.syncDirectory(directory)
            try fileSystem.writeAtomically(joinPath(directory, ShardSnapshot.markerName), ShardSnapshot.encodeMarker(applied: applied))
        } catch {
            throw .io(error)
        }
        // 3. The storage side: the group's keys replaced by the snapshot's points, the applied
        //    index with the last batch, flushed (the engine keeps no log of its own).
        do throws(ShardError) {
            let (prefix, upper) = Self.keyRange(group: group)
            do throws(StorageError) { try engine.deleteRange(from: prefix, to: upper) } catch { throw .storage(error) }
            let reader = try ShardSnapshot.Reader(handle: handle, path: path)
            var batch = WriteBatch()
            var batchBytes = 0
            while let chunk = try reader.next(), chunk.kind == .points {
                let points: [ShardSnapshot.Point]
                do throws(DecodeError) {
                    points = try ShardSnapshot.decodePoints(chunk.payload, baseOffset: chunk.offset + UInt64(ShardSnapshot.chunkHeaderBytes))
                } catch {
                    throw .corrupt(path: path, "\(error)")
                }
                for point in points {
                    batch.put(prefix + point.key, point.record)
                    batchBytes += point.key.count + point.record.count
                }
                if batchBytes >= 4 << 20 {
                    do throws(StorageError) { try engine.write(batch) } catch { throw .storage(error) }
                    batch = WriteBatch()
                    batchBytes = 0
                }
            }
            batch.setAppliedIndex(stream: group, index: applied)
            do throws(StorageError) {
                try engine.write(batch)
                try engine.flush()
            } catch {
                throw .storage(error)
            }
        } catch {
            // Leave no half-installed state behind: the shard opens needing a snapshot.
            try? abandonInstall(group: group, directory: directory, engine: engine, fileSystem: fileSystem)
            throw error
        }
        // 4. The vector side: the staged checkpoint in place of the old ones; the marker goes.
        try finishInstall(applied: applied, directory: directory, fileSystem: fileSystem)
        return try Shard(group: group, directory: directory, engine: engine, fileSystem: fileSystem, configuration: configuration)
    }

    /// The last step of an install whose storage side is complete: the staged checkpoint files
    /// get their names, every other checkpoint goes, then the marker.
    static func finishInstall(applied: UInt64, directory: String, fileSystem: any FileSystem) throws(ShardError) {
        do throws(FileIOError) {
            let moves = [(ShardSnapshot.stagedIndexName(applied), VectorState.indexFileName(applied)),
                         (ShardSnapshot.stagedKeysName(applied), VectorState.keysFileName(applied))]
            for (staged, final) in moves where fileSystem.fileExists(joinPath(directory, staged)) {
                try fileSystem.rename(joinPath(directory, staged), to: joinPath(directory, final))
            }
            for name in try fileSystem.list(directory) where isCheckpointFile(name) && !moves.contains(where: { $0.1 == name }) {
                try fileSystem.remove(joinPath(directory, name))
            }
            try fileSystem.syncDirectory(directory)
            try fileSystem.remove(joinPath(directory, ShardSnapshot.markerName))
            try fileSystem.syncDirectory(directory)
        } catch {
            throw .io(error)
        }
    }

    /// Undoes an install whose storage side is incomplete: the group's keys and every
    /// checkpoint go (durably); the marker stays, so the shard keeps needing a snapshot.
    static func abandonInstall(group: UInt64, directory: String, engine: StorageEngine, fileSystem: any FileSystem) throws(ShardError) {
        try clearKeys(group: group, engine: engine)
        do throws(FileIOError) {
            for name in try fileSystem.list(directory) where isCheckpointFile(name) || (name.hasPrefix("snapshot-") && name != ShardSnapshot.markerName) {
                try fileSystem.remove(joinPath(directory, name))
            }
            try fileSystem.syncDirectory(directory)
        } catch {
            throw .io(error)
        }
    }

    /// The storage keys of `group`'s points: `lower ..< upper`. The end is the same group with
    /// the next type byte (not the next group's prefix: that range would also hold the next
    /// group's keys of types below "p").
    static func keyRange(group: UInt64) -> (lower: [UInt8], upper: [UInt8]) {
        let lower = prefix(group: group)
        var upper = lower
        upper[upper.count - 1] += 1
        return (lower, upper)
    }

    /// Deletes every point of `group` from the engine, durably (it keeps no log of its own).
    static func clearKeys(group: UInt64, engine: StorageEngine) throws(ShardError) {
        let (lower, upper) = keyRange(group: group)
        do throws(StorageError) {
            try engine.deleteRange(from: lower, to: upper)
            try engine.flush()
        } catch {
            throw .storage(error)
        }
    }

    /// A checkpoint file's name (or its temporary's).
    static func isCheckpointFile(_ name: String) -> Bool {
        (name.hasPrefix("index-") && (name.hasSuffix(".hnsw") || name.hasSuffix(".hnsw.tmp")))
            || (name.hasPrefix("keys-") && (name.hasSuffix(".bin") || name.hasSuffix(".bin.tmp")))
    }

    /// Removes the shard's data: its points from the engine and its checkpoint files.
    public func destroy() throws(ShardError) {
        try applyLock.withLock { () throws(ShardError) in
            try Self.destroy(group: group, directory: directory, engine: engine, fileSystem: fileSystem)
        }
    }

    /// Removes a shard's data — its storage keys, durably, then its directory — whether or not
    /// the shard is open (an orphan left by a crash during a collection's deletion).
    public static func destroy(group: UInt64, directory: String, engine: StorageEngine, fileSystem: any FileSystem) throws(ShardError) {
        // Durable first, so that the directory never goes before the keys do (a crash in
        // between leaves the directory, which a start sweeps).
        try clearKeys(group: group, engine: engine)
        do throws(FileIOError) {
            guard fileSystem.isDirectory(directory) else { return }
            for name in try fileSystem.list(directory) where fileSystem.fileExists(joinPath(directory, name)) {
                try fileSystem.remove(joinPath(directory, name))
            }
            if fileSystem.isDirectory(directory) { try fileSystem.remove(directory) }
        } catch {
            throw .io(error)
        }
    }

    // MARK: Reads

    public var count: Int { vectors.count }

    public func get(_ key: [UInt8]) throws(ShardError) -> PointRecord? {
        if needsSnapshot { throw .needsSnapshot }
        return try currentRecord(key, overlay: [:])
    }

    /// The `k` best points for `query`, best first, among those `filter` accepts.
    public func search(_ query: [Float], k: Int, ef: Int? = nil, exact: Bool = false,
                       filter: PointPredicate? = nil) throws(ShardError) -> [ShardHit] {
        if needsSnapshot { throw .needsSnapshot }
        let index = vectors.index
        // Only pass/fail is kept per node the filter sees (an exact scan sees every one).
        var verdicts: [UInt32: Bool] = [:]
        var failure: ShardError?
        let accept: ((UInt32) -> Bool)? = filter.map { filter in
            { node in
                if let known = verdicts[node] { return known }
                var verdict = false
                if let key = self.vectors.key(ofNumber: index.externalID(of: node)) {
                    do throws(ShardError) {
                        if let found = try self.get(key) { verdict = filter(key, found.payload) }
                    } catch {
                        if failure == nil { failure = error }
                    }
                }
                verdicts[node] = verdict
                return verdict
            }
        }
        let hits: [SearchHit]
        do throws(VectorIndexError) {
            hits = exact ? try index.exactSearch(query, k: k, filter: accept) : try index.search(query, k: k, ef: ef, filter: accept)
        } catch {
            throw .index(error)
        }
        if let failure { throw failure }
        var out: [ShardHit] = []
        out.reserveCapacity(hits.count)
        for hit in hits {
            // A point deleted while the search ran is left out.
            guard let key = vectors.key(ofNumber: hit.id) else { continue }
            guard let found = try get(key) else { continue }
            out.append(ShardHit(key: key, score: hit.score, record: found))
        }
        return out
    }

    /// Points in key order after `after` (exclusive), up to `limit`, that `filter` accepts; and
    /// the key to continue from if more may follow.
    public func scroll(after: [UInt8]?, limit: Int, filter: PointPredicate? = nil) throws(ShardError) -> (points: [ShardPoint], next: [UInt8]?) {
        try scroll(lower: after.map { storageKey($0) + [0] } ?? prefix, limit: limit, filter: filter)
    }

    /// Like `scroll(after:)`, but from `from` inclusive.
    public func scroll(from: [UInt8]?, limit: Int, filter: PointPredicate? = nil) throws(ShardError) -> (points: [ShardPoint], next: [UInt8]?) {
        try scroll(lower: from.map { storageKey($0) } ?? prefix, limit: limit, filter: filter)
    }

    private func scroll(lower: [UInt8], limit: Int, filter: PointPredicate?) throws(ShardError) -> (points: [ShardPoint], next: [UInt8]?) {
        if needsSnapshot { throw .needsSnapshot }
        var out: [ShardPoint] = []
        let iterator: StorageIterator
        do throws(StorageError) { iterator = try engine.makeIterator(lower: lower, upper: upper) } catch { throw .storage(error) }
        while let (key, record) = try nextPoint(iterator) {
            if let filter, !filter(key, record.payload) { continue }
            if out.count == limit { return (out, out.last?.key) }
            out.append(ShardPoint(key: key, record: record))
        }
        return (out, nil)
    }

    /// The next point of a scan of this shard's prefix.
    private func nextPoint(_ iterator: StorageIterator) throws(ShardError) -> ([UInt8], PointRecord)? {
        let entry: (key: [UInt8], value: [UInt8])?
        do throws(StorageError) { entry = try iterator.next() } catch { throw .storage(error) }
        guard let entry else { return nil }
        do throws(DecodeError) { return (Array(entry.key[prefix.count...]), try PointRecord.decode(entry.value)) } catch {
            throw .corrupt(path: engine.directory, "the point record under group \(group) does not decode: \(error)")
        }
    }

    /// How many points `filter` accepts (all of them without one).
    public func count(filter: PointPredicate?) throws(ShardError) -> Int {
        if needsSnapshot { throw .needsSnapshot }
        guard let filter else { return count }
        var total = 0
        let iterator: StorageIterator
        do throws(StorageError) { iterator = try engine.makeIterator(lower: prefix, upper: upper) } catch { throw .storage(error) }
        while let (key, record) = try nextPoint(iterator) { if filter(key, record.payload) { total += 1 } }
        return total
    }
}
