// Strict RFC 8259 parsing of untrusted bytes into `JSONValue`.
//
// Refused, each with a typed `JSONError` naming the byte offset: trailing commas, comments,
// leading zeros and other number-grammar breaks, NaN/Infinity, numbers outside the finite
// doubles, invalid UTF-8 (overlongs, surrogates, > U+10FFFF), bad escapes and lone surrogates,
// raw control characters in strings, duplicate keys, a byte-order mark, content after the
// document, and anything over the limits in `Options`. The parser never traps on input and
// allocates in proportion to the bytes it has read: nothing is reserved from counts the input
// claims. Recursion is bounded by `depthMax` (at most `depthMaxLimit`).

public enum JSONParser {
    /// Where arrays of numbers are read as float32 vectors (`JSONValue.floats`).
    public enum FloatArrays: Sendable, Equatable {
        /// Never: every array is a general `.array`.
        case never
        /// Everywhere in the document.
        case everywhere
        /// Anywhere inside the value of a member with one of these keys (at any depth), e.g.
        /// `["vector", "vectors"]` covers `"vector": [..]`, `"vectors": [[..], ..]` and named
        /// vectors `"vector": {"image": [..]}`.
        case underKeys(Set<String>)
    }

    /// The hardest limit on `Options.depthMax`: the parser recurses once per level.
    public static let depthMaxLimit = 512

    public struct Options: Sendable {
        /// Deepest nesting of arrays and objects (the top-level value's container is level 1).
        public var depthMax = 64
        /// Largest document accepted (Qdrant's default request limit). A parsed tree takes, by
        /// estimate, at most about 25 bytes of memory per input byte (`[[0],[0],…]` is the
        /// worst shape: a 32-byte value and an array allocation per 4 input bytes); a
        /// `.floats` vector takes 4 bytes per element, less than its text.
        public var bytesMax = 32 << 20
        /// Longest string (key or value), in UTF-8 bytes after unescaping.
        public var stringBytesMax = 1 << 20
        /// Most elements in one array or members in one object.
        public var elementsMax = 1 << 20
        /// Longest number literal (a correct but pathological literal costs strtod time).
        public var numberBytesMax = 1024
        /// In float scope an array whose first element is a number (or that is empty) is read
        /// as a float32 vector: every element must then be a number that is a finite float32.
        public var floatArrays: FloatArrays = .never

        public init() {}

        public init(floatArrays: FloatArrays) {
            self.floatArrays = floatArrays
        }
    }

    public static func parse(_ bytes: [UInt8], options: Options = Options()) throws(JSONError) -> JSONValue {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONError) in try parse(buffer, options: options) }
        }
        return try result.get()
    }

    /// Parses the UTF-8 of `text` (a convenience for tests and tools; servers parse bytes).
    public static func parse(_ text: String, options: Options = Options()) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8), options: options)
    }

    /// Parses the whole of `buffer` as one JSON document.
    public static func parse(_ buffer: UnsafeRawBufferPointer, options: Options = Options()) throws(JSONError) -> JSONValue {
        precondition(options.depthMax >= 1 && options.depthMax <= depthMaxLimit, "depthMax out of range")
        if buffer.count > options.bytesMax {
            throw JSONError(.documentTooLarge(limit: options.bytesMax), offset: options.bytesMax, in: buffer)
        }
        var reader = JSONReader(buffer, start: 0, end: buffer.count, options: options)
        return try reader.parseDocument()
    }

    /// Parses `bytes[range]` (the whole array by default) as one JSON array of numbers read as
    /// float32, surrounded by optional whitespace. Error offsets are indices into `bytes`.
    public static func parseFloatArray(_ bytes: [UInt8], range: Range<Int>? = nil, options: Options = Options()) throws(JSONError) -> [Float] {
        let range = range ?? 0..<bytes.count
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "range outside the bytes")
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONError) in try parseFloatArray(buffer, range: range, options: options) }
        }
        return try result.get()
    }

    public static func parseFloatArray(_ buffer: UnsafeRawBufferPointer, range: Range<Int>, options: Options = Options()) throws(JSONError) -> [Float] {
        precondition(range.lowerBound >= 0 && range.upperBound <= buffer.count, "range outside the buffer")
        if range.count > options.bytesMax {
            throw JSONError(.documentTooLarge(limit: options.bytesMax), offset: range.lowerBound + options.bytesMax, in: buffer)
        }
        var reader = JSONReader(buffer, start: range.lowerBound, end: range.upperBound, options: options)
        return try reader.parseFloatArrayDocument()
    }

    /// Parses one JSON number literal (the whole of `text`) as a float32, as the fast path does.
    public static func parseFloat(_ text: String) throws(JSONError) -> Float {
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONError) in
                var reader = JSONReader(buffer, start: 0, end: buffer.count, options: Options())
                let number = try reader.scanNumber()
                if reader.position != buffer.count {
                    throw reader.error(.unexpectedByte(buffer[reader.position], expected: "end of number"), at: reader.position)
                }
                return try reader.float(of: number)
            }
        }
        return try result.get()
    }
}
