// Helpers: JSON literals from text (test inputs are trusted, so a parse failure traps).

import JSON
import Payload

func json(_ text: String) -> JSONValue {
    do throws(JSONError) {
        return try JSONParser.parse(text)
    } catch {
        fatalError("bad test JSON \(text): \(error)")
    }
}

func object(_ text: String) -> JSONObject {
    guard case .object(let object) = json(text) else { fatalError("not an object: \(text)") }
    return object
}

func filter(_ text: String) -> Filter {
    do throws(FilterError) {
        return try Filter.parse(json(text))
    } catch {
        fatalError("bad test filter \(text): \(error)")
    }
}

/// The parse error of a filter, or nil if it parses.
func filterError(_ text: String) -> FilterError? {
    do throws(FilterError) {
        _ = try Filter.parse(json(text))
        return nil
    } catch {
        return error
    }
}

func pointIDError(_ value: JSONValue) -> PointIDError? {
    do throws(PointIDError) {
        _ = try PointID(json: value)
        return nil
    } catch {
        return error
    }
}

func path(_ text: String) -> PayloadPath {
    do throws(PayloadPathError) {
        return try PayloadPath(parsing: text)
    } catch {
        fatalError("bad test path \(text): \(error)")
    }
}

/// Whether `filterText` matches the payload `payloadText` for point `id` (default 1).
func matches(_ filterText: String, _ payloadText: String, id: PointID = .number(1)) -> Bool {
    filter(filterText).matches(id: id, payload: object(payloadText))
}
