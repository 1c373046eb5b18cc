// Shorthand for key-value histories in tests, a generator of random histories that are
// linearizable by construction, and a brute-force oracle to compare the checker with.
//
// `put("x", "a", 0...10)` is a put of "a" to key x invoked at 0 that returned at 10;
// `put("x", "a", from: 5)` is one invoked at 5 whose client timed out.

import Basics
import Linearizability
import Testing

typealias KVOperation = HistoryOperation<KVModel.Input, KVModel.Output>

let kvChecker = LinearizabilityChecker(model: KVModel())

func put(_ key: String, _ value: String, _ interval: ClosedRange<Int>, client: Int = 0) -> KVOperation {
    .completed(clientID: client, .put(key: key, value: value), .ok, invoked: interval.lowerBound, returned: interval.upperBound)
}

func put(_ key: String, _ value: String, from invocation: Int, client: Int = 0) -> KVOperation {
    .unknown(clientID: client, .put(key: key, value: value), invoked: invocation)
}

func get(_ key: String, _ value: String?, _ interval: ClosedRange<Int>, client: Int = 0) -> KVOperation {
    .completed(clientID: client, .get(key: key), .value(value), invoked: interval.lowerBound, returned: interval.upperBound)
}

func get(_ key: String, from invocation: Int, client: Int = 0) -> KVOperation {
    .unknown(clientID: client, .get(key: key), invoked: invocation)
}

func cas(_ key: String, _ expected: String?, _ new: String, swapped: Bool, _ interval: ClosedRange<Int>,
         client: Int = 0) -> KVOperation {
    .completed(clientID: client, .cas(key: key, expected: expected, new: new), .casResult(swapped),
               invoked: interval.lowerBound, returned: interval.upperBound)
}

func cas(_ key: String, _ expected: String?, _ new: String, from invocation: Int, client: Int = 0) -> KVOperation {
    .unknown(clientID: client, .cas(key: key, expected: expected, new: new), invoked: invocation)
}

/// A named history for parameterised tests.
struct NamedHistory: Sendable, CustomTestStringConvertible {
    var name: String
    var operations: [KVOperation]
    /// For histories that are not linearizable: the key that fails.
    var failingKey: String?

    var testDescription: String { name }
}

enum RandomKVHistory {
    /// A history that is linearizable by construction: operations are performed one at a time on
    /// a dictionary, at times 10, 20, 30, …, and each one's interval is then widened around its
    /// instant by up to `widening` ticks on each side, so any intervals may overlap but each still
    /// contains the instant the operation took effect. A share of writes time out: those either
    /// took effect at their instant or never did. Clients are assigned round-robin (the checker
    /// does not require a client's operations to be sequential).
    static func generate(_ random: inout SeededRandom, operationCount: Int, keys: [String], valuesPerKey: Int,
                         widening: Int, unknownChance: Double, clientCount: Int = 8) -> [KVOperation] {
        var store: [String: String] = [:]
        var history: [KVOperation] = []
        history.reserveCapacity(operationCount)
        for index in 0..<operationCount {
            let instant = 10 * (index + 1)
            let key = keys[Int.random(in: 0..<keys.count, using: &random)]
            let value = "v\(Int.random(in: 0..<valuesPerKey, using: &random))"
            let current = store[key]
            let input: KVModel.Input
            let output: KVModel.Output
            var effect: String?? = .none  // .some(x): the key's value becomes x
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                input = .get(key: key)
                output = .value(current)
            case 4..<7:
                input = .put(key: key, value: value)
                output = .ok
                effect = .some(value)
            default:
                let expected = random.chance(0.5) ? current : (random.chance(0.5) ? nil : "v\(Int.random(in: 0..<valuesPerKey, using: &random))")
                input = .cas(key: key, expected: expected, new: value)
                output = .casResult(current == expected)
                if current == expected { effect = .some(value) }
            }
            let invocation = instant - Int.random(in: 0...widening, using: &random)
            let response = instant + Int.random(in: 0...widening, using: &random)
            let client = index % clientCount
            if case .get = input {
                history.append(.completed(clientID: client, input, output, invoked: invocation, returned: response))
            } else if random.chance(unknownChance) {
                history.append(.unknown(clientID: client, input, invoked: invocation))
                if random.chance(0.5), case .some(let value) = effect { store[key] = value }
            } else {
                history.append(.completed(clientID: client, input, output, invoked: invocation, returned: response))
                if case .some(let value) = effect { store[key] = value }
            }
        }
        return history
    }
}

/// Decides linearizability by trying every order that respects real time, on the whole history
/// at once (no partitioning, no memoisation) and with its own statement of the key-value
/// semantics, so that it shares nothing with the checker. Exponential: small histories only.
enum BruteForceOracle {
    static func isLinearizable(_ history: [KVOperation]) -> Bool {
        var taken = [Bool](repeating: false, count: history.count)
        let completed = history.filter { $0.responseTime != nil }.count
        return search(history, &taken, store: [:], remainingCompleted: completed)
    }

    private static func search(_ history: [KVOperation], _ taken: inout [Bool], store: [String: String],
                               remainingCompleted: Int) -> Bool {
        if remainingCompleted == 0 { return true }
        // An operation can come next unless some completed operation still to come returned
        // strictly before it was invoked.
        let deadline = history.indices.filter { !taken[$0] }.compactMap { history[$0].responseTime }.min()!
        for index in history.indices where !taken[index] && history[index].invocationTime <= deadline {
            let operation = history[index]
            var next = store
            switch operation.input {
            case .put(let key, let value):
                if let output = operation.output, output != .ok { continue }
                next[key] = value
            case .get(let key):
                if let output = operation.output, output != .value(store[key]) { continue }
            case .cas(let key, let expected, let new):
                let swaps = store[key] == expected
                if let output = operation.output, output != .casResult(swaps) { continue }
                if swaps { next[key] = new }
            }
            taken[index] = true
            let found = search(history, &taken, store: next,
                               remainingCompleted: remainingCompleted - (operation.responseTime == nil ? 0 : 1))
            taken[index] = false
            if found { return true }
        }
        return false
    }
}
