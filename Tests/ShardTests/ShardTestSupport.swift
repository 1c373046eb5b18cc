// Shared pieces of the shard tests: seeded generators of commands and payloads, the model a
// shard is checked against (a dictionary key → vector and payload object), an engine and shard
// on a MemoryFileSystem, and the comparison of a shard's reads with the model.

import Basics
import FileIO
import FileIOSim
import JSON
import LSM
import Payload
import Shard
import Testing
import VectorIndex
import Wire

// MARK: - Generators

/// Random commands over a small key space, so keys repeat inside and across commands.
struct CommandGenerator {
    var random: SeededRandom
    let dimension: Int
    /// Point keys: encoded point ids (numbers and a few UUIDs).
    let keySpace: [[UInt8]]

    init(seed: UInt64, dimension: Int, numbers: Int = 30, uuids: Int = 5) {
        random = SeededRandom(seed: seed)
        self.dimension = dimension
        var keys = (0..<UInt64(numbers)).map { PointID.number($0 * 7 + 1).encodedKey }
        var uuidRandom = SeededRandom(seed: seed ^ 0xA5A5)
        for _ in 0..<uuids {
            keys.append(PointID.uuid(UUIDBytes(high: uuidRandom.next(), low: uuidRandom.next())).encodedKey)
        }
        keySpace = keys
    }

    mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func chance(_ p: Double) -> Bool { random.chance(p) }

    mutating func key() -> [UInt8] { keySpace[int(0..<keySpace.count)] }
    mutating func keys(_ range: Range<Int> = 1..<6) -> [[UInt8]] { (0..<int(range)).map { _ in key() } }
    /// A key outside `keySpace` (never written).
    mutating func absentKey() -> [UInt8] { PointID.number(1_000_000 + UInt64(int(0..<1000))).encodedKey }

    mutating func vector() -> [Float] {
        (0..<dimension).map { _ in Float(int(-1000..<1001)) / 100 + (chance(0.1) ? 0 : 0.005) }
    }

    static let colors = ["red", "green", "blue"]

    /// A payload object from a small vocabulary (so filters select a useful share).
    mutating func payloadObject(allowNull: Bool = false) -> JSONObject {
        var object = JSONObject()
        if chance(0.7) { object.set("color", .string(Self.colors[int(0..<3)])) }
        if chance(0.7) { object.set("n", .integer(Int64(int(0..<10)))) }
        if chance(0.3) { object.set("tags", .array((0..<int(0..<3)).map { _ in .string(Self.colors[int(0..<3)]) })) }
        if chance(0.4) {
            var nested = JSONObject()
            nested.set("a", .integer(Int64(int(0..<4))))
            if chance(0.5) { nested.set("b", .string("x\(int(0..<3))")) }
            object.set("nested", .object(nested))
        }
        if allowNull && chance(0.3) { object.set(["color", "n", "tags"][int(0..<3)], .null) }
        return object
    }

    mutating func payload(allowNull: Bool = false) -> [UInt8] { JSONValue.object(payloadObject(allowNull: allowNull)).serialized() }

    static let setPaths = ["nested", "nested.inner", "deep.x", "tags"]
    static let deletePaths = ["color", "n", "tags", "nested.a", "nested", "missing", "nested.inner.n"]

    /// One command; `kind` 1…6 as in Format/shard.md §2, random when nil.
    mutating func command(kind: Int? = nil) -> ShardCommand {
        switch kind ?? int(1..<7) {
        case 1:
            return .upsert((0..<int(1..<6)).map { _ in ShardCommand.Point(key: key(), vector: vector(), payload: payload()) })
        case 2:
            var deleted = keys(1..<4)
            if chance(0.5) { deleted.append(absentKey()) }
            return .delete(keys: deleted)
        case 3:
            var touched = keys()
            if chance(0.3) { touched.append(absentKey()) }
            return .setPayload(keys: touched, payload: payload(allowNull: true),
                               path: chance(0.4) ? Self.setPaths[int(0..<Self.setPaths.count)] : nil)
        case 4:
            return .overwritePayload(keys: keys(), payload: payload())
        case 5:
            return .deletePayloadKeys(keys: keys(), paths: (0..<int(1..<3)).map { _ in Self.deletePaths[int(0..<Self.deletePaths.count)] })
        default:
            return .clearPayload(keys: keys(1..<3))
        }
    }

    /// Entry data: a command, or now and then an empty entry (a new leader's first).
    mutating func entryData() -> [UInt8] { chance(0.05) ? [] : command().encode() }
}

/// Arbitrary commands for codec tests: any key bytes (1–64), any dimension, any payload bytes,
/// UTF-8 paths beyond ASCII.
struct ArbitraryCommandGenerator {
    var random: SeededRandom

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func bytes(_ range: ClosedRange<Int>) -> [UInt8] { random.bytes(int(range)) }
    mutating func key() -> [UInt8] { bytes(1...ShardCommand.keyBytesMax) }
    mutating func keys() -> [[UInt8]] { (0..<int(0...6)).map { _ in key() } }
    mutating func vector() -> [Float] {
        // Finite values only: NaN would make equal commands compare unequal.
        (0..<int(1...24)).map { _ in Float(Int32(truncatingIfNeeded: random.next())) / 65536 }
    }
    mutating func path() -> String {
        let pieces = ["a", "b.c", "é", "日本", "x[]", "[0]", " ", "🙂"]
        return (0..<int(0...4)).map { _ in pieces[int(0...(pieces.count - 1))] }.joined()
    }

    mutating func command(kind: Int) -> ShardCommand {
        switch kind {
        case 1: .upsert((0..<int(0...5)).map { _ in ShardCommand.Point(key: key(), vector: vector(), payload: bytes(0...40)) })
        case 2: .delete(keys: keys())
        case 3: .setPayload(keys: keys(), payload: bytes(0...40), path: random.chance(0.5) ? path() : nil)
        case 4: .overwritePayload(keys: keys(), payload: bytes(0...40))
        case 5: .deletePayloadKeys(keys: keys(), paths: (0..<int(0...4)).map { _ in path() })
        default: .clearPayload(keys: keys())
        }
    }

    mutating func record() -> PointRecord {
        PointRecord(vector: int(0...3) == 0 ? [] : vector(), payload: bytes(0...60))
    }
}

// MARK: - The model

/// What a shard should hold: key → (vector as given, payload object). Payload changes use the
/// Payload module's own operations (tested on their own); what is checked here is that the
/// shard routes every command to both of its sides, in order, once.
struct ShardModel: Equatable {
    struct Point: Equatable {
        var vector: [Float]
        var payload: JSONObject
    }

    var points: [[UInt8]: Point] = [:]

    static func object(_ bytes: [UInt8]) -> JSONObject {
        guard case .object(let object)? = try? JSONParser.parse(bytes) else { preconditionFailure("a generated payload is an object") }
        return object
    }

    mutating func apply(_ data: [UInt8]) {
        guard !data.isEmpty else { return }
        guard let command = try? ShardCommand.decode(data) else { preconditionFailure("a generated command decodes") }
        apply(command)
    }

    mutating func apply(_ command: ShardCommand) {
        func update(_ keys: [[UInt8]], _ change: (inout JSONObject) -> Void) {
            for key in keys where points[key] != nil { change(&points[key]!.payload) }
        }
        switch command {
        case .upsert(let new):
            for point in new { points[point.key] = Point(vector: point.vector, payload: Self.object(point.payload)) }
        case .delete(let keys):
            for key in keys { points[key] = nil }
        case .setPayload(let keys, let payload, let path):
            let new = Self.object(payload)
            update(keys) { object in
                if let path { try? PayloadUpdate.set(new, into: &object, key: path) } else { PayloadUpdate.set(new, into: &object) }
            }
        case .overwritePayload(let keys, let payload):
            let new = Self.object(payload)
            update(keys) { $0 = new }
        case .deletePayloadKeys(let keys, let paths):
            update(keys) { try? PayloadUpdate.deleteKeys(paths, from: &$0) }
        case .clearPayload(let keys):
            update(keys) { $0 = JSONObject() }
        }
    }

    var sortedKeys: [[UInt8]] { points.keys.sorted { $0.lexicographicallyPrecedes($1) } }
}

// MARK: - Engine and shard

enum ShardFixture {
    static let engineDirectory = "/node/db"
    static let shardsDirectory = "/node/shards"

    static func storageOptions() -> StorageOptions {
        var options = StorageOptions()
        options.walMode = .external
        options.background = .inline
        options.memtableBytes = 2048
        options.blockBytes = 256
        options.segmentBytesTarget = 4096
        options.levelBaseBytes = 16 << 10
        options.flushOnClose = false
        return options
    }

    static func openEngine(_ fileSystem: MemoryFileSystem) throws -> StorageEngine {
        try fileSystem.createDirectory("/node")
        return try StorageEngine.open(directory: engineDirectory, fileSystem: fileSystem, options: storageOptions())
    }

    static func configuration(_ metric: Metric, dimension: Int = 4) -> HNSWConfiguration {
        HNSWConfiguration(dimension: dimension, metric: metric, m: 8, efConstruct: 32, ef: 32, seed: 7)
    }

    static func openShard(group: UInt64 = 1024, engine: StorageEngine, fileSystem: MemoryFileSystem,
                          configuration: HNSWConfiguration) throws -> Shard {
        try Shard(group: group, directory: "\(shardsDirectory)/\(group)", engine: engine, fileSystem: fileSystem,
                  configuration: configuration)
    }
}

// MARK: - Comparing a shard with the model

/// A filter and the predicate a shard takes for it.
struct TestFilter {
    let text: String
    let filter: Filter

    init(_ text: String) {
        self.text = text
        guard let value = try? JSONParser.parse(text), let filter = try? Filter.parse(value) else {
            preconditionFailure("test filter \(text) parses")
        }
        self.filter = filter
    }

    func matches(key: [UInt8], payload: JSONObject) -> Bool {
        guard let id = try? PointID(encodedKey: key) else { return false }
        return filter.matches(id: id, payload: payload)
    }

    var predicate: PointPredicate {
        let filter = filter
        return { key, payload in
            guard let id = try? PointID(encodedKey: key), case .object(let object)? = try? JSONParser.parse(payload) else { return false }
            return filter.matches(id: id, payload: object)
        }
    }

    static let all: [TestFilter] = [
        TestFilter(#"{"must": [{"key": "color", "match": {"value": "red"}}]}"#),
        TestFilter(#"{"must": [{"key": "n", "range": {"gte": 3, "lt": 8}}]}"#),
        TestFilter(#"{"must_not": [{"key": "nested.a", "match": {"any": [0, 1]}}]}"#),
        TestFilter(#"{"should": [{"key": "tags", "match": {"value": "blue"}}, {"is_empty": {"key": "color"}}]}"#),
        TestFilter(#"{"must": [{"has_id": [1, 8, 15, 22, 29, 36, 43]}]}"#),
        TestFilter(#"{"must": [{"key": "deep.x.color", "match": {"value": "green"}}]}"#),
    ]
}

enum ShardCheck {
    static func unit(_ vector: [Float]) -> [Float] {
        let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
        guard norm > 0, norm.isFinite else { return vector }
        return vector.map { $0 / norm }
    }

    /// The vector a shard returns for one the model holds.
    static func stored(_ vector: [Float], _ metric: Metric) -> [Float] { metric == .cosine ? unit(vector) : vector }

    static func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    /// Problems found comparing `record` with the model's point (empty when they agree).
    static func compare(_ record: PointRecord, _ point: ShardModel.Point, _ metric: Metric) -> String? {
        if !close(record.vector, stored(point.vector, metric)) { return "vector \(record.vector) ≠ \(stored(point.vector, metric))" }
        let payload = ShardModel.object(record.payload)
        if payload != point.payload {
            return "payload \(String(decoding: record.payload, as: UTF8.self)) ≠ \(String(decoding: JSONValue.object(point.payload).serialized(), as: UTF8.self))"
        }
        return nil
    }

    static func score(_ metric: Metric, _ query: [Float], _ vector: [Float]) -> Float {
        switch metric {
        case .cosine: return zip(unit(query), unit(vector)).reduce(0) { $0 + $1.0 * $1.1 }
        case .dot: return zip(query, vector).reduce(0) { $0 + $1.0 * $1.1 }
        case .euclid: return zip(query, vector).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
        case .manhattan: return zip(query, vector).reduce(0) { $0 + abs($1.0 - $1.1) }
        }
    }

    /// Reads every point through `scroll` in pages of `limit`.
    static func scrollAll(_ shard: Shard, limit: Int, filter: PointPredicate? = nil) throws -> [ShardPoint] {
        var out: [ShardPoint] = []
        var after: [UInt8]?
        var pages = 0
        while true {
            let page = try shard.scroll(after: after, limit: limit, filter: filter)
            #expect(page.points.count <= limit)
            out += page.points
            pages += 1
            guard let next = page.next else { break }
            #expect(next == page.points.last?.key, "`next` is not the last key of the page")
            after = next
            if pages > 10_000 { Issue.record("scroll does not end"); break }
        }
        return out
    }

    /// Checks every read of `shard` against `model`; records issues tagged with `context`.
    static func check(_ shard: Shard, _ model: ShardModel, metric: Metric, random: inout SeededRandom,
                      context: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { Issue.record("\(context): \(message())", sourceLocation: sourceLocation) }
        }
        // get, for every key the model holds and a few it does not.
        for (key, point) in model.points {
            guard let record = try shard.get(key) else {
                expect(false, "get(\(key)) is nil; the model holds it")
                continue
            }
            if let problem = compare(record, point, metric) { expect(false, "get(\(key)): \(problem)") }
        }
        for number in [UInt64(0), 2, 1_000_001] where model.points[PointID.number(number).encodedKey] == nil {
            expect(try shard.get(PointID.number(number).encodedKey) == nil, "get of absent \(number) is not nil")
        }
        // count, scroll.
        expect(shard.count == model.points.count, "count \(shard.count) ≠ \(model.points.count)")
        expect(try shard.count(filter: nil) == model.points.count, "count(filter: nil) ≠ \(model.points.count)")
        let limit = Int.random(in: 1...4, using: &random)
        let scrolled = try scrollAll(shard, limit: limit)
        expect(scrolled.map(\.key) == model.sortedKeys, "scroll (limit \(limit)) keys \(scrolled.map(\.key)) ≠ \(model.sortedKeys)")
        for point in scrolled {
            if let expected = model.points[point.key], let problem = compare(point.record, expected, metric) {
                expect(false, "scroll \(point.key): \(problem)")
            }
        }
        // Filtered count, scroll and exact search.
        let dimension = shard.configuration.dimension
        for filter in TestFilter.all {
            let expectedKeys = model.sortedKeys.filter { filter.matches(key: $0, payload: model.points[$0]!.payload) }
            expect(try shard.count(filter: filter.predicate) == expectedKeys.count, "count(\(filter.text)) ≠ \(expectedKeys.count)")
            let page = Int.random(in: 1...3, using: &random)
            let filtered = try scrollAll(shard, limit: page, filter: filter.predicate)
            expect(filtered.map(\.key) == expectedKeys, "scroll(\(filter.text), limit \(page)) ≠ the model's")
            let query = (0..<dimension).map { _ in Float(Int.random(in: -100...100, using: &random)) / 10 }
            try checkSearch(shard, model, metric: metric, query: query, k: Int.random(in: 1...8, using: &random),
                            filter: filter, context: context, sourceLocation: sourceLocation)
        }
        let query = (0..<dimension).map { _ in Float(Int.random(in: -100...100, using: &random)) / 10 }
        try checkSearch(shard, model, metric: metric, query: query, k: Int.random(in: 1...12, using: &random),
                        filter: nil, context: context, sourceLocation: sourceLocation)
    }

    /// Exact search against a brute-force scan of the model: same scores in the same order, and
    /// each hit's key really has its score (ties may pick either point).
    static func checkSearch(_ shard: Shard, _ model: ShardModel, metric: Metric, query: [Float], k: Int, filter: TestFilter?,
                            context: String, sourceLocation: SourceLocation) throws {
        let candidates = model.points.filter { filter?.matches(key: $0.key, payload: $0.value.payload) ?? true }
        var expected = candidates.map { (key: $0.key, score: score(metric, query, $0.value.vector)) }
        expected.sort { metric.higherIsBetter ? $0.score > $1.score : $0.score < $1.score }
        expected = Array(expected.prefix(k))
        let hits = try shard.search(query, k: k, exact: true, filter: filter?.predicate)
        let label = "\(context): search k=\(k) filter \(filter?.text ?? "none")"
        guard hits.count == expected.count else {
            Issue.record("\(label): \(hits.count) hits, expected \(expected.count)", sourceLocation: sourceLocation)
            return
        }
        for (hit, want) in zip(hits, expected) {
            let tolerance = 1e-3 * max(1, abs(want.score))
            guard let point = candidates[hit.key] else {
                Issue.record("\(label): hit \(hit.key) is not a candidate", sourceLocation: sourceLocation)
                continue
            }
            if abs(hit.score - want.score) > tolerance || abs(score(metric, query, point.vector) - hit.score) > tolerance {
                Issue.record("\(label): hit score \(hit.score), expected \(want.score)", sourceLocation: sourceLocation)
            }
            if let problem = compare(hit.record, point, metric) { Issue.record("\(label): hit record \(problem)", sourceLocation: sourceLocation) }
        }
    }
}

// MARK: - Bytes

enum Mutation {
    /// A seeded set of (position, xor mask) pairs over `count` bytes.
    static func flips(count: Int, samples: Int, random: inout SeededRandom) -> [(Int, UInt8)] {
        guard count > 0 else { return [] }
        return (0..<samples).map { _ in
            (Int.random(in: 0..<count, using: &random), UInt8.random(in: 1...255, using: &random))
        }
    }

    static func flipped(_ bytes: [UInt8], at position: Int, mask: UInt8) -> [UInt8] {
        var copy = bytes
        copy[position] ^= mask
        return copy
    }
}
