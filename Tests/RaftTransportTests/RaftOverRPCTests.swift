// Three multi-Raft hosts talking over the binary RPC on real loopback sockets: groups elect and
// replicate through `RaftTransport`, batches carry many messages per call, the receiving side
// refuses messages that do not come from the authenticated node, and a node whose server dies
// catches up when it comes back on the same port.

import Basics
import FileIO
import FileIOSim
import Raft
import RaftStorage
import RaftTransport
import RecordLog
import RPC
import RPCTransport
import Synchronization
import Testing

/// Applied entries per group, and waiters for a count.
final class Applied: RaftApplier, @unchecked Sendable {
    let lock = ConditionLock()
    var entries: [UInt64: [Entry]] = [:]
    var waiters: [(group: UInt64, count: Int, continuation: CheckedContinuation<Void, Never>)] = []

    func apply(group: UInt64, entries new: [Entry]) {
        let ready = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            entries[group, default: []] += new.filter { !$0.data.isEmpty }
            let done = waiters.filter { entries[$0.group, default: []].count >= $0.count }.map(\.continuation)
            waiters.removeAll { entries[$0.group, default: []].count >= $0.count }
            return done
        }
        for continuation in ready { continuation.resume() }
    }

    func data(_ group: UInt64) -> [[UInt8]] { lock.withLock { entries[group, default: []].map(\.data) } }

    /// Returns once `group` has applied `count` non-empty entries.
    func wait(group: UInt64, count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if entries[group, default: []].count >= count { return true }
                waiters.append((group, count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Fails the test instead of hanging when `body` takes longer than `seconds`. The bounds are
/// generous: under the full suite, these tests share Swift's cooperative pool (2 threads here)
/// with every other async test, and one run took 3 minutes in all.
func within<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw TimedOut(what: what)
        }
        group.cancelAll()
        return value
    }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

final class RPCNode: @unchecked Sendable {
    let id: NodeID
    let host: RaftHost
    let applier = Applied()
    var server: RPCServer
    var registry: MethodRegistry
    var port = 0
    var transport: RaftTransport?
    let stopped = Event()

    init(id: NodeID) throws {
        self.id = id
        let log = try RecordLog.open(directory: "/log", fileSystem: MemoryFileSystem()).0
        host = RaftHost(node: id, store: RaftLogStore(log: log))
        host.writesInBackground = true
        host.applier = applier
        registry = MethodRegistry()
        RaftTransport.register(host: host, in: &registry)
        server = RPCServer(configuration: RPCServerConfiguration(clusterID: 7, nodeID: id), registry: registry)
    }
}

let groups: [UInt64] = [1, 2, 3]

func startCluster(quiesce: Bool = false) async throws -> [RPCNode] {
    let nodes = try (1...3).map { try RPCNode(id: NodeID($0)) }
    for node in nodes { node.port = try await node.server.start(port: 0) }
    let peers = Dictionary(uniqueKeysWithValues: nodes.map { ($0.id, (host: "127.0.0.1", port: $0.port)) })
    for node in nodes {
        let host = node.host
        let transport = RaftTransport(node: node.id, clusterID: 7, peers: peers, timeout: .seconds(2),
                                      unreachable: { host.reportUnreachable($0) },
                                      snapshotSent: { host.reportSnapshot(group: $0, to: $1, index: $2, success: $3) })
        node.transport = transport
        host.transport = { to, messages in transport.send(to: to, messages) }
        for group in groups {
            // Ticks are 5 ms: an election timeout of 0.5–1 s keeps leaders in place while the
            // rest of the test suite loads both cores.
            var configuration = RaftConfiguration(id: node.id, seed: group * 10 + node.id, electionTicks: 100, heartbeatTicks: 5)
            configuration.quiesce = quiesce
            try host.addGroup(group, configuration: configuration, membership: Membership(voters: [1, 2, 3]))
        }
        startDetachedThread {
            host.runLoop()
            node.stopped.set()
        }
    }
    return nodes
}

func stopCluster(_ nodes: [RPCNode]) async {
    for node in nodes {
        node.host.stop()
        node.stopped.wait()
        await node.transport?.shutdown()
        await node.server.kill()
        node.host.store.log.close()
    }
}

/// Proposes and waits for the outcome.
func propose(_ host: RaftHost, group: UInt64, _ data: [UInt8]) async -> Result<UInt64, RaftError> {
    await withCheckedContinuation { continuation in
        host.propose(group: group, data: data) { continuation.resume(returning: $0) }
    }
}

/// Proposes through whichever node leads `group` (following refusals' hints), until it commits.
/// A failed proposal never committed (the host fails it only once another entry took its index),
/// so retrying cannot apply it twice.
func proposeAnywhere(_ nodes: [RPCNode], group: UInt64, _ data: [UInt8]) async throws {
    var target = Int(group - 1) % nodes.count
    while true {
        switch await propose(nodes[target].host, group: group, data) {
        case .success: return
        case let .failure(.notLeader(leader)) where leader != 0 && Int(leader) <= nodes.count:
            target = Int(leader - 1)
        case .failure:
            target = (target + 1) % nodes.count
            try await Task.sleep(for: .milliseconds(10))
        }
    }
}

/// Ticks every host every 5 ms until cancelled (the passage of time, not a wait for an event).
func startTicker(_ nodes: [RPCNode]) -> Task<Void, Never> {
    Task {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(5))
            for node in nodes { node.host.tick() }
        }
    }
}

@Suite(.serialized) struct RaftOverRPCTests {
    @Test func groupsElectAndReplicateOverLoopback() async throws {
        let nodes = try await startCluster()
        let ticker = startTicker(nodes)
        for group in groups { nodes[Int(group) - 1].host.campaign(group: group) }
        // The first proposal of each group goes through once a leader is elected.
        for group in groups {
            try await within(300, "group \(group) to commit a first proposal") { try await proposeAnywhere(nodes, group: group, [0, UInt8(group)]) }
        }
        // 300 proposals at once, 100 per group.
        try await within(300, "300 proposals") {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for value in 0..<300 {
                    let group = groups[value % 3]
                    tasks.addTask { try await proposeAnywhere(nodes, group: group, Array("v\(value)".utf8)) }
                }
                try await tasks.waitForAll()
            }
        }
        for node in nodes {
            for group in groups {
                try await within(300, "node \(node.id) to apply group \(group)") { await node.applier.wait(group: group, count: 101) }
            }
        }
        for group in groups {
            let expected = nodes[0].applier.data(group)
            #expect(expected.count == 101)
            #expect(Set(expected.map { String(decoding: $0, as: UTF8.self) }).count == 101, "group \(group) applied a proposal twice")
            for node in nodes.dropFirst() { #expect(node.applier.data(group) == expected, "node \(node.id) group \(group)") }
        }
        // Messages travelled in batches: fewer calls than messages.
        let statistics = nodes.compactMap { $0.transport?.statistics }
        let batches = statistics.map(\.sentBatches).reduce(0, +), messages = statistics.map(\.sentMessages).reduce(0, +)
        #expect(batches > 0 && messages > batches, "\(messages) messages in \(batches) calls")
        ticker.cancel()
        await stopCluster(nodes)
    }

    @Test func aNodeWhoseServerDiedCatchesUpWhenItReturns() async throws {
        let nodes = try await startCluster(quiesce: true)
        let ticker = startTicker(nodes)
        nodes[0].host.campaign(group: 1)
        try await within(300, "a first commit") { try await proposeAnywhere(nodes, group: 1, [1]) }
        // Node 3's server dies: the other two keep committing (through whichever of them leads).
        await nodes[2].server.kill()
        let survivors = Array(nodes.prefix(2))
        try await within(300, "commits without node 3") {
            for value in 0..<50 { try await proposeAnywhere(survivors, group: 1, [2, UInt8(value)]) }
        }
        // It comes back on the same port and catches up.
        nodes[2].server = RPCServer(configuration: RPCServerConfiguration(clusterID: 7, nodeID: 3), registry: nodes[2].registry)
        _ = try await nodes[2].server.start(port: nodes[2].port)
        try await within(300, "node 3 to catch up") { await nodes[2].applier.wait(group: 1, count: 51) }
        #expect(nodes[2].applier.data(1) == nodes[0].applier.data(1))
        ticker.cancel()
        await stopCluster(nodes)
    }

    @Test func batchesFromTheWrongNodeAreRefused() async throws {
        let node = try RPCNode(id: 1)
        let port = try await node.server.start(port: 0)
        // Node 2 connects, but sends a message claiming to come from node 3.
        let client = RPCClient(host: "127.0.0.1", port: port,
                               configuration: RPCClientConfiguration(handshake: Handshake(clusterID: 7, role: .node, nodeID: 2)))
        let forged = RaftBatch([(1, Message(kind: .heartbeat, from: 3, to: 1, term: 9))])
        do throws(RPCError) {
            _ = try await client.call(RaftMethods.deliver, forged, options: CallOptions(timeout: .seconds(5), waitForReady: true))
            Issue.record("a forged batch was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
        }
        // A client (not a node) may not send Raft messages at all.
        let outsider = RPCClient(host: "127.0.0.1", port: port,
                                 configuration: RPCClientConfiguration(handshake: Handshake(clusterID: 7, role: .client)))
        do throws(RPCError) {
            _ = try await outsider.call(RaftMethods.deliver, RaftBatch([]), options: CallOptions(timeout: .seconds(5), waitForReady: true))
            Issue.record("a client's batch was accepted")
        } catch {
            #expect(error.code == .permissionDenied)
        }
        await client.shutdown()
        await outsider.shutdown()
        await node.server.kill()
        node.host.store.log.close()
    }
}
