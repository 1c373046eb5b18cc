// The Swift SDK (`VectronClient`) over the binary protocol, against the real binary: every
// operation on 2- and 3-shard collections checked against a model and brute force, the REST API
// seeing the same data, typed errors, authentication (keys, tokens, revocation, expiry, other
// users), rate limits, retries across a server restart, and 2,000 mutated requests.

import Basics
import ClientProtocol
import Foundation
import JSON
import Payload
import RPC
import RPCTransport
import Testing
import TestSupport
import VectronClient

@Suite(.serialized, .ownThread)
struct ClientSDKTests {
    static let tolerance: Float = 1e-4

    func client(_ server: ServerHarness, key: String? = nil, token: String? = nil, attempts: Int = 5) throws -> VectronClient {
        var configuration = VectronClient.Configuration()
        configuration.attempts = attempts
        configuration.timeout = .seconds(30)
        if let token { return VectronClient(port: server.binaryPort, token: token, configuration: configuration) }
        return VectronClient(port: server.binaryPort, apiKey: try key ?? #require(server.adminKey), configuration: configuration)
    }

    @Test func everyOperationOnTwoAndThreeShards() async throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let sdk = try client(server)
        let rest = API(port: server.port, credential: try #require(server.adminKey))
        try await exercise(sdk, rest, name: "sdk2", shards: 2, distance: .cosine, dimension: 8, seed: 21)
        try await exercise(sdk, rest, name: "sdk3", shards: 3, distance: .euclid, dimension: 6, seed: 31)
        await sdk.close()
    }

    func exercise(_ sdk: VectronClient, _ rest: API, name: String, shards: Int, distance: Distance, dimension: Int, seed: UInt64) async throws {
        var data = TestData(seed: seed)
        let metric = distance.description
        var model = Model(metric: metric, dimension: dimension)
        try await sdk.createCollection(name, dimension: dimension, distance: distance, shards: shards)
        #expect(try await sdk.collectionExists(name))
        #expect(try await sdk.collections().contains(name))
        await #expect(throws: VectronError.alreadyExists("Collection `\(name)` already exists")) {
            try await sdk.createCollection(name, dimension: dimension, distance: distance)
        }

        // 200 integer ids and 50 UUIDs, upserted in chunks of 50.
        var ids: [PointID] = []
        var seen = Set<UInt64>()
        while ids.count < 200 {
            let number = UInt64(data.int(0..<1_000_000))
            if seen.insert(number).inserted { ids.append(.number(number)) }
        }
        for _ in 0..<50 { ids.append(.uuid(UUIDBytes(parsing: data.uuid())!)) }
        var points: [Point] = []
        for (index, id) in ids.enumerated() {
            var payload = JSONObject()
            payload.set("group", .string(["a", "b", "c"][index % 3]))
            payload.set("n", .integer(Int64(index)))
            let vector = data.vector(dimension)
            points.append(Point(id: id, vector: vector, payload: payload))
            model.points[id.description] = (model.stored(vector), payload)
        }
        var lastOperation: UInt64 = 0
        for start in stride(from: 0, to: points.count, by: 50) {
            let operation = try await sdk.upsert(name, points: Array(points[start..<min(start + 50, points.count)]))
            #expect(operation > lastOperation)
            lastOperation = operation
        }
        let info = try await sdk.collection(name)
        #expect(info.points == ids.count && info.shards == shards && info.dimension == dimension && info.distance == distance)
        // The REST API sees what the SDK wrote.
        #expect(try rest.ok("POST", "/collections/\(name)/points/count", "{}")["count"]?.int64Value == Int64(ids.count))

        // Retrieve: vectors as stored, payloads, order as asked, missing ids left out.
        let asked = Array(ids.shuffled(using: &data.random).prefix(20)) + [.number(2_000_000)]
        let records = try await sdk.retrieve(name, ids: asked, withVector: true)
        #expect(records.map(\.id) == Array(asked.dropLast()))
        for record in records {
            let expected = try #require(model.points[record.id.description])
            #expect(sameJSON(record.payload.map(JSONValue.object), .object(expected.payload)))
            let vector = try #require(record.vector)
            #expect(zip(vector, expected.vector).allSatisfy { abs($0 - $1) <= Self.tolerance })
        }
        let bare = try await sdk.retrieve(name, ids: [ids[0]], withPayload: .none)
        #expect(bare.first?.payload == nil && bare.first?.vector == nil)
        let included = try await sdk.retrieve(name, ids: [ids[0]], withPayload: .include(["n"]))
        #expect(included.first?.payload?.count == 1 && included.first?.payload?["n"] != nil)

        // Exact search against brute force, with and without a filter.
        let filterA: JSONValue = ["must": [["key": "group", "match": ["value": "a"]]]]
        for _ in 0..<5 {
            let query = data.vector(dimension)
            let hits = try await sdk.search(name, vector: query, limit: 10, withPayload: .all, exact: true)
            let expected = model.ranked(query).prefix(10)
            #expect(hits.map(\.id.description) == expected.map(\.id))
            for (hit, truth) in zip(hits, expected) { #expect(abs(Double(hit.score ?? .nan) - truth.score) < 1e-3) }
            let filtered = try await sdk.search(name, vector: query, limit: 5, filter: filterA, exact: true)
            #expect(filtered.map(\.id.description) == model.ranked(query) { $1["group"]?.stringValue == "a" }.prefix(5).map(\.id))
            let paged = try await sdk.search(name, vector: query, limit: 5, offset: 5, exact: true)
            #expect(paged.map(\.id.description) == expected.dropFirst(5).map(\.id))
            // The index finds the exact neighbours of a stored point.
            let approximate = try await sdk.search(name, vector: points[0].vector, limit: 1, ef: 64)
            #expect(approximate.first?.id == points[0].id)
        }

        // Scroll to the end, in pages of 16: every point once, in key order.
        var scrolled: [String] = []
        var from: PointID?
        repeat {
            let page = try await sdk.scroll(name, from: from, limit: 16)
            scrolled += page.points.map(\.id.description)
            from = page.next
        } while from != nil
        #expect(scrolled == model.sortedIDs)
        #expect(try await sdk.count(name, filter: filterA) == model.points.values.filter { $0.payload["group"]?.stringValue == "a" }.count)

        // Payload changes by ids and by filter, read back.
        let target = Array(ids.prefix(3))
        var extra = JSONObject()
        extra.set("color", .string("red"))
        try await sdk.setPayload(name, extra, points: .ids(target))
        for record in try await sdk.retrieve(name, ids: target) {
            #expect(record.payload?["color"] == .string("red") && record.payload?["group"] != nil)
        }
        try await sdk.deletePayloadKeys(name, ["color"], points: .ids(target))
        #expect(try await sdk.retrieve(name, ids: target).allSatisfy { $0.payload?["color"] == nil })
        try await sdk.overwritePayload(name, extra, points: .ids(target))
        #expect(try await sdk.retrieve(name, ids: target).allSatisfy { $0.payload.map(JSONValue.object) == .object(extra) })
        try await sdk.clearPayload(name, points: .ids(target))
        #expect(try await sdk.retrieve(name, ids: target).allSatisfy { $0.payload?.count == 0 })
        for id in target { model.points[id.description]!.payload = JSONObject() }
        let filterB: JSONValue = try JSONParser.parse(Array(#"{"must": [{"key": "group", "match": {"value": "b"}}]}"#.utf8))
        try await sdk.setPayload(name, extra, points: .filter(filterB))
        let colored = try JSONParser.parse(Array(#"{"must": [{"key": "color", "match": {"value": "red"}}]}"#.utf8))
        let groupB = model.points.filter { $0.value.payload["group"]?.stringValue == "b" }
        #expect(try await sdk.count(name, filter: colored) == groupB.count)

        // Deletes by ids and by filter.
        try await sdk.delete(name, ids: Array(ids.suffix(10)))
        #expect(try await sdk.count(name) == ids.count - 10)
        try await sdk.delete(name, filter: filterB)
        let left = ids.dropLast(10).filter { model.points[$0.description]!.payload["group"]?.stringValue != "b" }
        #expect(try await sdk.count(name) == left.count)
        #expect(try rest.ok("POST", "/collections/\(name)/points/count", "{}")["count"]?.int64Value == Int64(left.count))

        #expect(try await sdk.deleteCollection(name))
        #expect(try await !sdk.deleteCollection(name))
        #expect(try await !sdk.collectionExists(name))
        await #expect(throws: VectronError.self) { try await sdk.collection(name) }
    }

    @Test func typedErrorsAndAuthentication() async throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let admin = try client(server, attempts: 1)
        try await admin.createCollection("mine", dimension: 3, distance: .cosine, shards: 2)

        func code(_ body: () async throws -> Void) async -> VectronError? {
            do {
                try await body()
                return nil
            } catch {
                return error as? VectronError
            }
        }
        func isInvalid(_ error: VectronError?) -> Bool { if case .invalidArgument? = error { return true } else { return false } }
        func isNotFound(_ error: VectronError?) -> Bool { if case .notFound? = error { return true } else { return false } }
        func isUnauthenticated(_ error: VectronError?) -> Bool { if case .unauthenticated? = error { return true } else { return false } }

        #expect(isInvalid(await code { try await admin.upsert("mine", points: [Point(id: 1, vector: [1, 2])]) }))
        #expect(isInvalid(await code { try await admin.upsert("mine", points: [Point(id: 1, vector: [1, .nan, 2])]) }))
        #expect(isInvalid(await code { try await admin.upsert("mine", points: [Point(id: 1, vector: [0, 0, 0])]) }))
        #expect(isInvalid(await code { _ = try await admin.search("mine", vector: [1, .infinity, 0]) }))
        #expect(isInvalid(await code { _ = try await admin.search("mine", vector: [1, 0, 0], limit: 10_001) }))
        #expect(isInvalid(await code { _ = try await admin.search("mine", vector: [1, 0, 0], filter: try! JSONParser.parse(Array(#"{"must": 1}"#.utf8))) }))
        #expect(isInvalid(await code { try await admin.createCollection("bad name/", dimension: 3, distance: .dot) }))
        #expect(isInvalid(await code { try await admin.createCollection("huge", dimension: 70_000, distance: .dot) }))
        #expect(isInvalid(await code { try await admin.deletePayloadKeys("mine", ["a..b"], points: .ids([.number(1)])) }))
        #expect(isNotFound(await code { try await admin.upsert("nope", points: [Point(id: 1, vector: [1, 2, 3])]) }))
        #expect(isNotFound(await code { _ = try await admin.count("nope") }))
        try await admin.upsert("mine", points: [Point(id: 7, vector: [1, 2, 3], payload: ["lang": "en", "n": 1, "tags": ["x"]])])
        #expect(try await admin.retrieve("mine", ids: [.number(7)]).first?.payload == ["lang": "en", "n": 1, "tags": ["x"]])
        #expect(try await admin.count("mine") == 1)

        // A wrong key is refused in the handshake.
        let stranger = try client(server, key: "vk_000000000000_" + String(repeating: "A", count: 43), attempts: 1)
        #expect(isUnauthenticated(await code { _ = try await stranger.collections() }))
        await stranger.close()

        // Another user: a token works; the admin's collection does not exist for them.
        let rest = API(port: server.port, credential: nil)
        try rest.ok("POST", "/auth/register", #"{"email": "c@example.com", "password": "correct-horse-9"}"#)
        let token = try #require(try rest.ok("POST", "/auth/login", #"{"email": "c@example.com", "password": "correct-horse-9"}"#)["token"]?.stringValue)
        let user = try client(server, token: token, attempts: 1)
        #expect(try await user.collections().isEmpty)
        #expect(isNotFound(await code { _ = try await user.count("mine") }))
        #expect(isNotFound(await code { try await user.upsert("mine", points: [Point(id: 1, vector: [1, 2, 3])]) }))
        #expect(try await !user.deleteCollection("mine"))
        try await user.createCollection("theirs", dimension: 2, distance: .dot)
        #expect(try await user.collections() == ["theirs"])
        #expect(try await admin.count("mine") == 1)

        // A key revoked over REST stops working on the open connection.
        let bearer = API(port: server.port, credential: token, asBearer: true)
        let created = try bearer.ok("POST", "/auth/keys", #"{"name": "sdk"}"#)
        let key = try #require(created["key"]?.stringValue)
        let keyID = try #require(created["id"]?.stringValue)
        let viaKey = try client(server, key: key, attempts: 1)
        #expect(try await viaKey.collections() == ["theirs"])
        try bearer.ok("DELETE", "/auth/keys/\(keyID)")
        #expect(isUnauthenticated(await code { _ = try await viaKey.collections() }))
        // Neither key appears in the server's output.
        #expect(!server.currentStdout().contains(key) && !server.currentStderr().contains(key))
        for sdk in [admin, user, viaKey] { await sdk.close() }
    }

    @Test func expiredTokensAndRateLimits() async throws {
        let server = try ServerHarness(config: #"{"token_lifetime_seconds": -120, "rate_limit_per_second": 1, "rate_limit_burst": 5}"#)
        defer { server.tearDown() }
        try server.start()
        let rest = API(port: server.port, credential: nil)
        try rest.ok("POST", "/auth/register", #"{"email": "d@example.com", "password": "correct-horse-9"}"#)
        let token = try #require(try rest.ok("POST", "/auth/login", #"{"email": "d@example.com", "password": "correct-horse-9"}"#)["token"]?.stringValue)
        let expired = try client(server, token: token, attempts: 1)
        do {
            _ = try await expired.collections()
            Issue.record("an expired token was accepted")
        } catch {
            guard case .unauthenticated(let message) = error else { throw error }
            #expect(message.contains("expired"), "\(message)")
        }
        await expired.close()

        // A burst of 5, then refusals with a retry hint; an idempotent call retried is let through.
        let once = try client(server, attempts: 1)
        var refused = 0
        for _ in 0..<8 {
            do { _ = try await once.collections() } catch {
                guard case .resourceExhausted(let message) = error else { throw error }
                #expect(message.contains("retry after"))
                refused += 1
            }
        }
        #expect(refused >= 2)
        var patient = VectronClient.Configuration()
        patient.attempts = 20
        patient.backoffInitial = .milliseconds(200)
        let retrying = VectronClient(port: server.binaryPort, apiKey: try #require(server.adminKey), configuration: patient)
        _ = try await retrying.collections()
        for sdk in [once, retrying] { await sdk.close() }
    }

    @Test func idempotentCallsRetryAcrossARestart() async throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let key = try #require(server.adminKey)
        var configuration = VectronClient.Configuration()
        configuration.attempts = 200
        configuration.backoffMax = .milliseconds(250)
        let sdk = VectronClient(port: server.binaryPort, apiKey: key, configuration: configuration)
        try await sdk.createCollection("r", dimension: 2, distance: .dot, shards: 2)
        try await sdk.upsert("r", points: [Point(id: 1, vector: [1, 2])])

        try server.crash()
        // Not idempotent: fails at once while the server is down.
        await #expect(throws: VectronError.self) { try await sdk.createCollection("s", dimension: 2, distance: .dot) }
        // Idempotent: retried until the server is back on the same ports (≈ 50 s of attempts).
        let pending = Task { try await sdk.upsert("r", points: [Point(id: 2, vector: [3, 4])]) }
        server.httpPort = server.port
        server.rpcPort = server.binaryPort
        try server.start()
        _ = try await pending.value
        #expect(try await sdk.count("r") == 2)
        await sdk.close()
    }

    /// Valid requests of every method, then 2,000 mutations of them sent raw: each is answered
    /// (an error or a result, never a dropped connection or an internal error), the server stays
    /// up, and the collection is intact.
    @Test func mutatedRequestsAreRefusedCleanly() async throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let key = try #require(server.adminKey)
        let sdk = try client(server)
        try await sdk.createCollection("keep", dimension: 4, distance: .cosine, shards: 2)
        try await sdk.upsert("keep", points: (1...20).map { Point(id: UInt64($0), vector: [Float($0), 1, 2, 3]) })

        let filter = Array(#"{"must": [{"key": "a", "match": {"value": 1}}]}"#.utf8)
        let samples: [(UInt32, [UInt8])] = [
            (ClientMethods.createCollection.id, CollectionSpec(name: "other", dimension: 4, distance: .dot).encoded()),
            (ClientMethods.getCollection.id, CollectionName("keep").encoded()),
            (ClientMethods.upsert.id, UpsertRequest(collection: "keep", points: [PointWrite(id: .number(99), vector: [1, 2, 3, 4], payload: Array(#"{"a": 1}"#.utf8))]).encoded()),
            (ClientMethods.retrieve.id, RetrieveRequest(collection: "keep", ids: [.number(1)], withPayload: .include(["a"]), withVector: true).encoded()),
            (ClientMethods.deletePoints.id, DeletePointsRequest(collection: "other", selector: .filter(filter)).encoded()),
            (ClientMethods.changePayload.id, PayloadChangeRequest(collection: "other", selector: .ids([.number(1)]), change: .set(payload: Array(#"{"b": 2}"#.utf8), path: "x.y")).encoded()),
            (ClientMethods.search.id, SearchRequest(collection: "keep", vector: [1, 0, 0, 0], limit: 3, filter: filter, withPayload: .all, scoreThreshold: 0.1, ef: 32).encoded()),
            (ClientMethods.scroll.id, ScrollRequest(collection: "keep", from: .number(3), limit: 4, filter: filter).encoded()),
            (ClientMethods.count.id, CountRequest(collection: "keep", filter: filter).encoded()),
        ]
        let rpc = RPCClient(host: "127.0.0.1", port: server.binaryPort, configuration: RPCClientConfiguration(
            handshake: Handshake(clusterID: ClientMethods.clusterID, role: .client, credential: .apiKey(Array(key.utf8)))))
        var random = SeededRandom(seed: 77)
        var answered = 0
        for round in 0..<2000 {
            let (methodID, valid) = samples[round % samples.count]
            var bytes = valid
            switch random.next() % 4 {
            case 0: if !bytes.isEmpty { bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(1 << (random.next() % 8)) }
            case 1: bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count + 1))))
            case 2: bytes += (0..<Int(random.next() % 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            default:
                for _ in 0..<3 where !bytes.isEmpty { bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next()) }
            }
            let method = RPCMethod<RawPayload, RawPayload>(id: methodID, name: "mutated")
            do throws(RPCError) {
                _ = try await rpc.call(method, RawPayload(bytes), options: CallOptions(timeout: .seconds(30)))
                answered += 1
            } catch {
                #expect(error.code != .internal && error.code != .unavailable && error.code != .deadlineExceeded, "round \(round): \(error)")
                answered += 1
            }
        }
        #expect(answered == 2000)
        await rpc.shutdown()
        #expect(try await sdk.count("keep") >= 20)
        let first = try await sdk.retrieve("keep", ids: [.number(5)], withVector: true)
        #expect(first.count == 1)
        await sdk.close()
    }
}
