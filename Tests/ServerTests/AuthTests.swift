// Authentication, authorisation and secrets against the real binary: every data endpoint refuses
// missing, malformed, expired and revoked credentials; registration and login; users cannot
// reach each other's collections; the rate limit answers 429 with Retry-After; no password or
// API key is ever written in clear to the data directory or the logs.

import Foundation
import JSON
import Testing
import TestSupport

@Suite(.serialized, .ownThread)
struct AuthTests {
    /// Every authenticated endpoint, with a body that would be valid for `name`.
    static func dataEndpoints(_ name: String) -> [(String, String, String?)] {
        [
            ("GET", "/collections", nil),
            ("PUT", "/collections/\(name)x", #"{"vectors": {"size": 2, "distance": "Dot"}}"#),
            ("GET", "/collections/\(name)", nil),
            ("DELETE", "/collections/\(name)", nil),
            ("GET", "/collections/\(name)/exists", nil),
            ("PUT", "/collections/\(name)/points", #"{"points": [{"id": 5, "vector": [1, 2]}]}"#),
            ("POST", "/collections/\(name)/points", #"{"ids": [1]}"#),
            ("GET", "/collections/\(name)/points/1", nil),
            ("POST", "/collections/\(name)/points/delete", #"{"points": [1]}"#),
            ("POST", "/collections/\(name)/points/payload", #"{"payload": {"x": 1}, "points": [1]}"#),
            ("PUT", "/collections/\(name)/points/payload", #"{"payload": {"x": 1}, "points": [1]}"#),
            ("POST", "/collections/\(name)/points/payload/delete", #"{"keys": ["x"], "points": [1]}"#),
            ("POST", "/collections/\(name)/points/payload/clear", #"{"points": [1]}"#),
            ("POST", "/collections/\(name)/points/search", #"{"vector": [1, 0]}"#),
            ("POST", "/collections/\(name)/points/query", #"{"query": [1, 0]}"#),
            ("POST", "/collections/\(name)/points/scroll", "{}"),
            ("POST", "/collections/\(name)/points/count", "{}"),
            ("POST", "/auth/keys", "{}"),
            ("GET", "/auth/keys", nil),
            ("DELETE", "/auth/keys/abc", nil),
        ]
    }

    @Test func authenticationAndIsolation() throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let adminKey = try #require(server.adminKey)
        let admin = API(port: server.port, credential: adminKey)
        let open = API(port: server.port, credential: nil)
        var passwords: [String] = []
        var apiKeys: [(key: String, id: String)] = []

        // Registration: policy violations 400, duplicates 409.
        try open.fails(400, "POST", "/auth/register", #"{"email": "a@example.com", "password": "short1"}"#)
        try open.fails(400, "POST", "/auth/register", #"{"email": "a@example.com", "password": "onlyletterslong"}"#)
        try open.fails(400, "POST", "/auth/register", #"{"email": "a@example.com", "password": "a@example.com"}"#)
        try open.fails(400, "POST", "/auth/register", #"{"email": "not-an-email", "password": "good-password-1"}"#)
        try open.fails(400, "POST", "/auth/register", #"{"email": "a@example.com"}"#)
        try open.fails(400, "POST", "/auth/register", #"{"email": "a@example.com", "password": 12345678901}"#)
        let passwordA = "alpha-secret-Pw1", passwordB = "bravo-secret-Pw2"
        passwords += [passwordA, passwordB, "short1", "onlyletterslong", "good-password-1", "wrong-password-9"]
        try open.ok("POST", "/auth/register", #"{"email": "a@example.com", "password": "\#(passwordA)"}"#)
        try open.ok("POST", "/auth/register", #"{"email": "b@example.com", "password": "\#(passwordB)"}"#)
        try open.fails(409, "POST", "/auth/register", #"{"email": "a@example.com", "password": "\#(passwordA)"}"#)
        try open.fails(409, "POST", "/auth/register", #"{"email": "A@Example.com", "password": "\#(passwordA)"}"#)

        // Login: wrong password or unknown user 401; a token otherwise.
        try open.fails(401, "POST", "/auth/login", #"{"email": "a@example.com", "password": "wrong-password-9"}"#)
        try open.fails(401, "POST", "/auth/login", #"{"email": "nobody@example.com", "password": "\#(passwordA)"}"#)
        try open.fails(400, "POST", "/auth/login", #"{"email": "a@example.com"}"#)
        let tokenA = try #require(try open.ok("POST", "/auth/login", #"{"email": "a@example.com", "password": "\#(passwordA)"}"#)["token"]?.stringValue)
        let tokenB = try #require(try open.ok("POST", "/auth/login", #"{"email": "b@example.com", "password": "\#(passwordB)"}"#)["token"]?.stringValue)
        let userA = API(port: server.port, credential: tokenA, asBearer: true)
        let userB = API(port: server.port, credential: tokenB, asBearer: true)
        try userA.ok("PUT", "/collections/secret", #"{"vectors": {"size": 2, "distance": "Dot"}}"#)
        try userA.ok("PUT", "/collections/secret/points", #"{"points": [{"id": 1, "vector": [1, 2], "payload": {"owner": "a"}}]}"#)

        // Missing and malformed credentials: 401 with a JSON error on every data endpoint.
        let badHeaders: [[(String, String)]] = [
            [],
            [("Authorization", "Basic YTpi")],
            [("Authorization", "Bearer garbage")],
            [("Authorization", "Bearer")],
            [("Authorization", "Bearer a.b.c")],
            [("Authorization", "Bearer " + String(tokenA.dropLast(3)) + "AAA")],
            [("api-key", "vk_" + String(repeating: "A", count: 60))],
            [("api-key", String(adminKey.dropLast(2)) + "xx")],
            [("api-key", "")],
        ]
        for (method, path, body) in Self.dataEndpoints("secret") {
            for headers in badHeaders {
                let message = try open.fails(401, method, path, body, headers: headers)
                #expect(!message.isEmpty)
            }
        }

        // A key made with a JWT works until it is deleted.
        let created = try userA.ok("POST", "/auth/keys", #"{"name": "ci"}"#)
        let keyA = try #require(created["key"]?.stringValue)
        let keyID = try #require(created["id"]?.stringValue)
        apiKeys.append((keyA, keyID))
        let viaKey = API(port: server.port, credential: keyA)
        #expect(try viaKey.ok("GET", "/collections")["collections"]?.arrayValue?.count == 1)
        let viaBearerKey = API(port: server.port, credential: keyA, asBearer: true)
        #expect(try viaBearerKey.ok("POST", "/collections/secret/points/count", "{}")["count"]?.int64Value == 1)
        #expect(try userA.ok("GET", "/auth/keys").arrayValue?.contains { $0["id"]?.stringValue == keyID } == true)
        try userB.fails(404, "DELETE", "/auth/keys/\(keyID)")
        #expect(try userA.ok("DELETE", "/auth/keys/\(keyID)") == .bool(true))
        for (method, path, body) in Self.dataEndpoints("secret") {
            try viaKey.fails(401, method, path, body)
        }

        // User B: cannot see, search, write or delete A's collection.
        let listedByB = try userB.ok("GET", "/collections")["collections"]?.arrayValue ?? []
        #expect(listedByB.isEmpty)
        #expect(try userB.ok("GET", "/collections/secret/exists")["exists"] == .bool(false))
        for (method, path, body) in Self.dataEndpoints("secret") where path.hasPrefix("/collections/secret") && !path.hasSuffix("secretx") {
            if method == "DELETE" && path == "/collections/secret" {
                #expect(try userB.ok(method, path) == .bool(false))
            } else if path.hasSuffix("/exists") {
                continue
            } else {
                try userB.fails(404, method, path, body)
            }
        }
        let bKey = try userB.ok("POST", "/auth/keys", "{}")
        apiKeys.append((try #require(bKey["key"]?.stringValue), try #require(bKey["id"]?.stringValue)))
        let viaKeyB = API(port: server.port, credential: bKey["key"]!.stringValue!)
        try viaKeyB.fails(404, "POST", "/collections/secret/points/search", #"{"vector": [1, 0]}"#)
        // A's data is untouched; the administrator sees every collection.
        let point = try userA.ok("GET", "/collections/secret/points/1")
        #expect(point["payload"]?["owner"]?.stringValue == "a")
        #expect(point["vector"]?.floatArray == [1, 2])
        #expect(try admin.ok("GET", "/collections")["collections"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["secret"])
        let adminKeys = try admin.ok("POST", "/auth/keys", #"{"name": "second admin key"}"#)
        apiKeys.append((try #require(adminKeys["key"]?.stringValue), try #require(adminKeys["id"]?.stringValue)))
        _ = try API(port: server.port, credential: adminKeys["key"]!.stringValue!).ok("GET", "/collections")

        #expect(try server.stop() == 0)

        // Secrets: no password, API key or key secret in any data file or log. The bootstrap key
        // appears exactly once: in its stdout line at first start.
        let files = server.allFiles()
        #expect(!files.isEmpty)
        // The grep can see what the catalog stores in clear (emails), so it would see a password.
        let email = Array("b@example.com".utf8)
        #expect(files.contains { BlockingHTTPClient.find(email, in: $0.bytes) != nil }, "the catalog's emails are not visible to the grep")
        var needles: [(String, String)] = passwords.map { ("password \($0)", $0) }
        needles += [("user A's token", tokenA), ("user B's token", tokenB)]
        for (key, id) in apiKeys {
            needles.append(("API key \(id)", key))
            // `vk_<id>_<secret>`: the secret is the last 43 characters (base64url of 32 bytes).
            needles.append(("secret of API key \(id)", String(key.suffix(43))))
        }
        for (label, needle) in needles {
            let bytes = Array(needle.utf8)
            for file in files where BlockingHTTPClient.find(bytes, in: file.bytes) != nil {
                Issue.record("\(label) appears in \(file.path)")
            }
        }
        for needle in [adminKey, String(adminKey.suffix(43))] {
            var occurrences: [String] = []
            for file in files {
                let text = String(decoding: file.bytes, as: UTF8.self)
                let count = text.components(separatedBy: needle).count - 1
                if count > 0 { occurrences.append("\(file.path) ×\(count)") }
            }
            #expect(occurrences.count == 1 && occurrences[0].hasSuffix("stdout-1.log ×1"), "\(occurrences)")
        }
        let line = server.currentStdout().split(separator: "\n").filter { $0.contains(adminKey) }
        #expect(line.count == 1 && line[0].hasPrefix("Administrator API key"))
    }

    @Test func expiredTokensAndRateLimit() throws {
        let server = try ServerHarness(config: #"{"token_lifetime_seconds": -120, "rate_limit_per_second": 1, "rate_limit_burst": 5}"#)
        defer { server.tearDown() }
        try server.start()
        let open = API(port: server.port, credential: nil)
        try open.ok("POST", "/auth/register", #"{"email": "e@example.com", "password": "echo-secret-Pw3"}"#)
        let token = try #require(try open.ok("POST", "/auth/login", #"{"email": "e@example.com", "password": "echo-secret-Pw3"}"#)["token"]?.stringValue)
        let expired = API(port: server.port, credential: token, asBearer: true)
        for (method, path, body) in Self.dataEndpoints("any") {
            let message = try expired.fails(401, method, path, body)
            #expect(message.contains("expired"), "\(message)")
        }

        // 1 request/s with a burst of 5: within a few quick requests, 429 with Retry-After.
        let admin = API(port: server.port, credential: try #require(server.adminKey))
        var limited: HTTPResponseData?
        for _ in 0..<20 {
            let response = try admin.send("GET", "/collections")
            if response.status == 429 { limited = response; break }
            #expect(response.status == 200)
        }
        let response = try #require(limited)
        #expect(response.errorMessage?.contains("rate limit") == true)
        let retryAfter = response.header("Retry-After").flatMap(Int.init)
        #expect(retryAfter != nil && retryAfter! >= 1, "Retry-After: \(String(describing: response.header("Retry-After")))")
        // The limit is per credential, and unauthenticated endpoints are not limited.
        #expect(try open.ok("GET", "/healthz") == .string("ok"))
        #expect(try server.stop() == 0)
    }

    /// Login and registration hash a password each: they are limited per client address, so a
    /// guesser (or a flood of argon2id work) is turned away with 429 and Retry-After.
    @Test func passwordAttemptsAreLimitedPerAddress() throws {
        let server = try ServerHarness(config: #"{"password_attempts_per_second": 1, "password_attempts_burst": 4}"#)
        defer { server.tearDown() }
        try server.start()
        let open = API(port: server.port, credential: nil)
        try open.ok("POST", "/auth/register", #"{"email": "g@example.com", "password": "guess-secret-Pw4"}"#)
        var limited: HTTPResponseData?
        for _ in 0..<20 {
            let response = try open.send("POST", "/auth/login", #"{"email": "g@example.com", "password": "wrong-guess-Pw5"}"#)
            if response.status == 429 { limited = response; break }
            #expect(response.status == 401)
        }
        let response = try #require(limited, "twenty wrong passwords in a row were all checked")
        #expect(response.errorMessage?.contains("too many") == true)
        #expect(response.header("Retry-After").flatMap(Int.init).map { $0 >= 1 } == true)
        // Data calls with a key are not affected.
        let admin = API(port: server.port, credential: try #require(server.adminKey))
        #expect(try admin.send("GET", "/collections").status == 200)
        #expect(try server.stop() == 0)
    }

    /// A user may hold at most 100 API keys (the catalog is rewritten whole on every change).
    @Test func keysPerUserAreBounded() throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let open = API(port: server.port, credential: nil)
        try open.ok("POST", "/auth/register", #"{"email": "k@example.com", "password": "correct-horse-9"}"#)
        let token = try #require(try open.ok("POST", "/auth/login", #"{"email": "k@example.com", "password": "correct-horse-9"}"#)["token"]?.stringValue)
        let user = API(port: server.port, credential: token, asBearer: true)
        var ids: [String] = []
        for index in 0..<100 { ids.append(try #require(try user.ok("POST", "/auth/keys", #"{"name": "k\#(index)"}"#)["id"]?.stringValue)) }
        let message = try user.fails(409, "POST", "/auth/keys", "{}")
        #expect(message.contains("at most 100"), "\(message)")
        #expect(try user.ok("DELETE", "/auth/keys/\(ids[0])") == .bool(true))
        try user.ok("POST", "/auth/keys", "{}")
    }
}
