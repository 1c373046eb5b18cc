// Point ids in JSON, as Qdrant reads and writes them. Accepted: a JSON integer 0…UInt64.max, or a
// string holding a UUID (any form `UUIDBytes(parsing:)` takes). Refused, like Qdrant: negative
// integers, any number written with a fraction or exponent (even `3.0`), strings of decimal
// digits (`"42"` is neither a number nor a UUID), and every other JSON type.
// Written back as a number (`.integer` up to Int64.max, `.unsigned` above, as JSONValue requires)
// or a lowercase hyphenated UUID string.

import JSON

/// Why a JSON value is not a point id.
public enum PointIDError: Error, Sendable, Equatable, CustomStringConvertible {
    case negative(Int64)
    /// A number with a fraction or exponent.
    case notAnInteger(Double)
    /// A string that is not a UUID.
    case notAUUID(String)
    /// Neither a number nor a string; carries the JSON type's name.
    case wrongType(String)

    public var description: String {
        switch self {
        case .negative(let value): return "a point id must not be negative, got \(value)"
        case .notAnInteger(let value): return "a point id must be an unsigned integer, got \(value)"
        case .notAUUID(let text):
            let shown = text.utf8.count > 64 ? String(decoding: Array(text.utf8.prefix(64)), as: UTF8.self) + "…" : text
            return "a point id string must be a UUID, got \"\(shown)\""
        case .wrongType(let type): return "a point id must be an unsigned integer or a UUID string, got \(type)"
        }
    }
}

extension PointID {
    /// Reads a point id from JSON (see the file comment for what is accepted).
    public init(json: JSONValue) throws(PointIDError) {
        switch json {
        case .integer(let value):
            guard value >= 0 else { throw .negative(value) }
            self = .number(UInt64(value))
        case .unsigned(let value):
            self = .number(value)
        case .double(let value):
            throw .notAnInteger(value)
        case .string(let text):
            guard let uuid = UUIDBytes(parsing: text) else { throw .notAUUID(text) }
            self = .uuid(uuid)
        default:
            throw .wrongType(json.typeName)
        }
    }

    /// The id as Qdrant writes it.
    public var json: JSONValue {
        switch self {
        case .number(let value): return value <= UInt64(Int64.max) ? .integer(Int64(value)) : .unsigned(value)
        case .uuid(let uuid): return .string(uuid.description)
        }
    }
}

extension JSONValue {
    /// The JSON type's name, for error messages ("a string", "an object").
    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .unsigned, .double: return "a number"
        case .string: return "a string"
        case .array, .floats: return "an array"
        case .object: return "an object"
        }
    }
}
