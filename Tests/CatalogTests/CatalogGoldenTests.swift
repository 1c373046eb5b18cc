// Golden files of the catalog formats (Format/catalog.md), in Format/golden/catalog/:
//   commands.bin  one command of each kind, as a sequence of `bytes` (varint length, command)
//   catalog.bin   the snapshot of the catalog those commands (and a few more) build
// The tests decode the committed bytes, compare with the values below and re-encode them byte
// for byte.
//
// Regenerate (only for a new format version, never to paper over a change):
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter CatalogGoldenTests

import Catalog
import Foundation
import Testing
import VectorIndex
import Wire

let catalogGoldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path + "/Format/golden/catalog"

enum CatalogGolden {
    static let commands: [CatalogCommand] = [
        .initialise(secret: Array("0123456789abcdef0123456789abcdef".utf8)),
        .createUser(email: "admin@example.com", passwordHash: "$argon2id$v=19$m=65536,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
                    isAdmin: true, createdAt: 1_790_000_000),
        .createCollection(name: "images", owner: 1, dimension: 384, metric: .cosine, shards: 3, m: 16, efConstruct: 128,
                          createdAt: 1_790_000_100),
        .createKey(id: "vk_01", owner: 1, hash: (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }, name: "ci", createdAt: 1_790_000_200),
        .deleteKey(id: "vk_00"),
        .deleteCollection(name: "scratch", firstGroup: nil),
        .deleteCollection(name: "docs.v2", firstGroup: 1030),
    ]

    /// The catalog of the golden snapshot: the commands above plus a deleted collection (its
    /// groups stay used) and a second user and collection.
    static func catalog() -> Catalog {
        var catalog = Catalog()
        for command in commands { _ = catalog.apply(command) }
        _ = catalog.apply(.createCollection(name: "scratch", owner: 1, dimension: 2, metric: .dot, shards: 2, m: 4, efConstruct: 8, createdAt: -1))
        _ = catalog.apply(.deleteCollection(name: "scratch", firstGroup: nil))
        _ = catalog.apply(.createUser(email: "reader@example.com", passwordHash: "$argon2id$v=19$x", isAdmin: false, createdAt: 1_790_000_300))
        _ = catalog.apply(.createCollection(name: "docs.v2", owner: 2, dimension: 3, metric: .euclid, shards: 1, m: 8, efConstruct: 64,
                                            createdAt: 1_790_000_400))
        return catalog
    }

    static func commandsFile() -> [UInt8] {
        var writer = ByteWriter()
        for command in commands { writer.writeLengthPrefixed(command.encode()) }
        return writer.finish()
    }

    static func read(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: catalogGoldenDirectory + "/" + name)))
    }
}

@Suite(.serialized) struct CatalogGoldenTests {
    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try FileManager.default.createDirectory(atPath: catalogGoldenDirectory, withIntermediateDirectories: true)
        try Data(CatalogGolden.commandsFile()).write(to: URL(fileURLWithPath: catalogGoldenDirectory + "/commands.bin"))
        try Data(CatalogGolden.catalog().encode()).write(to: URL(fileURLWithPath: catalogGoldenDirectory + "/catalog.bin"))
    }

    @Test func goldenCommandsDecodeAndReencode() throws {
        let bytes = try CatalogGolden.read("commands.bin")
        var reader = ByteReader(bytes)
        var decoded: [CatalogCommand] = []
        while !reader.isAtEnd {
            let record = Array(try reader.readLengthPrefixed("golden.command", limit: 1 << 20))
            let command = try CatalogCommand.decode(record)
            #expect(command.encode() == record)
            decoded.append(command)
        }
        #expect(decoded == CatalogGolden.commands)
        #expect(Set(decoded.map { $0.encode()[1] }) == Set(1...7), "one command of each kind")
    }

    @Test func goldenCatalogDecodesAndReencodes() throws {
        let bytes = try CatalogGolden.read("catalog.bin")
        let catalog = try Catalog.decode(bytes)
        let expected = CatalogGolden.catalog()
        #expect(catalog == expected)
        #expect(catalog.encode() == bytes)
        #expect(catalog.nextGroup == 1030 && catalog.nextUser == 3)
        #expect(catalog.collections["images"]?.shardGroups == [1024, 1025, 1026])
        #expect(catalog.collections["docs.v2"]?.shardGroups == [1029])
        #expect(catalog.keys["vk_01"]?.name == "ci")
    }
}
