// The search at the heart of the checker: Wing & Gong's backtracking over a doubly linked list of
// call and return events, with Lowe's memoisation of explored (linearized set, state)
// configurations — the algorithm Porcupine implements — for one partition, plus three prunings
// that keep histories with timeouts and many reads tractable (below).
//
// Events are sorted by time, calls before returns at equal times (touching intervals are
// concurrent, see `HistoryOperation`). The search walks the list from the front. At a call event
// it tries to linearize that operation now: if the model accepts it in the current state and the
// resulting configuration was never seen, the operation's call and return events leave the list
// ("lift"), it is pushed on a stack and the walk restarts from the front. Reaching a return event
// means the operation it belongs to must already have taken effect, yet none of the candidates
// before it led anywhere: pop the last linearized operation, put its events back ("unlift") and
// try the next candidate after it. An empty stack at that point means no linearization exists.
// The cache of failed configurations is sound because whether the rest can be linearized depends
// only on which operations are linearized already and the current state; the events still in
// the list are a function of the first. (A configuration on the current path never recurs on it:
// the linearized set only grows.)
//
// Unknown outcomes: an operation whose client timed out has a call event and no return event, so
// nothing ever forces it into the linearization, and the search succeeds as soon as every
// *completed* operation is linearized. Linearizing it somewhere means "it took effect then";
// leaving it out means "it took effect after everything observed, or never" — no completed
// operation can tell those apart.
//
// Pruning 1, subsumption: linearizing an unknown operation only ever removes options, since it
// need never be linearized at all. So if a configuration failed, every configuration with the
// same completed operations linearized, the same state and a superset of its unknown ones fails
// too. Failed configurations are kept by (completed set, state), each with the minimal unknown
// sets that failed, and a new configuration is pruned if one of those is a subset of its own.
// Each configuration tries its completed candidates before its unknown ones, so that leaving an
// unknown operation out is explored (and fails) first and using it can then be pruned.
//
// Pruning 2: identical unknown operations (retries of a timed-out put, say) are
// interchangeable, and the earliest-invoked one can stand in for any later one (its window, from
// invocation to infinity, contains theirs). So any linearization can be rewritten to use a
// prefix of each such group, in invocation order, and the search only tries an unknown operation
// once its `predecessor` in the group is linearized.
//
// Pruning 3: read-only operations are linearized eagerly. If a completed operation that never
// changes the state (a get, a compare-and-set that failed) can come next and is possible in the
// current state, the configuration succeeds exactly when the one with it linearized does: a
// linearization that places it later can move it to the front (nothing that must precede it in
// real time is still pending, and it changes no state). So the search takes it without trying
// alternatives, and when backtracking through such a step it keeps backtracking.
//
// Each pruning keeps the search complete from every configuration it reaches, so together they
// remain exact; on histories with timeouts and heavy overlap they cut the steps several-fold
// (pending unknown operations and pending reads would otherwise each double the configurations).
//
// Why the cursor never runs off the end while a completed operation remains: it only moves
// forward from the front across call events, and after a backtrack it resumes just after an
// operation that was itself reached that way, so it is always at or before the first return
// event still in the list.
//
// Not generic on purpose: operations are dense indices, states are interned by the caller to
// dense `Int32` ids, and the model is consulted through `transition` once per (state, operation)
// pair, the answer kept in a table. The hot loop is integer work, array accesses and hashing one
// bitset — no generic or existential calls, whatever the model.

struct WingGongSearch {
    enum Result: Equatable {
        case linearizable
        /// `longestPrefix`: the longest sequence of operations (indices) found that linearizes a
        /// prefix of the history; the search could not extend it to a full linearization.
        /// `latestDeadline`: the latest response time at which the search had to backtrack — a
        /// good first guess at where the history goes wrong.
        case notLinearizable(longestPrefix: [Int], latestDeadline: Int)
        case stepLimitExceeded
    }

    /// What the search knows about one operation.
    struct OperationInfo {
        var invocationTime: Int
        /// Nil if the outcome is unknown.
        var responseTime: Int?
        /// -1, or (for an unknown operation only) an operation with an identical input and
        /// unknown outcome invoked no later (ties: lower index), which must be linearized first.
        var predecessor: Int
        /// The operation, with its output, never changes the state (see
        /// `LinearizabilityModel.isReadOnly(_:output:)`).
        var isReadOnly: Bool
    }

    /// The id of the initial state; `transition` hands out the ids of the others.
    static let initialState: Int32 = 0

    /// Searches for a linearization of `operations`.
    /// - Parameters:
    ///   - stepsMax: the most attempts to linearize an operation (transitions tried, remembered
    ///     or not) before giving up with `.stepLimitExceeded`; nil means no limit. It bounds the
    ///     cache's size too.
    ///   - transition: the id of the state after operation `operation` takes effect in state
    ///     `state`, or nil if it cannot. Called at most once per (state, operation) pair.
    static func run(_ operations: [OperationInfo], stepsMax: Int?,
                    transition: (_ state: Int32, _ operation: Int) -> Int32?) -> Result {
        var search = WingGongSearch(operations, stepsMax: stepsMax)
        return search.run(transition)
    }

    private let operations: [OperationInfo]
    private let stepsMax: Int?
    // Per node of the event list (node 0 is the head sentinel).
    private var operationOfNode: [Int] = [-1]
    private var isReturnNode: [Bool] = [false]
    private var timeOfNode: [Int] = [0]
    // Per operation.
    private var callNode: [Int32]
    private var returnNode: [Int32]

    private var list: EventList
    /// The linearized operations, completed and unknown ones apart (the cache keys on the first).
    private var linearizedCompleted: Bitset
    private var linearizedUnknown: Bitset
    private let hasUnknownOperations: Bool
    /// Configurations explored without success: (completed operations linearized, state) → the
    /// minimal sets of unknown operations linearized with them (an antichain).
    private var failed: [Configuration: [Bitset]] = [:]
    /// (state << 32 | operation) → the next state, or `EventList.none` if the model refused.
    private var transitions: [Int64: Int32] = [:]
    private var state = initialState
    /// The linearized operations in order, each with the state before it and whether it was
    /// taken without alternatives (a read-only operation, see above).
    private var stack: [(operation: Int, stateBefore: Int32, isForced: Bool)] = []
    private var remainingCompleted = 0
    private var steps = 0
    private var longestPrefix: [Int] = []
    private var latestDeadline = Int.min

    private init(_ operations: [OperationInfo], stepsMax: Int?) {
        precondition(operations.count < Int(Int32.max) / 2, "too many operations in one partition")
        self.operations = operations
        self.stepsMax = stepsMax
        var events: [(time: Int, isReturn: Bool, operation: Int)] = []
        events.reserveCapacity(2 * operations.count)
        for (index, operation) in operations.enumerated() {
            events.append((operation.invocationTime, false, index))
            if let responseTime = operation.responseTime {
                precondition(operation.invocationTime <= responseTime, "operation responds before it is invoked")
                events.append((responseTime, true, index))
                remainingCompleted += 1
            }
        }
        events.sort { a, b in
            if a.time != b.time { return a.time < b.time }
            if a.isReturn != b.isReturn { return !a.isReturn }
            return a.operation < b.operation
        }
        list = EventList(nodeCount: events.count + 1)
        callNode = [Int32](repeating: EventList.none, count: operations.count)
        returnNode = [Int32](repeating: EventList.none, count: operations.count)
        linearizedCompleted = Bitset(count: operations.count)
        linearizedUnknown = Bitset(count: operations.count)
        hasUnknownOperations = operations.contains { $0.responseTime == nil }
        operationOfNode.reserveCapacity(events.count + 1)
        isReturnNode.reserveCapacity(events.count + 1)
        timeOfNode.reserveCapacity(events.count + 1)
        for (index, event) in events.enumerated() {
            let node = Int32(index + 1)
            list.append(node)
            operationOfNode.append(event.operation)
            isReturnNode.append(event.isReturn)
            timeOfNode.append(event.time)
            if event.isReturn { returnNode[event.operation] = node } else { callNode[event.operation] = node }
        }
    }

    private mutating func run(_ transition: (Int32, Int) -> Int32?) -> Result {
        var cursor = list.first
        // Each configuration tries the completed candidates first, then, in a second pass over
        // the same stretch of the list, the unknown ones (see pruning 1).
        var isUnknownPass = false
        var isNewConfiguration = true
        while remainingCompleted > 0 {
            if isNewConfiguration {
                isNewConfiguration = false
                isUnknownPass = false
                switch forcedCandidate(transition) {
                case .stepLimitExceeded:
                    return .stepLimitExceeded
                case .none:
                    break
                case .some(let operation):
                    if linearize(operation, to: state, isForced: true) {
                        cursor = list.first
                        isNewConfiguration = true
                    } else {
                        // Where it leads was explored already, without success: so was this.
                        guard let resumeAfter = backtrack() else { return failure }
                        cursor = list.next[Int(callNode[resumeAfter])]
                        isUnknownPass = operations[resumeAfter].responseTime == nil
                    }
                    continue
                }
            }
            precondition(cursor != EventList.none, "the cursor passed the last return event")
            let node = Int(cursor)
            if !isReturnNode[node] {
                let operation = operationOfNode[node]
                let isUnknown = operations[operation].responseTime == nil
                let predecessor = operations[operation].predecessor
                if isUnknown == isUnknownPass && (predecessor < 0 || linearizedUnknown.contains(predecessor)) {
                    guard let next = nextState(after: operation, transition) else { return .stepLimitExceeded }
                    if next != EventList.none && linearize(operation, to: next, isForced: false) {
                        cursor = list.first
                        isNewConfiguration = true
                        continue
                    }
                }
                cursor = list.next[node]
            } else if !isUnknownPass && hasUnknownOperations {
                isUnknownPass = true
                cursor = list.first
            } else {
                // The operation returning here must already have taken effect: backtrack.
                latestDeadline = max(latestDeadline, timeOfNode[node])
                guard let resumeAfter = backtrack() else { return failure }
                cursor = list.next[Int(callNode[resumeAfter])]
                isUnknownPass = operations[resumeAfter].responseTime == nil
            }
        }
        return .linearizable
    }

    private var failure: Result { .notLinearizable(longestPrefix: longestPrefix, latestDeadline: latestDeadline) }

    private enum ForcedCandidate { case none, some(Int), stepLimitExceeded }

    /// A completed read-only operation that can come next and is possible in the current state.
    private mutating func forcedCandidate(_ transition: (Int32, Int) -> Int32?) -> ForcedCandidate {
        var node = list.first
        while node != EventList.none && !isReturnNode[Int(node)] {
            let operation = operationOfNode[Int(node)]
            if operations[operation].isReadOnly && operations[operation].responseTime != nil {
                guard let next = nextState(after: operation, transition) else { return .stepLimitExceeded }
                if next == state { return .some(operation) }
            }
            node = list.next[Int(node)]
        }
        return .none
    }

    /// The state after `operation` in the current state (`EventList.none` if impossible), from
    /// the table or the model; nil if the step limit is reached.
    private mutating func nextState(after operation: Int, _ transition: (Int32, Int) -> Int32?) -> Int32? {
        if let stepsMax, steps >= stepsMax { return nil }
        steps += 1
        let key = Int64(state) << 32 | Int64(operation)
        if let known = transitions[key] { return known }
        let next = transition(state, operation) ?? EventList.none
        transitions[key] = next
        return next
    }

    /// Linearizes `operation`, leading to state `next`, unless that configuration is known to
    /// fail; returns whether it did.
    private mutating func linearize(_ operation: Int, to next: Int32, isForced: Bool) -> Bool {
        let isUnknown = operations[operation].responseTime == nil
        if isUnknown { linearizedUnknown.insert(operation) } else { linearizedCompleted.insert(operation) }
        if let failedUnknownSets = failed[Configuration(linearized: linearizedCompleted, state: next)] {
            if failedUnknownSets.contains(where: { $0.isSubset(of: linearizedUnknown) }) {
                if isUnknown { linearizedUnknown.remove(operation) } else { linearizedCompleted.remove(operation) }
                return false
            }
        }
        stack.append((operation, state, isForced))
        state = next
        list.remove(callNode[operation])
        if returnNode[operation] != EventList.none {
            list.remove(returnNode[operation])
            remainingCompleted -= 1
        }
        if stack.count > longestPrefix.count { longestPrefix = stack.map(\.operation) }
        return true
    }

    /// Undoes linearizations up to and including the last one that was a choice, and returns
    /// that operation (the search goes on with the candidates after it); nil if there is none
    /// left, meaning no linearization exists.
    private mutating func backtrack() -> Int? {
        while let top = stack.popLast() {
            recordFailure()
            state = top.stateBefore
            if returnNode[top.operation] == EventList.none {
                linearizedUnknown.remove(top.operation)
            } else {
                linearizedCompleted.remove(top.operation)
                list.restore(returnNode[top.operation])
                remainingCompleted += 1
            }
            list.restore(callNode[top.operation])
            if !top.isForced { return top.operation }
        }
        return nil
    }

    /// Records that the current configuration failed.
    private mutating func recordFailure() {
        let key = Configuration(linearized: linearizedCompleted, state: state)
        // Supersets of the new set say nothing more.
        failed[key, default: []].removeAll { linearizedUnknown.isSubset(of: $0) }
        failed[key, default: []].append(linearizedUnknown)
    }
}

/// A doubly linked list of event nodes in arrays. Node 0 is the head sentinel; event `i` in
/// sorted order is node `i + 1`. Dancing links: a removed node keeps its own links, so nodes put
/// back in the reverse order of their removal restore the list exactly.
struct EventList {
    /// A link to no node.
    static let none: Int32 = -1

    private(set) var next: [Int32]
    private var prev: [Int32]
    private var last: Int32 = 0

    init(nodeCount: Int) {
        next = [Int32](repeating: Self.none, count: nodeCount)
        prev = [Int32](repeating: Self.none, count: nodeCount)
    }

    /// The first node after the head, or `none`.
    var first: Int32 { next[0] }

    mutating func append(_ node: Int32) {
        prev[Int(node)] = last
        next[Int(last)] = node
        last = node
    }

    mutating func remove(_ node: Int32) {
        let n = Int(node)
        next[Int(prev[n])] = next[n]
        if next[n] != Self.none { prev[Int(next[n])] = prev[n] }
    }

    mutating func restore(_ node: Int32) {
        let n = Int(node)
        next[Int(prev[n])] = node
        if next[n] != Self.none { prev[Int(next[n])] = node }
    }
}

/// A fixed-size set of operation indices.
struct Bitset: Hashable {
    private(set) var words: [UInt64]

    init(count: Int) { words = [UInt64](repeating: 0, count: (count + 63) / 64) }

    mutating func insert(_ index: Int) { words[index >> 6] |= 1 << UInt64(index & 63) }
    mutating func remove(_ index: Int) { words[index >> 6] &= ~(1 << UInt64(index & 63)) }
    func contains(_ index: Int) -> Bool { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }

    func isSubset(of other: Bitset) -> Bool {
        for i in words.indices where words[i] & ~other.words[i] != 0 { return false }
        return true
    }
}

/// A set of linearized operations and the state they lead to.
struct Configuration: Hashable {
    var linearized: Bitset
    var state: Int32
}
