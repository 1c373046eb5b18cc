// Fuzz target: the Payload module's parsers of untrusted input. Every input that is JSON must
// either parse as a filter or give a FilterError whose path starts at the root; a parsed filter
// must evaluate (against the input itself when it is an object, and a fixed payload) without
// trapping. The same value must parse as a point id or give a PointIDError, and a parsed id must
// round-trip through JSON and its binary key. The raw bytes are also tried as a binary key
// (decoded keys re-encode to the same bytes), as a payload path, and as delete/set key paths.

import FuzzSupport
import JSON
import Payload

let fixedPayload: JSONObject = {
    guard case .object(let object) = try? JSONParser.parse(#"{"a": [1, {"b": null}], "c": {"d": "x"}, "e": 1.5}"#) else {
        preconditionFailure("fixed payload")
    }
    return object
}()

func check(_ data: UnsafeRawBufferPointer) {
    let bytes = [UInt8](data)

    // Binary keys.
    do throws(PointIDKeyError) {
        let id = try PointID(encodedKey: bytes)
        precondition(id.encodedKey == bytes, "key does not re-encode to its bytes")
    } catch {
        precondition(!error.description.isEmpty)
    }

    // Paths, and payload updates through them.
    let text = String(decoding: bytes, as: UTF8.self)
    do throws(PayloadPathError) {
        let path = try PayloadPath(parsing: text)
        precondition(path.components.count <= PayloadPath.componentsMax)
        let again = try PayloadPath(parsing: path.description)
        precondition(again == path, "path description does not re-parse to the same path")
        var payload = fixedPayload
        PayloadUpdate.set(fixedPayload, into: &payload, key: path)
        PayloadUpdate.deleteKeys([path], from: &payload)
    } catch {
        precondition(!error.description.isEmpty)
    }

    guard let value = try? JSONParser.parse(bytes) else { return }

    do throws(FilterError) {
        let filter = try Filter.parse(value)
        _ = filter.matches(id: .number(1), payload: fixedPayload)
        if case .object(let object) = value {
            _ = filter.matches(id: .number(1), payload: object)
        }
    } catch {
        precondition(error.path.hasPrefix("filter"), "error path \(error.path) not rooted at filter")
        precondition(!error.problem.isEmpty)
    }

    do throws(PointIDError) {
        let id = try PointID(json: value)
        precondition((try? PointID(json: id.json)) == id, "id does not round-trip through JSON")
        precondition((try? PointID(encodedKey: id.encodedKey)) == id, "id does not round-trip through its key")
    } catch {
        precondition(!error.description.isEmpty)
    }

    if case .object(let object) = value {
        _ = try? PayloadLimits(encodedBytesMax: 4096, depthMax: 8).validate(object)
        var payload = object
        PayloadUpdate.set(fixedPayload, into: &payload)
    }
}

runFuzzer(check)
