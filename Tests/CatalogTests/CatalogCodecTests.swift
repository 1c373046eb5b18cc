// The catalog's bytes (Format/catalog.md): command round trips of every kind, refused damage
// (truncations, trailing bytes, out-of-range fields), and the snapshot: a seeded random catalog
// round-trips, and every byte flip or truncation of its encoding is refused.

import Basics
import Catalog
import Checksum
import Testing
import VectorIndex
import Wire

@Suite struct CatalogCodecTests {
    static func refused(_ body: () throws(DecodeError) -> Void) -> DecodeError? {
        do throws(DecodeError) {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: 1...7) func commandsRoundTrip(kind: Int) throws {
        var generator = CatalogCommandGenerator(random: SeededRandom(seed: 50 + UInt64(kind)))
        for _ in 0..<200 {
            let command = generator.command(kind: kind)
            let bytes = command.encode()
            #expect(bytes[0] == CatalogCommand.formatVersion)
            #expect(bytes[1] == UInt8(kind))
            #expect(try CatalogCommand.decode(bytes) == command)
        }
    }

    @Test(arguments: 1...7) func damagedCommandsAreRefusedOrValid(kind: Int) {
        var generator = CatalogCommandGenerator(random: SeededRandom(seed: 60 + UInt64(kind)))
        var random = SeededRandom(seed: 70 + UInt64(kind))
        for _ in 0..<20 {
            let bytes = generator.command(kind: kind).encode()
            for length in 0..<bytes.count {
                #expect(Self.refused { () throws(DecodeError) in _ = try CatalogCommand.decode(Array(bytes[..<length])) } != nil)
            }
            #expect(Self.refused { () throws(DecodeError) in _ = try CatalogCommand.decode(bytes + [0]) }?.field == "command")
            for _ in 0..<30 {
                var damaged = bytes
                damaged[Int.random(in: 0..<bytes.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
                do throws(DecodeError) {
                    let decoded = try CatalogCommand.decode(damaged)
                    #expect(try CatalogCommand.decode(decoded.encode()) == decoded)
                } catch {
                    #expect(!error.field.isEmpty)
                }
            }
        }
    }

    @Test func commandFieldRulesAreEnforced() {
        func decode(_ bytes: [UInt8]) -> DecodeError? { Self.refused { () throws(DecodeError) in _ = try CatalogCommand.decode(bytes) } }
        #expect(decode([2, 2, 0])?.reason == .unsupportedVersion(2))
        #expect(decode([1, 0])?.reason == .invalidValue(0))
        #expect(decode([1, 8])?.reason == .invalidValue(8))
        // A string over 4,096 bytes; a string that is not UTF-8.
        var long = ByteWriter()
        long.write(bytes: [1, 2])
        long.writeLengthPrefixed(Array(repeating: UInt8(0x61), count: 4097))
        #expect(decode(long.bytes)?.reason == .tooLarge(value: 4097, limit: 4096))
        #expect(decode([1, 2, 1, 0xC3])?.field == "collection.name")
        // Create collection: a metric that does not exist, too many shards.
        func collection(dimension: UInt64 = 4, metric: UInt8 = 1, shards: UInt64 = 1) -> [UInt8] {
            var writer = ByteWriter()
            writer.write(bytes: [1, 1, 1, 0x61])
            writer.writeVarint(1)
            writer.writeVarint(dimension)
            writer.write(metric)
            writer.writeVarint(shards)
            writer.writeVarint(16)
            writer.writeVarint(100)
            writer.write(UInt64(0))
            return writer.finish()
        }
        #expect(decode(collection()) == nil)
        #expect(decode(collection(metric: 9))?.field == "collection.metric")
        #expect(decode(collection(metric: 0))?.field == "collection.metric")
        #expect(decode(collection(shards: 65))?.field == "collection.shards")
        #expect(decode(collection(dimension: 65_537))?.field == "collection.dimension")
        // Create user: the admin flag is 0 or 1.
        #expect(decode([1, 3, 1, 0x61, 1, 0x68, 2, 0, 0, 0, 0, 0, 0, 0, 0])?.field == "user.admin")
        // Create key: a hash over 64 bytes. Initialise: a secret over 1,024 bytes.
        var key = ByteWriter()
        key.write(bytes: [1, 4, 1, 0x6B, 1])
        key.writeLengthPrefixed(Array(repeating: UInt8(1), count: 65))
        #expect(decode(key.bytes)?.field.hasPrefix("key.hash") == true)
        var secret = ByteWriter()
        secret.write(bytes: [1, 6])
        secret.writeLengthPrefixed(Array(repeating: UInt8(1), count: 1025))
        #expect(decode(secret.bytes)?.field.hasPrefix("secret") == true)
    }

    // MARK: Snapshots

    @Test func aRandomCatalogRoundTrips() throws {
        for seed in UInt64(1)...20 {
            var generator = CatalogCommandGenerator(random: SeededRandom(seed: seed))
            let catalog = generator.catalog(commands: Int(seed) * 15)
            let bytes = catalog.encode()
            let decoded = try Catalog.decode(bytes)
            #expect(decoded == catalog, "seed \(seed)")
            #expect(decoded.encode() == bytes, "seed \(seed): re-encoding differs")
        }
        #expect(try Catalog.decode(Catalog().encode()) == Catalog())
    }

    @Test func everyFlipAndTruncationOfASnapshotIsRefused() throws {
        var generator = CatalogCommandGenerator(random: SeededRandom(seed: 21))
        let catalog = generator.catalog(commands: 60)
        #expect(!catalog.collections.isEmpty && !catalog.users.isEmpty && !catalog.keys.isEmpty)
        let bytes = catalog.encode()
        for position in bytes.indices {
            for mask: UInt8 in [0x01, 0x80] {
                var damaged = bytes
                damaged[position] ^= mask
                #expect(Self.refused { () throws(DecodeError) in _ = try Catalog.decode(damaged) } != nil, "flip at \(position) not noticed")
            }
        }
        for length in 0..<bytes.count {
            #expect(Self.refused { () throws(DecodeError) in _ = try Catalog.decode(Array(bytes[..<length])) } != nil, "\(length)-byte prefix decoded")
        }
        #expect(Self.refused { () throws(DecodeError) in _ = try Catalog.decode(bytes + [0]) } != nil)
    }

    /// A snapshot body with a correct checksum (what a fuzzer cannot make): rules checked behind it.
    static func snapshot(_ body: (inout ByteWriter) -> Void) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(bytes: Array("VXCATLG1".utf8))
        body(&writer)
        writer.write(XXH3.hash(writer.bytes))
        return writer.finish()
    }

    /// A snapshot may carry counters at the end of their range (a decoder cannot tell them from
    /// real ones); applying commands to it must refuse, not overflow and trap.
    @Test func countersAtTheEndOfTheirRangeRefuseInsteadOfTrapping() throws {
        let bytes = Self.snapshot { writer in
            writer.writeVarint(UInt64.max - 1)
            writer.writeVarint(UInt64.max)
            writer.writeLengthPrefixed([])
            for _ in 0..<3 { writer.writeVarint(0) }
        }
        var catalog = try Catalog.decode(bytes)
        let before = catalog
        guard case .invalid = catalog.apply(.createCollection(name: "a", owner: 1, dimension: 2, metric: .dot, shards: 2, m: 4,
                                                               efConstruct: 8, createdAt: 0)),
              case .invalid = catalog.apply(.createUser(email: "e", passwordHash: "h", isAdmin: false, createdAt: 0)) else {
            Issue.record("a command past the end of the id space was accepted")
            return
        }
        #expect(catalog == before)
        guard case .collectionCreated(let info) = catalog.apply(.createCollection(name: "b", owner: 1, dimension: 2, metric: .dot, shards: 1,
                                                                                  m: 4, efConstruct: 8, createdAt: 0)) else {
            Issue.record("the last group id was refused")
            return
        }
        #expect(info.shardGroups == [UInt64.max - 1])
        #expect(try Catalog.decode(catalog.encode()) == catalog)
    }

    @Test func snapshotRulesAreEnforcedBehindAGoodChecksum() throws {
        func decode(_ bytes: [UInt8]) -> DecodeError? { Self.refused { () throws(DecodeError) in _ = try Catalog.decode(bytes) } }
        func header(_ writer: inout ByteWriter, nextGroup: UInt64 = 1030, nextUser: UInt64 = 3) {
            writer.writeVarint(nextGroup)
            writer.writeVarint(nextUser)
            writer.writeLengthPrefixed([9])
        }
        func collection(_ writer: inout ByteWriter, name: String, groups: [UInt64]) {
            writer.writeLengthPrefixed(Array(name.utf8))
            writer.writeVarint(1)
            writer.writeVarint(4)
            writer.write(Metric.dot.rawValue)
            writer.writeVarint(UInt64(groups.count))
            for group in groups { writer.writeVarint(group) }
            writer.writeVarint(16)
            writer.writeVarint(100)
            writer.write(UInt64(0))
        }
        func user(_ writer: inout ByteWriter, id: UInt64) {
            writer.writeVarint(id)
            writer.writeLengthPrefixed(Array("e\(id)".utf8))
            writer.writeLengthPrefixed(Array("h".utf8))
            writer.write(UInt8(0))
            writer.write(UInt64(0))
        }
        let good = Self.snapshot { writer in
            header(&writer)
            writer.writeVarint(1)
            collection(&writer, name: "a", groups: [1024, 1029])
            writer.writeVarint(2)
            user(&writer, id: 1)
            user(&writer, id: 2)
            writer.writeVarint(0)
        }
        let catalog = try Catalog.decode(good)
        #expect(catalog.collections["a"]?.shardGroups == [1024, 1029])
        #expect(catalog.users.count == 2 && catalog.nextUser == 3 && catalog.secret == [9])
        #expect(catalog.encode() == good)

        #expect(decode(Self.snapshot { w in header(&w); w.writeVarint(1); collection(&w, name: "a", groups: [1030]); w.writeVarint(0); w.writeVarint(0) })?.field == "collection.group")
        #expect(decode(Self.snapshot { w in header(&w); w.writeVarint(1); collection(&w, name: "a", groups: [1023]); w.writeVarint(0); w.writeVarint(0) })?.field == "collection.group")
        #expect(decode(Self.snapshot { w in
            header(&w); w.writeVarint(2); collection(&w, name: "a", groups: []); collection(&w, name: "a", groups: []); w.writeVarint(0); w.writeVarint(0)
        })?.field == "collection.name")
        #expect(decode(Self.snapshot { w in header(&w); w.writeVarint(0); w.writeVarint(1); user(&w, id: 3); w.writeVarint(0) })?.field == "user.id")
        #expect(decode(Self.snapshot { w in header(&w); w.writeVarint(0); w.writeVarint(2); user(&w, id: 1); user(&w, id: 1); w.writeVarint(0) })?.field == "user.id")
        #expect(decode(Self.snapshot { w in header(&w); w.writeVarint(0); w.writeVarint(0); w.writeVarint(0); w.write(UInt8(0)) })?.field == "catalog")
        #expect(decode(Self.snapshot { w in header(&w); w.writeVarint(500) })?.field == "catalog.collections.count")
        // A next group below 1,024 would give a new collection the liveness or catalog group.
        #expect(decode(Self.snapshot { w in header(&w, nextGroup: 1023); w.writeVarint(0); w.writeVarint(0); w.writeVarint(0) })?.field == "catalog.next group")
        #expect(decode(Self.snapshot { w in header(&w, nextGroup: 1024); w.writeVarint(0); w.writeVarint(0); w.writeVarint(0) }) == nil)
        var badMagic = good
        badMagic[0] ^= 0x20
        #expect(decode(badMagic)?.reason == .badMagic)
    }
}
