// Bounds on one point's payload, checked before it is stored: its size as compact JSON and the
// depth of its nesting (the payload object itself is depth 1, like JSONParser's `depthMax`).

import JSON

public struct PayloadLimits: Sendable, Equatable {
    /// Largest payload as compact JSON, in bytes.
    public var encodedBytesMax: Int
    /// Deepest nesting of objects and arrays.
    public var depthMax: Int

    public static let encodedBytesMaxDefault = 1 << 20
    public static let depthMaxDefault = 64

    public init(encodedBytesMax: Int = PayloadLimits.encodedBytesMaxDefault, depthMax: Int = PayloadLimits.depthMaxDefault) {
        self.encodedBytesMax = encodedBytesMax
        self.depthMax = depthMax
    }

    /// Throws if `payload` is over a limit. Depth is checked first, so the size is never
    /// computed for a pathologically deep value.
    public func validate(_ payload: JSONObject) throws(PayloadError) {
        let depth = Self.depth(of: .object(payload), limit: depthMax)
        guard depth <= depthMax else { throw .tooDeep(limit: depthMax) }
        let bytes = JSONValue.object(payload).serialized().count
        guard bytes <= encodedBytesMax else { throw .tooLarge(bytes: bytes, limit: encodedBytesMax) }
    }

    /// The nesting depth, or `limit + 1` as soon as it is known to exceed `limit`.
    static func depth(of value: JSONValue, limit: Int) -> Int {
        var deepest = 0
        func walk(_ value: JSONValue, _ level: Int) {
            guard deepest <= limit else { return }
            switch value {
            case .object(let object):
                deepest = max(deepest, level)
                for member in object.values { walk(member, level + 1) }
            case .array(let elements):
                deepest = max(deepest, level)
                for element in elements { walk(element, level + 1) }
            case .floats:
                deepest = max(deepest, level)
            default:
                return
            }
        }
        walk(value, 1)
        return min(deepest, limit + 1)
    }
}

public enum PayloadError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLarge(bytes: Int, limit: Int)
    case tooDeep(limit: Int)

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit): return "payload is \(bytes) bytes as JSON, over the limit of \(limit)"
        case .tooDeep(let limit): return "payload is nested deeper than \(limit) levels"
        }
    }
}
