// Helpers shared by the end-to-end suites: a client bound to one credential, JSON building and
// reading, vectors written so that float32 round-trips exactly, and the brute-force oracle.

import Basics
import Foundation
import JSON
import Testing

/// A client speaking as one credential (an API key or a JWT, sent as `api-key` or Bearer).
final class API {
    let client: BlockingHTTPClient
    var credential: String?
    var asBearer: Bool

    init(port: Int, credential: String?, asBearer: Bool = false) {
        client = BlockingHTTPClient(port: port)
        self.credential = credential
        self.asBearer = asBearer
    }

    var authHeaders: [(String, String)] {
        guard let credential else { return [] }
        return asBearer ? [("Authorization", "Bearer \(credential)")] : [("api-key", credential)]
    }

    func send(_ method: String, _ path: String, _ json: String? = nil, headers: [(String, String)]? = nil) throws -> HTTPResponseData {
        try client.request(method, path, headers: headers ?? authHeaders, body: json.map { Array($0.utf8) })
    }

    /// Expects a 200 with an ok envelope and returns its `result`.
    @discardableResult
    func ok(_ method: String, _ path: String, _ json: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
        let response = try send(method, path, json)
        guard response.status == 200, let envelope = response.json, envelope["status"]?.stringValue == "ok", let result = envelope["result"] else {
            throw HarnessError(description: "\(method) \(path) \(json.map { String($0.prefix(300)) } ?? "") → \(response.status) \(response.text.prefix(500))")
        }
        return result
    }

    /// Expects `status` with a JSON error envelope; returns the error message.
    @discardableResult
    func fails(_ status: Int, _ method: String, _ path: String, _ json: String? = nil, headers: [(String, String)]? = nil,
               sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let response = try send(method, path, json, headers: headers)
        #expect(response.status == status, "\(method) \(path) \(json.map { String($0.prefix(200)) } ?? "") → \(response.status) \(response.text.prefix(300))",
                sourceLocation: sourceLocation)
        let message = response.errorMessage
        #expect(message != nil && !message!.isEmpty, "no JSON error in \(response.text.prefix(300))", sourceLocation: sourceLocation)
        return message ?? ""
    }
}

enum JSONText {
    static func string(_ text: String) -> String {
        var writer = JSONWriter()
        writer.value(text)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Float32s written with Swift's shortest round-trip form: the server reads back the same bits.
    static func vector(_ values: [Float]) -> String {
        "[" + values.map { "\($0)" }.joined(separator: ",") + "]"
    }

    static func value(_ value: JSONValue) -> String { String(decoding: value.serialized(), as: UTF8.self) }
}

extension JSONValue {
    /// A point id as the test's canonical string (number or lowercase UUID).
    var idText: String {
        switch self {
        case .integer(let value): return String(value)
        case .unsigned(let value): return String(value)
        case .string(let text): return text
        default: return "?\(self)"
        }
    }

    var floatArray: [Float]? { floatsValue }
}

/// Deterministic random data.
struct TestData {
    var random: SeededRandom

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    mutating func vector(_ dimension: Int) -> [Float] {
        (0..<dimension).map { _ in Float(Double(random.next() >> 11) / Double(1 << 53) * 2 - 1) }
    }

    mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &random) }

    mutating func uuid() -> String {
        let high = random.next(), low = random.next()
        let hex = String(format: "%016llx%016llx", high, low)
        let characters = Array(hex)
        return String(characters[0..<8]) + "-" + String(characters[8..<12]) + "-" + String(characters[12..<16]) + "-"
            + String(characters[16..<20]) + "-" + String(characters[20..<32])
    }
}

enum Oracle {
    static func normalised(_ vector: [Float]) -> [Float] {
        var norm: Float = 0
        for value in vector { norm += value * value }
        norm = norm.squareRoot()
        return vector.map { $0 / norm }
    }

    /// The user-facing score of `vector` (as stored) against `query`, in Double.
    static func score(_ metric: String, query: [Float], stored: [Float]) -> Double {
        switch metric {
        case "Cosine":
            let q = normalised(query)
            return zip(q, stored).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        case "Dot":
            return zip(query, stored).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        case "Euclid":
            return zip(query, stored).reduce(0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }.squareRoot()
        default:
            return zip(query, stored).reduce(0) { $0 + abs(Double($1.0) - Double($1.1)) }
        }
    }

    static func higherIsBetter(_ metric: String) -> Bool { metric == "Cosine" || metric == "Dot" }
}

/// JSON equality ignoring object member order (the server may reorder merged payloads).
func sameJSON(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case (.object(let x)?, .object(let y)?):
        guard x.count == y.count else { return false }
        for (key, value) in x.members { guard sameJSON(value, y[key]) else { return false } }
        return true
    case (.array(let x)?, .array(let y)?):
        return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
    case (let x?, let y?):
        if let p = x.doubleValue, let q = y.doubleValue { return p == q }
        return x == y
    default: return false
    }
}
