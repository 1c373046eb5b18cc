// The values the Raft core trades with its host: log entries, hard state, snapshots, messages,
// configuration changes and the `Ready` batch. No I/O and no clocks here (see Raft.swift).

/// A member of a Raft group. 0 means "none".
public typealias NodeID = UInt64

public enum EntryKind: UInt8, Sendable, Equatable {
    /// Application data (empty for the no-op a new leader appends).
    case normal = 1
    /// A membership change (`ConfigurationChange.encoded`).
    case configurationChange = 2
}

public struct Entry: Sendable, Equatable, CustomStringConvertible {
    public var term: UInt64
    public var index: UInt64
    public var kind: EntryKind
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: EntryKind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// Bytes counted against message and batch limits.
    public var size: Int { data.count + 24 }

    public var description: String {
        let body: String
        switch kind {
        case .normal: body = data.isEmpty ? "" : " " + (String(validating: data, as: UTF8.self) ?? "\(data.count) bytes")
        case .configurationChange: body = " " + ((try? ConfigurationChange(decoding: data)).map { "\($0)" } ?? "bad change")
        }
        return "\(term)/\(index)\(body)"
    }
}

/// What must be durable before a node answers a vote or acknowledges entries.
public struct HardState: Sendable, Equatable, CustomStringConvertible {
    public var term: UInt64 = 0
    public var vote: NodeID = 0
    public var commit: UInt64 = 0

    public init(term: UInt64 = 0, vote: NodeID = 0, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }

    public var description: String { "term \(term) vote \(vote) commit \(commit)" }
}

/// The members of a group: voters elect and count toward commits; learners only receive the log.
public struct Membership: Sendable, Equatable, CustomStringConvertible {
    public var voters: Set<NodeID>
    public var learners: Set<NodeID>

    public init(voters: Set<NodeID> = [], learners: Set<NodeID> = []) {
        self.voters = voters
        self.learners = learners
    }

    public var members: Set<NodeID> { voters.union(learners) }
    public var quorum: Int { voters.count / 2 + 1 }

    public var description: String {
        let voters = self.voters.sorted().map(String.init).joined(separator: ",")
        let learners = self.learners.sorted().map(String.init).joined(separator: ",")
        return learners.isEmpty ? "voters (\(voters))" : "voters (\(voters)) learners (\(learners))"
    }
}

/// One membership change. Vectron changes one member at a time (Ongaro's single-server
/// changes): any two consecutive configurations then share a majority, so no joint phase is
/// needed. A change takes effect when its entry is applied (`RaftNode.applyConfigurationChange`),
/// and a leader proposes the next only after the previous one is applied.
public struct ConfigurationChange: Sendable, Equatable, CustomStringConvertible {
    public enum Operation: UInt8, Sendable, Equatable {
        /// Adds a voter, or promotes a learner.
        case addVoter = 1
        /// Adds a learner (a voter cannot be demoted this way: remove it first).
        case addLearner = 2
        case remove = 3
    }

    public var operation: Operation
    public var node: NodeID

    public init(_ operation: Operation, _ node: NodeID) {
        self.operation = operation
        self.node = node
    }

    public var encoded: [UInt8] {
        var bytes = [operation.rawValue]
        withUnsafeBytes(of: node.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    public init(decoding bytes: [UInt8]) throws(RaftError) {
        guard bytes.count == 9, let operation = Operation(rawValue: bytes[0]) else {
            throw .invalidConfigurationChange("\(bytes.count) bytes")
        }
        var node: UInt64 = 0
        for index in (1...8).reversed() { node = node << 8 | UInt64(bytes[index]) }
        self.init(operation, node)
    }

    public var description: String {
        switch operation {
        case .addVoter: "add voter \(node)"
        case .addLearner: "add learner \(node)"
        case .remove: "remove \(node)"
        }
    }
}

public struct SnapshotMetadata: Sendable, Equatable, CustomStringConvertible {
    public var index: UInt64 = 0
    public var term: UInt64 = 0
    public var membership = Membership()

    public init(index: UInt64 = 0, term: UInt64 = 0, membership: Membership = Membership()) {
        self.index = index
        self.term = term
        self.membership = membership
    }

    public var description: String { "index \(index) term \(term) \(membership)" }
}

/// The state machine's state through `metadata.index`, opaque to Raft.
public struct Snapshot: Sendable, Equatable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata, data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }

    public var isEmpty: Bool { metadata.index == 0 }
}

public enum MessageKind: UInt8, Sendable, Equatable, CaseIterable {
    case preVote = 1
    case preVoteResponse = 2
    case vote = 3
    case voteResponse = 4
    case append = 5
    case appendResponse = 6
    case heartbeat = 7
    case heartbeatResponse = 8
    case snapshot = 9
    /// Leadership transfer: start an election now, ignoring leases.
    case timeoutNow = 10
    /// A follower forwards a read-index request to the leader.
    case readIndex = 11
    case readIndexResponse = 12
    /// Node-level liveness (`NodeLiveness`), not a Raft message: hosts consume it, and
    /// `RaftNode.step` ignores it.
    case ping = 13
}

public struct Message: Sendable, Equatable, CustomStringConvertible {
    public var kind: MessageKind
    public var from: NodeID
    public var to: NodeID
    public var term: UInt64
    /// append: the term of the entry before `entries`; votes: the candidate's last term;
    /// rejected append responses: the term of `rejectHint`.
    public var logTerm: UInt64 = 0
    /// append: the index before `entries`; votes: the candidate's last index; append responses:
    /// the last index accepted, or the index rejected; read-index responses: the read index.
    public var index: UInt64 = 0
    public var entries: [Entry] = []
    public var commit: UInt64 = 0
    public var reject = false
    public var rejectHint: UInt64 = 0
    /// append and snapshot: the leader's last index when it sent this (a recovering
    /// follower's catch-up target).
    public var lastIndex: UInt64 = 0
    /// Responses from a follower that lost its log: the nonce of its recovery (never 0), so
    /// that the leader forgets what it believed the follower held (a heartbeat response then
    /// carries the follower's last index in `index`). Appends and snapshots echo the nonce the
    /// leader last learned from that follower: only an append sent after the leader forgot is
    /// a valid catch-up target.
    public var recoveryNonce: UInt64 = 0
    public var snapshot: Snapshot?
    /// Read-index requests and the heartbeats that confirm them; `[1]` on a vote marks an
    /// election a leadership transfer asked for.
    public var context: [UInt8] = []
    /// heartbeat: the leader is quiescing the group (every follower holds every entry); a
    /// follower that agrees goes quiet without answering.
    public var quiesce = false

    public init(kind: MessageKind, from: NodeID, to: NodeID, term: UInt64, logTerm: UInt64 = 0, index: UInt64 = 0,
                entries: [Entry] = [], commit: UInt64 = 0, reject: Bool = false, rejectHint: UInt64 = 0,
                lastIndex: UInt64 = 0, recoveryNonce: UInt64 = 0, snapshot: Snapshot? = nil, context: [UInt8] = []) {
        self.kind = kind
        self.from = from
        self.to = to
        self.term = term
        self.logTerm = logTerm
        self.index = index
        self.entries = entries
        self.commit = commit
        self.reject = reject
        self.rejectHint = rejectHint
        self.lastIndex = lastIndex
        self.recoveryNonce = recoveryNonce
        self.snapshot = snapshot
        self.context = context
    }

    public var description: String {
        var text = "\(from)->\(to) \(kind) term \(term)"
        switch kind {
        case .preVote, .vote:
            text += " last \(logTerm)/\(index)"
            if context == RaftNode.transferContext { text += " transfer" }
        case .preVoteResponse, .voteResponse:
            text += reject ? " rejected" : " granted"
        case .append:
            text += " prev \(logTerm)/\(index) commit \(commit)"
            if !entries.isEmpty { text += " [" + entries.map(\.description).joined(separator: ", ") + "]" }
        case .appendResponse:
            text += reject ? " rejected \(index) hint \(logTerm)/\(rejectHint)" : " index \(index)"
            if recoveryNonce != 0 { text += " lost log" }
        case .heartbeat:
            text += " commit \(commit)"
            if quiesce { text += " quiesce" }
        case .heartbeatResponse, .timeoutNow, .ping:
            break
        case .snapshot:
            if let snapshot { text += " snapshot \(snapshot.metadata)" }
        case .readIndex:
            break
        case .readIndexResponse:
            text += " index \(index)"
        }
        if !context.isEmpty && context != RaftNode.transferContext { text += " context \(context)" }
        return text
    }
}

public enum Role: UInt8, Sendable, Equatable, CustomStringConvertible {
    case follower = 1
    case preCandidate = 2
    case candidate = 3
    case leader = 4

    public var description: String {
        switch self {
        case .follower: "follower"
        case .preCandidate: "pre-candidate"
        case .candidate: "candidate"
        case .leader: "leader"
        }
    }
}

/// Volatile state worth telling the host about when it changes.
public struct SoftState: Sendable, Equatable {
    public var leader: NodeID
    public var role: Role
}

/// A linearizable read may be served once the state machine has applied `index`.
public struct ReadState: Sendable, Equatable {
    public var index: UInt64
    public var context: [UInt8]
}

/// Everything the host must do, in order: persist `hardState`, `entries` (replacing any stored
/// entries at or after the first one's index) and `snapshot` — with an fsync if `mustSync` —
/// then send `messages`, apply `snapshot` and `committedEntries` to the state machine, serve
/// `readStates` once applied, and call `advance`.
public struct Ready: Sendable, Equatable {
    public var softState: SoftState?
    public var hardState: HardState?
    public var entries: [Entry] = []
    public var snapshot: Snapshot?
    public var committedEntries: [Entry] = []
    public var messages: [Message] = []
    public var readStates: [ReadState] = []
    public var mustSync = false
    /// The log's truncation count when this was handed out (see `RaftNode.persisted`).
    var truncations: UInt64 = 0

    public init() {}

    public var isEmpty: Bool {
        softState == nil && hardState == nil && entries.isEmpty && snapshot == nil && committedEntries.isEmpty
            && messages.isEmpty && readStates.isEmpty
    }
}

public enum RaftError: Error, Equatable, CustomStringConvertible {
    /// Only the leader takes proposals; `leader` is the node this one believes leads (0: none).
    case notLeader(leader: NodeID)
    /// A leadership transfer is under way.
    case transferInProgress
    /// A membership change is still waiting to be applied.
    case changeInProgress
    case invalidConfigurationChange(String)
    /// The entries asked for were compacted into a snapshot.
    case compacted(UInt64)
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .notLeader(leader): leader == 0 ? "not the leader, and no leader is known" : "not the leader; node \(leader) leads"
        case .transferInProgress: "a leadership transfer is under way"
        case .changeInProgress: "a membership change is still being applied"
        case let .invalidConfigurationChange(text): "invalid membership change: \(text)"
        case let .compacted(index): "index \(index) was compacted into a snapshot"
        case let .invalidArgument(text): "invalid argument: \(text)"
        }
    }
}
