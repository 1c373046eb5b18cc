// Every refusal names where in the request it happened.

import JSON
import Payload
import Testing

@Suite struct FilterErrorTests {
    struct Case: CustomStringConvertible, Sendable {
        let filter: String
        let expected: String
        var description: String { filter }
    }

    static let cases: [Case] = [
        Case(filter: #"[]"#, expected: "filter: expected an object, got an array"),
        Case(filter: #"{"must": [{"key": "a", "range": {"gt": "1"}}]}"#, expected: "filter.must[0].range.gt: expected a number, got a string"),
        Case(filter: #"{"must": 3}"#, expected: "filter.must: expected a condition or a list of conditions, got a number"),
        Case(filter: #"{"musts": []}"#, expected: #"filter.musts: unknown field "musts" (a filter has must, should, must_not and min_should)"#),
        Case(filter: #"{"should": [{"key": "a", "match": {"value": 1}}, {"foo": 1}]}"#,
             expected: #"filter.should[1].foo: unknown condition "foo" (expected key, is_empty, is_null, has_id, nested, must, should, must_not or min_should)"#),
        Case(filter: #"{"must": {"key": "", "match": {"value": 1}}}"#, expected: "filter.must.key: empty key"),
        Case(filter: #"{"must": {"key": 5, "match": {"value": 1}}}"#, expected: "filter.must.key: expected a string, got a number"),
        Case(filter: #"{"must": {"key": "a..b", "match": {"value": 1}}}"#, expected: #"filter.must.key: invalid key "a..b" at byte 2: expected a key"#),
        Case(filter: #"{"must": {"key": "a b", "match": {"value": 1}}}"#,
             expected: #"filter.must.key: invalid key "a b" at byte 0: a plain key holds only letters, digits, _ and -; quote it ("...") otherwise"#),
        Case(filter: #"{"must": {"key": "a[x]", "match": {"value": 1}}}"#, expected: #"filter.must.key: invalid key "a[x]" at byte 2: expected an array index or ]"#),
        Case(filter: #"{"must": {"key": "a", "match": {}}}"#, expected: "filter.must.match: match needs one of value, any, except, text"),
        Case(filter: #"{"must": {"key": "a", "match": {"value": 1, "any": [1]}}}"#,
             expected: "filter.must.match: match takes exactly one of value, any, except, text; got value and any"),
        Case(filter: #"{"must": {"key": "a", "match": {"valu": 1}}}"#,
             expected: #"filter.must.match.valu: unknown field "valu" (match has one of value, any, except, text)"#),
        Case(filter: #"{"must": {"key": "a", "match": {"value": 1.5}}}"#,
             expected: "filter.must.match.value: expected a string, an integer or a boolean, got a number (1.5)"),
        Case(filter: #"{"must": {"key": "a", "match": {"value": null}}}"#, expected: "filter.must.match.value: expected a string, an integer or a boolean, got null"),
        Case(filter: #"{"must": {"key": "a", "match": {"any": ["x", 1]}}}"#, expected: "filter.must.match.any[1]: expected a string like the first element, got a number (1)"),
        Case(filter: #"{"must": {"key": "a", "match": {"except": [1, "x"]}}}"#, expected: "filter.must.match.except[1]: expected an integer like the first element, got a string"),
        Case(filter: #"{"must": {"key": "a", "match": {"any": [true]}}}"#, expected: "filter.must.match.any[0]: expected a string or an integer, got a boolean"),
        Case(filter: #"{"must": {"key": "a", "match": {"text": 1}}}"#, expected: "filter.must.match.text: expected a string, got a number"),
        Case(filter: #"{"must": {"key": "a", "range": {}}}"#, expected: "filter.must.range: a range needs at least one of gt, gte, lt, lte"),
        Case(filter: #"{"must": {"key": "a", "range": {"gt": null}}}"#, expected: "filter.must.range: a range needs at least one of gt, gte, lt, lte"),
        Case(filter: #"{"must": {"key": "a", "range": {"ge": 1}}}"#, expected: #"filter.must.range.ge: unknown field "ge" (a range has gt, gte, lt, lte)"#),
        Case(filter: #"{"must": {"key": "a", "values_count": {"gt": -1}}}"#, expected: "filter.must.values_count.gt: expected a non-negative integer, got a number (-1)"),
        Case(filter: #"{"must": {"key": "a", "values_count": {}}}"#, expected: "filter.must.values_count: values_count needs at least one of gt, gte, lt, lte"),
        Case(filter: #"{"must": {"key": "a"}}"#, expected: "filter.must: a field condition needs one of match, range, values_count"),
        Case(filter: #"{"must": {"key": "a", "match": {"value": 1}, "range": {"gt": 1}}}"#,
             expected: "filter.must: a field condition takes only one of match, range, values_count; got match and range"),
        Case(filter: #"{"must": {"key": "a", "geo_radius": {}}}"#, expected: "filter.must.geo_radius: geo_radius field conditions are not supported"),
        Case(filter: #"{"must": {"is_empty": {}}}"#, expected: #"filter.must.is_empty: missing field "key""#),
        Case(filter: #"{"must": {"is_null": {"key": "a", "x": 1}}}"#, expected: #"filter.must.is_null.x: unknown field "x" (expected only key)"#),
        Case(filter: #"{"must": {"is_null": "a"}}"#, expected: "filter.must.is_null: expected an object, got a string"),
        Case(filter: #"{"must": {"has_id": [1, -2]}}"#, expected: "filter.must.has_id[1]: a point id must not be negative, got -2"),
        Case(filter: #"{"must": {"has_id": [1, "7"]}}"#, expected: #"filter.must.has_id[1]: a point id string must be a UUID, got "7""#),
        Case(filter: #"{"must": {"has_id": 1}}"#, expected: "filter.must.has_id: expected a list of point ids, got a number"),
        Case(filter: #"{"must": {"nested": {"key": "a"}}}"#, expected: #"filter.must.nested: missing field "filter""#),
        Case(filter: #"{"must": {"nested": {"key": "a", "filter": {"must": {"key": "b", "range": {"lt": "x"}}}}}}"#,
             expected: "filter.must.nested.filter.must.range.lt: expected a number, got a string"),
        Case(filter: #"{"must": {"is_empty": {"key": "a"}, "must": []}}"#, expected: #"filter.must: unexpected field "is_empty" alongside "must""#),
        Case(filter: #"{"must": [{"should": [{"must_not": {"key": "a", "match": {"value": []}}}]}]}"#,
             expected: "filter.must[0].should[0].must_not.match.value: expected a string, an integer or a boolean, got an array"),
        Case(filter: #"{"min_should": {"conditions": [], "min_count": 0}}"#, expected: "filter.min_should.min_count: expected an integer of at least 1, got a number (0)"),
        Case(filter: #"{"min_should": {"min_count": 1}}"#, expected: #"filter.min_should: missing field "conditions""#),
        Case(filter: #"{"must": {"has_vector": "v"}}"#, expected: "filter.must.has_vector: has_vector conditions are not supported"),
    ]

    @Test(arguments: cases)
    func errorNamesPath(_ testCase: Case) {
        let error = filterError(testCase.filter)
        #expect(error?.description == testCase.expected)
    }

    @Test func customRootPath() {
        do throws(FilterError) {
            _ = try Filter.parse(json(#"{"must": {"key": "a", "range": {"gt": true}}}"#), path: "body.filter")
            Issue.record("parsed")
        } catch {
            #expect(error.path == "body.filter.must.range.gt")
            #expect(error.problem == "expected a number, got a boolean")
        }
    }

    @Test func keyLimits() {
        let long = String(repeating: "a", count: PayloadPath.textBytesMax + 1)
        #expect(filterError("{\"must\": {\"is_empty\": {\"key\": \"\(long)\"}}}")?.description
            == "filter.must.is_empty.key: key of 257 bytes is longer than the limit of 256")
        let fits = String(repeating: "a", count: PayloadPath.textBytesMax)
        #expect(filterError("{\"must\": {\"is_empty\": {\"key\": \"\(fits)\"}}}") == nil)
        let deep = Array(repeating: "a", count: PayloadPath.componentsMax + 1).joined(separator: ".")
        #expect(filterError("{\"must\": {\"is_empty\": {\"key\": \"\(deep)\"}}}")?.description
            == "filter.must.is_empty.key: key has more than 32 components (33 so far)")
        let deepest = Array(repeating: "a", count: PayloadPath.componentsMax).joined(separator: ".")
        #expect(filterError("{\"must\": {\"is_empty\": {\"key\": \"\(deepest)\"}}}") == nil)
    }

    @Test func conditionCountLimit() {
        let condition = #"{"key": "a", "match": {"value": 1}}"#
        let atLimit = "{\"must\": [" + Array(repeating: condition, count: Filter.conditionsMax).joined(separator: ",") + "]}"
        #expect(filterError(atLimit) == nil)
        let over = "{\"must\": [" + Array(repeating: condition, count: Filter.conditionsMax + 1).joined(separator: ",") + "]}"
        #expect(filterError(over)?.description == "filter.must[1024]: more than 1024 conditions in one filter")
    }

    @Test func nestingLimit() {
        // depth 1 is the top level; each {"must": ...} condition adds one.
        func nested(_ depth: Int) -> String {
            var text = "{}"
            for _ in 1..<depth { text = "{\"must\": \(text)}" }
            return text
        }
        #expect(filterError(nested(Filter.depthMax)) == nil)
        let error = filterError(nested(Filter.depthMax + 1))
        #expect(error?.problem == "filters nested deeper than 32 levels")
        #expect(error?.path == "filter" + String(repeating: ".must", count: Filter.depthMax))
    }
}
