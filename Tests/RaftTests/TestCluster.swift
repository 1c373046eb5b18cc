// A tiny synchronous harness for the Raft core: nodes persist by keeping what `Ready` hands
// them, apply committed entries to a list, and exchange messages through a queue that tests can
// filter (partitions, drops). Everything is deterministic.

import Basics
@testable import Raft

struct TestCluster {
    var nodes: [NodeID: RaftNode] = [:]
    /// What each node has durably stored, as `PersistedState` (for restarts).
    var disks: [NodeID: PersistedState] = [:]
    /// Applied normal entries' data, per node, in order (no-ops skipped).
    var applied: [NodeID: [[UInt8]]] = [:]
    var appliedIndexes: [NodeID: [UInt64]] = [:]
    var readStates: [NodeID: [ReadState]] = [:]
    var inFlight: [Message] = []
    /// Messages for which this returns false are dropped.
    var filter: (Message) -> Bool = { _ in true }
    var delivered = 0

    init(size: Int, seed: UInt64 = 1, preVote: Bool = true, checkQuorum: Bool = true, configure: (inout RaftConfiguration) -> Void = { _ in }) {
        let ids = (1...UInt64(size)).map { $0 }
        for id in ids {
            var configuration = RaftConfiguration(id: id, seed: seed &* 1000 &+ id)
            configuration.preVote = preVote
            configuration.checkQuorum = checkQuorum
            configure(&configuration)
            let state = PersistedState(membership: Membership(voters: Set(ids)))
            nodes[id] = try! RaftNode(configuration: configuration, state: state)
            disks[id] = state
            applied[id] = []
            appliedIndexes[id] = []
        }
    }

    /// Adds a node that starts empty, knowing `membership` (joins through a change).
    mutating func addEmptyNode(_ id: NodeID, membership: Membership, seed: UInt64 = 99) {
        let state = PersistedState(membership: membership)
        nodes[id] = try! RaftNode(configuration: RaftConfiguration(id: id, seed: seed), state: state)
        disks[id] = state
        applied[id] = []
        appliedIndexes[id] = []
    }

    func node(_ id: NodeID) -> RaftNode { nodes[id]! }

    var leader: NodeID? {
        let leaders = nodes.values.filter { $0.role == .leader }.sorted { $0.term > $1.term }
        return leaders.first?.id
    }

    /// Handles every node's `Ready` and delivers messages until nothing moves.
    mutating func settle(maxRounds: Int = 10_000) {
        for _ in 0..<maxRounds {
            var moved = false
            for id in nodes.keys.sorted() where nodes[id]!.hasReady {
                process(id)
                moved = true
            }
            if !inFlight.isEmpty {
                let batch = inFlight
                inFlight = []
                for message in batch where filter(message) {
                    guard nodes[message.to] != nil else { continue }
                    nodes[message.to]!.step(message)
                    delivered += 1
                }
                moved = true
            }
            if !moved { return }
        }
        fatalError("the cluster did not settle")
    }

    @discardableResult
    mutating func process(_ id: NodeID) -> Ready {
        var node = nodes[id]!
        let ready = node.ready()
        var disk = disks[id]!
        if let hard = ready.hardState { disk.hardState = hard }
        if let snapshot = ready.snapshot {
            disk.snapshot = snapshot
            disk.entries = []
            disk.membership = snapshot.metadata.membership
            disk.applied = snapshot.metadata.index
        }
        if let first = ready.entries.first {
            let base = (disk.snapshot?.metadata.index ?? 0) + 1
            disk.entries.removeLast(disk.entries.count - Int(first.index - base))
            disk.entries.append(contentsOf: ready.entries)
        }
        inFlight.append(contentsOf: ready.messages)
        for entry in ready.committedEntries {
            if entry.kind == .configurationChange {
                let change = try! ConfigurationChange(decoding: entry.data)
                disk.membership = node.applyConfigurationChange(change)
            } else if !entry.data.isEmpty {
                applied[id]!.append(entry.data)
            }
            appliedIndexes[id]!.append(entry.index)
            disk.applied = entry.index
        }
        readStates[id, default: []].append(contentsOf: ready.readStates)
        node.advance(ready)
        disks[id] = disk
        nodes[id] = node
        return ready
    }

    mutating func tick(_ id: NodeID, times: Int = 1) {
        for _ in 0..<times { nodes[id]!.tick() }
    }

    mutating func tickAll(times: Int = 1) {
        for _ in 0..<times {
            for id in nodes.keys.sorted() { nodes[id]!.tick() }
            settle()
        }
    }

    /// Ticks everyone until some node leads (bounded).
    mutating func electLeader(maxTicks: Int = 200) -> NodeID? {
        for _ in 0..<maxTicks {
            if let leader, nodes.values.filter({ $0.role == .leader }).count == 1 { return leader }
            tickAll()
        }
        return leader
    }

    /// Ticks everyone until a node other than `old` leads (bounded); its id.
    mutating func electAnother(than old: NodeID?, maxTicks: Int = 100) -> NodeID? {
        for _ in 0..<maxTicks {
            tickAll()
            if let other = nodes.values.first(where: { $0.role == .leader && $0.id != old }) { return other.id }
        }
        return nil
    }

    /// Proposes `texts` through the leader while `node` receives nothing, then heals.
    mutating func propose(_ texts: [String], missedBy node: NodeID) throws(RaftError) {
        filter = { $0.to != node }
        for text in texts { try propose(text) }
        heal()
    }

    mutating func propose(_ text: String, via id: NodeID? = nil) throws(RaftError) {
        let target = id ?? leader!
        try nodes[target]!.propose(Array(text.utf8))
        settle()
    }

    /// Cuts `id` off from everyone (both directions).
    mutating func isolate(_ id: NodeID) {
        filter = { $0.from != id && $0.to != id }
    }

    mutating func heal() { filter = { _ in true } }

    /// Restarts `id` from its disk (volatile state lost).
    /// The state machine's list stays: it reflects exactly the disk's applied index.
    mutating func restart(_ id: NodeID) {
        let configuration = nodes[id]!.configuration
        nodes[id] = try! RaftNode(configuration: configuration, state: disks[id]!)
        inFlight.removeAll { $0.to == id || $0.from == id }
    }

    func texts(_ id: NodeID) -> [String] { applied[id]!.map { String(decoding: $0, as: UTF8.self) } }
}
