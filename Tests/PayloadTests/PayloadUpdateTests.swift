// Payload set / overwrite / delete / clear with Qdrant's semantics, and the payload limits.

import JSON
import Payload
import Testing

@Suite struct PayloadUpdateTests {
    func set(_ payload: String, _ new: String, key: String? = nil) -> JSONValue {
        var updated = object(payload)
        if let key {
            do throws(PayloadPathError) {
                try PayloadUpdate.set(object(new), into: &updated, key: key)
            } catch {
                Issue.record("\(error)")
            }
        } else {
            PayloadUpdate.set(object(new), into: &updated)
        }
        return .object(updated)
    }

    func delete(_ payload: String, _ keys: [String]) -> JSONValue {
        var updated = object(payload)
        do throws(PayloadPathError) {
            try PayloadUpdate.deleteKeys(keys, from: &updated)
        } catch {
            Issue.record("\(error)")
        }
        return .object(updated)
    }

    @Test func setMergesTopLevelKeys() {
        #expect(set(#"{"a": 1, "b": {"x": 1}}"#, #"{"b": {"y": 2}, "c": 3}"#) == json(#"{"a": 1, "b": {"y": 2}, "c": 3}"#))
        #expect(set("{}", #"{"a": [1]}"#) == json(#"{"a": [1]}"#))
        // Replacing keeps the key's position; new keys go last.
        #expect(set(#"{"a": 1, "b": 2}"#, #"{"c": 3, "a": 4}"#).jsonString == #"{"a":4,"b":2,"c":3}"#)
        // A null value deletes the key (Qdrant's merge_map).
        #expect(set(#"{"a": 1, "b": 2}"#, #"{"a": null}"#) == json(#"{"b": 2}"#))
    }

    @Test func setWithKeyMergesIntoNestedObject() {
        #expect(set(#"{"a": {"b": {"x": 1}}, "z": 0}"#, #"{"y": 2}"#, key: "a.b") == json(#"{"a": {"b": {"x": 1, "y": 2}}, "z": 0}"#))
        // Created when missing.
        #expect(set(#"{"z": 0}"#, #"{"y": 2}"#, key: "a.b") == json(#"{"z": 0, "a": {"b": {"y": 2}}}"#))
        // A non-object in the way is replaced.
        #expect(set(#"{"a": 5}"#, #"{"y": 2}"#, key: "a.b") == json(#"{"a": {"b": {"y": 2}}}"#))
        // Into every element of an array.
        #expect(set(#"{"a": [{"x": 1}, {"x": 2}, 3]}"#, #"{"y": 0}"#, key: "a[]") == json(#"{"a": [{"x": 1, "y": 0}, {"x": 2, "y": 0}, {"y": 0}]}"#))
        // Into one element; out of range changes nothing.
        #expect(set(#"{"a": [{"x": 1}, {"x": 2}]}"#, #"{"y": 0}"#, key: "a[1]") == json(#"{"a": [{"x": 1}, {"x": 2, "y": 0}]}"#))
        #expect(set(#"{"a": [{"x": 1}]}"#, #"{"y": 0}"#, key: "a[4]") == json(#"{"a": [{"x": 1}]}"#))
    }

    @Test func setWithInvalidKeyThrows() {
        var payload = object(#"{"a": 1}"#)
        do throws(PayloadPathError) {
            try PayloadUpdate.set(object(#"{"b": 1}"#), into: &payload, key: "a..b")
            Issue.record("accepted a bad key")
        } catch {
            #expect(payload == object(#"{"a": 1}"#))
        }
    }

    @Test func overwriteAndClear() {
        var payload = object(#"{"a": 1, "b": 2}"#)
        PayloadUpdate.overwrite(&payload, with: object(#"{"c": null}"#))
        #expect(payload == object(#"{"c": null}"#))
        PayloadUpdate.clear(&payload)
        #expect(payload.isEmpty)
    }

    @Test func deleteKeys() {
        let payload = #"{"a": {"b": 1, "c": 2}, "d": [{"e": 1, "f": 2}, {"e": 3}], "g": [1, 2], "h": 0}"#
        #expect(delete(payload, ["h"]) == json(#"{"a": {"b": 1, "c": 2}, "d": [{"e": 1, "f": 2}, {"e": 3}], "g": [1, 2]}"#))
        #expect(delete(payload, ["a.b", "h"]) == json(#"{"a": {"c": 2}, "d": [{"e": 1, "f": 2}, {"e": 3}], "g": [1, 2]}"#))
        #expect(delete(payload, ["d[].e"]) == json(#"{"a": {"b": 1, "c": 2}, "d": [{"f": 2}, {}], "g": [1, 2], "h": 0}"#))
        #expect(delete(payload, ["d[0].f"]) == json(#"{"a": {"b": 1, "c": 2}, "d": [{"e": 1}, {"e": 3}], "g": [1, 2], "h": 0}"#))
        #expect(delete(payload, ["g[]"]) == json(#"{"a": {"b": 1, "c": 2}, "d": [{"e": 1, "f": 2}, {"e": 3}], "g": [], "h": 0}"#))
        // Removing an array index is not supported (not idempotent); missing keys are fine.
        #expect(delete(payload, ["g[0]", "nope", "a.nope", "h.x"]) == json(payload))
        #expect(delete(payload, ["a"]) == json(#"{"d": [{"e": 1, "f": 2}, {"e": 3}], "g": [1, 2], "h": 0}"#))
    }

    @Test func limits() {
        let limits = PayloadLimits()
        #expect(limits.encodedBytesMax == 1 << 20 && limits.depthMax == 64)
        let ok = object(#"{"a": [1, {"b": "x"}]}"#)
        #expect(throws: Never.self) { try limits.validate(ok) }

        // Size: 1 MiB of string is over once quotes and the key are counted.
        var big = JSONObject()
        big.set("s", .string(String(repeating: "x", count: 1 << 20)))
        #expect(throws: PayloadError.tooLarge(bytes: (1 << 20) + 8, limit: 1 << 20)) { try limits.validate(big) }
        var fits = JSONObject()
        fits.set("s", .string(String(repeating: "x", count: (1 << 20) - 8)))
        #expect(throws: Never.self) { try limits.validate(fits) }

        // Depth: the payload object is level 1.
        func nested(_ depth: Int) -> JSONObject {
            var value = JSONValue.array([])
            for _ in 2..<depth { value = .array([value]) }
            var object = JSONObject()
            object.set("a", value)
            return object
        }
        #expect(throws: Never.self) { try limits.validate(nested(64)) }
        #expect(throws: PayloadError.tooDeep(limit: 64)) { try limits.validate(nested(65)) }
        #expect(throws: PayloadError.tooDeep(limit: 3)) { try PayloadLimits(depthMax: 3).validate(object(#"{"a": {"b": {"c": {}}}}"#)) }
        #expect(throws: Never.self) { try PayloadLimits(depthMax: 3).validate(object(#"{"a": {"b": {"c": 1}}}"#)) }
        #expect(PayloadError.tooDeep(limit: 3).description == "payload is nested deeper than 3 levels")
    }
}
