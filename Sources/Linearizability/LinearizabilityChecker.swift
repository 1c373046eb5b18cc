// Checks that a concurrent history of client operations is linearizable against a model: that
// each operation can be given one instant between its invocation and its response (any instant
// after its invocation, or none at all, if its outcome is unknown) such that performing the
// operations one at a time in that order, from the model's initial state, gives exactly the
// outputs the clients saw.
//
// The history is split by `partitionKey` and each partition searched on its own
// (`WingGongSearch`), in key order so that results never depend on hashing. Unknown-outcome reads
// are dropped first: they constrain nothing. When a partition fails, the failure is shrunk to the
// earliest time cut that still fails (see `LinearizabilityFailure`) and explained in text.
//
// Cost: the search is exponential in the worst case (the problem is NP-complete), but the cache
// bounds it by the number of distinct (set of linearized operations, state) pairs, which for
// histories with a few operations in flight at a time is roughly operations × 2^concurrency ×
// states, and the prunings in `WingGongSearch` keep pending reads and timed-out operations from
// counting fully towards that concurrency. Linearizable histories are usually found quickly;
// rejecting one means exhausting every ordering up to the violation, which is the expensive
// case. `partitionStepsMax` bounds a search that would take too long; reaching it yields
// `.unknown`, never `.linearizable`.

public struct LinearizabilityChecker<Model: LinearizabilityModel> {
    public typealias Operation = HistoryOperation<Model.Input, Model.Output>

    public var model: Model
    /// The most attempts to linearize an operation one partition's search may make (nil: no
    /// limit). Shrinking a failure runs a few more searches, each with the same limit.
    public var partitionStepsMax: Int?
    /// Whether a failure is shrunk to its earliest failing time cut. That costs more searches of
    /// the failing partition: usually one that fails (about as costly as the first) and a few
    /// quick ones that pass; at most about 2 × log2(operations).
    public var shrinksFailures: Bool

    public init(model: Model, partitionStepsMax: Int? = nil, shrinksFailures: Bool = true) {
        precondition(partitionStepsMax.map { $0 >= 0 } ?? true, "partitionStepsMax must not be negative")
        self.model = model
        self.partitionStepsMax = partitionStepsMax
        self.shrinksFailures = shrinksFailures
    }

    /// Checks `history`. Every completed operation must respond no earlier than it was invoked
    /// (a programmer error in the recorder otherwise: it traps).
    public func check(_ history: [Operation]) -> LinearizabilityResult<Model> {
        var partitions: [Model.PartitionKey: [Int]] = [:]
        for (index, operation) in history.enumerated() {
            if let responseTime = operation.responseTime {
                precondition(operation.invocationTime <= responseTime,
                             "history operation \(index) responds at \(responseTime), before its invocation at \(operation.invocationTime)")
            } else if model.isReadOnly(operation.input, output: nil) {
                continue
            }
            partitions[model.partitionKey(for: operation.input), default: []].append(index)
        }
        var undecided: [Model.PartitionKey] = []
        for key in partitions.keys.sorted() {
            let indices = partitions[key]!
            let operations = indices.map { history[$0] }
            switch search(operations) {
            case .linearizable:
                continue
            case .stepLimitExceeded:
                undecided.append(key)
            case .notLinearizable(let longestPrefix, let latestDeadline):
                return .notLinearizable(failure(in: key, operations: operations, historyIndices: indices,
                                                longestPrefix: longestPrefix, latestDeadline: latestDeadline))
            }
        }
        return undecided.isEmpty ? .linearizable : .unknown(partitionKeys: undecided)
    }

    /// Searches one partition, interning the model's states to dense ids for the search.
    func search(_ operations: [Operation]) -> WingGongSearch.Result {
        var infos = operations.map { operation in
            WingGongSearch.OperationInfo(
                invocationTime: operation.invocationTime, responseTime: operation.responseTime, predecessor: -1,
                isReadOnly: model.isReadOnly(operation.input, output: operation.output))
        }
        // Chain identical unknown operations in invocation order (see `WingGongSearch`).
        var lastUnknown: [Model.Input: Int] = [:]
        let byInvocation = operations.indices.sorted {
            (operations[$0].invocationTime, $0) < (operations[$1].invocationTime, $1)
        }
        for index in byInvocation where operations[index].responseTime == nil {
            if let previous = lastUnknown.updateValue(index, forKey: operations[index].input) {
                infos[index].predecessor = previous
            }
        }
        var states: [Model.State] = [model.initialState]
        var stateIDs: [Model.State: Int32] = [model.initialState: WingGongSearch.initialState]
        return WingGongSearch.run(infos, stepsMax: partitionStepsMax) { stateID, index in
            let operation = operations[index]
            guard let next = model.step(states[Int(stateID)], operation.input, operation.output) else { return nil }
            if let id = stateIDs[next] { return id }
            let id = Int32(states.count)
            states.append(next)
            stateIDs[next] = id
            return id
        }
    }

    /// Builds the failure report for partition `key`, whose `operations` have no linearization;
    /// shrinks it first if asked to.
    func failure(in key: Model.PartitionKey, operations: [Operation], historyIndices: [Int],
                 longestPrefix: [Int], latestDeadline: Int) -> LinearizabilityFailure<Model> {
        var failing = (operations: operations, historyIndices: historyIndices, cutTime: Int?.none,
                       longestPrefix: longestPrefix)
        if shrinksFailures {
            // Find the earliest response time at which the cut history still fails. Cuts that
            // fail form a suffix of the sorted times (see `LinearizabilityFailure`), so this is a
            // search for a boundary. Searches of failing cuts are the expensive ones (they must
            // exhaust every ordering), so it starts from the latest time the full search had to
            // backtrack at — usually the boundary itself — and gallops away from it, which costs
            // about one failing search and a few passing ones when the guess is right. A cut whose
            // search hits the step limit counts as passing: whatever is reported was seen to fail.
            let cutTimes = Array(Set(operations.compactMap(\.responseTime))).sorted()
            var failingCuts: [Int: [Int]] = [:]  // index in `cutTimes` → longest prefix
            func fails(_ index: Int) -> Bool {
                let cut = self.cut(operations, historyIndices: historyIndices, at: cutTimes[index])
                guard case .notLinearizable(let prefix, _) = search(cut.operations) else { return false }
                failingCuts[index] = prefix
                return true
            }
            // The boundary is in low...high; `cutTimes.count` stands for the whole partition.
            var low = 0
            var high = cutTimes.count
            let guess = cutTimes.firstIndex { $0 >= latestDeadline } ?? cutTimes.count
            if guess < high && fails(guess) {
                high = guess
                var stride = 1
                while low < high {
                    let probe = max(low, high - stride)
                    if fails(probe) { high = probe } else { low = probe + 1; break }
                    stride *= 2
                }
            } else if guess < high {
                low = guess + 1
                var stride = 1
                while low < high {
                    let probe = min(high - 1, low + stride - 1)
                    if fails(probe) { high = probe; break } else { low = probe + 1 }
                    stride *= 2
                }
            }
            while low < high {
                let middle = (low + high) / 2
                if fails(middle) { high = middle } else { low = middle + 1 }
            }
            if high < cutTimes.count {
                let cut = self.cut(operations, historyIndices: historyIndices, at: cutTimes[high])
                failing = (cut.operations, cut.historyIndices, cutTimes[high], failingCuts[high]!)
            }
        }
        let originalOfIndex = Dictionary(uniqueKeysWithValues: zip(historyIndices, operations))
        let explanation = explain(key: key, operations: failing.operations,
                                  originals: failing.historyIndices.map { originalOfIndex[$0]! }, cutTime: failing.cutTime,
                                  historyIndices: failing.historyIndices, partitionOperationCount: operations.count,
                                  longestPrefix: failing.longestPrefix)
        return LinearizabilityFailure(
            partitionKey: key, operations: failing.operations, historyIndices: failing.historyIndices,
            cutTime: failing.cutTime, partitionOperationCount: operations.count,
            longestPrefix: failing.longestPrefix, explanation: explanation)
    }

    /// The history as an observer who stopped watching at `time` would record it: operations
    /// invoked later are gone, operations that had not responded by then have unknown outcomes
    /// (and are dropped if they are reads).
    func cut(_ operations: [Operation], historyIndices: [Int], at time: Int) -> (operations: [Operation], historyIndices: [Int]) {
        var kept: [Operation] = []
        var keptIndices: [Int] = []
        for (operation, index) in zip(operations, historyIndices) where operation.invocationTime <= time {
            if let responseTime = operation.responseTime, responseTime <= time {
                kept.append(operation)
            } else if !model.isReadOnly(operation.input, output: nil) {
                kept.append(Operation(clientID: operation.clientID, input: operation.input,
                                      invocationTime: operation.invocationTime, outcome: .unknown))
            } else {
                continue
            }
            keptIndices.append(index)
        }
        return (kept, keptIndices)
    }
}

extension LinearizabilityChecker: Sendable where Model: Sendable {}
