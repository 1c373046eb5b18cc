// Seeded random documents: serialize → parse gives the same value (with and without float
// scope), and every proper prefix of a serialized container is refused.

import TestSupport
import Basics
import JSON
import Testing

struct DocumentGenerator {
    var random: SeededRandom

    mutating func below(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }

    mutating func string() -> String {
        let pool: [Unicode.Scalar] = ["a", "z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}",
                                      "é", "€", "\u{FFFF}", "\u{10437}", "\u{1F600}", "\u{10FFFF}"]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<below(12) {
            if below(3) == 0 {
                scalars.append(pool[below(pool.count)])
            } else {
                var value = UInt32(below(0x11_0000))
                if value >= 0xD800 && value < 0xE000 { value = 0x41 }
                scalars.append(Unicode.Scalar(value)!)
            }
        }
        return String(scalars)
    }

    mutating func number() -> JSONValue {
        switch below(5) {
        case 0: return .integer(Int64(bitPattern: random.next()))
        case 1: return .integer(Int64(below(1000)) - 500)
        case 2: return .unsigned(random.next() | 1 << 63)
        case 3:
            let double = Double(bitPattern: random.next())
            return .double(double.isFinite ? double : 0.5)
        default: return .double(Double(below(2000)) / 64 - 10)
        }
    }

    mutating func vector() -> [Float] {
        (0..<below(8)).map { _ in
            let float = Float(bitPattern: UInt32(truncatingIfNeeded: random.next()))
            return float.isFinite ? float : 1
        }
    }

    mutating func value(depth: Int, vectors: Bool) -> JSONValue {
        let choice = depth >= 5 ? below(5) : below(8)
        switch choice {
        case 0: return .null
        case 1: return .bool(below(2) == 0)
        case 2, 3: return number()
        case 4: return .string(string())
        case 5:
            return .array((0..<below(6)).map { _ in value(depth: depth + 1, vectors: vectors) })
        default:
            var object = JSONObject()
            for _ in 0..<below(depth == 0 ? 20 : 6) {
                if vectors && below(4) == 0 {
                    object.insertNew("vector", .floats(vector()))
                } else {
                    object.insertNew(string(), value(depth: depth + 1, vectors: vectors))
                }
            }
            return .object(object)
        }
    }
}

@Suite(.ownThread) struct JSONRoundTripTests {
    @Test func randomDocumentsRoundTrip() throws {
        var generator = DocumentGenerator(random: SeededRandom(seed: 1))
        for _ in 0..<3_000 {
            let value = generator.value(depth: 0, vectors: false)
            let bytes = value.serialized()
            let parsed = try JSONParser.parse(bytes)
            #expect(parsed == value, "\(value.jsonString)")
            #expect(parsed.serialized() == bytes)
        }
    }

    @Test func randomDocumentsWithVectorsRoundTrip() throws {
        var generator = DocumentGenerator(random: SeededRandom(seed: 2))
        let options = JSONParser.Options(floatArrays: .underKeys(["vector"]))
        for _ in 0..<2_000 {
            let object = generator.value(depth: 1, vectors: true)
            guard case .object = object else { continue }
            let parsed = try JSONParser.parse(object.serialized(), options: options)
            #expect(parsed == object, "\(object.jsonString)")
        }
    }

    @Test func everyTruncationIsAnError() throws {
        var generator = DocumentGenerator(random: SeededRandom(seed: 3))
        var documents: [[UInt8]] = [
            Array("{\"points\":[{\"id\":1,\"vector\":[0.5,-1e-3,2],\"payload\":{\"a\":\"é\\n\\u00e9\",\"b\":[true,false,null]}}]}".utf8),
        ]
        while documents.count < 40 {
            let value = generator.value(depth: 0, vectors: false)
            switch value {
            case .array, .object: documents.append(value.serialized())
            default: continue
            }
        }
        let options = JSONParser.Options(floatArrays: .underKeys(["vector"]))
        for document in documents {
            #expect(parseError(document) == nil)
            for length in 0..<document.count {
                let prefix = Array(document[..<length])
                #expect(parseError(prefix) != nil, "prefix of \(length) bytes accepted")
                #expect(parseError(prefix, options) != nil, "prefix of \(length) bytes accepted in float scope")
            }
        }
    }

    @Test func whitespaceBetweenTokensIsIgnored() throws {
        let compact = try JSONParser.parse("{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}")
        let spaced = try JSONParser.parse(" \n{ \"a\" :\t[ 1 ,\r\n2 , { \"b\" : null } ] , \"c\" : \"d\" } \n")
        #expect(compact == spaced)
    }
}
