// Three multi-Raft hosts over in-memory record logs, driven cycle by cycle on the test thread:
// groups elect, proposals complete once applied, one append per cycle carries every group, and
// a node whose disk is crash-cloned recovers its groups from the log and catches up.

import Basics
import FileIO
import FileIOSim
import Raft
import RecordLog
import Testing
@testable import RaftStorage

final class Mailbox: @unchecked Sendable {
    let lock = ConditionLock()
    var queued: [NodeID: [(group: UInt64, message: Message)]] = [:]
    func post(_ to: NodeID, _ messages: [(group: UInt64, message: Message)]) { lock.withLock { queued[to, default: []] += messages } }
    func take() -> [NodeID: [(group: UInt64, message: Message)]] { lock.withLock { defer { queued = [:] }; return queued } }
}

final class Outcomes: @unchecked Sendable {
    let lock = ConditionLock()
    var results: [Int: Result<UInt64, RaftError>] = [:]
    func set(_ key: Int, _ result: Result<UInt64, RaftError>) { lock.withLock { results[key] = result } }
}

final class AppliedLog: RaftApplier {
    var entries: [UInt64: [Entry]] = [:]
    func apply(group: UInt64, entries new: [Entry]) { entries[group, default: []] += new }
}

struct HostCluster {
    var fileSystems: [MemoryFileSystem]
    var hosts: [RaftHost] = []
    var appliers: [AppliedLog] = []
    let mailbox = Mailbox()
    let groups: [UInt64]
    let quiesce: Bool

    init(nodes: Int, groups: [UInt64], quiesce: Bool = false) throws {
        fileSystems = (0..<nodes).map { _ in MemoryFileSystem() }
        self.groups = groups
        self.quiesce = quiesce
        for index in 0..<nodes { try start(index) }
    }

    mutating func start(_ index: Int) throws {
        let log = try RecordLog.open(directory: "/node/log", fileSystem: fileSystems[index], options: smallLogOptions()).0
        let host = RaftHost(node: NodeID(index + 1), store: RaftLogStore(log: log))
        let mailbox = self.mailbox
        host.transport = { to, messages in mailbox.post(to, messages) }
        let applier = AppliedLog()
        host.applier = applier
        for group in groups {
            var configuration = RaftConfiguration(id: NodeID(index + 1), seed: group * 10 + UInt64(index))
            configuration.quiesce = quiesce
            try host.addGroup(group, configuration: configuration,
                              membership: Membership(voters: Set((1...UInt64(fileSystems.count)).map { $0 })))
        }
        if index < hosts.count {
            hosts[index].store.log.close()
            hosts[index] = host
            appliers[index] = applier
        } else {
            hosts.append(host)
            appliers.append(applier)
        }
    }

    /// Cycles every host and delivers mail until nothing moves (bounded).
    func settle(down: Set<Int> = []) throws {
        for _ in 0..<1000 {
            for (index, host) in hosts.enumerated() where !down.contains(index) { try host.runCycle() }
            let mail = mailbox.take()
            if mail.isEmpty && hosts.enumerated().allSatisfy({ down.contains($0.offset) || !$0.element.hasWork }) { return }
            for (to, messages) in mail where !down.contains(Int(to) - 1) { hosts[Int(to) - 1].receive(messages) }
        }
        Issue.record("the hosts did not settle")
    }

    func tickAll(_ times: Int, down: Set<Int> = []) throws {
        for _ in 0..<times {
            for (index, host) in hosts.enumerated() where !down.contains(index) { host.tick() }
            try settle(down: down)
        }
    }
}

@Suite struct RaftHostTests {
    @Test func groupsCommitThroughOneAppendPerCycle() throws {
        let cluster = try HostCluster(nodes: 3, groups: [1, 2, 3])
        for group in cluster.groups { cluster.hosts[Int(group - 1)].campaign(group: group) }
        try cluster.settle()
        let outcomes = Outcomes()
        for round in 0..<5 {
            for group in cluster.groups {
                let key = round * 10 + Int(group)
                cluster.hosts[Int(group - 1)].propose(group: group, data: Array("g\(group)r\(round)".utf8)) { outcomes.set(key, $0) }
            }
        }
        try cluster.settle()
        #expect(outcomes.results.count == 15)
        #expect(outcomes.results.values.allSatisfy { if case .success = $0 { true } else { false } })
        for applier in cluster.appliers {
            for group in cluster.groups {
                let texts = applier.entries[group, default: []].filter { !$0.data.isEmpty }.map { String(decoding: $0.data, as: UTF8.self) }
                #expect(texts == (0..<5).map { "g\(group)r\($0)" })
            }
        }
        // Every host's log holds all three groups.
        for host in cluster.hosts { #expect(Set(host.store.groups) == [1, 2, 3]) }
    }

    @Test func aFollowerRefusesProposals() throws {
        let cluster = try HostCluster(nodes: 3, groups: [1])
        cluster.hosts[0].campaign(group: 1)
        try cluster.settle()
        let outcomes = Outcomes()
        cluster.hosts[1].propose(group: 1, data: [1]) { outcomes.set(0, $0) }
        try cluster.settle()
        #expect(outcomes.results[0] == .failure(.notLeader(leader: 1)))
    }

    @Test func aCrashedNodeRecoversItsGroupsFromTheLog() throws {
        for seed in UInt64(1)...10 {
            var cluster = try HostCluster(nodes: 3, groups: [1, 2])
            cluster.hosts[0].campaign(group: 1)
            cluster.hosts[0].campaign(group: 2)
            try cluster.settle()
            let outcomes = Outcomes()
            for value in 0..<10 { cluster.hosts[0].propose(group: 1 + UInt64(value % 2), data: Array("v\(value)".utf8)) { outcomes.set(value, $0) } }
            try cluster.settle()
            // Node 3 crashes: unsynced writes are lost or torn; its groups come back from the log.
            cluster.fileSystems[2] = cluster.fileSystems[2].crashClone(seed: seed)
            try cluster.start(2)
            for value in 10..<20 { cluster.hosts[0].propose(group: 1 + UInt64(value % 2), data: Array("v\(value)".utf8)) { outcomes.set(value, $0) } }
            try cluster.settle()
            try cluster.tickAll(3)
            #expect(outcomes.results.count == 20, "seed \(seed)")
            for group: UInt64 in [1, 2] {
                let leader = cluster.appliers[0].entries[group, default: []].filter { !$0.data.isEmpty }
                // The restarted node re-applies its log from the start (no snapshot here).
                let recovered = cluster.appliers[2].entries[group, default: []].filter { !$0.data.isEmpty }
                #expect(recovered == leader, "seed \(seed) group \(group)")
            }
        }
    }
}

@Suite struct HostQuiescenceTests {
    /// Idle groups go quiet: afterwards only node-level pings flow — a bounded number per node
    /// pair, however many groups there are.
    @Test func idleGroupsGoQuietAndOnlyPingsFlow() throws {
        let cluster = try HostCluster(nodes: 3, groups: [1, 2, 3, 4, 5, 6], quiesce: true)
        for group in cluster.groups { cluster.hosts[Int((group - 1) % 3)].campaign(group: group) }
        try cluster.settle()
        let outcomes = Outcomes()
        for group in cluster.groups { cluster.hosts[Int((group - 1) % 3)].propose(group: group, data: [UInt8(group)]) { outcomes.set(Int(group), $0) } }
        try cluster.settle()
        try cluster.tickAll(3)
        #expect(outcomes.results.count == 6)
        // From here on, record the traffic.
        let seen = Mailbox()
        let mailbox = cluster.mailbox
        for host in cluster.hosts {
            host.transport = { to, messages in
                mailbox.post(to, messages)
                seen.post(to, messages)
            }
        }
        try cluster.tickAll(50)
        let recorded = seen.take().values.flatMap { $0 }
        let count = recorded.count
        let raft = recorded.filter { $0.message.kind != .ping || $0.group != 0 }
        #expect(raft.isEmpty, "quiet hosts sent \(raft.prefix(5).map(\.message))")
        // 3 nodes × 2 peers, one ping every 2 ticks each.
        #expect(count <= 50 * 6 / 2 + 6, "\(count) messages in 50 quiet ticks")
        for (index, host) in cluster.hosts.enumerated() {
            for group in cluster.groups { #expect(host.status(of: group)?.term == 1, "node \(index + 1) group \(group) campaigned") }
        }
    }

    /// The node leading every group dies while they are quiet: liveness wakes the followers and
    /// each group elects a leader and commits again.
    @Test func quietGroupsOfADeadLeaderElectAgain() throws {
        let cluster = try HostCluster(nodes: 3, groups: [1, 2, 3], quiesce: true)
        for group in cluster.groups { cluster.hosts[0].campaign(group: group) }
        try cluster.settle()
        try cluster.tickAll(3)
        for host in cluster.hosts { for group in cluster.groups { #expect(host.isQuiet(group) == true, "group \(group) is not quiet") } }
        // Quiet followers do not time out on their own.
        try cluster.tickAll(60, down: [0])
        let outcomes = Outcomes()
        for group in cluster.groups {
            let leader = try #require((1...2).first { cluster.hosts[$0].status(of: group)?.role == .leader }, "group \(group) has no leader")
            cluster.hosts[leader].propose(group: group, data: [9]) { outcomes.set(Int(group), $0) }
        }
        try cluster.settle(down: [0])
        #expect(outcomes.results.count == 3)
        #expect(outcomes.results.values.allSatisfy { if case .success = $0 { true } else { false } })
    }

    /// The leader's host restarts (a new incarnation) faster than liveness would call it down,
    /// with its log set aside: it cannot lead or vote, so the quiet followers must notice the
    /// restart from its pings and elect; then it catches up.
    @Test func aQuickRestartWithALostLogIsNoticedByQuietGroups() throws {
        var cluster = try HostCluster(nodes: 3, groups: [1, 2], quiesce: true)
        for group in cluster.groups { cluster.hosts[0].campaign(group: group) }
        try cluster.settle()
        let outcomes = Outcomes()
        for group in cluster.groups { cluster.hosts[0].propose(group: group, data: [1]) { outcomes.set(Int(group), $0) } }
        try cluster.settle()
        try cluster.tickAll(3)
        // Node 1 comes back at once with its log set aside: empty, its hard-state files saying
        // it is recovering (what `RaftHost.open` leaves after a damaged log). It cannot campaign.
        let term = try #require(cluster.hosts[0].status(of: 1)?.term)
        let fresh = MemoryFileSystem()
        try fresh.createDirectory("/node")
        try fresh.createDirectory("/node/raft")
        for group in cluster.groups {
            try HardStateFile.write("/node/raft/\(group).vote", DurableVote(term: term, vote: 1, recovering: true), fileSystem: fresh)
        }
        cluster.hosts[0].store.log.close()
        let restarted = try RaftHost.open(node: 1, directory: "/node", fileSystem: fresh, options: smallLogOptions())
        let mailbox = cluster.mailbox
        restarted.transport = { to, messages in mailbox.post(to, messages) }
        for group in cluster.groups {
            var configuration = RaftConfiguration(id: 1, seed: group * 10)
            configuration.quiesce = true
            try restarted.addGroup(group, configuration: configuration, membership: Membership(voters: [1, 2, 3]))
        }
        cluster.fileSystems[0] = fresh
        cluster.hosts[0] = restarted
        try cluster.tickAll(40)
        for group in cluster.groups {
            let leader = (0...2).first { cluster.hosts[$0].status(of: group)?.role == .leader }
            #expect(leader != nil && leader != 0, "group \(group): no new leader after the quick restart")
            #expect(cluster.hosts[0].status(of: group)?.committed == cluster.hosts[1].status(of: group)?.committed,
                    "group \(group): the restarted node did not catch up")
        }
    }
}

@Suite struct BackgroundWriteTests {
    /// Hosts on their own threads with background writers: every proposal completes and every
    /// node applies the same entries.
    @Test func proposalsCompleteWithWritesInTheBackground() throws {
        let fileSystems = (0..<3).map { _ in MemoryFileSystem() }
        var hosts: [RaftHost] = []
        for (index, fileSystem) in fileSystems.enumerated() {
            let log = try RecordLog.open(directory: "/node/log", fileSystem: fileSystem, options: smallLogOptions()).0
            let host = RaftHost(node: NodeID(index + 1), store: RaftLogStore(log: log))
            host.writesInBackground = true
            hosts.append(host)
        }
        let everyone = hosts
        let appliers = hosts.map { _ in LockedApplied() }
        for (index, host) in hosts.enumerated() {
            host.transport = { to, messages in everyone[Int(to) - 1].receive(messages) }
            host.applier = appliers[index]
            try host.addGroup(1, configuration: RaftConfiguration(id: host.node, seed: UInt64(index)), membership: Membership(voters: [1, 2, 3]))
        }
        let finished = hosts.map { host -> Event in
            let done = Event()
            startDetachedThread {
                host.runLoop()
                done.set()
            }
            return done
        }
        hosts[0].campaign(group: 1)
        // Proposals race the election: retry until one is accepted, then send the rest.
        var accepted = false
        for _ in 0..<1000 where !accepted {
            let done = Event()
            let outcome = Outcomes()
            hosts[0].propose(group: 1, data: Array("first".utf8)) { outcome.set(0, $0); done.set() }
            done.wait()
            if case .success = outcome.results[0] { accepted = true }
        }
        #expect(accepted)
        let outcomes = Outcomes()
        let events = (0..<200).map { _ in Event() }
        for value in 0..<200 {
            hosts[0].propose(group: 1, data: Array("v\(value)".utf8)) { outcomes.set(value, $0); events[value].set() }
        }
        for event in events { event.wait() }
        #expect(outcomes.results.values.allSatisfy { if case .success = $0 { true } else { false } })
        // Followers apply once the leader's commit reaches them: a heartbeat-free settle.
        for _ in 0..<1000 where appliers.contains(where: { $0.count < 201 }) {
            let done = Event()
            hosts[0].propose(group: 1, data: []) { _ in done.set() }
            done.wait()
        }
        for host in hosts { host.stop() }
        for done in finished { done.wait() }
        let reference = appliers[0].texts
        #expect(reference.count == 201)
        for applier in appliers { #expect(applier.texts == reference) }
    }
}

final class LockedApplied: RaftApplier, @unchecked Sendable {
    let lock = ConditionLock()
    var entries: [Entry] = []
    func apply(group: UInt64, entries new: [Entry]) { lock.withLock { entries += new } }
    var texts: [String] { lock.withLock { entries.filter { !$0.data.isEmpty }.map { String(decoding: $0.data, as: UTF8.self) } } }
    var count: Int { texts.count }
}

@Suite struct DamagedLogTests {
    /// A node whose log has a rotten byte in an older segment sets the log aside at open,
    /// restarts its groups empty as having lost their logs, and is brought back by its peers;
    /// nothing from the damaged log is applied.
    @Test func aDamagedLogIsSetAsideAndRebuiltFromPeers() throws {
        for seed in UInt64(1)...5 {
            let fileSystems = (0..<3).map { _ in MemoryFileSystem() }
            var hosts = try fileSystems.enumerated().map { index, fileSystem in
                try RaftHost.open(node: NodeID(index + 1), directory: "/node", fileSystem: fileSystem, options: smallLogOptions())
            }
            let mailbox = Mailbox()
            var appliers: [AppliedLog] = []
            func attach(_ index: Int) throws {
                let applier = AppliedLog()
                hosts[index].applier = applier
                hosts[index].transport = { to, messages in mailbox.post(to, messages) }
                try hosts[index].addGroup(1, configuration: RaftConfiguration(id: NodeID(index + 1), seed: seed + UInt64(index)),
                                          membership: Membership(voters: [1, 2, 3]))
                if index < appliers.count { appliers[index] = applier } else { appliers.append(applier) }
            }
            for index in 0..<3 { try attach(index) }
            func settle() throws {
                for _ in 0..<1000 {
                    for host in hosts { try host.runCycle() }
                    let mail = mailbox.take()
                    if mail.isEmpty && !hosts.contains(where: \.hasWork) { return }
                    for (to, messages) in mail { hosts[Int(to) - 1].receive(messages) }
                }
            }
            hosts[0].campaign(group: 1)
            try settle()
            let outcomes = Outcomes()
            for value in 0..<60 {
                hosts[0].propose(group: 1, data: Array("value \(value) \(String(repeating: "p", count: 100))".utf8)) { outcomes.set(value, $0) }
                try settle()
            }
            #expect(outcomes.results.count == 60)
            // Node 3 loses power; a byte of an older segment rots meanwhile.
            hosts[2].store.log.close()
            let crashed = fileSystems[2].crashClone(seed: seed)
            let segments = try crashed.list("/node/log").filter { $0.hasSuffix(".vlog") }.sorted()
            #expect(segments.count >= 3, "seed \(seed): the test needs older segments")
            let victim = "/node/log/" + segments[Int(seed) % (segments.count - 1)]
            var bytes = try #require(crashed.contents(of: victim))
            bytes[bytes.count / 3] ^= 0x10
            crashed.setContents(of: victim, bytes)
            hosts[2] = try RaftHost.open(node: 3, directory: "/node", fileSystem: crashed, options: smallLogOptions())
            #expect(hosts[2].logWasSetAside, "seed \(seed)")
            #expect(try crashed.list("/node").contains("log.damaged-1"))
            try attach(2)
            try settle()
            for _ in 0..<5 {
                for host in hosts { host.tick() }
                try settle()
            }
            let expected = appliers[0].entries[1, default: []].filter { !$0.data.isEmpty }
            #expect(appliers[2].entries[1, default: []].filter { !$0.data.isEmpty } == expected, "seed \(seed)")
            // Caught up: the hard-state file no longer says recovering.
            #expect(try HardStateFile.read("/node/raft/1.vote", fileSystem: crashed)?.recovering == false, "seed \(seed)")
        }
    }
}
