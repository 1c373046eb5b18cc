// A shard's apply semantics against the model (a dictionary key → vector and payload object):
// seeded command sequences with repeated keys, absent keys, every payload command and nested
// paths, applied in batches of random size; after each batch every read (get, scroll in small
// pages, count with and without a filter, exact search with and without one) must agree.
// Then replays (entries at or below the applied index change nothing), `whenApplied`, and the
// shard's key range inside a shared storage engine.

import Basics
import FileIOSim
import JSON
import LSM
import Payload
import Shard
import Synchronization
import TestSupport
import Testing
import VectorIndex

@Suite(.ownThread) struct ShardApplyTests {
    @Test(arguments: [Metric.cosine, .euclid, .dot])
    func readsAgreeWithTheModelAfterEveryBatch(metric: Metric) throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        // Two shards in one engine, fed different commands: neither may see the other's points.
        let configuration = ShardFixture.configuration(metric)
        let shards = [try ShardFixture.openShard(group: 1024, engine: engine, fileSystem: fileSystem, configuration: configuration),
                      try ShardFixture.openShard(group: 1025, engine: engine, fileSystem: fileSystem, configuration: configuration)]
        // One configuration inserts each upsert's points on two threads (exact search does not
        // depend on the graph, so the checks stay deterministic).
        if metric == .dot { for shard in shards { shard.insertThreads = 2 } }
        var models = [ShardModel(), ShardModel()]
        var generators = [CommandGenerator(seed: 1000 + UInt64(metric.rawValue), dimension: 4),
                          CommandGenerator(seed: 2000 + UInt64(metric.rawValue), dimension: 4)]
        var random = SeededRandom(seed: 3000 + UInt64(metric.rawValue))
        var next: [UInt64] = [1, 1]
        var kinds = Set<Int>()
        for batch in 0..<60 {
            let which = batch % 3 == 2 ? 1 : 0
            var entries: [(index: UInt64, data: [UInt8])] = []
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                let data = generators[which].entryData()
                if data.count > 1 { kinds.insert(Int(data[1])) }
                entries.append((next[which], data))
                models[which].apply(data)
                next[which] += 1
            }
            try shards[which].apply(entries)
            #expect(shards[which].appliedIndex == next[which] - 1)
            #expect(shards[which].vectors.appliedIndex == next[which] - 1)
            for side in 0..<2 {
                try ShardCheck.check(shards[side], models[side], metric: metric, random: &random,
                                     context: "\(metric) shard \(side) after batch \(batch)")
            }
        }
        #expect(kinds == Set(1...6), "every command kind was applied")
        #expect(models[0].points.count > 5, "the sequence keeps points alive")
    }

    @Test func upsertsWithRepeatedKeysKeepTheLastAndReusedKeysGetNewNumbers() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.euclid, dimension: 2))
        let a = PointID.number(5).encodedKey
        let b = PointID.number(6).encodedKey
        let object = Array(#"{"v":1}"#.utf8)
        try shard.apply([(1, ShardCommand.upsert([.init(key: a, vector: [1, 1], payload: object),
                                                  .init(key: b, vector: [2, 2], payload: Array("{}".utf8)),
                                                  .init(key: a, vector: [3, 3], payload: Array(#"{"v":2}"#.utf8))]).encode())])
        #expect(shard.count == 2)
        #expect(try shard.get(a) == PointRecord(vector: [3, 3], payload: Array(#"{"v":2}"#.utf8)))
        let hits = try shard.search([3, 3], k: 5, exact: true)
        #expect(hits.map(\.key) == [a, b], "one node per key: the old vector of `a` is gone")
        #expect(hits.first?.score == 0)
        // Delete a, write it again: a new number, the same key.
        try shard.apply([(2, ShardCommand.delete(keys: [a, a, PointID.number(99).encodedKey]).encode()),
                         (3, ShardCommand.setPayload(keys: [a], payload: object, path: nil).encode())])
        #expect(try shard.get(a) == nil, "a payload change does not bring a deleted point back")
        #expect(shard.count == 1)
        try shard.apply([(4, ShardCommand.upsert([.init(key: a, vector: [0, 1], payload: object)]).encode())])
        #expect(shard.count == 2)
        #expect(try shard.search([0, 1], k: 1, exact: true).map(\.key) == [a])
    }

    @Test func nestedPathsCreateObjectsAndDeletesReachInside() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.dot, dimension: 1))
        let key = PointID.number(1).encodedKey
        try shard.apply([
            (1, ShardCommand.upsert([.init(key: key, vector: [1], payload: Array(#"{"a":{"b":1},"c":2}"#.utf8))]).encode()),
            (2, ShardCommand.setPayload(keys: [key], payload: Array(#"{"x":true}"#.utf8), path: "a.d").encode()),
            (3, ShardCommand.setPayload(keys: [key], payload: Array(#"{"c":null,"e":"f"}"#.utf8), path: nil).encode()),
            (4, ShardCommand.deletePayloadKeys(keys: [key], paths: ["a.b", "missing"]).encode()),
        ])
        let payload = try #require(try shard.get(key)).payload
        #expect(ShardModel.object(payload) == ShardModel.object(Array(#"{"a":{"d":{"x":true}},"e":"f"}"#.utf8)))
        try shard.apply([(5, ShardCommand.clearPayload(keys: [key]).encode())])
        #expect(try shard.get(key)?.payload == Array("{}".utf8))
    }

    // MARK: Replay

    @Test func applyingEntriesAgainChangesNothing() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.cosine))
        var generator = CommandGenerator(seed: 42, dimension: 4)
        var model = ShardModel()
        var log: [(index: UInt64, data: [UInt8])] = []
        var random = SeededRandom(seed: 43)
        for index in 1...80 {
            let data = generator.entryData()
            log.append((UInt64(index), data))
        }
        for entry in log[..<60] { model.apply(entry.data) }
        try shard.apply(Array(log[..<30]))
        try shard.apply(Array(log[30..<60]))
        try ShardCheck.check(shard, model, metric: .cosine, random: &random, context: "after 60")
        // The whole prefix again, then a batch that overlaps the applied index.
        try shard.apply(Array(log[..<60]))
        #expect(shard.appliedIndex == 60)
        try ShardCheck.check(shard, model, metric: .cosine, random: &random, context: "after replaying 1…60")
        try shard.apply(Array(log[10..<40]))
        try ShardCheck.check(shard, model, metric: .cosine, random: &random, context: "after replaying 11…40")
        for entry in log[60..<70] { model.apply(entry.data) }
        try shard.apply(Array(log[50..<70]))
        #expect(shard.appliedIndex == 70)
        try ShardCheck.check(shard, model, metric: .cosine, random: &random, context: "after 51…70 (51…60 again)")
        // After a checkpoint, too.
        try shard.checkpoint()
        try shard.apply(Array(log[..<70]))
        try ShardCheck.check(shard, model, metric: .cosine, random: &random, context: "after a checkpoint and 1…70 again")
    }

    @Test func whenAppliedFiresOnceItsIndexIsApplied() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.euclid))
        var generator = CommandGenerator(seed: 5, dimension: 4)
        let fired = Mutex<[UInt64]>([])
        for index: UInt64 in [3, 5, 5, 9] {
            shard.whenApplied(index) { applied in if applied { fired.withLock { $0.append(index) } } }
        }
        try shard.apply([(1, generator.command().encode()), (2, [])])
        #expect(fired.withLock { $0 } == [])
        try shard.apply([(3, generator.command().encode())])
        #expect(fired.withLock { $0 } == [3])
        try shard.apply([(4, generator.command().encode()), (5, generator.command().encode()), (6, [])])
        #expect(fired.withLock { $0 } == [3, 5, 5])
        // Entries already applied fire nothing new.
        try shard.apply([(5, generator.command().encode())])
        #expect(fired.withLock { $0 } == [3, 5, 5])
        // An index already applied fires at once.
        shard.whenApplied(2) { applied in if applied { fired.withLock { $0.append(2) } } }
        shard.whenApplied(6) { applied in if applied { fired.withLock { $0.append(6) } } }
        #expect(fired.withLock { $0 } == [3, 5, 5, 2, 6])
        try shard.apply([(7, []), (8, []), (9, generator.command().encode())])
        #expect(fired.withLock { $0 } == [3, 5, 5, 2, 6, 9])
        try shard.apply([(10, [])])
        #expect(fired.withLock { $0 }.count == 6, "each callback fires once")
    }

    /// A shard that stopped applying tells every waiter, now and later, instead of leaving
    /// their requests hanging.
    @Test func aFailedShardAnswersItsWaiters() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.euclid))
        let outcomes = Mutex<[Bool]>([])
        shard.whenApplied(4) { applied in outcomes.withLock { $0.append(applied) } }
        try shard.apply([(1, [])])
        #expect(outcomes.withLock { $0 } == [])
        shard.fail()
        #expect(outcomes.withLock { $0 } == [false])
        shard.whenApplied(9) { applied in outcomes.withLock { $0.append(applied) } }
        shard.whenApplied(1) { applied in outcomes.withLock { $0.append(applied) } }
        #expect(outcomes.withLock { $0 } == [false, false, true], "an index already applied still succeeds")
    }

    /// A payload change that would make a point's payload too large is skipped (the same on
    /// every replica) instead of failing the shard; the point keeps its payload.
    @Test func aPayloadChangeThatDoesNotFitIsSkipped() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.euclid))
        let key: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 1]
        try shard.apply([(1, ShardCommand.upsert([.init(key: key, vector: [1, 2, 3, 4], payload: Array(#"{"a":1}"#.utf8))]).encode())])
        // Five strings of 900 KB: each within the parser's limits, together over the payload bound.
        let part = String(repeating: "x", count: 900_000)
        let big = Array("{\"b1\":\"\(part)\",\"b2\":\"\(part)\",\"b3\":\"\(part)\",\"b4\":\"\(part)\",\"b5\":\"\(part)\"}".utf8)
        try shard.apply([(2, ShardCommand.setPayload(keys: [key], payload: big, path: nil).encode())])
        #expect(shard.appliedIndex == 2)
        #expect(try shard.get(key)?.payload == Array(#"{"a":1}"#.utf8))
        try shard.apply([(3, ShardCommand.setPayload(keys: [key], payload: Array(#"{"c":2}"#.utf8), path: nil).encode())])
        #expect(try shard.get(key)?.payload == Array(#"{"a":1,"c":2}"#.utf8))
    }

    @Test func aBadEntryIsReportedWithItsIndex() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.euclid))
        let error = thrownError(ShardError.self) { try shard.apply([(1, [1, 9])]) }
        guard case .badEntry(let index, _)? = error else {
            Issue.record("expected a bad entry error, got \(String(describing: error))")
            return
        }
        #expect(index == 1)
        #expect(shard.appliedIndex == 0)
    }

    // MARK: The shard's key range

    /// Format/shard.md §3.1: a shard's points are the keys under `group` + "p"; scrolling is a
    /// range scan of that prefix. Keys of the next group that sort before its "p" keys (such as
    /// `group + 1` + "c") are not the shard's: scroll, count and destroy must leave them alone.
    @Test func aShardReadsAndDestroysOnlyItsOwnPrefix() throws {
        let fileSystem = MemoryFileSystem()
        let engine = try ShardFixture.openEngine(fileSystem)
        defer { engine.close() }
        let shard = try ShardFixture.openShard(group: 1024, engine: engine, fileSystem: fileSystem, configuration: ShardFixture.configuration(.euclid, dimension: 2))
        let key = PointID.number(3).encodedKey
        try shard.apply([(1, ShardCommand.upsert([.init(key: key, vector: [1, 2], payload: Array("{}".utf8))]).encode())])
        func groupKey(_ group: UInt64, _ type: UInt8) -> [UInt8] {
            (0..<8).map { UInt8(truncatingIfNeeded: group >> (56 - 8 * UInt64($0))) } + [type]
        }
        let neighbours = [groupKey(1025, 0x63) + [1], groupKey(1024, 0x71) + [1], groupKey(1023, 0x70) + [1]]
        for neighbour in neighbours { try engine.put(neighbour, [0xEE]) }
        let scrolled = try ShardCheck.scrollAll(shard, limit: 10)
        #expect(scrolled.map(\.key) == [key])
        #expect(try shard.count(filter: { _, _ in true }) == 1)
        try shard.destroy()
        #expect(try engine.get(groupKey(1024, 0x70) + key) == nil)
        for neighbour in neighbours { #expect(try engine.get(neighbour) == [0xEE], "destroy removed \(neighbour)") }
    }
}
