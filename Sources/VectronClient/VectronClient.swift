// The Swift SDK: a Vectron server's operations over the binary protocol (Format/client.md),
// with async/await and typed errors.
//
//     let client = VectronClient(host: "127.0.0.1", port: 6334, apiKey: key)
//     try await client.createCollection("docs", dimension: 384, distance: .cosine, shards: 2)
//     try await client.upsert("docs", points: [Point(id: 1, vector: v, payload: ["lang": "en"])])
//     let hits = try await client.search("docs", vector: q, limit: 10, filter: filter)
//
// Calls that can safely run twice — reads, upserts, deletes by id and payload changes by id —
// are retried when the server is unreachable, restarting or rate-limiting (with exponential
// backoff and jitter, a bounded number of times). Creating or deleting a collection and changes
// selected by a filter are not: their second run could mean something else.

import ClientProtocol
import JSON
import Payload
import RPC
import RPCTransport
import Synchronization

public typealias PointID = Payload.PointID
public typealias Distance = ClientProtocol.Distance
public typealias PayloadSelection = ClientProtocol.PayloadSelection

/// Every failure a call can end with.
public enum VectronError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No such collection (or not yours), or no such point.
    case notFound(String)
    /// The request is malformed or breaks a rule (wrong dimension, bad filter, …): do not retry it unchanged.
    case invalidArgument(String)
    /// A collection of that name exists already.
    case alreadyExists(String)
    /// The credential is missing, unknown, revoked or expired.
    case unauthenticated(String)
    case permissionDenied(String)
    /// Too many requests: the rate limit or a queue is full. Back off.
    case resourceExhausted(String)
    /// The server cannot be reached, is recovering or going away; the request may or may not have run.
    case unavailable(String)
    case deadlineExceeded(String)
    case cancelled(String)
    /// A bug or an unexpected failure on the server, or an answer the SDK could not read.
    case `internal`(String)

    init(_ error: RPCError) {
        switch error.code {
        case .notFound: self = .notFound(error.message)
        case .invalidArgument: self = .invalidArgument(error.message)
        case .unauthenticated: self = .unauthenticated(error.message)
        case .permissionDenied: self = .permissionDenied(error.message)
        case .resourceExhausted:
            // A request or an answer over a frame limit fails the same way every time: the
            // caller must send less (smaller batches, a lower limit), not retry.
            if error.message.contains("exceeds") {
                self = .invalidArgument("too large: \(error.message)")
            } else {
                self = .resourceExhausted(error.message)
            }
        case .unavailable, .notLeader, .wrongShard: self = .unavailable(error.message)
        case .deadlineExceeded: self = .deadlineExceeded(error.message)
        case .cancelled: self = .cancelled(error.message)
        case .internal: self = .internal(error.message)
        }
    }

    /// Whether a call that may safely run twice should be tried again.
    var isTransient: Bool {
        switch self {
        case .unavailable, .resourceExhausted: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .notFound(let message): return "not found: \(message)"
        case .invalidArgument(let message): return "invalid argument: \(message)"
        case .alreadyExists(let message): return "already exists: \(message)"
        case .unauthenticated(let message): return "unauthenticated: \(message)"
        case .permissionDenied(let message): return "permission denied: \(message)"
        case .resourceExhausted(let message): return "resource exhausted: \(message)"
        case .unavailable(let message): return "unavailable: \(message)"
        case .deadlineExceeded(let message): return "deadline exceeded: \(message)"
        case .cancelled(let message): return "cancelled: \(message)"
        case .internal(let message): return "internal: \(message)"
        }
    }
}

/// A point to write.
public struct Point: Sendable, Equatable {
    public var id: PointID
    public var vector: [Float]
    public var payload: JSONObject

    public init(id: PointID, vector: [Float], payload: JSONObject = JSONObject()) {
        self.id = id
        self.vector = vector
        self.payload = payload
    }

    public init(id: UInt64, vector: [Float], payload: JSONObject = JSONObject()) {
        self.init(id: .number(id), vector: vector, payload: payload)
    }
}

/// A point read back (with a score when it comes from a search).
public struct Record: Sendable, Equatable {
    public var id: PointID
    public var score: Float?
    /// Present when asked for.
    public var payload: JSONObject?
    public var vector: [Float]?
}

/// A collection's settings and size.
public struct CollectionInfo: Sendable, Equatable {
    public var name: String
    public var dimension: Int
    public var distance: Distance
    public var shards: Int
    public var m: Int
    public var efConstruct: Int
    public var points: Int
}

public final class VectronClient: Sendable {
    public struct Configuration: Sendable {
        /// How long one attempt may take.
        public var timeout: Duration = .seconds(60)
        /// Attempts of a call that may safely run twice (1: no retries).
        public var attempts: Int = 5
        /// Backoff between attempts: doubling from `backoffInitial` up to `backoffMax`, with up to
        /// half of it as random jitter.
        public var backoffInitial: Duration = .milliseconds(50)
        public var backoffMax: Duration = .seconds(2)
        /// Connections to the server, 1…4 (requests are multiplexed on each).
        public var connections: Int = 1
        /// Seeds the jitter, so a run can be repeated exactly.
        public var randomSeed: UInt64 = 0x5EED

        public init() {}
    }

    public let configuration: Configuration
    let rpc: RPCClient

    /// A client of the server at `host:port`, authenticated with an API key.
    public convenience init(host: String = "127.0.0.1", port: Int = 6334, apiKey: String, configuration: Configuration = Configuration()) {
        self.init(host: host, port: port, credential: .apiKey(Array(apiKey.utf8)), configuration: configuration)
    }

    /// A client authenticated with a login token (a JWT from `POST /auth/login`).
    public convenience init(host: String = "127.0.0.1", port: Int = 6334, token: String, configuration: Configuration = Configuration()) {
        self.init(host: host, port: port, credential: .bearerToken(Array(token.utf8)), configuration: configuration)
    }

    init(host: String, port: Int, credential: Credential, configuration: Configuration) {
        self.configuration = configuration
        var rpcConfiguration = RPCClientConfiguration(handshake: Handshake(clusterID: ClientMethods.clusterID, role: .client, credential: credential))
        rpcConfiguration.connectionsPerPeer = min(4, max(1, configuration.connections))
        rpcConfiguration.limits = FrameLimits(payloadBytesMax: 64 << 20)
        rpcConfiguration.randomSeed = configuration.randomSeed
        rpc = RPCClient(host: host, port: port, configuration: rpcConfiguration)
    }

    /// Closes the connections; calls still running fail with `unavailable`.
    public func close() async { await rpc.shutdown() }

    // MARK: Collections

    /// Creates a collection; throws `alreadyExists` if the name is taken.
    public func createCollection(_ name: String, dimension: Int, distance: Distance, shards: Int = 1, m: Int = 16,
                                 efConstruct: Int = 100) async throws(VectronError) {
        let spec = CollectionSpec(name: name, dimension: UInt32(clamping: dimension), distance: distance, shards: UInt32(clamping: shards),
                                  m: UInt32(clamping: m), efConstruct: UInt32(clamping: efConstruct))
        guard dimension > 0, shards > 0, m > 0, efConstruct > 0 else { throw .invalidArgument("dimension, shards, m and efConstruct must be positive") }
        let outcome = try await call(ClientMethods.createCollection, spec, idempotent: false)
        if outcome == .alreadyExists { throw .alreadyExists("Collection `\(name)` already exists") }
    }

    /// Deletes a collection; returns whether it existed.
    @discardableResult
    public func deleteCollection(_ name: String) async throws(VectronError) -> Bool {
        try await call(ClientMethods.deleteCollection, CollectionName(name), idempotent: false).value
    }

    public func collection(_ name: String) async throws(VectronError) -> CollectionInfo {
        let description = try await call(ClientMethods.getCollection, CollectionName(name), idempotent: true)
        let spec = description.spec
        return CollectionInfo(name: spec.name, dimension: Int(spec.dimension), distance: spec.distance, shards: Int(spec.shards),
                              m: Int(spec.m), efConstruct: Int(spec.efConstruct), points: Int(clamping: description.points))
    }

    /// The names of your collections, sorted.
    public func collections() async throws(VectronError) -> [String] {
        try await call(ClientMethods.listCollections, Empty(), idempotent: true).names
    }

    public func collectionExists(_ name: String) async throws(VectronError) -> Bool {
        try await call(ClientMethods.collectionExists, CollectionName(name), idempotent: true).value
    }

    // MARK: Writing points

    /// Inserts or replaces points; returns the operation id once they are durable and searchable.
    @discardableResult
    public func upsert(_ collection: String, points: [Point]) async throws(VectronError) -> UInt64 {
        let writes = points.map { PointWrite(id: $0.id, vector: $0.vector, payload: JSONValue.object($0.payload).serialized()) }
        return try await call(ClientMethods.upsert, UpsertRequest(collection: collection, points: writes), idempotent: true).operationID
    }

    @discardableResult
    public func delete(_ collection: String, ids: [PointID]) async throws(VectronError) -> UInt64 {
        try await call(ClientMethods.deletePoints, DeletePointsRequest(collection: collection, selector: .ids(ids)), idempotent: true).operationID
    }

    /// Deletes the points matching a filter (Qdrant's filter JSON).
    @discardableResult
    public func delete(_ collection: String, filter: JSONValue) async throws(VectronError) -> UInt64 {
        try await call(ClientMethods.deletePoints, DeletePointsRequest(collection: collection, selector: .filter(filter.serialized())),
                       idempotent: false).operationID
    }

    /// Which points a payload change touches.
    public enum Selection: Sendable {
        case ids([PointID])
        case filter(JSONValue)

        var wire: PointSelector {
            switch self {
            case .ids(let ids): return .ids(ids)
            case .filter(let filter): return .filter(filter.serialized())
            }
        }

        var isIdempotent: Bool { if case .ids = self { return true } else { return false } }
    }

    /// Merges `payload` into the selected points' payloads (under `key`, a nested path, if given).
    @discardableResult
    public func setPayload(_ collection: String, _ payload: JSONObject, points: Selection, key: String? = nil) async throws(VectronError) -> UInt64 {
        try await changePayload(collection, points, .set(payload: JSONValue.object(payload).serialized(), path: key))
    }

    /// Replaces the selected points' payloads.
    @discardableResult
    public func overwritePayload(_ collection: String, _ payload: JSONObject, points: Selection) async throws(VectronError) -> UInt64 {
        try await changePayload(collection, points, .overwrite(payload: JSONValue.object(payload).serialized()))
    }

    @discardableResult
    public func deletePayloadKeys(_ collection: String, _ keys: [String], points: Selection) async throws(VectronError) -> UInt64 {
        try await changePayload(collection, points, .deleteKeys(keys))
    }

    @discardableResult
    public func clearPayload(_ collection: String, points: Selection) async throws(VectronError) -> UInt64 {
        try await changePayload(collection, points, .clear)
    }

    func changePayload(_ collection: String, _ points: Selection, _ change: PayloadChange) async throws(VectronError) -> UInt64 {
        let request = PayloadChangeRequest(collection: collection, selector: points.wire, change: change)
        return try await call(ClientMethods.changePayload, request, idempotent: points.isIdempotent).operationID
    }

    // MARK: Reading points

    /// The points of `ids` that exist, in the order asked.
    public func retrieve(_ collection: String, ids: [PointID], withPayload: PayloadSelection = .all,
                         withVector: Bool = false) async throws(VectronError) -> [Record] {
        let request = RetrieveRequest(collection: collection, ids: ids, withPayload: withPayload, withVector: withVector)
        return try Self.records(try await call(ClientMethods.retrieve, request, idempotent: true).points)
    }

    /// The nearest neighbours of `vector`, best first.
    public func search(_ collection: String, vector: [Float], limit: Int = 10, offset: Int = 0, filter: JSONValue? = nil,
                       withPayload: PayloadSelection = .none, withVector: Bool = false, scoreThreshold: Float? = nil,
                       ef: Int? = nil, exact: Bool = false) async throws(VectronError) -> [Record] {
        guard limit >= 0, offset >= 0, (ef ?? 0) >= 0 else { throw .invalidArgument("limit, offset and ef must not be negative") }
        let request = SearchRequest(collection: collection, vector: vector, limit: UInt32(clamping: limit), offset: UInt32(clamping: offset),
                                    filter: filter?.serialized() ?? [], withPayload: withPayload, withVector: withVector, exact: exact,
                                    scoreThreshold: scoreThreshold, ef: ef.map { UInt32(clamping: $0) })
        return try Self.records(try await call(ClientMethods.search, request, idempotent: true).points)
    }

    /// One page of points in id order, from `from` (a previous page's `next`) on.
    public func scroll(_ collection: String, from: PointID? = nil, limit: Int = 10, filter: JSONValue? = nil,
                       withPayload: PayloadSelection = .all, withVector: Bool = false) async throws(VectronError) -> (points: [Record], next: PointID?) {
        guard limit >= 1 else { throw .invalidArgument("limit must be at least 1") }
        let request = ScrollRequest(collection: collection, from: from, limit: UInt32(clamping: limit), filter: filter?.serialized() ?? [],
                                    withPayload: withPayload, withVector: withVector)
        let result = try await call(ClientMethods.scroll, request, idempotent: true)
        return (try Self.records(result.points), result.next)
    }

    /// How many points match `filter` (all, without one).
    public func count(_ collection: String, filter: JSONValue? = nil) async throws(VectronError) -> Int {
        Int(clamping: try await call(ClientMethods.count, CountRequest(collection: collection, filter: filter?.serialized() ?? []),
                                     idempotent: true).count)
    }

    static func records(_ points: [PointRead]) throws(VectronError) -> [Record] {
        var records: [Record] = []
        records.reserveCapacity(points.count)
        for point in points {
            var payload: JSONObject?
            if let text = point.payload {
                guard case .object(let object)? = try? JSONParser.parse(text) else { throw .internal("the server sent a payload that is not a JSON object") }
                payload = object
            }
            records.append(Record(id: point.id, score: point.score, payload: payload, vector: point.vector))
        }
        return records
    }

    // MARK: Calls

    let jitter = JitterSource()

    func call<Request, Response>(_ method: RPCMethod<Request, Response>, _ request: Request, idempotent: Bool) async throws(VectronError) -> Response {
        let attempts = idempotent ? max(1, configuration.attempts) : 1
        var backoff = configuration.backoffInitial
        var attempt = 1
        while true {
            do throws(RPCError) {
                return try await rpc.call(method, request, options: CallOptions(timeout: configuration.timeout))
            } catch {
                let failure = VectronError(error)
                guard failure.isTransient, attempt < attempts, !Task.isCancelled else { throw failure }
                let pause = backoff + backoff * (0.5 * jitter.next(seed: configuration.randomSeed))
                do { try await Task.sleep(for: pause) } catch { throw .cancelled("cancelled while waiting to retry") }
                backoff = min(backoff * 2, configuration.backoffMax)
                attempt += 1
            }
        }
    }
}

/// Seeded jitter in [0, 1) (SplitMix64): a failing run repeats exactly from its seed.
final class JitterSource: Sendable {
    private let state = Mutex<UInt64?>(nil)

    func next(seed: UInt64) -> Double {
        state.withLock { value in
            var x = (value ?? seed) &+ 0x9E37_79B9_7F4A_7C15
            value = x
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            x ^= x >> 31
            return Double(x >> 11) / Double(1 << 53)
        }
    }
}
