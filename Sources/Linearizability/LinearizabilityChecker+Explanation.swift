// The text of a failure report. It names the partition, lists the failing (cut) history in
// invocation order — operations that responded after the cut with their real response and a
// note that the cut counts them as unknown — replays the longest linearizable prefix the search found with the state
// after each operation, and then shows why nothing can come next: for each operation that could
// take effect next (in real-time order), what the model says of it in that state, and which
// completed operation's response forces the issue. Operations are labelled by their index in the
// checked history (`#index`) so that a simulator log can be searched for them.
//
// The text is deterministic (no hashing order) so that it can be compared in tests.

extension LinearizabilityChecker {
    /// - Parameters:
    ///   - operations: the failing history (a cut of the partition, or all of it).
    ///   - originals: for each of `operations`, the operation as recorded, before the cut.
    func explain(key: Model.PartitionKey, operations: [Operation], originals: [Operation], cutTime: Int?,
                 historyIndices: [Int], partitionOperationCount: Int, longestPrefix: [Int]) -> String {
        let labels = historyIndices.map { "#\($0)" }
        let labelWidth = labels.map(\.count).max() ?? 0
        func label(_ index: Int) -> String { padded(labels[index], labelWidth) }
        func describe(_ index: Int) -> String {
            model.describe(input: operations[index].input, output: operations[index].output)
        }

        let isCutShort = zip(operations, originals).contains { $0.responseTime != $1.responseTime }
            || operations.count < partitionOperationCount
        var lines = ["not linearizable: partition \(String(reflecting: key))"]
        if let cutTime, isCutShort {
            lines.append("its operations invoked by time \(cutTime) (\(operations.count) of \(partitionOperationCount)) already fail:")
        } else {
            lines.append("its \(counted(operations.count, "operation")):")
        }
        let byInvocation = operations.indices.sorted {
            (operations[$0].invocationTime, $0) < (operations[$1].invocationTime, $1)
        }
        let clients = originals.map { "client \($0.clientID)" }
        let intervals = originals.map { operation in
            "[\(operation.invocationTime), " + (operation.responseTime.map { "\($0)]" } ?? "∞)")
        }
        let clientWidth = clients.map(\.count).max() ?? 0
        let intervalWidth = intervals.map(\.count).max() ?? 0
        for index in byInvocation {
            let original = originals[index]
            var line = "  \(label(index))  \(padded(clients[index], clientWidth))  \(padded(intervals[index], intervalWidth))  "
                + model.describe(input: original.input, output: original.output)
            if original.responseTime != operations[index].responseTime, let cutTime {
                line += "  (still running at \(cutTime): counts as unknown)"
            }
            lines.append(line)
        }

        // Replay the prefix.
        var state = model.initialState
        var linearized = [Bool](repeating: false, count: operations.count)
        if longestPrefix.isEmpty {
            lines.append("no operation can take effect first, in state \(model.describe(state: state)):")
        } else {
            lines.append("longest linearizable prefix found (\(counted(longestPrefix.count, "operation"))), "
                         + "from state \(model.describe(state: state)):")
            let descriptionWidth = longestPrefix.map { describe($0).count }.max() ?? 0
            for (position, index) in longestPrefix.enumerated() {
                guard let next = model.step(state, operations[index].input, operations[index].output) else {
                    preconditionFailure("the search's prefix does not replay: is the model's step deterministic?")
                }
                state = next
                linearized[index] = true
                lines.append("  \(position + 1). \(label(index))  \(padded(describe(index), descriptionWidth))  state \(model.describe(state: state))")
            }
            lines.append("after it, nothing can take effect next:")
        }

        // What could come next, and why it does not.
        let remaining = operations.indices.filter { !linearized[$0] }
        let deadline = remaining.compactMap { operations[$0].responseTime }.min()
        for index in remaining.sorted(by: { (operations[$0].invocationTime, $0) < (operations[$1].invocationTime, $1) })
        where deadline.map({ operations[index].invocationTime <= $0 }) ?? true {
            let verdict = if let next = model.step(state, operations[index].input, operations[index].output) {
                "would leave state \(model.describe(state: next)), from which the rest cannot be linearized"
            } else {
                "impossible in state \(model.describe(state: state))"
            }
            lines.append("  \(label(index))  \(describe(index)): \(verdict)")
        }
        if let deadline, let due = remaining.first(where: { operations[$0].responseTime == deadline }) {
            lines.append("yet one of these must come next, since \(labels[due]) responded at time \(deadline).")
        }
        return lines.joined(separator: "\n")
    }
}

private func counted(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)" + (count == 1 ? "" : "s")
}

private func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
