// The REST gateway: Qdrant-shaped paths, bodies and envelopes over the node.
//
// Every response is `{"result": …, "status": "ok", "time": seconds}` or, on failure,
// `{"status": {"error": "…"}, "time": seconds}` with a 4xx/5xx code. Handlers run on the HTTP
// server's event loops for parsing and validation; writes complete from the thread that applies
// them, reads run on a worker queue, and password hashing (argon2id, tens of milliseconds) too.

import Auth
import Basics
import Catalog
import Dispatch
import HTTPServer
import JSON
import Logging
import Payload
import RPCTransport
import Shard
import Synchronization
import VectorIndex
#if canImport(Glibc)
import Glibc
#endif

/// Who is calling.
struct Principal: Sendable {
    var userID: UInt64
    var isAdmin: Bool
    /// The rate-limit bucket: the API key's id, or the user's for a token.
    var bucket: String
    /// The API key presented (its id), or nil for a token.
    var keyID: String?
    /// A token's expiry (Unix seconds), or nil for an API key.
    var expiresAt: Int64?
}

/// One request being answered.
struct Call: Sendable {
    let request: HTTPRequest
    let params: [String: String]
    let responder: HTTPResponder
    let started: ContinuousClock.Instant
    var principal: Principal?

    func param(_ name: String) -> String { params[name] ?? "" }

    var elapsed: Double { (ContinuousClock.now - started).seconds }

    /// `{"result": <result>, "status": "ok", "time": t}`.
    func ok(status: Int = 200, _ result: (inout JSONWriter) -> Void) {
        var writer = JSONWriter(reservingCapacity: 256)
        writer.beginObject()
        writer.key("result")
        result(&writer)
        writer.member("status", .string("ok"))
        writer.member("time", .double(elapsed))
        writer.endObject()
        responder.respond(.json(status: status, body: writer.bytes))
    }

    func ok(_ value: JSONValue) { ok { $0.value(value) } }

    func fail(_ status: Int, _ message: String, headers: [(String, String)] = []) {
        var writer = JSONWriter(reservingCapacity: 128)
        writer.beginObject()
        writer.key("status")
        writer.beginObject()
        writer.member("error", .string(message))
        writer.endObject()
        writer.member("time", .double(elapsed))
        writer.endObject()
        var response = HTTPResponse.json(status: status, body: writer.bytes)
        response.headers.append(contentsOf: headers)
        responder.respond(response)
    }

    func fail(_ error: APIError) { fail(error.status, error.message, headers: error.headers) }
}

/// A failure with its HTTP status.
struct APIError: Error, Sendable {
    var status: Int
    var message: String
    var headers: [(String, String)] = []

    static func badRequest(_ message: String) -> APIError { APIError(status: 400, message: message) }
    static func notFound(_ message: String) -> APIError { APIError(status: 404, message: message) }
    static func unauthorized(_ message: String) -> APIError { APIError(status: 401, message: message) }
    static func conflict(_ message: String) -> APIError { APIError(status: 409, message: message) }
    static func unavailable(_ message: String) -> APIError { APIError(status: 503, message: message) }
    static func internalError(_ message: String) -> APIError { APIError(status: 500, message: message) }

    init(status: Int, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    init(_ error: ServerError) {
        switch error {
        case let .notFound(text): self.init(status: 404, message: text)
        case let .invalid(text): self.init(status: 400, message: text)
        case let .conflict(text): self.init(status: 409, message: text)
        case let .unavailable(text): self.init(status: 503, message: text)
        case let .startup(text), let .internalError(text): self.init(status: 500, message: text)
        }
    }
}

public final class Gateway: @unchecked Sendable {
    typealias Handler = @Sendable (Gateway, Call) -> Void
    struct Route: Sendable {
        var authenticated: Bool
        /// Hashes a password: limited per client address (guessing, and argon2id's cost).
        var hashesPassword = false
        var handler: Handler
    }

    let node: Node
    let logger: Logger
    let limiter: RateLimiter
    let passwordLimiter: RateLimiter
    let hasher: PasswordHasher
    let workers = DispatchQueue(label: "vectron.gateway.workers", attributes: .concurrent)
    let hashingPool = HashingPool()
    private var router = HTTPRouter<Route>()
    private var server: HTTPServer?
    let clockStart = ContinuousClock.now
    let metrics = Metrics()
    /// The binary protocol's server (BinaryAPI.swift), once started.
    let binaryServer = Mutex<RPCServer?>(nil)

    public init(node: Node, logger: Logger) {
        self.node = node
        self.logger = logger
        limiter = RateLimiter(rate: node.configuration.rateLimitPerSecond, burst: node.configuration.rateLimitBurst)
        passwordLimiter = RateLimiter(rate: node.configuration.passwordAttemptsPerSecond, burst: node.configuration.passwordAttemptsBurst)
        hasher = PasswordHasher(parameters: node.configuration.passwordHashing)
        registerRoutes()
    }

    /// Starts the HTTP server; returns the bound port.
    public func start() throws(ServerError) -> Int {
        var configuration = HTTPServerConfiguration()
        configuration.host = node.configuration.httpHost
        configuration.port = node.configuration.httpPort
        configuration.maxBodyBytes = node.configuration.maxBodyBytes
        configuration.eventLoopThreads = node.configuration.eventLoopThreads
        let server = HTTPServer(configuration: configuration) { [self] request, responder in handle(request, responder) }
        do throws(HTTPServerError) {
            let port = try server.start()
            self.server = server
            return port
        } catch {
            throw .startup("cannot serve HTTP on \(node.configuration.httpHost):\(node.configuration.httpPort): \(error)")
        }
    }

    /// Stops serving: REST first, then the binary protocol (running requests answer).
    public func stop() {
        server?.shutdown()
        stopBinary()
    }

    /// Serving starts: recovery ended and the administrator exists.
    public func markReady() { readyLock.withLock { ready = true } }
    private let readyLock = ConditionLock()
    private var ready = false
    var isReady: Bool { readyLock.withLock { ready } }

    private func add(_ method: HTTPMethod, _ pattern: String, authenticated: Bool = true, hashesPassword: Bool = false,
                     _ handler: @escaping Handler) {
        router.add(method, pattern, Route(authenticated: authenticated, hashesPassword: hashesPassword, handler: handler))
    }

    private func registerRoutes() {
        add(.get, "/", authenticated: false) { _, call in
            call.responder.respond(.json(status: 200, body: #"{"title":"vectron - a vector database","version":"0.1.0"}"#))
        }
        add(.get, "/healthz", authenticated: false) { _, call in call.ok(.string("ok")) }
        add(.get, "/readyz", authenticated: false) { gateway, call in
            if gateway.isReady { call.ok(.string("ready")) } else { call.fail(503, "recovering") }
        }
        add(.get, "/metrics", authenticated: false) { gateway, call in gateway.serveMetrics(call) }
        add(.post, "/auth/register", authenticated: false, hashesPassword: true) { gateway, call in gateway.register(call) }
        add(.post, "/auth/login", authenticated: false, hashesPassword: true) { gateway, call in gateway.login(call) }
        add(.post, "/auth/keys") { gateway, call in gateway.createKey(call) }
        add(.get, "/auth/keys") { gateway, call in gateway.listKeys(call) }
        add(.delete, "/auth/keys/{id}") { gateway, call in gateway.deleteKey(call) }
        add(.get, "/collections") { gateway, call in gateway.listCollections(call) }
        add(.put, "/collections/{name}") { gateway, call in gateway.createCollection(call) }
        add(.get, "/collections/{name}") { gateway, call in gateway.getCollection(call) }
        add(.delete, "/collections/{name}") { gateway, call in gateway.deleteCollection(call) }
        add(.get, "/collections/{name}/exists") { gateway, call in gateway.collectionExists(call) }
        add(.put, "/collections/{name}/points") { gateway, call in gateway.upsert(call) }
        add(.post, "/collections/{name}/points") { gateway, call in gateway.retrieve(call) }
        add(.get, "/collections/{name}/points/{id}") { gateway, call in gateway.retrieveOne(call) }
        add(.post, "/collections/{name}/points/delete") { gateway, call in gateway.deletePoints(call) }
        add(.post, "/collections/{name}/points/payload") { gateway, call in gateway.changePayload(call, kind: .set) }
        add(.put, "/collections/{name}/points/payload") { gateway, call in gateway.changePayload(call, kind: .overwrite) }
        add(.post, "/collections/{name}/points/payload/delete") { gateway, call in gateway.changePayload(call, kind: .deleteKeys) }
        add(.post, "/collections/{name}/points/payload/clear") { gateway, call in gateway.changePayload(call, kind: .clear) }
        add(.post, "/collections/{name}/points/search") { gateway, call in gateway.search(call, query: false) }
        add(.post, "/collections/{name}/points/query") { gateway, call in gateway.search(call, query: true) }
        add(.post, "/collections/{name}/points/scroll") { gateway, call in gateway.scroll(call) }
        add(.post, "/collections/{name}/points/count") { gateway, call in gateway.count(call) }
    }

    private func handle(_ request: HTTPRequest, _ responder: HTTPResponder) {
        let started = ContinuousClock.now
        let route: Route, params: [String: String], pattern: String
        switch router.match(request) {
        case .found(let found, let foundParams):
            route = found
            params = foundParams
            pattern = Self.pattern(of: request, params: foundParams)
        case .notFound:
            Call(request: request, params: [:], responder: responder, started: started).fail(404, "no such endpoint: \(request.path)")
            return
        case .methodNotAllowed(let allowed):
            Call(request: request, params: [:], responder: responder, started: started)
                .fail(405, "method \(request.method) is not allowed here", headers: [("Allow", allowed.map(\.description).joined(separator: ", "))])
            return
        }
        let metrics = self.metrics
        let timed = HTTPResponder { response in
            metrics.record(endpoint: "\(request.method) \(pattern)", status: response.status, seconds: (ContinuousClock.now - started).seconds)
            responder.respond(response)
        }
        var call = Call(request: request, params: params, responder: timed, started: started)
        if !isReady && route.authenticated {
            call.fail(503, "the node is still recovering")
            return
        }
        if route.hashesPassword {
            // The client's address without its port ("[v6]:port" or "v4:port").
            let address = request.remoteAddress.map { text in String(text[..<(text.lastIndex(of: ":") ?? text.endIndex)]) } ?? "unknown"
            if case .limited(let retryAfter) = passwordLimiter.take(key: address, now: (ContinuousClock.now - clockStart).seconds) {
                call.fail(429, "too many login or registration attempts; retry after \(retryAfter) s", headers: [("Retry-After", "\(retryAfter)")])
                return
            }
        }
        if route.authenticated {
            do throws(APIError) {
                let principal = try authenticate(request)
                if case .limited(let retryAfter) = limiter.take(key: principal.bucket, now: (ContinuousClock.now - clockStart).seconds) {
                    throw APIError(status: 429, message: "rate limit exceeded; retry after \(retryAfter) s", headers: [("Retry-After", "\(retryAfter)")])
                }
                call.principal = principal
            } catch {
                call.fail(error)
                return
            }
        }
        route.handler(self, call)
    }

    /// The route's pattern for metrics (ids and names replaced by their parameter names).
    static func pattern(of request: HTTPRequest, params: [String: String]) -> String {
        var segments = request.pathSegments
        for (index, segment) in segments.enumerated() {
            for (name, value) in params where value == segment { segments[index] = "{\(name)}" }
        }
        return "/" + segments.joined(separator: "/")
    }

    // MARK: Authentication

    func authenticate(_ request: HTTPRequest) throws(APIError) -> Principal {
        var presented = request.header("api-key")
        if presented == nil, let authorization = request.header("authorization") {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw .unauthorized("the Authorization header must be `Bearer <token or API key>`")
            }
            presented = String(parts[1]).trimmingSpaces()
        }
        guard let credential = presented, !credential.isEmpty else {
            throw .unauthorized("missing credentials: send an `api-key` header or `Authorization: Bearer …`")
        }
        return try authenticate(credential: credential)
    }

    /// Who presents `credential`: a login token (JWT) or an API key.
    func authenticate(credential: String) throws(APIError) -> Principal {
        let catalog = node.catalog
        if credential.split(separator: ".", omittingEmptySubsequences: false).count == 3 {
            let claims: JSONObject
            do throws(AuthError) {
                claims = try JWT.verify(credential, secret: catalog.secret, now: Self.unixNow())
            } catch {
                throw .unauthorized("invalid token: \(error)")
            }
            guard case .string(let subject)? = claims["sub"], let id = UInt64(subject), let user = catalog.users[id] else {
                throw .unauthorized("invalid token: unknown subject")
            }
            return Principal(userID: user.id, isAdmin: user.isAdmin, bucket: "user:\(user.id)", expiresAt: claims["exp"]?.int64Value)
        }
        // A generated key names its record (`vk_<id>_…`); anything else can only be the
        // administrator's key from VECTRON_ADMIN_KEY.
        let key: APIKeyInfo?
        if let parsed = APIKey.parse(credential) { key = catalog.keys[parsed.id] } else { key = catalog.keys[Self.adminKeyID] }
        guard let key, Secrets.constantTimeEqual(APIKey.hash(credential), key.hash), let user = catalog.users[key.owner] else {
            throw .unauthorized("invalid API key")
        }
        return Principal(userID: user.id, isAdmin: user.isAdmin, bucket: "key:\(key.id)", keyID: key.id)
    }

    static let adminKeyID = "admin"
    static let adminEmail = "admin"

    static func unixNow() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }

    /// Creates the administrator at first start and installs its API key: the one in
    /// `VECTRON_ADMIN_KEY`, or a generated one printed once (returned).
    public func bootstrapAdministrator() throws(ServerError) -> String? {
        var catalog = node.catalog
        if catalog.user(email: Self.adminEmail) == nil {
            // No password: "!" is no argon2id hash, so the administrator cannot log in with one.
            _ = try node.proposeCatalogAndWait(.createUser(email: Self.adminEmail, passwordHash: "!", isAdmin: true, createdAt: Self.unixNow()))
            catalog = node.catalog
        }
        guard let admin = catalog.user(email: Self.adminEmail) else { throw .startup("the administrator was not created") }
        if let configured = node.configuration.adminKey {
            let hash = APIKey.hash(configured)
            if let existing = catalog.keys[Self.adminKeyID], Secrets.constantTimeEqual(existing.hash, hash) { return nil }
            if catalog.keys[Self.adminKeyID] != nil { _ = try node.proposeCatalogAndWait(.deleteKey(id: Self.adminKeyID)) }
            _ = try node.proposeCatalogAndWait(.createKey(id: Self.adminKeyID, owner: admin.id, hash: hash, name: "VECTRON_ADMIN_KEY", createdAt: Self.unixNow()))
            return nil
        }
        if catalog.keys.values.contains(where: { $0.owner == admin.id }) { return nil }
        let generated = APIKey.generate()
        _ = try node.proposeCatalogAndWait(.createKey(id: generated.id, owner: admin.id, hash: APIKey.hash(generated.secret),
                                                      name: "bootstrap", createdAt: Self.unixNow()))
        return generated.secret
    }

    // MARK: Helpers

    /// The request body as JSON (an empty body is an empty object).
    func body(_ call: Call, floatKeys: Set<String> = []) throws(APIError) -> JSONValue {
        if call.request.body.isEmpty { return .object(JSONObject()) }
        var options = JSONParser.Options()
        options.bytesMax = node.configuration.maxBodyBytes
        if !floatKeys.isEmpty { options.floatArrays = .underKeys(floatKeys) }
        let value: JSONValue
        do throws(JSONError) { value = try JSONParser.parse(call.request.body, options: options) } catch {
            guard !floatKeys.isEmpty else { throw .badRequest("malformed JSON: \(error)") }
            // The float32 fast path refuses any number outside float32 under a vector-named key —
            // payload members named `vector` or `query` included — so a valid body (a payload
            // holding {"query": [1e50]}) was answered "malformed JSON". Parse such a body
            // generally; vectors then arrive as general arrays and are checked as numbers.
            options.floatArrays = .never
            do throws(JSONError) { value = try JSONParser.parse(call.request.body, options: options) } catch {
                throw .badRequest("malformed JSON: \(error)")
            }
        }
        guard case .object = value else { throw .badRequest("the request body must be a JSON object") }
        return value
    }

    /// The caller's collection named in the path (404 for a missing one and for another user's).
    func collection(_ call: Call) throws(APIError) -> CollectionInfo {
        try collection(named: call.param("name"), for: call.principal)
    }

    /// Runs `body` on a worker thread, answering its error.
    func offload(_ call: Call, _ body: @escaping @Sendable () throws(APIError) -> Void) {
        workers.async {
            do throws(APIError) { try body() } catch { call.fail(error) }
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension String {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
