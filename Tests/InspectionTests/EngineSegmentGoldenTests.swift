// Golden engine segment: Format/golden/segment/000002.vseg, a segment in internal-key order
// (Format/segment.md §2 `keyOrder` = 1, §14): user keys that are prefixes of one another and
// contain 0x00 bytes, several versions of one key (newest first), a deletion, 128-byte blocks.
// The tests check that today's writer still produces the committed bytes, decode them through
// the reader (order, lookups by user key through the filter, seeks), and that every single-byte
// flip is rejected when the segment is opened and read in full.
//
// Regenerate: VECTRON_REGENERATE_GOLDEN=1 swift test --filter EngineSegmentGoldenTests

import FileIO
import FileIOSim
import Foundation
import StorageFormat
import Testing
import Wire

let engineGoldenName = "000002.vseg"

/// (user key, sequence, kind, value), in internal-key order.
func engineGoldenEntries() -> [(key: [UInt8], value: [UInt8])] {
    var entries: [(user: [UInt8], sequence: UInt64, kind: ValueKind, value: [UInt8])] = []
    for i in 0..<12 { entries.append(([0x00, UInt8(i)], UInt64(100 + i), .value, [UInt8](repeating: UInt8(i), count: 20))) }
    entries.append((Array("a".utf8), 7, .value, Array("short".utf8)))
    entries.append((Array("a\u{0}".utf8), 8, .deletion, []))
    entries.append((Array("ab".utf8), 30, .value, Array("newest".utf8)))
    entries.append((Array("ab".utf8), 20, .deletion, []))
    entries.append((Array("ab".utf8), 10, .value, Array("oldest".utf8)))
    entries.append((Array("b".utf8), 5, .value, [UInt8](repeating: 0x5A, count: 90)))
    let encoded = entries.map { (InternalKey.encode(userKey: $0.user, sequence: $0.sequence, kind: $0.kind), $0.value) }
    return encoded.sorted { compareInternalKeys($0.0, $1.0) < 0 }.map { (key: $0.0, value: $0.1) }
}

func writeEngineGoldenSegment(_ fs: any FileSystem, path: String) throws {
    let handle = try fs.open(path, options: [.read, .write, .create, .truncate])
    var options = SegmentWriterOptions()
    options.blockBytes = 128
    options.restartInterval = 4
    options.keyOrder = .internalKey
    let writer = SegmentWriter(handle: handle, options: options)
    for entry in engineGoldenEntries() { try writer.add(key: entry.key, value: entry.value) }
    _ = try writer.finish { $0.smallestSequence = 5; $0.largestSequence = 111 }
    try handle.sync()
    handle.close()
}

@Suite(.serialized) struct EngineSegmentGoldenTests {
    let path = goldenSegmentDirectory + "/" + engineGoldenName

    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try writeEngineGoldenSegment(POSIXFileSystem(), path: path)
    }

    @Test func decodesInInternalKeyOrderAndIsStillWrittenTheSameWay() throws {
        let golden = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let fs = MemoryFileSystem()
        try writeEngineGoldenSegment(fs, path: "/fresh.vseg")
        #expect(fs.contents(of: "/fresh.vseg") == golden, "the writer no longer produces the golden bytes")
        fs.setContents(of: "/golden.vseg", golden)
        let reader = try SegmentReader(handle: try fs.open("/golden.vseg", options: .read))
        #expect(reader.footer.keyOrder == .internalKey)
        #expect(golden[golden.count - 64 + 38] == 1 && golden[golden.count - 64 + 39] == 0, "keyOrder at F+38 is 1")
        #expect(reader.blockCount > 2)
        let expected = engineGoldenEntries()
        let scanned = try reader.scan()
        #expect(scanned.map(\.key) == expected.map(\.key))
        #expect(scanned.map(\.value) == expected.map(\.value))
        // Newest version first; "a" < "a\0" < "ab" < "b" although bytewise "a"+trailer would not.
        let decoded = try scanned.map { try InternalKey.decode($0.key) }
        let users = decoded.map(\.userKey).filter { $0.first != 0 }
        #expect(users == [Array("a".utf8), Array("a\u{0}".utf8), Array("ab".utf8), Array("ab".utf8), Array("ab".utf8), Array("b".utf8)])
        #expect(decoded.filter { $0.userKey == Array("ab".utf8) }.map(\.sequence) == [30, 20, 10])
        // A seek key finds the newest version visible at a sequence, through the filter.
        let cursor = SegmentCursor(reader)
        try cursor.seek(InternalKey.seekKey(userKey: Array("ab".utf8), sequence: 25))
        #expect(try InternalKey.decode(cursor.key) == InternalKey(userKey: Array("ab".utf8), sequence: 20, kind: .deletion))
        for entry in expected { #expect(try reader.get(entry.key) == entry.value) }
    }

    @Test func everySingleByteFlipIsRejected() throws {
        let golden = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let fs = MemoryFileSystem()
        for position in golden.indices {
            var bytes = golden
            bytes[position] ^= 0x10
            fs.setContents(of: "/flip.vseg", bytes)
            let outcome = Result { () throws(SegmentError) -> [(key: [UInt8], value: [UInt8])] in
                let handle: any FileIO.FileHandle
                do throws(FileIOError) { handle = try fs.open("/flip.vseg", options: .read) } catch { throw .io(error) }
                return try SegmentReader(handle: handle).scan()
            }
            guard case .failure(.corruption) = outcome else {
                Issue.record("flip at \(position) not rejected: \(outcome)")
                continue
            }
        }
    }
}
