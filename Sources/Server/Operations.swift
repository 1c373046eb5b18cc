// The operations behind both front ends — the REST API (JSON) and the binary client protocol
// (Format/client.md). Each front end turns its request into these typed values, checks them
// the same way, runs the same operation, and writes the answer in its own encoding. Points
// spread over a collection's shards by the XXH3 of their id's key; a write proposes one command
// per shard it touches and answers once every one is applied; a read asks every shard and merges.

import Basics
import Catalog
import Checksum
import ClientProtocol
import JSON
import Payload
import Shard
import VectorIndex

/// Which points a delete or a payload change touches.
enum PointSelection: Sendable {
    case ids([PointID])
    /// Resolved on every shard when the write is made.
    case filter(Filter)
}

/// A change to the payloads of selected points (payload texts already checked).
enum PayloadEdit: Sendable {
    case set(payload: [UInt8], path: String?)
    case overwrite(payload: [UInt8])
    case deleteKeys([String])
    case clear
}

/// A nearest-neighbour query, checked.
struct SearchSpec: Sendable {
    var vector: [Float]
    var limit: Int
    var offset: Int
    var filter: Filter?
    var threshold: Float?
    var ef: Int?
    var exact: Bool
}

/// A new collection's settings, as asked for (checked by `checkCollection`).
struct CollectionSettings: Sendable {
    var name: String
    var dimension: Int
    var metric: Metric
    var shards: Int
    var m: Int
    var efConstruct: Int
}

extension Gateway {
    /// A command's encoded size above which a shard's part of a request is split.
    static let commandBytesTarget = 4 << 20
    static let payloadLimits = PayloadLimits()
    /// The most points one read returns (and, with `offset`, looks at per shard).
    static let resultPointsMax = ClientLimits.resultPointsMax
    /// Keys per delete or payload command (a filter may select millions).
    static let commandKeysMax = 50_000
    /// Payload keys one delete-keys change may name.
    static let payloadKeysMax = ClientLimits.keysMax

    static func shardIndex(_ key: [UInt8], shards: Int) -> Int { Int(XXH3.hash(key) % UInt64(shards)) }

    // MARK: Checks

    /// The caller's collection `name` (404 for a missing one and for another user's).
    func collection(named name: String, for principal: Principal?) throws(APIError) -> CollectionInfo {
        guard let info = node.catalog.collections[name], let principal, principal.isAdmin || info.owner == principal.userID else {
            throw .notFound("Not found: Collection `\(name)` doesn't exist!")
        }
        return info
    }

    /// The names of the collections `principal` may see, sorted.
    func collectionNames(for principal: Principal) -> [String] {
        node.catalog.collections.values.filter { principal.isAdmin || $0.owner == principal.userID }.map(\.name).sorted()
    }

    func checkCollection(_ settings: CollectionSettings) throws(APIError) {
        if let problem = Catalog.validateCollectionName(settings.name) { throw .badRequest(problem) }
        guard (1...65_536).contains(settings.dimension) else { throw .badRequest("`vectors.size` must be an integer in 1…65536") }
        guard (1...Catalog.shardsMax).contains(settings.shards) else { throw .badRequest("`shard_number` must be an integer in 1…\(Catalog.shardsMax)") }
        guard (2...128).contains(settings.m) else { throw .badRequest("`hnsw_config.m` must be an integer in 2…128") }
        guard (4...4096).contains(settings.efConstruct) else { throw .badRequest("`hnsw_config.ef_construct` must be an integer in 4…4096") }
    }

    /// A Cosine vector's squared length must lie in this range: the index normalises in float32
    /// and refuses a vector whose length is zero or not finite. Such a vector used to reach the
    /// shard's log, where applying it failed and stopped the shard for good (every later write to
    /// it hung); as a query it failed with a 500. Checked here in Double, with margins that keep
    /// the float32 sum of squares positive (at most 65,536 elements) and finite.
    static let cosineSquaredLengthRange = 1e-30...1e37

    func checkVector(_ floats: [Float], _ field: String, dimension: Int, metric: Metric) throws(APIError) {
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
    }

    /// A payload as stored: a JSON object within the limits, serialized (null or absent: `{}`).
    func payloadText(_ value: JSONValue?, _ field: String) throws(APIError) -> [UInt8] {
        guard let value, !value.isNull else { return Array("{}".utf8) }
        guard case .object(let object) = value else { throw .badRequest("`\(field)` must be a JSON object") }
        do throws(PayloadError) { try Self.payloadLimits.validate(object) } catch { throw .badRequest("\(field): \(error)") }
        return value.serialized()
    }

    /// JSON text from the binary protocol (empty: absent).
    func parseJSONText(_ text: [UInt8], _ field: String) throws(APIError) -> JSONValue? {
        guard !text.isEmpty else { return nil }
        var options = JSONParser.Options()
        options.bytesMax = node.configuration.maxBodyBytes
        do throws(JSONError) { return try JSONParser.parse(text, options: options) } catch { throw .badRequest("\(field): malformed JSON: \(error)") }
    }

    func filter(_ value: JSONValue?) throws(APIError) -> Filter? {
        guard let value, !value.isNull else { return nil }
        do throws(FilterError) { return try Filter.parse(value) } catch { throw .badRequest("Bad filter: \(error)") }
    }

    /// A payload path (`a.b[0]`) as a key to set under or to delete.
    func checkPath(_ text: String, _ field: String) throws(APIError) {
        do throws(PayloadPathError) { _ = try PayloadPath(parsing: text) } catch { throw .badRequest("\(field): \(error)") }
    }

    func checkEdit(_ edit: PayloadEdit) throws(APIError) {
        switch edit {
        case .set(_, let path?): try checkPath(path, "key")
        case .deleteKeys(let paths):
            guard paths.count <= Self.payloadKeysMax else { throw .badRequest("`keys` may name at most \(Self.payloadKeysMax) payload keys") }
            for path in paths { try checkPath(path, "keys") }
        case .set, .overwrite, .clear: break
        }
    }

    func checkSearch(_ spec: SearchSpec) throws(APIError) {
        guard spec.limit <= Self.resultPointsMax, spec.offset <= Self.resultPointsMax, spec.limit + spec.offset <= Self.resultPointsMax else {
            throw .badRequest("`limit` + `offset` may be at most \(Self.resultPointsMax)")
        }
        if let ef = spec.ef, ef > 100_000 { throw .badRequest("`params.hnsw_ef` must be an integer in 0…100000") }
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

    // MARK: Collections

    /// Creates a collection; completes with true once its shards take writes, false if the name
    /// is taken (by anyone: another user's collection is not revealed as such).
    func createCollection(_ settings: CollectionSettings, owner: UInt64, completion: @escaping @Sendable (Result<Bool, APIError>) -> Void) {
        let command = CatalogCommand.createCollection(name: settings.name, owner: owner, dimension: settings.dimension, metric: settings.metric,
                                                      shards: settings.shards, m: settings.m, efConstruct: settings.efConstruct,
                                                      createdAt: Self.unixNow())
        node.proposeCatalog(command) { [node] result in
            switch result {
            case .success(.collectionCreated(let info)):
                node.whenShardsReady(info) { ready in
                    completion(ready ? .success(true) : .failure(.unavailable("the collection's shards did not start")))
                }
            case .success(.alreadyExists): completion(.success(false))
            case .success(.invalid(let text)): completion(.failure(.badRequest(text)))
            case .success(let other): completion(.failure(.badRequest("\(other)")))
            case .failure(let error): completion(.failure(APIError(error)))
            }
        }
    }

    /// Deletes a collection; completes with whether it existed.
    func deleteCollection(_ info: CollectionInfo, completion: @escaping @Sendable (Result<Bool, APIError>) -> Void) {
        node.proposeCatalog(.deleteCollection(name: info.name, firstGroup: info.shardGroups.first)) { result in
            switch result {
            case .success(.collectionDeleted): completion(.success(true))
            case .success(.notFound): completion(.success(false))
            case .success(let other): completion(.failure(.badRequest("\(other)")))
            case .failure(let error): completion(.failure(APIError(error)))
            }
        }
    }

    func pointCount(_ info: CollectionInfo) -> Int {
        var points = 0
        for group in info.shardGroups { points += node.shard(group: group)?.count ?? 0 }
        return points
    }

    // MARK: Writing

    /// Proposes each shard's commands; completes with the highest index once all are applied
    /// (or, without `waitForApply`, committed: durable, searchable soon after), or with the
    /// first failure.
    func propose(_ commands: [(group: UInt64, command: ShardCommand)], waitForApply: Bool = true,
                 completion: @escaping @Sendable (Result<UInt64, APIError>) -> Void) {
        if commands.isEmpty {
            completion(.success(0))
            return
        }
        let pending = PendingWrites(count: commands.count)
        for (group, command) in commands {
            node.propose(group: group, data: command.encode(), waitForApply: waitForApply) { result in
                guard let outcome = pending.complete(result) else { return }
                completion(outcome.mapError { APIError($0) })
            }
        }
    }

    /// Upsert commands for checked points: each shard's points in commands of about
    /// `commandBytesTarget` bytes.
    static func upsertCommands(_ points: [ShardCommand.Point], _ info: CollectionInfo) -> [(group: UInt64, command: ShardCommand)] {
        var perShard = [[ShardCommand.Point]](repeating: [], count: info.shardGroups.count)
        for point in points { perShard[shardIndex(point.key, shards: info.shardGroups.count)].append(point) }
        var commands: [(group: UInt64, command: ShardCommand)] = []
        for (shard, shardPoints) in perShard.enumerated() where !shardPoints.isEmpty {
            var chunk: [ShardCommand.Point] = []
            var bytes = 0
            for point in shardPoints {
                let size = point.key.count + point.vector.count * 4 + point.payload.count + 16
                if !chunk.isEmpty && bytes + size > commandBytesTarget {
                    commands.append((info.shardGroups[shard], .upsert(chunk)))
                    chunk = []
                    bytes = 0
                }
                chunk.append(point)
                bytes += size
            }
            commands.append((info.shardGroups[shard], .upsert(chunk)))
        }
        return commands
    }

    /// The keys `selection` names, per shard (a filter is resolved on every shard now). Blocks:
    /// call it off the event loops.
    func selectKeys(_ selection: PointSelection, _ info: CollectionInfo) throws(APIError) -> [[[UInt8]]] {
        var perShard = [[[UInt8]]](repeating: [], count: info.shardGroups.count)
        switch selection {
        case .ids(let ids):
            for id in ids {
                let key = id.encodedKey
                perShard[Self.shardIndex(key, shards: perShard.count)].append(key)
            }
        case .filter(let filter):
            let predicate = Self.predicate(filter)
            for (index, group) in info.shardGroups.enumerated() {
                let shard = try openShard(group)
                var after: [UInt8]?
                repeat {
                    let page: (points: [ShardPoint], next: [UInt8]?)
                    do throws(ShardError) { page = try shard.scroll(after: after, limit: 4096, filter: predicate) } catch { throw .internalError("\(error)") }
                    perShard[index].append(contentsOf: page.points.map(\.key))
                    after = page.next
                } while after != nil
            }
        }
        return perShard
    }

    /// Commands deleting, or changing the payloads of, the selected keys: each shard's keys in
    /// commands of at most `commandKeysMax` keys.
    static func commands(_ perShard: [[[UInt8]]], _ info: CollectionInfo, _ make: ([[UInt8]]) -> ShardCommand) -> [(group: UInt64, command: ShardCommand)] {
        var out: [(group: UInt64, command: ShardCommand)] = []
        for (shard, keys) in perShard.enumerated() {
            var start = 0
            while start < keys.count {
                let end = min(start + commandKeysMax, keys.count)
                out.append((info.shardGroups[shard], make(Array(keys[start..<end]))))
                start = end
            }
        }
        return out
    }

    static func command(_ edit: PayloadEdit, keys: [[UInt8]]) -> ShardCommand {
        switch edit {
        case .set(let payload, let path): return .setPayload(keys: keys, payload: payload, path: path)
        case .overwrite(let payload): return .overwritePayload(keys: keys, payload: payload)
        case .deleteKeys(let paths): return .deletePayloadKeys(keys: keys, paths: paths)
        case .clear: return .clearPayload(keys: keys)
        }
    }

    // MARK: Reading (these block: call them off the event loops)

    func openShard(_ group: UInt64) throws(APIError) -> Shard {
        guard let shard = node.shard(group: group) else { throw .unavailable("shard \(group) is not open") }
        return shard
    }

    /// The points of `ids` that exist, in the order asked.
    func fetch(_ ids: [PointID], _ info: CollectionInfo) throws(APIError) -> [(key: [UInt8], record: PointRecord)] {
        var found: [(key: [UInt8], record: PointRecord)] = []
        for id in ids {
            let key = id.encodedKey
            let shard = try openShard(info.shardGroups[Self.shardIndex(key, shards: info.shardGroups.count)])
            do throws(ShardError) { if let record = try shard.get(key) { found.append((key, record)) } } catch { throw .internalError("\(error)") }
        }
        return found
    }

    /// Every shard's best `limit + offset`, merged; the page after `offset`, above the threshold.
    func searchHits(_ spec: SearchSpec, _ info: CollectionInfo) throws(APIError) -> ArraySlice<ShardHit> {
        let k = spec.limit + spec.offset
        let predicate = Self.predicate(spec.filter)
        let higherIsBetter = info.metric.higherIsBetter
        var hits: [ShardHit] = []
        for group in info.shardGroups {
            let shard = try openShard(group)
            do throws(ShardError) {
                hits.append(contentsOf: try shard.search(spec.vector, k: k, ef: spec.ef.map { max($0, k) }, exact: spec.exact, filter: predicate))
            } catch {
                throw .internalError("\(error)")
            }
        }
        hits.sort { higherIsBetter ? $0.score > $1.score : $0.score < $1.score }
        if let threshold = spec.threshold { hits.removeAll { higherIsBetter ? $0.score < threshold : $0.score > threshold } }
        return hits.dropFirst(spec.offset).prefix(spec.limit)
    }

    /// Keyset pagination over every shard: each returns its points from `from` on (in id order);
    /// the merge takes `limit` and names the next page's first key.
    func scrollPage(from: [UInt8]?, limit: Int, filter: Filter?, _ info: CollectionInfo) throws(APIError) -> (points: ArraySlice<ShardPoint>, next: [UInt8]?) {
        // A page of 0 points still named the next point as `next_page_offset`, so a client
        // following it looped forever; Qdrant refuses a limit below 1 too.
        guard (1...Self.resultPointsMax).contains(limit) else { throw .badRequest("`limit` must be an integer in 1…\(Self.resultPointsMax)") }
        let predicate = Self.predicate(filter)
        var points: [ShardPoint] = []
        for group in info.shardGroups {
            let shard = try openShard(group)
            do throws(ShardError) {
                points.append(contentsOf: try shard.scroll(from: from, limit: limit + 1, filter: predicate).points)
            } catch {
                throw .internalError("\(error)")
            }
        }
        points.sort { $0.key.lexicographicallyPrecedes($1.key) }
        return (points.prefix(limit), points.count > limit ? points[limit].key : nil)
    }

    func countPoints(filter: Filter?, _ info: CollectionInfo) throws(APIError) -> Int {
        let predicate = Self.predicate(filter)
        var total = 0
        for group in info.shardGroups {
            let shard = try openShard(group)
            do throws(ShardError) { total += try shard.count(filter: predicate) } catch { throw .internalError("\(error)") }
        }
        return total
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
