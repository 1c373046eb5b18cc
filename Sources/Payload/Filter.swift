// Qdrant's filter language, parsed once (Filter+Parse.swift) into this tree and evaluated per
// point with `matches(id:payload:)`. Semantics follow Qdrant's `check_filter`:
//   - `must`: every condition holds; `must_not`: none holds; `should`: at least one holds, and an
//     empty `should` list imposes nothing; `min_should`: at least `minCount` of its conditions hold.
//   - A field condition looks up every value at its key (PayloadPath) and holds if any value
//     satisfies it; a value that is an array satisfies match and range if any element does
//     (one level: arrays inside arrays are not flattened). A missing key satisfies nothing.
//   - `is_empty`: every value at the key is null or [] (vacuously true when the key is missing).
//   - `is_null`: some value at the key is null, or an array with a null element.
//   - `has_id`: the point's id is in the set (always false inside `nested`, as in Qdrant).
//   - `nested`: some object element of the array at the key satisfies the whole inner filter,
//     its keys read relative to that element.
// Evaluation allocates nothing: paths are pre-split, match sets pre-hashed, text pre-encoded.

import JSON

public struct Filter: Sendable, Equatable {
    public var must: [Condition]
    public var should: [Condition]
    public var mustNot: [Condition]
    public var minShould: MinShould?

    public struct MinShould: Sendable, Equatable {
        public var conditions: [Condition]
        public var minCount: Int

        public init(conditions: [Condition], minCount: Int) {
            self.conditions = conditions
            self.minCount = minCount
        }
    }

    /// The empty filter, which matches every point.
    public init(must: [Condition] = [], should: [Condition] = [], mustNot: [Condition] = [], minShould: MinShould? = nil) {
        self.must = must
        self.should = should
        self.mustNot = mustNot
        self.minShould = minShould
    }

    /// True if the point passes the filter.
    public func matches(id: PointID, payload: JSONObject) -> Bool {
        matches(id: Optional(id), payload: payload)
    }

    func matches(id: PointID?, payload: JSONObject) -> Bool {
        for condition in must where !condition.matches(id: id, payload: payload) { return false }
        for condition in mustNot where condition.matches(id: id, payload: payload) { return false }
        if !should.isEmpty {
            var any = false
            for condition in should where condition.matches(id: id, payload: payload) {
                any = true
                break
            }
            if !any { return false }
        }
        if let minShould {
            var count = 0
            for condition in minShould.conditions where condition.matches(id: id, payload: payload) {
                count += 1
                if count >= minShould.minCount { break }
            }
            if count < minShould.minCount { return false }
        }
        return true
    }
}

public enum Condition: Sendable, Equatable {
    case field(PayloadPath, FieldTest)
    case isEmpty(PayloadPath)
    case isNull(PayloadPath)
    case hasID(Set<PointID>)
    /// The path is the array's elements (it ends with `[]`, added at parse time).
    case nested(PayloadPath, Filter)
    case filter(Filter)

    func matches(id: PointID?, payload: JSONObject) -> Bool {
        switch self {
        case .field(let path, let test):
            return path.anyValue(in: payload) { test.matches($0) }
        case .isEmpty(let path):
            return !path.anyValue(in: payload) { value in
                switch value {
                case .null: return false
                case .array(let elements): return !elements.isEmpty
                case .floats(let floats): return !floats.isEmpty
                default: return true
                }
            }
        case .isNull(let path):
            return path.anyValue(in: payload) { value in
                switch value {
                case .null: return true
                case .array(let elements): return elements.contains(.null)
                default: return false
                }
            }
        case .hasID(let ids):
            guard let id else { return false }
            return ids.contains(id)
        case .nested(let elements, let filter):
            return elements.anyValue(in: payload) { element in
                guard case .object(let object) = element else { return false }
                return filter.matches(id: nil, payload: object)
            }
        case .filter(let filter):
            return filter.matches(id: id, payload: payload)
        }
    }
}

/// What a field condition asks of each value at its key.
public enum FieldTest: Sendable, Equatable {
    case matchString(String)
    case matchInteger(Int64)
    case matchBool(Bool)
    case matchAnyString(Set<String>)
    case matchAnyInteger(Set<Int64>)
    case matchExceptString(Set<String>)
    case matchExceptInteger(Set<Int64>)
    /// Substring match on the UTF-8 bytes (Qdrant without a full-text index).
    case matchText([UInt8])
    case range(NumberRange)
    case valuesCount(CountRange)

    func matches(_ value: JSONValue) -> Bool {
        switch self {
        case .valuesCount(let range):
            // Counts the value itself: an array's length, null as 0, anything else as 1.
            let count: Int
            switch value {
            case .null: count = 0
            case .array(let elements): count = elements.count
            case .floats(let floats): count = floats.count
            default: count = 1
            }
            return range.contains(count)
        default:
            switch value {
            case .array(let elements):
                for element in elements where matchesOne(element) { return true }
                return false
            case .floats(let floats):
                for float in floats where matchesOne(.double(Double(float))) { return true }
                return false
            default:
                return matchesOne(value)
            }
        }
    }

    /// One value, not flattened (Qdrant's `check_match`).
    private func matchesOne(_ value: JSONValue) -> Bool {
        switch self {
        case .matchString(let expected):
            if case .string(let stored) = value { return stored == expected }
            return false
        case .matchInteger(let expected):
            if case .integer(let stored) = value { return stored == expected }
            return false
        case .matchBool(let expected):
            if case .bool(let stored) = value { return stored == expected }
            return false
        case .matchAnyString(let set):
            if case .string(let stored) = value { return set.contains(stored) }
            return false
        case .matchAnyInteger(let set):
            if case .integer(let stored) = value { return set.contains(stored) }
            return false
        case .matchExceptString(let set):
            switch value {
            case .null: return false
            case .string(let stored): return !set.contains(stored)
            default: return true
            }
        case .matchExceptInteger(let set):
            switch value {
            case .null: return false
            case .integer(let stored): return !set.contains(stored)
            default: return true
            }
        case .matchText(let needle):
            guard case .string(var stored) = value else { return false }
            return stored.withUTF8 { Self.contains($0, needle) }
        case .range(let range):
            return range.contains(value)
        case .valuesCount:
            return false  // handled in `matches`
        }
    }

    private static func contains(_ haystack: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var start = 0
        while start <= haystack.count - needle.count {
            if haystack[start] == first {
                var offset = 1
                while offset < needle.count, haystack[start + offset] == needle[offset] { offset += 1 }
                if offset == needle.count { return true }
            }
            start += 1
        }
        return false
    }
}

/// A JSON number kept exact: integers are not rounded through Double.
public enum PayloadNumber: Sendable, Equatable {
    case integer(Int64)
    case unsigned(UInt64)
    case double(Double)

    init?(_ value: JSONValue) {
        switch value {
        case .integer(let value): self = .integer(value)
        case .unsigned(let value): self = .unsigned(value)
        case .double(let value): self = .double(value)
        default: return nil
        }
    }

    /// -1, 0 or 1 as `lhs` is below, equal to or above `rhs`, exactly (no rounding of large
    /// integers). Values are finite (JSON has no NaN or infinity).
    static func compare(_ lhs: PayloadNumber, _ rhs: PayloadNumber) -> Int {
        switch (lhs, rhs) {
        case (.integer(let a), .integer(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.unsigned(let a), .unsigned(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.integer(let a), .unsigned(let b)): return a < 0 || UInt64(a) < b ? -1 : (UInt64(a) > b ? 1 : 0)
        case (.unsigned, .integer): return -compare(rhs, lhs)
        case (.double(let a), .double(let b)): return a < b ? -1 : (a > b ? 1 : 0)
        case (.double, _): return -compare(rhs, lhs)
        case (.integer(let a), .double(let b)):
            // Doubles at or beyond ±2^63 are outside Int64; inside, floor(b) is exact.
            if b >= 9_223_372_036_854_775_808.0 { return -1 }
            if b < -9_223_372_036_854_775_808.0 { return 1 }
            let floor = b.rounded(.down)
            let floorInteger = Int64(floor)
            if a < floorInteger { return -1 }
            if a > floorInteger { return 1 }
            return floor == b ? 0 : -1
        case (.unsigned(let a), .double(let b)):
            if b >= 18_446_744_073_709_551_616.0 { return -1 }
            if b < 0 { return 1 }
            let floor = b.rounded(.down)
            let floorInteger = UInt64(floor)
            if a < floorInteger { return -1 }
            if a > floorInteger { return 1 }
            return floor == b ? 0 : -1
        }
    }
}

/// Qdrant's numeric `range`: every present bound must hold.
public struct NumberRange: Sendable, Equatable {
    public var greaterThan: PayloadNumber?
    public var greaterThanOrEqual: PayloadNumber?
    public var lessThan: PayloadNumber?
    public var lessThanOrEqual: PayloadNumber?

    public init(greaterThan: PayloadNumber? = nil, greaterThanOrEqual: PayloadNumber? = nil,
                lessThan: PayloadNumber? = nil, lessThanOrEqual: PayloadNumber? = nil) {
        self.greaterThan = greaterThan
        self.greaterThanOrEqual = greaterThanOrEqual
        self.lessThan = lessThan
        self.lessThanOrEqual = lessThanOrEqual
    }

    func contains(_ value: JSONValue) -> Bool {
        guard let number = PayloadNumber(value) else { return false }
        if let bound = greaterThan, PayloadNumber.compare(number, bound) <= 0 { return false }
        if let bound = greaterThanOrEqual, PayloadNumber.compare(number, bound) < 0 { return false }
        if let bound = lessThan, PayloadNumber.compare(number, bound) >= 0 { return false }
        if let bound = lessThanOrEqual, PayloadNumber.compare(number, bound) > 0 { return false }
        return true
    }
}

/// Qdrant's `values_count`: bounds on how many values a key holds.
public struct CountRange: Sendable, Equatable {
    public var greaterThan: Int?
    public var greaterThanOrEqual: Int?
    public var lessThan: Int?
    public var lessThanOrEqual: Int?

    public init(greaterThan: Int? = nil, greaterThanOrEqual: Int? = nil, lessThan: Int? = nil, lessThanOrEqual: Int? = nil) {
        self.greaterThan = greaterThan
        self.greaterThanOrEqual = greaterThanOrEqual
        self.lessThan = lessThan
        self.lessThanOrEqual = lessThanOrEqual
    }

    func contains(_ count: Int) -> Bool {
        if let bound = greaterThan, count <= bound { return false }
        if let bound = greaterThanOrEqual, count < bound { return false }
        if let bound = lessThan, count >= bound { return false }
        if let bound = lessThanOrEqual, count > bound { return false }
        return true
    }
}
