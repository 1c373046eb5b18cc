// Segments prepared ahead (format version 2): zero-filled to their full size before they get a
// header, so that appends overwrite zeros. A reader must find the end of the records inside the
// zero-filled tail: an all-zero remainder after the last good record is a clean end; a bad
// record followed only by zeros in the newest segment is a torn tail; a bad record followed by
// a valid record that proves it durable is corruption. Version 1 segments keep version 1's
// rules (no zero-filled tail). Crash rounds with prepared segments run in CrashTests.

import Basics
import FileIO
import FileIOSim
import Foundation
import Inspection
import RecordLog
import Testing
import Wire

@Suite(.ownThread) struct ZeroFilledTailTests {
    static let segmentBytes = 4096

    func preparedOptions(_ preparation: RecordLogOptions.SegmentPreparation = .inline) -> RecordLogOptions {
        var options = smallOptions(segmentBytes: Self.segmentBytes, segmentCount: 8)
        options.segmentPreparation = preparation
        return options
    }

    /// A log of prepared segments with at least one rotation; returns the segment names, oldest
    /// first, and the payloads appended (one stream, each appended and synced alone).
    func writeLog(_ fs: MemoryFileSystem, records: Int = 30) throws -> ([String], [[UInt8]]) {
        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: preparedOptions())
        var payloads: [[UInt8]] = []
        for index in 0..<records {
            let payload = (0..<(150 + index)).map { UInt8(truncatingIfNeeded: $0 &+ index) }
            try log.append(LogRecord(stream: 1, kind: 1, payload: payload))
            payloads.append(payload)
        }
        log.close()
        let names = try RecordLog.segmentNumbers(in: "/log", fileSystem: fs).map(LogFormat.segmentFileName)
        return (names, payloads)
    }

    @Test func preparedSegmentsEndInAZeroFilledTailAndScanClean() throws {
        let fs = MemoryFileSystem()
        let (names, payloads) = try writeLog(fs)
        #expect(names.count >= 2, "the log must rotate")
        #expect(!(try fs.list("/log")).contains(LogFormat.preparedFileName), "inline preparation leaves no prepared file")
        for (position, name) in names.enumerated() {
            let bytes = fs.contents(of: "/log/" + name)!
            #expect(bytes.count == Self.segmentBytes, "\(name) is prepared to its full size")
            let scan = SegmentScanner.scan(bytes, isLast: position == names.count - 1)
            #expect(scan.end == .clean, "\(name)")
            #expect(scan.header?.version == 2)
            #expect(scan.zeroFilledTailBytes == bytes.count - scan.validEnd)
            #expect(scan.zeroFilledTailBytes > 0)
        }
        let findings = try Inspector.verify(path: "/log", fileSystem: fs)
        #expect(findings.allSatisfy { $0.status == .ok }, "\(findings.map(\.line))")
        let dump = try Inspector.dump(path: "/log/" + names[0], fileSystem: fs)
        #expect(dump.text.contains("zero-filled tail of"))
        let (log, report) = try RecordLog.open(directory: "/log", fileSystem: fs, options: preparedOptions())
        #expect(report.tornTails.isEmpty)
        #expect(try log.read(stream: 1).map(\.payload) == payloads)
        log.close()
    }

    /// The last record of the newest segment damaged, only zeros after it: a torn tail (cut and
    /// reported), every earlier record intact.
    @Test func aBadRecordFollowedOnlyByZerosIsATornTail() throws {
        let fs = MemoryFileSystem()
        let (names, payloads) = try writeLog(fs)
        let newest = "/log/" + names.last!
        var bytes = fs.contents(of: newest)!
        let scan = SegmentScanner.scan(bytes, isLast: true)
        let last = try #require(scan.records.last)
        #expect(last.header.kind.isUser)
        // Tear it: its second half never reached the disk (zeros).
        let half = last.offset + last.header.totalLength / 2
        for position in half..<(last.offset + last.header.totalLength) { bytes[position] = 0 }
        fs.setContents(of: newest, bytes)
        #expect(SegmentScanner.scan(bytes, isLast: true).end == .tornTail(offset: last.offset))
        #expect(SegmentScanner.scan(bytes, isLast: false).end != .clean, "a sealed segment is never torn")
        let findings = try Inspector.verify(path: "/log", fileSystem: fs)
        #expect(findings.contains { $0.status == .torn })
        let (log, report) = try RecordLog.open(directory: "/log", fileSystem: fs, options: preparedOptions())
        #expect(report.tornTails.map(\.offset) == [last.offset])
        #expect(try log.read(stream: 1).map(\.payload) == Array(payloads.dropLast()))
        log.close()
    }

    /// A record zeroed out in the middle of the newest segment, with later records that were
    /// written after it had been synced: corruption (typed, naming the offset), never skipped,
    /// and the open changes nothing.
    @Test func aBadRecordFollowedByValidRecordsIsCorruption() throws {
        let fs = MemoryFileSystem()
        let (names, _) = try writeLog(fs)
        let newest = "/log/" + names.last!
        var bytes = fs.contents(of: newest)!
        let records = SegmentScanner.scan(bytes, isLast: true).records
        try #require(records.count >= 3)
        let victim = records[records.count - 2]
        for position in victim.offset..<(victim.offset + victim.header.totalLength) { bytes[position] = 0 }
        fs.setContents(of: newest, bytes)
        guard case let .corrupt(error) = SegmentScanner.scan(bytes, isLast: true).end else {
            Issue.record("a zeroed durable record followed by a valid one must be corruption")
            return
        }
        #expect(error.offset >= UInt64(victim.offset) && error.offset < UInt64(victim.offset + LogFormat.recordHeaderBytes))
        let before = try fs.list("/log").sorted().map { fs.contents(of: "/log/" + $0) }
        let opened = Result { () throws(LogError) in try RecordLog.open(directory: "/log", fileSystem: fs, options: preparedOptions()) }
        guard case .failure(.corruption(let segment, _)) = opened else {
            Issue.record("open must fail with corruption, got \(opened)")
            return
        }
        #expect(segment == names.last!)
        #expect(try fs.list("/log").sorted().map { fs.contents(of: "/log/" + $0) } == before, "a failed open changes nothing")
        let findings = try Inspector.verify(path: "/log", fileSystem: fs)
        #expect(findings.contains { $0.status == .corrupt })
    }

    /// A non-zero byte anywhere in the zero-filled tail: corruption in a sealed segment, a torn
    /// tail (dropping nothing that was written) in the newest one.
    @Test func anythingButZerosInTheTailIsNoticed() throws {
        let fs = MemoryFileSystem()
        let (names, payloads) = try writeLog(fs)
        let sealed = "/log/" + names[0]
        let original = fs.contents(of: sealed)!
        let sealedScan = SegmentScanner.scan(original, isLast: false)
        for position in [sealedScan.validEnd, sealedScan.validEnd + 1, (sealedScan.validEnd + original.count) / 2, original.count - 1] {
            var bytes = original
            bytes[position] = 1
            guard case .corrupt = SegmentScanner.scan(bytes, isLast: false).end else {
                Issue.record("a byte at \(position) after the seal went unnoticed")
                continue
            }
        }
        let newest = "/log/" + names.last!
        var bytes = fs.contents(of: newest)!
        let scan = SegmentScanner.scan(bytes, isLast: true)
        bytes[bytes.count - 1] = 0x80
        fs.setContents(of: newest, bytes)
        #expect(SegmentScanner.scan(bytes, isLast: true).end == .tornTail(offset: scan.validEnd))
        let (log, report) = try RecordLog.open(directory: "/log", fileSystem: fs, options: preparedOptions())
        #expect(report.tornTails.count == 1)
        #expect(try log.read(stream: 1).map(\.payload) == payloads)
        log.close()
    }

    /// Version 1 has no zero-filled tail: the same bytes declared version 1 are a torn tail in
    /// the newest segment and corruption in a sealed one.
    @Test func versionOneSegmentsKeepVersionOneRules() throws {
        let fs = MemoryFileSystem()
        let (names, _) = try writeLog(fs)
        var bytes = fs.contents(of: "/log/" + names[0])!
        var header = try SegmentHeader.decode(bytes)
        #expect(header.version == 2)
        header.version = 1
        var writer = ByteWriter(capacity: 64)
        header.encode(into: &writer)
        bytes.replaceSubrange(0..<LogFormat.segmentHeaderBytes, with: writer.finish())
        let asSealed = SegmentScanner.scan(bytes, isLast: false)
        #expect(asSealed.header?.version == 1)
        guard case .corrupt = asSealed.end else {
            Issue.record("a version 1 sealed segment followed by zeros must be corruption")
            return
        }
        let asNewest = SegmentScanner.scan(bytes, isLast: true)
        #expect(asNewest.end == .tornTail(offset: asNewest.validEnd))
        #expect(asNewest.zeroFilledTailBytes == 0)
    }

    /// Flipping any single byte of a prepared log's segments is detected by recovery (typed
    /// corruption or a reported torn tail, never changed data) and by `vectron-tool verify`.
    @Test func everyFlippedByteOfAPreparedLogIsDetected() throws {
        let fs = MemoryFileSystem()
        let (names, payloads) = try writeLog(fs, records: 24)
        var corruptions = 0, torn = 0
        for (position, name) in names.enumerated() {
            let original = fs.contents(of: "/log/" + name)!
            for offset in 0..<original.count {
                let copy = MemoryFileSystem()
                try copy.createDirectory("/log")
                for other in names { copy.setContents(of: "/log/" + other, fs.contents(of: "/log/" + other)!) }
                var flipped = original
                flipped[offset] ^= 0xFF
                copy.setContents(of: "/log/" + name, flipped)
                let findings = try Inspector.verify(path: "/log", fileSystem: copy)
                #expect(findings.contains { $0.status != .ok }, "verify missed a flip at \(name) byte \(offset)")
                let opened = Result { () throws(LogError) in try RecordLog.open(directory: "/log", fileSystem: copy, options: preparedOptions()) }
                switch opened {
                case .failure(.corruption):
                    corruptions += 1
                case let .success((log, report)):
                    torn += 1
                    #expect(position == names.count - 1 && !report.tornTails.isEmpty, "flip at \(name) byte \(offset) went unnoticed")
                    let served = try log.read(stream: 1).map(\.payload)
                    #expect(served == Array(payloads.prefix(served.count)), "flip at \(name) byte \(offset) changed served data")
                    log.close()
                case let .failure(error):
                    Issue.record("flip at \(name) byte \(offset): unexpected \(error)")
                }
            }
        }
        #expect(corruptions > torn)
    }

    /// Background preparation on the real file system: many rotations, every record back after
    /// reopening, no prepared file left after close, and segments prepared to full size.
    @Test func backgroundPreparationOnTheRealFileSystem() throws {
        let directory = NSTemporaryDirectory() + "vectron-prepared-\(UInt64.random(in: 0...UInt64.max))"
        let fs = POSIXFileSystem()
        defer {
            for name in (try? fs.list(directory)) ?? [] { try? fs.remove(joinPath(directory, name)) }
            try? fs.remove(directory)
        }
        var options = preparedOptions(.background)
        options.segmentBytesMax = 64 << 10
        options.segmentCountMax = 64
        let (log, _) = try RecordLog.open(directory: directory, fileSystem: fs, options: options)
        var payloads: [[UInt8]] = []
        for index in 0..<400 {
            let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1000)
            try log.append(LogRecord(stream: 1, kind: 1, payload: payload))
            payloads.append(payload)
        }
        #expect(log.stats.segmentsCreated >= 5)
        log.close()
        #expect(!(try fs.list(directory)).contains(LogFormat.preparedFileName))
        let (again, report) = try RecordLog.open(directory: directory, fileSystem: fs, options: options)
        #expect(report.tornTails.isEmpty)
        #expect(try again.read(stream: 1).map(\.payload) == payloads)
        // At least one segment besides the first (prepared at open) was prepared in the background.
        let names = try RecordLog.segmentNumbers(in: directory, fileSystem: fs).map(LogFormat.segmentFileName)
        let prepared = try names.filter { name in
            let handle = try fs.open(joinPath(directory, name), options: .read)
            defer { handle.close() }
            return try handle.size() == UInt64(options.segmentBytesMax)
        }
        #expect(prepared.count >= 2)
        again.close()
    }
}
