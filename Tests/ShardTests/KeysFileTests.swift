// The keys file of a vector checkpoint (Format/shard.md §4.1): a real file, written by a shard's
// checkpoint, must be refused with a typed error after any single-byte change or truncation;
// and files whose checksum is right but whose entries break a rule are refused too.

import Basics
import Checksum
import FileIOSim
import Payload
@testable import Shard
import Testing
import VectorIndex
import Wire

@Suite struct KeysFileTests {
    /// A keys file from a shard that saw upserts, an update and a delete (so numbers have a gap).
    static func realKeysFile() throws -> (bytes: [UInt8], applied: UInt64) {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.euclid))
        var generator = CommandGenerator(seed: 11, dimension: 4)
        var entries: [(index: UInt64, data: [UInt8])] = []
        for index in 1...12 { entries.append((UInt64(index), generator.command(kind: index % 4 == 0 ? 2 : 1).encode())) }
        try shard.apply(entries)
        try shard.checkpoint()
        let applied = UInt64(entries.count)
        let bytes = try #require(fileSystem.contents(of: "\(ShardFixture.shardsDirectory)/1024/\(VectorState.keysFileName(applied))"))
        return (bytes, applied)
    }

    @Test func theRealFileDecodes() throws {
        let (bytes, applied) = try Self.realKeysFile()
        let decoded = try VectorState.decodeKeys(bytes)
        #expect(decoded.applied == applied)
        #expect(!decoded.keys.isEmpty)
        #expect(decoded.keys.keys.allSatisfy { $0 >= 1 && $0 < decoded.nextNumber })
        #expect(Array(bytes[0..<8]) == Array("VXKEYS01".utf8))
    }

    @Test func everySingleByteFlipIsRefused() throws {
        let (bytes, _) = try Self.realKeysFile()
        for position in bytes.indices {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                let error = thrownDecodeError { () throws(DecodeError) in _ = try VectorState.decodeKeys(Mutation.flipped(bytes, at: position, mask: mask)) }
                #expect(error != nil, "flipping byte \(position) with \(mask) was not noticed")
            }
        }
    }

    @Test func everyTruncationIsRefused() throws {
        let (bytes, _) = try Self.realKeysFile()
        for length in 0..<bytes.count {
            let error = thrownDecodeError { () throws(DecodeError) in _ = try VectorState.decodeKeys(Array(bytes[..<length])) }
            #expect(error != nil, "a \(length)-byte prefix decoded")
        }
        let extended = thrownDecodeError { () throws(DecodeError) in _ = try VectorState.decodeKeys(bytes + [0]) }
        #expect(extended != nil)
    }

    /// A keys file with the given fields and a correct checksum.
    static func keysFile(applied: UInt64 = 5, next: UInt64 = 10, count: UInt64? = nil, reserved: UInt32 = 0,
                         entries: [(UInt64, [UInt8])], trailing: [UInt8] = []) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(bytes: Array("VXKEYS01".utf8))
        writer.write(UInt32(1))
        writer.write(reserved)
        writer.write(applied)
        writer.write(next)
        writer.write(count ?? UInt64(entries.count))
        for (number, key) in entries {
            writer.write(number)
            writer.writeLengthPrefixed(key)
        }
        writer.write(bytes: trailing)
        writer.write(XXH3.hash(writer.bytes))
        return writer.finish()
    }

    @Test func structuralRulesAreEnforcedBehindAGoodChecksum() throws {
        func refused(_ bytes: [UInt8]) -> DecodeError? {
            thrownDecodeError { () throws(DecodeError) in _ = try VectorState.decodeKeys(bytes) }
        }
        let good = Self.keysFile(entries: [(1, [1]), (4, [2, 3])])
        let decoded = try VectorState.decodeKeys(good)
        #expect(decoded.applied == 5 && decoded.nextNumber == 10 && decoded.keys == [1: [1], 4: [2, 3]])
        #expect(refused(Self.keysFile(entries: [(4, [1]), (1, [2])]))?.field == "keys.entry.number")
        #expect(refused(Self.keysFile(entries: [(1, [1]), (1, [2])]))?.field == "keys.entry.number")
        #expect(refused(Self.keysFile(entries: [(0, [1])]))?.field == "keys.entry.number")
        #expect(refused(Self.keysFile(entries: [(10, [1])]))?.field == "keys.entry.number")
        #expect(refused(Self.keysFile(entries: [(1, [1]), (2, [1])]))?.field == "keys.entry.key")
        #expect(refused(Self.keysFile(entries: [(1, [])]))?.field == "keys.count", "9 bytes cannot hold an entry")
        #expect(refused(Self.keysFile(entries: [(1, []), (2, [1, 2, 3])]))?.field == "keys.entry.key")
        #expect(refused(Self.keysFile(entries: [(1, Array(repeating: 7, count: 65))]))?.field.hasPrefix("keys.entry.key") == true)
        #expect(refused(Self.keysFile(count: 1_000_000, entries: [(1, [1])]))?.field == "keys.count")
        #expect(refused(Self.keysFile(count: 3, entries: [(1, [1]), (2, [2])]))?.field != nil)
        #expect(refused(Self.keysFile(reserved: 1, entries: []))?.field == "keys.reserved")
        // A counter with no number left to give would trap at the next new key.
        #expect(refused(Self.keysFile(next: .max, entries: [(1, [1])]))?.field == "keys.next number")
        #expect(try VectorState.decodeKeys(Self.keysFile(next: .max - 1, entries: [(1, [1])])).nextNumber == .max - 1)
        #expect(refused(Self.keysFile(entries: [(1, [1])], trailing: [0]))?.field == "keys")
        var badVersion = good
        badVersion[8] = 2
        #expect(refused(badVersion)?.reason == .unsupportedVersion(2))
    }
}
