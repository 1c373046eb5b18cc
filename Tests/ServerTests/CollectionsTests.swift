// Collections and the unauthenticated endpoints (/healthz, /readyz, /metrics) against the real
// binary.

import Foundation
import JSON
import Testing
import TestSupport

@Suite(.serialized, .ownThread)
struct CollectionsTests {
    @Test func collectionsAndHealth() throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let api = API(port: server.port, credential: try #require(server.adminKey))

        // Health first (no credentials).
        let open = API(port: server.port, credential: nil)
        #expect(try open.ok("GET", "/healthz") == .string("ok"))
        #expect(try open.ok("GET", "/readyz") == .string("ready"))

        try api.ok("PUT", "/collections/two", #"{"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 2}"#)
        try api.ok("PUT", "/collections/three", #"{"vectors": {"size": 3, "distance": "Euclid"}, "shard_number": 3, "hnsw_config": {"m": 8, "ef_construct": 50}}"#)
        #expect(try api.ok("GET", "/collections/two/exists")["exists"] == .bool(true))
        #expect(try api.ok("GET", "/collections/nothing/exists")["exists"] == .bool(false))

        let two = try api.ok("GET", "/collections/two")
        #expect(two["points_count"]?.int64Value == 0)
        #expect(two["config"]?["params"]?["vectors"]?["size"]?.int64Value == 4)
        #expect(two["config"]?["params"]?["vectors"]?["distance"]?.stringValue == "Cosine")
        #expect(two["config"]?["params"]?["shard_number"]?.int64Value == 2)
        let three = try api.ok("GET", "/collections/three")
        #expect(three["config"]?["params"]?["shard_number"]?.int64Value == 3)
        #expect(three["config"]?["hnsw_config"]?["m"]?.int64Value == 8)
        #expect(three["config"]?["hnsw_config"]?["ef_construct"]?.int64Value == 50)

        let names = try api.ok("GET", "/collections")["collections"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
        #expect(names == ["three", "two"])

        // Bad names and bodies: 400 with a JSON error; duplicates 409; unknown 404.
        try api.fails(400, "PUT", "/collections/bad%20name", #"{"vectors": {"size": 4, "distance": "Cosine"}}"#)
        try api.fails(400, "PUT", "/collections/bad$name", #"{"vectors": {"size": 4, "distance": "Cosine"}}"#)
        try api.fails(400, "PUT", "/collections/" + String(repeating: "x", count: 300), #"{"vectors": {"size": 4, "distance": "Cosine"}}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": 0, "distance": "Cosine"}}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": 4, "distance": "Hamming"}}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": 4}}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": "4", "distance": "Dot"}}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 0}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 1.5}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": 4, "distance": "Dot"}, "hnsw_config": {"m": 1}}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": [4]}"#)
        try api.fails(400, "PUT", "/collections/ok", #"{"vectors": {"size": 4, "distance": "Dot"}"#)
        try api.fails(400, "PUT", "/collections/ok", "[]")
        try api.fails(409, "PUT", "/collections/two", #"{"vectors": {"size": 4, "distance": "Cosine"}}"#)
        try api.fails(404, "GET", "/collections/nothing")
        #expect(try api.ok("GET", "/collections/ok/exists")["exists"] == .bool(false))

        #expect(try api.ok("DELETE", "/collections/two") == .bool(true))
        #expect(try api.ok("DELETE", "/collections/two") == .bool(false))
        #expect(try api.ok("GET", "/collections/two/exists")["exists"] == .bool(false))
        try api.fails(404, "GET", "/collections/two")
        // A deleted name can be created again, empty.
        try api.ok("PUT", "/collections/two", #"{"vectors": {"size": 2, "distance": "Dot"}}"#)
        #expect(try api.ok("GET", "/collections/two")["points_count"]?.int64Value == 0)
        #expect(try api.ok("GET", "/collections/two")["config"]?["params"]?["vectors"]?["size"]?.int64Value == 2)

        // Unknown endpoints and methods.
        try api.fails(404, "GET", "/nothing/here")
        try api.fails(405, "PATCH", "/collections/two")

        // Metrics: Prometheus text with the request counter.
        let metrics = try open.send("GET", "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("vectron_http_requests_total"))
        #expect(metrics.text.contains("# TYPE vectron_http_requests_total counter"))
        #expect(server.isRunning)
        #expect(try server.stop() == 0)
    }
}
