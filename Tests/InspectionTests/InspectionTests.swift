// vectron-tool's verify and repair on damaged logs: a torn tail is cut and reported, a corrupt
// sealed segment is moved to quarantine (never deleted) with the exact records lost, and the
// repaired log opens.

import Basics
import FileIO
import FileIOSim
import Inspection
import RecordLog
import Testing

func inspectionOptions() -> RecordLogOptions {
    var options = RecordLogOptions()
    options.segmentBytesMax = 4096
    options.segmentCountMax = 50
    options.recordPayloadBytesMax = 1024
    options.logID = 42
    return options
}

func buildLog(_ fs: MemoryFileSystem) throws -> [UInt64: [UInt64]] {
    let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: inspectionOptions())
    var lsns: [UInt64: [UInt64]] = [:]
    for i in 0..<60 {
        let stream = UInt64(i % 3)
        lsns[stream, default: []].append(try log.append(LogRecord(stream: stream, kind: 1, payload: [UInt8](repeating: UInt8(i), count: 150))))
    }
    log.close()
    return lsns
}

@Suite struct InspectionTests {
    @Test func intactLogVerifiesClean() throws {
        let fs = MemoryFileSystem()
        _ = try buildLog(fs)
        let findings = try Inspector.verify(path: "/log", fileSystem: fs)
        #expect(findings.count >= 3)
        #expect(findings.allSatisfy { $0.status == .ok }, "\(findings.map(\.line))")
        let report = try Inspector.repair(directory: "/log", fileSystem: fs)
        #expect(!report.changed)
    }

    @Test func tornTailIsReportedThenCut() throws {
        let fs = MemoryFileSystem()
        _ = try buildLog(fs)
        let newest = try RecordLog.segmentNumbers(in: "/log", fileSystem: fs).last!
        let path = "/log/" + LogFormat.segmentFileName(newest)
        var bytes = fs.contents(of: path)!
        // Half a record header right after the last record (before any preallocated zeros):
        // a torn write.
        let end = SegmentScanner.scan(bytes, isLast: true).validEnd
        bytes = Array(bytes[..<end]) + [UInt8](repeating: 0xAB, count: 25)
        fs.setContents(of: path, bytes)
        let findings = try Inspector.verify(path: "/log", fileSystem: fs)
        #expect(findings.last?.status == .torn)
        #expect(findings.dropLast().allSatisfy { $0.status == .ok })
        let report = try Inspector.repair(directory: "/log", fileSystem: fs)
        #expect(report.unreadableBytes == 25)
        #expect(report.lostRecords.isEmpty)
        #expect(try Inspector.verify(path: "/log", fileSystem: fs).allSatisfy { $0.status == .ok })
    }

    @Test func corruptSealedSegmentIsQuarantinedWithItsLostRecords() throws {
        let fs = MemoryFileSystem()
        let written = try buildLog(fs)
        let numbers = try RecordLog.segmentNumbers(in: "/log", fileSystem: fs)
        let victim = numbers[1]
        let path = "/log/" + LogFormat.segmentFileName(victim)
        let original = fs.contents(of: path)!
        let scan = SegmentScanner.scan(original, isLast: false)
        let userRecords = scan.records.filter { $0.header.kind.isUser }
        var damaged = original
        damaged[userRecords[2].offset + 50] ^= 0x10
        fs.setContents(of: path, damaged)

        #expect(throws: LogError.self) { _ = try RecordLog.open(directory: "/log", fileSystem: fs, options: inspectionOptions()) }
        let findings = try Inspector.verify(path: "/log", fileSystem: fs)
        #expect(findings.contains { $0.status == .corrupt && $0.path == path })

        let report = try Inspector.repair(directory: "/log", fileSystem: fs)
        #expect(report.actions.contains { $0.contains("quarantine") })
        // Lost: the readable records before the corruption point (the rest are unreadable bytes).
        #expect(report.lostRecords.map(\.lsn).sorted() == userRecords.prefix(2).map(\.header.lsn))
        #expect(report.unreadableBytes == original.count - userRecords[2].offset)
        #expect(fs.contents(of: "/log/quarantine/" + LogFormat.segmentFileName(victim)) == damaged, "repair must not delete data")

        let (log, _) = try RecordLog.open(directory: "/log", fileSystem: fs, options: inspectionOptions())
        let survivors = Set(log.streams().flatMap { (try? log.read(stream: $0).map(\.lsn)) ?? [] })
        let lostInSegment = Set(userRecords.map(\.header.lsn))
        for (_, lsns) in written {
            for lsn in lsns { #expect(survivors.contains(lsn) != lostInSegment.contains(lsn)) }
        }
        log.close()
    }

    @Test func dumpAndVerifyRefuseUnknownFiles() throws {
        let fs = MemoryFileSystem()
        try fs.createDirectory("/x")
        fs.setContents(of: "/x/notes.txt", Array("hello".utf8))
        #expect(throws: InspectionError.self) { _ = try Inspector.dump(path: "/x/notes.txt", fileSystem: fs) }
        let findings = try Inspector.verify(path: "/x/notes.txt", fileSystem: fs)
        #expect(findings.first?.status == .unknown)
    }
}
