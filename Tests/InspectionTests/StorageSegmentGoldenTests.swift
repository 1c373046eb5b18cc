// Golden storage segment: Format/golden/segment/000001.vseg is written by `writeGoldenSegment`
// (fixed keys and values: prefix-shared keys, a compressible and an incompressible run, 256-byte
// blocks so there are several). The tests decode the committed bytes, check that today's writer
// still produces them, compare `vectron-tool dump` with the committed text, and check that
// verify passes on it and fails on a damaged copy.
//
// Regenerate (new format version, or a writer policy change): VECTRON_REGENERATE_GOLDEN=1
// swift test --filter StorageSegmentGoldenTests

import FileIO
import FileIOSim
import Foundation
import Inspection
import StorageFormat
import Testing

let goldenSegmentDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path + "/Format/golden/segment"
let goldenSegmentName = "000001.vseg"

func goldenSegmentEntries() -> [(key: [UInt8], value: [UInt8])] {
    (0..<40).map { i in
        let key = Array("points/\(1000 + i * 7)".utf8)
        let value: [UInt8] = i % 2 == 0
            ? [UInt8](repeating: UInt8(i), count: 30)
            : (0..<(10 + i)).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ i) }
        return (key, value)
    }
}

func writeGoldenSegment(_ fs: any FileSystem, path: String) throws {
    let handle = try fs.open(path, options: [.read, .write, .create, .truncate])
    var options = SegmentWriterOptions()
    options.blockBytes = 256
    let writer = SegmentWriter(handle: handle, options: options)
    for entry in goldenSegmentEntries() { try writer.add(key: entry.key, value: entry.value) }
    _ = try writer.finish { $0.smallestSequence = 1; $0.largestSequence = 40; $0.appliedIndexes = [3: 17] }
    try handle.sync()
    handle.close()
}

@Suite(.serialized) struct StorageSegmentGoldenTests {
    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        let fs = POSIXFileSystem()
        try fs.createDirectory(goldenSegmentDirectory)
        let path = goldenSegmentDirectory + "/" + goldenSegmentName
        try writeGoldenSegment(fs, path: path)
        let dump = try Inspector.dump(path: path, fileSystem: fs)
        try (dump.text.replacingOccurrences(of: goldenSegmentDirectory + "/", with: "") + "\n")
            .write(toFile: path + ".dump.txt", atomically: true, encoding: .utf8)
    }

    @Test func goldenSegmentDecodesAndIsStillWrittenTheSameWay() throws {
        let path = goldenSegmentDirectory + "/" + goldenSegmentName
        let golden = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let fs = MemoryFileSystem()
        try writeGoldenSegment(fs, path: "/fresh.vseg")
        #expect(fs.contents(of: "/fresh.vseg") == golden, "the writer no longer produces the golden bytes")
        fs.setContents(of: "/golden.vseg", golden)
        let reader = try SegmentReader(handle: try fs.open("/golden.vseg", options: .read))
        #expect(reader.properties.dataBlockCount > 2)
        #expect(reader.properties.appliedIndexes == [3: 17])
        let entries = try reader.scan()
        #expect(entries.map(\.key) == goldenSegmentEntries().map(\.key))
        #expect(entries.map(\.value) == goldenSegmentEntries().map(\.value))
    }

    @Test func dumpMatchesCommittedTextAndVerifyPasses() throws {
        let fs = POSIXFileSystem()
        let path = goldenSegmentDirectory + "/" + goldenSegmentName
        let dump = try Inspector.dump(path: path, fileSystem: fs)
        let expected = try String(contentsOfFile: path + ".dump.txt", encoding: .utf8)
        #expect(dump.text.replacingOccurrences(of: goldenSegmentDirectory + "/", with: "") + "\n" == expected)
        #expect(dump.json.rendered().contains("\"format\":\"storage-segment\""))
        let findings = try Inspector.verify(path: goldenSegmentDirectory, fileSystem: fs)
        // The directory holds the bytewise golden segment and the engine one (000002.vseg).
        #expect(findings.count == 2 && findings.allSatisfy { $0.status == .ok }, "\(findings.map(\.line))")
    }

    @Test func verifyReportsADamagedSegment() throws {
        let golden = [UInt8](try Data(contentsOf: URL(fileURLWithPath: goldenSegmentDirectory + "/" + goldenSegmentName)))
        let fs = MemoryFileSystem()
        try fs.createDirectory("/data")
        for offset in stride(from: 0, to: golden.count, by: 3) {
            var damaged = golden
            damaged[offset] ^= 0x08
            fs.setContents(of: "/data/" + goldenSegmentName, damaged)
            let findings = try Inspector.verify(path: "/data", fileSystem: fs)
            #expect(findings.count == 1 && findings[0].status == .corrupt, "flip at byte \(offset) passed verify")
        }
    }
}
