// Seeded generators of catalog commands for the catalog tests.

import Basics
import Catalog
import VectorIndex

struct CatalogCommandGenerator {
    var random: SeededRandom

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func time() -> Int64 { Int64(bitPattern: random.next()) }

    static let nameCharacters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")

    /// A valid collection name (from a small space when `few`, so names repeat).
    mutating func collectionName(few: Bool = false) -> String {
        if few { return "c\(int(0...7))" }
        let name = String((0..<int(1...20)).map { _ in Self.nameCharacters[int(0...(Self.nameCharacters.count - 1))] })
        return name == "." || name == ".." ? "dot" : name
    }

    mutating func text(_ range: ClosedRange<Int>) -> String {
        let pieces = ["a", "b", "@", ".", "é", "日", "🙂", " ", "x9"]
        return (0..<int(range)).map { _ in pieces[int(0...(pieces.count - 1))] }.joined()
    }

    mutating func metric() -> Metric { Metric.allCases[int(0...(Metric.allCases.count - 1))] }

    /// Any command of `kind` (1…7, Format/catalog.md §1), with fields anywhere in their ranges.
    mutating func command(kind: Int) -> CatalogCommand {
        switch kind {
        case 1:
            return .createCollection(name: collectionName(), owner: random.next() >> UInt64(int(0...63)),
                                     dimension: int(1...65_536), metric: metric(), shards: int(1...Catalog.shardsMax),
                                     m: int(0...1024), efConstruct: int(0...(1 << 20)), createdAt: time())
        case 2: return .deleteCollection(name: text(0...12), firstGroup: nil)
        case 3: return .createUser(email: text(0...30), passwordHash: "$argon2id$v=19$" + text(0...40), isAdmin: random.chance(0.5), createdAt: time())
        case 4: return .createKey(id: text(1...16), owner: random.next() >> UInt64(int(0...63)), hash: random.bytes(int(0...64)),
                                  name: text(0...20), createdAt: time())
        case 5: return .deleteKey(id: text(0...16))
        case 7: return .deleteCollection(name: text(0...12), firstGroup: random.next() >> UInt64(int(0...63)))
        default: return .initialise(secret: random.bytes(int(0...1024)))
        }
    }

    /// A command that is likely to change a catalog built from a small space of names, emails
    /// and key ids (so duplicates and deletes of existing things happen).
    mutating func stateCommand() -> CatalogCommand {
        switch int(0...9) {
        case 0...2:
            return .createCollection(name: collectionName(few: true), owner: UInt64(int(1...4)), dimension: int(1...1536),
                                     metric: metric(), shards: int(1...4), m: int(4...32), efConstruct: int(16...200), createdAt: time())
        case 3: return .deleteCollection(name: collectionName(few: true), firstGroup: random.chance(0.5) ? nil : UInt64(1024 + int(0...40)))
        case 4, 5: return .createUser(email: "user\(int(0...6))@example.com", passwordHash: "$argon2id$v=19$m=65536,t=2,p=1$" + text(4...8),
                                      isAdmin: random.chance(0.3), createdAt: time())
        case 6, 7: return .createKey(id: "key\(int(0...6))", owner: UInt64(int(1...5)), hash: random.bytes(32), name: text(0...8), createdAt: time())
        case 8: return .deleteKey(id: "key\(int(0...6))")
        default: return .initialise(secret: random.bytes(int(0...64)))
        }
    }

    mutating func catalog(commands: Int) -> Catalog {
        var catalog = Catalog()
        for _ in 0..<commands { _ = catalog.apply(stateCommand()) }
        return catalog
    }
}
