// Seeded random payloads and conditions against the boolean identities the filter language
// promises: must_not is negation, should is "or", must is "and", min_should counts, a filter
// wrapped as a condition is itself, and nested over a one-element array is the inner filter.

import Basics
import JSON
import Payload
import Testing

@Suite struct FilterPropertyTests {
    static let conditions: [String] = [
        #"{"key": "a", "match": {"value": 1}}"#,
        #"{"key": "a", "match": {"any": [2, 3]}}"#,
        #"{"key": "a", "match": {"except": [1]}}"#,
        #"{"key": "a", "range": {"gte": 1.5}}"#,
        #"{"key": "a", "values_count": {"gt": 1}}"#,
        #"{"key": "b", "match": {"value": "x"}}"#,
        #"{"key": "b", "match": {"text": "y"}}"#,
        #"{"key": "b", "match": {"except": ["x", "xy"]}}"#,
        #"{"key": "c.d", "match": {"value": true}}"#,
        #"{"key": "c.d", "range": {"lt": 2}}"#,
        #"{"key": "e[].f", "match": {"value": 2}}"#,
        #"{"key": "e[].f", "range": {"gt": 0, "lte": 2}}"#,
        #"{"is_empty": {"key": "a"}}"#,
        #"{"is_empty": {"key": "e[].f"}}"#,
        #"{"is_null": {"key": "b"}}"#,
        #"{"is_null": {"key": "c.d"}}"#,
        #"{"has_id": [1, 3, "00000000-0000-0000-0000-000000000001"]}"#,
        #"{"nested": {"key": "e", "filter": {"must": [{"key": "f", "match": {"value": 1}}, {"key": "g", "match": {"value": "x"}}]}}}"#,
    ]

    static let scalars = ["1", "2", "3", "1.5", "-1", "null", "true", "false", "\"x\"", "\"xy\"", "\"y\"", "[]", "[null]"]

    static func scalar(_ random: inout SeededRandom) -> String {
        scalars[Int(random.next() % UInt64(scalars.count))]
    }

    /// A scalar, or sometimes an array of scalars.
    static func value(_ random: inout SeededRandom) -> String {
        guard random.next() % 3 == 0 else { return scalar(&random) }
        return "[" + (0..<Int(random.next() % 4)).map { _ in scalar(&random) }.joined(separator: ",") + "]"
    }

    /// An object over the keys the conditions read, each present two times in three: `c` is
    /// usually an object with `d`, `e` usually an array of objects with `f` and `g`.
    static func randomPayload(_ random: inout SeededRandom) -> String {
        var members: [String] = []
        func maybe(_ key: String, _ make: (inout SeededRandom) -> String) {
            if random.next() % 3 != 0 { members.append("\"\(key)\": \(make(&random))") }
        }
        maybe("a") { value(&$0) }
        maybe("b") { value(&$0) }
        maybe("c") { random in random.next() % 4 == 0 ? value(&random) : "{\"d\": \(value(&random))}" }
        maybe("e") { random in
            if random.next() % 4 == 0 { return value(&random) }
            let elements = (0..<Int(random.next() % 4)).map { _ in
                var fields: [String] = []
                if random.next() % 3 != 0 { fields.append("\"f\": \(value(&random))") }
                if random.next() % 3 != 0 { fields.append("\"g\": \(value(&random))") }
                return random.next() % 6 == 0 ? scalar(&random) : "{" + fields.joined(separator: ",") + "}"
            }
            return "[" + elements.joined(separator: ",") + "]"
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    @Test func booleanIdentitiesHold() {
        var random = SeededRandom(seed: 20_261_127)
        let parsed = Self.conditions.map { filter("{\"must\": \($0)}") }
        var matchedSome = Set<Int>()
        var missedSome = Set<Int>()
        for _ in 0..<400 {
            let payload = object(Self.randomPayload(&random))
            let id = PointID.number(random.next() % 4)
            let pick = { (random: inout SeededRandom) in Int(random.next() % UInt64(Self.conditions.count)) }
            let (i, j, k) = (pick(&random), pick(&random), pick(&random))
            let (a, b, c) = (Self.conditions[i], Self.conditions[j], Self.conditions[k])
            let (x, y, z) = (parsed[i].matches(id: id, payload: payload), parsed[j].matches(id: id, payload: payload),
                             parsed[k].matches(id: id, payload: payload))
            for (index, condition) in parsed.enumerated() {
                if condition.matches(id: id, payload: payload) { matchedSome.insert(index) } else { missedSome.insert(index) }
            }
            func check(_ text: String, _ expected: Bool) {
                #expect(filter(text).matches(id: id, payload: payload) == expected, "\(text) on \(JSONValue.object(payload).jsonString) id \(id)")
            }
            check("{\"must_not\": \(a)}", !x)
            check("{\"should\": [\(a), \(b)]}", x || y)
            check("{\"must\": [\(a), \(b)]}", x && y)
            check("{\"must\": \(a), \"must_not\": \(b)}", x && !y)
            check("{\"min_should\": {\"conditions\": [\(a), \(b), \(c)], \"min_count\": 2}}", [x, y, z].filter { $0 }.count >= 2)
            check("{\"must\": [{\"should\": [\(a), \(b)]}, {\"must_not\": \(c)}]}", (x || y) && !z)
            check("{\"must_not\": [{\"must\": [\(a), \(b)]}]}", !(x && y))
            // A payload condition reads the same inside nested over [payload] (has_id aside).
            if !a.contains("has_id") {
                var wrapper = JSONObject()
                wrapper.set("wrap", .array([.object(payload)]))
                #expect(filter("{\"must\": {\"nested\": {\"key\": \"wrap\", \"filter\": {\"must\": \(a)}}}}").matches(id: id, payload: wrapper) == x, "\(a)")
            }
        }
        // The random payloads exercise both outcomes of every condition.
        #expect(matchedSome.count == Self.conditions.count, "never matched: \(Set(0..<Self.conditions.count).subtracting(matchedSome).sorted())")
        #expect(missedSome.count == Self.conditions.count, "never missed: \(Set(0..<Self.conditions.count).subtracting(missedSome).sorted())")
    }
}
