// The unified record log: one per node, both the Raft log of every group the node hosts and the
// write-ahead log of its storage engine. Format: Format/log.md.
//
// # Streams and LSNs
// Every record belongs to a stream (a Raft group, or the storage engine) and gets a log-wide
// sequence number (LSN) when it is written; LSNs increase by one per record. A stream's live
// records are read back in LSN order. A stream drops records with `truncatePrefix` (everything
// below an LSN: compaction after a snapshot or a flush) and `truncateSuffix` (everything from an
// LSN on: a Raft log conflict). Both are durable records themselves.
//
// # Group commit
// `append` may be called from any number of threads. An appender that finds the log idle
// writes and syncs its own records on its thread (a lone appender pays one write and one sync,
// no hand-off). Otherwise appends queue up and a writer thread leads: it takes every queued
// append (up to `batchBytesMax`), writes them with one `pwrite` and one `fdatasync`, wakes
// their callers while the next batch's sync runs, and goes on until the queue is empty. So many
// appenders share each write and sync. An append returns only once its records are durable. The
// queue is bounded in bytes; appenders beyond it block.
//
// # Pipelined syncs
// A caller that wants more than one fdatasync in flight (the Raft host: its next batch should
// not wait for the current sync) appends with `sync: false` — a write only — and calls
// `syncWritten` on other threads. Each `syncWritten` syncs what had been written when it
// started, outside leadership, while the leader goes on writing and other syncs run; the
// durable prefix they establish (`durableMark`) feeds the synced offset later records carry.
//
// # Segments
// Records go to the active segment until it would pass `segmentBytesMax`; then it is sealed
// (a seal record, synced) and a new segment starts with a checkpoint of every stream's
// truncation state, so that older segments — and the markers in them — can be deleted as soon
// as none of their records is live. When there are more than `segmentCountMax` segments, the
// live records of the oldest are rewritten forward (keeping their LSNs) and it is deleted.
//
// # Prepared segments
// With `segmentPreparation` set, a new segment's file is zero-filled to `segmentBytesMax` and
// synced before it gets its header and name (format version 2, Format/log.md §9). Appends then
// overwrite allocated blocks instead of growing the file, so their fdatasyncs commit no size
// change — on ext4 that saves a journal commit per batch. With `.background`, the next file is
// prepared on a thread of its own while the current segment fills; a rotation that finds none
// ready creates its segment as before rather than wait.
//
// # Failure
// An I/O error while writing or syncing fails the appenders of that batch and stops the log:
// every later call fails with `.failed` until the log is reopened, because after a failed sync
// the page cache no longer tells what is on disk. Nothing that was acknowledged is lost.

import Basics
import Compression
import FileIO
import Synchronization
import Wire

/// A record to append.
public struct LogRecord: Sendable, Equatable {
    public var stream: UInt64
    /// 1...127; the log's users define the meaning.
    public var kind: UInt8
    public var payload: [UInt8]
    /// Store the payload LZ4-compressed if that saves space.
    public var compress: Bool

    public init(stream: UInt64, kind: UInt8, payload: [UInt8], compress: Bool = false) {
        self.stream = stream
        self.kind = kind
        self.payload = payload
        self.compress = compress
    }
}

/// A live record read back from the log.
public struct StoredRecord: Sendable, Equatable {
    public var lsn: UInt64
    public var stream: UInt64
    public var kind: UInt8
    public var payload: [UInt8]

    public init(lsn: UInt64, stream: UInt64, kind: UInt8, payload: [UInt8]) {
        self.lsn = lsn
        self.stream = stream
        self.kind = kind
        self.payload = payload
    }
}

/// What opening the log found and did.
public struct RecoveryReport: Sendable, Equatable {
    public struct TornTail: Sendable, Equatable {
        public var segment: String
        public var offset: Int
        public var droppedBytes: Int
    }
    public var segmentsScanned = 0
    public var recordsScanned = 0
    public var liveRecords = 0
    /// Unsynced writes found cut short and removed (never acknowledged).
    public var tornTails: [TornTail] = []
    /// Segments deleted because none of their records is live (or the header never became durable).
    public var segmentsRemoved: [String] = []
    public var isNewLog = false
}

public struct LogStatistics: Sendable, Equatable {
    public var appendedRecords: UInt64 = 0
    public var batches: UInt64 = 0
    public var syncs: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    /// Time spent in the `pwrite` of synced batches and in `fdatasync` (for metrics and
    /// benchmarks; unsynced writes are not timed, to keep clock reads off their path).
    public var writeNanoseconds: UInt64 = 0
    public var syncNanoseconds: UInt64 = 0
    /// One observation per sync counted in `syncs`: a group commit's fdatasyncs (older sealed
    /// segments and the active one) or a `syncWritten` call's, in seconds.
    public var syncLatency = LatencyHistogram()
    public var relocatedRecords: UInt64 = 0
    public var segmentsCreated: UInt64 = 0
    /// Segments created from a prepared (zero-filled) file; the rest were created empty.
    public var segmentsPrepared: UInt64 = 0
    public var segmentsDeleted: UInt64 = 0
    public var segmentCount = 0
    public var liveRecords = 0
    public var liveBytes = 0
}

public final class RecordLog: @unchecked Sendable {
    public let directory: String
    public let options: RecordLogOptions
    public let logID: UInt64
    let fileSystem: any FileSystem
    let directoryLock: any FileLock

    // MARK: State guarded by `lock`
    let lock = ConditionLock()
    var pending: [PendingAppend] = []
    var pendingBytes = 0
    /// Async appends waiting for room in `pending` (they cannot block a thread).
    var overflow: [PendingAppend] = []
    /// Wakes the writer thread that leads on behalf of async appenders.
    let writerThreadEvent = Event()
    var writerThreadStarted = false

    // MARK: Completion thread (guarded by `completionLock`)
    let completionLock = ConditionLock()
    var completionQueue: [[PendingAppend]] = []
    var completionThreadStarted = false
    var completionThreadStopping = false
    var writerActive = false
    /// Idle events for blocked appenders (under `lock`).
    var eventPool: [Event] = []
    var failure: LogError?
    var isClosed = false
    /// Set by `close` before it waits for the queue to drain: new work is refused.
    var isClosing = false
    /// Live records of each stream, ascending by LSN.
    var index: [UInt64: [RecordLocation]] = [:]
    var segments: [UInt64: SegmentState] = [:]
    var statistics = LogStatistics()

    // MARK: State owned by the current leader (no lock: leadership is handed over under `lock`)
    var active: ActiveSegment
    /// Segments taken out of `segments` whose files are being removed, outside leadership (under
    /// `lock`). A sync still finds their handles here (Format/log.md §7.4: an older segment
    /// sealed unsynced is synced first unless its removal is durable).
    var removing: [UInt64: any FileHandle] = [:]
    /// `writeBatch`'s encoding buffer, kept between batches.
    var writeBuffer: [UInt8] = []
    static let writeBufferKeptMax = 1 << 20
    /// Sealed segments holding unsynced bytes (rotated by unsynced batches), oldest first. The
    /// next sync makes them durable before the active segment. Under `lock`: `syncWritten`
    /// reads and trims it too.
    var unsyncedSealed: [UInt64] = []
    /// The end of the last write (under `lock`), which `syncWritten` makes durable.
    var writtenMark: (segment: UInt64, size: Int, handle: any FileHandle)?
    /// The durable prefix of the log that syncs outside leadership established (under `lock`);
    /// the leader folds it into `active.syncedSize`.
    var durableMark: (segment: UInt64, size: Int) = (0, 0)
    /// fdatasyncs running now (`trackedSync`), under `lock`.
    var syncsRunning: Set<UInt64> = []
    var nextSyncTicket: UInt64 = 0
    var nextLSN: UInt64
    var truncation: TruncationState
    /// Counters of the current batch, merged into `statistics` when it is published.
    var writerStatistics = LogStatistics()
    /// Set (under `lock`) when a segment may have lost its last live record.
    var deadSegmentPossible = false
    /// A zero-filled, synced file under `LogFormat.preparedFileName`, ready for the next
    /// rotation, and whether a thread is preparing one (both under `lock`; `.background` only).
    var preparedFile: (any FileHandle)?
    var isPreparing = false

    struct RecordLocation {
        var lsn: UInt64
        var segment: UInt64
        var offset: UInt32
        var storedLength: UInt32
    }

    final class SegmentState {
        let handle: any FileHandle
        var liveRecords = 0
        var liveBytes = 0
        init(handle: any FileHandle) { self.handle = handle }
    }

    struct ActiveSegment {
        var number: UInt64
        var handle: any FileHandle
        /// Bytes written; the next write goes here.
        var size: Int
        /// Bytes known durable (≤ `size`); every record carries this as its synced offset.
        var syncedSize: Int
        /// Offset after the checkpoint: a segment holding nothing beyond this is not rotated.
        var contentStart: Int
    }

    /// One call to `append` or a truncation, waiting in the queue.
    final class PendingAppend {
        var items: [BatchItem]
        let bytes: Int
        var result: Result<[UInt64], LogError>?
        /// False for an append that is written but not synced.
        var sync = true
        /// The next waiter of the same batch: each woken waiter wakes the next, so the leader
        /// pays for one wake-up per batch instead of one per appender.
        var nextToWake: PendingAppend?
        /// Set for a thread blocked in `append`; nil for an async caller.
        let event: Event?
        /// Set for an async caller.
        var continuation: UnsafeContinuation<Result<[UInt64], LogError>, Never>?
        init(items: [BatchItem], bytes: Int, event: Event?) {
            self.items = items
            self.bytes = bytes
            self.event = event
        }
    }

    enum BatchItem {
        case record(stream: UInt64, kind: RecordKind, flags: RecordFlags, payloadLength: UInt32, stored: [UInt8])
        case relocated(stream: UInt64, lsn: UInt64, kind: RecordKind, flags: RecordFlags, payloadLength: UInt32, stored: [UInt8])
        case truncatePrefix(stream: UInt64, bound: UInt64)
        case truncateSuffix(stream: UInt64, from: UInt64)

        var encodedBytes: Int {
            switch self {
            case let .record(_, _, _, _, stored), let .relocated(_, _, _, _, _, stored):
                return LogFormat.recordHeaderBytes + stored.count
            case .truncatePrefix, .truncateSuffix: return LogFormat.recordHeaderBytes + 8
            }
        }
    }

    /// Where each item of a batch ended up.
    struct Placement {
        var lsn: UInt64
        var segment: UInt64
        var offset: UInt32
    }

    init(directory: String, options: RecordLogOptions, logID: UInt64, fileSystem: any FileSystem,
         directoryLock: any FileLock, active: ActiveSegment, nextLSN: UInt64, truncation: TruncationState) {
        self.directory = directory
        self.options = options
        self.logID = logID
        self.fileSystem = fileSystem
        self.directoryLock = directoryLock
        self.active = active
        self.nextLSN = nextLSN
        self.truncation = truncation
        durableMark = (active.number, active.syncedSize)
    }

    deinit { directoryLock.unlock() }

    // MARK: Appending

    /// Appends records in order (increasing LSNs, consecutive unless a segment rotation falls
    /// between them) and returns their LSNs once they are durable. After a crash during the
    /// call, a prefix of the records may survive.
    ///
    /// With `sync: false` the records are written to the file (the operating system's cache)
    /// but not synced: they survive a crash of the process, not of the machine, and become
    /// durable with the next synced append or marker. After a crash, the records that survive
    /// are always a prefix of the log (recovery cuts at the first torn record).
    @discardableResult
    public func append(_ records: [LogRecord], sync: Bool = true) throws(LogError) -> [UInt64] {
        let (items, bytes) = try prepare(records)
        if items.isEmpty { return [] }
        return try submit(items, bytes: bytes, sync: sync)
    }

    /// Validates and (where asked and worthwhile) compresses records, on the caller's thread.
    func prepare(_ records: [LogRecord]) throws(LogError) -> ([BatchItem], Int) {
        var items: [BatchItem] = []
        items.reserveCapacity(records.count)
        var bytes = 0
        for record in records {
            guard RecordKind.userRange.contains(record.kind) else {
                throw .invalidArgument("record kind \(record.kind) is outside 1...127")
            }
            guard record.payload.count <= options.recordPayloadBytesMax else {
                throw .invalidArgument("payload of \(record.payload.count) bytes exceeds recordPayloadBytesMax \(options.recordPayloadBytesMax)")
            }
            var flags: RecordFlags = []
            var stored = record.payload
            if record.compress && record.payload.count >= options.compressionBytesMin,
               let compressed = try? LZ4.compress(record.payload), compressed.count < record.payload.count {
                stored = compressed
                flags.insert(.lz4)
            }
            let item = BatchItem.record(stream: record.stream, kind: RecordKind(rawValue: record.kind), flags: flags,
                                        payloadLength: UInt32(record.payload.count), stored: stored)
            bytes += item.encodedBytes
            items.append(item)
        }
        return (items, bytes)
    }

    @discardableResult
    public func append(_ record: LogRecord, sync: Bool = true) throws(LogError) -> UInt64 {
        try append([record], sync: sync)[0]
    }

    /// Makes every record appended so far durable (a no-op when they already are).
    public func sync() throws(LogError) {
        _ = try submit([], bytes: 0, sync: true)
    }

    /// Makes every record whose append (synced or not) returned before this call durable,
    /// without queueing behind the writer: it fdatasyncs the files written so far while
    /// appends and other `syncWritten` calls go on. Several may run at once, so that a caller
    /// that appends unsynced and syncs on other threads keeps more than one fdatasync in flight
    /// (the disk overlaps them; each one waits for no other). A failed sync stops the log like
    /// any other write error.
    public func syncWritten() throws(LogError) {
        let (mark, sealed, numbers) = try lock.withLock { () throws(LogError) -> ((segment: UInt64, size: Int, handle: any FileHandle)?, [any FileHandle], [UInt64]) in
            if isClosed || isClosing { throw .closed }
            if let failure { throw failure }
            guard let mark = writtenMark else { return (nil, [], []) }
            if unsyncedSealed.isEmpty && (mark.segment, mark.size) <= (durableMark.segment, durableMark.size) { return (nil, [], []) }
            return (mark, unsyncedSealed.compactMap { segments[$0]?.handle ?? removing[$0] }, unsyncedSealed)
        }
        guard let mark else { return }
        let started = MonotonicClock.nanoseconds()
        try trackedSync { () throws(FileIOError) in
            // Sealed segments first (Format/log.md §7.4), like the leader's sync.
            for handle in sealed { try handle.dataSync() }
            try mark.handle.dataSync()
        }
        let elapsed = MonotonicClock.nanoseconds() - started
        lock.withLock {
            raiseDurableMark(to: (mark.segment, mark.size))
            unsyncedSealed.removeAll { numbers.contains($0) }
            statistics.syncs += 1
            statistics.syncNanoseconds += elapsed
            statistics.syncLatency.record(nanoseconds: elapsed)
        }
    }

    /// Runs `body`'s fdatasyncs as one tracked sync. Syncs share each segment's descriptor, and
    /// Linux reports a writeback error once per open file: when syncs overlap, only the first to
    /// look sees the error, and another may return success for pages that never reached the
    /// disk. So a sync counts as successful only once every sync that was still running when it
    /// returned has returned too, and none of them failed (`failure`). Called without `lock`.
    func trackedSync(_ body: () throws(FileIOError) -> Void) throws(LogError) {
        let ticket = lock.withLock { () -> UInt64 in
            nextSyncTicket += 1
            syncsRunning.insert(nextSyncTicket)
            return nextSyncTicket
        }
        var outcome: FileIOError?
        do throws(FileIOError) { try body() } catch { outcome = error }
        lock.lock()
        syncsRunning.remove(ticket)
        if let outcome, failure == nil { failure = .failed(outcome) }
        lock.broadcast()
        let overlapping = syncsRunning
        while !overlapping.isDisjoint(with: syncsRunning) { lock.wait() }
        let stopped = failure
        lock.unlock()
        if let outcome { throw .io(outcome) }
        if let stopped { throw stopped }
    }

    /// Raises `durableMark` (under `lock`).
    func raiseDurableMark(to mark: (segment: UInt64, size: Int)) {
        if (mark.segment, mark.size) > (durableMark.segment, durableMark.size) { durableMark = mark }
    }

    /// Durably drops every record of `stream` with an LSN below `lsn`.
    ///
    /// With `sync: false` the marker is written like an unsynced append: the records are dead at
    /// once (and segments holding nothing else are deleted), but a crash before the next sync may
    /// bring back records that still sit in surviving segments. Use it when a record coming back
    /// is harmless — a storage engine whose manifest already says where replay starts.
    public func truncatePrefix(stream: UInt64, below lsn: UInt64, sync: Bool = true) throws(LogError) {
        _ = try submit([.truncatePrefix(stream: stream, bound: lsn)], bytes: LogFormat.recordHeaderBytes + 8, sync: sync)
    }

    /// Durably drops every record of `stream` with an LSN of `lsn` or more (records appended
    /// afterwards are live).
    public func truncateSuffix(stream: UInt64, from lsn: UInt64) throws(LogError) {
        _ = try submit([.truncateSuffix(stream: stream, from: lsn)], bytes: LogFormat.recordHeaderBytes + 8)
    }

    func submit(_ items: [BatchItem], bytes: Int, sync: Bool = true) throws(LogError) -> [UInt64] {
        lock.lock()
        if !writerActive && pending.isEmpty && overflow.isEmpty && !isClosed && !isClosing && failure == nil {
            return try writeAlone(items, sync: sync)
        }
        // Events are reused: creating one (a mutex and a condition variable) costs more than a
        // small unsynced append.
        let request = PendingAppend(items: items, bytes: bytes, event: eventPool.popLast() ?? Event())
        request.sync = sync
        while true {
            if isClosed || isClosing { recycle(request.event!); lock.unlock(); throw .closed }
            if let failure { recycle(request.event!); lock.unlock(); throw failure }
            // Backpressure: wait for room, but never block a request larger than the queue
            // when the queue is empty.
            if pendingBytes == 0 || pendingBytes + bytes <= options.queueBytesMax { break }
            lock.wait()
        }
        pending.append(request)
        pendingBytes += bytes
        // A queued blocked appender waits for the writer thread, which leads as long as appends
        // keep coming. (Letting each blocked appender lead in turn cost a thread hand-off per
        // turn; with 128 appender threads on 2 cores that was 10–25 % of the throughput.)
        let needsWriter = !writerActive
        if needsWriter { writerActive = true }
        lock.unlock()
        if needsWriter { wakeWriterThread() }
        while true {
            request.event!.wait()
            if let next = request.nextToWake {
                request.nextToWake = nil
                next.event!.set()
            }
            lock.lock()
            if let result = request.result {
                // Every wake-up of this request has been consumed: nobody sets its event again.
                recycle(request.event!)
                lock.unlock()
                return try result.get()
            }
            lock.unlock()
        }
    }

    /// The uncontended case of `submit` (called with `lock` held, returns without it): nobody
    /// leads or waits, so the caller writes its own batch without queueing — the same steps as
    /// `lead` for a batch of one request, without its bookkeeping. Appenders that arrive
    /// meanwhile queue up and are handed leadership afterwards.
    func writeAlone(_ items: [BatchItem], sync: Bool) throws(LogError) -> [UInt64] {
        writerActive = true
        lock.unlock()
        let outcome: Result<[Placement], LogError>
        do throws(LogError) { outcome = .success(try writeBatch(items, sync: sync)) } catch { outcome = .failure(error) }
        lock.lock()
        mergeWriterStatistics()
        switch outcome {
        case let .success(placements):
            applyToIndex(items, placements[...])
            statistics.batches += 1
        case let .failure(error):
            if failure == nil, case let .io(ioError) = error { failure = .failed(ioError) }
        }
        var detached: [UInt64] = []
        if failure == nil && !isClosed && maintenanceDue() {
            lock.unlock()
            detached = maintain()
            lock.lock()
        }
        passLeadership()
        removeDetachedInBackground(detached)
        return try outcome.get().map(\.lsn)
    }

    /// Returns an event to the pool (under `lock`).
    func recycle(_ event: Event) {
        if eventPool.count < 64 { eventPool.append(event) }
    }

    /// Appends from async code: the same as `append(_:)`, but the caller is suspended instead
    /// of blocking a thread; the writer thread leads.
    @discardableResult
    public func appendAsync(_ records: [LogRecord], sync: Bool = true) async throws(LogError) -> [UInt64] {
        let (items, bytes) = try prepare(records)
        if items.isEmpty { return [] }
        let result = await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<[UInt64], LogError>, Never>) in
            let request = PendingAppend(items: items, bytes: bytes, event: nil)
            request.sync = sync
            request.continuation = continuation
            lock.lock()
            if isClosed || isClosing || failure != nil {
                let error = failure ?? .closed
                lock.unlock()
                continuation.resume(returning: .failure(error))
                return
            }
            if overflow.isEmpty && (pendingBytes == 0 || pendingBytes + bytes <= options.queueBytesMax) {
                pending.append(request)
                pendingBytes += bytes
            } else {
                overflow.append(request)
            }
            let needsWriter = !writerActive
            if needsWriter { writerActive = true }
            lock.unlock()
            if needsWriter { wakeWriterThread() }
        }
        return try result.get()
    }

    /// Starts (once) and wakes the thread that leads for async appenders.
    func wakeWriterThread() {
        let start = lock.withLock { () -> Bool in
            defer { writerThreadStarted = true }
            return !writerThreadStarted
        }
        if start {
            startDetachedThread { [self] in
                while true {
                    writerThreadEvent.wait()
                    if lock.withLock({ isClosed && !writerActive }) { return }
                    lead()
                }
            }
        }
        writerThreadEvent.set()
    }

    /// Moves async appends from `overflow` into the queue while there is room (under `lock`).
    func admitOverflow() {
        while let next = overflow.first, pendingBytes == 0 || pendingBytes + next.bytes <= options.queueBytesMax {
            overflow.removeFirst()
            pending.append(next)
            pendingBytes += next.bytes
        }
    }

    /// Runs batches as leader (on the writer thread) while appends keep arriving, then marks the
    /// writer idle. Called without `lock`.
    ///
    /// The waiters of a finished batch are woken while the next batch is being synced, so their
    /// wake-ups overlap the disk. Between two batches the leader takes `lock` once (publish the
    /// finished batch and take the next), because on a small machine a contended lock whose
    /// holder is preempted stalls the disk pipeline.
    func lead() {
        var finished: [PendingAppend] = []
        var detached: [UInt64] = []
        lock.lock()
        var (batch, batchBytes) = takeBatch()
        while !batch.isEmpty {
            let stoppedBy = failure ?? (isClosed ? LogError.closed : nil)
            lock.unlock()

            let outcome: Result<[Placement], LogError>
            if let stoppedBy {
                outcome = .failure(stoppedBy)
            } else {
                let items = batch.count == 1 ? batch[0].items : batch.flatMap { $0.items }
                let sync = batch.contains { $0.sync }
                do throws(LogError) {
                    outcome = .success(try writeBatch(items, sync: sync, beforeSync: { wake(finished); finished = [] }))
                } catch {
                    outcome = .failure(error)
                }
            }
            wake(finished)
            finished = []

            lock.lock()
            publish(outcome, of: batch)
            pendingBytes -= batchBytes
            admitOverflow()
            lock.broadcast()
            finished = batch
            if failure == nil && !isClosed && maintenanceDue() {
                lock.unlock()
                // The batch is durable and published: do not make its callers wait for maintenance.
                wake(finished)
                finished = []
                detached += maintain()
                lock.lock()
            }
            (batch, batchBytes) = takeBatch()
        }
        // Still holding `lock`: pass leadership on, then wake outside the lock.
        passLeadership(afterUnlock: { wake(finished) })
        removeDetachedInBackground(detached)
    }

    /// Called with `lock` held by the writer that is done: marks the writer idle if nothing is
    /// queued; releases `lock`; runs `afterUnlock`; then wakes the writer thread if something is.
    func passLeadership(afterUnlock: () -> Void = {}) {
        let next = pending.first
        if next == nil {
            writerActive = false
            lock.broadcast()
        }
        lock.unlock()
        afterUnlock()
        if next != nil { wakeWriterThread() }
    }

    /// Takes queued appends for one batch (under `lock`).
    func takeBatch() -> ([PendingAppend], Int) {
        var batch: [PendingAppend] = []
        var bytes = 0
        for request in pending {
            if !batch.isEmpty && bytes + request.bytes > options.batchBytesMax { break }
            batch.append(request)
            bytes += request.bytes
        }
        pending.removeFirst(batch.count)
        return (batch, bytes)
    }

    /// Adds the leader's counters of the batch just written to `statistics` (under `lock`).
    func mergeWriterStatistics() {
        statistics.syncs += writerStatistics.syncs
        statistics.bytesWritten += writerStatistics.bytesWritten
        statistics.writeNanoseconds += writerStatistics.writeNanoseconds
        statistics.syncNanoseconds += writerStatistics.syncNanoseconds
        statistics.syncLatency.merge(writerStatistics.syncLatency)
        writerStatistics = LogStatistics()
    }

    /// Records a batch's outcome in the index and in its requests (under `lock`).
    func publish(_ outcome: Result<[Placement], LogError>, of batch: [PendingAppend]) {
        mergeWriterStatistics()
        switch outcome {
        case let .success(placements):
            var cursor = 0
            for request in batch {
                let count = request.items.count
                applyToIndex(request.items, placements[cursor..<(cursor + count)])
                request.result = .success(placements[cursor..<(cursor + count)].map(\.lsn))
                cursor += count
            }
            statistics.batches += 1
        case let .failure(error):
            if failure == nil, case let .io(ioError) = error { failure = .failed(ioError) }
            for request in batch { request.result = .failure(error) }
        }
    }

    /// Whether `maintain` has anything to do (under `lock`): a segment without live records, or
    /// too many segments.
    func maintenanceDue() -> Bool {
        if deadSegmentPossible { return true }
        return segments.count > options.segmentCountMax && relocationCandidate() != nil
    }

    /// Hands queued appends to the writer thread, or marks the writer idle.
    func handOver() {
        lock.lock()
        passLeadership()
    }


    /// Wakes the callers of a finished batch. A few are woken at once (a lone appender must not
    /// pay a thread hand-off); a larger batch is handed to the completion thread with one
    /// wake-up, so that the leader goes on to sync the next batch while the callers are woken.
    func wake(_ requests: [PendingAppend]) {
        if requests.isEmpty { return }
        if requests.count <= Self.inlineWakeMax {
            Self.wakeNow(requests)
            return
        }
        // Enqueue only while the completion thread will still drain the queue; once `close`
        // has stopped it, wake the callers here. (Both decided under `completionLock`.)
        let (queued, start) = completionLock.withLock { () -> (Bool, Bool) in
            if completionThreadStopping { return (false, false) }
            completionQueue.append(requests)
            completionLock.signal()
            defer { completionThreadStarted = true }
            return (true, !completionThreadStarted)
        }
        if !queued {
            Self.wakeNow(requests)
            return
        }
        if start {
            startDetachedThread { [self] in
                while true {
                    completionLock.lock()
                    while completionQueue.isEmpty && !completionThreadStopping { completionLock.wait() }
                    let lists = completionQueue
                    completionQueue.removeAll()
                    let stop = completionThreadStopping && lists.isEmpty
                    completionLock.unlock()
                    if stop { return }
                    for list in lists { Self.wakeNow(list) }
                }
            }
        }
    }

    /// Batches of at most this many finished callers are woken by the leader itself.
    static let inlineWakeMax = 4

    /// Wakes the callers of finished requests: async ones by resuming them, blocked threads
    /// as a chain (each woken thread wakes the next).
    static func wakeNow(_ requests: [PendingAppend]) {
        var threads: [PendingAppend] = []
        for request in requests {
            if let continuation = request.continuation {
                request.continuation = nil
                continuation.resume(returning: request.result ?? .failure(.closed))
            } else {
                threads.append(request)
            }
        }
        guard let first = threads.first else { return }
        for (request, next) in zip(threads, threads.dropFirst()) { request.nextToWake = next }
        first.event!.set()
    }

    // MARK: Writing (leader only)

    /// Encodes and writes `items` (and, when `sync`, makes them and everything before them
    /// durable), rotating segments as needed. `beforeSync` runs once, after the final write and
    /// before its sync.
    func writeBatch(_ items: [BatchItem], sync: Bool = true, beforeSync: () -> Void = {}) throws(LogError) -> [Placement] {
        // The leader's buffer is reused, unless a large batch left it big.
        var buffer = writeBuffer
        writeBuffer = []
        defer {
            buffer.removeAll(keepingCapacity: buffer.capacity <= Self.writeBufferKeptMax)
            writeBuffer = buffer
        }
        buffer.reserveCapacity(items.reduce(0) { $0 + $1.encodedBytes })
        var placements: [Placement] = []
        placements.reserveCapacity(items.count)
        refreshSyncedSize()
        for item in items {
            let size = item.encodedBytes
            // Room is kept for the seal that closes the segment.
            if active.size + buffer.count + size + LogFormat.recordHeaderBytes > options.segmentBytesMax
                && active.size + buffer.count > active.contentStart {
                try rotate(flushing: &buffer, sync: sync)
            }
            let offset = active.size + buffer.count
            let synced = UInt32(active.syncedSize)
            let lsn: UInt64
            switch item {
            case let .record(stream, kind, flags, payloadLength, stored):
                lsn = nextLSN
                nextLSN += 1
                encode(stream: stream, lsn: lsn, synced: synced, kind: kind, flags: flags, payloadLength: payloadLength, stored: stored, into: &buffer)
            case let .relocated(stream, originalLSN, kind, flags, payloadLength, stored):
                lsn = originalLSN
                encode(stream: stream, lsn: lsn, synced: synced, kind: kind, flags: flags.union(.relocated), payloadLength: payloadLength, stored: stored, into: &buffer)
            case let .truncatePrefix(stream, requested):
                lsn = nextLSN
                nextLSN += 1
                // A bound beyond the marker itself would also kill records appended later.
                let bound = min(requested, lsn)
                encodeMarker(.truncatePrefix, stream: stream, bound: bound, lsn: lsn, synced: synced, into: &buffer)
                truncation.streams[stream, default: StreamTruncation()].raisePrefix(to: bound)
            case let .truncateSuffix(stream, from):
                lsn = nextLSN
                nextLSN += 1
                encodeMarker(.truncateSuffix, stream: stream, bound: from, lsn: lsn, synced: synced, into: &buffer)
                if from < lsn { truncation.streams[stream, default: StreamTruncation()].addDeadRange(from..<lsn) }
            }
            placements.append(Placement(lsn: lsn, segment: active.number, offset: UInt32(offset)))
        }
        try flush(&buffer, sync: sync, beforeSync: beforeSync)
        return placements
    }

    /// Takes in what `syncWritten` made durable of the active segment (leader only).
    func refreshSyncedSize() {
        let durable = lock.withLock { durableMark }
        if durable.segment == active.number && durable.size > active.syncedSize { active.syncedSize = durable.size }
    }

    func encode(stream: UInt64, lsn: UInt64, synced: UInt32, kind: RecordKind, flags: RecordFlags,
                payloadLength: UInt32, stored: [UInt8], into buffer: inout [UInt8]) {
        stored.withUnsafeBytes { raw in
            RecordHeader.encode(stream: stream, lsn: lsn, syncedOffset: synced, kind: kind, flags: flags,
                                payloadLength: payloadLength, storedPayload: raw, into: &buffer)
        }
    }

    func encodeMarker(_ kind: RecordKind, stream: UInt64, bound: UInt64, lsn: UInt64, synced: UInt32, into buffer: inout [UInt8]) {
        var payload = ByteWriter(capacity: 8)
        payload.write(bound)
        encode(stream: stream, lsn: lsn, synced: synced, kind: kind, flags: [], payloadLength: 8, stored: payload.bytes, into: &buffer)
    }

    /// Writes the buffer at the end of the active segment and, when `sync`, makes the whole
    /// segment durable.
    func flush(_ buffer: inout [UInt8], sync: Bool = true, beforeSync: () -> Void = {}) throws(LogError) {
        guard !buffer.isEmpty || (sync && active.syncedSize < active.size) else {
            beforeSync()
            return
        }
        let started = sync ? MonotonicClock.nanoseconds() : 0
        var written: UInt64 = 0
        do throws(FileIOError) {
            if !buffer.isEmpty { try active.handle.write(at: UInt64(active.size), buffer) }
        } catch {
            throw .io(error)
        }
        if sync { written = MonotonicClock.nanoseconds() }
        beforeSync()
        if sync {
            // Older segments sealed by unsynced batches first: a synced record proves every
            // segment before it durable (Format/log.md §7.4).
            let (numbers, sealed) = lock.withLock { (unsyncedSealed, unsyncedSealed.compactMap { segments[$0]?.handle ?? removing[$0] }) }
            let handle = active.handle
            try trackedSync { () throws(FileIOError) in
                for sealedHandle in sealed { try sealedHandle.dataSync() }
                try handle.dataSync()
            }
            if !numbers.isEmpty { lock.withLock { unsyncedSealed.removeAll { numbers.contains($0) } } }
        }
        active.size += buffer.count
        guard sync else {
            lock.withLock { writtenMark = (active.number, active.size, active.handle) }
            writerStatistics.bytesWritten += UInt64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
            return
        }
        let synced = MonotonicClock.nanoseconds()
        active.syncedSize = active.size
        lock.withLock {
            writtenMark = (active.number, active.size, active.handle)
            raiseDurableMark(to: (active.number, active.size))
        }
        writerStatistics.syncs += 1
        writerStatistics.bytesWritten += UInt64(buffer.count)
        writerStatistics.writeNanoseconds += written - started
        writerStatistics.syncNanoseconds += synced - written
        writerStatistics.syncLatency.record(nanoseconds: synced - written)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Seals the active segment (the buffer first) and starts the next one. Within a synced
    /// batch the sealed segment is synced first; within an unsynced one it is left to the next
    /// sync, and the new segment says so in its header (Format/log.md §7.4) — so an unsynced
    /// writer never waits for a whole segment's worth of writeback.
    func rotate(flushing buffer: inout [UInt8], sync: Bool = true) throws(LogError) {
        let lsn = nextLSN
        nextLSN += 1
        encode(stream: 0, lsn: lsn, synced: UInt32(active.syncedSize), kind: .seal, flags: [], payloadLength: 0, stored: [], into: &buffer)
        try flush(&buffer, sync: sync)
        refreshSyncedSize()
        let sealedUnsynced = lock.withLock { () -> Bool in
            if active.syncedSize < active.size { unsyncedSealed.append(active.number) }
            return !unsyncedSealed.isEmpty
        }
        let number = active.number + 1
        let prepared = try takePreparedFile()
        let (handle, size) = try Self.createSegment(
            number: number, logID: logID, firstLSN: nextLSN, truncation: truncation,
            directory: directory, fileSystem: fileSystem, createdUnixNanos: options.creationTimeOverride,
            flags: sealedUnsynced ? .predecessorUnsynced : [], prepared: prepared)
        startPreparing()
        nextLSN += 1  // the checkpoint
        active = ActiveSegment(number: number, handle: handle, size: size, syncedSize: size, contentStart: size)
        lock.withLock {
            writtenMark = (number, size, handle)
            raiseDurableMark(to: (number, size))
            segments[number] = SegmentState(handle: handle)
            statistics.segmentsCreated += 1
            if prepared != nil { statistics.segmentsPrepared += 1 }
            // The sealed segment may hold nothing live (only markers, or all truncated): now
            // that it is no longer active, it can be deleted.
            deadSegmentPossible = true
        }
    }

    /// Creates a segment holding its header and a checkpoint, durably (file and directory).
    /// With a `prepared` file (zero-filled and synced, under `LogFormat.preparedFileName`), the
    /// header and checkpoint overwrite its start and are synced before the file is renamed to
    /// the segment's name: a segment never exists by its name without them.
    static func createSegment(
        number: UInt64, logID: UInt64, firstLSN: UInt64, truncation: TruncationState,
        directory: String, fileSystem: any FileSystem, createdUnixNanos: UInt64?, flags: SegmentHeaderFlags = [],
        prepared: (any FileHandle)? = nil
    ) throws(LogError) -> (any FileHandle, Int) {
        var writer = ByteWriter(capacity: 256)
        // Only a prepared segment can end in a zero-filled tail, so only it needs version 2; a
        // segment created empty is a version 1 file, which version 1 readers read too.
        SegmentHeader(logID: logID, segmentNumber: number, firstLSN: firstLSN,
                      createdUnixNanos: createdUnixNanos ?? WallClock.unixNanoseconds(), flags: flags,
                      version: prepared == nil ? LogFormat.versionMin : LogFormat.zeroFilledTailVersion)
            .encode(into: &writer)
        var bytes = writer.finish()
        let checkpoint = truncation.encode()
        checkpoint.withUnsafeBytes { raw in
            RecordHeader.encode(stream: 0, lsn: firstLSN, syncedOffset: 0, kind: .checkpoint, flags: [],
                                payloadLength: UInt32(checkpoint.count), storedPayload: raw, into: &bytes)
        }
        let path = joinPath(directory, LogFormat.segmentFileName(number))
        if let prepared {
            do throws(FileIOError) {
                try prepared.write(at: 0, bytes)
                try prepared.dataSync()
                try fileSystem.rename(joinPath(directory, LogFormat.preparedFileName), to: path)
                try fileSystem.syncDirectory(directory)
                return (prepared, bytes.count)
            } catch {
                prepared.close()
                throw .io(error)
            }
        }
        do throws(FileIOError) {
            let handle = try fileSystem.open(path, options: .createNew)
            try handle.write(at: 0, bytes)
            try handle.dataSync()
            try fileSystem.syncDirectory(directory)
            return (handle, bytes.count)
        } catch {
            throw .io(error)
        }
    }

    // MARK: Prepared segments

    /// Creates `LogFormat.preparedFileName` afresh, zero-filled to `bytes` and synced. Stops
    /// early (returning nil, the file removed) when `shouldStop` says so between chunks.
    static func prepareSegmentFile(directory: String, fileSystem: any FileSystem, bytes: Int,
                                   shouldStop: () -> Bool = { false }) throws(FileIOError) -> (any FileHandle)? {
        let path = joinPath(directory, LogFormat.preparedFileName)
        let handle = try fileSystem.open(path, options: [.read, .write, .create, .truncate])
        do throws(FileIOError) {
            let zeros = [UInt8](repeating: 0, count: min(bytes, RecordLogOptions.preparationChunkBytes))
            var offset = 0
            while offset < bytes {
                if shouldStop() {
                    handle.close()
                    try? fileSystem.remove(path)
                    return nil
                }
                let count = min(zeros.count, bytes - offset)
                try handle.write(at: UInt64(offset), count == zeros.count ? zeros : Array(zeros[..<count]))
                offset += count
            }
            try handle.dataSync()
            return handle
        } catch {
            handle.close()
            try? fileSystem.remove(path)
            throw error
        }
    }

    /// The prepared file for the segment a rotation is about to create (leader only): made now
    /// with `.inline`; with `.background`, the one the preparing thread finished, or nil (the
    /// segment is created empty) if it is not ready — a rotation never waits for it.
    func takePreparedFile() throws(LogError) -> (any FileHandle)? {
        switch options.segmentPreparation {
        case .none:
            return nil
        case .inline:
            do throws(FileIOError) {
                return try Self.prepareSegmentFile(directory: directory, fileSystem: fileSystem, bytes: options.segmentBytesMax)
            } catch {
                throw .io(error)
            }
        case .background:
            return lock.withLock {
                defer { preparedFile = nil }
                return isPreparing ? nil : preparedFile
            }
        }
    }

    /// With `.background`, starts a thread that prepares the next segment's file unless one is
    /// ready or being prepared. A failure to prepare is not a log failure: nothing written to
    /// the log depends on it, and the next rotation creates its segment empty.
    func startPreparing() {
        guard options.segmentPreparation == .background else { return }
        let start = lock.withLock { () -> Bool in
            if isPreparing || preparedFile != nil || isClosing || isClosed { return false }
            isPreparing = true
            return true
        }
        guard start else { return }
        startDetachedThread { [self] in
            let handle = try? Self.prepareSegmentFile(directory: directory, fileSystem: fileSystem, bytes: options.segmentBytesMax,
                                                      shouldStop: { lock.withLock { isClosing || isClosed } })
            lock.withLock {
                if let handle {
                    if isClosing || isClosed {
                        handle.close()
                        try? fileSystem.remove(joinPath(directory, LogFormat.preparedFileName))
                    } else {
                        preparedFile = handle
                    }
                }
                isPreparing = false
                lock.broadcast()
            }
        }
    }

    // MARK: Index (under `lock`)

    func applyToIndex(_ items: [BatchItem], _ placements: ArraySlice<Placement>) {
        for (item, placement) in zip(items, placements) {
            switch item {
            case let .record(stream, _, _, _, stored):
                index[stream, default: []].append(RecordLocation(
                    lsn: placement.lsn, segment: placement.segment, offset: placement.offset, storedLength: UInt32(stored.count)))
                adjustLive(placement.segment, records: 1, bytes: LogFormat.recordHeaderBytes + stored.count)
                statistics.appendedRecords += 1
            case let .relocated(stream, lsn, _, _, _, stored):
                guard var locations = index[stream], let position = Self.position(of: lsn, in: locations),
                      locations[position].lsn == lsn else { continue }
                let old = locations[position]
                adjustLive(old.segment, records: -1, bytes: -(LogFormat.recordHeaderBytes + Int(old.storedLength)))
                locations[position] = RecordLocation(lsn: lsn, segment: placement.segment, offset: placement.offset, storedLength: UInt32(stored.count))
                index[stream] = locations
                adjustLive(placement.segment, records: 1, bytes: LogFormat.recordHeaderBytes + stored.count)
                statistics.relocatedRecords += 1
            case let .truncatePrefix(stream, bound):
                guard var locations = index[stream] else { continue }
                let cut = Self.position(of: bound, in: locations) ?? locations.count
                for location in locations[..<cut] {
                    adjustLive(location.segment, records: -1, bytes: -(LogFormat.recordHeaderBytes + Int(location.storedLength)))
                }
                locations.removeFirst(cut)
                index[stream] = locations.isEmpty ? nil : locations
            case let .truncateSuffix(stream, from):
                guard var locations = index[stream] else { continue }
                let cut = Self.position(of: from, in: locations) ?? locations.count
                for location in locations[cut...] {
                    adjustLive(location.segment, records: -1, bytes: -(LogFormat.recordHeaderBytes + Int(location.storedLength)))
                }
                locations.removeSubrange(cut...)
                index[stream] = locations.isEmpty ? nil : locations
            }
        }
    }

    func adjustLive(_ segment: UInt64, records: Int, bytes: Int) {
        guard let state = segments[segment] else { return }
        state.liveRecords += records
        state.liveBytes += bytes
        if state.liveRecords == 0 { deadSegmentPossible = true }
        statistics.liveRecords += records
        statistics.liveBytes += bytes
    }

    /// Index of the first location with an LSN ≥ `lsn`, or nil if there is none.
    static func position(of lsn: UInt64, in locations: [RecordLocation]) -> Int? {
        var low = 0, high = locations.count
        while low < high {
            let mid = (low + high) / 2
            if locations[mid].lsn < lsn { low = mid + 1 } else { high = mid }
        }
        return low < locations.count ? low : nil
    }

    // MARK: Maintenance (leader only)

    /// Detaches segments without live records and relocates the oldest one when there are too
    /// many. Returns the detached segments, whose files the caller removes with `removeDetached`
    /// after handing leadership over (unlinking a large file frees its page cache, which takes
    /// long enough to stall the appenders). Errors stop the log like any other write error.
    func maintain() -> [UInt64] {
        var detached = detachDeadSegments()
        do throws(LogError) {
            var rounds = 0
            while rounds < 2, let sparsest = lock.withLock({ () -> UInt64? in
                segments.count > options.segmentCountMax ? relocationCandidate() : nil
            }) {
                try relocate(segment: sparsest)
                detached += detachDeadSegments()
                rounds += 1
            }
        } catch {
            lock.withLock {
                if failure == nil {
                    switch error {
                    case let .io(ioError): failure = .failed(ioError)
                    default: failure = error
                    }
                }
            }
        }
        return detached
    }

    /// The segment to relocate (under `lock`): the one with the least live data, oldest first
    /// among equals — and only if at most half a segment is live, so that relocation never
    /// rewrites more than it frees. When every segment is more than half live, disk use is
    /// already under about twice the live data and nothing is moved.
    func relocationCandidate() -> UInt64? {
        var best: (key: UInt64, liveBytes: Int)?
        for (number, state) in segments where number != active.number {
            if best == nil || (state.liveBytes, number) < (best!.liveBytes, best!.key) { best = (number, state.liveBytes) }
        }
        guard let best, best.liveBytes <= options.segmentBytesMax / 2 else { return nil }
        return best.key
    }

    /// Moves the segments without live records from `segments` to `removing` (leader only).
    func detachDeadSegments() -> [UInt64] {
        lock.withLock {
            deadSegmentPossible = false
            let numbers = segments.filter { $0.key != active.number && $0.value.liveRecords == 0 }.keys.sorted()
            for number in numbers {
                removing[number] = segments[number]!.handle
                segments[number] = nil
            }
            return numbers
        }
    }

    /// `removeDetached`, on a thread of its own when `removesFilesInBackground`, so that an
    /// appender that happened to lead does not pay for it; `close` waits for it.
    func removeDetachedInBackground(_ numbers: [UInt64]) {
        guard !numbers.isEmpty else { return }
        guard options.removesFilesInBackground else { return removeDetached(numbers) }
        startDetachedThread { [self] in removeDetached(numbers) }
    }

    /// Removes detached segments' files and syncs the directory (any thread, no leadership);
    /// an error stops the log like any other write error.
    func removeDetached(_ numbers: [UInt64]) {
        guard !numbers.isEmpty else { return }
        var outcome: FileIOError?
        do throws(FileIOError) {
            for number in numbers { try fileSystem.remove(joinPath(directory, LogFormat.segmentFileName(number))) }
            try fileSystem.syncDirectory(directory)
        } catch {
            outcome = error
        }
        lock.withLock {
            if let outcome {
                if failure == nil { failure = .failed(outcome) }
            } else {
                statistics.segmentsDeleted += UInt64(numbers.count)
            }
            for number in numbers { removing[number] = nil }
            lock.broadcast()
        }
    }

    /// Rewrites the live records of `segment` at the head of the log (same LSNs).
    func relocate(segment number: UInt64) throws(LogError) {
        let (handle, live): ((any FileHandle)?, [(UInt64, RecordLocation)]) = lock.withLock {
            var live: [(UInt64, RecordLocation)] = []
            for (stream, locations) in index {
                for location in locations where location.segment == number { live.append((stream, location)) }
            }
            live.sort { $0.1.lsn < $1.1.lsn }
            return (segments[number]?.handle, live)
        }
        guard let handle, !live.isEmpty else { return }
        var items: [BatchItem] = []
        for (stream, location) in live {
            let raw = try readRaw(handle: handle, segment: number, location: location)
            items.append(.relocated(stream: stream, lsn: location.lsn, kind: raw.header.kind, flags: raw.header.flags,
                                    payloadLength: raw.header.payloadLength, stored: raw.stored))
        }
        // Relocation batches are bounded like appends.
        var start = 0
        while start < items.count {
            var end = start
            var bytes = 0
            while end < items.count && (end == start || bytes + items[end].encodedBytes <= options.batchBytesMax) {
                bytes += items[end].encodedBytes
                end += 1
            }
            let slice = Array(items[start..<end])
            let placements = try writeBatch(slice)
            lock.withLock { applyToIndex(slice, placements[...]) }
            start = end
        }
    }

    // MARK: Reading

    /// The live records of `stream` with LSN ≥ `lsn`, at most `limit` of them, in LSN order.
    public func read(stream: UInt64, from lsn: UInt64 = 0, limit: Int = .max) throws(LogError) -> [StoredRecord] {
        let (found, handles): ([RecordLocation], [UInt64: any FileHandle]) = try lock.withLock { () throws(LogError) in
            if isClosed { throw .closed }
            guard let locations = index[stream], let start = Self.position(of: lsn, in: locations) else { return ([], [:]) }
            let end = limit >= locations.count - start ? locations.count : start + limit
            let slice = Array(locations[start..<end])
            var handles: [UInt64: any FileHandle] = [:]
            for location in slice where handles[location.segment] == nil { handles[location.segment] = segments[location.segment]?.handle }
            return (slice, handles)
        }
        var records: [StoredRecord] = []
        records.reserveCapacity(found.count)
        for location in found {
            guard let handle = handles[location.segment] else {
                throw .corruption(segment: LogFormat.segmentFileName(location.segment), DecodeError(field: "segment", offset: 0, reason: .invalid("segment missing")))
            }
            let raw = try readRaw(handle: handle, segment: location.segment, location: location)
            guard raw.header.stream == stream, raw.header.lsn == location.lsn else {
                throw .corruption(segment: LogFormat.segmentFileName(location.segment),
                                  DecodeError(field: "record", offset: UInt64(location.offset), reason: .invalid("record is not stream \(stream) LSN \(location.lsn)")))
            }
            var payload = raw.stored
            if raw.header.flags.contains(.lz4) {
                do throws(CompressionError) {
                    payload = try LZ4.decompress(raw.stored, decompressedSize: Int(raw.header.payloadLength), limit: RecordLogOptions.recordPayloadBytesMaxLimit)
                } catch {
                    throw .corruption(segment: LogFormat.segmentFileName(location.segment),
                                      DecodeError(field: "payload", offset: UInt64(location.offset) + 40, reason: .invalid(error.description)))
                }
            }
            records.append(StoredRecord(lsn: location.lsn, stream: stream, kind: raw.header.kind.rawValue, payload: payload))
        }
        return records
    }

    /// Reads one record's header and stored payload from disk, verifying its checksum.
    func readRaw(handle: any FileHandle, segment: UInt64, location: RecordLocation) throws(LogError) -> (header: RecordHeader, stored: [UInt8]) {
        let total = LogFormat.recordHeaderBytes + Int(location.storedLength)
        let bytes: [UInt8]
        do throws(FileIOError) {
            bytes = try handle.read(at: UInt64(location.offset), count: total)
        } catch {
            throw .io(error)
        }
        let header: RecordHeader
        do throws(DecodeError) {
            header = try RecordHeader.decode(bytes, at: 0, end: bytes.count, payloadBytesMax: RecordLogOptions.recordPayloadBytesMaxLimit)
        } catch {
            var located = error
            located.offset += UInt64(location.offset)
            throw .corruption(segment: LogFormat.segmentFileName(segment), located)
        }
        return (header, Array(bytes[LogFormat.recordHeaderBytes...]))
    }

    /// Streams that have live records, ascending.
    public func streams() -> [UInt64] {
        lock.withLock { index.keys.sorted() }
    }

    /// LSNs of the first and last live record of `stream`, or nil if it has none.
    public func bounds(of stream: UInt64) -> ClosedRange<UInt64>? {
        lock.withLock {
            guard let locations = index[stream], let first = locations.first, let last = locations.last else { return nil }
            return first.lsn...last.lsn
        }
    }

    public var stats: LogStatistics {
        lock.withLock {
            var s = statistics
            s.segmentCount = segments.count
            return s
        }
    }

    /// The size on disk of the log's segment files and their number: one `fstat` per segment,
    /// under `lock` so that no segment's file is closed meanwhile. Zero once closed.
    public var diskUsage: (bytes: UInt64, segments: Int) {
        lock.withLock {
            guard !isClosed else { return (0, 0) }
            var bytes: UInt64 = 0
            for state in segments.values {
                do throws(FileIOError) { bytes += try state.handle.size() } catch { continue }
            }
            return (bytes, segments.count)
        }
    }

    /// Segment file names currently part of the log, oldest first.
    public var segmentFiles: [String] {
        lock.withLock { segments.keys.sorted().map(LogFormat.segmentFileName) }
    }

    /// Relocates and deletes segments until at most `segmentCountMax` remain (normally done
    /// after each batch; exposed for tools and tests).
    public func compact() throws(LogError) {
        try submitMaintenance()
    }

    /// Starts a new segment when the active one holds nothing live, then deletes every segment
    /// with nothing live — so that a log whose records were all truncated (a WAL after its
    /// memtables were flushed) gives its space back.
    public func releaseDeadSpace() throws(LogError) {
        lock.lock()
        while writerActive && !isClosed && !isClosing { lock.wait() }
        if isClosed || isClosing { lock.unlock(); throw .closed }
        if let failure { lock.unlock(); throw failure }
        writerActive = true
        let idle = (segments[active.number]?.liveRecords ?? 0) == 0 && active.size > active.contentStart
        lock.unlock()
        if idle {
            var buffer: [UInt8] = []
            do throws(LogError) { try rotate(flushing: &buffer) } catch {
                lock.withLock { if failure == nil, case let .io(ioError) = error { failure = .failed(ioError) } }
            }
        }
        let detached = lock.withLock({ failure == nil }) ? maintain() : []
        handOver()
        removeDetached(detached)
        if let failure = lock.withLock({ self.failure }) { throw failure }
    }

    func submitMaintenance() throws(LogError) {
        // Become the writer without a batch, run maintenance, hand over.
        lock.lock()
        while writerActive && !isClosed && !isClosing { lock.wait() }
        if isClosed || isClosing { lock.unlock(); throw .closed }
        if let failure { lock.unlock(); throw failure }
        writerActive = true
        lock.unlock()
        let detached = maintain()
        handOver()
        removeDetached(detached)
        if let failure = lock.withLock({ self.failure }) { throw failure }
    }

    /// Waits for queued appends, then closes. Later calls fail with `.closed`.
    public func close() {
        lock.lock()
        // Refuse new work first, so that appenders in a loop cannot keep the log busy forever;
        // then wait for what is queued.
        isClosing = true
        lock.broadcast()
        while writerActive || !pending.isEmpty || !overflow.isEmpty || !removing.isEmpty || isPreparing { lock.wait() }
        isClosed = true
        if let preparedFile {
            preparedFile.close()
            try? fileSystem.remove(joinPath(directory, LogFormat.preparedFileName))
            self.preparedFile = nil
        }
        if durableMark.segment == active.number && durableMark.size > active.syncedSize { active.syncedSize = durableMark.size }
        // Unsynced appends become durable on a clean close (no leader runs any more).
        if failure == nil && (active.syncedSize < active.size || !unsyncedSealed.isEmpty) {
            // Sealed segments first (Format/log.md §7.4).
            let sealedSynced = unsyncedSealed.allSatisfy { number in
                segments[number].map { (try? $0.handle.dataSync()) != nil } ?? true
            }
            if sealedSynced { unsyncedSealed.removeAll() }
            if sealedSynced, (try? active.handle.dataSync()) != nil { active.syncedSize = active.size }
        }
        let handles = segments.values.map(\.handle)
        let stopWriterThread = writerThreadStarted
        lock.broadcast()
        lock.unlock()
        if stopWriterThread { writerThreadEvent.set() }
        completionLock.withLock {
            completionThreadStopping = true
            completionLock.signal()
        }
        for handle in handles { handle.close() }
        directoryLock.unlock()
    }
}
