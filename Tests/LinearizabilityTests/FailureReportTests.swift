// What a failure report holds: the earliest failing cut of the failing partition (or the whole
// partition when shrinking is off), the longest linearizable prefix, and a text explanation whose
// exact wording is pinned here so that a change to it shows up as a reviewed diff. Also the step
// limit: a search cut short yields `.unknown`, never `.linearizable`, and a partition that does
// fail is still reported when another one is undecided.

import Linearizability
import Testing

@Suite struct FailureReportTests {
    /// Key x is fine until a stale read returns at 41; more operations follow. Key y is fine.
    static let history: [KVOperation] = [
        put("x", "a", 0...10, client: 1),           // #0
        put("y", "a", 0...10, client: 2),           // #1
        put("x", "b", 5...15, client: 2),           // #2
        get("x", "b", 20...21, client: 3),          // #3
        put("x", "c", from: 22, client: 1),         // #4  timed out
        cas("x", "b", "d", swapped: true, 30...38, client: 2),  // #5
        get("x", "b", 39...41, client: 3),          // #6  stale: x is "c" or "d" by 38
        put("x", "e", 50...60, client: 1),          // #7  after the cut
        get("x", "e", 61...62, client: 3),          // #8  after the cut
        put("x", "f", 40...55, client: 4),          // #9  running at the cut: unknown there
    ]

    @Test func theReportIsCutAtTheEarliestFailingResponse() throws {
        let failure = try #require(kvChecker.check(Self.history).failure)
        #expect(failure.partitionKey == "x")
        #expect(failure.cutTime == 41)
        #expect(failure.partitionOperationCount == 9)
        #expect(failure.historyIndices == [0, 2, 3, 4, 5, 6, 9])
        #expect(failure.operations.map(\.input) == [0, 2, 3, 4, 5, 6, 9].map { Self.history[$0].input })
        #expect(failure.operations.last?.outcome == .unknown)
        #expect(failure.longestPrefix.map { failure.historyIndices[$0] } == [0, 2, 3, 5, 4, 9])
    }

    @Test func withoutShrinkingTheWholePartitionIsReported() throws {
        let checker = LinearizabilityChecker(model: KVModel(), shrinksFailures: false)
        let failure = try #require(checker.check(Self.history).failure)
        #expect(failure.cutTime == nil)
        #expect(failure.historyIndices == [0, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(failure.operations == [0, 2, 3, 4, 5, 6, 7, 8, 9].map { Self.history[$0] })
        #expect(failure.explanation.contains("\nits 9 operations:\n"))
    }

    @Test func explanationText() throws {
        let failure = try #require(kvChecker.check(Self.history).failure)
        #expect(failure.description == """
            not linearizable: partition "x"
            its operations invoked by time 41 (7 of 9) already fail:
              #0  client 1  [0, 10]   put("x", "a") → ok
              #2  client 2  [5, 15]   put("x", "b") → ok
              #3  client 3  [20, 21]  get("x") → "b"
              #4  client 1  [22, ∞)   put("x", "c") → ?
              #5  client 2  [30, 38]  cas("x", "b" → "d") → swapped
              #6  client 3  [39, 41]  get("x") → "b"
              #9  client 4  [40, 55]  put("x", "f") → ok  (still running at 41: counts as unknown)
            longest linearizable prefix found (6 operations), from state absent:
              1. #0  put("x", "a") → ok             state "a"
              2. #2  put("x", "b") → ok             state "b"
              3. #3  get("x") → "b"                 state "b"
              4. #5  cas("x", "b" → "d") → swapped  state "d"
              5. #4  put("x", "c") → ?              state "c"
              6. #9  put("x", "f") → ?              state "f"
            after it, nothing can take effect next:
              #6  get("x") → "b": impossible in state "f"
            yet one of these must come next, since #6 responded at time 41.
            """)

        // Nothing can even come first; the put after it is cut off.
        let history = [cas("x", "a", "b", swapped: true, 0...1, client: 1), put("x", "a", 2...3, client: 2)]
        let text = try #require(kvChecker.check(history).failure).description
        #expect(text == """
            not linearizable: partition "x"
            its operations invoked by time 1 (1 of 2) already fail:
              #0  client 1  [0, 1]  cas("x", "a" → "b") → swapped
            no operation can take effect first, in state absent:
              #0  cas("x", "a" → "b") → swapped: impossible in state absent
            yet one of these must come next, since #0 responded at time 1.
            """)
    }

    @Test func aStepLimitGivesUnknownNeverLinearizable() {
        let linearizable = HandWrittenHistoryTests.linearizable.first { $0.name.hasPrefix("concurrent puts") }!.operations
        let limited = LinearizabilityChecker(model: KVModel(), partitionStepsMax: 2)
        guard case .unknown(let keys) = limited.check(linearizable) else {
            Issue.record("expected .unknown")
            return
        }
        #expect(keys == ["x"])
        guard case .unknown = limited.check(Self.history) else {
            Issue.record("expected .unknown")
            return
        }
        // Enough steps: the same verdicts as without a limit.
        let enough = LinearizabilityChecker(model: KVModel(), partitionStepsMax: 1_000)
        #expect(enough.check(linearizable).isLinearizable)
        #expect(enough.check(Self.history).failure?.partitionKey == "x")
    }

    @Test func aFailingPartitionIsReportedEvenIfAnEarlierOneIsUndecided() {
        // Key a needs three steps; key b fails after two (a read is tried first as a forced step).
        let history = [put("a", "1", 0...1), put("a", "2", 2...3), get("a", "2", 4...5), get("b", "1", 0...1)]
        let limited = LinearizabilityChecker(model: KVModel(), partitionStepsMax: 2)
        #expect(limited.check(history).failure?.partitionKey == "b")
        guard case .unknown(let keys) = limited.check(Array(history.prefix(3))) else {
            Issue.record("expected .unknown")
            return
        }
        #expect(keys == ["a"])
    }
}
