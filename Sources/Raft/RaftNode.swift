// The Raft core (Ongaro & Ousterhout; the thesis' pre-vote and check-quorum; etcd raft's
// `RawNode` shape): a value with no I/O, no clock and no global randomness. The host feeds it
// messages (`step`), time (`tick`) and requests (`propose`, `readIndex`, `transferLeadership`,
// membership changes), and drains what it must do from `ready()`: persist, send, apply, then
// `advance`. Election timeouts are randomised from a seeded generator, so a run is a pure
// function of its inputs — which is what lets the simulator replay any failure from its seed.

import Basics

public struct RaftConfiguration: Sendable, Equatable {
    public var id: NodeID
    /// Ticks without hearing from a leader before a follower campaigns (randomised in
    /// `electionTicks ..< 2·electionTicks`); also the leader's check-quorum period.
    public var electionTicks = 10
    public var heartbeatTicks = 1
    /// Entry bytes per append message (at least one entry is always sent).
    public var maxMessageBytes = 1 << 20
    /// Appends in flight per follower in replicate state.
    public var maxInflight = 256
    /// Entry bytes handed out for applying per `Ready`.
    public var maxApplyBytes = 64 << 20
    /// Campaign in two phases so that a partitioned node rejoining does not disrupt the leader.
    public var preVote = true
    /// A leader steps down when it has not heard from a quorum within an election timeout, and
    /// followers that hear from a leader ignore vote requests for that long.
    public var checkQuorum = true
    /// Serve read-index requests from the leader's lease (no heartbeat round) — only safe while
    /// no node's ticks run more than 10 % slower than another's; requires `checkQuorum`. The
    /// lease runs from the tick stamped on the latest heartbeat a quorum answered, for
    /// `leaseTicks` ticks: shorter than the election timeout during which those followers
    /// ignore elections.
    public var leaseReads = false
    /// Idle groups go quiet: once every member holds every entry, the leader sends one
    /// quiescing heartbeat and then neither it nor its followers tick until a message, a
    /// request or `reportNodeDown` wakes them. Only for hosts that run node liveness
    /// (`NodeLiveness`): a quiet follower learns that its leader died from that, not from
    /// missing heartbeats.
    public var quiesce = false
    /// Seeds the election-timeout randomisation.
    public var seed: UInt64

    public init(id: NodeID, seed: UInt64, electionTicks: Int = 10, heartbeatTicks: Int = 1) {
        self.id = id
        self.seed = seed
        self.electionTicks = electionTicks
        self.heartbeatTicks = heartbeatTicks
    }

    public func validate() throws(RaftError) {
        guard id != 0 else { throw .invalidArgument("node id 0 is reserved for \"none\"") }
        guard heartbeatTicks > 0 else { throw .invalidArgument("heartbeat ticks must be positive") }
        guard electionTicks > heartbeatTicks else { throw .invalidArgument("election ticks must exceed heartbeat ticks") }
        guard maxInflight > 0, maxMessageBytes > 0, maxApplyBytes > 0 else { throw .invalidArgument("limits must be positive") }
        guard !leaseReads || checkQuorum else { throw .invalidArgument("lease reads need check-quorum") }
    }
}

/// What a node finds on its disk when it starts.
public struct PersistedState: Sendable, Equatable {
    public var hardState: HardState
    /// The latest snapshot (what a lagging follower will be sent), or nil before any.
    public var snapshot: Snapshot?
    /// The entries after the snapshot, contiguous.
    public var entries: [Entry]
    /// The membership as of `applied` (a new group: its initial voters).
    public var membership: Membership
    /// How far the state machine has durably applied (at least the snapshot's index).
    public var applied: UInt64
    /// The node lost log entries it may have acknowledged (a damaged log was set aside): it
    /// must not vote or campaign until a leader has brought it up to that leader's commit
    /// index — only then does its log hold every committed entry again, so that comparing
    /// logs in a vote is sound. Its term and vote must still be the durable ones.
    public var lostLog: Bool

    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [Entry] = [],
                membership: Membership, applied: UInt64 = 0, lostLog: Bool = false) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
        self.membership = membership
        self.applied = applied
        self.lostLog = lostLog
    }
}

public struct RaftNode: Sendable {
    /// The context of a vote request sent because of a leadership transfer.
    public static let transferContext: [UInt8] = [0x54]

    public let configuration: RaftConfiguration
    public var id: NodeID { configuration.id }
    public private(set) var term: UInt64 = 0
    public private(set) var vote: NodeID = 0
    public private(set) var role: Role = .follower
    public private(set) var leader: NodeID = 0
    public private(set) var membership: Membership
    /// The leader's view of every member (the leader's own entry tracks its durable log).
    public private(set) var progress: [NodeID: Progress] = [:]
    /// The node a leadership transfer is handing over to (0: none).
    public private(set) var transferee: NodeID = 0
    var log: RaftLog
    /// The latest snapshot, sent to followers that need entries compacted away.
    public private(set) var latestSnapshot: Snapshot?

    var votes: [NodeID: Bool] = [:]
    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    var random: SeededRandom
    var messages: [Message] = []
    /// Followers are owed an append (new entries or a new commit index): sent by `ready()`.
    var broadcastPending = false
    var readStates: [ReadState] = []
    /// Read-index requests waiting for a quorum of heartbeat acknowledgements, oldest first.
    var pendingReads: [PendingRead] = []
    /// Read-index requests that arrived before this leader committed an entry of its term.
    var readsAwaitingCommit: [(context: [UInt8], from: NodeID)] = []
    var pendingConfigurationIndex: UInt64 = 0
    /// After a lost log: no votes and no campaigns until this log matches a leader's through
    /// the last index that leader had when its first accepted append was sent
    /// (`catchUpTarget`, 0 until then). That leader's log held every entry committed so far —
    /// including any committed with this node's acknowledgement of an entry it then lost — so
    /// from then on this log holds every committed entry and its votes are sound again.
    public private(set) var recovering = false
    var catchUpTarget: UInt64 = 0
    /// Identifies this recovery (drawn at restart, never 0): a leader echoes it in appends it
    /// sends after forgetting what this node held, and only those set the catch-up target.
    var recoveryNonce: UInt64 = 0
    var previousSoft: SoftState
    var previousHard: HardState
    /// The group is quiet (see `RaftConfiguration.quiesce`): no ticks count.
    public private(set) var quiesced = false
    /// A leader woken from quiescence has no lease until a check-quorum round passes (quiet
    /// followers do not keep their side of it).
    var leaseUnconfirmed = false
    /// This leader has sent a `timeoutNow` in its term: the target may win an election that
    /// followers' leases do not hold off, even after the transfer was abandoned here. No lease
    /// reads for the rest of the term.
    var timeoutNowSent = false
    /// Reads this node answered from its lease, without a heartbeat round.
    public private(set) var leaseReadsServed = 0
    /// Ticks counted since this node started (not while quiet): heartbeats carry it as a stamp.
    var tickCount: UInt64 = 0

    /// How many ticks after a heartbeat's stamp the leader may serve lease reads. A follower
    /// that received the heartbeat ignores elections for `electionTicks` of its own ticks from
    /// then — at least `electionTicks − 1` whole tick periods; with its ticks up to 10 % slower
    /// than the leader's, that is `(electionTicks − 1) × 0.9` of the leader's, and the read may
    /// come up to one tick after the stamp's tick began.
    var leaseTicks: UInt64 {
        let protected = (UInt64(configuration.electionTicks) - 1) * 9 / 10
        return protected > 1 ? protected - 1 : 0
    }

    /// The leader holds a lease: a quorum of voters (counting itself) answered a heartbeat
    /// stamped within `leaseTicks` ticks.
    var holdsLease: Bool {
        var stamps = membership.voters.map { $0 == id ? tickCount : (progress[$0]?.leaseStamp ?? 0) }
        stamps.sort(by: >)
        guard membership.quorum >= 1, stamps.count >= membership.quorum else { return false }
        let stamp = stamps[membership.quorum - 1]
        return stamp > 0 && tickCount - stamp < leaseTicks
    }

    struct PendingRead: Sendable {
        var index: UInt64
        var context: [UInt8]
        var from: NodeID
        var acks: Set<NodeID>
    }

    /// A node starting from `state` (a new group: `PersistedState(membership:)`).
    public init(configuration: RaftConfiguration, state: PersistedState) throws(RaftError) {
        try configuration.validate()
        let snapshotMetadata = state.snapshot?.metadata ?? SnapshotMetadata()
        var expected = snapshotMetadata.index + 1
        for entry in state.entries {
            guard entry.index == expected else {
                throw .invalidArgument("stored entries are not contiguous: \(entry.index) where \(expected) was expected")
            }
            expected += 1
        }
        let lastIndex = expected - 1
        guard state.hardState.commit <= lastIndex else {
            throw .invalidArgument("commit index \(state.hardState.commit) is past the stored log (\(lastIndex))")
        }
        guard state.applied <= max(state.hardState.commit, snapshotMetadata.index) else {
            throw .invalidArgument("applied index \(state.applied) is past the commit index \(state.hardState.commit)")
        }
        self.configuration = configuration
        log = RaftLog(snapshot: snapshotMetadata, entries: state.entries, commit: state.hardState.commit, applied: state.applied)
        latestSnapshot = state.snapshot
        membership = state.membership
        term = state.hardState.term
        vote = state.hardState.vote
        random = SeededRandom(seed: configuration.seed)
        previousHard = HardState(term: term, vote: vote, commit: log.committed)
        previousSoft = SoftState(leader: 0, role: .follower)
        recovering = state.lostLog
        if recovering { recoveryNonce = random.next() | 1 }
        becomeFollower(term: term, leader: 0)
    }

    // MARK: Status

    public var committed: UInt64 { log.committed }
    public var applied: UInt64 { log.applied }
    public var firstIndex: UInt64 { log.firstIndex }
    public var lastIndex: UInt64 { log.lastIndex }
    public var lastTerm: UInt64 { log.lastTerm }
    public var stableIndex: UInt64 { log.stable }
    public func entry(at index: UInt64) -> Entry? { log.entry(at: index) }
    public func term(at index: UInt64) -> UInt64? { log.term(at: index) }
    public var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }

    var isPromotable: Bool { membership.voters.contains(id) && log.pendingSnapshot == nil && !recovering }

    // MARK: Time

    /// One unit of logical time.
    public mutating func tick() {
        if quiesced { return }
        tickCount += 1
        if role == .leader {
            tickLeader()
            return
        }
        electionElapsed += 1
        if isPromotable && electionElapsed >= randomizedElectionTimeout {
            electionElapsed = 0
            campaign(configuration.preVote ? .preElection : .election)
        }
    }

    private mutating func tickLeader() {
        heartbeatElapsed += 1
        electionElapsed += 1
        for (peer, state) in progress where state.state == .snapshot {
            // A snapshot nobody reported on (lost on the way): try again.
            progress[peer]!.snapshotTicks += 1
            if progress[peer]!.snapshotTicks > configuration.electionTicks { progress[peer]!.becomeProbe() }
        }
        if electionElapsed >= configuration.electionTicks {
            electionElapsed = 0
            if configuration.checkQuorum {
                let active = membership.voters.filter { $0 == id || progress[$0]?.recentActive == true }.count
                if active < membership.quorum {
                    becomeFollower(term: term, leader: 0)
                    return
                }
                leaseUnconfirmed = false
                for peer in progress.keys where peer != id { progress[peer]!.recentActive = false }
            }
            transferee = 0  // a transfer that did not finish within an election timeout is abandoned
        }
        if heartbeatElapsed >= configuration.heartbeatTicks {
            heartbeatElapsed = 0
            if configuration.quiesce && canQuiesce {
                quiesced = true
                for member in membership.members.sorted() where member != id {
                    var heartbeat = Message(kind: .heartbeat, from: id, to: member, term: term, commit: log.committed)
                    heartbeat.quiesce = true
                    messages.append(heartbeat)
                }
                return
            }
            broadcastHeartbeat(context: pendingReads.last?.context ?? [])
        }
    }

    /// The leader may quiesce: nothing is in flight and every member holds, durably, every
    /// entry, all of them committed and applied here, and nobody waits for anything.
    private var canQuiesce: Bool {
        guard role == .leader, transferee == 0, pendingReads.isEmpty, readsAwaitingCommit.isEmpty, readStates.isEmpty,
              !broadcastPending, messages.isEmpty, committedInCurrentTerm,
              log.committed == log.lastIndex, log.applied == log.committed, log.stable == log.lastIndex,
              pendingConfigurationIndex <= log.applied, log.pendingSnapshot == nil else { return false }
        for member in membership.members where member != id {
            guard let state = progress[member], state.state == .replicate, state.match == log.lastIndex,
                  state.inflights.count == 0 else { return false }
        }
        return true
    }

    /// Wakes a quiet group (any message but a quiescing heartbeat, any request).
    private mutating func unquiesce() {
        guard quiesced else { return }
        quiesced = false
        electionElapsed = 0
        if role == .leader {
            // Heartbeat at the next tick, and count a fresh check-quorum period from here.
            heartbeatElapsed = configuration.heartbeatTicks
            leaseUnconfirmed = true
            for peer in progress.keys where peer != id {
                progress[peer]!.recentActive = false
                progress[peer]!.leaseStamp = 0  // the tick count stood still while quiet
            }
        }
    }

    /// Node liveness says `node` restarted (a new incarnation). A quiet leader of a group that
    /// includes it wakes, so that heartbeats reach it (a node back with a lost log reports that
    /// only in answers); a quiet follower it led wakes and forgets it, so that the group elects
    /// again if it cannot lead (a lost log keeps it out of elections).
    public mutating func reportNodeRestarted(_ node: NodeID) {
        guard quiesced else { return }
        if role == .leader {
            if membership.members.contains(node) { unquiesce() }
        } else if leader == node {
            unquiesce()
            leader = 0
        }
    }

    /// Node liveness says `node` is down: a quiet follower whose leader it was wakes up and
    /// forgets that leader, so that its election timer runs and it grants votes.
    public mutating func reportNodeDown(_ node: NodeID) {
        guard quiesced, role != .leader, leader == node else { return }
        unquiesce()
        leader = 0
    }

    // MARK: Requests

    /// Starts an election now (a test or a bootstrap's convenience; ticks do this on their own).
    public mutating func campaign() {
        unquiesce()
        // With lease reads, not while this node may be part of a leader's lease.
        if configuration.leaseReads && configuration.checkQuorum && keepsLeasePromise { return }
        campaign(configuration.preVote ? .preElection : .election)
    }

    /// Check-quorum's promise: a follower that heard from a live leader less than an election
    /// timeout ago ignores elections. With lease reads, so does a node that has just started:
    /// before a restart it may have answered a heartbeat whose lease is still running.
    var keepsLeasePromise: Bool {
        let justStarted = configuration.leaseReads && tickCount < UInt64(configuration.electionTicks)
        return (leader != 0 && electionElapsed < configuration.electionTicks) || justStarted
    }

    /// Appends `data` to the log as the leader. Returns its index (committed later, or never if
    /// leadership is lost first — the caller learns which from what gets applied at that index).
    @discardableResult
    public mutating func propose(_ data: [UInt8]) throws(RaftError) -> UInt64 {
        unquiesce()
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard transferee == 0 else { throw .transferInProgress }
        let index = appendEntry(kind: .normal, data: data)
        broadcastAppend()
        return index
    }

    /// Proposes a membership change (one at a time: the previous one must have been applied).
    @discardableResult
    public mutating func proposeConfigurationChange(_ change: ConfigurationChange) throws(RaftError) -> UInt64 {
        unquiesce()
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard transferee == 0 else { throw .transferInProgress }
        guard pendingConfigurationIndex <= log.applied else { throw .changeInProgress }
        guard change.node != 0 else { throw .invalidConfigurationChange("node 0") }
        switch change.operation {
        case .addLearner where membership.voters.contains(change.node):
            throw .invalidConfigurationChange("\(change.node) is a voter; remove it before adding it as a learner")
        case .remove where membership.voters == [change.node]:
            throw .invalidConfigurationChange("cannot remove the last voter")
        default: break
        }
        let index = appendEntry(kind: .configurationChange, data: change.encoded)
        pendingConfigurationIndex = index
        broadcastAppend()
        return index
    }

    /// Applies a committed membership change (call it when its entry comes out of
    /// `committedEntries`). Returns the new membership.
    @discardableResult
    public mutating func applyConfigurationChange(_ change: ConfigurationChange) -> Membership {
        let node = change.node
        switch change.operation {
        case .addVoter:
            membership.learners.remove(node)
            membership.voters.insert(node)
        case .addLearner:
            if !membership.voters.contains(node) { membership.learners.insert(node) }
        case .remove:
            membership.voters.remove(node)
            membership.learners.remove(node)
        }
        guard role == .leader else { return membership }
        if membership.members.contains(node) {
            if progress[node] == nil {
                progress[node] = Progress(next: log.lastIndex + 1, isLearner: !membership.voters.contains(node),
                                          maxInflight: configuration.maxInflight)
                // A new member has not had a check-quorum period to answer in yet.
                progress[node]!.recentActive = true
            } else {
                progress[node]!.isLearner = !membership.voters.contains(node)
            }
        } else if node != id {
            progress[node] = nil
        }
        if transferee != 0 && !membership.voters.contains(transferee) { transferee = 0 }
        if !membership.voters.contains(id) {
            // Removed (or never a voter): hand over by stepping down; the rest elect a leader.
            becomeFollower(term: term, leader: 0)
            return membership
        }
        if maybeCommit() { broadcastAppend() }
        return membership
    }

    /// Asks for a linearizable read: a `ReadState` with this context comes out of a later
    /// `Ready` once the leader has confirmed its leadership; serve the read when the state
    /// machine has applied its index. A follower forwards the request to the leader.
    public mutating func readIndex(context: [UInt8]) throws(RaftError) {
        guard !context.isEmpty else { throw .invalidArgument("a read-index context must not be empty") }
        unquiesce()
        if role == .leader {
            handleReadIndex(context: context, from: id)
            return
        }
        guard leader != 0 else { throw .notLeader(leader: 0) }
        messages.append(Message(kind: .readIndex, from: id, to: leader, term: term, context: context))
    }

    /// Hands leadership to `target` (a voter): catch it up, then tell it to campaign at once.
    /// Proposals are refused meanwhile; the transfer is abandoned after an election timeout.
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        unquiesce()
        guard role == .leader else { throw .notLeader(leader: leader) }
        guard target != id, membership.voters.contains(target) else {
            throw .invalidArgument("cannot transfer leadership to \(target): not another voter")
        }
        if transferee == target { return }
        transferee = target
        electionElapsed = 0
        if progress[target]?.match == log.lastIndex {
            timeoutNowSent = true
            messages.append(Message(kind: .timeoutNow, from: id, to: target, term: term))
        } else {
            sendAppend(to: target)
        }
    }

    /// The transport could not reach `peer`: stop streaming to it optimistically.
    public mutating func reportUnreachable(_ peer: NodeID) {
        guard role == .leader, progress[peer]?.state == .replicate else { return }
        progress[peer]!.becomeProbe()
    }

    /// How sending a snapshot to `peer` ended. With `index`, a report about another snapshot
    /// than the one `peer` is waiting for (an older transfer finishing late) is ignored.
    public mutating func reportSnapshot(_ peer: NodeID, index: UInt64? = nil, success: Bool) {
        guard role == .leader, var state = progress[peer], state.state == .snapshot else { return }
        if let index, index != state.pendingSnapshot { return }
        if !success { state.pendingSnapshot = 0 }
        state.becomeProbe()
        // Wait for the follower's answer (or a heartbeat) before probing.
        state.probeSent = true
        progress[peer] = state
    }

    /// Records a snapshot of the state machine through `snapshot.metadata.index` (at most the
    /// applied index) and drops the log entries it covers.
    public mutating func compact(snapshot: Snapshot) throws(RaftError) {
        let index = snapshot.metadata.index
        guard index <= log.applied else {
            throw .invalidArgument("snapshot at \(index) is past the applied index \(log.applied)")
        }
        guard index > log.snapshotIndex else { return }
        guard log.term(at: index) == snapshot.metadata.term else {
            throw .invalidArgument("snapshot term \(snapshot.metadata.term) does not match the log's at \(index)")
        }
        try log.compact(through: index)
        latestSnapshot = snapshot
    }

    // MARK: Messages

    /// Processes one message from a peer.
    public mutating func step(_ message: Message) {
        let m = message
        guard m.to == id, m.from != id, m.from != 0, m.kind != .ping else { return }
        if !(m.kind == .heartbeat && m.quiesce) { unquiesce() }
        if m.term > term {
            if m.kind == .preVote || m.kind == .vote {
                // A follower that hears from a live leader ignores elections (check-quorum's
                // lease), unless the leader itself asked for it (a transfer). With lease reads, a
                // node that has just started ignores them too, for an election timeout: before
                // a restart it may have answered a heartbeat whose lease is still running.
                let inLease = configuration.checkQuorum && keepsLeasePromise
                if inLease && m.context != Self.transferContext { return }
            }
            switch m.kind {
            case .preVote:
                break  // a pre-vote never changes the term
            case .preVoteResponse where !m.reject:
                break  // the pre-candidate takes the term when it campaigns for real
            case .append, .heartbeat, .snapshot:
                becomeFollower(term: m.term, leader: m.from)
            default:
                becomeFollower(term: m.term, leader: 0)
            }
        } else if m.term < term {
            if (configuration.checkQuorum || configuration.preVote) && (m.kind == .append || m.kind == .heartbeat) {
                // A stale leader (say, back from a partition) learns the new term and steps down.
                messages.append(Message(kind: .appendResponse, from: id, to: m.from, term: term))
            } else if m.kind == .preVote {
                messages.append(Message(kind: .preVoteResponse, from: id, to: m.from, term: term, reject: true))
            }
            return
        }

        switch m.kind {
        case .preVote, .vote:
            handleVoteRequest(m)
            return
        default:
            break
        }
        switch role {
        case .leader: stepLeader(m)
        case .preCandidate, .candidate: stepCandidate(m)
        case .follower: stepFollower(m)
        }
    }

    private mutating func handleVoteRequest(_ m: Message) {
        let responseKind: MessageKind = m.kind == .preVote ? .preVoteResponse : .voteResponse
        let canVote = vote == m.from || (vote == 0 && leader == 0) || (m.kind == .preVote && m.term > term)
        if canVote && !recovering && log.isUpToDate(index: m.index, term: m.logTerm) {
            // A pre-vote is granted at the term the candidate would take.
            messages.append(Message(kind: responseKind, from: id, to: m.from, term: m.term))
            if m.kind == .vote {
                electionElapsed = 0
                vote = m.from
            }
        } else {
            messages.append(Message(kind: responseKind, from: id, to: m.from, term: term, reject: true))
        }
    }

    private mutating func stepLeader(_ m: Message) {
        switch m.kind {
        case .appendResponse:
            handleAppendResponse(m)
        case .heartbeatResponse:
            guard var state = progress[m.from] else { return }
            state.recentActive = true
            state.probeSent = false
            if m.logTerm <= tickCount { state.leaseStamp = max(state.leaseStamp, m.logTerm) }  // the stamp echoed
            if m.recoveryNonce != 0 && m.recoveryNonce != state.recoveryNonce {
                state.forgetMatch(above: min(m.index, state.match))
                state.recoveryNonce = m.recoveryNonce
            }
            // A full window with nothing acknowledged may mean lost appends: let one more through.
            if state.state == .replicate && state.inflights.isFull { state.inflights.freeFirst() }
            progress[m.from] = state
            if state.match < log.lastIndex { sendAppend(to: m.from) }
            if !m.context.isEmpty { acknowledgeRead(context: m.context, from: m.from) }
        case .readIndex:
            guard membership.members.contains(m.from) else { return }
            handleReadIndex(context: m.context, from: m.from)
        default:
            break
        }
    }

    private mutating func handleAppendResponse(_ m: Message) {
        // Taken out (and put back on every path before anything reads it) so that its in-flight
        // window is mutated in place, not copied.
        guard var state = progress.removeValue(forKey: m.from) else { return }
        state.recentActive = true
        if !m.reject && m.recoveryNonce != 0 && m.recoveryNonce != state.recoveryNonce {
            // A success from a recovering follower: what it held before is no longer known.
            state.forgetMatch(above: min(m.index, state.match))
            state.recoveryNonce = m.recoveryNonce
        }
        if m.reject {
            var hint = m.rejectHint
            if m.logTerm > 0 { hint = log.conflictHint(index: m.rejectHint, term: m.logTerm).index }
            if m.recoveryNonce != 0 && m.recoveryNonce != state.recoveryNonce {
                // The follower lost entries it had acknowledged: forget them and probe again.
                state.forgetMatch(above: min(hint, state.match))
                state.recoveryNonce = m.recoveryNonce
                progress[m.from] = state
                sendAppend(to: m.from)
                return
            }
            if state.maybeDecrease(rejected: m.index, hint: hint) {
                if state.state == .replicate { state.becomeProbe() }
                progress[m.from] = state
                sendAppend(to: m.from)
            } else {
                progress[m.from] = state
            }
            return
        }
        let wasPaused = state.isPaused
        // An answer to a probe that only confirms the known match still settles where the logs
        // agree: without this, a follower whose snapshot just landed would wait for a heartbeat.
        let updated = state.maybeUpdate(m.index)
        guard updated || (state.match == m.index && state.state == .probe) else {
            progress[m.from] = state
            return
        }
        switch state.state {
        case .probe: state.becomeReplicate()
        case .snapshot where state.match >= state.pendingSnapshot: state.becomeProbe()
        case .replicate: state.inflights.free(through: m.index)
        default: break
        }
        progress[m.from] = state
        if maybeCommit() {
            broadcastAppend()
        } else if wasPaused {
            sendAppend(to: m.from)
        }
        while sendAppend(to: m.from, sendIfEmpty: false) {}
        if m.from == transferee && progress[m.from]?.match == log.lastIndex {
            timeoutNowSent = true
            messages.append(Message(kind: .timeoutNow, from: id, to: m.from, term: term))
        }
    }

    private mutating func stepCandidate(_ m: Message) {
        switch m.kind {
        case .append:
            becomeFollower(term: m.term, leader: m.from)
            handleAppend(m)
        case .heartbeat:
            becomeFollower(term: m.term, leader: m.from)
            handleHeartbeat(m)
        case .snapshot:
            becomeFollower(term: m.term, leader: m.from)
            handleSnapshot(m)
        case .preVoteResponse where role == .preCandidate, .voteResponse where role == .candidate:
            guard membership.voters.contains(m.from) else { return }
            switch poll(m.from, granted: !m.reject) {
            case .won:
                if role == .preCandidate {
                    campaign(.election)
                } else {
                    becomeLeader()
                }
            case .lost:
                becomeFollower(term: term, leader: 0)
            case .pending:
                break
            }
        default:
            break
        }
    }

    private mutating func stepFollower(_ m: Message) {
        switch m.kind {
        case .append:
            electionElapsed = 0
            leader = m.from
            handleAppend(m)
        case .heartbeat:
            electionElapsed = 0
            leader = m.from
            handleHeartbeat(m)
        case .snapshot:
            electionElapsed = 0
            leader = m.from
            handleSnapshot(m)
        case .timeoutNow:
            if isPromotable { campaign(.transfer) }
        case .readIndexResponse:
            readStates.append(ReadState(index: m.index, context: m.context))
        default:
            break
        }
    }

    private mutating func handleAppend(_ m: Message) {
        if m.index < log.committed {
            messages.append(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.committed))
            return
        }
        if let last = log.maybeAppend(index: m.index, logTerm: m.logTerm, commit: m.commit, entries: m.entries) {
            messages.append(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: last,
                                    recoveryNonce: recovering ? recoveryNonce : 0))
            // Recovery ends in `persisted`, once the log is durable through the target.
            if recovering && catchUpTarget == 0 && m.recoveryNonce == recoveryNonce { catchUpTarget = max(m.lastIndex, 1) }
        } else {
            let hint = log.conflictHint(index: m.index, term: m.logTerm)
            messages.append(Message(kind: .appendResponse, from: id, to: m.from, term: term, logTerm: hint.term,
                                    index: m.index, reject: true, rejectHint: hint.index,
                                    recoveryNonce: recovering ? recoveryNonce : 0))
        }
    }

    private mutating func handleHeartbeat(_ m: Message) {
        log.commitTo(min(m.commit, log.lastIndex))
        if m.quiesce {
            // Quiet only if this log holds exactly the leader's (the leader's view says every
            // entry is here; entries beyond it, left by an older term, would never be fixed).
            if configuration.quiesce && !recovering && log.lastIndex == m.commit && log.committed == m.commit {
                quiesced = true
                electionElapsed = 0
                return
            }
            unquiesce()
        }
        // A node that lost its log says so (with its last index): the leader may believe it
        // holds entries it no longer has, and would otherwise never send them again.
        messages.append(Message(kind: .heartbeatResponse, from: id, to: m.from, term: term, logTerm: m.logTerm,
                                index: recovering ? log.lastIndex : 0, recoveryNonce: recovering ? recoveryNonce : 0,
                                context: m.context))
    }

    private mutating func handleSnapshot(_ m: Message) {
        guard let snapshot = m.snapshot else { return }
        let metadata = snapshot.metadata
        if metadata.index <= log.committed {
            messages.append(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.committed))
            return
        }
        if log.matchTerm(metadata.index, metadata.term) {
            // The log already holds the snapshot's last entry: just move the commit index.
            log.commitTo(metadata.index)
            messages.append(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.committed))
            return
        }
        log.restore(snapshot)
        latestSnapshot = snapshot
        membership = metadata.membership
        if recovering && catchUpTarget == 0 && m.recoveryNonce == recoveryNonce { catchUpTarget = max(m.lastIndex, metadata.index) }
        messages.append(Message(kind: .appendResponse, from: id, to: m.from, term: term, index: log.lastIndex,
                                recoveryNonce: recovering ? recoveryNonce : 0))
    }

    // MARK: Reads

    private var committedInCurrentTerm: Bool { log.term(at: log.committed) == term }

    private mutating func handleReadIndex(context: [UInt8], from: NodeID) {
        if !committedInCurrentTerm {
            // Until an entry of this term commits, the commit index may lag the true one (even
            // alone: a restart may have lost the durable commit index of an acknowledged write).
            readsAwaitingCommit.append((context, from))
        } else if membership.voters == [id] {
            answerRead(index: log.committed, context: context, to: from)
        } else if configuration.leaseReads && transferee == 0 && !timeoutNowSent && !leaseUnconfirmed && holdsLease {
            // (A transfer lets the target win without waiting out followers' leases.)
            leaseReadsServed += 1
            answerRead(index: log.committed, context: context, to: from)
        } else {
            pendingReads.append(PendingRead(index: log.committed, context: context, from: from, acks: [id]))
            broadcastHeartbeat(context: context)
        }
    }

    private mutating func acknowledgeRead(context: [UInt8], from: NodeID) {
        guard let position = pendingReads.lastIndex(where: { $0.context == context }) else { return }
        pendingReads[position].acks.insert(from)
        guard pendingReads[position].acks.intersection(membership.voters).count >= membership.quorum else { return }
        // Confirming a later request confirms every earlier one.
        for read in pendingReads[...position] { answerRead(index: read.index, context: read.context, to: read.from) }
        pendingReads.removeFirst(position + 1)
    }

    private mutating func answerRead(index: UInt64, context: [UInt8], to node: NodeID) {
        if node == id {
            readStates.append(ReadState(index: index, context: context))
        } else {
            messages.append(Message(kind: .readIndexResponse, from: id, to: node, term: term, index: index, context: context))
        }
    }

    // MARK: Elections

    enum CampaignKind { case preElection, election, transfer }
    enum PollResult { case won, lost, pending }

    private var hasUnappliedConfigurationChanges: Bool {
        guard log.committed > log.applied else { return false }
        for index in (log.applied + 1)...log.committed where log.entry(at: index)?.kind == .configurationChange { return true }
        return false
    }

    private mutating func campaign(_ kind: CampaignKind) {
        guard isPromotable else { return }
        // A change committed but not applied may remove this node or change the quorum.
        if hasUnappliedConfigurationChanges { return }
        let requestKind: MessageKind
        let requestTerm: UInt64
        if kind == .preElection {
            becomePreCandidate()
            requestKind = .preVote
            requestTerm = term + 1
        } else {
            becomeCandidate()
            requestKind = .vote
            requestTerm = term
        }
        if poll(id, granted: true) == .won {
            // The only voter.
            if kind == .preElection { campaign(.election) } else { becomeLeader() }
            return
        }
        for voter in membership.voters.sorted() where voter != id {
            messages.append(Message(kind: requestKind, from: id, to: voter, term: requestTerm, logTerm: log.lastTerm,
                                    index: log.lastIndex, context: kind == .transfer ? Self.transferContext : []))
        }
    }

    private mutating func poll(_ voter: NodeID, granted: Bool) -> PollResult {
        if votes[voter] == nil { votes[voter] = granted }
        let yes = membership.voters.filter { votes[$0] == true }.count
        let no = membership.voters.filter { votes[$0] == false }.count
        if yes >= membership.quorum { return .won }
        if membership.voters.count - no < membership.quorum { return .lost }
        return .pending
    }

    private mutating func reset(term newTerm: UInt64) {
        if term != newTerm {
            term = newTerm
            vote = 0
        }
        leader = 0
        electionElapsed = 0
        heartbeatElapsed = 0
        quiesced = false
        leaseUnconfirmed = false
        timeoutNowSent = false
        randomizedElectionTimeout = configuration.electionTicks + Int(random.next() % UInt64(configuration.electionTicks))
        votes = [:]
        transferee = 0
        pendingReads = []
        readsAwaitingCommit = []
        progress = [:]
    }

    private mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID) {
        reset(term: newTerm)
        role = .follower
        leader = newLeader
    }

    private mutating func becomePreCandidate() {
        // Keeps term and vote: a pre-vote changes nothing durable.
        votes = [:]
        leader = 0
        role = .preCandidate
    }

    private mutating func becomeCandidate() {
        reset(term: term + 1)
        vote = id
        role = .candidate
    }

    private mutating func becomeLeader() {
        reset(term: term)
        role = .leader
        leader = id
        for member in membership.members {
            var state = Progress(next: log.lastIndex + 1, isLearner: !membership.voters.contains(member),
                                 maxInflight: configuration.maxInflight)
            if member == id {
                _ = state.maybeUpdate(log.stable)
                state.becomeReplicate()
                state.recentActive = true
            }
            progress[member] = state
        }
        // No change may be proposed until everything before this term is applied (a change
        // may be among the entries this leader inherited).
        pendingConfigurationIndex = log.lastIndex
        // An entry of the new term, so that earlier entries can commit (the current-term rule).
        appendEntry(kind: .normal, data: [])
        broadcastAppend()
    }

    // MARK: Replication

    @discardableResult
    private mutating func appendEntry(kind: EntryKind, data: [UInt8]) -> UInt64 {
        let index = log.lastIndex + 1
        log.append([Entry(term: term, index: index, kind: kind, data: data)])
        return index
    }

    /// Moves the commit index to the highest index stored on a quorum of voters, if that entry
    /// is of the current term (earlier terms' entries commit only through it).
    private mutating func maybeCommit() -> Bool {
        let quorum = membership.quorum, voters = membership.voters.count
        guard quorum >= 1, voters >= quorum else { return false }
        // The quorum-th highest match, without allocating (this runs on every append response).
        let candidate = withUnsafeTemporaryAllocation(of: UInt64.self, capacity: voters) { matches -> UInt64 in
            var count = 0
            for voter in membership.voters {
                let match = progress[voter]?.match ?? 0
                var slot = count
                while slot > 0 && matches[slot - 1] < match {
                    matches[slot] = matches[slot - 1]
                    slot -= 1
                }
                matches[slot] = match
                count += 1
            }
            return matches[quorum - 1]
        }
        guard candidate > log.committed, log.term(at: candidate) == term else { return false }
        log.commitTo(candidate)
        if !readsAwaitingCommit.isEmpty {
            let waiting = readsAwaitingCommit
            readsAwaitingCommit = []
            for read in waiting { handleReadIndex(context: read.context, from: read.from) }
        }
        return true
    }

    /// Sends every follower what it needs: at the next `ready()`, so that the proposals and
    /// commit advances of one batch of inputs go out as one append per follower (not one per
    /// proposal or per response).
    private mutating func broadcastAppend() {
        broadcastPending = true
    }

    private mutating func flushBroadcast() {
        guard broadcastPending else { return }
        broadcastPending = false
        guard role == .leader else { return }
        for member in membership.members.sorted() where member != id {
            var sent = false
            while sendAppend(to: member, sendIfEmpty: false) { sent = true }
            if sent { continue }
            // Nothing new to send: the commit index still has to reach the follower, in an
            // append already queued to it (it commits at most what that append matched) or an
            // empty one.
            if let queued = messages.lastIndex(where: { $0.kind == .append && $0.to == member }) {
                messages[queued].commit = max(messages[queued].commit, log.committed)
            } else {
                sendAppend(to: member)
            }
        }
    }

    private mutating func broadcastHeartbeat(context: [UInt8]) {
        for member in membership.members.sorted() where member != id {
            let match = progress[member]?.match ?? 0
            messages.append(Message(kind: .heartbeat, from: id, to: member, term: term, logTerm: tickCount,
                                    commit: min(match, log.committed), context: context))
        }
    }

    /// Sends `peer` the entries it needs next (or the snapshot, if they were compacted away).
    /// Returns whether a message went out.
    @discardableResult
    private mutating func sendAppend(to peer: NodeID, sendIfEmpty: Bool = true) -> Bool {
        // Taken out and put back, so that the in-flight window is mutated in place.
        guard var state = progress.removeValue(forKey: peer) else { return false }
        defer { progress[peer] = state }
        guard !state.isPaused else { return false }
        let previous = state.next - 1
        guard let previousTerm = log.term(at: previous),
              let entries = log.entries(from: state.next, maxBytes: configuration.maxMessageBytes) else {
            guard state.recentActive, let snapshot = latestSnapshot, !snapshot.isEmpty else { return false }
            state.becomeSnapshot(snapshot.metadata.index)
            messages.append(Message(kind: .snapshot, from: id, to: peer, term: term, lastIndex: log.lastIndex,
                                    recoveryNonce: state.recoveryNonce, snapshot: snapshot))
            return true
        }
        if entries.isEmpty && !sendIfEmpty { return false }
        messages.append(Message(kind: .append, from: id, to: peer, term: term, logTerm: previousTerm, index: previous,
                                entries: entries, commit: log.committed, lastIndex: log.lastIndex, recoveryNonce: state.recoveryNonce))
        if let last = entries.last, state.state == .replicate {
            state.next = last.index + 1
            state.inflights.add(last.index)
        } else if state.state == .probe {
            state.probeSent = true
        }
        return true
    }

    // MARK: Ready

    /// Whether `ready()` has anything.
    public var hasReady: Bool {
        SoftState(leader: leader, role: role) != previousSoft || hardState != previousHard || !messages.isEmpty || broadcastPending
            || !readStates.isEmpty || log.hasUnhanded || !log.nextCommitted(maxBytes: 1).isEmpty
    }

    /// Everything to persist, send and apply (see `Ready`). Each `Ready` is answered with
    /// `advance` once all of it is done — or, by a host that writes in the background, with
    /// `applied` once its committed entries are applied and `persisted` once its write is
    /// durable (in order). Every entry and snapshot is handed out once.
    public mutating func ready() -> Ready {
        flushBroadcast()
        var ready = Ready()
        let soft = SoftState(leader: leader, role: role)
        if soft != previousSoft { ready.softState = soft }
        let hard = hardState
        if hard != previousHard { ready.hardState = hard }
        ready.entries = log.unhandedEntries
        ready.snapshot = log.snapshotHanded ? nil : log.pendingSnapshot
        log.handOut(through: ready.entries.last?.index ?? 0, snapshot: ready.snapshot != nil)
        ready.truncations = log.truncations
        ready.committedEntries = log.nextCommitted(maxBytes: configuration.maxApplyBytes)
        if let last = ready.committedEntries.last { log.applying = last.index }
        ready.messages = messages
        messages = []
        ready.readStates = readStates
        readStates = []
        ready.mustSync = !ready.entries.isEmpty || ready.snapshot != nil || hard.term != previousHard.term || hard.vote != previousHard.vote
        previousSoft = soft
        previousHard = hard
        return ready
    }

    /// The host has done everything `ready` asked.
    public mutating func advance(_ ready: Ready) {
        persisted(ready)
        applied(ready)
    }

    /// `ready`'s committed entries are applied.
    public mutating func applied(_ ready: Ready) {
        if let last = ready.committedEntries.last { log.applied = max(log.applied, last.index) }
    }

    /// `ready`'s hard state, entries and snapshot are durable (and the snapshot installed).
    ///
    /// A write handed out before a truncation may hold entries the log has since replaced (and
    /// maybe restored): it then marks nothing stable — the entries after the truncation are
    /// handed out again, and their write, which comes later, makes the watermark move.
    public mutating func persisted(_ ready: Ready) {
        if let snapshot = ready.snapshot { log.snapshotInstalled(index: snapshot.metadata.index) }
        if let last = ready.entries.last, ready.truncations == log.truncations { log.stableTo(index: last.index, term: last.term) }
        if recovering && catchUpTarget != 0 && log.pendingSnapshot == nil && log.stable >= catchUpTarget {
            // Durable through the target: only now may the node vote again.
            recovering = false
        }
        if role == .leader, var state = progress[id] {
            if state.maybeUpdate(log.stable) {
                progress[id] = state
                if maybeCommit() { broadcastAppend() }
            }
        }
    }
}
