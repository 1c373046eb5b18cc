// The storage engine: a log-structured merge tree over checksummed, LZ4-compressed segments.
//
// Writes go to the write-ahead log (or, in `.external` mode, nowhere: the caller's Raft log is
// the WAL) and then to the memtable. A full memtable becomes immutable and is flushed to a
// level-0 segment; leveled compaction merges segments down the levels. Reads look at the
// memtables, then level 0 newest first, then one segment per deeper level; Bloom filters skip
// segments that cannot hold the key. The manifest records every change to the set of segments.
//
// Threads: writers are serialised by `writeLock`; the engine's shared state is under `lock`;
// manifest writes under `manifestLock`. Flushes and compactions run on two background threads
// (or inline, for deterministic tests) and never block readers: a reader takes the current
// memtables and `Version` under `lock` and reads them without locks.
//
// Backpressure: when level 0 holds `level0SlowdownTrigger` segments, each write batch waits 1 ms;
// at `level0StopTrigger` segments, or when `immutableMemtablesMax` memtables wait for flush,
// writers block until background work catches up. Memory is bounded by
// (immutableMemtablesMax + 2) × memtableBytes plus the block cache: the active and immutable
// memtables, and the arena of the last flushed one, kept for the next memtable (its pages are
// already mapped, so filling it costs no page faults).

import Basics
import Checksum
import FileIO
import RecordLog
import StorageFormat
import Synchronization
import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A consistent read view: reads through it see the database as of its sequence number.
public final class Snapshot: @unchecked Sendable {
    public let sequence: UInt64
    weak var engine: StorageEngine?
    let released = Atomic<Bool>(false)

    init(sequence: UInt64, engine: StorageEngine) {
        self.sequence = sequence
        self.engine = engine
    }

    /// Lets compaction drop the versions only this snapshot could see. Idempotent.
    public func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { engine?.releaseSnapshot(sequence) }
    }

    deinit { release() }
}

public final class StorageEngine: @unchecked Sendable {
    public static let keyBytesLimit = 16 << 10
    public static let valueBytesLimit = 8 << 20
    static let walStream: UInt64 = 1
    static let walRecordKind: UInt8 = 1
    static let lockFileName = "LOCK"
    static let walDirectoryName = "wal"

    public let directory: String
    public let options: StorageOptions
    let fileSystem: any FileSystem
    let directoryLock: any FileLock
    let cache: BlockCache?
    let wal: RecordLog?
    let walPayloadBytesMax: Int

    let writeLock = ConditionLock()
    let manifestLock = ConditionLock()
    let manifest: Manifest

    // MARK: State under `lock`
    let lock = ConditionLock()
    var memtable: MemTable
    var immutables: [MemTable] = []
    /// The emptied arena of the last flushed memtable, for the next one (under `lock`).
    var spareArena: [UInt8]?
    var version: Version
    var lastSequence: UInt64
    var nextFileNumber: UInt64
    var memtableCounter: UInt64 = 1
    var snapshots: [UInt64: Int] = [:]
    var flushRunning = false
    var compactionRunning = false
    var backgroundError: StorageError?
    var isClosed = false
    var isClosing = false
    var threadsRunning = 0
    var counters = StorageStatistics()
    var compactPointers: [Int: [UInt8]] = [:]
    var durableApplied: [UInt64: UInt64]
    /// WAL records below this LSN are in segments named by a manifest record that a later one
    /// proves intact; truncated at the next flush (owned by the flush in progress).
    var walTruncationPending: UInt64?

    // MARK: Opening

    public static func open(directory: String, fileSystem: any FileSystem, options: StorageOptions = StorageOptions()) throws(StorageError) -> StorageEngine {
        try options.validate()
        let directoryLock: any FileLock
        do throws(FileIOError) { directoryLock = try fileSystem.lockDirectory(directory, lockFileName: lockFileName) } catch {
            if error.kind == .locked { throw .locked(directory) }
            throw .io(error)
        }
        do throws(StorageError) {
            return try StorageEngine(directory: directory, fileSystem: fileSystem, options: options, directoryLock: directoryLock)
        } catch {
            directoryLock.unlock()
            throw error
        }
    }

    public static func segmentFileName(_ number: UInt64) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".vseg"
    }

    static func segmentNumber(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(".vseg") else { return nil }
        return UInt64(name.dropLast(5))
    }

    private init(directory: String, fileSystem: any FileSystem, options: StorageOptions, directoryLock: any FileLock) throws(StorageError) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.options = options
        self.directoryLock = directoryLock
        cache = options.blockCacheBytes > 0 ? BlockCache(capacityBytes: options.blockCacheBytes) : nil
        manifest = try Manifest.open(directory: directory, fileSystem: fileSystem, editsMax: options.manifestEditsMax, levelCount: options.levelCount)
        let state = manifest.state
        var opened: [(Int, SegmentFile)] = []
        for descriptor in state.segments.values.sorted(by: { $0.number < $1.number }) {
            let path = joinPath(directory, Self.segmentFileName(descriptor.number))
            guard fileSystem.fileExists(path) else {
                manifest.close()
                throw .inconsistent("segment \(Self.segmentFileName(descriptor.number)) named by the manifest is missing")
            }
            do throws(StorageError) {
                opened.append((descriptor.level, try Self.openSegment(descriptor, path: path, fileSystem: fileSystem, cache: cache)))
            } catch {
                manifest.close()
                throw error
            }
        }
        version = Version.empty(levelCount: options.levelCount).applying(deleted: [], added: opened)
        if let problem = version.checkInvariants() {
            manifest.close()
            throw .inconsistent("manifest: \(problem)")
        }
        nextFileNumber = state.nextFileNumber
        lastSequence = state.lastSequence
        durableApplied = state.appliedIndexes
        memtable = MemTable(number: 1, capacity: options.memtableBytes + (64 << 10))
        // Files no manifest names are leftovers of an interrupted flush or compaction.
        let live = Set(state.segments.keys)
        if let names = try? fileSystem.list(directory) {
            for name in names {
                if let number = Self.segmentNumber(fromFileName: name), !live.contains(number) {
                    try? fileSystem.remove(joinPath(directory, name))
                } else if name.hasSuffix(".vseg.tmp") {
                    try? fileSystem.remove(joinPath(directory, name))
                }
            }
        }
        walPayloadBytesMax = min(options.walSegmentBytes - 512, 64 << 20)
        if options.walMode == .recordLog {
            var logOptions = RecordLogOptions()
            logOptions.segmentBytesMax = options.walSegmentBytes
            logOptions.recordPayloadBytesMax = walPayloadBytesMax
            logOptions.batchBytesMax = max(8 << 20, walPayloadBytesMax)
            logOptions.queueBytesMax = 2 * logOptions.batchBytesMax
            logOptions.removesFilesInBackground = options.background == .threads
            let path = joinPath(directory, Self.walDirectoryName)
            do throws(LogError) {
                let (log, _) = try RecordLog.open(directory: path, fileSystem: fileSystem, options: logOptions)
                wal = log
            } catch {
                manifest.close()
                throw Manifest.mapLogError(error, path: path)
            }
            do throws(StorageError) { try replayWAL(flushedThrough: state.lastSequence) } catch {
                wal?.close()
                manifest.close()
                throw error
            }
        } else {
            wal = nil
        }
        if options.background == .threads { startBackgroundThreads() }
    }

    static func openSegment(_ descriptor: SegmentDescriptor, path: String, fileSystem: any FileSystem, cache: BlockCache?) throws(StorageError) -> SegmentFile {
        let handle: any FileHandle
        do throws(FileIOError) { handle = try fileSystem.open(path, options: .read) } catch { throw .io(error) }
        do throws(SegmentError) {
            let reader = try SegmentReader(handle: handle, cache: cache, cacheID: descriptor.number)
            guard reader.footer.keyOrder == .internalKey else {
                handle.close()
                throw SegmentError.corruption(path: path, DecodeError(field: "footer.key order", offset: reader.size - 26,
                                                                      reason: .invalid("an engine segment must use internal-key order")))
            }
            guard reader.size == descriptor.fileBytes else {
                handle.close()
                throw SegmentError.corruption(path: path, DecodeError(field: "segment size", offset: reader.size,
                                                                      reason: .invalid("file has \(reader.size) bytes, the manifest says \(descriptor.fileBytes)")))
            }
            return SegmentFile(descriptor: descriptor, reader: reader, path: path, fileSystem: fileSystem, cache: cache)
        } catch {
            handle.close()
            throw StorageError(error)
        }
    }

    /// Re-applies the logged batches that no segment holds yet: those with sequence numbers
    /// above the manifest's last sequence. (Not "LSNs from the manifest's replay point": after a
    /// crash loses unsynced WAL records whose data a flush had already made durable, the log
    /// hands out their LSNs again, so LSNs recorded before the crash can be ahead of new records.)
    private func replayWAL(flushedThrough flushedSequence: UInt64) throws(StorageError) {
        guard let wal else { return }
        let records: [StoredRecord]
        do throws(LogError) { records = try wal.read(stream: Self.walStream) } catch {
            throw Manifest.mapLogError(error, path: joinPath(directory, Self.walDirectoryName))
        }
        // Records whose batches every segment already holds form a prefix of the log (sequence
        // numbers grow with LSNs): drop it now, so that a session without flushes does not
        // keep it forever. (The manifest was just rewritten, so no WAL record backs it up.)
        var firstUnflushed: UInt64?
        for record in records {
            let batch: LoggedBatch
            do throws(DecodeError) { batch = try LoggedBatch.decode(record.payload) } catch {
                throw .corruption(path: joinPath(directory, Self.walDirectoryName) + " (LSN \(record.lsn))", error)
            }
            memtable.lastLogLSN = record.lsn
            // A batch is flushed whole or not at all (it goes to one memtable).
            guard batch.firstSequence > flushedSequence || batch.entries.isEmpty else { continue }
            if firstUnflushed == nil { firstUnflushed = record.lsn }
            apply(batch, to: memtable)
            lastSequence = max(lastSequence, batch.firstSequence + UInt64(batch.entries.count) - 1)
            if batch.entries.isEmpty { lastSequence = max(lastSequence, batch.firstSequence - 1) }
        }
        if let first = records.first, let last = records.last {
            let bound = firstUnflushed ?? last.lsn + 1
            if first.lsn < bound {
                do throws(LogError) {
                    try wal.truncatePrefix(stream: Self.walStream, below: bound)
                    try wal.releaseDeadSpace()
                } catch {
                    throw Manifest.mapLogError(error, path: joinPath(directory, Self.walDirectoryName))
                }
            }
        }
    }

    private func apply(_ batch: LoggedBatch, to table: MemTable) {
        var sequence = batch.firstSequence
        for entry in batch.entries {
            switch entry {
            case let .put(key, value): table.insert(userKey: key, sequence: sequence, kind: .value, value: value)
            case let .delete(key): table.insert(userKey: key, sequence: sequence, kind: .deletion, value: [])
            }
            sequence += 1
        }
        for (stream, index) in batch.appliedIndexes { table.appliedIndexes[stream] = max(index, table.appliedIndexes[stream] ?? 0) }
    }

    // MARK: Writing

    public func put(_ key: [UInt8], _ value: [UInt8], sync: Bool = false) throws(StorageError) {
        var batch = WriteBatch()
        batch.put(key, value)
        try write(batch, sync: sync)
    }

    public func delete(_ key: [UInt8], sync: Bool = false) throws(StorageError) {
        var batch = WriteBatch()
        batch.delete(key)
        try write(batch, sync: sync)
    }

    /// Deletes every key in `lower ..< upper` (nothing when `lower ≥ upper`).
    public func deleteRange(from lower: [UInt8], to upper: [UInt8], sync: Bool = false) throws(StorageError) {
        var batch = WriteBatch()
        batch.deleteRange(from: lower, to: upper)
        try write(batch, sync: sync)
    }

    /// Applies a batch atomically. With `sync` (and the engine's own WAL) the batch and every
    /// earlier one are durable on return; without, a machine crash may lose the most recent
    /// batches (never a part of one, never one without the batches before it).
    public func write(_ batch: WriteBatch, sync: Bool = false) throws(StorageError) {
        for operation in batch.operations {
            switch operation {
            case let .put(key, value):
                guard key.count <= Self.keyBytesLimit else { throw .invalidArgument("key of \(key.count) bytes exceeds \(Self.keyBytesLimit)") }
                guard value.count <= Self.valueBytesLimit else { throw .invalidArgument("value of \(value.count) bytes exceeds \(Self.valueBytesLimit)") }
            case let .delete(key):
                guard key.count <= Self.keyBytesLimit else { throw .invalidArgument("key of \(key.count) bytes exceeds \(Self.keyBytesLimit)") }
            case let .deleteRange(lower, upper):
                guard lower.count <= Self.keyBytesLimit, upper.count <= Self.keyBytesLimit else {
                    throw .invalidArgument("range bound exceeds \(Self.keyBytesLimit) bytes")
                }
            }
        }
        guard !batch.isEmpty else { return }
        writeLock.lock()
        defer { writeLock.unlock() }
        try makeRoomForWrite()
        let entries = try expand(batch)
        guard UInt64(entries.count) <= InternalKey.sequenceMax - lastSequence else {
            throw .invalidArgument("sequence numbers exhausted (\(lastSequence) of \(InternalKey.sequenceMax) used)")
        }
        let first = lastSequence + 1
        let logged = LoggedBatch(firstSequence: first, entries: entries, appliedIndexes: batch.appliedIndexes)
        var logBytes = 0
        if let wal {
            let payload = logged.encode()
            guard payload.count <= walPayloadBytesMax else {
                throw .invalidArgument("write batch of \(payload.count) bytes exceeds \(walPayloadBytesMax) (the write-ahead log's record limit)")
            }
            do throws(LogError) {
                memtable.lastLogLSN = try wal.append(LogRecord(stream: Self.walStream, kind: Self.walRecordKind, payload: payload), sync: sync)
            } catch {
                throw Manifest.mapLogError(error, path: joinPath(directory, Self.walDirectoryName))
            }
            logBytes = payload.count
        }
        apply(logged, to: memtable)
        lock.withLock {
            lastSequence = first + UInt64(entries.count) - 1
            counters.userBytesWritten += UInt64(batch.byteCount)
            counters.walBytesWritten += UInt64(logBytes)
        }
        if options.background == .inline { try runInlineWork() }
    }

    /// Turns range deletes into point deletes of the keys they cover (under the write lock, so
    /// the set of keys cannot change underneath).
    private func expand(_ batch: WriteBatch) throws(StorageError) -> [LoggedBatch.Entry] {
        var entries: [LoggedBatch.Entry] = []
        entries.reserveCapacity(batch.operations.count)
        for operation in batch.operations {
            switch operation {
            case let .put(key, value): entries.append(.put(key, value))
            case let .delete(key): entries.append(.delete(key))
            case let .deleteRange(lower, upper):
                guard compareBytes(lower, upper) < 0 else { continue }
                // Keys written earlier in this batch, then keys already stored.
                var covered = Set<[UInt8]>()
                for entry in entries {
                    if case let .put(key, _) = entry, compareBytes(key, lower) >= 0, compareBytes(key, upper) < 0 { covered.insert(key) }
                }
                let iterator = try makeIterator(lower: lower, upper: upper)
                while let (key, _) = try iterator.next() { covered.insert(key) }
                for key in covered.sorted(by: { compareBytes($0, $1) < 0 }) { entries.append(.delete(key)) }
            }
        }
        return entries
    }

    /// Switches a full memtable out and applies backpressure (writer lock held).
    private func makeRoomForWrite() throws(StorageError) {
        lock.lock()
        defer { lock.unlock() }
        var slowed = false
        while true {
            if isClosed || isClosing { throw .closed }
            if let backgroundError { throw .failed(backgroundError.description) }
            if options.background == .inline { return }
            let level0 = version.levels[0].count
            if level0 >= options.level0StopTrigger {
                counters.writeStops += 1
                lock.broadcast()
                lock.wait()
                continue
            }
            if level0 >= options.level0SlowdownTrigger && !slowed {
                slowed = true
                counters.writeSlowdowns += 1
                lock.unlock()
                usleep(1000)
                lock.lock()
                continue
            }
            if memtable.bytes < options.memtableBytes { return }
            if immutables.count >= options.immutableMemtablesMax {
                counters.writeStops += 1
                lock.wait()
                continue
            }
            switchMemtable()
            lock.broadcast()
            return
        }
    }

    /// Makes the active memtable immutable (under `lock`, writer lock held).
    private func switchMemtable() {
        immutables.append(memtable)
        memtableCounter += 1
        memtable = MemTable(number: memtableCounter, capacity: options.memtableBytes + (64 << 10), arena: spareArena.take())
    }

    /// Inline mode: flushes a full memtable and runs the compactions that are due.
    private func runInlineWork() throws(StorageError) {
        if memtable.bytes >= options.memtableBytes {
            lock.withLock { switchMemtable() }
        }
        while try flushOldest() {}
        while try compactOnce() {}
    }

    // MARK: Reading

    public func snapshot() -> Snapshot {
        lock.withLock {
            snapshots[lastSequence, default: 0] += 1
            return Snapshot(sequence: lastSequence, engine: self)
        }
    }

    func releaseSnapshot(_ sequence: UInt64) {
        lock.withLock {
            if let count = snapshots[sequence] {
                if count <= 1 { snapshots[sequence] = nil } else { snapshots[sequence] = count - 1 }
            }
        }
    }

    struct ReadView {
        var memtables: [MemTable]  // newest first
        var version: Version
        var sequence: UInt64
    }

    func readView(_ snapshot: Snapshot?) throws(StorageError) -> ReadView {
        try lock.withLock { () throws(StorageError) -> ReadView in
            if isClosed { throw .closed }
            return ReadView(memtables: [memtable] + immutables.reversed(), version: version, sequence: snapshot?.sequence ?? lastSequence)
        }
    }

    /// The value of `key` (as of `snapshot`, or now), or nil.
    public func get(_ key: [UInt8], snapshot: Snapshot? = nil) throws(StorageError) -> [UInt8]? {
        guard key.count <= Self.keyBytesLimit else { throw .invalidArgument("key of \(key.count) bytes exceeds \(Self.keyBytesLimit)") }
        let view = try readView(snapshot)
        let seekKey = InternalKey.seekKey(userKey: key, sequence: view.sequence)
        for table in view.memtables {
            if let (kind, value) = table.get(userKey: key, seekKey: seekKey) {
                return kind == .value ? value : nil
            }
        }
        let hash = BloomFilter.hash(key)
        for file in view.version.levels[0] {
            guard userKeyInRange(key, file) else { continue }
            if let found = try lookup(file, userKey: key, seekKey: seekKey, hash: hash) { return found.kind == .value ? found.value : nil }
        }
        for level in 1..<view.version.levels.count {
            let files = view.version.levels[level]
            var low = 0, high = files.count
            while low < high {
                let mid = (low + high) / 2
                if compareInternalKeys(files[mid].descriptor.largestKey, seekKey) < 0 { low = mid + 1 } else { high = mid }
            }
            guard low < files.count, userKeyInRange(key, files[low]) else { continue }
            if let found = try lookup(files[low], userKey: key, seekKey: seekKey, hash: hash) { return found.kind == .value ? found.value : nil }
        }
        return nil
    }

    private func userKeyInRange(_ userKey: [UInt8], _ file: SegmentFile) -> Bool {
        compareBytes(userPart(file.descriptor.smallestKey), userKey) <= 0 && compareBytes(userPart(file.descriptor.largestKey), userKey) >= 0
    }

    private func lookup(_ file: SegmentFile, userKey: [UInt8], seekKey: [UInt8], hash: UInt64) throws(StorageError) -> (kind: ValueKind, value: [UInt8])? {
        guard file.reader.mayContain(filterHash: hash) else { return nil }
        let cursor = SegmentCursor(file.reader)
        do throws(SegmentError) { try cursor.seek(seekKey) } catch { throw StorageError(error) }
        guard cursor.isValid else { return nil }
        let key = cursor.keyBuffer
        guard sameUserPart(key, userKey) else { return nil }
        let kindByte = trailer(of: key).kindByte
        guard let kind = ValueKind(rawValue: kindByte), kind != .valueReference else {
            throw .corruption(path: file.path, DecodeError(field: "internal key kind", offset: 0, reason: .invalidValue(UInt64(kindByte))))
        }
        return (kind, Array(cursor.value))
    }

    /// An iterator over `lower ..< upper` (nil = unbounded) as of `snapshot` (or now).
    public func makeIterator(lower: [UInt8]? = nil, upper: [UInt8]? = nil, reverse: Bool = false, snapshot: Snapshot? = nil) throws(StorageError) -> StorageIterator {
        let view = try readView(snapshot)
        var children: [any InternalIterator] = view.memtables.map { MemTableIterator($0) }
        for file in view.version.levels[0] { children.append(SegmentIterator(file)) }
        for level in 1..<view.version.levels.count where !view.version.levels[level].isEmpty {
            children.append(LevelIterator(view.version.levels[level]))
        }
        return StorageIterator(source: MergingIterator(children), sequence: view.sequence, lower: lower, upper: upper, reverse: reverse, pin: snapshot)
    }

    /// Up to `limit` entries of `lower ..< upper`, ascending (or descending when `reverse`).
    public func scan(lower: [UInt8]? = nil, upper: [UInt8]? = nil, reverse: Bool = false, snapshot: Snapshot? = nil,
                     limit: Int = .max) throws(StorageError) -> [(key: [UInt8], value: [UInt8])] {
        let iterator = try makeIterator(lower: lower, upper: upper, reverse: reverse, snapshot: snapshot)
        var out: [(key: [UInt8], value: [UInt8])] = []
        while out.count < limit, let entry = try iterator.next() { out.append(entry) }
        return out
    }

    // MARK: Flush

    /// Flushes the memtable to a level-0 segment and waits until it (and every memtable before
    /// it) is durable in segments.
    public func flush() throws(StorageError) {
        let target: UInt64 = try writeLock.withLock { () throws(StorageError) -> UInt64 in
            try lock.withLock { () throws(StorageError) -> UInt64 in
                if isClosed { throw .closed }
                if let backgroundError { throw .failed(backgroundError.description) }
                if !memtable.isEmpty || !memtable.appliedIndexes.isEmpty { switchMemtable() }
                lock.broadcast()
                return immutables.last?.number ?? 0
            }
        }
        if options.background == .inline {
            while try flushOldest() {}
            return
        }
        try lock.withLock { () throws(StorageError) in
            while let oldest = immutables.first, oldest.number <= target {
                if let backgroundError { throw .failed(backgroundError.description) }
                if isClosed { throw .closed }
                lock.wait()
            }
        }
    }

    /// Flushes the oldest immutable memtable, if any. Returns whether it did.
    @discardableResult
    func flushOldest() throws(StorageError) -> Bool {
        let claimed: (MemTable, UInt64, [UInt64])? = lock.withLock {
            guard !flushRunning, let table = immutables.first else { return nil }
            flushRunning = true
            let number = nextFileNumber
            nextFileNumber += 1
            return (table, number, snapshots.keys.sorted())
        }
        guard let (claimedTable, number, snapshotList) = consume claimed else { return false }
        var table = consume claimedTable
        do throws(StorageError) {
            try flush(table, number: number, snapshots: snapshotList)
            // Nobody else holds the flushed memtable (no reader or iterator): keep its arena.
            let arena = isKnownUniquelyReferenced(&table) ? table.takeArena() : nil
            lock.withLock {
                if let arena { spareArena = arena }
                flushRunning = false
                lock.broadcast()
            }
            return true
        } catch {
            lock.withLock {
                flushRunning = false
                if backgroundError == nil { backgroundError = error }
                lock.broadcast()
            }
            throw error
        }
    }

    private func flush(_ table: MemTable, number: UInt64, snapshots: [UInt64]) throws(StorageError) {
        var added: [SegmentFile] = []
        var descriptor: SegmentDescriptor?
        if !table.isEmpty {
            // Streamed from the memtable: per user key, the newest version of each snapshot stripe.
            let builder = try SegmentBuilder(engine: self, number: number, level: 0)
            let iterator = MemTableIterator(table)
            try iterator.seekToFirst()
            var previous: [UInt8] = []
            var previousStripe = -1
            while iterator.isValid {
                let key = iterator.keyBuffer
                let stripe = Self.stripe(of: trailer(of: key).sequence, snapshots: snapshots)
                if previousStripe >= 0 && stripe == previousStripe && sameUserPart(key, previous) {
                    try iterator.next()
                    continue
                }
                previous.removeAll(keepingCapacity: true)
                previous.append(contentsOf: UnsafeBufferPointer(rebasing: key[..<(key.count - 8)]))
                previousStripe = stripe
                try builder.add(key, iterator.valueBuffer)
                try iterator.next()
            }
            let (built, bytes) = try builder.finish()
            descriptor = built
            added.append(try Self.openSegment(built, path: joinPath(directory, Self.segmentFileName(number)), fileSystem: fileSystem, cache: cache))
            lock.withLock { counters.flushBytesWritten += bytes }
        }
        var edit = VersionEdit()
        edit.nextFileNumber = lock.withLock { nextFileNumber }
        if !table.isEmpty { edit.lastSequence = table.largestSequence }
        if wal != nil && table.lastLogLSN > 0 { edit.walReplayFrom = table.lastLogLSN + 1 }
        edit.appliedIndexes = table.appliedIndexes
        if let descriptor { edit.addedSegments = [descriptor] }
        try manifestLock.withLock { () throws(StorageError) in try manifest.record(edit) }
        // The WAL keeps the records of this flush until a later manifest record exists: the
        // newest record of a log could be cut as a torn tail if its bytes were damaged (nothing
        // after it proves it was synced), and then the WAL must still hold what it described.
        // (Done before the memtable is released, so that whoever waits for this flush sees it.)
        if let wal, let replayFrom = edit.walReplayFrom {
            if let pending = lock.withLock({ walTruncationPending }) {
                // Unsynced: the manifest says where replay starts, so records that come back after
                // a crash are skipped by sequence. (A synced marker would make this flush wait for
                // the memtable's worth of unsynced WAL bytes, and the writers behind it.)
                do throws(LogError) { try wal.truncatePrefix(stream: Self.walStream, below: pending, sync: false) } catch {
                    throw Manifest.mapLogError(error, path: joinPath(directory, Self.walDirectoryName))
                }
            }
            lock.withLock { walTruncationPending = replayFrom }
        }
        lock.withLock {
            version = version.applying(deleted: [], added: added.map { (0, $0) })
            immutables.removeFirst()
            for (stream, index) in table.appliedIndexes { durableApplied[stream] = max(index, durableApplied[stream] ?? 0) }
            counters.flushes += 1
            lock.broadcast()
        }
    }

    /// After a final flush: records one more manifest edit, which proves the flush's edit intact
    /// (see `flush`), and then drops the WAL records the flushes hold.
    private func releaseWAL() throws(StorageError) {
        guard let wal else { return }
        let pending: UInt64? = try writeLock.withLock { () throws(StorageError) -> UInt64? in
            let (pending, empty) = lock.withLock { (walTruncationPending, memtable.isEmpty && immutables.isEmpty) }
            guard empty, let pending else { return nil }
            var edit = VersionEdit()
            edit.nextFileNumber = lock.withLock { nextFileNumber }
            try manifestLock.withLock { () throws(StorageError) in try manifest.record(edit) }
            return pending
        }
        guard let pending else { return }
        do throws(LogError) {
            try wal.truncatePrefix(stream: Self.walStream, below: pending)
            try wal.releaseDeadSpace()
        } catch {
            throw Manifest.mapLogError(error, path: joinPath(directory, Self.walDirectoryName))
        }
    }

    /// Index of the snapshot stripe a sequence number falls in: versions of one key in the same
    /// stripe are indistinguishable to every reader, so only the newest is kept.
    static func stripe(of sequence: UInt64, snapshots: [UInt64]) -> Int {
        var low = 0, high = snapshots.count
        while low < high {
            let mid = (low + high) / 2
            if snapshots[mid] < sequence { low = mid + 1 } else { high = mid }
        }
        return low
    }

    var segmentWriterOptions: SegmentWriterOptions { options.segmentWriterOptions }

    // MARK: Background threads

    private func startBackgroundThreads() {
        lock.withLock { threadsRunning = 2 }
        startDetachedThread { [self] in backgroundLoop(flushing: true) }
        startDetachedThread { [self] in backgroundLoop(flushing: false) }
    }

    private func backgroundLoop(flushing: Bool) {
        while true {
            let proceed = lock.withLock { () -> Bool in
                while true {
                    if isClosing || backgroundError != nil { return false }
                    if flushing ? (!immutables.isEmpty && !flushRunning) : (!compactionRunning && compactionDue()) { return true }
                    lock.wait()
                }
            }
            guard proceed else { break }
            do throws(StorageError) {
                if flushing { try flushOldest() } else { try compactOnce() }
            } catch {
                lock.withLock {
                    if backgroundError == nil { backgroundError = error }
                    lock.broadcast()
                }
            }
        }
        lock.withLock {
            threadsRunning -= 1
            lock.broadcast()
        }
    }

    // MARK: Statistics and closing

    /// Per stream, the highest caller-supplied applied index that is durable in segments
    /// (`.external` mode): after a crash, replay from the next index.
    public var durableAppliedIndexes: [UInt64: UInt64] { lock.withLock { durableApplied } }

    public var statistics: StorageStatistics {
        var result = lock.withLock { () -> StorageStatistics in
            var result = counters
            result.levels = version.levels.map { files in
                StorageStatistics.Level(segments: files.count, bytes: files.reduce(0) { $0 + $1.descriptor.fileBytes })
            }
            result.memtableBytes = memtable.bytes
            result.immutableMemtables = immutables.count
            return result
        }
        if let cache { result.blockCache = cache.statistics }
        return result
    }

    /// Waits for running background work, then closes. Unflushed writes stay in the WAL (or,
    /// in `.external` mode, are the caller's to replay). Later calls fail with `.closed`.
    public func close() {
        // Flush first (best effort: what fails stays in the WAL), so that the next open has
        // nothing to replay and the WAL's space comes back.
        if options.flushOnClose && lock.withLock({ !isClosed && !isClosing && backgroundError == nil }) {
            if (try? flush()) != nil { try? releaseWAL() }
        }
        writeLock.lock()
        lock.lock()
        if isClosed {
            lock.unlock()
            writeLock.unlock()
            return
        }
        isClosing = true
        lock.broadcast()
        while threadsRunning > 0 || flushRunning || compactionRunning { lock.wait() }
        isClosed = true
        lock.unlock()
        writeLock.unlock()
        wal?.close()
        manifestLock.withLock { manifest.close() }
        lock.withLock {
            version = Version.empty(levelCount: options.levelCount)
            immutables = []
        }
        directoryLock.unlock()
    }

    deinit {
        if !isClosed { close() }
    }
}

/// Streams sorted entries into a new segment file, then syncs it and its directory.
final class SegmentBuilder {
    let directory: String
    let fileSystem: any FileSystem
    let number: UInt64
    let level: Int
    let path: String
    let handle: any FileHandle
    let writer: SegmentWriter
    var smallestSequence = UInt64.max
    var largestSequence: UInt64 = 0
    var firstKey: [UInt8]?
    var count = 0

    convenience init(engine: StorageEngine, number: UInt64, level: Int) throws(StorageError) {
        try self.init(directory: engine.directory, fileSystem: engine.fileSystem, options: engine.segmentWriterOptions, number: number, level: level)
    }

    init(directory: String, fileSystem: any FileSystem, options: SegmentWriterOptions, number: UInt64, level: Int) throws(StorageError) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.number = number
        self.level = level
        path = joinPath(directory, StorageEngine.segmentFileName(number))
        do throws(FileIOError) { handle = try fileSystem.open(path, options: .createNew) } catch { throw .io(error) }
        writer = SegmentWriter(handle: handle, options: options)
    }

    var estimatedBytes: UInt64 { writer.estimatedFileBytes }

    func add(_ key: [UInt8], _ value: ArraySlice<UInt8>) throws(StorageError) {
        try key.withUnsafeBufferPointer { (key) throws(StorageError) in
            try value.withUnsafeBufferPointer { (value) throws(StorageError) in try add(key, value) }
        }
    }

    func add(_ key: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) throws(StorageError) {
        let sequence = trailer(of: key).sequence
        smallestSequence = min(smallestSequence, sequence)
        largestSequence = max(largestSequence, sequence)
        if count == 0 { firstKey = Array(key) }
        count += 1
        do throws(SegmentError) { try writer.add(key: key, value: value) } catch {
            abandon()
            throw StorageError(error)
        }
    }

    func finish() throws(StorageError) -> (SegmentDescriptor, UInt64) {
        let smallest = smallestSequence, largest = largestSequence
        do throws(SegmentError) {
            let (bytes, _) = try writer.finish { properties in
                properties.smallestSequence = smallest
                properties.largestSequence = largest
            }
            do throws(FileIOError) {
                try handle.sync()
                try fileSystem.syncDirectory(directory)
            } catch { throw SegmentError.io(error) }
            handle.close()
            let descriptor = SegmentDescriptor(level: level, number: number, fileBytes: bytes, checksum: writer.fileChecksum,
                                               entryCount: UInt64(count), smallestSequence: smallest, largestSequence: largest,
                                               smallestKey: firstKey ?? [], largestKey: writer.properties.largestKey)
            return (descriptor, bytes)
        } catch {
            abandon()
            throw StorageError(error)
        }
    }

    /// Removes the partial file after a failure.
    func abandon() {
        handle.close()
        try? fileSystem.remove(path)
    }
}
