// The sequential specification a history is checked against.
//
// A model is a deterministic state machine: from a state, an operation with a given input either
// can return a given output (and moves to one next state) or cannot. The checker never looks
// inside states; it only hashes and compares them, so `State` must be a value whose equality
// means "behaves the same from here on" (two states equal ⇒ the same future outputs).
//
// Partitioning is part of the model because only the model knows which operations commute: a
// key-value store's operations on different keys are independent, so a history is linearizable
// exactly when each key's sub-history is (linearizability is compositional — Herlihy & Wing,
// "locality"). Each partition is then checked on its own from `initialState`, which is why
// `State` describes one partition (for a key-value store: one key's value), not the whole store.

public protocol LinearizabilityModel {
    /// One partition's state. Equal states must have equal futures.
    associatedtype State: Hashable
    /// What a client asked for (operation and arguments, including the partition key).
    /// `Hashable` so that identical timed-out operations (retries) can be recognised: the search
    /// treats them as interchangeable, which saves it from trying each copy separately.
    associatedtype Input: Hashable
    /// What the system answered.
    associatedtype Output
    /// Names a set of operations that is checked independently of all others. `Comparable` so
    /// that partitions are checked, and failures reported, in an order that does not depend on
    /// hashing. A model without independent parts uses a constant (say `0`).
    associatedtype PartitionKey: Hashable & Comparable

    /// The state of every partition before the first operation.
    var initialState: State { get }

    /// The partition `input` belongs to.
    func partitionKey(for input: Input) -> PartitionKey

    /// The state after `input` takes effect in `state` and returns `output`, or nil if `output`
    /// cannot be returned by `input` in `state`.
    ///
    /// `output == nil` means the outcome is unknown (the client timed out): the operation takes
    /// effect but its output is unconstrained, so the model must return the state the operation
    /// would produce in `state` — nil only if the operation cannot take effect there at all.
    /// (Whether the operation takes effect at all is the checker's business: an unknown operation
    /// is simply never placed in the linearization if that works better.)
    ///
    /// Must be pure and deterministic: the checker calls it once per (state, operation) pair and
    /// remembers the answer.
    func step(_ state: State, _ input: Input, _ output: Output?) -> State?

    /// True if `input` returning `output` never changes the state: whatever `state`,
    /// `step(state, input, output)` is nil or `state`. A get is read-only; so is a
    /// compare-and-set that answered "not swapped", but not one whose outcome is unknown
    /// (`output` nil). Read-only operations with unknown outcomes constrain nothing and are
    /// dropped before the search; completed ones are linearized as soon as they can be, without
    /// trying alternatives, which prunes the search a great deal. Defaults to false, which is
    /// always correct; answering true wrongly makes the checker wrong.
    func isReadOnly(_ input: Input, output: Output?) -> Bool

    /// One line for failure reports, such as `put("k", "v") → ok`; `output` nil means unknown.
    func describe(input: Input, output: Output?) -> String

    /// One partition's state, for failure reports.
    func describe(state: State) -> String
}

extension LinearizabilityModel {
    public func isReadOnly(_ input: Input, output: Output?) -> Bool { false }

    public func describe(input: Input, output: Output?) -> String {
        "\(input) → " + (output.map { "\($0)" } ?? "?")
    }

    public func describe(state: State) -> String { "\(state)" }
}
