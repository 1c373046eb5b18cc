// One client operation as an observer outside the system saw it: when it was invoked, and either
// when it returned and with what, or that the client gave up waiting (the outcome is unknown).
//
// Times are integers on one clock shared by all clients (simulator ticks or a logical clock).
// An operation whose invocation time is later than another's response time is ordered after it;
// operations whose intervals overlap — including when one's response time *equals* the other's
// invocation time — are concurrent and may be linearized in either order. Treating equal times as
// concurrent is the lenient choice: a simulator that records several events in one tick cannot
// say which came first, and the checker must not report a violation that depends on it.

public struct HistoryOperation<Input, Output> {
    public enum Outcome {
        /// The operation returned `output` at `responseTime` (≥ the invocation time).
        case completed(Output, responseTime: Int)
        /// The client never learned the result (timeout, lost connection, crash). The operation
        /// may have taken effect at any time after its invocation — even after the end of the
        /// history — or never.
        case unknown
    }

    /// The client that issued the operation; only used in reports.
    public var clientID: Int
    public var input: Input
    public var invocationTime: Int
    public var outcome: Outcome

    public init(clientID: Int, input: Input, invocationTime: Int, outcome: Outcome) {
        self.clientID = clientID
        self.input = input
        self.invocationTime = invocationTime
        self.outcome = outcome
    }

    /// An operation that returned `output`.
    public static func completed(clientID: Int, _ input: Input, _ output: Output,
                                 invoked invocationTime: Int, returned responseTime: Int) -> Self {
        Self(clientID: clientID, input: input, invocationTime: invocationTime,
             outcome: .completed(output, responseTime: responseTime))
    }

    /// An operation whose client gave up waiting.
    public static func unknown(clientID: Int, _ input: Input, invoked invocationTime: Int) -> Self {
        Self(clientID: clientID, input: input, invocationTime: invocationTime, outcome: .unknown)
    }

    /// The output, or nil if the outcome is unknown.
    public var output: Output? {
        if case .completed(let output, _) = outcome { return output }
        return nil
    }

    /// The response time, or nil if the outcome is unknown.
    public var responseTime: Int? {
        if case .completed(_, let responseTime) = outcome { return responseTime }
        return nil
    }
}

extension HistoryOperation.Outcome: Sendable where Output: Sendable {}
extension HistoryOperation: Sendable where Input: Sendable, Output: Sendable {}
extension HistoryOperation.Outcome: Equatable where Output: Equatable {}
extension HistoryOperation: Equatable where Input: Equatable, Output: Equatable {}
