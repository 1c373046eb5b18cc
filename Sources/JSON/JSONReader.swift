// The parser's cursor over a borrowed buffer: one pass, recursive descent, every read checked
// against `end`. Internal: `JSONParser` is the public face. Unsafe memory stays inside this
// type and never outlives the `withUnsafeBytes` scope that created it.

struct JSONReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int
    let end: Int
    let options: JSONParser.Options
    /// Reused buffer for strings with escapes.
    var scratch: [UInt8] = []

    init(_ bytes: UnsafeRawBufferPointer, start: Int, end: Int, options: JSONParser.Options) {
        self.bytes = bytes
        self.position = start
        self.end = end
        self.options = options
    }

    func error(_ kind: JSONError.Kind, at offset: Int) -> JSONError {
        JSONError(kind, offset: offset, in: bytes)
    }

    /// The error for the byte at `position` (or the end) when `expected` was due there.
    func unexpected(_ expected: String) -> JSONError {
        if position >= end { return error(.unexpectedEnd(expected: expected), at: position) }
        return error(.unexpectedByte(bytes[position], expected: expected), at: position)
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while position < end {
            let byte = bytes[position]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            position += 1
        }
    }

    // MARK: Documents

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0, floatScope: options.floatArrays == .everywhere)
        skipWhitespace()
        if position < end { throw error(.trailingContent, at: position) }
        return value
    }

    mutating func parseFloatArrayDocument() throws(JSONError) -> [Float] {
        skipWhitespace()
        guard position < end, bytes[position] == UInt8(ascii: "[") else { throw unexpected("'['") }
        position += 1
        let floats = try parseFloatArrayBody()
        skipWhitespace()
        if position < end { throw error(.trailingContent, at: position) }
        return floats
    }

    // MARK: Values

    mutating func parseValue(depth: Int, floatScope: Bool) throws(JSONError) -> JSONValue {
        guard position < end else { throw unexpected("a value") }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            return try parseObject(depth: depth + 1, floatScope: floatScope)
        case UInt8(ascii: "["):
            return try parseArray(depth: depth + 1, floatScope: floatScope)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let number = try scanNumber()
            return try value(of: number)
        default:
            if startsNonFiniteLiteral(at: position) { throw error(.nonFiniteLiteral, at: position) }
            if bytes[position] == UInt8(ascii: "n") {
                try expectLiteral("null")
                return .null
            }
            throw unexpected("a value")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let start = position
        let count = literal.utf8CodeUnitCount
        let pointer = literal.utf8Start
        for index in 0..<count {
            if position >= end || bytes[position] != pointer[index] {
                if startsNonFiniteLiteral(at: start) { throw error(.nonFiniteLiteral, at: start) }
                throw unexpected("'\(literal)'")
            }
            position += 1
        }
    }

    /// `NaN`, `nan`, `Infinity`, `inf` (any case) at `offset`: worth a precise error.
    func startsNonFiniteLiteral(at offset: Int) -> Bool {
        func matches(_ word: String) -> Bool {
            var index = offset
            for letter in word.utf8 {
                guard index < end, bytes[index] | 0x20 == letter else { return false }
                index += 1
            }
            return true
        }
        return matches("nan") || matches("inf")
    }

    mutating func parseArray(depth: Int, floatScope: Bool) throws(JSONError) -> JSONValue {
        let start = position
        if depth > options.depthMax { throw error(.depthLimitExceeded(limit: options.depthMax), at: start) }
        position += 1  // '['
        skipWhitespace()
        if floatScope, position < end {
            let byte = bytes[position]
            if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) {
                return .floats(try parseFloatArrayBody())
            }
        }
        var elements: [JSONValue] = []
        if position < end, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            if elements.count == options.elementsMax {
                throw error(.tooManyElements(limit: options.elementsMax), at: position)
            }
            skipWhitespace()
            elements.append(try parseValue(depth: depth, floatScope: floatScope))
            skipWhitespace()
            guard position < end else { throw unexpected("',' or ']'") }
            switch bytes[position] {
            case UInt8(ascii: ","):
                position += 1
            case UInt8(ascii: "]"):
                position += 1
                return .array(elements)
            default:
                throw unexpected("',' or ']'")
            }
        }
    }

    mutating func parseObject(depth: Int, floatScope: Bool) throws(JSONError) -> JSONValue {
        let start = position
        if depth > options.depthMax { throw error(.depthLimitExceeded(limit: options.depthMax), at: start) }
        position += 1  // '{'
        var object = JSONObject()
        skipWhitespace()
        if position < end, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            if object.count == options.elementsMax {
                throw error(.tooManyElements(limit: options.elementsMax), at: position)
            }
            skipWhitespace()
            guard position < end, bytes[position] == UInt8(ascii: "\"") else { throw unexpected("a string key") }
            let keyOffset = position
            let key = try parseString()
            skipWhitespace()
            guard position < end, bytes[position] == UInt8(ascii: ":") else { throw unexpected("':'") }
            position += 1
            skipWhitespace()
            var childScope = floatScope
            if !childScope, case .underKeys(let keys) = options.floatArrays, keys.contains(key) { childScope = true }
            let value = try parseValue(depth: depth, floatScope: childScope)
            if !object.insertNew(key, value) { throw error(.duplicateKey(key), at: keyOffset) }
            skipWhitespace()
            guard position < end else { throw unexpected("',' or '}'") }
            switch bytes[position] {
            case UInt8(ascii: ","):
                position += 1
            case UInt8(ascii: "}"):
                position += 1
                return .object(object)
            default:
                throw unexpected("',' or '}'")
            }
        }
    }

    /// After '[' (and any whitespace): numbers read as float32 up to the closing ']'.
    mutating func parseFloatArrayBody() throws(JSONError) -> [Float] {
        var floats: [Float] = []
        skipWhitespace()
        if position < end, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return floats
        }
        while true {
            if floats.count == options.elementsMax {
                throw error(.tooManyElements(limit: options.elementsMax), at: position)
            }
            skipWhitespace()
            guard position < end else { throw unexpected("a number") }
            let byte = bytes[position]
            guard byte == UInt8(ascii: "-") || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) else {
                if startsNonFiniteLiteral(at: position) { throw error(.nonFiniteLiteral, at: position) }
                throw error(.notANumber, at: position)
            }
            let number = try scanNumber()
            floats.append(try float(of: number))
            skipWhitespace()
            guard position < end else { throw unexpected("',' or ']'") }
            switch bytes[position] {
            case UInt8(ascii: ","):
                position += 1
            case UInt8(ascii: "]"):
                position += 1
                return floats
            default:
                throw unexpected("',' or ']'")
            }
        }
    }
}
