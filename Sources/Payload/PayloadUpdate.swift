// Qdrant's payload operations on one point's payload (a JSON object):
//   set        merge the new object's top-level keys in (a null value deletes that key, as in
//              Qdrant's `merge_map`); with a key path, merge into the object at that path
//              instead, creating objects on the way and replacing non-objects in the way
//   overwrite  replace the whole payload
//   delete     remove the keys at the given paths (`a.b` removes `b` inside `a`; `a[].b` removes
//              `b` from every element; `a[]` empties the array; `a[0]` at the end is ignored,
//              since removing an index is not idempotent — both as in Qdrant's `value_remove`)
//   clear      remove everything
// Key paths use PayloadPath's syntax. These run once per point per request, not per filter
// evaluation, so they favour clarity over avoiding copies.

import JSON

public enum PayloadUpdate {
    /// Merges `new` into `payload`, or into the object at `key` when given.
    public static func set(_ new: JSONObject, into payload: inout JSONObject, key: PayloadPath? = nil) {
        guard let key else {
            merge(new, into: &payload)
            return
        }
        guard case .key(let first) = key.components[0] else { preconditionFailure("a payload path starts with a key") }
        var value = payload[first] ?? .null
        set(new, into: &value, components: key.components, from: 1)
        payload.set(first, value)
    }

    /// `set` with the key path as text.
    public static func set(_ new: JSONObject, into payload: inout JSONObject, key: String) throws(PayloadPathError) {
        set(new, into: &payload, key: try PayloadPath(parsing: key))
    }

    /// Replaces the whole payload.
    public static func overwrite(_ payload: inout JSONObject, with new: JSONObject) {
        payload = new
    }

    /// Removes the values at `keys`.
    public static func deleteKeys(_ keys: [PayloadPath], from payload: inout JSONObject) {
        for key in keys {
            guard case .key(let first) = key.components[0] else { continue }
            if key.components.count == 1 {
                payload = payload.removing(first)
                continue
            }
            guard var value = payload[first] else { continue }
            delete(&value, components: key.components, from: 1)
            payload.set(first, value)
        }
    }

    /// `deleteKeys` with the paths as text; nothing changes if any path is invalid.
    public static func deleteKeys(_ keys: [String], from payload: inout JSONObject) throws(PayloadPathError) {
        var paths: [PayloadPath] = []
        for key in keys { paths.append(try PayloadPath(parsing: key)) }
        deleteKeys(paths, from: &payload)
    }

    public static func clear(_ payload: inout JSONObject) {
        payload = JSONObject()
    }

    // MARK: Internals

    private static func merge(_ new: JSONObject, into payload: inout JSONObject) {
        for (key, value) in new.members {
            if value.isNull { payload = payload.removing(key) } else { payload.set(key, value) }
        }
    }

    /// Qdrant's `value_set`: walks `components[position...]` from `value`, reshaping it as the path
    /// requires, and merges `new` into the object at the end.
    private static func set(_ new: JSONObject, into value: inout JSONValue, components: [PayloadPath.Component], from position: Int) {
        guard position < components.count else {
            var object = value.objectValue ?? JSONObject()
            merge(new, into: &object)
            value = .object(object)
            return
        }
        switch components[position] {
        case .key(let key):
            var object = value.objectValue ?? JSONObject()
            var child = object[key] ?? .null
            set(new, into: &child, components: components, from: position + 1)
            object.set(key, child)
            value = .object(object)
        case .index(let index):
            var elements = value.arrayValue ?? []
            if index < elements.count {
                set(new, into: &elements[index], components: components, from: position + 1)
            }
            value = .array(elements)
        case .wildcard:
            guard var elements = value.arrayValue else {
                value = .array([])
                return
            }
            for index in elements.indices {
                set(new, into: &elements[index], components: components, from: position + 1)
            }
            value = .array(elements)
        }
    }

    /// Qdrant's `value_remove` below the first key; `position` < `components.count`.
    private static func delete(_ value: inout JSONValue, components: [PayloadPath.Component], from position: Int) {
        let isLast = position == components.count - 1
        switch (components[position], value) {
        case (.key(let key), .object(var object)):
            if isLast {
                value = .object(object.removing(key))
            } else if var child = object[key] {
                delete(&child, components: components, from: position + 1)
                object.set(key, child)
                value = .object(object)
            }
        case (.index(let index), .array(var elements)):
            guard !isLast, index < elements.count else { return }
            delete(&elements[index], components: components, from: position + 1)
            value = .array(elements)
        case (.wildcard, .array(var elements)):
            if isLast {
                value = .array([])
                return
            }
            for index in elements.indices {
                delete(&elements[index], components: components, from: position + 1)
            }
            value = .array(elements)
        case (.wildcard, .floats):
            if isLast { value = .array([]) }
        default:
            return
        }
    }
}

extension JSONObject {
    /// A copy without `key` (JSONObject has no removal; payload updates are rare enough to rebuild).
    func removing(_ key: String) -> JSONObject {
        guard firstIndex(of: key) != nil else { return self }
        var result = JSONObject()
        for (name, value) in members where name != key { result.insertNew(name, value) }
        return result
    }
}
