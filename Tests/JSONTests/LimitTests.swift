// Every limit of JSONParser.Options refuses input just over it with its typed error, accepts
// input at it, and hostile shapes (deep nesting, huge claims) fail fast without crashing.

import JSON
import Testing

@Suite struct JSONLimitTests {
    func nested(_ depth: Int) -> String {
        String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
    }

    @Test func depth() throws {
        _ = try JSONParser.parse(nested(64))
        #expect(parseError(nested(65)) == JSONError(.depthLimitExceeded(limit: 64), offset: 64, line: 1, column: 65))
        var options = JSONParser.Options()
        options.depthMax = 3
        _ = try JSONParser.parse("{\"a\":[{}]}", options: options)
        #expect(parseError("{\"a\":[{\"b\":[]}]}", options)?.kind == .depthLimitExceeded(limit: 3))
        // 100,000 open brackets: refused at the limit, no stack overflow.
        #expect(parseError(String(repeating: "[", count: 100_000))?.kind == .depthLimitExceeded(limit: 64))
        #expect(parseError(String(repeating: "{\"a\":", count: 100_000))?.kind == .depthLimitExceeded(limit: 64))
    }

    @Test func documentBytes() throws {
        var options = JSONParser.Options()
        options.bytesMax = 10
        _ = try JSONParser.parse("[1,2,3,45]", options: options)
        #expect(parseError("[1,2,3,456]", options)?.kind == .documentTooLarge(limit: 10))
        #expect(throws: JSONError.self) { try JSONParser.parseFloatArray(Array("[1,2,3,456]".utf8), options: options) }
    }

    @Test func stringBytes() throws {
        var options = JSONParser.Options()
        options.stringBytesMax = 4
        _ = try JSONParser.parse("[\"abcd\", \"\\u00e9\\u00e9\"]", options: options)
        #expect(parseError("[\"abcde\"]", options) == JSONError(.stringTooLong(limit: 4), offset: 1, line: 1, column: 2))
        #expect(parseError("[\"\\u00e9\\u00e9a\"]", options)?.kind == .stringTooLong(limit: 4))
        #expect(parseError("{\"abcde\": 1}", options)?.kind == .stringTooLong(limit: 4))
        #expect(parseError("[\"€€\"]", options)?.kind == .stringTooLong(limit: 4))
    }

    @Test func elements() throws {
        var options = JSONParser.Options()
        options.elementsMax = 3
        _ = try JSONParser.parse("[1,2,3]", options: options)
        _ = try JSONParser.parse("{\"a\":1,\"b\":2,\"c\":3}", options: options)
        #expect(parseError("[1,2,3,4]", options)?.kind == .tooManyElements(limit: 3))
        #expect(parseError("{\"a\":1,\"b\":2,\"c\":3,\"d\":4}", options)?.kind == .tooManyElements(limit: 3))
        options.floatArrays = .everywhere
        _ = try JSONParser.parse("[1,2,3]", options: options)
        #expect(parseError("[1,2,3,4]", options)?.kind == .tooManyElements(limit: 3))
    }

    @Test func numberLength() throws {
        var options = JSONParser.Options()
        options.numberBytesMax = 8
        _ = try JSONParser.parse("[12345678]", options: options)
        #expect(parseError("[123456789]", options) == JSONError(.numberTooLong(limit: 8), offset: 1, line: 1, column: 2))
        // The default accepts long but valid literals.
        #expect(try JSONParser.parse("0." + String(repeating: "0", count: 500) + "1") == .double(0))
    }

    @Test func errorsNameOffsetLineAndColumn() {
        let error = parseError("{\n  \"a\": [1,\n  2,,]\n}")
        #expect(error == JSONError(.unexpectedByte(UInt8(ascii: ","), expected: "a value"), offset: 17, line: 3, column: 5))
        #expect(error?.description == "invalid JSON at byte 17 (line 3, column 5): unexpected ',', expected a value")
        #expect(parseError("")?.description == "invalid JSON at byte 0 (line 1, column 1): unexpected end of input, expected a value")
        #expect(parseError([0x22, 0xFF, 0x22] as [UInt8])?.description == "invalid JSON at byte 1 (line 1, column 2): invalid UTF-8 in string")
        #expect(parseError("[\u{1}]")?.description.contains("byte 0x01") == true)
    }
}
