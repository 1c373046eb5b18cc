// Golden files: Format/golden/log/ (format version 1: segments created empty) and
// Format/golden/log-v2/ (version 2: segments prepared zero-filled) hold a small log written by
// `writeGoldenLog` — two streams, an LZ4-compressed record, a prefix and a suffix truncation,
// and a rotation. The tests decode the committed bytes of both versions (so a change to the
// reader that breaks old files fails here), check that today's writer still produces both
// (version 1 with `segmentPreparation = .none`, version 2 with `.inline`), compare
// `vectron-tool dump` output with the committed `.dump.txt` files, and flip every byte of them.
//
// Regenerate the version 2 files (only when the writer's policy changes where records land,
// never to paper over a change; the version 1 files predate version 2 and stay as they are):
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter GoldenFileTests

import TestSupport
import Basics
import FileIO
import FileIOSim
import Foundation
import Inspection
import RecordLog
import Testing

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
/// Version 1's golden files (written before segments were prepared; never regenerated).
let goldenLogDirectoryV1 = repositoryRoot + "/Format/golden/log"
/// The current version's golden files, which today's writer must reproduce.
let goldenLogDirectory = repositoryRoot + "/Format/golden/log-v2"
let goldenLogDirectories = [goldenLogDirectoryV1, goldenLogDirectory]

/// The golden writer's options: segments prepared (version 2) unless `directory` is version 1's.
func goldenOptions(_ directory: String = goldenLogDirectory) -> RecordLogOptions {
    var options = smallOptions(segmentBytes: 4096, segmentCount: 8)
    options.logID = 0x5EED
    options.creationTimeOverride = 1_790_000_000_000_000_000
    options.segmentPreparation = directory == goldenLogDirectoryV1 ? .none : .inline
    return options
}

/// The records the golden log holds after its truncations, per stream.
let goldenExpected: [UInt64: [[UInt8]]] = {
    var expected: [UInt64: [[UInt8]]] = [:]
    expected[1] = (3..<24).map { goldenPayload(stream: 1, index: $0) }
    expected[2] = [goldenPayload(stream: 2, index: 0), goldenPayload(stream: 2, index: 1)]
    return expected
}()

/// Every record the golden writer appends, per stream, in order.
let goldenWritten: [UInt64: [[UInt8]]] = [
    1: (0..<24).map { goldenPayload(stream: 1, index: $0) },
    2: (0..<3).map { goldenPayload(stream: 2, index: $0) },
]

func goldenPayload(stream: UInt64, index: Int) -> [UInt8] {
    if stream == 2 && index == 0 {
        return [UInt8](String(repeating: "vector database ", count: 16).utf8)  // compressible
    }
    return [UInt8]("stream \(stream) record \(index): ".utf8) + (0..<(100 + index * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) }
}

func writeGoldenLog(directory: String, fileSystem: any FileSystem, options: RecordLogOptions = goldenOptions()) throws {
    let (log, _) = try RecordLog.open(directory: directory, fileSystem: fileSystem, options: options)
    for index in 0..<24 {
        try log.append(LogRecord(stream: 1, kind: 1, payload: goldenPayload(stream: 1, index: index)))
        if index == 5 {
            try log.append(LogRecord(stream: 2, kind: 2, payload: goldenPayload(stream: 2, index: 0), compress: true))
            try log.append(LogRecord(stream: 2, kind: 2, payload: goldenPayload(stream: 2, index: 1)))
            try log.append(LogRecord(stream: 2, kind: 2, payload: goldenPayload(stream: 2, index: 2)))
            let lsns = try log.read(stream: 2).map(\.lsn)
            try log.truncateSuffix(stream: 2, from: lsns[2])
        }
    }
    let first = try log.read(stream: 1).map(\.lsn)
    try log.truncatePrefix(stream: 1, below: first[3])
    log.close()
}

/// Copies the committed golden segments of `directory` into a memory file system.
func loadGolden(_ directory: String = goldenLogDirectory) throws -> (MemoryFileSystem, [String]) {
    let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".vlog") }.sorted()
    let fs = MemoryFileSystem()
    try fs.createDirectory("/golden")
    for name in names {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
        fs.setContents(of: "/golden/" + name, bytes)
    }
    return (fs, names)
}

@Suite(.serialized, .ownThread) struct GoldenFileTests {
    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try? FileManager.default.removeItem(atPath: goldenLogDirectory)
        let fs = POSIXFileSystem()
        try writeGoldenLog(directory: goldenLogDirectory, fileSystem: fs)
        try? FileManager.default.removeItem(atPath: goldenLogDirectory + "/" + RecordLog.lockFileName)
        for name in try fs.list(goldenLogDirectory) where name.hasSuffix(".vlog") {
            let dump = try Inspector.dump(path: goldenLogDirectory + "/" + name, fileSystem: fs)
            try (dump.text.replacingOccurrences(of: goldenLogDirectory + "/", with: "") + "\n")
                .write(toFile: goldenLogDirectory + "/" + name + ".dump.txt", atomically: true, encoding: .utf8)
        }
    }

    @Test(arguments: goldenLogDirectories)
    func writerStillProducesTheGoldenBytes(directory: String) throws {
        let fs = MemoryFileSystem()
        try writeGoldenLog(directory: "/fresh", fileSystem: fs, options: goldenOptions(directory))
        let (golden, names) = try loadGolden(directory)
        #expect(!names.isEmpty)
        #expect(try fs.list("/fresh").filter { $0.hasSuffix(".vlog") } == names)
        for name in names {
            #expect(fs.contents(of: "/fresh/" + name) == golden.contents(of: "/golden/" + name), "\(name) differs from the golden file")
        }
    }

    @Test(arguments: goldenLogDirectories)
    func goldenLogDecodes(directory: String) throws {
        let (fs, names) = try loadGolden(directory)
        let version: UInt16 = directory == goldenLogDirectoryV1 ? 1 : LogFormat.version
        #expect(names.count >= 2, "the golden log must contain a rotation")
        for (position, name) in names.enumerated() {
            let scan = SegmentScanner.scan(fs.contents(of: "/golden/" + name)!, isLast: position == names.count - 1)
            #expect(scan.end == .clean, "\(name)")
            #expect(scan.header?.logID == 0x5EED)
            #expect(scan.records.first?.header.kind == .checkpoint)
            #expect(scan.header?.version == version)
            // Version 2 segments were prepared: the records end in a zero-filled tail.
            #expect((scan.zeroFilledTailBytes > 0) == (version >= LogFormat.zeroFilledTailVersion), "\(name)")
        }
        let records = names.flatMap { SegmentScanner.scan(fs.contents(of: "/golden/" + $0)!, isLast: true).records }
        #expect(records.contains { $0.header.flags.contains(.lz4) })
        #expect(records.contains { $0.header.kind == .truncatePrefix })
        #expect(records.contains { $0.header.kind == .truncateSuffix })
        #expect(records.contains { $0.header.kind == .seal })
        let (log, report) = try RecordLog.open(directory: "/golden", fileSystem: fs, options: goldenOptions())
        #expect(report.tornTails.isEmpty)
        for (stream, payloads) in goldenExpected {
            #expect(try log.read(stream: stream).map(\.payload) == payloads, "stream \(stream)")
        }
        log.close()
    }

    @Test(arguments: goldenLogDirectories)
    func dumpMatchesCommittedText(directory: String) throws {
        let fs = POSIXFileSystem()
        let names = try fs.list(directory).filter { $0.hasSuffix(".vlog") }
        for name in names {
            let dump = try Inspector.dump(path: directory + "/" + name, fileSystem: fs)
            let text = dump.text.replacingOccurrences(of: directory + "/", with: "") + "\n"
            let expected = try String(contentsOfFile: directory + "/" + name + ".dump.txt", encoding: .utf8)
            #expect(text == expected, "dump of \(name) changed; diff it against \(name).dump.txt")
            #expect(dump.json.rendered().contains("\"format\":\"record-log-segment\""))
        }
        let findings = try Inspector.verify(path: directory, fileSystem: fs)
        #expect(findings.count == names.count)
        #expect(findings.allSatisfy { $0.status == .ok }, "\(findings.map(\.line))")
    }

    /// Every single flipped byte of every golden segment is detected: by recovery (a typed
    /// corruption error, or for the newest segment's last batch a reported torn tail — never
    /// changed data) and by `vectron-tool verify`.
    @Test(arguments: goldenLogDirectories)
    func everyFlippedByteIsDetected(directory: String) throws {
        let (golden, names) = try loadGolden(directory)
        var corruptions = 0, torn = 0
        for (position, name) in names.enumerated() {
            let original = golden.contents(of: "/golden/" + name)!
            let isNewest = position == names.count - 1
            for offset in 0..<original.count {
                let (fs, _) = try loadGolden(directory)
                var flipped = original
                flipped[offset] ^= 0xFF
                fs.setContents(of: "/golden/" + name, flipped)
                let findings = try Inspector.verify(path: "/golden", fileSystem: fs)
                #expect(findings.contains { $0.status != .ok }, "verify missed a flip at \(name) byte \(offset)")
                switch try openAfterFlip(fs, isNewest: isNewest, where: "\(name) byte \(offset)") {
                case .corruption: corruptions += 1
                case .tornTail: torn += 1
                }
            }
        }
        #expect(corruptions > torn)
    }

    enum FlipOutcome { case corruption, tornTail }

    func openAfterFlip(_ fs: MemoryFileSystem, isNewest: Bool, where place: String) throws -> FlipOutcome {
        let opened = Result { () throws(LogError) in try RecordLog.open(directory: "/golden", fileSystem: fs, options: goldenOptions()) }
        guard case let .success((log, report)) = opened else {
            if case .failure(.corruption) = opened { return .corruption }
            Issue.record("flip at \(place): unexpected outcome \(opened)")
            return .corruption
        }
        #expect(isNewest && !report.tornTails.isEmpty, "flip at \(place) went unnoticed")
        // A torn tail may drop the newest batch (even a truncation marker), but whatever is
        // served must be records that were written, in order, unchanged.
        for stream in log.streams() {
            let served = try log.read(stream: stream).map(\.payload)
            let written = goldenWritten[stream] ?? []
            var cursor = 0
            var unchanged = true
            for payload in served {
                while cursor < written.count && written[cursor] != payload { cursor += 1 }
                if cursor == written.count { unchanged = false; break }
                cursor += 1
            }
            #expect(unchanged, "flip at \(place) changed served data of stream \(stream)")
        }
        log.close()
        return .tornTail
    }
}
