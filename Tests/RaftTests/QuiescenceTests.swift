// Quiet groups (`RaftConfiguration.quiesce`) and node liveness (`NodeLiveness`): an idle group
// stops heartbeating and ticking; any message or request wakes it; a quiet follower whose
// leader's node goes silent wakes up through `reportNodeDown` and the group elects again.

import Basics
import Testing
@testable import Raft

@Suite struct QuiescenceTests {
    static func quietCluster(size: Int = 3, seed: UInt64 = 1, leaseReads: Bool = false) -> TestCluster {
        TestCluster(size: size, seed: seed) {
            $0.quiesce = true
            $0.leaseReads = leaseReads
        }
    }

    /// Ticks everyone once and returns the messages that went out.
    static func tickAndCollect(_ cluster: inout TestCluster) -> Int {
        let before = cluster.delivered
        cluster.tickAll()
        return cluster.delivered - before
    }

    @Test(arguments: [3, 5])
    func anIdleGroupGoesQuietAndStaysQuiet(size: Int) throws {
        var cluster = Self.quietCluster(size: size)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        try cluster.propose("a")
        // A heartbeat round or two, then quiet.
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        for id in cluster.nodes.keys { #expect(cluster.node(id).quiesced, "node \(id) is not quiet") }
        var messages = 0
        for _ in 0..<200 { messages += Self.tickAndCollect(&cluster) }
        #expect(messages == 0, "a quiet group sent \(messages) messages")
        #expect(cluster.node(leader).role == .leader)
        #expect(cluster.nodes.values.allSatisfy { $0.term == cluster.node(leader).term }, "someone campaigned")
    }

    @Test func aProposalWakesTheGroupAndItGoesQuietAgain() throws {
        var cluster = Self.quietCluster()
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        #expect(cluster.node(leader).quiesced)
        try cluster.propose("b")
        for id in cluster.nodes.keys { #expect(cluster.texts(id) == ["b"], "node \(id)") }
        #expect(!cluster.node(leader).quiesced)
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        for id in cluster.nodes.keys { #expect(cluster.node(id).quiesced, "node \(id) did not go quiet again") }
    }

    @Test func aQuietFollowerWhoseLeaderDiesWakesThroughLivenessAndTheGroupElects() throws {
        for seed in UInt64(1)...10 {
            var cluster = Self.quietCluster(seed: seed)
            let elected = cluster.electLeader()
            let leader = try #require(elected, "seed \(seed)")
            try cluster.propose("a")
            for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
            cluster.isolate(leader)
            // Without liveness news nobody notices: quiet followers do not time out.
            for _ in 0..<100 { cluster.tickAll() }
            #expect(cluster.nodes.values.filter { $0.role == .leader }.map(\.id) == [leader], "seed \(seed)")
            // Liveness reports the leader's node down on the followers.
            for id in cluster.nodes.keys where id != leader { cluster.nodes[id]!.reportNodeDown(leader) }
            let replacement = cluster.electAnother(than: leader, maxTicks: 60)
            #expect(replacement != nil, "seed \(seed): no new leader after the old one's node went down")
            try cluster.propose("b", via: replacement)
            for id in cluster.nodes.keys where id != leader { #expect(cluster.texts(id) == ["a", "b"], "seed \(seed), node \(id)") }
        }
    }

    /// The leader restarts with a lost log faster than liveness would miss it: it cannot lead or
    /// vote, so the quiet followers must learn of the restart (a new incarnation) and elect.
    @Test func aLeaderBackWithALostLogIsReplacedAndCatchesUp() throws {
        var cluster = Self.quietCluster()
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        try cluster.propose("a")
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        #expect(cluster.nodes.values.allSatisfy { $0.quiesced })
        var lost = PersistedState(hardState: HardState(term: cluster.node(leader).term, vote: leader),
                                  membership: cluster.node(leader).membership, lostLog: true)
        lost.hardState.commit = 0
        cluster.nodes[leader] = try RaftNode(configuration: cluster.node(leader).configuration, state: lost)
        cluster.disks[leader] = lost
        for _ in 0..<60 { cluster.tickAll() }
        #expect(cluster.nodes.values.allSatisfy { $0.role != .leader }, "nobody should lead before the restart is noticed")
        for id in cluster.nodes.keys where id != leader { cluster.nodes[id]!.reportNodeRestarted(leader) }
        let replacement = cluster.electAnother(than: leader, maxTicks: 60)
        let next = try #require(replacement, "the quiet followers did not elect")
        try cluster.propose("b", via: next)
        cluster.tickAll(times: 3)
        #expect(!cluster.node(leader).recovering, "the old leader did not catch up")
        #expect(cluster.node(leader).lastIndex == cluster.node(next).lastIndex)
    }

    /// A follower restarts with a lost log while the group is quiet: the quiet leader must wake
    /// (heartbeats carry the news back), or the follower would stay out of elections.
    @Test func aFollowerBackWithALostLogWakesTheLeaderAndCatchesUp() throws {
        var cluster = Self.quietCluster()
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        try cluster.propose("a")
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        let follower = cluster.nodes.keys.sorted().first { $0 != leader }!
        let lost = PersistedState(hardState: HardState(term: cluster.node(follower).term, vote: cluster.node(follower).vote),
                                  membership: cluster.node(follower).membership, lostLog: true)
        cluster.nodes[follower] = try RaftNode(configuration: cluster.node(follower).configuration, state: lost)
        cluster.disks[follower] = lost
        cluster.applied[follower] = []
        cluster.nodes[leader]!.reportNodeRestarted(follower)
        #expect(!cluster.node(leader).quiesced)
        cluster.tickAll(times: 5)
        #expect(!cluster.node(follower).recovering, "the follower did not catch up")
        #expect(cluster.texts(follower) == ["a"])
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        #expect(cluster.nodes.values.allSatisfy { $0.quiesced }, "the group did not go quiet again")
    }

    @Test func reportNodeDownIgnoresOtherNodesAndAwakeGroups() throws {
        var cluster = Self.quietCluster()
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let follower = cluster.nodes.keys.sorted().first { $0 != leader }!
        let other = cluster.nodes.keys.sorted().first { $0 != leader && $0 != follower }!
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        cluster.nodes[follower]!.reportNodeDown(other)
        #expect(cluster.node(follower).quiesced && cluster.node(follower).leader == leader)
        cluster.nodes[leader]!.reportNodeDown(follower)
        #expect(cluster.node(leader).quiesced && cluster.node(leader).role == .leader)
    }

    @Test func aQuiescingHeartbeatToALaggingFollowerIsAnsweredAndWakesTheLeader() throws {
        var cluster = Self.quietCluster()
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        let follower = cluster.nodes.keys.sorted().first { $0 != leader }!
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        // Hand the follower a quiescing heartbeat claiming more than its log holds.
        var heartbeat = Message(kind: .heartbeat, from: leader, to: follower, term: cluster.node(leader).term,
                                commit: cluster.node(follower).lastIndex + 5)
        heartbeat.quiesce = true
        cluster.nodes[follower]!.step(heartbeat)
        #expect(!cluster.node(follower).quiesced)
        let ready = cluster.process(follower)
        #expect(ready.messages.map(\.kind) == [.heartbeatResponse])
        cluster.settle()
        #expect(!cluster.node(leader).quiesced, "the answer did not wake the leader")
    }

    @Test func aPingIsNotARaftMessage() throws {
        var cluster = Self.quietCluster()
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        let follower = cluster.nodes.keys.sorted().first { $0 != leader }!
        cluster.nodes[leader]!.step(Message(kind: .ping, from: follower, to: leader, term: 0))
        #expect(cluster.node(leader).quiesced)
        #expect(!cluster.node(leader).hasReady)
    }

    @Test func aWokenLeaderServesNoLeaseReadUntilAQuorumAnswersAgain() throws {
        var cluster = Self.quietCluster(leaseReads: true)
        let elected = cluster.electLeader()
        let leader = try #require(elected)
        // Awake, after a check-quorum round: lease reads are answered at once.
        cluster.tickAll(times: 12)
        for _ in 0..<3 { _ = Self.tickAndCollect(&cluster) }
        #expect(cluster.node(leader).quiesced)
        try cluster.nodes[leader]!.readIndex(context: [7])
        let ready = cluster.process(leader)
        #expect(ready.readStates.isEmpty, "a woken leader answered from its lease")
        #expect(ready.messages.contains { $0.kind == .heartbeat && $0.context == [7] })
        cluster.settle()
        #expect(cluster.readStates[leader]?.map(\.context) == [[7]], "the heartbeat round did not confirm the read")
    }
}

@Suite struct NodeLivenessTests {
    @Test func pingsGoToQuietPeersAndSilentPeersAreReportedOnce() {
        var liveness = NodeLiveness(pingTicks: 2, timeoutTicks: 5)
        liveness.track(2)
        liveness.track(3)
        #expect(liveness.tick().ping == [2, 3])  // new peers are pinged at once
        var downs: [[NodeID]] = []
        for tick in 2...8 {
            if tick % 2 == 0 { liveness.heard(from: 2) }
            liveness.sent(to: 2)
            let (ping, nowDown) = liveness.tick()
            #expect(!ping.contains(2), "tick \(tick): pinged a peer it had just sent to")
            downs.append(nowDown)
        }
        #expect(downs.flatMap { $0 } == [3], "peer 3 should be reported down exactly once: \(downs)")
        #expect(liveness.isDown(3) && !liveness.isDown(2))
        liveness.heard(from: 3)
        #expect(!liveness.isDown(3))
    }

    @Test func aNewIncarnationMeansARestart() {
        var liveness = NodeLiveness()
        var restarts: [Bool] = []
        for incarnation: UInt64 in [7, 7, 9, 9] { restarts.append(liveness.heard(from: 2, incarnation: incarnation)) }
        #expect(restarts == [false, false, true, false])  // the first sight is no restart
    }
}
