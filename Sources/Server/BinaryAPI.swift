// The binary client protocol (Format/client.md): the REST API's operations as RPC methods on
// the binary port (default 6334), for the Swift SDK (`VectronClient`) and any client that
// speaks Format/rpc.md.
//
// A connection authenticates once, in its handshake (an API key or a login token as the
// credential); every request is then checked again against the catalog — a revoked key or an
// expired token stops working on open connections too — and rate-limited per key like REST.
// Errors are the RPC codes: 400 → invalidArgument, 401 → unauthenticated, 404 → notFound,
// 429 → resourceExhausted, 503 → unavailable, anything else → internal.

import Auth
import Basics
import Catalog
import ClientProtocol
import Dispatch
import JSON
import Payload
import RPC
import RPCTransport
import Shard
import VectorIndex

extension APIError {
    var rpcError: RPCError {
        switch status {
        case 400, 409, 413, 422: return .invalidArgument(message)
        case 401: return .unauthenticated(message)
        case 403: return .permissionDenied(message)
        case 404: return .notFound(message)
        case 429: return .resourceExhausted(message)
        case 503: return .unavailable(message)
        default: return .internal(message)
        }
    }
}

extension Gateway {
    /// Starts the binary protocol's server; returns the bound port.
    public func startBinary() throws(ServerError) -> Int {
        // Requests decode before their caller is checked: bound what one connection may have
        // running (each may hold a request of up to the body limit).
        let configuration = RPCServerConfiguration(
            clusterID: ClientMethods.clusterID,
            limits: FrameLimits(payloadBytesMax: max(node.configuration.maxBodyBytes, 1 << 20)),
            concurrentRequestsMax: 256, connectionsMax: 1024)
        let server = RPCServer(configuration: configuration, registry: binaryMethods(), authenticator: binaryAuthenticator())
        let host = node.configuration.rpcHost ?? node.configuration.httpHost
        let port = node.configuration.rpcPort
        let result = Self.blocking { () async -> Result<Int, RPCError> in
            do throws(RPCError) { return .success(try await server.start(host: host, port: port)) } catch { return .failure(error) }
        }
        switch result {
        case .success(let bound):
            binaryServer.withLock { $0 = server }
            return bound
        case .failure(let error):
            throw .startup("cannot serve the binary protocol on \(host):\(port): \(error.message)")
        }
    }

    /// Stops the binary protocol's server, letting running requests answer (at most `grace`).
    func stopBinary(grace: Duration = .seconds(5)) {
        guard let server = binaryServer.withLock({ $0 }) else { return }
        Self.blocking { () async -> Void in await server.shutdown(gracePeriod: grace) }
    }

    /// Runs async work to completion from synchronous code (start and stop only). Blocks the
    /// calling thread: never call it from a Swift concurrency thread (it could wait for itself).
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let done = ConditionLock()
        nonisolated(unsafe) var result: T?
        Task {
            let value = await body()
            done.withLock { result = value }
            done.broadcast()
        }
        return done.withLock { () -> T in
            while result == nil { done.wait() }
            return result!
        }
    }

    // MARK: Authentication

    /// The handshake's check: the credential is an API key or a login token, verified now.
    func binaryAuthenticator() -> RPCAuthenticator {
        RPCAuthenticator { [self] handshake in
            guard handshake.role == .client else { return .failure(.permissionDenied("this port serves clients, not cluster nodes")) }
            guard isReady else { return .failure(.unavailable("the node is still recovering")) }
            let bytes: [UInt8]
            switch handshake.credential {
            case .apiKey(let key): bytes = key
            case .bearerToken(let token): bytes = token
            case .none: return .failure(.unauthenticated("missing credentials: connect with an API key or a login token"))
            }
            guard let text = String(validating: bytes, as: UTF8.self) else { return .failure(.unauthenticated("invalid API key")) }
            do throws(APIError) {
                let principal = try authenticate(credential: text)
                // The peer names the key (or the token's user and expiry), never the secret.
                let name = principal.keyID.map { "key:\($0)" } ?? "token:\(principal.userID):\(principal.expiresAt ?? 0)"
                return .success(RPCPeer(role: .client, principal: name))
            } catch {
                return .failure(error.rpcError)
            }
        }
    }

    /// The caller of a request, checked against the catalog as it is now.
    func principal(_ peer: RPCPeer) throws(APIError) -> Principal {
        let catalog = node.catalog
        let parts = peer.principal.split(separator: ":").map(String.init)
        if parts.count == 2, parts[0] == "key" {
            guard let key = catalog.keys[parts[1]], let user = catalog.users[key.owner] else {
                throw .unauthorized("the API key was revoked")
            }
            return Principal(userID: user.id, isAdmin: user.isAdmin, bucket: "key:\(key.id)", keyID: key.id)
        }
        if parts.count == 3, parts[0] == "token", let id = UInt64(parts[1]), let expiresAt = Int64(parts[2]) {
            // The rule of `JWT.verify`: expired from `exp + leeway` on.
            let (end, overflow) = expiresAt.addingReportingOverflow(JWT.leewayDefault)
            guard overflow || Self.unixNow() < end else { throw .unauthorized("the token expired: log in again") }
            guard let user = catalog.users[id] else { throw .unauthorized("invalid token: unknown subject") }
            return Principal(userID: user.id, isAdmin: user.isAdmin, bucket: "user:\(user.id)", expiresAt: expiresAt)
        }
        throw .unauthorized("unknown caller")
    }

    // MARK: Methods

    /// Registers `body` as `method`'s handler: it runs for an authenticated, rate-limited caller,
    /// its failures become RPC errors, and it is counted in the metrics.
    private func serve<Request, Response>(
        _ registry: inout MethodRegistry, _ method: RPCMethod<Request, Response>,
        _ body: @escaping @Sendable (Gateway, Request, Principal) async throws(APIError) -> Response
    ) {
        registry.register(method) { [self] (request, context) async throws(RPCError) -> Response in
            let started = ContinuousClock.now
            var status = 200
            defer { metrics.record(endpoint: "rpc \(method.name)", status: status, seconds: (ContinuousClock.now - started).seconds) }
            do throws(APIError) {
                guard isReady else { throw .unavailable("the node is still recovering") }
                let caller = try principal(context.peer)
                if case .limited(let retryAfter) = limiter.take(key: caller.bucket, now: (ContinuousClock.now - clockStart).seconds) {
                    throw APIError(status: 429, message: "rate limit exceeded; retry after \(retryAfter) s")
                }
                return try await body(self, request, caller)
            } catch {
                status = error.status
                throw error.rpcError
            }
        }
    }

    func binaryMethods() -> MethodRegistry {
        var registry = MethodRegistry()
        serve(&registry, ClientMethods.createCollection) { gateway, request, caller throws(APIError) in
            let settings = CollectionSettings(name: request.name, dimension: Int(request.dimension),
                                              metric: Metric(rawValue: request.distance.rawValue)!, shards: Int(request.shards),
                                              m: Int(request.m), efConstruct: Int(request.efConstruct))
            try gateway.checkCollection(settings)
            let created = try await completion { gateway.createCollection(settings, owner: caller.userID, completion: $0) }
            return created ? .created : .alreadyExists
        }
        serve(&registry, ClientMethods.deleteCollection) { gateway, request, caller throws(APIError) in
            guard let info = try? gateway.collection(named: request.name, for: caller) else { return Flag(false) }
            return Flag(try await completion { gateway.deleteCollection(info, completion: $0) })
        }
        serve(&registry, ClientMethods.getCollection) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.name, for: caller)
            let spec = CollectionSpec(name: info.name, dimension: UInt32(info.dimension), distance: Distance(rawValue: info.metric.rawValue)!,
                                      shards: UInt32(info.shardGroups.count), m: UInt32(info.m), efConstruct: UInt32(info.efConstruct))
            return CollectionDescription(spec: spec, points: UInt64(gateway.pointCount(info)))
        }
        serve(&registry, ClientMethods.listCollections) { gateway, _, caller throws(APIError) in
            CollectionNames(gateway.collectionNames(for: caller))
        }
        serve(&registry, ClientMethods.collectionExists) { gateway, request, caller throws(APIError) in
            Flag((try? gateway.collection(named: request.name, for: caller)) != nil)
        }
        serve(&registry, ClientMethods.upsert) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.collection, for: caller)
            var points: [ShardCommand.Point] = []
            points.reserveCapacity(request.points.count)
            for (index, point) in request.points.enumerated() {
                try gateway.checkVector(point.vector, "points[\(index)].vector", dimension: info.dimension, metric: info.metric)
                let field = "points[\(index)].payload"
                let payload = try gateway.payloadText(try gateway.parseJSONText(point.payload, field), field)
                points.append(ShardCommand.Point(key: point.id.encodedKey, vector: point.vector, payload: payload))
            }
            let commands = Self.upsertCommands(points, info)
            return UpdateResult(operationID: try await completion { gateway.propose(commands, completion: $0) })
        }
        serve(&registry, ClientMethods.retrieve) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.collection, for: caller)
            let selector = try gateway.selector(request.withPayload)
            let found = try await gateway.offloaded { () throws(APIError) in try gateway.fetch(request.ids, info) }
            return PointList(found.compactMap { Self.pointRead($0.key, $0.record, score: nil, selector, vector: request.withVector) })
        }
        serve(&registry, ClientMethods.deletePoints) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.collection, for: caller)
            let selection = try gateway.selection(request.selector)
            let commands = try await gateway.offloaded { () throws(APIError) in
                Self.commands(try gateway.selectKeys(selection, info), info) { .delete(keys: $0) }
            }
            return UpdateResult(operationID: try await completion { gateway.propose(commands, completion: $0) })
        }
        serve(&registry, ClientMethods.changePayload) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.collection, for: caller)
            let edit: PayloadEdit
            switch request.change {
            case .set(let payload, let path): edit = .set(payload: try gateway.payloadObjectText(payload), path: path)
            case .overwrite(let payload): edit = .overwrite(payload: try gateway.payloadObjectText(payload))
            case .deleteKeys(let keys): edit = .deleteKeys(keys)
            case .clear: edit = .clear
            }
            try gateway.checkEdit(edit)
            let selection = try gateway.selection(request.selector)
            let commands = try await gateway.offloaded { () throws(APIError) in
                Self.commands(try gateway.selectKeys(selection, info), info) { Self.command(edit, keys: $0) }
            }
            return UpdateResult(operationID: try await completion { gateway.propose(commands, completion: $0) })
        }
        serve(&registry, ClientMethods.search) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.collection, for: caller)
            try gateway.checkVector(request.vector, "vector", dimension: info.dimension, metric: info.metric)
            let spec = SearchSpec(vector: request.vector, limit: Int(request.limit), offset: Int(request.offset),
                                  filter: try gateway.filter(try gateway.parseJSONText(request.filter, "filter")),
                                  threshold: request.scoreThreshold, ef: request.ef.map { Int($0) }, exact: request.exact)
            try gateway.checkSearch(spec)
            let selector = try gateway.selector(request.withPayload)
            let hits = try await gateway.offloaded { () throws(APIError) in Array(try gateway.searchHits(spec, info)) }
            return PointList(hits.compactMap { Self.pointRead($0.key, $0.record, score: $0.score, selector, vector: request.withVector) })
        }
        serve(&registry, ClientMethods.scroll) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.collection, for: caller)
            let filter = try gateway.filter(try gateway.parseJSONText(request.filter, "filter"))
            let selector = try gateway.selector(request.withPayload)
            let from = request.from?.encodedKey
            let (page, next) = try await gateway.offloaded { () throws(APIError) in
                let (page, next) = try gateway.scrollPage(from: from, limit: Int(request.limit), filter: filter, info)
                return (Array(page), next)
            }
            return ScrollResult(points: page.compactMap { Self.pointRead($0.key, $0.record, score: nil, selector, vector: request.withVector) },
                                next: next.flatMap { try? PointID(encodedKey: $0) })
        }
        serve(&registry, ClientMethods.count) { gateway, request, caller throws(APIError) in
            let info = try gateway.collection(named: request.collection, for: caller)
            let filter = try gateway.filter(try gateway.parseJSONText(request.filter, "filter"))
            return CountResult(count: UInt64(try await gateway.offloaded { () throws(APIError) in try gateway.countPoints(filter: filter, info) }))
        }
        return registry
    }

    // MARK: Conversions

    func selector(_ selection: PayloadSelection) throws(APIError) -> PayloadSelector {
        switch selection {
        case .none: return .none
        case .all: return .all
        case .include(let keys): return .include(keys)
        case .exclude(let keys): return .exclude(keys)
        }
    }

    func selection(_ selector: PointSelector) throws(APIError) -> PointSelection {
        switch selector {
        case .ids(let ids): return .ids(ids)
        case .filter(let text):
            guard let filter = try filter(try parseJSONText(text, "filter")) else { throw .badRequest("the filter is empty") }
            return .filter(filter)
        }
    }

    /// A payload object's text, as the set and overwrite changes require.
    func payloadObjectText(_ text: [UInt8]) throws(APIError) -> [UInt8] {
        guard let value = try parseJSONText(text, "payload"), value.objectValue != nil else { throw .badRequest("`payload` (an object) is required") }
        return try payloadText(value, "payload")
    }

    static func pointRead(_ key: [UInt8], _ record: PointRecord, score: Float?, _ selector: PayloadSelector, vector: Bool) -> PointRead? {
        guard let id = try? PointID(encodedKey: key) else { return nil }
        let payload: [UInt8]?
        switch selector {
        case .none: payload = nil
        case .all: payload = record.payload
        case .include, .exclude: payload = selector.apply(record.payload).serialized()
        }
        return PointRead(id: id, score: score, payload: payload, vector: vector ? record.vector : nil)
    }

    /// Runs blocking work (shard reads) on the worker queue, off the task pool.
    func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws(APIError) -> T) async throws(APIError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, APIError>, Never>) in
            workers.async {
                do throws(APIError) { continuation.resume(returning: .success(try body())) } catch { continuation.resume(returning: .failure(error)) }
            }
        }
        return try result.get()
    }
}

/// Waits for a completion-style operation.
func completion<T: Sendable>(_ start: (@escaping @Sendable (Result<T, APIError>) -> Void) -> Void) async throws(APIError) -> T {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, APIError>, Never>) in
        start { continuation.resume(returning: $0) }
    }
    return try result.get()
}
