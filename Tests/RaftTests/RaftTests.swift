// The Raft core through a synchronous test cluster: elections, replication, failures, pre-vote,
// check-quorum, divergent logs, snapshots, membership changes, transfers, reads, restarts.

import Basics
import Testing
@testable import Raft

@Suite struct ElectionTests {
    @Test func aSingleNodeLeadsAndCommitsAlone() throws {
        var cluster = TestCluster(size: 1)
        cluster.nodes[1]!.campaign()
        cluster.settle()
        #expect(cluster.node(1).role == .leader)
        try cluster.propose("a")
        try cluster.propose("b")
        #expect(cluster.texts(1) == ["a", "b"])
        #expect(cluster.node(1).committed == 3)  // the no-op, a, b
    }

    @Test(arguments: [3, 5])
    func aClusterElectsOneLeaderAndReplicates(size: Int) throws {
        for seed in UInt64(1)...20 {
            var cluster = TestCluster(size: size, seed: seed)
            let leaderElected = cluster.electLeader()
            let leader = try #require(leaderElected, "seed \(seed)")
            #expect(cluster.nodes.values.filter { $0.role == .leader }.count == 1, "seed \(seed)")
            try cluster.propose("x")
            try cluster.propose("y")
            for id in cluster.nodes.keys {
                #expect(cluster.texts(id) == ["x", "y"], "seed \(seed), node \(id)")
                #expect(cluster.node(id).leader == leader, "seed \(seed)")
            }
        }
    }

    @Test func followersRefuseProposals() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        let follower = cluster.nodes.keys.first { $0 != leader }!
        #expect(throws: RaftError.notLeader(leader: leader)) { try cluster.nodes[follower]!.propose([1]) }
    }

    @Test func aFailedLeaderIsReplaced() throws {
        var cluster = TestCluster(size: 3)
        let firstElected = cluster.electLeader()
        let first = try #require(firstElected)
        try cluster.propose("before")
        cluster.isolate(first)
        let second = cluster.electAnother(than: first)
        let newLeader = try #require(second)
        // Check-quorum: within an election timeout the isolated leader steps down on its own.
        cluster.tickAll(times: 10)
        #expect(cluster.node(first).role != .leader)
        try cluster.propose("after", via: newLeader)
        cluster.heal()
        cluster.tickAll(times: 5)
        for id in cluster.nodes.keys { #expect(cluster.texts(id) == ["before", "after"], "node \(id)") }
    }

    @Test func preVoteKeepsAPartitionedNodeFromDisruptingTheLeader() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        let term = cluster.node(leader).term
        let loner = cluster.nodes.keys.first { $0 != leader }!
        cluster.isolate(loner)
        cluster.tickAll(times: 100)
        // Pre-votes fail, so its term never moves.
        #expect(cluster.node(loner).term == term)
        cluster.heal()
        cluster.tickAll(times: 5)
        #expect(cluster.node(leader).role == .leader)
        #expect(cluster.node(leader).term == term)
    }

    @Test func withoutPreVoteARejoiningNodeForcesAnElection() throws {
        var cluster = TestCluster(size: 3, preVote: false, checkQuorum: false)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        let term = cluster.node(leader).term
        let loner = cluster.nodes.keys.first { $0 != leader }!
        cluster.isolate(loner)
        cluster.tickAll(times: 100)
        #expect(cluster.node(loner).term > term)
        cluster.heal()
        cluster.tickAll(times: 50)
        // The leader saw the higher term and an election followed.
        #expect(cluster.nodes.values.map(\.term).max()! > term)
    }

    @Test func votesGoOnlyToUpToDateLogs() throws {
        // Without check-quorum, so that the follower does not ignore the request for its lease.
        var cluster = TestCluster(size: 3, checkQuorum: false)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        let behind = cluster.nodes.keys.sorted().first { $0 != leader }!
        // `behind` misses two entries.
        try cluster.propose(["a", "b"], missedBy: behind)
        let up = cluster.nodes.keys.first { $0 != leader && $0 != behind }!
        // A vote request from `behind` with its short log is refused by `up`.
        var node = cluster.node(up)
        node.step(Message(kind: .vote, from: behind, to: up, term: node.term + 1, logTerm: cluster.node(behind).lastTerm,
                          index: cluster.node(behind).lastIndex))
        let response = node.ready().messages.first { $0.kind == .voteResponse }
        #expect(response?.reject == true)
    }
}

@Suite struct ReplicationTests {
    @Test func aDivergentOldLeaderIsOverwritten() throws {
        var cluster = TestCluster(size: 3)
        let oldElected = cluster.electLeader()
        let old = try #require(oldElected)
        try cluster.propose("shared")
        // The old leader appends entries no one else receives.
        cluster.isolate(old)
        try cluster.nodes[old]!.propose(Array("lost 1".utf8))
        try cluster.nodes[old]!.propose(Array("lost 2".utf8))
        cluster.settle()
        #expect(cluster.node(old).lastIndex > cluster.node(old).committed)
        let newLeader = cluster.electAnother(than: old)
        let current = try #require(newLeader)
        try cluster.propose("kept", via: current)
        cluster.heal()
        cluster.tickAll(times: 5)
        for id in cluster.nodes.keys {
            #expect(cluster.texts(id) == ["shared", "kept"], "node \(id)")
            let node = cluster.node(id)
            #expect(node.lastIndex == cluster.node(current).lastIndex, "node \(id)")
            for index in node.firstIndex...node.lastIndex {
                #expect(node.entry(at: index) == cluster.node(current).entry(at: index), "node \(id) index \(index)")
            }
        }
    }

    @Test func lostMessagesAreRecovered() throws {
        var cluster = TestCluster(size: 3)
        #expect(cluster.electLeader() != nil)
        var random = SeededRandom(seed: 5)
        cluster.filter = { _ in random.next() % 3 != 0 }  // a third of all messages lost
        for value in 0..<30 { try? cluster.propose("v\(value)") }
        cluster.heal()
        cluster.tickAll(times: 40)
        let leader = try #require(cluster.leader)
        try cluster.propose("last", via: leader)
        cluster.tickAll(times: 3)
        let reference = cluster.texts(leader)
        #expect(reference.last == "last")
        for id in cluster.nodes.keys { #expect(cluster.texts(id) == reference, "node \(id)") }
    }

    @Test func aLaggingFollowerGetsTheSnapshot() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        let lagging = cluster.nodes.keys.sorted().first { $0 != leader }!
        cluster.isolate(lagging)
        for value in 0..<10 { try cluster.propose("v\(value)", via: leader) }
        // The leader snapshots its state machine and drops the log.
        let node = cluster.node(leader)
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: node.applied, term: node.term(at: node.applied)!, membership: node.membership),
                                data: Array(cluster.texts(leader).joined(separator: ",").utf8))
        try cluster.nodes[leader]!.compact(snapshot: snapshot)
        #expect(cluster.node(leader).firstIndex == node.applied + 1)
        cluster.heal()
        cluster.tickAll(times: 5)
        #expect(cluster.disks[lagging]!.snapshot?.metadata.index == snapshot.metadata.index)
        #expect(cluster.disks[lagging]!.snapshot?.data == snapshot.data)
        try cluster.propose("after", via: leader)
        #expect(cluster.node(lagging).committed == cluster.node(leader).committed)
        #expect(cluster.texts(lagging) == ["after"])  // everything before came in the snapshot
    }

    @Test func aRestartedNodeKeepsItsLogAndCatchesUp() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.propose("a")
        let follower = cluster.nodes.keys.sorted().first { $0 != leader }!
        cluster.restart(follower)
        #expect(cluster.node(follower).lastIndex == cluster.node(leader).lastIndex)
        #expect(cluster.node(follower).term == cluster.node(leader).term)
        try cluster.propose("b")
        cluster.tickAll(times: 3)
        #expect(cluster.texts(follower) == ["a", "b"])
    }

    @Test func aRestartedLeaderComesBackAsAFollowerOfTheSameTerm() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.propose("a")
        let term = cluster.node(leader).term
        cluster.restart(leader)
        #expect(cluster.node(leader).role == .follower)
        #expect(cluster.node(leader).term == term)
        #expect(cluster.node(leader).vote == leader)
        let nextElected = cluster.electLeader()
        let next = try #require(nextElected)
        try cluster.propose("b", via: next)
        cluster.tickAll(times: 3)
        for id in cluster.nodes.keys { #expect(cluster.texts(id) == ["a", "b"], "node \(id)") }
    }

    @Test func corruptStoredStateIsRefused() {
        let configuration = RaftConfiguration(id: 1, seed: 1)
        let gap = PersistedState(entries: [Entry(term: 1, index: 1), Entry(term: 1, index: 3)], membership: Membership(voters: [1]))
        #expect(throws: RaftError.self) { try RaftNode(configuration: configuration, state: gap) }
        let pastEnd = PersistedState(hardState: HardState(term: 1, vote: 1, commit: 5), entries: [Entry(term: 1, index: 1)],
                                     membership: Membership(voters: [1]))
        #expect(throws: RaftError.self) { try RaftNode(configuration: configuration, state: pastEnd) }
        #expect(throws: RaftError.self) { try RaftNode(configuration: RaftConfiguration(id: 0, seed: 1), state: PersistedState(membership: Membership())) }
    }
}

@Suite struct MembershipTests {
    @Test func aLearnerJoinsIsPromotedAndAVoterLeaves() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.propose("a")
        cluster.addEmptyNode(4, membership: Membership(voters: [1, 2, 3]))
        try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.addLearner, 4))
        cluster.settle()
        cluster.tickAll(times: 5)
        #expect(cluster.node(leader).membership.learners == [4])
        #expect(cluster.texts(4) == ["a"])
        #expect(cluster.node(leader).progress[4]?.isLearner == true)
        try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.addVoter, 4))
        cluster.settle()
        #expect(cluster.node(leader).membership.voters == [1, 2, 3, 4])
        let removed = cluster.nodes.keys.sorted().first { $0 != leader && $0 != 4 }!
        try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.remove, removed))
        cluster.settle()
        #expect(!cluster.node(leader).membership.members.contains(removed))
        cluster.isolate(removed)
        try cluster.propose("b", via: leader)
        cluster.tickAll(times: 3)
        #expect(cluster.texts(4) == ["a", "b"])
    }

    @Test func changesGoOneAtATime() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        cluster.addEmptyNode(4, membership: Membership(voters: [1, 2, 3]))
        try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.addLearner, 4))
        #expect(throws: RaftError.changeInProgress) {
            try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.addLearner, 5))
        }
        cluster.settle()
        try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.addVoter, 4))
        cluster.settle()
        #expect(throws: RaftError.self) {
            try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.addLearner, 4))
        }
    }

    @Test func aRemovedLeaderStepsDownAndTheRestElect() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.nodes[leader]!.proposeConfigurationChange(ConfigurationChange(.remove, leader))
        cluster.settle()
        #expect(cluster.node(leader).role == .follower)
        cluster.isolate(leader)
        let next = cluster.electAnother(than: nil)
        let newLeader = try #require(next)
        #expect(newLeader != leader)
        #expect(cluster.node(newLeader).membership.voters.count == 2)
    }
}

@Suite struct TransferAndReadTests {
    @Test func leadershipTransfers() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.propose("a")
        let target = cluster.nodes.keys.sorted().first { $0 != leader }!
        try cluster.nodes[leader]!.transferLeadership(to: target)
        cluster.settle()
        #expect(cluster.node(target).role == .leader)
        #expect(cluster.node(leader).role == .follower)
        try cluster.propose("b", via: target)
        for id in cluster.nodes.keys { #expect(cluster.texts(id) == ["a", "b"]) }
    }

    @Test func aTransferToALaggingNodeCatchesItUpFirst() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        let target = cluster.nodes.keys.sorted().first { $0 != leader }!
        try cluster.propose(["a", "b"], missedBy: target)
        try cluster.nodes[leader]!.transferLeadership(to: target)
        #expect(throws: RaftError.transferInProgress) { try cluster.nodes[leader]!.propose([1]) }
        cluster.settle()
        #expect(cluster.node(target).role == .leader)
        #expect(cluster.texts(target) == ["a", "b"])
    }

    @Test func readIndexOnTheLeaderAndThroughAFollower() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.propose("a")
        try cluster.nodes[leader]!.readIndex(context: [1])
        cluster.settle()
        #expect(cluster.readStates[leader] == [ReadState(index: cluster.node(leader).committed, context: [1])])
        let follower = cluster.nodes.keys.sorted().first { $0 != leader }!
        try cluster.nodes[follower]!.readIndex(context: [2])
        cluster.settle()
        #expect(cluster.readStates[follower] == [ReadState(index: cluster.node(leader).committed, context: [2])])
    }

    @Test func anIsolatedLeaderCannotConfirmAReadIndex() throws {
        var cluster = TestCluster(size: 3)
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        cluster.isolate(leader)
        try cluster.nodes[leader]!.readIndex(context: [9])
        cluster.settle()
        cluster.tick(leader, times: 3)
        cluster.settle()
        #expect(cluster.readStates[leader, default: []].isEmpty)
    }

    /// Three nodes with lease reads; the leader has committed an entry and a stamped
    /// heartbeat round came back from everyone, so it holds a lease.
    static func leaseHoldingCluster() throws -> (TestCluster, NodeID) {
        var cluster = TestCluster(size: 3) { $0.leaseReads = true }
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.propose("a")
        cluster.tick(leader, times: 1)
        cluster.settle()
        return (cluster, leader)
    }

    @Test func leaseReadsAnswerWithoutARound() throws {
        var cluster = TestCluster(size: 3) { $0.leaseReads = true }
        let leaderElected = cluster.electLeader()
        let leader = try #require(leaderElected)
        try cluster.propose("a")
        // No heartbeat answered yet: no lease, so the read waits for a round (cut off here).
        cluster.filter = { _ in false }
        try cluster.nodes[leader]!.readIndex(context: [2])
        cluster.settle()
        #expect(cluster.readStates[leader, default: []].isEmpty)
        // A stamped heartbeat round answered by a quorum: the lease holds, reads need no round.
        cluster.filter = { _ in true }
        cluster.tick(leader, times: 1)
        cluster.settle()
        cluster.readStates[leader] = []
        cluster.filter = { _ in false }
        try cluster.nodes[leader]!.readIndex(context: [3])
        cluster.settle()
        #expect(cluster.readStates[leader]?.first?.index == cluster.node(leader).committed)
    }

    /// A follower that answered a lease-stamped heartbeat and then restarts has forgotten when
    /// it heard from the leader: with lease reads it ignores elections for an election timeout
    /// after starting, so no other leader can be elected while the old one's lease runs.
    @Test func aRestartedFollowerKeepsTheLeaseItPromised() throws {
        var (cluster, leader) = try Self.leaseHoldingCluster()
        let followers = cluster.nodes.keys.filter { $0 != leader }.sorted()
        let (restarted, candidate) = (followers[0], followers[1])
        cluster.isolate(leader)
        cluster.restart(restarted)
        cluster.nodes[candidate]!.campaign()
        cluster.settle()
        #expect(cluster.node(candidate).role != .leader, "elected while the old leader's lease may run")
        #expect(cluster.node(leader).role == .leader)
        cluster.readStates[leader] = []
        try cluster.nodes[leader]!.readIndex(context: [6])
        cluster.settle()
        #expect(cluster.readStates[leader]?.count == 1, "the lease still holds")
        // An election timeout later the two elect a leader.
        cluster.tick(restarted, times: cluster.node(restarted).configuration.electionTicks)
        let other = cluster.electAnother(than: leader)
        #expect(other == candidate || other == restarted)
    }

    /// Once a leader has sent `timeoutNow`, its target may win an election that the followers'
    /// leases do not hold off — even after the transfer was abandoned here (the message may
    /// arrive late). The leader serves no lease read for the rest of its term.
    @Test func noLeaseReadsAfterATimeoutNowLeft() throws {
        var (cluster, leader) = try Self.leaseHoldingCluster()
        let target = cluster.nodes.keys.filter { $0 != leader }.sorted()[0]
        cluster.filter = { $0.kind != .timeoutNow }  // it never arrives; the transfer is abandoned
        try cluster.nodes[leader]!.transferLeadership(to: target)
        cluster.settle()
        cluster.tick(leader, times: cluster.node(leader).configuration.electionTicks)
        cluster.settle()
        #expect(cluster.node(leader).role == .leader && cluster.node(leader).transferee == 0)
        let served = cluster.node(leader).leaseReadsServed
        cluster.readStates[leader] = []
        try cluster.nodes[leader]!.readIndex(context: [7])
        cluster.settle()
        #expect(cluster.readStates[leader]?.count == 1, "answered after a heartbeat round")
        #expect(cluster.node(leader).leaseReadsServed == served, "not from the lease")
    }

    /// With lease reads, a follower inside a leader's lease does not campaign when told to.
    @Test func aFollowerInsideALeaseDoesNotCampaignWhenTold() throws {
        var (cluster, leader) = try Self.leaseHoldingCluster()
        let follower = cluster.nodes.keys.filter { $0 != leader }.sorted()[0]
        let term = cluster.node(follower).term
        cluster.nodes[follower]!.campaign()
        cluster.settle()
        #expect(cluster.node(follower).role == .follower && cluster.node(follower).term == term)
        #expect(cluster.node(leader).role == .leader)
    }

    /// The lease runs out `leaseTicks` ticks after the stamp a quorum last answered — before
    /// the followers' election timeout (10 ticks here) can let another leader in.
    @Test func aLeaseRunsOutBeforeTheFollowersStopIgnoringElections() throws {
        var (cluster, leader) = try Self.leaseHoldingCluster()
        let lease = cluster.node(leader).leaseTicks
        #expect(lease == 7 && lease < UInt64(cluster.node(leader).configuration.electionTicks))
        cluster.filter = { _ in false }
        cluster.tick(leader, times: Int(lease) - 1)
        cluster.readStates[leader] = []
        try cluster.nodes[leader]!.readIndex(context: [4])
        cluster.settle()
        #expect(cluster.readStates[leader]?.count == 1, "still within the lease")
        cluster.tick(leader, times: 1)
        cluster.readStates[leader] = []
        try cluster.nodes[leader]!.readIndex(context: [5])
        cluster.settle()
        #expect(cluster.readStates[leader, default: []].isEmpty, "the lease has run out")
    }
}

@Suite struct LostLogTests {
    /// A node whose damaged log was set aside comes back empty with its term and vote: it
    /// acknowledges appends but neither votes nor campaigns until a leader has brought its log
    /// up to that leader's last index, and the leader forgets what it believed the node held.
    @Test func aNodeThatLostItsLogStaysOutOfElectionsUntilCaughtUp() throws {
        var cluster = TestCluster(size: 3)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        for value in 0..<5 { try cluster.propose("v\(value)") }
        let lost = cluster.nodes.keys.sorted().first { $0 != leader }!
        let before = cluster.node(leader).progress[lost]!.match
        #expect(before == cluster.node(leader).lastIndex)
        // Restart `lost` with an empty log, keeping term and vote.
        let hard = cluster.node(lost).hardState
        let configuration = cluster.node(lost).configuration
        cluster.nodes[lost] = try RaftNode(configuration: configuration,
                                           state: PersistedState(hardState: HardState(term: hard.term, vote: hard.vote, commit: 0),
                                                                 membership: cluster.node(lost).membership, lostLog: true))
        cluster.applied[lost] = []
        #expect(cluster.node(lost).recovering)
        // It refuses a vote while recovering, even to an up-to-date candidate.
        var probe = cluster.node(lost)
        probe.step(Message(kind: .vote, from: leader, to: lost, term: hard.term + 5, logTerm: cluster.node(leader).lastTerm,
                           index: cluster.node(leader).lastIndex))
        #expect(probe.ready().messages.first { $0.kind == .voteResponse }?.reject == true)
        // And it never campaigns.
        var alone = cluster.node(lost)
        for _ in 0..<100 { alone.tick() }
        #expect(alone.role == .follower)
        // The leader's next append is rejected with the lost-log mark; the leader resets its
        // view and re-replicates everything.
        cluster.tickAll(times: 3)
        #expect(!cluster.node(lost).recovering)
        #expect(cluster.node(lost).lastIndex == cluster.node(leader).lastIndex)
        #expect(cluster.texts(lost) == cluster.texts(leader))
        #expect(cluster.node(leader).progress[lost]!.match == cluster.node(leader).lastIndex)
    }
}

@Suite struct RecoveryTargetTests {
    /// Found in review: an append sent before the leader learned of the lost log (here, one
    /// delayed in the network) must not end the recovery, whatever its last index says; only
    /// an append echoing this recovery's nonce sets the target, and recovery ends once the log
    /// is durable through it.
    @Test func onlyAnAppendEchoingTheRecoveryNonceEndsIt() throws {
        var node = try RaftNode(configuration: RaftConfiguration(id: 2, seed: 3),
                                state: PersistedState(hardState: HardState(term: 1, vote: 1, commit: 0),
                                                      membership: Membership(voters: [1, 2, 3]), lostLog: true))
        #expect(node.recovering && node.recoveryNonce != 0)
        // A stale append from before the crash: accepted, but no target.
        node.step(Message(kind: .append, from: 1, to: 2, term: 1, logTerm: 0, index: 0, entries: [Entry(term: 1, index: 1)],
                          commit: 0, lastIndex: 1))
        var ready = node.ready()
        #expect(ready.messages.first?.recoveryNonce == node.recoveryNonce)
        node.advance(ready)
        #expect(node.recovering)
        // The leader, having forgotten, echoes the nonce: the target is its last index (3).
        node.step(Message(kind: .append, from: 1, to: 2, term: 1, logTerm: 1, index: 1, entries: [Entry(term: 1, index: 2)],
                          commit: 1, lastIndex: 3, recoveryNonce: node.recoveryNonce))
        ready = node.ready()
        node.advance(ready)
        #expect(node.recovering, "durable through 2 of 3")
        node.step(Message(kind: .append, from: 1, to: 2, term: 1, logTerm: 1, index: 2, entries: [Entry(term: 1, index: 3)],
                          commit: 2, lastIndex: 3, recoveryNonce: node.recoveryNonce))
        ready = node.ready()
        #expect(node.recovering, "in memory through 3, not yet durable")
        node.advance(ready)
        #expect(!node.recovering)
    }

    /// Found in review: a single voter restarted with a lost commit index must not answer a
    /// read before an entry of its term commits.
    @Test func aSingleVoterWaitsForItsTermBeforeAnsweringReads() throws {
        var node = try RaftNode(configuration: RaftConfiguration(id: 1, seed: 1),
                                state: PersistedState(hardState: HardState(term: 1, vote: 1, commit: 1),
                                                      entries: [Entry(term: 1, index: 1), Entry(term: 1, index: 2)],
                                                      membership: Membership(voters: [1]), applied: 1))
        node.campaign()
        try node.readIndex(context: [7])
        // The read is answered only with the new term's no-op committed (index 3).
        var states: [ReadState] = []
        for _ in 0..<3 {
            let ready = node.ready()
            states += ready.readStates
            node.advance(ready)
        }
        #expect(states == [ReadState(index: 3, context: [7])])
    }
}
