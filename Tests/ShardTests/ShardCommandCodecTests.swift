// The bytes of shard commands and point records (Format/shard.md §2, §3): seeded round trips
// of every command kind, and damaged input — every truncation, seeded byte flips, lying
// counts, trailing bytes — which must give a typed DecodeError (or, for a flip, possibly
// another valid command), never a trap.

import Basics
import Shard
import Testing
import Wire

@Suite struct ShardCommandCodecTests {
    static let kinds = Array(1...6)

    @Test(arguments: kinds) func commandsRoundTrip(kind: Int) throws {
        var generator = ArbitraryCommandGenerator(random: SeededRandom(seed: 100 + UInt64(kind)))
        for _ in 0..<200 {
            let command = generator.command(kind: kind)
            let bytes = command.encode()
            #expect(bytes[0] == ShardCommand.formatVersion)
            #expect(bytes[1] == UInt8(kind))
            #expect(try ShardCommand.decode(bytes) == command)
        }
    }

    @Test(arguments: kinds) func everyTruncationOfACommandIsRefused(kind: Int) {
        var generator = ArbitraryCommandGenerator(random: SeededRandom(seed: 200 + UInt64(kind)))
        for _ in 0..<20 {
            let bytes = generator.command(kind: kind).encode()
            for length in 0..<bytes.count {
                let error = thrownDecodeError { () throws(DecodeError) in _ = try ShardCommand.decode(Array(bytes[..<length])) }
                #expect(error != nil, "a \(length)-byte prefix of \(bytes.count) decoded")
            }
        }
    }

    @Test(arguments: kinds) func byteFlipsGiveATypedErrorOrAnotherValidCommand(kind: Int) {
        var generator = ArbitraryCommandGenerator(random: SeededRandom(seed: 300 + UInt64(kind)))
        var random = SeededRandom(seed: 400 + UInt64(kind))
        var refused = 0
        var accepted = 0
        for _ in 0..<40 {
            let bytes = generator.command(kind: kind).encode()
            for (position, mask) in Mutation.flips(count: bytes.count, samples: 40, random: &random) {
                let damaged = Mutation.flipped(bytes, at: position, mask: mask)
                do throws(DecodeError) {
                    let decoded = try ShardCommand.decode(damaged)
                    // Whatever decodes is a command in its own right: it survives its own round trip
                    // (compared as bytes: a flip may make a NaN, which equals nothing).
                    #expect(try ShardCommand.decode(decoded.encode()).encode() == decoded.encode())
                    accepted += 1
                } catch {
                    #expect(!error.field.isEmpty)
                    #expect(error.offset <= UInt64(damaged.count))
                    refused += 1
                }
            }
        }
        #expect(refused > 0)
    }

    @Test func countsAboveTheBytesLeftAreRefused() {
        // delete, count 1000, then 3 bytes.
        var writer = ByteWriter()
        writer.write(ShardCommand.formatVersion)
        writer.write(UInt8(2))
        writer.writeVarint(1000)
        writer.write(bytes: [1, 0x41, 1])
        let error = thrownDecodeError { () throws(DecodeError) in _ = try ShardCommand.decode(writer.bytes) }
        #expect(error?.field == "command.keys.count")
        #expect(error?.reason == .tooLarge(value: 1000, limit: 3))

        // upsert claiming 2^40 points.
        var upsert = ByteWriter()
        upsert.write(ShardCommand.formatVersion)
        upsert.write(UInt8(1))
        upsert.writeVarint(1 << 40)
        let upsertError = thrownDecodeError { () throws(DecodeError) in _ = try ShardCommand.decode(upsert.bytes) }
        #expect(upsertError?.field == "command.points.count")

        // delete-payload-keys: a path count above the bytes left.
        var paths = ByteWriter()
        paths.write(ShardCommand.formatVersion)
        paths.write(UInt8(5))
        paths.writeVarint(1)
        paths.writeLengthPrefixed([7])
        paths.writeVarint(5)
        paths.writeLengthPrefixed(Array("a".utf8))
        let pathsError = thrownDecodeError { () throws(DecodeError) in _ = try ShardCommand.decode(paths.bytes) }
        #expect(pathsError?.field == "command.paths.count")
    }

    @Test func countsAboveTheLimitAreRefusedEvenWithTheBytes() {
        var writer = ByteWriter(capacity: ShardCommand.countMax + 16)
        writer.write(ShardCommand.formatVersion)
        writer.write(UInt8(6))
        writer.writeVarint(UInt64(ShardCommand.countMax + 1))
        writer.writeZeros(ShardCommand.countMax + 1)
        let error = thrownDecodeError { () throws(DecodeError) in _ = try ShardCommand.decode(writer.bytes) }
        #expect(error?.field == "command.keys.count")
        #expect(error?.reason == .tooLarge(value: UInt64(ShardCommand.countMax + 1), limit: UInt64(ShardCommand.countMax)))
    }

    @Test(arguments: kinds) func trailingBytesAreRefused(kind: Int) {
        var generator = ArbitraryCommandGenerator(random: SeededRandom(seed: 500 + UInt64(kind)))
        let bytes = generator.command(kind: kind).encode() + [0]
        let error = thrownDecodeError { () throws(DecodeError) in _ = try ShardCommand.decode(bytes) }
        #expect(error?.field == "command")
    }

    @Test func fieldRulesAreEnforced() {
        func refused(_ bytes: [UInt8]) -> DecodeError? {
            thrownDecodeError { () throws(DecodeError) in _ = try ShardCommand.decode(bytes) }
        }
        let version = ShardCommand.formatVersion
        #expect(refused([2, 2, 0])?.reason == .unsupportedVersion(2))
        #expect(refused([version, 0, 0])?.reason == .invalidValue(0))
        #expect(refused([version, 7, 0])?.reason == .invalidValue(7))
        // An empty key, a key of 65 bytes.
        #expect(refused([version, 2, 1, 0])?.field == "command.keys.key")
        #expect(refused([version, 2, 1, 65] + Array(repeating: 1, count: 65))?.reason == .tooLarge(value: 65, limit: 64))
        // Upsert: dimension 0 and 65,537.
        #expect(refused([version, 1, 1, 1, 9, 0, 0])?.field == "command.point.dimension")
        var large = ByteWriter()
        large.write(bytes: [version, 1, 1, 1, 9])
        large.writeVarint(65_537)
        #expect(refused(large.bytes)?.field == "command.point.dimension")
        // Set payload: the path flag is 0 or 1; a path is UTF-8.
        #expect(refused([version, 3, 1, 1, 9, 2, 0x7B, 0x7D, 2])?.field == "command.path.present")
        #expect(refused([version, 3, 1, 1, 9, 2, 0x7B, 0x7D, 1, 1, 0xFF])?.field == "command.path")
        #expect((try? ShardCommand.decode([version, 3, 1, 1, 9, 2, 0x7B, 0x7D, 1, 1, 0x61]))
            == .setPayload(keys: [[9]], payload: Array("{}".utf8), path: "a"))
        // Empty data is no command (the caller handles it), so it is refused here.
        #expect(refused([])?.field == "command.version")
    }

    // MARK: Point records

    @Test func pointRecordsRoundTrip() throws {
        var generator = ArbitraryCommandGenerator(random: SeededRandom(seed: 600))
        for _ in 0..<300 {
            let record = generator.record()
            #expect(try PointRecord.decode(record.encode()) == record)
        }
    }

    @Test func damagedPointRecordsAreRefusedOrValid() {
        var generator = ArbitraryCommandGenerator(random: SeededRandom(seed: 700))
        var random = SeededRandom(seed: 701)
        for _ in 0..<50 {
            let bytes = generator.record().encode()
            for length in 0..<bytes.count {
                let error = thrownDecodeError { () throws(DecodeError) in _ = try PointRecord.decode(Array(bytes[..<length])) }
                #expect(error != nil, "a \(length)-byte prefix of a \(bytes.count)-byte record decoded")
            }
            let trailing = thrownDecodeError { () throws(DecodeError) in _ = try PointRecord.decode(bytes + [0]) }
            #expect(trailing?.field == "point")
            for (position, mask) in Mutation.flips(count: bytes.count, samples: 30, random: &random) {
                let damaged = Mutation.flipped(bytes, at: position, mask: mask)
                do throws(DecodeError) {
                    // Whatever decodes is a record in its own right (compared as bytes: a flip may make a NaN).
                    let again = try PointRecord.decode(PointRecord.decode(damaged).encode()).encode()
                    #expect(again == (try PointRecord.decode(damaged).encode()))
                } catch {
                    #expect(!error.field.isEmpty)
                }
            }
        }
        // A dimension above the bytes left.
        var writer = ByteWriter()
        writer.write(PointRecord.formatVersion)
        writer.writeVarint(1000)
        writer.writeZeros(12)
        let error = thrownDecodeError { () throws(DecodeError) in _ = try PointRecord.decode(writer.bytes) }
        #expect(error?.field == "point.dimension")
        #expect(thrownDecodeError { () throws(DecodeError) in _ = try PointRecord.decode([2, 0, 0]) }?.reason == .unsupportedVersion(2))
    }
}

/// The DecodeError a typed body throws, or nil.
func thrownDecodeError(_ body: () throws(DecodeError) -> Void) -> DecodeError? {
    do throws(DecodeError) {
        try body()
        return nil
    } catch {
        return error
    }
}
