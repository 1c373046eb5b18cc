// What a check concludes. The checker never answers `.linearizable` unless it found a
// linearization for every partition: a search cut short by its step limit yields `.unknown`.

public enum LinearizabilityResult<Model: LinearizabilityModel> {
    /// Every partition has a linearization.
    case linearizable
    /// A partition has none; the first such partition in key order is reported.
    case notLinearizable(LinearizabilityFailure<Model>)
    /// No partition was found non-linearizable, but the searches for these partitions (in key
    /// order) reached the step limit before an answer.
    case unknown(partitionKeys: [Model.PartitionKey])

    public var isLinearizable: Bool {
        if case .linearizable = self { return true }
        return false
    }

    /// The failure, if the history is not linearizable.
    public var failure: LinearizabilityFailure<Model>? {
        if case .notLinearizable(let failure) = self { return failure }
        return nil
    }
}

/// Why a history is not linearizable: a small history that is not linearizable either, and whose
/// failure implies the checked history's.
///
/// It holds the failing partition's operations up to `cutTime`: those invoked by then, where an
/// operation still running at the cut counts as unknown (it may or may not have taken effect by
/// then). Any linearization of the whole history would, cut at that time, linearize this one,
/// so this one failing proves the whole fails. The checker looks for the earliest such cut (a
/// binary search: if a cut fails, every later cut fails), so the last operations listed are the
/// ones where things first went wrong.
public struct LinearizabilityFailure<Model: LinearizabilityModel> {
    public var partitionKey: Model.PartitionKey
    /// A history, not linearizable, as described above.
    public var operations: [HistoryOperation<Model.Input, Model.Output>]
    /// For each of `operations`, its index in the checked history.
    public var historyIndices: [Int]
    /// The time the partition was cut at, or nil if `operations` is the whole partition (less
    /// any reads with unknown outcomes, which constrain nothing).
    public var cutTime: Int?
    /// How many operations the failing partition had in the checked history.
    public var partitionOperationCount: Int
    /// The longest sequence of operations (indices into `operations`) the search found that is a
    /// valid linearization of a prefix of `operations`: a witness of where it got stuck.
    public var longestPrefix: [Int]
    /// A readable account of all of the above, for test failures and simulator logs.
    public var explanation: String
}

extension LinearizabilityFailure: CustomStringConvertible {
    public var description: String { explanation }
}

extension LinearizabilityFailure: Sendable
where Model.PartitionKey: Sendable, Model.Input: Sendable, Model.Output: Sendable {}

extension LinearizabilityResult: Sendable
where Model.PartitionKey: Sendable, Model.Input: Sendable, Model.Output: Sendable {}
