// The vector fast path: number arrays read as `[Float]` in float scope, and
// `parseFloatArray` over a sub-range; the same floats as reading each literal with strtof.

import Basics
import JSON
import Testing

@Suite struct JSONFloatArrayTests {
    static let vectorKeys = JSONParser.Options(floatArrays: .underKeys(["vector", "vectors"]))

    @Test func vectorsUnderChosenKeysAreCompact() throws {
        let body = """
            {"points": [{"id": 18446744073709551615, "vector": [0.5, -1, 2e-3, 0],
              "payload": {"tags": [1, 2], "vector_like": [1.5]}}],
             "batch": {"vectors": [[1, 2], [], [3.25]]},
             "named": {"vector": {"image": [0.25], "text": [1]}}}
            """
        let value = try JSONParser.parse(body, options: Self.vectorKeys)
        let point = value["points"]?.arrayValue?.first
        #expect(point?["id"] == .unsigned(.max))
        #expect(point?["vector"] == .floats([0.5, -1, 0.002, 0]))
        #expect(point?["payload"]?["tags"] == .array([.integer(1), .integer(2)]))
        #expect(point?["payload"]?["vector_like"] == .array([.double(1.5)]))
        #expect(value["batch"]?["vectors"] == .array([.floats([1, 2]), .floats([]), .floats([3.25])]))
        #expect(value["named"]?["vector"]?["image"] == .floats([0.25]))
        // Serialize and re-parse with the same options: equal.
        #expect(try JSONParser.parse(value.serialized(), options: Self.vectorKeys) == value)
        // Read without float scope, the same numbers as general values.
        let general = try JSONParser.parse(body)
        #expect(general["points"]?.arrayValue?.first?["vector"]?.floatsValue == [0.5, -1, 0.002, 0])
    }

    @Test func vectorsMustBeFiniteFloat32Numbers() throws {
        #expect(parseError("{\"vector\": [1, 1e39]}", Self.vectorKeys)?.kind == .notFiniteFloat32)
        #expect(parseError("{\"vector\": [1, 1e39]}", Self.vectorKeys)?.offset == 15)
        #expect(parseError("{\"vector\": [1, NaN]}", Self.vectorKeys)?.kind == .nonFiniteLiteral)
        #expect(parseError("{\"vector\": [1, \"a\"]}", Self.vectorKeys)?.kind == .notANumber)
        #expect(parseError("{\"vector\": [1, null]}", Self.vectorKeys)?.kind == .notANumber)
        #expect(parseError("{\"vector\": [1,]}", Self.vectorKeys) != nil)
        #expect(parseError("{\"vector\": [1 2]}", Self.vectorKeys) != nil)
        // An array starting with something else is a general array, even in scope.
        #expect(try JSONParser.parse("{\"vector\": [\"a\", 1]}", options: Self.vectorKeys)["vector"] == .array([.string("a"), .integer(1)]))
        // Out of scope, 1e39 is a fine double.
        #expect(try JSONParser.parse("{\"other\": [1e39]}", options: Self.vectorKeys)["other"] == .array([.double(1e39)]))
    }

    @Test func parseFloatArrayOverASubRange() throws {
        let text = Array("xx [1.5, -2.25 ,3e1] yy".utf8)
        #expect(try JSONParser.parseFloatArray(text, range: 2..<21) == [1.5, -2.25, 30])
        let error: JSONError? = {
            do throws(JSONError) {
                _ = try JSONParser.parseFloatArray(text, range: 3..<16)
                return nil
            } catch { return error }
        }()
        #expect(error?.kind == .unexpectedEnd(expected: "a number"))
        #expect(error?.offset == 16)  // offsets are into the whole buffer
    }

    @Test func fastPathMatchesStrtofOnRandomLiterals() throws {
        var random = SeededRandom(seed: 21)
        for _ in 0..<200 {
            var literals: [String] = []
            for _ in 0..<64 {
                let digits = random.next() % 1_000_000_000_000
                let exponent = Int(random.next() % 90) - 50
                let negative = random.next() & 1 == 0 ? "-" : ""
                switch random.next() % 3 {
                case 0: literals.append("\(negative)\(digits)e\(exponent)")
                case 1: literals.append("\(negative)0.\(digits)")
                default: literals.append("\(negative)\(digits % 100_000).\(digits)E+\(abs(exponent) % 30)")
                }
            }
            let text = "[" + literals.joined(separator: ",") + "]"
            let expected = literals.map { Float($0)! }
            if expected.allSatisfy(\.isFinite) {
                let parsed = try JSONParser.parseFloatArray(Array(text.utf8))
                #expect(parsed.map(\.bitPattern) == expected.map(\.bitPattern), "\(text)")
                #expect(try JSONParser.parse(text, options: .init(floatArrays: .everywhere)) == .floats(parsed))
            } else {
                #expect(parseError(text, .init(floatArrays: .everywhere))?.kind == .notFiniteFloat32)
            }
        }
    }
}
