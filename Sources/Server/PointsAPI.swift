// /collections/{name}/points…: upsert, retrieve, delete, payload changes, search, query,
// scroll, count — Qdrant's JSON shapes over the operations in Operations.swift.

import Basics
import Catalog
import Checksum
import HTTPServer
import JSON
import Payload
import Shard
import VectorIndex

extension Gateway {
    static let floatKeys: Set<String> = ["vector", "vectors", "query", "nearest"]

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
        try checkVector(floats, field, dimension: dimension, metric: metric)
        return floats
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

    /// Answers a write with Qdrant's update result.
    func answerUpdate(_ call: Call) -> @Sendable (Result<UInt64, APIError>) -> Void {
        let applied = waitForApply(call)
        return { result in
            switch result {
            case .success(let index): call.ok(Self.updateResult(index, applied: applied))
            case .failure(let error): call.fail(error)
            }
        }
    }

    /// `?wait=false` (Qdrant's): answer a write once it is durable in the log, before it is
    /// applied and searchable. Anything else — the default — answers once it is applied, so a
    /// search right after sees it. Either way the write is durable when answered.
    func waitForApply(_ call: Call) -> Bool { call.request.queryValue("wait") != "false" }

    static func updateResult(_ index: UInt64, applied: Bool = true) -> JSONValue {
        var object = JSONObject()
        object.set("operation_id", .unsigned(index))
        object.set("status", .string(applied ? "completed" : "acknowledged"))
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
            propose(Self.upsertCommands(points, info), waitForApply: waitForApply(call), completion: answerUpdate(call))
        } catch {
            call.fail(error)
        }
    }

    /// Whether serialized payload text could contain a vector-scoped array (`"vector": [`…).
    static func mayHoldFloats(_ payload: [UInt8]) -> Bool {
        payload.count > 2 && floatKeys.contains { key in payload.containsSubsequence(Array("\"\(key)\"".utf8)) }
    }

    enum PayloadChange { case set, overwrite, deleteKeys, clear }

    /// The points a request selects: `points` (ids) or `filter`.
    func selection(_ body: JSONValue, field: String = "points") throws(APIError) -> PointSelection {
        if let ids = body[field], !ids.isNull { return .ids(try pointIDs(ids, field)) }
        guard let filter = try filter(body["filter"]) else { throw .badRequest("give `\(field)` (a list of ids) or `filter`") }
        return .filter(filter)
    }

    func deletePoints(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            let selection = try selection(try self.body(call))
            offload(call) { [self] () throws(APIError) in
                let perShard = try selectKeys(selection, info)
                propose(Self.commands(perShard, info) { .delete(keys: $0) }, waitForApply: waitForApply(call), completion: answerUpdate(call))
            }
        } catch {
            call.fail(error)
        }
    }

    func changePayload(_ call: Call, kind: PayloadChange) {
        do throws(APIError) {
            let info = try collection(call)
            let body = try self.body(call)
            let edit: PayloadEdit
            switch kind {
            case .set, .overwrite:
                guard body["payload"]?.objectValue != nil else { throw .badRequest("`payload` (an object) is required") }
                let payload = try payloadText(body["payload"], "payload")
                if kind == .overwrite {
                    edit = .overwrite(payload: payload)
                } else if let value = body["key"], !value.isNull {
                    guard case .string(let text) = value else { throw .badRequest("`key` must be a string") }
                    edit = .set(payload: payload, path: text)
                } else {
                    edit = .set(payload: payload, path: nil)
                }
            case .deleteKeys:
                guard case .array(let items)? = body["keys"]?.asGeneralArray else { throw .badRequest("`keys` (a list of strings) is required") }
                var paths: [String] = []
                for item in items {
                    guard case .string(let text) = item else { throw .badRequest("`keys` must hold strings") }
                    paths.append(text)
                }
                edit = .deleteKeys(paths)
            case .clear:
                edit = .clear
            }
            try checkEdit(edit)
            let selection = try selection(body)
            offload(call) { [self] () throws(APIError) in
                let perShard = try selectKeys(selection, info)
                propose(Self.commands(perShard, info) { Self.command(edit, keys: $0) }, waitForApply: waitForApply(call), completion: answerUpdate(call))
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
            offload(call) { [self] () throws(APIError) in
                guard let point = try fetch([id], info).first else { throw .notFound("Not found: Point with id \(id) does not exists!") }
                call.ok { Self.writePoint(&$0, key: point.key, record: point.record, score: nil, payload: .all, vector: true) }
            }
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
            offload(call) { [self] () throws(APIError) in
                let found = try fetch(ids, info)
                call.ok { writer in
                    writer.beginArray()
                    for (key, record) in found { Self.writePoint(&writer, key: key, record: record, score: nil, payload: payload, vector: withVector) }
                    writer.endArray()
                }
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
            var spec = SearchSpec(
                vector: try vector(vectorValue, query ? "query" : "vector", dimension: info.dimension, metric: info.metric),
                limit: try positiveInt(body["limit"] ?? body["top"], "limit", default: 10, max: Self.resultPointsMax),
                offset: try positiveInt(body["offset"], "offset", default: 0, max: Self.resultPointsMax),
                filter: try filter(body["filter"]), threshold: nil, ef: nil, exact: false)
            let payload = try payloadSelector(body["with_payload"], default: false)
            let withVector = try flag(body["with_vector"], "with_vector", default: false)
            if let value = body["score_threshold"], !value.isNull {
                guard let number = value.doubleValue else { throw .badRequest("`score_threshold` must be a number") }
                spec.threshold = Float(number)
            }
            if case .object(let params)? = body["params"] {
                if let value = params["hnsw_ef"], !value.isNull { spec.ef = try positiveInt(value, "params.hnsw_ef", default: 0, max: 100_000) }
                spec.exact = try flag(params["exact"], "params.exact", default: false)
            }
            try checkSearch(spec)
            let checked = spec
            offload(call) { [self] () throws(APIError) in
                let page = try searchHits(checked, info)
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

    func scroll(_ call: Call, body: JSONValue, info: CollectionInfo, queryShape: Bool) {
        do throws(APIError) {
            let limit = try positiveInt(body["limit"], "limit", default: 10, max: Self.resultPointsMax)
            var from: [UInt8]?
            if let value = body["offset"], !value.isNull { from = try pointID(value, "offset").encodedKey }
            let filter = try filter(body["filter"])
            let payload = try payloadSelector(body["with_payload"], default: true)
            let withVector = try flag(body["with_vector"], "with_vector", default: false)
            let start = from
            offload(call) { [self] () throws(APIError) in
                let (page, next) = try scrollPage(from: start, limit: limit, filter: filter, info)
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
            let filter = try filter(try self.body(call)["filter"])
            offload(call) { [self] () throws(APIError) in
                let total = try countPoints(filter: filter, info)
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
