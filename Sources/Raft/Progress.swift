// The leader's view of each follower's log (etcd raft's `Progress`).

/// How the leader sends to one follower.
public enum ProgressState: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// Unknown match: one append at a time until a response shows where the logs agree.
    case probe = 1
    /// Known match: appends stream optimistically, bounded by the in-flight window.
    case replicate = 2
    /// The follower needs a snapshot; nothing else is sent until it is installed or fails.
    case snapshot = 3

    public var description: String {
        switch self {
        case .probe: "probe"
        case .replicate: "replicate"
        case .snapshot: "snapshot"
        }
    }
}

/// Last indexes of the appends in flight to one follower, oldest first (a bounded queue).
struct Inflights: Sendable, Equatable {
    let capacity: Int
    private var indexes: [UInt64] = []

    init(capacity: Int) { self.capacity = capacity }

    var isFull: Bool { indexes.count >= capacity }
    var count: Int { indexes.count }

    mutating func add(_ index: UInt64) { indexes.append(index) }

    /// Frees every append whose last index is at most `index` (acknowledged).
    mutating func free(through index: UInt64) {
        var drop = 0
        while drop < indexes.count && indexes[drop] <= index { drop += 1 }
        if drop > 0 { indexes.removeFirst(drop) }
    }

    mutating func freeFirst() { if !indexes.isEmpty { indexes.removeFirst() } }
    mutating func reset() { indexes.removeAll() }
}

public struct Progress: Sendable, Equatable {
    /// The highest index known to match the leader's log.
    public internal(set) var match: UInt64 = 0
    /// The next index to send.
    public internal(set) var next: UInt64
    public internal(set) var state: ProgressState = .probe
    public internal(set) var isLearner: Bool
    /// In probe state: an append was sent and not yet answered (or a heartbeat came back).
    var probeSent = false
    /// The snapshot index being sent, in snapshot state.
    var pendingSnapshot: UInt64 = 0
    /// Ticks spent in snapshot state (a lost snapshot is retried after an election timeout).
    var snapshotTicks = 0
    /// Heard from since the last check-quorum round.
    var recentActive = false
    /// The leader's tick (`RaftNode.tickCount`) stamped on the latest heartbeat this follower
    /// answered: it had heard from the leader at or after that tick (lease reads).
    var leaseStamp: UInt64 = 0
    /// The follower's current lost-log recovery, echoed in appends (0: none known).
    var recoveryNonce: UInt64 = 0
    var inflights: Inflights

    init(next: UInt64, isLearner: Bool, maxInflight: Int) {
        self.next = next
        self.isLearner = isLearner
        inflights = Inflights(capacity: maxInflight)
    }

    var isPaused: Bool {
        switch state {
        case .probe: probeSent
        case .replicate: inflights.isFull
        case .snapshot: true
        }
    }

    mutating func becomeProbe() {
        if state == .snapshot {
            next = max(match + 1, pendingSnapshot + 1)
        } else {
            next = match + 1
        }
        state = .probe
        probeSent = false
        pendingSnapshot = 0
        inflights.reset()
    }

    mutating func becomeReplicate() {
        state = .replicate
        next = match + 1
        probeSent = false
        pendingSnapshot = 0
        inflights.reset()
    }

    mutating func becomeSnapshot(_ index: UInt64) {
        state = .snapshot
        pendingSnapshot = index
        snapshotTicks = 0
        probeSent = false
        inflights.reset()
    }

    /// The follower lost its log beyond `index`: the one case where `match` goes down.
    mutating func forgetMatch(above index: UInt64) {
        match = min(match, index)
        state = .probe
        next = match + 1
        probeSent = false
        pendingSnapshot = 0
        inflights.reset()
    }

    /// An acknowledgement through `index`. Returns whether `match` moved.
    mutating func maybeUpdate(_ index: UInt64) -> Bool {
        var updated = false
        if match < index {
            match = index
            updated = true
            probeSent = false
        }
        next = max(next, index + 1)
        return updated
    }

    /// A rejection of the append after `rejected`; `hint` is where the follower's log may
    /// match. Returns false for a stale rejection.
    mutating func maybeDecrease(rejected: UInt64, hint: UInt64) -> Bool {
        if state == .replicate {
            guard rejected > match else { return false }
            next = match + 1
            return true
        }
        guard next - 1 == rejected else { return false }
        next = max(min(rejected, hint + 1), match + 1)
        probeSent = false
        return true
    }
}
