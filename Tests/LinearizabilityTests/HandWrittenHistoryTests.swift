// Small key-value histories whose verdict is known by hand: the checker accepts the linearizable
// ones and rejects the others, naming the failing key, and every failure it reports is itself a
// history the checker rejects (and the brute-force oracle agrees with both verdicts).
//
// Times: `0...10` is invoked at 0 and returned at 10; `from: 5` was invoked at 5 and timed out.

import Linearizability
import Testing

@Suite struct HandWrittenHistoryTests {
    static let linearizable: [NamedHistory] = [
        NamedHistory(name: "empty history", operations: []),
        NamedHistory(name: "read of an absent key", operations: [get("x", nil, 0...1)]),
        NamedHistory(name: "sequential put then get", operations: [
            put("x", "a", 0...1), get("x", "a", 2...3),
        ]),
        NamedHistory(name: "read overlapping a put sees the new value before the put returns", operations: [
            put("x", "a", 0...10, client: 1), get("x", "a", 2...3, client: 2), get("x", "a", 4...5, client: 2),
        ]),
        NamedHistory(name: "reads during a put may see old then new", operations: [
            put("x", "a", 0...1, client: 1),
            put("x", "b", 2...20, client: 1),
            get("x", "a", 3...4, client: 2), get("x", "b", 5...6, client: 3), get("x", "b", 7...8, client: 2),
            get("x", "b", 21...22, client: 4),
        ]),
        NamedHistory(name: "concurrent puts: reads fix one order, not the invocation order", operations: [
            put("x", "a", 0...10, client: 1), put("x", "b", 1...11, client: 2),
            get("x", "b", 2...3, client: 3), get("x", "a", 4...5, client: 3), get("x", "a", 12...13, client: 3),
        ]),
        NamedHistory(name: "cas chain", operations: [
            put("x", "0", 0...1),
            cas("x", "0", "1", swapped: true, 2...3),
            cas("x", "1", "2", swapped: true, 4...5),
            cas("x", "0", "3", swapped: false, 6...7),
            get("x", "2", 8...9),
        ]),
        NamedHistory(name: "concurrent cas from the same value: one wins", operations: [
            put("x", "0", 0...1),
            cas("x", "0", "1", swapped: false, 2...10, client: 1),
            cas("x", "0", "2", swapped: true, 3...9, client: 2),
            cas("x", nil, "3", swapped: false, 4...8, client: 3),
            get("x", "2", 11...12),
        ]),
        NamedHistory(name: "cas on an absent key", operations: [
            cas("x", nil, "a", swapped: true, 0...1), cas("x", nil, "b", swapped: false, 2...3), get("x", "a", 4...5),
        ]),
        NamedHistory(name: "timed-out put that took effect", operations: [
            put("x", "a", from: 0), get("x", "a", 5...6), get("x", "a", 7...8),
        ]),
        NamedHistory(name: "timed-out put that never took effect", operations: [
            put("x", "a", 0...1), put("x", "b", from: 2), get("x", "a", 5...6), get("x", "a", 100...101),
        ]),
        NamedHistory(name: "timed-out put that took effect long after it was sent", operations: [
            put("x", "a", 0...1), put("x", "b", from: 2), get("x", "a", 3...4), get("x", "a", 50...51),
            get("x", "b", 60...61),
        ]),
        NamedHistory(name: "timed-out puts that land in the opposite order of their invocations", operations: [
            // The search first tries the earlier put first, and fails; the configuration with
            // only the later one linearized must not be taken for a failed one.
            put("x", "b", from: 0, client: 1), put("x", "a", from: 1, client: 2),
            get("x", "a", 2...3, client: 3), get("x", "b", 4...5, client: 3),
        ]),
        NamedHistory(name: "timed-out put retried; the first attempt lands after another client's put", operations: [
            put("x", "v", from: 0, client: 1),
            put("x", "w", 1...2, client: 2),
            get("x", "v", 3...4, client: 3),
            put("x", "v", 10...11, client: 1),
            get("x", "v", 12...13, client: 3),
        ]),
        NamedHistory(name: "timed-out cas that swapped and one that did not", operations: [
            put("x", "0", 0...1),
            cas("x", "0", "1", from: 2),
            cas("x", "0", "2", from: 3),
            get("x", "1", 10...11),
        ]),
        NamedHistory(name: "timed-out reads are ignored", operations: [
            put("x", "a", 0...1), get("x", from: 2), get("x", "a", 3...4),
        ]),
        NamedHistory(name: "touching intervals are concurrent", operations: [
            put("x", "a", 0...5), get("x", nil, 5...6),
        ]),
        NamedHistory(name: "several keys, each linearizable", operations: [
            put("x", "a", 0...10), put("y", "b", 0...10), get("x", "a", 1...2), get("y", nil, 1...2),
            get("y", "b", 3...4), cas("x", "a", "c", swapped: true, 11...12), get("x", "c", 13...14),
            get("z", nil, 13...14),
        ]),
    ]

    static let notLinearizable: [NamedHistory] = [
        NamedHistory(name: "stale read after a completed write", operations: [
            put("x", "a", 0...1), put("x", "b", 2...3), get("x", "a", 4...5),
        ], failingKey: "x"),
        NamedHistory(name: "absent read after a completed put", operations: [
            put("x", "a", 0...1), get("x", nil, 2...3),
        ], failingKey: "x"),
        NamedHistory(name: "two readers see concurrent writes in opposite orders", operations: [
            put("x", "a", 0...100, client: 1), put("x", "b", 0...100, client: 2),
            get("x", "a", 1...2, client: 3), get("x", "b", 3...4, client: 3),
            get("x", "b", 1...2, client: 4), get("x", "a", 3...4, client: 4),
        ], failingKey: "x"),
        NamedHistory(name: "read of a value never written", operations: [
            put("x", "a", 0...1), put("x", "b", 2...10), get("x", "c", 3...4),
        ], failingKey: "x"),
        NamedHistory(name: "cas succeeds twice from the same expected value", operations: [
            put("x", "0", 0...1),
            cas("x", "0", "1", swapped: true, 2...5, client: 1),
            cas("x", "0", "2", swapped: true, 3...6, client: 2),
        ], failingKey: "x"),
        NamedHistory(name: "cas fails though the value matched", operations: [
            put("x", "0", 0...1), cas("x", "0", "1", swapped: false, 2...3),
        ], failingKey: "x"),
        NamedHistory(name: "read sees a put invoked after the read returned", operations: [
            get("x", "a", 0...1), put("x", "a", 2...3),
        ], failingKey: "x"),
        NamedHistory(name: "read sees a timed-out put invoked after the read returned", operations: [
            get("x", "a", 0...1), put("x", "a", from: 2),
        ], failingKey: "x"),
        NamedHistory(name: "timed-out put observed, then unobserved", operations: [
            put("x", "a", 0...1), put("x", "b", from: 2), get("x", "b", 3...4), get("x", "a", 5...6),
        ], failingKey: "x"),
        NamedHistory(name: "output of the wrong kind", operations: [
            .completed(clientID: 0, .get(key: "x"), .ok, invoked: 0, returned: 1),
        ], failingKey: "x"),
        NamedHistory(name: "one bad key among good ones", operations: [
            put("a", "1", 0...1), put("b", "1", 0...1), put("c", "1", 0...1), put("d", "1", 0...1),
            get("a", "1", 2...3), get("b", "1", 2...3), get("c", nil, 2...3), get("d", "1", 2...3),
        ], failingKey: "c"),
        NamedHistory(name: "two bad keys: the first in key order is reported", operations: [
            get("n", "1", 0...1), get("m", "1", 0...1), get("a", nil, 0...1),
        ], failingKey: "m"),
    ]

    @Test(arguments: linearizable)
    func accepts(_ history: NamedHistory) {
        #expect(BruteForceOracle.isLinearizable(history.operations), "the oracle disagrees: the test case is wrong")
        let result = kvChecker.check(history.operations)
        #expect(result.isLinearizable, "\(result.failure?.explanation ?? "unknown")")
    }

    @Test(arguments: notLinearizable)
    func rejects(_ history: NamedHistory) throws {
        #expect(!BruteForceOracle.isLinearizable(history.operations), "the oracle disagrees: the test case is wrong")
        let failure = try #require(kvChecker.check(history.operations).failure)
        #expect(failure.partitionKey == history.failingKey)
        #expect(failure.explanation.hasPrefix("not linearizable: partition \"\(history.failingKey!)\""))
        // The reported sub-history is a failing history in its own right, taken from the input.
        #expect(kvChecker.check(failure.operations).failure != nil, "\(failure.explanation)")
        #expect(failure.operations.count <= failure.partitionOperationCount)
        for (operation, index) in zip(failure.operations, failure.historyIndices) {
            #expect(operation.input == history.operations[index].input)
        }
    }
}
