// Parsing Qdrant's filter JSON into `Filter`. Accepted shapes (Qdrant's REST schema):
//   filter     {"must": C | [C], "should": C | [C], "must_not": C | [C],
//               "min_should": {"conditions": [C], "min_count": n ≥ 1}}   (null = absent)
//   C          {"key": k, "match": {"value": v} | {"any": [..]} | {"except": [..]} | {"text": s}}
//              {"key": k, "range": {"gt"?, "gte"?, "lt"?, "lte"?: number}}
//              {"key": k, "values_count": {"gt"?, "gte"?, "lt"?, "lte"?: count}}
//              {"is_empty": {"key": k}}  {"is_null": {"key": k}}  {"has_id": [id, ..]}
//              {"nested": {"key": k, "filter": filter}}  or a filter object itself
// Everything else is refused with a `FilterError` naming the JSON path: unknown fields, wrong
// types, an empty or malformed key, a `match` with none or several of its forms, mixed-type
// `any`/`except` lists, a range with no bound, and inputs beyond the named limits below. Geo,
// datetime, full-text-index and vector conditions are not supported and say so.

import JSON

extension Filter {
    /// Most conditions in one filter, counting nested filters and their conditions.
    public static let conditionsMax = 1_024
    /// Deepest nesting of filters (the top-level filter is depth 1).
    public static let depthMax = 32
    /// Most values in one `any`/`except` list or `has_id` list.
    public static let listCountMax = 65_536

    /// Parses a filter; `path` names the filter's place in the request for error messages.
    public static func parse(_ json: JSONValue, path: String = "filter") throws(FilterError) -> Filter {
        var parser = FilterParser()
        return try parser.filter(json, path: path, depth: 1)
    }
}

struct FilterParser {
    var conditionCount = 0

    static let filterFields: Set<String> = ["must", "should", "must_not", "min_should"]

    mutating func filter(_ json: JSONValue, path: String, depth: Int) throws(FilterError) -> Filter {
        guard depth <= Filter.depthMax else {
            throw FilterError(path: path, problem: "filters nested deeper than \(Filter.depthMax) levels")
        }
        let object = try Self.object(json, path: path)
        var filter = Filter()
        for (key, value) in object.members {
            let childPath = "\(path).\(key)"
            switch key {
            case "must": filter.must = try conditions(value, path: childPath, depth: depth)
            case "should": filter.should = try conditions(value, path: childPath, depth: depth)
            case "must_not": filter.mustNot = try conditions(value, path: childPath, depth: depth)
            case "min_should":
                if value.isNull { continue }
                filter.minShould = try minShould(value, path: childPath, depth: depth)
            default:
                throw FilterError(path: childPath, problem: "unknown field \"\(key)\" (a filter has must, should, must_not and min_should)")
            }
        }
        return filter
    }

    /// One condition or a list of them; null is none.
    mutating func conditions(_ json: JSONValue, path: String, depth: Int) throws(FilterError) -> [Condition] {
        switch json {
        case .null: return []
        case .array(let elements):
            var result: [Condition] = []
            for (index, element) in elements.enumerated() {
                result.append(try condition(element, path: "\(path)[\(index)]", depth: depth))
            }
            return result
        case .object: return [try condition(json, path: path, depth: depth)]
        default:
            throw FilterError(path: path, problem: "expected a condition or a list of conditions, got \(json.typeName)")
        }
    }

    mutating func minShould(_ json: JSONValue, path: String, depth: Int) throws(FilterError) -> Filter.MinShould {
        let object = try Self.object(json, path: path)
        var conditions: [Condition]?
        var minCount: Int?
        for (key, value) in object.members {
            let childPath = "\(path).\(key)"
            switch key {
            case "conditions":
                guard case .array = value else {
                    throw FilterError(path: childPath, problem: "expected a list of conditions, got \(value.typeName)")
                }
                conditions = try self.conditions(value, path: childPath, depth: depth)
            case "min_count":
                guard case .integer(let count) = value, count >= 1 else {
                    throw FilterError(path: childPath, problem: "expected an integer of at least 1, got \(Self.shown(value))")
                }
                minCount = Int(count)
            default:
                throw FilterError(path: childPath, problem: "unknown field \"\(key)\" (min_should has conditions and min_count)")
            }
        }
        guard let conditions else { throw FilterError(path: path, problem: "missing field \"conditions\"") }
        guard let minCount else { throw FilterError(path: path, problem: "missing field \"min_count\"") }
        return Filter.MinShould(conditions: conditions, minCount: minCount)
    }

    mutating func condition(_ json: JSONValue, path: String, depth: Int) throws(FilterError) -> Condition {
        let object = try Self.object(json, path: path)
        conditionCount += 1
        guard conditionCount <= Filter.conditionsMax else {
            throw FilterError(path: path, problem: "more than \(Filter.conditionsMax) conditions in one filter")
        }
        if object["key"] != nil { return try fieldCondition(object, path: path) }
        if object.keys.allSatisfy({ Self.filterFields.contains($0) }) {
            return .filter(try filter(json, path: path, depth: depth + 1))
        }
        guard object.count == 1, let key = object.keys.first, let value = object.values.first else {
            let unknown = object.keys.first { !Self.filterFields.contains($0) } ?? ""
            throw FilterError(path: path, problem: "unexpected field \"\(unknown)\" alongside \(object.keys.filter { $0 != unknown }.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        let childPath = "\(path).\(key)"
        switch key {
        case "is_empty": return .isEmpty(try Self.payloadField(value, path: childPath))
        case "is_null": return .isNull(try Self.payloadField(value, path: childPath))
        case "has_id":
            guard case .array(let elements) = value else {
                throw FilterError(path: childPath, problem: "expected a list of point ids, got \(value.typeName)")
            }
            guard elements.count <= Filter.listCountMax else {
                throw FilterError(path: childPath, problem: "more than \(Filter.listCountMax) ids")
            }
            var ids = Set<PointID>(minimumCapacity: elements.count)
            for (index, element) in elements.enumerated() {
                do throws(PointIDError) {
                    ids.insert(try PointID(json: element))
                } catch {
                    throw FilterError(path: "\(childPath)[\(index)]", problem: error.description)
                }
            }
            return .hasID(ids)
        case "nested":
            let nested = try Self.object(value, path: childPath)
            var key: PayloadPath?
            var inner: Filter?
            for (field, fieldValue) in nested.members {
                switch field {
                case "key": key = try Self.path(fieldValue, path: "\(childPath).key")
                case "filter": inner = try filter(fieldValue, path: "\(childPath).filter", depth: depth + 1)
                default: throw FilterError(path: "\(childPath).\(field)", problem: "unknown field \"\(field)\" (nested has key and filter)")
                }
            }
            guard let key else { throw FilterError(path: childPath, problem: "missing field \"key\"") }
            guard let inner else { throw FilterError(path: childPath, problem: "missing field \"filter\"") }
            return .nested(key.arrayElements, inner)
        case "has_vector":
            throw FilterError(path: childPath, problem: "has_vector conditions are not supported")
        default:
            throw FilterError(path: childPath, problem: "unknown condition \"\(key)\" (expected key, is_empty, is_null, has_id, nested, must, should, must_not or min_should)")
        }
    }

    /// `{"key": k, "match" | "range" | "values_count": ...}`.
    mutating func fieldCondition(_ object: JSONObject, path: String) throws(FilterError) -> Condition {
        var key: PayloadPath?
        var test: FieldTest?
        var testName = ""
        for (field, value) in object.members {
            let childPath = "\(path).\(field)"
            let parsed: FieldTest
            switch field {
            case "key":
                key = try Self.path(value, path: childPath)
                continue
            case "match": parsed = try Self.match(value, path: childPath)
            case "range": parsed = .range(try Self.numberRange(value, path: childPath))
            case "values_count": parsed = .valuesCount(try Self.countRange(value, path: childPath))
            case "geo_bounding_box", "geo_radius", "geo_polygon", "is_empty", "is_null":
                throw FilterError(path: childPath, problem: "\(field) field conditions are not supported")
            default:
                throw FilterError(path: childPath, problem: "unknown field \"\(field)\" (a field condition has key and one of match, range, values_count)")
            }
            if test != nil {
                throw FilterError(path: path, problem: "a field condition takes only one of match, range, values_count; got \(testName) and \(field)")
            }
            test = parsed
            testName = field
        }
        guard let key else { throw FilterError(path: path, problem: "missing field \"key\"") }
        guard let test else { throw FilterError(path: path, problem: "a field condition needs one of match, range, values_count") }
        return .field(key, test)
    }

    static func match(_ json: JSONValue, path: String) throws(FilterError) -> FieldTest {
        let object = try Self.object(json, path: path)
        var result: FieldTest?
        var resultName = ""
        for (field, value) in object.members {
            let childPath = "\(path).\(field)"
            let parsed: FieldTest
            switch field {
            case "value":
                switch value {
                case .string(let string): parsed = .matchString(string)
                case .integer(let integer): parsed = .matchInteger(integer)
                case .bool(let bool): parsed = .matchBool(bool)
                case .unsigned(let integer):
                    throw FilterError(path: childPath, problem: "integer \(integer) is outside the 64-bit signed range")
                default:
                    throw FilterError(path: childPath, problem: "expected a string, an integer or a boolean, got \(shown(value))")
                }
            case "any", "except":
                let isAny = field == "any"
                guard case .array(let elements) = value else {
                    throw FilterError(path: childPath, problem: "expected a list of strings or integers, got \(value.typeName)")
                }
                guard elements.count <= Filter.listCountMax else {
                    throw FilterError(path: childPath, problem: "more than \(Filter.listCountMax) values")
                }
                if case .integer = elements.first {
                    var set = Set<Int64>(minimumCapacity: elements.count)
                    for (index, element) in elements.enumerated() {
                        guard case .integer(let integer) = element else {
                            throw FilterError(path: "\(childPath)[\(index)]", problem: "expected an integer like the first element, got \(shown(element))")
                        }
                        set.insert(integer)
                    }
                    parsed = isAny ? .matchAnyInteger(set) : .matchExceptInteger(set)
                } else {
                    var set = Set<String>(minimumCapacity: elements.count)
                    for (index, element) in elements.enumerated() {
                        guard case .string(let string) = element else {
                            let problem = index == 0
                                ? "expected a string or an integer, got \(shown(element))"
                                : "expected a string like the first element, got \(shown(element))"
                            throw FilterError(path: "\(childPath)[\(index)]", problem: problem)
                        }
                        set.insert(string)
                    }
                    parsed = isAny ? .matchAnyString(set) : .matchExceptString(set)
                }
            case "text":
                guard case .string(let text) = value else {
                    throw FilterError(path: childPath, problem: "expected a string, got \(value.typeName)")
                }
                parsed = .matchText(Array(text.utf8))
            case "phrase", "text_any":
                throw FilterError(path: childPath, problem: "match \(field) is not supported")
            default:
                throw FilterError(path: childPath, problem: "unknown field \"\(field)\" (match has one of value, any, except, text)")
            }
            if result != nil {
                throw FilterError(path: path, problem: "match takes exactly one of value, any, except, text; got \(resultName) and \(field)")
            }
            result = parsed
            resultName = field
        }
        guard let result else { throw FilterError(path: path, problem: "match needs one of value, any, except, text") }
        return result
    }

    static func numberRange(_ json: JSONValue, path: String) throws(FilterError) -> NumberRange {
        let object = try Self.object(json, path: path)
        var range = NumberRange()
        var any = false
        for (field, value) in object.members {
            let childPath = "\(path).\(field)"
            guard ["gt", "gte", "lt", "lte"].contains(field) else {
                throw FilterError(path: childPath, problem: "unknown field \"\(field)\" (a range has gt, gte, lt, lte)")
            }
            if value.isNull { continue }
            guard let number = PayloadNumber(value) else {
                throw FilterError(path: childPath, problem: "expected a number, got \(value.typeName)")
            }
            any = true
            switch field {
            case "gt": range.greaterThan = number
            case "gte": range.greaterThanOrEqual = number
            case "lt": range.lessThan = number
            default: range.lessThanOrEqual = number
            }
        }
        guard any else { throw FilterError(path: path, problem: "a range needs at least one of gt, gte, lt, lte") }
        return range
    }

    static func countRange(_ json: JSONValue, path: String) throws(FilterError) -> CountRange {
        let object = try Self.object(json, path: path)
        var range = CountRange()
        var any = false
        for (field, value) in object.members {
            let childPath = "\(path).\(field)"
            guard ["gt", "gte", "lt", "lte"].contains(field) else {
                throw FilterError(path: childPath, problem: "unknown field \"\(field)\" (values_count has gt, gte, lt, lte)")
            }
            if value.isNull { continue }
            let count: Int
            switch value {
            case .integer(let integer) where integer >= 0: count = Int(integer)
            case .unsigned: count = Int.max  // beyond any real count
            default: throw FilterError(path: childPath, problem: "expected a non-negative integer, got \(shown(value))")
            }
            any = true
            switch field {
            case "gt": range.greaterThan = count
            case "gte": range.greaterThanOrEqual = count
            case "lt": range.lessThan = count
            default: range.lessThanOrEqual = count
            }
        }
        guard any else { throw FilterError(path: path, problem: "values_count needs at least one of gt, gte, lt, lte") }
        return range
    }

    /// `{"key": k}` of is_empty / is_null.
    static func payloadField(_ json: JSONValue, path: String) throws(FilterError) -> PayloadPath {
        let object = try Self.object(json, path: path)
        var key: PayloadPath?
        for (field, value) in object.members {
            guard field == "key" else {
                throw FilterError(path: "\(path).\(field)", problem: "unknown field \"\(field)\" (expected only key)")
            }
            key = try Self.path(value, path: "\(path).key")
        }
        guard let key else { throw FilterError(path: path, problem: "missing field \"key\"") }
        return key
    }

    static func path(_ json: JSONValue, path: String) throws(FilterError) -> PayloadPath {
        guard case .string(let text) = json else {
            throw FilterError(path: path, problem: "expected a string, got \(json.typeName)")
        }
        do throws(PayloadPathError) {
            return try PayloadPath(parsing: text)
        } catch {
            throw FilterError(path: path, problem: error.description)
        }
    }

    static func object(_ json: JSONValue, path: String) throws(FilterError) -> JSONObject {
        guard case .object(let object) = json else {
            throw FilterError(path: path, problem: "expected an object, got \(json.typeName)")
        }
        return object
    }

    /// The value's type, and for numbers the number ("a number (1.5)").
    static func shown(_ value: JSONValue) -> String {
        switch value {
        case .integer(let integer): return "a number (\(integer))"
        case .unsigned(let integer): return "a number (\(integer))"
        case .double(let double): return "a number (\(double))"
        default: return value.typeName
        }
    }
}
