// Bad input against the real binary: each malformed request is a 4xx with a JSON error naming
// the problem; then a seeded fuzz of random and mutated requests, which must all be answered
// below 500 while the server stays up and a collection the fuzz cannot reach stays intact.
//
// Why the intact check is sound: the fuzz speaks as a second, non-admin user. Its requests can
// only reach that user's own collection (the gateway answers 404 for anyone else's), so the
// administrator's collection must be byte-for-byte unchanged — if it is not, either a request
// crossed users (a bug) or the data was damaged (a bug). Mutated writes to the fuzz user's own
// collection may land; that collection is only checked to still answer.

import Basics
import Foundation
import JSON
import Testing
import TestSupport

@Suite(.serialized, .ownThread)
struct BadInputTests {
    static let fuzzRequests = 10_000
    static let fuzzRawRequests = 500

    @Test func badInputAndFuzz() throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let admin = API(port: server.port, credential: try #require(server.adminKey))
        try admin.ok("PUT", "/collections/c", #"{"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 2}"#)
        try admin.ok("PUT", "/collections/c/points", #"{"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": {"a": 1}}]}"#)

        func expectError(_ status: Int, _ method: String, _ path: String, _ body: String, mentions: String,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
            let message = try admin.fails(status, method, path, body, sourceLocation: sourceLocation)
            #expect(message.lowercased().contains(mentions.lowercased()), "error `\(message)` should mention `\(mentions)`", sourceLocation: sourceLocation)
        }
        let upsert = "/collections/c/points"
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1, "vector": [1, 0, 0, 0]}"#, mentions: "JSON")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1, "vector": [1, 0, 0]}]}"#, mentions: "dim")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1, "vector": [1e50, 0, 0, 0]}]}"#, mentions: "float32")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1}]}"#, mentions: "vector")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": -1, "vector": [1, 0, 0, 0]}]}"#, mentions: "negative")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1.5, "vector": [1, 0, 0, 0]}]}"#, mentions: "id")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": "42", "vector": [1, 0, 0, 0]}]}"#, mentions: "UUID")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": "not-a-uuid", "vector": [1, 0, 0, 0]}]}"#, mentions: "UUID")
        try expectError(400, "PUT", upsert, #"{"points": [{"vector": [1, 0, 0, 0]}]}"#, mentions: "id")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": [1]}]}"#, mentions: "payload")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": "x"}]}"#, mentions: "payload")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 1, "vector": ["a", 0, 0, 0]}]}"#, mentions: "vector")
        try expectError(400, "PUT", upsert, #"{"points": {"id": 1}}"#, mentions: "points")
        try expectError(400, "PUT", upsert, #"{"batch": {"ids": [1, 2], "vectors": [[1, 0, 0, 0]]}}"#, mentions: "batch")
        try expectError(400, "PUT", upsert, "[1, 2]", mentions: "object")
        try expectError(400, "PUT", upsert, "{}", mentions: "points")
        try expectError(404, "PUT", "/collections/missing/points", #"{"points": [{"id": 1, "vector": [1, 0, 0, 0]}]}"#, mentions: "missing")
        try expectError(404, "POST", "/collections/missing/points/search", #"{"vector": [1, 0, 0, 0]}"#, mentions: "missing")
        let search = "/collections/c/points/search"
        try expectError(400, "POST", search, #"{"vector": [1, 0, 0, 0], "filter": {"must": [{"key": "a", "match": {"nothing": 1}}]}}"#, mentions: "filter")
        try expectError(400, "POST", search, #"{"vector": [1, 0, 0, 0], "filter": {"must": 5}}"#, mentions: "filter")
        try expectError(400, "POST", search, #"{"vector": [1, 0, 0, 0], "filter": {"must": [{"key": "a", "range": {"gt": "x"}}]}}"#, mentions: "filter")
        try expectError(400, "POST", search, #"{"vector": [1, 0, 0, 0], "limit": "ten"}"#, mentions: "limit")
        try expectError(400, "POST", search, #"{"vector": [1, 0, 0, 0], "limit": -1}"#, mentions: "limit")
        try expectError(400, "POST", search, #"{"vector": [1, 0, 0, 0], "with_vector": "yes"}"#, mentions: "with_vector")
        try expectError(400, "POST", search, #"{"vector": [1, 0, 0, 0], "score_threshold": "high"}"#, mentions: "score_threshold")
        try expectError(400, "POST", search, #"{"vector": "1, 0, 0, 0"}"#, mentions: "vector")
        try expectError(400, "POST", search, #"{"limit": 3}"#, mentions: "vector")
        try expectError(400, "POST", "/collections/c/points/scroll", #"{"offset": -5}"#, mentions: "offset")
        try expectError(400, "POST", "/collections/c/points/scroll", #"{"limit": 0}"#, mentions: "limit")
        try expectError(400, "POST", "/collections/c/points", #"{"ids": "1"}"#, mentions: "ids")
        try expectError(400, "POST", "/collections/c/points/payload", #"{"payload": [1], "points": [1]}"#, mentions: "payload")
        try expectError(400, "POST", "/collections/c/points/payload/delete", #"{"keys": [1], "points": [1]}"#, mentions: "keys")
        try expectError(400, "POST", "/collections/c/points/delete", #"{}"#, mentions: "filter")
        try expectError(400, "GET", "/collections/c/points/not-an-id", "", mentions: "UUID")
        // A zero vector has no direction under Cosine, nor one whose float32 length overflows or
        // underflows: as a point (it used to stop the shard) and as a query (it used to be a 500).
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 9, "vector": [0, 0, 0, 0]}]}"#, mentions: "zero")
        try expectError(400, "PUT", upsert, #"{"batch": {"ids": [9], "vectors": [[3e38, 3e38, 0, 0]]}}"#, mentions: "zero")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 9, "vector": [1e-30, 0, 0, 0]}]}"#, mentions: "zero")
        try expectError(400, "POST", search, #"{"vector": [0, 0, 0, 0]}"#, mentions: "zero")
        try expectError(400, "POST", "/collections/c/points/query", #"{"query": [0, 0, 0, 0]}"#, mentions: "zero")
        try admin.ok("PUT", upsert, #"{"points": [{"id": 10, "vector": [1e-7, 0, 0, 0]}]}"#)
        try admin.ok("POST", "/collections/c/points/delete", #"{"points": [10]}"#)
        // Payload members named like vector keys may hold anything JSON allows: not bad input.
        let oddPayload = #"{"query": [1e50, 2], "vector": ["a", 1, null], "nearest": {"x": 1e300}, "vectors": [0.1]}"#
        try admin.ok("PUT", upsert, #"{"points": [{"id": 11, "vector": [0.5, 0, 0, 1], "payload": \#(oddPayload)}]}"#)
        let odd = try admin.ok("GET", "/collections/c/points/11")
        #expect(sameJSON(odd["payload"], try JSONParser.parse(oddPayload)), "payload: \(String(describing: odd["payload"]))")
        #expect(odd["vector"]?.floatArray == Oracle.normalised([0.5, 0, 0, 1]))
        try admin.ok("PUT", upsert, #"{"batch": {"ids": [12], "vectors": [[1, 2, 3, 4]], "payloads": [{"query": [1e50]}]}}"#)
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 13, "vector": [1e50, 0, 0, 0], "payload": {"query": [1e50]}}]}"#, mentions: "float32")
        try expectError(400, "PUT", upsert, #"{"points": [{"id": 13, "vector": [1, 0, 0], "payload": {"query": [1e50]}}]}"#, mentions: "dim")
        try admin.ok("POST", "/collections/c/points/delete", #"{"points": [11, 12]}"#)

        // Huge finite values under Dot and Euclid: distances overflow to infinity; answers stay
        // well-formed and below 500.
        for metric in ["Dot", "Euclid"] {
            try admin.ok("PUT", "/collections/huge\(metric)", #"{"vectors": {"size": 2, "distance": "\#(metric)"}}"#)
            try admin.ok("PUT", "/collections/huge\(metric)/points", #"{"points": [{"id": 1, "vector": [3e38, -3e38]}, {"id": 2, "vector": [1, 1]}, {"id": 3, "vector": [-3e38, 3e38]}]}"#)
            for exact in [true, false] {
                let response = try admin.send("POST", "/collections/huge\(metric)/points/search", #"{"vector": [-3e38, 3e38], "limit": 3, "params": {"exact": \#(exact)}}"#)
                #expect(response.status < 500 && response.json != nil, "\(metric) exact \(exact): \(response.status) \(response.text.prefix(300))")
            }
            try admin.ok("DELETE", "/collections/huge\(metric)")
        }
        // Over the body limit: refused at the head, before the body is read.
        let (status, bytes) = try BlockingHTTPClient.sendRaw(port: server.port, Array(
            "PUT /collections/c/points HTTP/1.1\r\nHost: x\r\napi-key: \(admin.credential!)\r\nContent-Length: 40000000\r\n\r\n{".utf8))
        #expect(status == 413)
        let body = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n\r\n").dropFirst().joined()
        #expect((try? JSONParser.parse(body))?["status"]?["error"]?.stringValue?.contains("exceeds") == true, "413 body: \(body)")
        // The collection still holds its one point, unchanged.
        #expect(try admin.ok("POST", "/collections/c/points/count", "{}")["count"]?.int64Value == 1)

        try fuzz(server, admin)
    }

    /// Every point of `name` with payload and vector, in scroll order, as JSON text.
    static func snapshot(_ api: API, _ name: String) throws -> [String] {
        var out: [String] = []
        var offset: JSONValue = .null
        repeat {
            let page = try api.ok("POST", "/collections/\(name)/points/scroll",
                                  #"{"limit": 64, "with_vector": true, "with_payload": true, "offset": \#(JSONText.value(offset))}"#)
            for point in page["points"]?.arrayValue ?? [] { out.append(JSONText.value(point)) }
            offset = page["next_page_offset"] ?? .null
        } while !offset.isNull
        return out
    }

    func fuzz(_ server: ServerHarness, _ admin: API) throws {
        var data = TestData(seed: 0xF022)
        // The intact collection: the administrator's.
        try admin.ok("PUT", "/collections/intact", #"{"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2}"#)
        for chunk in 0..<4 {
            let items = (0..<50).map { index in
                #"{"id": \#(chunk * 50 + index), "vector": \#(JSONText.vector(data.vector(4))), "payload": {"i": \#(index), "s": "v\#(index)"}}"#
            }
            try admin.ok("PUT", "/collections/intact/points", #"{"points": [\#(items.joined(separator: ","))]}"#)
        }
        let before = try Self.snapshot(admin, "intact")
        #expect(before.count == 200)

        // The fuzzing user and its own collection.
        let password = "fuzz-password-1"
        try API(port: server.port, credential: nil).ok("POST", "/auth/register", #"{"email": "fuzz@example.com", "password": "\#(password)"}"#)
        let token = try #require(try API(port: server.port, credential: nil).ok("POST", "/auth/login", #"{"email": "fuzz@example.com", "password": "\#(password)"}"#)["token"]?.stringValue)
        let fuzzer = API(port: server.port, credential: token, asBearer: true)
        try fuzzer.ok("PUT", "/collections/f", #"{"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 2}"#)
        try fuzzer.ok("PUT", "/collections/f/points", #"{"points": [{"id": 1, "vector": [1, 2, 3, 4], "payload": {"a": {"b": [1, 2]}, "t": "x"}}]}"#)

        let templates: [(String, String, String)] = [
            ("PUT", "/collections/f/points", #"{"points": [{"id": 7, "vector": [0.5, -1, 2, 3], "payload": {"k": "v", "n": 3, "arr": [1, 2], "o": {"x": null}}}]}"#),
            ("PUT", "/collections/f/points", #"{"batch": {"ids": [8, "b1a5e2c4-0d1f-4e57-9a5b-0f4e2d3c1b2a"], "vectors": [[1, 2, 3, 4], [4, 3, 2, 1]], "payloads": [{"a": 1}, null]}}"#),
            ("POST", "/collections/f/points", #"{"ids": [1, 7, 8], "with_payload": true, "with_vector": true}"#),
            ("POST", "/collections/f/points/search", #"{"vector": [1, 0, 0, 1], "limit": 3, "offset": 1, "filter": {"must": [{"key": "k", "match": {"value": "v"}}]}, "params": {"hnsw_ef": 16}}"#),
            ("POST", "/collections/f/points/query", #"{"query": [1, 0, 0, 1], "limit": 3, "score_threshold": 0.1, "params": {"exact": true}, "with_payload": ["k"]}"#),
            ("POST", "/collections/f/points/scroll", #"{"limit": 2, "offset": 1, "filter": {"should": [{"has_id": [1, 7]}, {"is_empty": {"key": "arr"}}], "must_not": [{"is_null": {"key": "o.x"}}]}}"#),
            ("POST", "/collections/f/points/count", #"{"filter": {"must": [{"key": "n", "range": {"gte": 1, "lt": 9}}, {"key": "k", "match": {"any": ["v", "w"]}}]}}"#),
            ("POST", "/collections/f/points/payload", #"{"payload": {"z": 1}, "key": "o", "points": [7]}"#),
            ("PUT", "/collections/f/points/payload", #"{"payload": {"z": 2}, "filter": {"must": [{"key": "z", "match": {"except": [5]}}]}}"#),
            ("POST", "/collections/f/points/payload/delete", #"{"keys": ["z", "o.x"], "points": [7, 8]}"#),
            ("POST", "/collections/f/points/payload/clear", #"{"points": [8]}"#),
            ("POST", "/collections/f/points/delete", #"{"points": [8, "b1a5e2c4-0d1f-4e57-9a5b-0f4e2d3c1b2a"]}"#),
            ("PUT", "/collections/g", #"{"vectors": {"size": 3, "distance": "Euclid"}, "shard_number": 2, "hnsw_config": {"m": 4}}"#),
            ("DELETE", "/collections/g", ""),
            ("GET", "/collections/f", ""),
            ("GET", "/collections/f/exists", ""),
            ("GET", "/collections/f/points/7", ""),
            ("GET", "/collections", ""),
            ("POST", "/auth/keys", #"{"name": "k"}"#),
            ("GET", "/auth/keys", ""),
        ]
        let replacements = ["null", "true", "\"x\"", "{}", "[]", "1e50", "-1", "18446744073709551616", "1.5", "-0", "1e-400",
                            "\"\\u0000\"", "[[[[[[[[]]]]]]]]", "\"b1a5e2c4-0d1f-4e57-9a5b-0f4e2d3c1b2a\"", "99999999999999999999999999", "3e38", "-3.4e38", "1e-40", "0"]
        let methods = ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]
        let paths = ["/collections/f/points", "/collections/f/points/search", "/collections/f/points/scroll", "/collections/f",
                     "/collections/intact/points", "/collections/intact", "/collections/f/points/%7Bid%7D", "/auth/keys/x",
                     "/collections/f/points/payload", "/collections//points", "/collections/f/points/18446744073709551615",
                     "/collections/../intact", "/collections/f/points/-1", "/", "/metrics", "/collections/f?x=1&y"]
        var failures: [String] = []
        var histogram: [Int: Int] = [:]
        var recreations = 0
        let client = fuzzer
        for round in 0..<Self.fuzzRequests {
            var (method, path, body) = templates[data.int(0..<templates.count)]
            var bytes = Array(body.utf8)
            switch data.int(0..<10) {
            case 0, 1, 2:
                // Byte flips, insertions and deletions.
                for _ in 0..<data.int(1..<5) where !bytes.isEmpty {
                    let position = data.int(0..<bytes.count)
                    switch data.int(0..<3) {
                    case 0: bytes[position] ^= UInt8(1 << data.int(0..<8))
                    case 1: bytes.insert(UInt8(data.int(0..<256)), at: position)
                    default: bytes.remove(at: position)
                    }
                }
            case 3, 4, 5:
                // Swap one scalar or container for a value of another type.
                let text = String(decoding: bytes, as: UTF8.self)
                let tokens = Self.valueRanges(text)
                if let range = tokens.isEmpty ? nil : tokens[data.int(0..<tokens.count)] {
                    var characters = Array(text.utf8)
                    characters.replaceSubrange(range, with: Array(replacements[data.int(0..<replacements.count)].utf8))
                    bytes = characters
                }
            case 6:
                // Deep nesting under a known key.
                let depth = [10, 63, 64, 65, 200, 600, 5000][data.int(0..<7)]
                let nested = String(repeating: data.int(0..<2) == 0 ? "[" : "{\"a\":", count: depth)
                bytes = Array(#"{"points": [{"id": 3, "vector": [1,2,3,4], "payload": {"deep": \#(nested)"#.utf8)
                bytes += Array(String(repeating: "]", count: depth).utf8)
                bytes += Array("}}]}".utf8)
            case 7:
                // Random method and path.
                method = methods[data.int(0..<methods.count)]
                path = paths[data.int(0..<paths.count)]
            case 8:
                // Random bytes as the body.
                bytes = (0..<data.int(0..<64)).map { _ in UInt8(data.int(0..<256)) }
            default:
                break  // the valid request itself
            }
            let response: HTTPResponseData
            do {
                response = try client.client.request(method, path, headers: client.authHeaders, body: method == "GET" && bytes.isEmpty ? nil : bytes)
            } catch {
                failures.append("round \(round): \(method) \(path) \(String(decoding: bytes.prefix(200), as: UTF8.self)): \(error)")
                client.client.close()
                if failures.count > 20 { break }
                continue
            }
            histogram[response.status, default: 0] += 1
            if response.status == 404, response.errorMessage?.contains("Collection `f`") == true {
                // A fuzzed DELETE removed the fuzz collection: bring it back so later requests
                // reach the point handlers again.
                recreations += 1
                try fuzzer.ok("PUT", "/collections/f", #"{"vectors": {"size": 4, "distance": "Cosine"}, "shard_number": 2}"#)
            }
            if response.status >= 500 {
                failures.append("round \(round): \(method) \(path) \(String(decoding: bytes.prefix(300), as: UTF8.self)) → \(response.status) \(response.text.prefix(300))")
            }
            if method != "HEAD", response.status != 200, response.json?["status"]?["error"]?.stringValue == nil {
                failures.append("round \(round): \(method) \(path) → \(response.status) without a JSON error: \(response.text.prefix(200))")
            }
        }
        // Raw malformed HTTP on fresh connections.
        let heads = ["GET / HTTP/1.1\r\n\r\n", "GARBAGE\r\n\r\n", "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
                     "POST /collections/f/points/search HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                     "POST /collections/f/points/search HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 20\r\n\r\n0123456789",
                     "POST /collections/f/points/search HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
                     "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "GET /" + String(repeating: "a", count: 20_000) + " HTTP/1.1\r\n\r\n",
                     "GET /healthz HTTP/1.1\r\nX: " + String(repeating: "b", count: 40_000) + "\r\n\r\n", "\r\n\r\n\r\n"]
        for round in 0..<Self.fuzzRawRequests {
            var bytes = Array(heads[data.int(0..<heads.count)].utf8)
            if round % 2 == 1 {
                for _ in 0..<data.int(1..<4) where !bytes.isEmpty {
                    let position = data.int(0..<bytes.count)
                    bytes[position] = UInt8(data.int(0..<256))
                }
            }
            let answer = try BlockingHTTPClient.sendRaw(port: server.port, bytes)
            if let status = answer.status, status >= 500 {
                failures.append("raw round \(round): \(String(decoding: bytes.prefix(120), as: UTF8.self).debugDescription) → \(status)")
            }
        }
        print("fuzz: statuses \(histogram.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")); collection re-created \(recreations)×")
        #expect(histogram[200, default: 0] > Self.fuzzRequests / 10, "too few requests got through: \(histogram)")
        #expect(failures.isEmpty, "fuzz failures (\(failures.count)):\n\(failures.prefix(20).joined(separator: "\n"))")
        #expect(server.isRunning)
        #expect(try API(port: server.port, credential: nil).ok("GET", "/healthz") == .string("ok"))
        let after = try Self.snapshot(admin, "intact")
        #expect(after == before, "the administrator's collection changed during the fuzz")
        // The fuzz may have deleted (and re-created) its own collection; it must still answer.
        let fuzzed = try fuzzer.send("POST", "/collections/f/points/count", "{}")
        #expect(fuzzed.status == 200 || fuzzed.status == 404)
        #expect(try server.stop() == 0)
    }

    /// Byte ranges of JSON scalars (numbers, strings, literals) in `text`, for type swaps.
    static func valueRanges(_ text: String) -> [Range<Int>] {
        let bytes = Array(text.utf8)
        var ranges: [Range<Int>] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                var end = index + 1
                while end < bytes.count && bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
                let range = index..<min(end + 1, bytes.count)
                // A string followed by ':' is a key: swapping it is a plain byte mutation, also fine.
                ranges.append(range)
                index = range.upperBound
            } else if (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "t")
                        || byte == UInt8(ascii: "f") || byte == UInt8(ascii: "n") || byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                var end = index + 1
                if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                    var depth = 1
                    while end < bytes.count && depth > 0 {
                        if bytes[end] == UInt8(ascii: "[") || bytes[end] == UInt8(ascii: "{") { depth += 1 }
                        if bytes[end] == UInt8(ascii: "]") || bytes[end] == UInt8(ascii: "}") { depth -= 1 }
                        end += 1
                    }
                    if index > 0 { ranges.append(index..<end) }
                    index += 1
                    continue
                }
                while end < bytes.count, !",]} :".utf8.contains(bytes[end]) { end += 1 }
                ranges.append(index..<end)
                index = end
            } else {
                index += 1
            }
        }
        return ranges
    }
}
