// Unsynced appends (`append(_:sync: false)`): written but not synced. After a crash the records
// that survive must be a prefix of everything appended, and must include every record up to the
// last synced append. A failing round prints its seed.

import Basics
import FileIO
import FileIOSim
import RecordLog
import Testing

@Suite struct UnsyncedAppendTests {
    @Test func survivorsArePrefixIncludingEverySyncedRecord() throws {
        for round in 0..<300 {
            let seed = UInt64(round) &* 0x9E37_79B9 &+ 17
            var random = SeededRandom(seed: seed)
            let fileSystem = MemoryFileSystem()
            var options = RecordLogOptions()
            options.segmentBytesMax = 4096
            options.recordPayloadBytesMax = 1024
            let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fileSystem, options: options)
            var appended: [[UInt8]] = []
            var durableCount = 0
            for _ in 0..<Int.random(in: 1...60, using: &random) {
                let payload = (0..<Int.random(in: 0..<300, using: &random)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let sync = Int.random(in: 0..<4, using: &random) == 0
                try log.append(LogRecord(stream: 7, kind: 1, payload: payload), sync: sync)
                appended.append(payload)
                if sync { durableCount = appended.count }
                if Int.random(in: 0..<20, using: &random) == 0 {
                    try log.sync()
                    durableCount = appended.count
                }
            }
            let crashed = fileSystem.crashClone(seed: seed)
            log.close()
            let (recovered, _) = try RecordLog.open(directory: "/log", fileSystem: crashed, options: options)
            let payloads = try recovered.read(stream: 7).map(\.payload)
            recovered.close()
            #expect(payloads.count >= durableCount, "seed \(seed): \(payloads.count) records survived, \(durableCount) were synced")
            #expect(payloads == Array(appended.prefix(payloads.count)), "seed \(seed): survivors are not a prefix of the appends")
        }
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
