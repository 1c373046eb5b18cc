// The catalog's apply semantics (Format/catalog.md §1): validation of new collections, what a
// duplicate does (nothing), group ids (from 1,024 on, never reused), users and keys, and the
// one-time secret.

import Basics
import Catalog
import Testing
import VectorIndex

@Suite struct CatalogApplyTests {
    static func create(_ name: String, dimension: Int = 8, shards: Int = 1) -> CatalogCommand {
        .createCollection(name: name, owner: 1, dimension: dimension, metric: .cosine, shards: shards, m: 16, efConstruct: 100, createdAt: 1)
    }

    static func isInvalid(_ outcome: CatalogOutcome) -> Bool {
        if case .invalid = outcome { return true }
        return false
    }

    @Test(arguments: ["", ".", "..", "a b", "a/b", "é", "a\u{0}", "x:y", "name*", String(repeating: "a", count: 256)])
    func invalidCollectionNamesAreRefused(name: String) {
        var catalog = Catalog()
        #expect(Self.isInvalid(catalog.apply(Self.create(name))), "`\(name)` was accepted")
        #expect(catalog == Catalog(), "a refused command changes nothing")
    }

    @Test(arguments: ["a", "A-b_c.1", "...", ".hidden", "0", String(repeating: "z", count: 255)])
    func validCollectionNamesAreAccepted(name: String) {
        var catalog = Catalog()
        guard case .collectionCreated(let info) = catalog.apply(Self.create(name)) else {
            Issue.record("`\(name)` was refused")
            return
        }
        #expect(info.name == name)
        #expect(catalog.collections[name] == info)
    }

    @Test func shardAndDimensionBounds() {
        var catalog = Catalog()
        for shards in [0, Catalog.shardsMax + 1, -1] { #expect(Self.isInvalid(catalog.apply(Self.create("s\(shards)", shards: shards)))) }
        for dimension in [0, 65_537, -3] { #expect(Self.isInvalid(catalog.apply(Self.create("d\(dimension)", dimension: dimension)))) }
        #expect(catalog == Catalog(), "refused collections take no group ids")
        guard case .collectionCreated(let wide) = catalog.apply(Self.create("wide", dimension: 65_536, shards: Catalog.shardsMax)),
              case .collectionCreated(let narrow) = catalog.apply(Self.create("narrow", dimension: 1, shards: 1)) else {
            Issue.record("the bounds themselves were refused")
            return
        }
        #expect(wide.shardGroups == Array(1024..<(1024 + UInt64(Catalog.shardsMax))))
        #expect(narrow.shardGroups == [1024 + UInt64(Catalog.shardsMax)])
    }

    @Test func groupIdsAreAllocatedInOrderAndNeverReused() {
        var catalog = Catalog()
        #expect(catalog.nextGroup == Catalog.firstShardGroup)
        guard case .collectionCreated(let a) = catalog.apply(Self.create("a", shards: 3)),
              case .collectionCreated(let b) = catalog.apply(Self.create("b", shards: 2)) else { Issue.record("refused"); return }
        #expect(a.shardGroups == [1024, 1025, 1026])
        #expect(b.shardGroups == [1027, 1028])
        #expect(catalog.apply(.deleteCollection(name: "a", firstGroup: nil)) == .collectionDeleted(a))
        #expect(catalog.apply(.deleteCollection(name: "a", firstGroup: nil)) == .notFound("collection `a` does not exist"))
        guard case .collectionCreated(let again) = catalog.apply(Self.create("a", shards: 2)) else { Issue.record("refused"); return }
        #expect(again.shardGroups == [1029, 1030], "a new collection of an old name takes new groups")
        // A delete decided against the first `a` (a retry, a stale request) leaves the new one.
        #expect(catalog.apply(.deleteCollection(name: "a", firstGroup: 1024)) == .notFound("collection `a` was deleted and created again since"))
        #expect(catalog.collections["a"] == again)
        #expect(catalog.apply(.deleteCollection(name: "a", firstGroup: 1029)) == .collectionDeleted(again))
        _ = catalog.apply(Self.create("a", shards: 2))
        #expect(catalog.nextGroup == 1033)
        // Every group ever handed out is distinct, over a long random history.
        var generator = CatalogCommandGenerator(random: SeededRandom(seed: 3))
        var seen = Set<UInt64>(1024...1032)
        for _ in 0..<500 {
            if case .collectionCreated(let info) = catalog.apply(generator.stateCommand()) {
                for group in info.shardGroups { #expect(seen.insert(group).inserted, "group \(group) handed out twice") }
            }
        }
        #expect(catalog.nextGroup == 1024 + UInt64(seen.count))
    }

    @Test func duplicatesChangeNothing() {
        var catalog = Catalog()
        _ = catalog.apply(Self.create("a", shards: 2))
        _ = catalog.apply(.createUser(email: "x@y.z", passwordHash: "h1", isAdmin: false, createdAt: 5))
        _ = catalog.apply(.createKey(id: "k1", owner: 1, hash: [1, 2], name: "first", createdAt: 6))
        let before = catalog
        guard case .alreadyExists = catalog.apply(Self.create("a", dimension: 3, shards: 5)),
              case .alreadyExists = catalog.apply(.createUser(email: "x@y.z", passwordHash: "h2", isAdmin: true, createdAt: 7)),
              case .alreadyExists = catalog.apply(.createKey(id: "k1", owner: 1, hash: [3], name: "second", createdAt: 8)) else {
            Issue.record("a duplicate was accepted"); return
        }
        #expect(catalog == before)
        #expect(catalog.nextUser == 2)
        #expect(catalog.nextGroup == 1026)
    }

    @Test func usersAndKeys() {
        var catalog = Catalog()
        guard case .userCreated(let first) = catalog.apply(.createUser(email: "a@b", passwordHash: "h", isAdmin: true, createdAt: -5)),
              case .userCreated(let second) = catalog.apply(.createUser(email: "c@d", passwordHash: "h", isAdmin: false, createdAt: 0)) else {
            Issue.record("refused"); return
        }
        #expect(first.id == 1 && second.id == 2 && first.isAdmin && !second.isAdmin)
        #expect(catalog.user(email: "c@d") == second)
        // A key needs an existing owner.
        #expect(catalog.apply(.createKey(id: "k", owner: 9, hash: [1], name: "n", createdAt: 0)) == .notFound("user 9 does not exist"))
        guard case .keyCreated(let key) = catalog.apply(.createKey(id: "k", owner: 2, hash: [1], name: "n", createdAt: 0)) else {
            Issue.record("refused"); return
        }
        #expect(catalog.keys["k"] == key)
        #expect(catalog.apply(.deleteKey(id: "k")) == .keyDeleted(key))
        #expect(catalog.apply(.deleteKey(id: "k")) == .notFound("API key `k` does not exist"))
        // A deleted key id can be used again.
        guard case .keyCreated = catalog.apply(.createKey(id: "k", owner: 1, hash: [2], name: "m", createdAt: 1)) else {
            Issue.record("refused"); return
        }
    }

    @Test func theSecretIsSetOnlyOnce() {
        var catalog = Catalog()
        #expect(catalog.apply(.initialise(secret: [1, 2, 3])) == .done)
        #expect(catalog.apply(.initialise(secret: [4, 5, 6])) == .done)
        #expect(catalog.secret == [1, 2, 3])
        // An empty secret sets nothing, so a later one still takes.
        var empty = Catalog()
        _ = empty.apply(.initialise(secret: []))
        _ = empty.apply(.initialise(secret: [7]))
        #expect(empty.secret == [7])
    }

    @Test func applyIsDeterministic() {
        var one = CatalogCommandGenerator(random: SeededRandom(seed: 12))
        var two = CatalogCommandGenerator(random: SeededRandom(seed: 12))
        var a = Catalog()
        var b = Catalog()
        for _ in 0..<400 { #expect(a.apply(one.stateCommand()) == b.apply(two.stateCommand())) }
        #expect(a == b)
        #expect(a.encode() == b.encode())
    }
}
