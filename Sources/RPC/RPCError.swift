// The one error every RPC caller and handler sees. A code (stable on the wire, Format/rpc.md
// §6), a human-readable message, and the details some codes carry: a leader hint for
// `notLeader`, a shard-map epoch for `wrongShard`. Transport failures (refused connections,
// resets, bad frames, timeouts) are all mapped to one of these before they reach a caller.

public struct RPCError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Code: UInt16, Sendable, CaseIterable, CustomStringConvertible {
        case notFound = 1
        case invalidArgument = 2
        case unauthenticated = 3
        case permissionDenied = 4
        /// This node is not the leader; `leaderHint` names the one it believes leads, if known.
        case notLeader = 5
        /// The shard is not (or no longer) here; `mapEpoch` is the shard map this node knows.
        case wrongShard = 6
        /// The peer cannot be reached, the connection broke, or the server is shutting down.
        /// Safe to retry elsewhere or later (the request may or may not have run).
        case unavailable = 7
        case deadlineExceeded = 8
        /// A bounded queue or limit is full: back off.
        case resourceExhausted = 9
        case `internal` = 10
        /// The caller cancelled the request.
        case cancelled = 11

        public var description: String {
            switch self {
            case .notFound: return "not found"
            case .invalidArgument: return "invalid argument"
            case .unauthenticated: return "unauthenticated"
            case .permissionDenied: return "permission denied"
            case .notLeader: return "not leader"
            case .wrongShard: return "wrong shard"
            case .unavailable: return "unavailable"
            case .deadlineExceeded: return "deadline exceeded"
            case .resourceExhausted: return "resource exhausted"
            case .internal: return "internal"
            case .cancelled: return "cancelled"
            }
        }
    }

    /// Bound on an error message on the wire, in UTF-8 bytes; longer messages are cut.
    public static let messageBytesMax = 4096

    public var code: Code
    public var message: String
    /// The node id of the leader, for `notLeader` (nil when unknown).
    public var leaderHint: UInt64?
    /// The shard map epoch the answering node knows, for `wrongShard`.
    public var mapEpoch: UInt64?

    public init(_ code: Code, _ message: String = "", leaderHint: UInt64? = nil, mapEpoch: UInt64? = nil) {
        self.code = code
        self.message = RPCError.clip(message)
        self.leaderHint = leaderHint
        self.mapEpoch = mapEpoch
    }

    public static func notFound(_ message: String = "") -> RPCError { RPCError(.notFound, message) }
    public static func invalidArgument(_ message: String = "") -> RPCError { RPCError(.invalidArgument, message) }
    public static func unauthenticated(_ message: String = "") -> RPCError { RPCError(.unauthenticated, message) }
    public static func permissionDenied(_ message: String = "") -> RPCError { RPCError(.permissionDenied, message) }
    public static func notLeader(leaderHint: UInt64?, _ message: String = "") -> RPCError {
        RPCError(.notLeader, message, leaderHint: leaderHint)
    }
    public static func wrongShard(mapEpoch: UInt64, _ message: String = "") -> RPCError {
        RPCError(.wrongShard, message, mapEpoch: mapEpoch)
    }
    public static func unavailable(_ message: String = "") -> RPCError { RPCError(.unavailable, message) }
    public static func deadlineExceeded(_ message: String = "") -> RPCError { RPCError(.deadlineExceeded, message) }
    public static func resourceExhausted(_ message: String = "") -> RPCError { RPCError(.resourceExhausted, message) }
    public static func `internal`(_ message: String = "") -> RPCError { RPCError(.internal, message) }
    public static func cancelled(_ message: String = "") -> RPCError { RPCError(.cancelled, message) }

    public var description: String {
        var text = "RPC error \(code)"
        if !message.isEmpty { text += ": \(message)" }
        if let leaderHint { text += " (leader hint: node \(leaderHint))" }
        if let mapEpoch { text += " (map epoch \(mapEpoch))" }
        return text
    }

    /// Cuts a message to at most `messageBytesMax` UTF-8 bytes on a character boundary.
    static func clip(_ message: String) -> String {
        guard message.utf8.count > messageBytesMax else { return message }
        var result = ""
        var bytes = 0
        for character in message {
            let size = character.utf8.count
            if bytes + size > messageBytesMax { break }
            result.append(character)
            bytes += size
        }
        return result
    }
}
