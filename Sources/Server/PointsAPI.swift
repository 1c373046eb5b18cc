// /collections/{name}/points…: upsert, retrieve, delete, payload changes, search, query,
// scroll, count. Points spread over a collection's shards by the XXH3 of their id's key; a
// write proposes one command per shard it touches and answers once every one is applied; a
// read asks every shard and merges.

import Basics
import Catalog
import Checksum
import HTTPServer
import JSON
import Payload
import Shard
import VectorIndex

extension Gateway {
    /// A command's encoded size above which a shard's part of a request is split.
    static let commandBytesTarget = 4 << 20
    static let payloadLimits = PayloadLimits()
    static let floatKeys: Set<String> = ["vector", "vectors", "query", "nearest"]
    /// The most points one read returns (and, with `offset`, looks at per shard).
    static let resultPointsMax = 10_000
    /// Keys per delete or payload command (a filter may select millions).
    static let commandKeysMax = 50_000

    static func shardIndex(_ key: [UInt8], shards: Int) -> Int { Int(XXH3.hash(key) % UInt64(shards)) }

    // MARK: Parsing

    func pointID(_ value: JSONValue, _ field: String) throws(APIError) -> PointID {
        do throws(PointIDError) { return try PointID(json: value) } catch {
            throw .badRequest("\(field): \(error) — a point id is an unsigned integer or a UUID")
        }
    }

    func pointIDs(_ value: JSONValue?, _ field: String) throws(APIError) -> [PointID] {
        guard let value, case .array(let items) = value.asGeneralArray else { throw .badRequest("`\(field)` must be an array of point ids") }
        var ids: [PointID] = []
        for (index, item) in items.enumerated() { ids.append(try pointID(item, "\(field)[\(index)]")) }
        return ids
    }

    /// A Cosine vector's squared length must lie in this range: the index normalises in float32
    /// and refuses a vector whose length is zero or not finite. Such a vector used to reach the
    /// shard's log, where applying it failed and stopped the shard for good (every later write to
    /// it hung); as a query it failed with a 500. Checked here in Double, with margins that keep
    /// the float32 sum of squares positive (at most 65,536 elements) and finite.
    static let cosineSquaredLengthRange = 1e-30...1e37

    func vector(_ value: JSONValue?, _ field: String, dimension: Int, metric: Metric) throws(APIError) -> [Float] {
        guard let value else { throw .badRequest("`\(field)` is required") }
        let floats: [Float]
        switch value {
        case .floats(let parsed):
            floats = parsed
        case .array(let items):
            // A body the float32 fast path refused (see `body(_:floatKeys:)`) arrives as a general
            // array; each number is rounded from its Double value.
            guard items.count == dimension else {
                throw .badRequest("Wrong input: Vector dimension error: expected dim: \(dimension), got \(items.count) (\(field))")
            }
            guard let converted = value.floatsValue else { throw .badRequest("`\(field)` must be an array of \(dimension) finite float32 numbers") }
            floats = converted
        case .object:
            throw .badRequest("\(field): named vectors are not supported; give the vector as an array of numbers")
        default:
            throw .badRequest("`\(field)` must be an array of \(dimension) numbers")
        }
        guard floats.count == dimension else {
            throw .badRequest("Wrong input: Vector dimension error: expected dim: \(dimension), got \(floats.count) (\(field))")
        }
        for number in floats where !number.isFinite { throw .badRequest("\(field): vectors must be finite float32 numbers") }
        if metric == .cosine {
            var squaredLength: Double = 0
            for number in floats { squaredLength += Double(number) * Double(number) }
            guard Self.cosineSquaredLengthRange.contains(squaredLength) else {
                throw .badRequest("\(field): a Cosine vector needs a length in 1e-15…3e18 (a zero vector has no direction)")
            }
        }
        return floats
    }

    func payloadText(_ value: JSONValue?, _ field: String) throws(APIError) -> [UInt8] {
        guard let value, !value.isNull else { return Array("{}".utf8) }
        guard case .object(let object) = value else { throw .badRequest("`\(field)` must be a JSON object") }
        do throws(PayloadError) { try Self.payloadLimits.validate(object) } catch { throw .badRequest("\(field): \(error)") }
        return value.serialized()
    }

    func filter(_ value: JSONValue?) throws(APIError) -> Filter? {
        guard let value, !value.isNull else { return nil }
        do throws(FilterError) { return try Filter.parse(value) } catch { throw .badRequest("Bad filter: \(error)") }
    }

    /// A shard-level predicate for `filter`.
    static func predicate(_ filter: Filter?) -> PointPredicate? {
        guard let filter else { return nil }
        return { key, payload in
            guard let id = try? PointID(encodedKey: key) else { return false }
            guard case .object(let object)? = try? JSONParser.parse(payload) else { return false }
            return filter.matches(id: id, payload: object)
        }
    }

    func positiveInt(_ value: JSONValue?, _ field: String, default fallback: Int, max: Int = 1_000_000) throws(APIError) -> Int {
        guard let value, !value.isNull else { return fallback }
        guard let number = value.int64Value, number >= 0, number <= Int64(max) else { throw .badRequest("`\(field)` must be an integer in 0…\(max)") }
        return Int(number)
    }

    func flag(_ value: JSONValue?, _ field: String, default fallback: Bool) throws(APIError) -> Bool {
        guard let value, !value.isNull else { return fallback }
        guard case .bool(let flag) = value else { throw .badRequest("`\(field)` must be true or false") }
        return flag
    }

    /// `with_payload`: true, false, a list of keys to include, or {"include": [...]} / {"exclude": [...]}.
    func payloadSelector(_ value: JSONValue?, default fallback: Bool) throws(APIError) -> PayloadSelector {
        guard let value, !value.isNull else { return fallback ? .all : .none }
        switch value {
        case .bool(let flag): return flag ? .all : .none
        case .array(let items):
            return .include(try items.map { (item: JSONValue) throws(APIError) -> String in
                guard case .string(let key) = item else { throw .badRequest("`with_payload` keys must be strings") }
                return key
            })
        case .object(let object):
            if let include = object["include"] { return try payloadSelector(include, default: true) }
            if case .array(let items)? = object["exclude"] {
                return .exclude(try items.map { (item: JSONValue) throws(APIError) -> String in
                    guard case .string(let key) = item else { throw .badRequest("`with_payload.exclude` keys must be strings") }
                    return key
                })
            }
            throw .badRequest("`with_payload` must be a boolean, a list of keys or {\"include\"|\"exclude\": [...]}")
        default:
            throw .badRequest("`with_payload` must be a boolean, a list of keys or {\"include\"|\"exclude\": [...]}")
        }
    }

    // MARK: Writing

    /// Proposes each shard's commands; answers with Qdrant's update result once all are applied.
    func propose(_ call: Call, _ info: CollectionInfo, _ commands: [(group: UInt64, command: ShardCommand)]) {
        if commands.isEmpty {
            call.ok(Self.updateResult(0))
            return
        }
        let pending = PendingWrites(count: commands.count)
        for (group, command) in commands {
            node.propose(group: group, data: command.encode()) { result in
                guard let outcome = pending.complete(result) else { return }
                switch outcome {
                case .success(let index): call.ok(Self.updateResult(index))
                case .failure(let error): call.fail(APIError(error))
                }
            }
        }
    }

    static func updateResult(_ index: UInt64) -> JSONValue {
        var object = JSONObject()
        object.set("operation_id", .unsigned(index))
        object.set("status", .string("completed"))
        return .object(object)
    }

    func upsert(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            var body = try self.body(call, floatKeys: Self.floatKeys)
            var points: [ShardCommand.Point] = []
            func read(_ body: JSONValue, payloadsOnly: Bool) throws(APIError) {
                if let rows = body["points"] {
                    guard case .array(let items) = rows.asGeneralArray else { throw .badRequest("`points` must be an array") }
                    for (index, item) in items.enumerated() {
                        guard case .object(let point) = item else { throw .badRequest("points[\(index)] must be an object") }
                        let payload = try payloadText(point["payload"], "points[\(index)].payload")
                        if payloadsOnly { points[index].payload = payload; continue }
                        guard let idValue = point["id"] else { throw .badRequest("points[\(index)].id is required") }
                        let id = try pointID(idValue, "points[\(index)].id")
                        let vector = try vector(point["vector"], "points[\(index)].vector", dimension: info.dimension, metric: info.metric)
                        points.append(ShardCommand.Point(key: id.encodedKey, vector: vector, payload: payload))
                    }
                } else if case .object(let batch)? = body["batch"] {
                    let ids = try pointIDs(batch["ids"], "batch.ids")
                    var payloads: [JSONValue] = []
                    if let value = batch["payloads"], !value.isNull {
                        guard case .array(let items) = value.asGeneralArray, items.count == ids.count else {
                            throw .badRequest("`batch.payloads` must be an array as long as `batch.ids`")
                        }
                        payloads = items
                    }
                    if payloadsOnly {
                        for index in payloads.indices { points[index].payload = try payloadText(payloads[index], "batch.payloads[\(index)]") }
                        return
                    }
                    guard case .array(let vectors)? = batch["vectors"]?.asGeneralArray, vectors.count == ids.count else {
                        throw .badRequest("`batch.vectors` must be an array as long as `batch.ids`")
                    }
                    for (index, id) in ids.enumerated() {
                        let vector = try vector(vectors[index], "batch.vectors[\(index)]", dimension: info.dimension, metric: info.metric)
                        let payload = try payloadText(payloads.isEmpty ? nil : payloads[index], "batch.payloads[\(index)]")
                        points.append(ShardCommand.Point(key: id.encodedKey, vector: vector, payload: payload))
                    }
                } else {
                    throw .badRequest("the body needs `points` (a list of {id, vector, payload}) or `batch` ({ids, vectors, payloads})")
                }
            }
            try read(body, payloadsOnly: false)
            // A payload member named like a vector key was read as float32s: read payloads again
            // from a parse that keeps every number as written.
            if points.contains(where: { Self.mayHoldFloats($0.payload) }) {
                body = try self.body(call)
                try read(body, payloadsOnly: true)
            }
            var perShard = [[ShardCommand.Point]](repeating: [], count: info.shardGroups.count)
            for point in points { perShard[Self.shardIndex(point.key, shards: info.shardGroups.count)].append(point) }
            var commands: [(group: UInt64, command: ShardCommand)] = []
            for (shard, shardPoints) in perShard.enumerated() where !shardPoints.isEmpty {
                var chunk: [ShardCommand.Point] = []
                var bytes = 0
                for point in shardPoints {
                    let size = point.key.count + point.vector.count * 4 + point.payload.count + 16
                    if !chunk.isEmpty && bytes + size > Self.commandBytesTarget {
                        commands.append((info.shardGroups[shard], .upsert(chunk)))
                        chunk = []
                        bytes = 0
                    }
                    chunk.append(point)
                    bytes += size
                }
                commands.append((info.shardGroups[shard], .upsert(chunk)))
            }
            propose(call, info, commands)
        } catch {
            call.fail(error)
        }
    }

    /// Whether serialized payload text could contain a vector-scoped array (`"vector": [`…).
    static func mayHoldFloats(_ payload: [UInt8]) -> Bool {
        payload.count > 2 && floatKeys.contains { key in payload.containsSubsequence(Array("\"\(key)\"".utf8)) }
    }

    enum PayloadChange { case set, overwrite, deleteKeys, clear }

    /// The points a request selects: `points` (ids) or `filter` (resolved on every shard now).
    func selectKeys(_ body: JSONValue, _ info: CollectionInfo, field: String = "points") throws(APIError) -> [[[UInt8]]] {
        var perShard = [[[UInt8]]](repeating: [], count: info.shardGroups.count)
        if let ids = body[field], !ids.isNull {
            for id in try pointIDs(ids, field) {
                let key = id.encodedKey
                perShard[Self.shardIndex(key, shards: perShard.count)].append(key)
            }
            return perShard
        }
        guard let filter = try filter(body["filter"]) else { throw .badRequest("give `\(field)` (a list of ids) or `filter`") }
        let predicate = Self.predicate(filter)
        for (index, group) in info.shardGroups.enumerated() {
            guard let shard = node.shard(group: group) else { throw .unavailable("shard \(group) is not open") }
            var after: [UInt8]?
            repeat {
                let page: (points: [ShardPoint], next: [UInt8]?)
                do throws(ShardError) { page = try shard.scroll(after: after, limit: 4096, filter: predicate) } catch { throw .internalError("\(error)") }
                perShard[index].append(contentsOf: page.points.map(\.key))
                after = page.next
            } while after != nil
        }
        return perShard
    }

    /// Each shard's keys in commands of at most `commandKeysMax` keys.
    static func chunks(_ perShard: [[[UInt8]]], _ info: CollectionInfo) -> [(group: UInt64, keys: [[UInt8]])] {
        var out: [(group: UInt64, keys: [[UInt8]])] = []
        for (shard, keys) in perShard.enumerated() {
            var start = 0
            while start < keys.count {
                let end = min(start + commandKeysMax, keys.count)
                out.append((info.shardGroups[shard], Array(keys[start..<end])))
                start = end
            }
        }
        return out
    }

    func deletePoints(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            let body = try self.body(call)
            offload(call) { [self] () throws(APIError) in
                let perShard = try selectKeys(body, info)
                propose(call, info, Self.chunks(perShard, info).map { ($0.group, ShardCommand.delete(keys: $0.keys)) })
            }
        } catch {
            call.fail(error)
        }
    }

    func changePayload(_ call: Call, kind: PayloadChange) {
        do throws(APIError) {
            let info = try collection(call)
            let body = try self.body(call)
            var payload: [UInt8] = []
            var key: String?
            var paths: [String] = []
            switch kind {
            case .set, .overwrite:
                guard body["payload"]?.objectValue != nil else { throw .badRequest("`payload` (an object) is required") }
                payload = try payloadText(body["payload"], "payload")
                if kind == .set, let value = body["key"], !value.isNull {
                    guard case .string(let text) = value else { throw .badRequest("`key` must be a string") }
                    do throws(PayloadPathError) { _ = try PayloadPath(parsing: text) } catch { throw .badRequest("key: \(error)") }
                    key = text
                }
            case .deleteKeys:
                guard case .array(let items)? = body["keys"]?.asGeneralArray else { throw .badRequest("`keys` (a list of strings) is required") }
                guard items.count <= 1024 else { throw .badRequest("`keys` may name at most 1024 payload keys") }
                for item in items {
                    guard case .string(let text) = item else { throw .badRequest("`keys` must hold strings") }
                    do throws(PayloadPathError) { _ = try PayloadPath(parsing: text) } catch { throw .badRequest("keys: \(error)") }
                    paths.append(text)
                }
            case .clear:
                break
            }
            let (payloadText, path, deletedPaths) = (payload, key, paths)
            offload(call) { [self] () throws(APIError) in
                let perShard = try selectKeys(body, info)
                let commands = Self.chunks(perShard, info).map { entry -> (group: UInt64, command: ShardCommand) in
                    let keys = entry.keys
                    let command: ShardCommand
                    switch kind {
                    case .set: command = .setPayload(keys: keys, payload: payloadText, path: path)
                    case .overwrite: command = .overwritePayload(keys: keys, payload: payloadText)
                    case .deleteKeys: command = .deletePayloadKeys(keys: keys, paths: deletedPaths)
                    case .clear: command = .clearPayload(keys: keys)
                    }
                    return (entry.group, command)
                }
                propose(call, info, commands)
            }
        } catch {
            call.fail(error)
        }
    }

    // MARK: Reading

    /// Writes a point as Qdrant does: id, then payload and vector when asked for.
    static func writePoint(_ writer: inout JSONWriter, key: [UInt8], record: PointRecord, score: Float?, payload: PayloadSelector, vector: Bool) {
        writer.beginObject()
        writer.key("id")
        writer.value((try? PointID(encodedKey: key))?.json ?? .null)
        writer.member("version", .integer(0))
        if let score {
            writer.key("score")
            writer.value(score)
        }
        switch payload {
        case .none: break
        case .all:
            writer.key("payload")
            writer.rawValue(record.payload)
        case .include, .exclude:
            writer.key("payload")
            writer.value(payload.apply(record.payload))
        }
        if vector { writer.member("vector", .floats(record.vector)) }
        writer.endObject()
    }

    func retrieveOne(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            let raw = call.param("id")
            let id: PointID
            if let number = UInt64(raw) { id = .number(number) } else { id = try pointID(.string(raw), "id") }
            let key = id.encodedKey
            guard let shard = node.shard(group: info.shardGroups[Self.shardIndex(key, shards: info.shardGroups.count)]) else {
                throw .unavailable("the point's shard is not open")
            }
            let record: PointRecord?
            do throws(ShardError) { record = try shard.get(key) } catch { throw .internalError("\(error)") }
            guard let record else { throw .notFound("Not found: Point with id \(id) does not exists!") }
            call.ok { Self.writePoint(&$0, key: key, record: record, score: nil, payload: .all, vector: true) }
        } catch {
            call.fail(error)
        }
    }

    func retrieve(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            let body = try self.body(call)
            let ids = try pointIDs(body["ids"], "ids")
            let payload = try payloadSelector(body["with_payload"], default: true)
            let withVector = try flag(body["with_vector"], "with_vector", default: false)
            var found: [([UInt8], PointRecord)] = []
            for id in ids {
                let key = id.encodedKey
                guard let shard = node.shard(group: info.shardGroups[Self.shardIndex(key, shards: info.shardGroups.count)]) else {
                    throw .unavailable("a shard is not open")
                }
                do throws(ShardError) { if let record = try shard.get(key) { found.append((key, record)) } } catch { throw .internalError("\(error)") }
            }
            call.ok { writer in
                writer.beginArray()
                for (key, record) in found { Self.writePoint(&writer, key: key, record: record, score: nil, payload: payload, vector: withVector) }
                writer.endArray()
            }
        } catch {
            call.fail(error)
        }
    }

    func search(_ call: Call, query: Bool) {
        do throws(APIError) {
            let info = try collection(call)
            let body = try self.body(call, floatKeys: Self.floatKeys)
            let vectorValue: JSONValue?
            if query {
                if case .object(let object)? = body["query"], let nearest = object["nearest"] { vectorValue = nearest } else { vectorValue = body["query"] }
                if vectorValue == nil || vectorValue!.isNull {
                    // A query without a vector lists points in id order, like a scroll.
                    scroll(call, body: body, info: info, queryShape: true)
                    return
                }
            } else {
                vectorValue = body["vector"]
            }
            let vector = try vector(vectorValue, query ? "query" : "vector", dimension: info.dimension, metric: info.metric)
            let limit = try positiveInt(body["limit"] ?? body["top"], "limit", default: 10, max: Self.resultPointsMax)
            let offset = try positiveInt(body["offset"], "offset", default: 0, max: Self.resultPointsMax)
            guard limit + offset <= Self.resultPointsMax else { throw .badRequest("`limit` + `offset` may be at most \(Self.resultPointsMax)") }
            let filter = try filter(body["filter"])
            let payload = try payloadSelector(body["with_payload"], default: query ? false : false)
            let withVector = try flag(body["with_vector"], "with_vector", default: false)
            var threshold: Float?
            if let value = body["score_threshold"], !value.isNull {
                guard let number = value.doubleValue else { throw .badRequest("`score_threshold` must be a number") }
                threshold = Float(number)
            }
            var ef: Int?
            var exact = false
            if case .object(let params)? = body["params"] {
                if let value = params["hnsw_ef"], !value.isNull { ef = try positiveInt(value, "params.hnsw_ef", default: 0, max: 100_000) }
                exact = try flag(params["exact"], "params.exact", default: false)
            }
            let k = limit + offset
            let predicate = Self.predicate(filter)
            let higherIsBetter = info.metric.higherIsBetter
            let (searchEF, searchExact, scoreThreshold) = (ef, exact, threshold)
            offload(call) { [self] () throws(APIError) in
                var hits: [ShardHit] = []
                for group in info.shardGroups {
                    guard let shard = node.shard(group: group) else { throw .unavailable("shard \(group) is not open") }
                    do throws(ShardError) {
                        hits.append(contentsOf: try shard.search(vector, k: k, ef: searchEF.map { max($0, k) }, exact: searchExact, filter: predicate))
                    } catch {
                        throw .internalError("\(error)")
                    }
                }
                hits.sort { higherIsBetter ? $0.score > $1.score : $0.score < $1.score }
                if let threshold = scoreThreshold { hits.removeAll { higherIsBetter ? $0.score < threshold : $0.score > threshold } }
                let page = hits.dropFirst(offset).prefix(limit)
                call.ok { writer in
                    if query {
                        writer.beginObject()
                        writer.key("points")
                    }
                    writer.beginArray()
                    for hit in page { Self.writePoint(&writer, key: hit.key, record: hit.record, score: hit.score, payload: payload, vector: withVector) }
                    writer.endArray()
                    if query { writer.endObject() }
                }
            }
        } catch {
            call.fail(error)
        }
    }

    func scroll(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            scroll(call, body: try self.body(call), info: info, queryShape: false)
        } catch {
            call.fail(error)
        }
    }

    /// Keyset pagination over every shard: each returns its points from `offset` on (in id
    /// order); the merge takes `limit` and names the next id as `next_page_offset`.
    func scroll(_ call: Call, body: JSONValue, info: CollectionInfo, queryShape: Bool) {
        do throws(APIError) {
            let limit = try positiveInt(body["limit"], "limit", default: 10, max: Self.resultPointsMax)
            // A page of 0 points still named the next point as `next_page_offset`, so a client
            // following it looped forever; Qdrant refuses a limit below 1 too.
            guard limit >= 1 else { throw .badRequest("`limit` must be at least 1") }
            var from: [UInt8]?
            if let value = body["offset"], !value.isNull { from = try pointID(value, "offset").encodedKey }
            let filter = try filter(body["filter"])
            let payload = try payloadSelector(body["with_payload"], default: true)
            let withVector = try flag(body["with_vector"], "with_vector", default: false)
            let predicate = Self.predicate(filter)
            let start = from
            offload(call) { [self] () throws(APIError) in
                var points: [ShardPoint] = []
                for group in info.shardGroups {
                    guard let shard = node.shard(group: group) else { throw .unavailable("shard \(group) is not open") }
                    do throws(ShardError) {
                        points.append(contentsOf: try shard.scroll(from: start, limit: limit + 1, filter: predicate).points)
                    } catch {
                        throw .internalError("\(error)")
                    }
                }
                points.sort { $0.key.lexicographicallyPrecedes($1.key) }
                let next = points.count > limit ? points[limit].key : nil
                let page = points.prefix(limit)
                call.ok { writer in
                    writer.beginObject()
                    writer.key("points")
                    writer.beginArray()
                    for point in page { Self.writePoint(&writer, key: point.key, record: point.record, score: nil, payload: payload, vector: withVector) }
                    writer.endArray()
                    if !queryShape {
                        writer.key("next_page_offset")
                        if let next, let id = try? PointID(encodedKey: next) { writer.value(id.json) } else { writer.null() }
                    }
                    writer.endObject()
                }
            }
        } catch {
            call.fail(error)
        }
    }

    func count(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            let body = try self.body(call)
            let predicate = Self.predicate(try filter(body["filter"]))
            offload(call) { [self] () throws(APIError) in
                var total = 0
                for group in info.shardGroups {
                    guard let shard = node.shard(group: group) else { throw .unavailable("shard \(group) is not open") }
                    do throws(ShardError) { total += try shard.count(filter: predicate) } catch { throw .internalError("\(error)") }
                }
                call.ok { writer in
                    writer.beginObject()
                    writer.member("count", .integer(Int64(total)))
                    writer.endObject()
                }
            }
        } catch {
            call.fail(error)
        }
    }
}

/// Which payload keys a read returns.
enum PayloadSelector: Sendable {
    case none, all
    case include([String])
    case exclude([String])

    func apply(_ text: [UInt8]) -> JSONValue {
        guard case .object(let object)? = try? JSONParser.parse(text) else { return .null }
        var out = JSONObject()
        switch self {
        case .none: return .null
        case .all: return .object(object)
        case .include(let keys):
            for (key, value) in object.members where keys.contains(key) { out.set(key, value) }
        case .exclude(let keys):
            for (key, value) in object.members where !keys.contains(key) { out.set(key, value) }
        }
        return .object(out)
    }
}

/// Joins the completions of one request's shard writes: the last one answers (with the highest
/// index), the first failure answers at once.
final class PendingWrites: @unchecked Sendable {
    private let lock = ConditionLock()
    private var left: Int
    private var highest: UInt64 = 0
    private var answered = false

    init(count: Int) { left = count }

    func complete(_ result: Result<UInt64, ServerError>) -> Result<UInt64, ServerError>? {
        lock.withLock { () -> Result<UInt64, ServerError>? in
            guard !answered else { return nil }
            switch result {
            case .failure:
                answered = true
                return result
            case .success(let index):
                highest = max(highest, index)
                left -= 1
                if left == 0 {
                    answered = true
                    return .success(highest)
                }
                return nil
            }
        }
    }
}

extension JSONValue {
    /// `.floats` (what a vector-scoped array parses to) as a general array.
    var asGeneralArray: JSONValue {
        if case .floats(let floats) = self { return .array(floats.map { .double(Double($0)) }) }
        return self
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count, let first = needle.first else { return needle.isEmpty }
        var index = 0
        while index + needle.count <= count {
            if self[index] == first && self[index ..< index + needle.count].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}
