// `KVModel`'s sequential semantics, step by step (including unknown outputs, which must take the
// effect an operation would have); and a second, unpartitioned model — a counter whose increments
// return the new value — to show the checker is not tied to the key-value store.

import Linearizability
import Testing

@Suite struct ModelTests {
    let model = KVModel()

    @Test func putsAnswerOkAndSetTheValue() {
        #expect(model.step(nil, .put(key: "x", value: "a"), .ok) == .some("a"))
        #expect(model.step("b", .put(key: "x", value: "a"), nil) == .some("a"))
        #expect(model.step("b", .put(key: "x", value: "a"), .value("a")) == .none)
    }

    @Test func getsAnswerTheValueAndChangeNothing() {
        #expect(model.step("a", .get(key: "x"), .value("a")) == .some("a"))
        #expect(model.step(nil, .get(key: "x"), .value(nil)) == .some(nil))
        #expect(model.step(nil, .get(key: "x"), .value("a")) == .none)
        #expect(model.step("a", .get(key: "x"), .value(nil)) == .none)
        #expect(model.step("a", .get(key: "x"), nil) == .some("a"))
        #expect(model.isReadOnly(.get(key: "x"), output: nil) && model.isReadOnly(.get(key: "x"), output: .value("a")))
    }

    @Test func casSwapsExactlyWhenTheValueMatches() {
        let swapToB = KVModel.Input.cas(key: "x", expected: "a", new: "b")
        #expect(model.step("a", swapToB, .casResult(true)) == .some("b"))
        #expect(model.step("a", swapToB, .casResult(false)) == .none)
        #expect(model.step("c", swapToB, .casResult(false)) == .some("c"))
        #expect(model.step("c", swapToB, .casResult(true)) == .none)
        #expect(model.step(nil, swapToB, .casResult(false)) == .some(nil))
        #expect(model.step("a", swapToB, nil) == .some("b"))
        #expect(model.step("c", swapToB, nil) == .some("c"))
        let createB = KVModel.Input.cas(key: "x", expected: nil, new: "b")
        #expect(model.step(nil, createB, .casResult(true)) == .some("b"))
        #expect(model.step("a", createB, .casResult(false)) == .some("a"))
        #expect(model.step("a", createB, .casResult(true)) == .none)
        // Read-only exactly when it cannot have swapped.
        #expect(model.isReadOnly(createB, output: .casResult(false)))
        #expect(!model.isReadOnly(createB, output: .casResult(true)) && !model.isReadOnly(createB, output: nil))
        #expect(!model.isReadOnly(.put(key: "x", value: "a"), output: .ok))
    }

    @Test func operationsArePartitionedByKeyAndDescribed() {
        #expect(model.partitionKey(for: .cas(key: "k", expected: nil, new: "v")) == "k")
        #expect(model.describe(input: .put(key: "k", value: "v"), output: .ok) == #"put("k", "v") → ok"#)
        #expect(model.describe(input: .get(key: "k"), output: .value(nil)) == #"get("k") → absent"#)
        #expect(model.describe(input: .cas(key: "k", expected: nil, new: "v"), output: nil) == #"cas("k", absent → "v") → ?"#)
        #expect(model.describe(input: .cas(key: "k", expected: "u", new: "v"), output: .casResult(false))
                == #"cas("k", "u" → "v") → not swapped"#)
        #expect(model.describe(state: "v") == #""v""#)
    }

    /// A counter: `increment` returns the new value, `read` the current one. One partition.
    struct CounterModel: LinearizabilityModel {
        enum Input { case increment, read }
        var initialState: Int { 0 }
        func partitionKey(for input: Input) -> Int { 0 }
        func step(_ state: Int, _ input: Input, _ output: Int?) -> Int? {
            switch input {
            case .increment: output == nil || output == state + 1 ? state + 1 : nil
            case .read: output == nil || output == state ? state : nil
            }
        }
    }

    @Test func aCounterModelIsCheckedToo() throws {
        typealias Operation = HistoryOperation<CounterModel.Input, Int>
        let checker = LinearizabilityChecker(model: CounterModel())
        let concurrent: [Operation] = [
            .completed(clientID: 1, .increment, 2, invoked: 0, returned: 10),
            .completed(clientID: 2, .increment, 1, invoked: 1, returned: 9),
            .unknown(clientID: 3, .increment, invoked: 2),
            .completed(clientID: 4, .read, 3, invoked: 11, returned: 12),
        ]
        #expect(checker.check(concurrent).isLinearizable)
        let duplicate: [Operation] = [
            .completed(clientID: 1, .increment, 1, invoked: 0, returned: 10),
            .completed(clientID: 2, .increment, 1, invoked: 1, returned: 9),
        ]
        let failure = try #require(checker.check(duplicate).failure)
        #expect(failure.partitionKey == 0)
        #expect(failure.explanation.contains("increment → 1"))
    }
}
