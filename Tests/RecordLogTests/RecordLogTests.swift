// Behaviour of the record log through its public API: append, read, truncate, rotate,
// relocate, reopen, concurrent appenders, limits and locking.

import Basics
import FileIO
import FileIOSim
import Foundation
import RecordLog
import Testing

@Suite struct RecordLogTests {
    @Test func appendsReadBackInOrderAcrossStreams() throws {
        let fs = MemoryFileSystem()
        let (log, report) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        #expect(report.isNewLog)
        var random = SeededRandom(seed: 1)
        var expected: [UInt64: [[UInt8]]] = [:]
        for step in 0..<200 {
            let stream = random.next() % 3
            let bytes = payload(&random, stream: stream, step: step)
            let lsn = try log.append(LogRecord(stream: stream, kind: 1, payload: bytes, compress: step % 2 == 0))
            #expect(lsn > 0)
            expected[stream, default: []].append(bytes)
        }
        for (stream, payloads) in expected {
            let records = try log.read(stream: stream)
            #expect(records.map(\.payload) == payloads)
            #expect(records.map(\.lsn) == records.map(\.lsn).sorted())
        }
        #expect(log.stats.segmentsCreated > 3, "small segments must rotate")
        let before = try snapshot(log)
        log.close()
        let (reopened, report2) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        #expect(report2.tornTails.isEmpty)
        #expect(try snapshot(reopened) == before)
        reopened.close()
    }

    @Test func lsnsIncreaseWithinOneAppend() throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        let lsns = try log.append((0..<5).map { LogRecord(stream: 7, kind: 2, payload: [UInt8($0)]) })
        #expect(lsns == Array(lsns[0]..<(lsns[0] + 5)))
        let records = try log.read(stream: 7, from: lsns[2], limit: 2)
        #expect(records.map(\.payload) == [[2], [3]])
        #expect(records.allSatisfy { $0.kind == 2 })
        #expect(log.bounds(of: 7) == lsns[0]...lsns[4])
        log.close()
    }

    @Test func truncationsAreDurable() throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        let lsns = try log.append((0..<10).map { LogRecord(stream: 1, kind: 1, payload: [UInt8($0)]) })
        try log.append(LogRecord(stream: 2, kind: 1, payload: [99]))
        try log.truncatePrefix(stream: 1, below: lsns[3])
        try log.truncateSuffix(stream: 1, from: lsns[7])
        let after = try log.append(LogRecord(stream: 1, kind: 1, payload: [42]))
        #expect(try log.read(stream: 1).map(\.payload) == [[3], [4], [5], [6], [42]])
        #expect(try log.read(stream: 1).last?.lsn == after)
        log.close()
        let (reopened, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        #expect(try reopened.read(stream: 1).map(\.payload) == [[3], [4], [5], [6], [42]])
        #expect(try reopened.read(stream: 2).map(\.payload) == [[99]])
        reopened.close()
    }

    @Test(arguments: [false, true])
    func diskUseStaysBoundedWhenAStreamNeverTruncates(removesFilesInBackground: Bool) throws {
        let fs = MemoryFileSystem()
        var options = smallOptions(segmentBytes: 4096, segmentCount: 4)
        options.removesFilesInBackground = removesFilesInBackground
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: options)
        // A slow stream keeps a few records forever; a busy stream truncates as it goes.
        let slow = try log.append((0..<3).map { LogRecord(stream: 1, kind: 1, payload: [UInt8]("slow\($0)".utf8)) })
        var random = SeededRandom(seed: 5)
        for step in 0..<600 {
            let lsn = try log.append(LogRecord(stream: 2, kind: 1, payload: random.bytes(200)))
            if step % 60 == 59 { try log.truncatePrefix(stream: 2, below: lsn) }
            #expect(log.stats.segmentCount <= options.segmentCountMax + 1)
        }
        #expect(log.stats.relocatedRecords > 0)
        #expect(try log.read(stream: 1).map(\.lsn) == slow)
        // Dead segments' files are removed in the background; close waits for that.
        log.close()
        let files = try fs.list("/log").filter { $0.hasSuffix(".vlog") }
        #expect(files.count <= options.segmentCountMax + 1)
        let (reopened, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: options)
        #expect(try reopened.read(stream: 1).map(\.payload) == (0..<3).map { [UInt8]("slow\($0)".utf8) })
        reopened.close()
    }

    @Test func concurrentAppendersShareSyncs() throws {
        let fs = MemoryFileSystem()
        var options = RecordLogOptions()
        options.logID = 1
        options.segmentBytesMax = 1 << 20  // preallocated in memory
        options.recordPayloadBytesMax = 1 << 16
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: options)
        let threads = 16, perThread = 200
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for i in 0..<perThread {
                _ = try! log.append(LogRecord(stream: UInt64(thread), kind: 1, payload: [UInt8(truncatingIfNeeded: i), UInt8(thread)]))
            }
        }
        for thread in 0..<threads {
            let records = try log.read(stream: UInt64(thread))
            #expect(records.map { $0.payload[0] } == (0..<perThread).map { UInt8(truncatingIfNeeded: $0) })
        }
        let stats = log.stats
        #expect(stats.appendedRecords == UInt64(threads * perThread))
        #expect(stats.batches <= stats.appendedRecords)
        log.close()
    }

    /// The sync statistics (what the server's fsync histogram shows) count one observation per
    /// sync — a synced append alone, or a `syncWritten` — and none for an unsynced write; the
    /// disk usage is the segment files' bytes.
    @Test func syncStatisticsCountEverySync() throws {
        let fs = MemoryFileSystem()
        var options = smallOptions()
        options.segmentBytesMax = 1 << 20  // no rotation: its seal would add a sync
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: options)
        let before = log.stats
        for i in 0..<5 { try log.append(LogRecord(stream: 1, kind: 1, payload: [UInt8(i)])) }
        var stats = log.stats
        #expect(stats.syncs == before.syncs + 5)
        #expect(stats.syncLatency.count == stats.syncs)
        try log.append(LogRecord(stream: 1, kind: 1, payload: [9]), sync: false)
        #expect(log.stats.syncs == stats.syncs, "an unsynced write is not a sync")
        try log.syncWritten()
        stats = log.stats
        #expect(stats.syncs == before.syncs + 6)
        #expect(stats.syncLatency.count == stats.syncs)
        #expect(stats.syncLatency.sum >= 0)
        // Cumulative buckets never decrease; in memory every sync is far below the last bound.
        let buckets = LatencyHistogram.bounds.indices.map { stats.syncLatency.cumulativeCount(bucket: $0) }
        #expect(buckets == buckets.sorted())
        #expect(buckets.last == stats.syncLatency.count)

        let usage = log.diskUsage
        #expect(usage.segments == log.segmentFiles.count)
        let onDisk = log.segmentFiles.reduce(0) { $0 + (fs.contents(of: "/log/" + $1)?.count ?? 0) }
        #expect(usage.bytes == UInt64(onDisk))
        #expect(usage.bytes > 0)
        log.close()
        #expect(log.diskUsage.segments == 0 && log.diskUsage.bytes == 0)
    }

    @Test func rejectsBadArgumentsWithTypedErrors() throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        #expect(throws: LogError.self) { try log.append(LogRecord(stream: 1, kind: 0, payload: [])) }
        #expect(throws: LogError.self) { try log.append(LogRecord(stream: 1, kind: 128, payload: [])) }
        #expect(throws: LogError.self) { try log.append(LogRecord(stream: 1, kind: 1, payload: [UInt8](repeating: 0, count: 4096))) }
        log.close()
        #expect(throws: LogError.closed) { try log.append(LogRecord(stream: 1, kind: 1, payload: [])) }
    }

    @Test func secondOpenOfTheSameDirectoryIsRefused() throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        #expect(throws: LogError.locked("/log")) { _ = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions()) }
        log.close()
        let (again, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        again.close()
    }

    @Test func worksOnTheRealFileSystem() throws {
        let directory = NSTemporaryDirectory() + "vectron-log-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fs = POSIXFileSystem()
        let (log, _) = try RecordLog.open(directory: directory, fileSystem: fs, options: smallOptions())
        for i in 0..<100 { try log.append(LogRecord(stream: 3, kind: 1, payload: [UInt8](repeating: UInt8(i), count: 100), compress: true)) }
        log.close()
        let (reopened, report) = try RecordLog.open(directory: directory, fileSystem: fs, options: smallOptions())
        #expect(report.tornTails.isEmpty)
        #expect(try reopened.read(stream: 3).map { $0.payload.first! } == (0..<100).map { UInt8($0) })
        reopened.close()
    }
}

@Suite struct RecordLogFaultTests {
    @Test(arguments: [FileIOError.Kind.noSpace, .io])
    func writeErrorsReachTheAppenderTypedAndLoseNothingAcknowledged(kind: FileIOError.Kind) throws {
        let memory = MemoryFileSystem()
        let faulty = FaultInjectingFileSystem(wrapping: memory, seed: 7)
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: faulty, options: smallOptions())
        let acknowledged = try log.append((0..<20).map { LogRecord(stream: 1, kind: 1, payload: [UInt8($0)]) })
        faulty.setRules([FaultRule([.write], nthCall: 1, fault: .error(kind))])
        let failed = Result { () throws(LogError) in try log.append(LogRecord(stream: 1, kind: 1, payload: [99])) }
        if case let .failure(.io(cause)) = failed {
            #expect(cause.kind == kind && cause.operation == "pwrite" && cause.path.hasSuffix(".vlog"))
        } else {
            Issue.record("expected LogError.io(\(kind)), got \(failed)")
        }
        // The log has stopped: later appends fail fast with the original cause.
        let later = Result { () throws(LogError) in try log.append(LogRecord(stream: 1, kind: 1, payload: [100])) }
        if case let .failure(.failed(cause)) = later {
            #expect(cause.kind == kind)
        } else {
            Issue.record("expected .failed after a write error, got \(later)")
        }
        faulty.setRules([])
        log.close()
        let (reopened, _) = try RecordLog.open(directory: "/log", fileSystem: memory.crashClone(seed: 3), options: smallOptions())
        #expect(try reopened.read(stream: 1).map(\.lsn).prefix(20) == acknowledged[...])
        reopened.close()
    }

    @Test func syncErrorsFailTheBatchAndStopTheLog() throws {
        let memory = MemoryFileSystem()
        let faulty = FaultInjectingFileSystem(wrapping: memory, seed: 8)
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: faulty, options: smallOptions())
        try log.append(LogRecord(stream: 5, kind: 1, payload: [1]))
        faulty.setRules([FaultRule([.dataSync], fault: .error(.io))])
        #expect(throws: LogError.self) { try log.append(LogRecord(stream: 5, kind: 1, payload: [2])) }
        #expect(throws: LogError.self) { try log.truncatePrefix(stream: 5, below: 100) }
        log.close()
        // Power loss: the unsynced record may or may not be there; the acknowledged one is.
        let (reopened, _) = try RecordLog.open(directory: "/log", fileSystem: memory.crashClone(seed: 9), options: smallOptions())
        #expect(try reopened.read(stream: 5).first?.payload == [1])
        reopened.close()
    }

    @Test func asyncAppendsAreDurableAndOrderedPerTask() async throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions(segmentBytes: 8192, segmentCount: 4))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for i in 0..<50 {
                        try await log.appendAsync([LogRecord(stream: UInt64(task), kind: 1, payload: [UInt8(i), UInt8(task)])])
                    }
                }
            }
            // Blocking appenders at the same time share the same batches.
            group.addTask {
                for i in 0..<50 { try log.append(LogRecord(stream: 100, kind: 1, payload: [UInt8(i)])) }
            }
            try await group.waitForAll()
        }
        for task in 0..<8 {
            #expect(try log.read(stream: UInt64(task)).map { $0.payload[0] } == (0..<50).map { UInt8($0) })
        }
        #expect(try log.read(stream: 100).count == 50)
        log.close()
        let (reopened, _) = try RecordLog.open(directory: "/log", fileSystem: fs.crashClone(seed: 1), options: smallOptions(segmentBytes: 8192, segmentCount: 4))
        #expect(try reopened.read(stream: 3).count == 50)
        reopened.close()
    }
}

/// Regressions from the first code review of the log (see the commit that added them).
@Suite struct RecordLogReviewRegressionTests {
    @Test func aPrefixBoundBeyondTheLogDoesNotKillLaterAppends() throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        try log.append(LogRecord(stream: 1, kind: 1, payload: [1]))
        try log.truncatePrefix(stream: 1, below: .max)  // "drop everything so far"
        #expect(try log.read(stream: 1).isEmpty)
        let later = try log.append(LogRecord(stream: 1, kind: 1, payload: [2]))
        log.close()
        let (reopened, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions())
        #expect(try reopened.read(stream: 1).map(\.lsn) == [later])
        reopened.close()
    }

    @Test func closeStopsAppendersThatLoopUntilClosed() throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions(segmentBytes: 1 << 16, segmentCount: 8))
        let started = DispatchSemaphore(value: 0)
        let group = DispatchGroup()
        for thread in 0..<4 {
            group.enter()
            Thread {
                started.signal()
                while (try? log.append(LogRecord(stream: UInt64(thread), kind: 1, payload: [1]))) != nil {}
                group.leave()
            }.start()
        }
        for _ in 0..<4 { started.wait() }
        log.close()  // must return although the appenders never stop on their own
        group.wait()
        #expect(throws: LogError.closed) { try log.append(LogRecord(stream: 9, kind: 1, payload: [])) }
    }

    @Test func anOpenThatFindsCorruptionChangesNothing() throws {
        let fs = MemoryFileSystem()
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions(segmentCount: 50))
        for i in 0..<60 { try log.append(LogRecord(stream: 1, kind: 1, payload: [UInt8](repeating: UInt8(i), count: 150))) }
        log.close()
        let numbers = try RecordLog.segmentNumbers(in: "/log", fileSystem: fs)
        let newest = "/log/" + LogFormat.segmentFileName(numbers.last!)
        let older = "/log/" + LogFormat.segmentFileName(numbers[0])
        fs.setContents(of: newest, fs.contents(of: newest)! + [0xAB, 0xCD, 0xEF])  // a torn tail
        var damaged = fs.contents(of: older)!
        damaged[200] ^= 0x01  // corruption in a sealed segment
        fs.setContents(of: older, damaged)
        let before = fs.contents(of: newest)
        #expect(throws: LogError.self) { _ = try RecordLog.open(directory: "/log", fileSystem: fs, options: smallOptions(segmentCount: 50)) }
        #expect(fs.contents(of: newest) == before, "the torn tail must not be cut by an open that fails")
    }
}
