// Unsynced appends (`append(_:sync: false)`): written but not synced. After a crash the records
// that survive must be a prefix of everything appended, and must include every record up to the
// last synced append. A failing round prints its seed.

import TestSupport
import Basics
import Checksum
import FileIO
import FileIOSim
@testable import RecordLog
import Testing
import Wire

@Suite(.ownThread) struct UnsyncedAppendTests {
    /// One seeded round: appends of random payloads (every `syncOneIn`-th synced, and with
    /// `explicitSyncOneIn` a `sync()` now and then), a crash clone, recovery. Checks that the
    /// survivors are a prefix holding every synced record and that a second open finds the same
    /// state. Returns whether recovery tore a segment older than the newest (§7.4).
    func crashRound(seed: UInt64, appends: ClosedRange<Int>, payloadBytesMax: Int, syncOneIn: Int,
                    explicitSyncOneIn: Int?, crash: CrashOptions, syncWritten: Bool = false) throws -> Bool {
        var random = SeededRandom(seed: seed)
        let fileSystem = MemoryFileSystem()
        var options = RecordLogOptions()
        options.segmentBytesMax = 4096
        options.recordPayloadBytesMax = 1024
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fileSystem, options: options)
        var appended: [[UInt8]] = []
        var durableCount = 0
        for _ in 0..<Int.random(in: appends, using: &random) {
            let payload = (0..<Int.random(in: 0..<payloadBytesMax, using: &random)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let sync = Int.random(in: 0..<syncOneIn, using: &random) == 0
            try log.append(LogRecord(stream: 7, kind: 1, payload: payload), sync: sync)
            appended.append(payload)
            if sync { durableCount = appended.count }
            if let explicitSyncOneIn, Int.random(in: 0..<explicitSyncOneIn, using: &random) == 0 {
                if syncWritten { try log.syncWritten() } else { try log.sync() }
                durableCount = appended.count
            }
        }
        let crashed = fileSystem.crashClone(seed: seed, options: crash)
        log.close()
        let (recovered, report) = try RecordLog.open(directory: "/log", fileSystem: crashed, options: options)
        let payloads = try recovered.read(stream: 7).map(\.payload)
        recovered.close()
        #expect(payloads.count >= durableCount, "seed \(seed): \(payloads.count) records survived, \(durableCount) were synced")
        #expect(payloads == Array(appended.prefix(payloads.count)), "seed \(seed): survivors are not a prefix of the appends")
        let (again, againReport) = try RecordLog.open(directory: "/log", fileSystem: crashed, options: options)
        #expect(try again.read(stream: 7).map(\.payload) == payloads, "seed \(seed): a second open differs")
        #expect(againReport.tornTails.isEmpty, "seed \(seed): a second open found torn tails")
        again.close()
        return report.tornTails.contains { tail in report.segmentsRemoved.contains { $0 > tail.segment } }
    }

    @Test func survivorsArePrefixIncludingEverySyncedRecord() throws {
        for round in 0..<300 {
            _ = try crashRound(seed: UInt64(round) &* 0x9E37_79B9 &+ 17, appends: 1...60, payloadBytesMax: 300,
                               syncOneIn: 4, explicitSyncOneIn: 20, crash: CrashOptions())
        }
    }

    /// `syncWritten` (outside leadership) makes every earlier unsynced append durable, across
    /// rotations that sealed segments unsynced.
    @Test func syncWrittenMakesEarlierAppendsDurable() throws {
        for round in 0..<300 {
            _ = try crashRound(seed: UInt64(round) &* 0x51_7CC1 &+ 3, appends: 1...120, payloadBytesMax: 400,
                               syncOneIn: 1_000, explicitSyncOneIn: 8, crash: CrashOptions(keepWriteProbability: 0.5), syncWritten: true)
        }
    }

    /// Unsynced appends on one thread while two threads call `syncWritten` over and over (the
    /// Raft host's pipelined syncs): after a crash, every append that returned before a
    /// finished `syncWritten` began survives, and the survivors are a prefix.
    @Test func concurrentSyncWrittenKeepsEveryCoveredAppend() throws {
        for round in 0..<40 {
            let seed = UInt64(round) &* 0x9E37_79B9 &+ 101
            let fileSystem = MemoryFileSystem()
            var options = RecordLogOptions()
            options.segmentBytesMax = 4096
            options.recordPayloadBytesMax = 1024
            let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fileSystem, options: options)
            let progress = SyncProgress()
            let syncers = (0..<2).map { _ in Event() }
            for done in syncers {
                startDetachedThread {
                    while !progress.finished {
                        let covered = progress.appended
                        if (try? log.syncWritten()) != nil { progress.covered(covered) }
                    }
                    done.set()
                }
            }
            var random = SeededRandom(seed: seed)
            var appended: [[UInt8]] = []
            for _ in 0..<200 {
                let payload = (0..<Int.random(in: 0..<300, using: &random)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                try log.append(LogRecord(stream: 7, kind: 1, payload: payload), sync: false)
                appended.append(payload)
                progress.didAppend()
            }
            progress.finish()
            for done in syncers { done.wait() }
            let durable = progress.durable
            let crashed = fileSystem.crashClone(seed: seed, options: CrashOptions(keepWriteProbability: 0.5))
            log.close()
            let (recovered, _) = try RecordLog.open(directory: "/log", fileSystem: crashed, options: options)
            let payloads = try recovered.read(stream: 7).map(\.payload)
            recovered.close()
            #expect(payloads.count >= durable, "seed \(seed): \(payloads.count) records survived, \(durable) were covered by a sync")
            #expect(payloads == Array(appended.prefix(payloads.count)), "seed \(seed): survivors are not a prefix of the appends")
        }
    }

    /// Unsynced batches seal segments without syncing them (Format/log.md §7.4): a crash can tear
    /// an older segment, and recovery then drops every newer one.
    @Test func unsyncedRotationsRecoverToAPrefix() throws {
        var tornOlderSegments = 0
        for round in 0..<300 {
            if try crashRound(seed: UInt64(round) &* 0x2545_F491 &+ 5, appends: 20...160, payloadBytesMax: 400,
                              syncOneIn: 40, explicitSyncOneIn: nil, crash: CrashOptions(keepWriteProbability: 0.7)) {
                tornOlderSegments += 1
            }
        }
        #expect(tornOlderSegments > 20, "only \(tornOlderSegments) rounds tore a segment older than the newest")
    }

    @Test func headerFlagRoundTripsAndUnknownBitsAreRejected() throws {
        var writer = ByteWriter(capacity: 64)
        SegmentHeader(logID: 9, segmentNumber: 4, firstLSN: 7, createdUnixNanos: 1, flags: .predecessorUnsynced).encode(into: &writer)
        #expect(try SegmentHeader.decode(writer.bytes).flags == .predecessorUnsynced)
        var unknown = writer.bytes
        unknown[LogFormat.HeaderField.flags] |= 0b10
        let checksum = XXH3.hash(unknown, range: 0..<LogFormat.HeaderField.checksum)
        withUnsafeBytes(of: checksum.littleEndian) { unknown.replaceSubrange(56..<64, with: $0) }
        let result = Result { () throws(DecodeError) in try SegmentHeader.decode(unknown) }
        guard case let .failure(error) = result else { Issue.record("unknown header flag accepted"); return }
        #expect(error.field == "flags" && error.offset == UInt64(LogFormat.HeaderField.flags))
    }

    /// Damage at the end of a segment sealed unsynced is a torn tail while nothing newer proves
    /// a sync, and corruption once a synced batch follows.
    @Test(arguments: [false, true])
    func damageInASegmentSealedUnsyncedIsJudgedByNewerSyncs(syncedAfter: Bool) throws {
        let fileSystem = MemoryFileSystem()
        var options = RecordLogOptions()
        options.segmentBytesMax = 4096
        options.recordPayloadBytesMax = 1024
        // Incompressible payloads (no repeated byte within one), so that 30 of them fill segments.
        func payload(_ index: Int) -> [UInt8] { (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) } }
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fileSystem, options: options)
        for index in 0..<30 { try log.append(LogRecord(stream: 1, kind: 1, payload: payload(index)), sync: false) }
        if syncedAfter {
            try log.append(LogRecord(stream: 1, kind: 1, payload: [1]), sync: true)
            try log.append(LogRecord(stream: 1, kind: 1, payload: [2]), sync: false)
        }
        log.close()
        // Segment 1 was sealed unsynced; damage its last record (before the seal).
        let numbers = try RecordLog.segmentNumbers(in: "/log", fileSystem: fileSystem)
        #expect(numbers.count >= 2)
        #expect(try RecordLog.predecessorUnsynced(numbers[1], directory: "/log", fileSystem: fileSystem))
        let path = "/log/" + LogFormat.segmentFileName(numbers[0])
        let handle = try fileSystem.open(path, options: .readWrite)
        let size = try handle.size()
        try handle.write(at: size - 100, [UInt8](repeating: 0, count: 20))
        handle.close()
        let result = Result { () throws(LogError) in try RecordLog.open(directory: "/log", fileSystem: fileSystem, options: options) }
        switch result {
        case let .success((recovered, report)):
            #expect(!syncedAfter, "damage before a proven sync was accepted as a torn tail")
            #expect(report.tornTails.first?.segment == LogFormat.segmentFileName(numbers[0]))
            #expect(report.segmentsRemoved.contains(LogFormat.segmentFileName(numbers[1])))
            let payloads = try recovered.read(stream: 1).map(\.payload)
            #expect(payloads.count < 30 && payloads == (0..<payloads.count).map(payload))
            recovered.close()
        case let .failure(error):
            #expect(syncedAfter, "a torn tail of unsynced writes was reported as corruption: \(error)")
            guard case .corruption = error else { Issue.record("unexpected error \(error)"); return }
        }
    }

    /// A crash inside a rotation: the new newest segment's creation was cut short (a partial
    /// header) and the segment before it lost its seal and maybe more. Recovery cuts the older
    /// one and removes the empty newest one instead of reporting corruption.
    @Test(arguments: [false, true])
    func aRotationCutShortByACrashRecovers(damageTail: Bool) throws {
        let fileSystem = MemoryFileSystem()
        var options = RecordLogOptions()
        options.segmentBytesMax = 4096
        options.recordPayloadBytesMax = 1024
        func payload(_ index: Int) -> [UInt8] { (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) } }
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fileSystem, options: options)
        for index in 0..<20 { try log.append(LogRecord(stream: 1, kind: 1, payload: payload(index)), sync: false) }
        log.close()
        let numbers = try RecordLog.segmentNumbers(in: "/log", fileSystem: fileSystem)
        let last = try #require(numbers.last)
        if damageTail {
            let handle = try fileSystem.open("/log/" + LogFormat.segmentFileName(last), options: .readWrite)
            try handle.write(at: try handle.size() - 50, [UInt8](repeating: 0, count: 50))
            handle.close()
        }
        // The next segment's creation, cut after 20 bytes of its header.
        var header = ByteWriter(capacity: 64)
        SegmentHeader(logID: 1, segmentNumber: last + 1, firstLSN: 999, createdUnixNanos: 0, flags: .predecessorUnsynced).encode(into: &header)
        let cut = try fileSystem.open("/log/" + LogFormat.segmentFileName(last + 1), options: [.read, .write, .create])
        try cut.write(at: 0, Array(header.bytes.prefix(20)))
        cut.close()
        let (recovered, report) = try RecordLog.open(directory: "/log", fileSystem: fileSystem, options: options)
        let payloads = try recovered.read(stream: 1).map(\.payload)
        recovered.close()
        #expect(report.segmentsRemoved.contains(LogFormat.segmentFileName(last + 1)))
        #expect(payloads == (0..<payloads.count).map(payload))
        #expect(damageTail ? payloads.count < 20 : payloads.count == 20)
    }

    @Test func closeMakesUnsyncedAppendsDurable() throws {
        let fileSystem = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fileSystem)
        for index in 0..<10 { try log.append(LogRecord(stream: 1, kind: 1, payload: [UInt8(index)]), sync: false) }
        log.close()
        // A crash after a clean close loses nothing.
        let crashed = fileSystem.crashClone(seed: 3, options: CrashOptions(keepWriteProbability: 0))
        let (recovered, _) = try RecordLog.open(directory: "/log", fileSystem: crashed)
        #expect(try recovered.read(stream: 1).map(\.payload) == (0..<10).map { [UInt8($0)] })
        recovered.close()
    }
}

@Suite struct ReleaseDeadSpaceTests {
    @Test func aFullyTruncatedLogShrinksToOneFreshSegmentAndKeepsItsLSNs() throws {
        let fs = MemoryFileSystem()
        var options = RecordLogOptions()
        options.segmentBytesMax = 8192
        options.recordPayloadBytesMax = 4096
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: options)
        var last: UInt64 = 0
        for index in 0..<200 { last = try log.append(LogRecord(stream: 3, kind: 1, payload: [UInt8](repeating: UInt8(index % 256), count: 300))) }
        #expect(log.segmentFiles.count > 3)
        try log.truncatePrefix(stream: 3, below: last + 1)
        try log.releaseDeadSpace()
        #expect(log.segmentFiles.count == 1)
        let size = fs.contents(of: "/log/" + log.segmentFiles[0])!.count
        #expect(size < 1024, "the fresh segment holds only its header and checkpoint (\(size) bytes)")
        let next = try log.append(LogRecord(stream: 3, kind: 1, payload: [1]))
        #expect(next > last)
        log.close()
        let (reopened, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: options)
        #expect(try reopened.read(stream: 3).map(\.lsn) == [next])
        #expect(try reopened.append(LogRecord(stream: 3, kind: 1, payload: [2])) > next)
        reopened.close()
    }
}

/// Appends made and appends covered by a finished `syncWritten`, shared with the sync threads.
final class SyncProgress: @unchecked Sendable {
    private let lock = ConditionLock()
    private var appendedCount = 0
    private var durableCount = 0
    private var done = false
    var appended: Int { lock.withLock { appendedCount } }
    var durable: Int { lock.withLock { durableCount } }
    var finished: Bool { lock.withLock { done } }
    func didAppend() { lock.withLock { appendedCount += 1 } }
    func covered(_ count: Int) { lock.withLock { durableCount = max(durableCount, count) } }
    func finish() { lock.withLock { done = true } }
}

/// Syncs share a segment's descriptor and Linux reports a writeback error to only one of them:
/// a sync that overlaps a failed one must not report success.
@Suite(.ownThread) struct OverlappingSyncTests {
    @Test func aSyncOverlappingAFailedOneFailsToo() throws {
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: MemoryFileSystem())
        let entered = Event(), release = Event(), firstDone = Event(), secondDone = Event()
        let outcomes = SyncOutcomes()
        startDetachedThread {
            do throws(LogError) {
                try log.trackedSync { () throws(FileIOError) in
                    entered.set()
                    release.wait()
                    throw FileIOError(.io, operation: "fdatasync", path: "/log/segment")
                }
                outcomes.set(0, "ok")
            } catch {
                outcomes.set(0, "\(error)")
            }
            firstDone.set()
        }
        entered.wait()
        startDetachedThread {
            // This sync's own fdatasync "succeeds" while the first is still running.
            do throws(LogError) {
                try log.trackedSync { () throws(FileIOError) in release.set() }
                outcomes.set(1, "ok")
            } catch {
                outcomes.set(1, "\(error)")
            }
            secondDone.set()
        }
        firstDone.wait()
        secondDone.wait()
        #expect(outcomes.get(0) != "ok")
        #expect(outcomes.get(1) != "ok", "a sync overlapping a failed one reported success")
        #expect(throws: LogError.self) { try log.append(LogRecord(stream: 1, kind: 1, payload: [1])) }
        log.close()
    }
}

final class SyncOutcomes: @unchecked Sendable {
    private let lock = ConditionLock()
    private var values: [Int: String] = [:]
    func set(_ key: Int, _ value: String) { lock.withLock { values[key] = value } }
    func get(_ key: Int) -> String? { lock.withLock { values[key] } }
}
