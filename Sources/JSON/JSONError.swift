// The one error type of the JSON module: what was wrong with the input and where (byte offset,
// plus line and column, computed only when an error is built). Bad input is data, never a trap:
// every refusal of the parser and of the float fast path is one of these.

public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The input ended where `expected` was due.
        case unexpectedEnd(expected: String)
        /// A byte that cannot start or continue `expected` here.
        case unexpectedByte(UInt8, expected: String)
        /// A number literal breaking RFC 8259's grammar (leading zero, missing digits, …).
        case invalidNumber(String)
        /// `NaN`, `Infinity` and friends: not JSON.
        case nonFiniteLiteral
        /// A number whose magnitude does not fit a finite double (e.g. `1e400`).
        case numberOutOfRange
        /// A number bound for a float32 vector that overflows float32.
        case notFiniteFloat32
        /// An array expected to hold only numbers holds something else.
        case notANumber
        case invalidEscape
        /// A `\u` escape naming half of a surrogate pair without its other half.
        case loneSurrogate
        case invalidUTF8
        /// A raw byte below 0x20 inside a string (it must be escaped).
        case controlCharacterInString
        case duplicateKey(String)
        case depthLimitExceeded(limit: Int)
        case documentTooLarge(limit: Int)
        case stringTooLong(limit: Int)
        case numberTooLong(limit: Int)
        case tooManyElements(limit: Int)
        /// Something other than whitespace after the document.
        case trailingContent
    }

    public var kind: Kind
    /// Byte offset of the problem in the input.
    public var offset: Int
    /// 1-based line and column (in bytes) of `offset`.
    public var line: Int
    public var column: Int

    public init(_ kind: Kind, offset: Int, line: Int = 0, column: Int = 0) {
        self.kind = kind
        self.offset = offset
        self.line = line
        self.column = column
    }

    /// Builds an error for `offset` in `bytes`, counting lines up to it.
    init(_ kind: Kind, offset: Int, in bytes: UnsafeRawBufferPointer) {
        var line = 1
        var lineStart = 0
        let end = min(offset, bytes.count)
        var index = 0
        while index < end {
            if bytes[index] == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }
        self.init(kind, offset: offset, line: line, column: offset - lineStart + 1)
    }

    public var problem: String {
        switch kind {
        case .unexpectedEnd(let expected): return "unexpected end of input, expected \(expected)"
        case .unexpectedByte(let byte, let expected):
            return "unexpected \(Self.describe(byte)), expected \(expected)"
        case .invalidNumber(let reason): return "invalid number: \(reason)"
        case .nonFiniteLiteral: return "NaN and Infinity are not JSON numbers"
        case .numberOutOfRange: return "number out of range (not a finite double)"
        case .notFiniteFloat32: return "not a finite float32"
        case .notANumber: return "expected a number in a float array"
        case .invalidEscape: return "invalid escape sequence in string"
        case .loneSurrogate: return "lone UTF-16 surrogate in \\u escape"
        case .invalidUTF8: return "invalid UTF-8 in string"
        case .controlCharacterInString: return "unescaped control character in string"
        case .duplicateKey(let key): return "duplicate key \"\(key)\""
        case .depthLimitExceeded(let limit): return "nesting deeper than \(limit) levels"
        case .documentTooLarge(let limit): return "document larger than \(limit) bytes"
        case .stringTooLong(let limit): return "string longer than \(limit) bytes"
        case .numberTooLong(let limit): return "number literal longer than \(limit) bytes"
        case .tooManyElements(let limit): return "more than \(limit) elements in an array or object"
        case .trailingContent: return "unexpected content after the JSON document"
        }
    }

    public var description: String {
        line > 0
            ? "invalid JSON at byte \(offset) (line \(line), column \(column)): \(problem)"
            : "invalid JSON at byte \(offset): \(problem)"
    }

    static func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        let hex = String(byte, radix: 16, uppercase: true)
        return "byte 0x\(hex.count == 1 ? "0" + hex : hex)"
    }
}
