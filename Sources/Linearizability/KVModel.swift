// The sequential specification of a key-value store with put, get and compare-and-set, the
// model the Raft simulator's histories are checked against.
//
// Partitioned by key: operations on different keys are independent, so each key is checked on
// its own and a partition's state is just that key's value (nil while absent).

public struct KVModel: LinearizabilityModel, Sendable {
    public enum Input: Hashable, Sendable {
        case put(key: String, value: String)
        case get(key: String)
        /// Sets `new` if the current value equals `expected`; `expected == nil` means "the key is
        /// absent".
        case cas(key: String, expected: String?, new: String)

        public var key: String {
            switch self {
            case .put(let key, _), .get(let key), .cas(let key, _, _): key
            }
        }
    }

    public enum Output: Hashable, Sendable {
        /// The answer to a put.
        case ok
        /// The answer to a get: the value, or nil if the key is absent.
        case value(String?)
        /// The answer to a compare-and-set: whether it swapped.
        case casResult(Bool)
    }

    public typealias State = String?

    public init() {}

    public var initialState: String? { nil }

    public func partitionKey(for input: Input) -> String { input.key }

    public func isReadOnly(_ input: Input, output: Output?) -> Bool {
        switch input {
        case .get: true
        case .put: false
        case .cas: output == .casResult(false)
        }
    }

    /// An output of the wrong kind for its input (a put answered `.value`) is impossible in every
    /// state, so it shows up as a violation rather than being ignored.
    public func step(_ state: String?, _ input: Input, _ output: Output?) -> String?? {
        switch input {
        case .put(_, let value):
            guard output == nil || output == .ok else { return .none }
            return .some(value)
        case .get:
            guard output == nil || output == .value(state) else { return .none }
            return .some(state)
        case .cas(_, let expected, let new):
            let swaps = state == expected
            guard output == nil || output == .casResult(swaps) else { return .none }
            return .some(swaps ? new : state)
        }
    }

    public func describe(input: Input, output: Output?) -> String {
        let call = switch input {
        case .put(let key, let value): "put(\(quoted(key)), \(quoted(value)))"
        case .get(let key): "get(\(quoted(key)))"
        case .cas(let key, let expected, let new): "cas(\(quoted(key)), \(quoted(expected)) → \(quoted(new)))"
        }
        let result = switch output {
        case nil: "?"
        case .ok: "ok"
        case .value(let value): quoted(value)
        case .casResult(let swapped): swapped ? "swapped" : "not swapped"
        }
        return "\(call) → \(result)"
    }

    public func describe(state: String?) -> String { quoted(state) }

    private func quoted(_ value: String?) -> String {
        value.map { "\"\($0)\"" } ?? "absent"
    }
}
