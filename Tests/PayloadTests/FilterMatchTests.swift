// Filter evaluation: each condition kind both ways, paths through objects and arrays, and the
// boolean structure (must / should / must_not / min_should / nested filters).

import JSON
import Payload
import Testing

@Suite struct FilterMatchTests {
    static let shop = """
        {"color": "red", "price": 499.9, "amount": 10, "rating": [3, 7, 9, 9], "delivery": true,
         "tags": ["sale", "new"], "parts": [], "packaging": null, "nulls": [null, 1],
         "big": 18446744073709551615, "note": "hello wörld",
         "country": {"name": "Germany", "cities": [
            {"name": "Berlin", "population": 3.7, "sights": ["Reichstag", "Brandenburg Gate"]},
            {"name": "Munich", "population": 1.5, "sights": ["Marienplatz"]}]}}
        """

    func check(_ condition: String, _ expected: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(matches("{\"must\": [\(condition)]}", Self.shop) == expected, "\(condition)", sourceLocation: sourceLocation)
    }

    @Test func emptyFilterMatchesAll() {
        #expect(matches("{}", "{}"))
        #expect(matches("{}", Self.shop))
        #expect(matches(#"{"must": [], "must_not": [], "should": []}"#, Self.shop))
        #expect(matches(#"{"must": null}"#, Self.shop))
    }

    @Test func matchValue() {
        check(#"{"key": "color", "match": {"value": "red"}}"#, true)
        check(#"{"key": "color", "match": {"value": "blue"}}"#, false)
        check(#"{"key": "color", "match": {"value": "RED"}}"#, false)
        check(#"{"key": "amount", "match": {"value": 10}}"#, true)
        check(#"{"key": "amount", "match": {"value": 11}}"#, false)
        check(#"{"key": "delivery", "match": {"value": true}}"#, true)
        check(#"{"key": "delivery", "match": {"value": false}}"#, false)
        // Types do not mix: the string "10" is not the integer 10, 1 is not true.
        check(#"{"key": "amount", "match": {"value": "10"}}"#, false)
        check(#"{"key": "delivery", "match": {"value": 1}}"#, false)
        // An array matches if any element does.
        check(#"{"key": "rating", "match": {"value": 7}}"#, true)
        check(#"{"key": "rating", "match": {"value": 8}}"#, false)
        check(#"{"key": "tags", "match": {"value": "new"}}"#, true)
        // Missing key: nothing matches.
        check(#"{"key": "nope", "match": {"value": "red"}}"#, false)
        // A stored double never equals an integer match (Qdrant matches integers only).
        #expect(!matches(#"{"must": {"key": "a", "match": {"value": 3}}}"#, #"{"a": 3.0}"#))
    }

    @Test func matchAny() {
        check(#"{"key": "color", "match": {"any": ["blue", "red"]}}"#, true)
        check(#"{"key": "color", "match": {"any": ["blue", "green"]}}"#, false)
        check(#"{"key": "rating", "match": {"any": [1, 9]}}"#, true)
        check(#"{"key": "rating", "match": {"any": [1, 2]}}"#, false)
        check(#"{"key": "amount", "match": {"any": ["10"]}}"#, false)
        check(#"{"key": "color", "match": {"any": []}}"#, false)
    }

    @Test func matchExcept() {
        check(#"{"key": "color", "match": {"except": ["blue", "green"]}}"#, true)
        check(#"{"key": "color", "match": {"except": ["red"]}}"#, false)
        check(#"{"key": "amount", "match": {"except": [10]}}"#, false)
        check(#"{"key": "amount", "match": {"except": [11]}}"#, true)
        // Any element outside the list is enough.
        check(#"{"key": "rating", "match": {"except": [3, 7]}}"#, true)
        check(#"{"key": "rating", "match": {"except": [3, 7, 9]}}"#, false)
        // A value of another type is "not in the list"; null is not; a missing key is not.
        check(#"{"key": "amount", "match": {"except": ["x"]}}"#, true)
        check(#"{"key": "packaging", "match": {"except": ["x"]}}"#, false)
        check(#"{"key": "nope", "match": {"except": ["x"]}}"#, false)
        check(#"{"key": "parts", "match": {"except": ["x"]}}"#, false)
    }

    @Test func matchText() {
        check(#"{"key": "note", "match": {"text": "llo w"}}"#, true)
        check(#"{"key": "note", "match": {"text": "wörld"}}"#, true)
        check(#"{"key": "note", "match": {"text": "world"}}"#, false)
        check(#"{"key": "note", "match": {"text": "hello wörld!"}}"#, false)
        check(#"{"key": "tags", "match": {"text": "sal"}}"#, true)
        check(#"{"key": "amount", "match": {"text": "1"}}"#, false)
    }

    @Test func range() {
        check(#"{"key": "price", "range": {"gt": 499, "lt": 500}}"#, true)
        check(#"{"key": "price", "range": {"gte": 499.9, "lte": 499.9}}"#, true)
        check(#"{"key": "price", "range": {"gt": 499.9}}"#, false)
        check(#"{"key": "amount", "range": {"gte": 10}}"#, true)
        check(#"{"key": "amount", "range": {"gt": 10}}"#, false)
        check(#"{"key": "amount", "range": {"lt": 10.5}}"#, true)
        check(#"{"key": "amount", "range": {"gt": 9.99}}"#, true)
        check(#"{"key": "amount", "range": {"lt": 9.99}}"#, false)
        // Any element of an array in range.
        check(#"{"key": "rating", "range": {"gt": 8}}"#, true)
        check(#"{"key": "rating", "range": {"gt": 9}}"#, false)
        // Strings, missing keys: no.
        check(#"{"key": "color", "range": {"gt": 0}}"#, false)
        check(#"{"key": "nope", "range": {"gt": 0}}"#, false)
        // Large integers compare exactly, not rounded through Double.
        check(#"{"key": "big", "range": {"gt": 18446744073709551614}}"#, true)
        check(#"{"key": "big", "range": {"lt": 18446744073709551615}}"#, false)
        check(#"{"key": "big", "range": {"gte": 1.8446744073709552e19}}"#, false)  // that double is 2^64
        #expect(matches(#"{"must": {"key": "a", "range": {"gt": 9007199254740992}}}"#, #"{"a": 9007199254740993}"#))
        #expect(!matches(#"{"must": {"key": "a", "range": {"gt": 9007199254740992.0}}}"#, #"{"a": 9007199254740992}"#))
        // 2^53 + 1 as a double rounds to 2^53; compared exactly it is above the double 2^53.
        #expect(matches(#"{"must": {"key": "a", "range": {"gt": 9007199254740992.0}}}"#, #"{"a": 9007199254740993}"#))
        #expect(!matches(#"{"must": {"key": "a", "range": {"lte": 9007199254740992.0}}}"#, #"{"a": 9007199254740993}"#))
        #expect(matches(#"{"must": {"key": "a", "range": {"gt": 1.8446744073709550e19}}}"#, #"{"a": 18446744073709551615}"#))
        #expect(!matches(#"{"must": {"key": "a", "range": {"gt": 1e300}}}"#, #"{"a": 9223372036854775807}"#))
        #expect(matches(#"{"must": {"key": "a", "range": {"gt": -1e300, "lt": 1e300}}}"#, #"{"a": -9223372036854775808}"#))
        #expect(matches(#"{"must": {"key": "a", "range": {"gt": -1.5, "lt": -0.5}}}"#, #"{"a": -1}"#))
        #expect(!matches(#"{"must": {"key": "a", "range": {"gt": -1.5, "lt": -1}}}"#, #"{"a": -1}"#))
    }

    @Test func valuesCount() {
        check(#"{"key": "rating", "values_count": {"gt": 3}}"#, true)
        check(#"{"key": "rating", "values_count": {"gt": 4}}"#, false)
        check(#"{"key": "rating", "values_count": {"gte": 4, "lte": 4}}"#, true)
        check(#"{"key": "rating", "values_count": {"lt": 4}}"#, false)
        check(#"{"key": "color", "values_count": {"lte": 1, "gte": 1}}"#, true)
        check(#"{"key": "parts", "values_count": {"lt": 1}}"#, true)
        check(#"{"key": "nope", "values_count": {"lt": 1}}"#, false)
    }

    @Test func isEmpty() {
        check(#"{"is_empty": {"key": "nope"}}"#, true)
        check(#"{"is_empty": {"key": "parts"}}"#, true)
        check(#"{"is_empty": {"key": "packaging"}}"#, true)
        check(#"{"is_empty": {"key": "color"}}"#, false)
        check(#"{"is_empty": {"key": "nulls"}}"#, false)
        check(#"{"is_empty": {"key": "country"}}"#, false)
        #expect(!matches(#"{"must": {"is_empty": {"key": "a"}}}"#, #"{"a": [null]}"#))
        #expect(matches(#"{"must": {"is_empty": {"key": "a[].b"}}}"#, #"{"a": [{"b": null}, {"b": []}, {"c": 1}]}"#))
        #expect(!matches(#"{"must": {"is_empty": {"key": "a[].b"}}}"#, #"{"a": [{"b": null}, {"b": 1}]}"#))
    }

    @Test func isNull() {
        check(#"{"is_null": {"key": "packaging"}}"#, true)
        check(#"{"is_null": {"key": "nulls"}}"#, true)
        check(#"{"is_null": {"key": "nope"}}"#, false)
        check(#"{"is_null": {"key": "parts"}}"#, false)
        check(#"{"is_null": {"key": "amount"}}"#, false)
        #expect(matches(#"{"must": {"is_null": {"key": "a[].b"}}}"#, #"{"a": [{"b": 1}, {"b": null}]}"#))
        #expect(!matches(#"{"must": {"is_null": {"key": "a[].b"}}}"#, #"{"a": [{"b": 1}, {"c": null}]}"#))
    }

    @Test func hasIDWithMixedKinds() throws {
        let f = filter(#"{"must": {"has_id": [1, "550e8400-e29b-41d4-a716-446655440000", 18446744073709551615]}}"#)
        let uuid = try PointID(json: .string("550E8400E29B41D4A716446655440000"))
        #expect(f.matches(id: .number(1), payload: JSONObject()))
        #expect(f.matches(id: uuid, payload: JSONObject()))
        #expect(f.matches(id: .number(.max), payload: JSONObject()))
        #expect(!f.matches(id: .number(2), payload: JSONObject()))
        #expect(!f.matches(id: .uuid(UUIDBytes(high: 0, low: 1)), payload: JSONObject()))
        let excluded = filter(#"{"must_not": {"has_id": [1, 2]}}"#)
        #expect(!excluded.matches(id: .number(2), payload: JSONObject()))
        #expect(excluded.matches(id: .number(3), payload: JSONObject()))
        #expect(!matches(#"{"must": {"has_id": []}}"#, "{}"))
    }

    @Test func nestedPathsAndArrays() {
        check(#"{"key": "country.name", "match": {"value": "Germany"}}"#, true)
        check(#"{"key": "country.cities[].name", "match": {"value": "Munich"}}"#, true)
        check(#"{"key": "country.cities[].name", "match": {"value": "Paris"}}"#, false)
        check(#"{"key": "country.cities[0].name", "match": {"value": "Berlin"}}"#, true)
        check(#"{"key": "country.cities[0].name", "match": {"value": "Munich"}}"#, false)
        check(#"{"key": "country.cities[5].name", "match": {"value": "Munich"}}"#, false)
        check(#"{"key": "country.cities[].sights", "match": {"value": "Marienplatz"}}"#, true)
        check(#"{"key": "country.cities[].population", "range": {"lt": 2}}"#, true)
        check(#"{"key": "country.cities[].population", "range": {"lt": 1}}"#, false)
        // No implicit descent through arrays (Qdrant's json path v2): write [] for that.
        check(#"{"key": "country.cities.name", "match": {"value": "Munich"}}"#, false)
        // A key step into a non-object finds nothing.
        check(#"{"key": "color.name", "match": {"value": "red"}}"#, false)
        // Quoted keys reach keys with dots in them.
        #expect(matches(#"{"must": {"key": "\"a.b\".c", "match": {"value": 1}}}"#, #"{"a.b": {"c": 1}, "a": {"b": {"c": 2}}}"#))
        #expect(!matches(#"{"must": {"key": "a.b.c", "match": {"value": 1}}}"#, #"{"a.b": {"c": 1}, "a": {"b": {"c": 2}}}"#))
        // Arrays within arrays are not flattened by match.
        #expect(!matches(#"{"must": {"key": "a", "match": {"value": 1}}}"#, #"{"a": [[1]]}"#))
        #expect(matches(#"{"must": {"key": "a[]", "match": {"value": 1}}}"#, #"{"a": [[1]]}"#))
    }

    @Test func nestedCondition() {
        let payload = #"{"diet": [{"food": "meat", "likes": true}, {"food": "leaves", "likes": false}]}"#
        // Plain array projection: both conditions can hold on different elements.
        #expect(matches(#"{"must": [{"key": "diet[].food", "match": {"value": "meat"}}, {"key": "diet[].likes", "match": {"value": false}}]}"#, payload))
        // nested: both must hold on the same element.
        let nested = #"{"must": {"nested": {"key": "diet", "filter": {"must": [{"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": %@}}]}}}}"#
        #expect(!matches(nested.replacingPlaceholder("false"), payload))
        #expect(matches(nested.replacingPlaceholder("true"), payload))
        // Given with [] already, same thing.
        #expect(matches(#"{"must": {"nested": {"key": "diet[]", "filter": {"must": {"key": "food", "match": {"value": "leaves"}}}}}}"#, payload))
        // must_not inside nested applies per element.
        #expect(matches(#"{"must": {"nested": {"key": "diet", "filter": {"must_not": {"key": "likes", "match": {"value": true}}}}}}"#, payload))
        #expect(!matches(#"{"must": {"nested": {"key": "diet", "filter": {"must_not": {"key": "likes", "match": {"value": true}}}}}}"#, #"{"diet": [{"likes": true}]}"#))
        // Not an array of objects: nothing.
        #expect(!matches(#"{"must": {"nested": {"key": "diet", "filter": {}}}}"#, #"{"diet": [1, 2]}"#))
        #expect(!matches(#"{"must": {"nested": {"key": "diet", "filter": {}}}}"#, #"{"diet": {"food": "meat"}}"#))
        // has_id inside nested never holds (Qdrant).
        #expect(!matches(#"{"must": {"nested": {"key": "diet", "filter": {"must": {"has_id": [1]}}}}}"#, payload, id: .number(1)))
    }

    @Test func shouldMustNotCombinations() {
        let red = #"{"key": "color", "match": {"value": "red"}}"#
        let blue = #"{"key": "color", "match": {"value": "blue"}}"#
        let cheap = #"{"key": "price", "range": {"lt": 100}}"#
        #expect(matches("{\"should\": [\(red), \(blue)]}", Self.shop))
        #expect(!matches("{\"should\": [\(blue), \(cheap)]}", Self.shop))
        #expect(matches("{\"should\": \(red)}", Self.shop))
        #expect(!matches("{\"must_not\": \(red)}", Self.shop))
        #expect(matches("{\"must_not\": [\(blue), \(cheap)]}", Self.shop))
        #expect(!matches("{\"must_not\": [\(blue), \(red)]}", Self.shop))
        // All clauses must hold together.
        #expect(matches("{\"must\": \(red), \"should\": [\(blue), \(red)], \"must_not\": \(cheap)}", Self.shop))
        #expect(!matches("{\"must\": \(red), \"should\": [\(blue), \(cheap)]}", Self.shop))
        #expect(!matches("{\"must\": \(red), \"must_not\": \(red)}", Self.shop))
        // Nested filters as conditions: (red or blue) and not (blue or cheap).
        #expect(matches("{\"must\": [{\"should\": [\(red), \(blue)]}, {\"must_not\": [\(blue), \(cheap)]}]}", Self.shop))
        #expect(!matches("{\"must\": [{\"should\": [\(blue), \(cheap)]}]}", Self.shop))
        #expect(matches("{\"must_not\": [{\"must\": [\(red), \(cheap)]}]}", Self.shop))
        // An empty filter as a condition holds.
        #expect(matches(#"{"must": [{}]}"#, Self.shop))
        #expect(!matches(#"{"must_not": [{}]}"#, Self.shop))
    }

    @Test func minShould() {
        let red = #"{"key": "color", "match": {"value": "red"}}"#
        let blue = #"{"key": "color", "match": {"value": "blue"}}"#
        let ten = #"{"key": "amount", "match": {"value": 10}}"#
        let conditions = "[\(red), \(blue), \(ten)]"
        #expect(matches("{\"min_should\": {\"conditions\": \(conditions), \"min_count\": 1}}", Self.shop))
        #expect(matches("{\"min_should\": {\"conditions\": \(conditions), \"min_count\": 2}}", Self.shop))
        #expect(!matches("{\"min_should\": {\"conditions\": \(conditions), \"min_count\": 3}}", Self.shop))
        #expect(!matches(#"{"min_should": {"conditions": [], "min_count": 1}}"#, Self.shop))
    }

    @Test func parsedStructure() {
        let f = filter(#"{"must": {"key": "a.b[]", "match": {"any": [1, 2]}}, "should": [], "min_should": null}"#)
        #expect(f.must == [.field(path("a.b[]"), .matchAnyInteger([1, 2]))])
        #expect(f.should.isEmpty && f.mustNot.isEmpty && f.minShould == nil)
        #expect(path("a.b[]").components == [.key("a"), .key("b"), .wildcard])
        #expect(path("\"x y\"[3].z-1").components == [.key("x y"), .index(3), .key("z-1")])
        #expect(path("\"x y\"[3].z-1").description == "\"x y\"[3].z-1")
    }
}

extension String {
    func replacingPlaceholder(_ value: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: "%@") {
            result += rest[..<range.lowerBound] + value
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
