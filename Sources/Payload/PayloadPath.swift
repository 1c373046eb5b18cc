// A path into a payload, in Qdrant's key syntax: `a.b.c`, `a[].b` (every element of the array
// `a`), `a[2].b` (one element), and `"quoted key".b` for keys that are not plain words. A plain
// key is one or more letters, digits, `_` or `-`; a quoted key is any characters but `"` and `\`.
// Parsed once (at filter-parse time) into components, so matching walks them with no string work.
//
// Lookup follows Qdrant: a key step descends only into an object and an index or `[]` step only
// into an array — there is no implicit descent through arrays, write `a[].b` for that. A value
// found at the end of the path that is itself an array is not flattened here; conditions that
// treat an array as "any element" (match, range) do that themselves.

import JSON

public struct PayloadPath: Hashable, Sendable, CustomStringConvertible {
    public enum Component: Hashable, Sendable {
        case key(String)
        case index(Int)
        /// `[]`: every element.
        case wildcard
    }

    /// Longest key text accepted, in UTF-8 bytes.
    public static let textBytesMax = 256
    /// Most components in one path.
    public static let componentsMax = 32

    /// Never empty; the first component is always a key.
    public let components: [Component]

    public init(parsing text: String) throws(PayloadPathError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= Self.textBytesMax else { throw .tooLong(count: bytes.count, limit: Self.textBytesMax) }
        var components: [Component] = []
        var position = 0
        func invalid(_ problem: String) -> PayloadPathError { .invalid(text: text, offset: position, problem: problem) }
        components.append(.key(try Self.readKey(bytes, &position, text: text)))
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "."):
                position += 1
                components.append(.key(try Self.readKey(bytes, &position, text: text)))
            case UInt8(ascii: "["):
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    components.append(.wildcard)
                    continue
                }
                var index = 0
                let digitsStart = position
                while position < bytes.count, bytes[position] >= UInt8(ascii: "0"), bytes[position] <= UInt8(ascii: "9") {
                    // Bounded by textBytesMax, but keep the arithmetic from overflowing anyway.
                    guard index < Int.max / 10 - 9 else { throw invalid("array index too large") }
                    index = index * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                    position += 1
                }
                guard position > digitsStart else { throw invalid("expected an array index or ]") }
                guard position < bytes.count, bytes[position] == UInt8(ascii: "]") else { throw invalid("expected ]") }
                position += 1
                components.append(.index(index))
            default:
                throw invalid("expected . or [")
            }
            guard components.count <= Self.componentsMax else {
                throw .tooDeep(count: components.count, limit: Self.componentsMax)
            }
        }
        self.components = components
    }

    /// Builds a path from components (tests and callers that already have them).
    public init(components: [Component]) {
        precondition(!components.isEmpty, "a payload path has at least one component")
        if case .key = components[0] {} else { preconditionFailure("a payload path starts with a key") }
        self.components = components
    }

    /// Reads a plain or quoted key at `position`.
    private static func readKey(_ bytes: [UInt8], _ position: inout Int, text: String) throws(PayloadPathError) -> String {
        guard position < bytes.count else { throw .invalid(text: text, offset: position, problem: "expected a key") }
        if bytes[position] == UInt8(ascii: "\"") {
            let start = position + 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                guard bytes[end] != UInt8(ascii: "\\") else {
                    throw .invalid(text: text, offset: end, problem: "a quoted key cannot contain \\")
                }
                end += 1
            }
            guard end < bytes.count else { throw .invalid(text: text, offset: position, problem: "unterminated quoted key") }
            position = end + 1
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }
        // A plain key runs to the next `.` or `[`; every character in it must be a letter, digit,
        // `_` or `-` (Rust's `char::is_alphanumeric`, which Qdrant uses, covers Unicode letters).
        let start = position
        var end = start
        while end < bytes.count, bytes[end] != UInt8(ascii: "."), bytes[end] != UInt8(ascii: "[") { end += 1 }
        guard end > start else { throw .invalid(text: text, offset: position, problem: "expected a key") }
        let key = String(decoding: bytes[start..<end], as: UTF8.self)
        for character in key where !(character.isLetter || character.isNumber || character == "_" || character == "-") {
            throw .invalid(text: text, offset: start, problem: "a plain key holds only letters, digits, _ and -; quote it (\"...\") otherwise")
        }
        position = end
        return key
    }

    /// The canonical text: plain keys bare, others quoted.
    public var description: String {
        var text = ""
        for (position, component) in components.enumerated() {
            switch component {
            case .key(let key):
                if position > 0 { text += "." }
                let plain = !key.isEmpty && key.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
                text += plain ? key : "\"\(key)\""
            case .index(let index): text += "[\(index)]"
            case .wildcard: text += "[]"
            }
        }
        return text
    }

    /// The path with `[]` appended unless it already ends with one (Qdrant's `array_key`).
    var arrayElements: PayloadPath {
        if components.last == .wildcard { return self }
        return PayloadPath(components: components + [.wildcard])
    }
}

public enum PayloadPathError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case tooLong(count: Int, limit: Int)
    case tooDeep(count: Int, limit: Int)
    case invalid(text: String, offset: Int, problem: String)

    public var description: String {
        switch self {
        case .empty: return "empty key"
        case .tooLong(let count, let limit): return "key of \(count) bytes is longer than the limit of \(limit)"
        case .tooDeep(let count, let limit): return "key has more than \(limit) components (\(count) so far)"
        case .invalid(let text, let offset, let problem): return "invalid key \"\(text)\" at byte \(offset): \(problem)"
        }
    }
}

// MARK: Lookup

extension PayloadPath {
    /// True if `predicate` holds for any value at this path in `object` (Qdrant's `value_get`
    /// followed by `any`). Walks in place: no allocation.
    @inlinable
    public func anyValue(in object: JSONObject, where predicate: (JSONValue) -> Bool) -> Bool {
        guard case .key(let first) = components[0], let value = object[first] else { return false }
        return Self.anyValue(components, from: 1, value, predicate)
    }

    @usableFromInline
    static func anyValue(_ components: [Component], from position: Int, _ value: JSONValue, _ predicate: (JSONValue) -> Bool) -> Bool {
        if position == components.count { return predicate(value) }
        switch (components[position], value) {
        case (.key(let key), .object(let object)):
            guard let child = object[key] else { return false }
            return anyValue(components, from: position + 1, child, predicate)
        case (.index(let index), .array(let elements)):
            guard index < elements.count else { return false }
            return anyValue(components, from: position + 1, elements[index], predicate)
        case (.index(let index), .floats(let floats)):
            guard index < floats.count else { return false }
            return anyValue(components, from: position + 1, .double(Double(floats[index])), predicate)
        case (.wildcard, .array(let elements)):
            for element in elements where anyValue(components, from: position + 1, element, predicate) { return true }
            return false
        case (.wildcard, .floats(let floats)):
            for float in floats where anyValue(components, from: position + 1, .double(Double(float)), predicate) { return true }
            return false
        default:
            return false
        }
    }
}
