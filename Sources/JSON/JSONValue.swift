// A parsed JSON document. Numbers keep their exactness: a literal without fraction or exponent
// that fits Int64 is `.integer`, one above Int64.max that fits UInt64 (Qdrant point ids are
// u64) is `.unsigned`, everything else is a finite `.double`. `.floats` is the compact form of
// an array of numbers that the parser was asked to read as float32 vectors
// (`JSONParser.Options.floatArrays`): one `[Float]`, not one enum per element.

public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// Only for values above `Int64.max`; smaller non-negative integers are `.integer`.
    case unsigned(UInt64)
    /// Always finite.
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// An array of numbers read as float32 (every element finite).
    case floats([Float])
    case object(JSONObject)
}

extension JSONValue {
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        switch self {
        case .array(let values): return values
        case .floats(let floats): return floats.map { .double(Double($0)) }
        default: return nil
        }
    }

    /// The value as an exact signed integer (integral doubles within range count).
    public var int64Value: Int64? {
        switch self {
        case .integer(let value): return value
        case .double(let value): return Int64(exactly: value)
        default: return nil
        }
    }

    /// The value as an exact unsigned integer (point ids).
    public var uint64Value: UInt64? {
        switch self {
        case .integer(let value): return UInt64(exactly: value)
        case .unsigned(let value): return value
        case .double(let value): return UInt64(exactly: value)
        default: return nil
        }
    }

    /// Any number as a double (large integers round).
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .unsigned(let value): return Double(value)
        case .double(let value): return value
        default: return nil
        }
    }

    /// The float32 vector: `.floats` as is; a general array of numbers converted element by
    /// element (rounding each double to float). Nil if any element is not a finite float32.
    public var floatsValue: [Float]? {
        switch self {
        case .floats(let floats): return floats
        case .array(let values):
            var result: [Float] = []
            result.reserveCapacity(values.count)
            for value in values {
                guard let double = value.doubleValue else { return nil }
                let float = Float(double)
                guard float.isFinite else { return nil }
                result.append(float)
            }
            return result
        default: return nil
        }
    }
}

/// A JSON object: members in document order, with lookup by key (linear for small objects, a
/// hash index beyond `indexedCountMin` members). Keys are unique.
public struct JSONObject: Sendable, Equatable {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []
    private var index: [String: Int]? = nil

    /// Objects with this many members or more get a hash index.
    static let indexedCountMin = 12

    public init() {}

    /// Builds an object from pairs; a repeated key is a programmer error.
    public init(_ pairs: KeyValuePairs<String, JSONValue>) {
        for (key, value) in pairs {
            let inserted = insertNew(key, value)
            precondition(inserted, "duplicate key \(key) in a JSONObject literal")
        }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public func firstIndex(of key: String) -> Int? {
        if let index { return index[key] }
        return keys.firstIndex(of: key)
    }

    public subscript(key: String) -> JSONValue? {
        firstIndex(of: key).map { values[$0] }
    }

    /// Appends a member; returns false (and changes nothing) if `key` is already present.
    @discardableResult
    public mutating func insertNew(_ key: String, _ value: JSONValue) -> Bool {
        if firstIndex(of: key) != nil { return false }
        keys.append(key)
        values.append(value)
        if index != nil {
            index![key] = keys.count - 1
        } else if keys.count >= Self.indexedCountMin {
            var built: [String: Int] = [:]
            built.reserveCapacity(keys.count * 2)
            for (position, name) in keys.enumerated() { built[name] = position }
            index = built
        }
        return true
    }

    /// Sets `key` to `value`, replacing its value in place or appending it.
    public mutating func set(_ key: String, _ value: JSONValue) {
        if let position = firstIndex(of: key) {
            values[position] = value
        } else {
            insertNew(key, value)
        }
    }

    /// Members in document order.
    public var members: Zip2Sequence<[String], [JSONValue]> { zip(keys, values) }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.keys == rhs.keys && lhs.values == rhs.values
    }
}

// Literals, for code that builds payloads and filters by hand (the SDK's users, tests):
// `let payload: JSONObject = ["city": "Berlin", "population": 3_600_000, "tags": ["capital"]]`.

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init()
        for (key, value) in elements {
            let inserted = insertNew(key, value)
            precondition(inserted, "duplicate key \(key) in a JSONObject literal")
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements {
            precondition(object[key] == nil, "duplicate key \(key) in a JSON object literal")
            object.set(key, value)
        }
        self = .object(object)
    }
}
