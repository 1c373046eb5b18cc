// A deterministic cluster simulator: N Raft nodes, their clients and a faulty network in one
// thread, driven step by step from one seed. Each node keeps its Raft state in a real unified
// record log (`RaftLogStore`) on its own in-memory file system; a crash replaces that file
// system with a crash clone (synced bytes kept, unsynced writes dropped or torn at random) and
// the node restarts by recovering from it. Checkers run all along (election safety, log
// matching, leader completeness, state-machine safety) and over the client history at the end
// (linearizability, which also catches lost acknowledged writes: the final reads see them).
//
// Time is in steps. A node ticks every `tickSteps` steps (per node, ± skew when clock skew is
// on); messages take 1…`maxDelay` steps; clients give up on a request after `clientTimeout`
// steps and retry it elsewhere (the state machine's sessions make a retry take effect once).
// Faults stop for the last part of a run (the quiet phase): the network heals, crashed nodes
// restart, and the cluster must elect a leader and commit a write within `livenessTicks`
// ticks — otherwise that is a violation too.

import Basics
import FileIO
import FileIOSim
import Linearizability
import Raft
import RaftStorage
import RecordLog
import Wire

public struct Faults: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Drops, duplicates and delays (hence reorders) messages.
    public static let network = Faults(rawValue: 1)
    /// Symmetric and one-way partitions.
    public static let partitions = Faults(rawValue: 2)
    /// Nodes crash (losing all volatile state) and restart from their disks.
    public static let crashes = Faults(rawValue: 4)
    /// Nodes' clocks tick at different rates.
    public static let clockSkew = Faults(rawValue: 8)
    /// A crash may also flip a byte in an older segment of the node's record log: the node must
    /// detect it, set the log aside and recover from its peers without applying bad data.
    public static let bitFlips = Faults(rawValue: 16)
    /// The leader is asked, now and then, to hand leadership to another voter.
    public static let transfers = Faults(rawValue: 32)
    /// The leader changes the membership one step at a time, round and round: a voter is
    /// removed, comes back as a learner, and is promoted to voter again.
    public static let membership = Faults(rawValue: 64)
    public static let all: Faults = [.network, .partitions, .crashes, .clockSkew, .bitFlips, .transfers, .membership]

    public static func parse(_ text: String) -> Faults? {
        var faults: Faults = []
        for word in text.split(separator: ",") {
            switch word {
            case "all": faults.formUnion(.all)
            case "none": break
            case "network": faults.insert(.network)
            case "partitions": faults.insert(.partitions)
            case "crashes": faults.insert(.crashes)
            case "clock-skew": faults.insert(.clockSkew)
            case "bit-flips": faults.insert(.bitFlips)
            case "transfers": faults.insert(.transfers)
            case "membership": faults.insert(.membership)
            default: return nil
            }
        }
        return faults
    }

    public var description: String {
        let names = [(Faults.network, "network"), (.partitions, "partitions"), (.crashes, "crashes"), (.clockSkew, "clock-skew"),
                     (.bitFlips, "bit-flips"), (.transfers, "transfers"), (.membership, "membership")]
        let on = names.filter { contains($0.0) }.map(\.1)
        return on.isEmpty ? "none" : on.joined(separator: ",")
    }
}

public struct SimulationOptions: Sendable {
    public var seed: UInt64
    public var steps: Int
    public var nodes: Int
    public var faults: Faults
    public var clients = 4
    public var keys = 4
    public var tickSteps = 10
    public var maxDelay = 8
    public var clientTimeout = 300
    public var maxAttempts = 6
    /// A node snapshots its state machine and compacts its log every this many applied entries.
    public var compactEvery = 40
    /// Ticks the cluster gets, once faults stop, to elect a leader and commit a write.
    public var livenessTicks = 200
    /// Idle groups quiesce, and nodes run `NodeLiveness` (pings when idle; a quiet follower
    /// whose leader's node goes silent wakes up).
    public var quiesce = true
    /// Clients start nothing new during every third window of this many steps (0: never), so
    /// that the group goes idle and quiesces — and faults strike quiet groups too.
    public var idleWindowSteps = 600
    /// Leaders answer reads from their lease (`RaftConfiguration.leaseReads`). Sound only while
    /// ticks run at rates within 10 % of each other — which `Faults.clockSkew` (tick periods of
    /// 8–12 steps) breaks on purpose.
    public var leaseReads = false

    public init(seed: UInt64, steps: Int, nodes: Int, faults: Faults) {
        self.seed = seed
        self.steps = steps
        self.nodes = nodes
        self.faults = faults
    }
}

/// One client operation as the client saw it.
public struct ClientOperation: Sendable, Equatable, CustomStringConvertible {
    public var client: Int
    public var operation: KVOperation
    public var invokedAt: Int
    /// nil: no answer ever came (the operation may or may not have taken effect).
    public var returnedAt: Int?
    public var result: KVResult?

    public var description: String {
        let end = returnedAt.map(String.init) ?? "∞"
        return "[\(invokedAt), \(end)] client \(client) \(operation) → \(result.map { "\($0)" } ?? "unknown")"
    }
}

public struct SimulationResult: Sendable {
    public var options: SimulationOptions
    public var violations: [String] = []
    public var history: [ClientOperation] = []
    public var messagesDelivered = 0
    public var crashes = 0
    /// Restarts that found a damaged log, set it aside and recovered from peers.
    public var lostLogs = 0
    public var elections = 0
    public var maxTerm: UInt64 = 0
    public var committed: UInt64 = 0
    /// Ticks from the end of the faults to a committed write.
    public var recoveryTicks: Int?
    /// Node ticks that found the node's group quiet, and quiet followers that node liveness
    /// woke because their leader's node went silent.
    public var quietTicks = 0
    public var livenessWakeups = 0
    /// Pings that showed a peer had restarted (a new incarnation).
    public var restartsNoticed = 0
    /// Leadership transfers asked for, and membership changes proposed (accepted by a leader).
    public var transfers = 0
    public var membershipChanges = 0
    /// Reads leaders answered from their lease (with `SimulationOptions.leaseReads`).
    public var leaseReads = 0

    /// The events (deliveries and faults) of the last steps before the first violation, oldest
    /// first — what a failing run prints besides the client history.
    public var trace: [String] = []

    public var ok: Bool { violations.isEmpty }

    public var summary: String {
        let completed = history.filter { $0.returnedAt != nil }.count
        return "seed \(options.seed) nodes \(options.nodes) steps \(options.steps) faults \(options.faults)"
            + (options.leaseReads ? " lease-reads" : "") + ": "
            + (ok ? "ok" : "VIOLATION (\(violations.count))")
            + " | ops \(history.count) completed \(completed) | committed \(committed) max-term \(maxTerm)"
            + " elections \(elections) crashes \(crashes) lost-logs \(lostLogs) delivered \(messagesDelivered)"
            + " quiet-ticks \(quietTicks) liveness-wakeups \(livenessWakeups) transfers \(transfers) membership-changes \(membershipChanges)"
            + (options.leaseReads ? " lease-reads \(leaseReads)" : "")
            + " | recovered in \(recoveryTicks.map(String.init) ?? "—") ticks"
    }
}

/// A node's disk: an in-memory file system holding its record log and its hard-state file.
final class SimDisk {
    var fileSystem = MemoryFileSystem()
    var store: RaftLogStore
    /// What the hard-state file last said.
    var written = DurableVote()
    static let group: UInt64 = 1
    static let directory = "/node/log"
    static let hardStatePath = "/node/hardstate"

    static var logOptions: RecordLogOptions {
        var options = RecordLogOptions()
        // Small segments, so that rotation, sealing and prefix truncation happen often.
        options.segmentBytesMax = 16 << 10
        options.recordPayloadBytesMax = 8 << 10
        options.batchBytesMax = 16 << 10
        options.queueBytesMax = 64 << 10
        options.logID = 1
        options.creationTimeOverride = 1
        return options
    }

    init() throws(LogError) {
        store = RaftLogStore(log: try RecordLog.open(directory: Self.directory, fileSystem: fileSystem, options: Self.logOptions).0)
    }

    /// Writes what a `Ready` asks to persist: the hard-state file first when the term or vote
    /// changed, then one append to the log.
    func persist(_ ready: Ready, recovering: Bool) throws(RaftStorageError) {
        var wanted = written
        if let hard = ready.hardState {
            wanted.term = hard.term
            wanted.vote = hard.vote
        }
        wanted.recovering = recovering
        if wanted != written {
            do throws(FileIOError) { try HardStateFile.write(Self.hardStatePath, wanted, fileSystem: fileSystem) } catch {
                throw .log(.io(error))
            }
            written = wanted
        }
        try store.persist([RaftLogStore.Write(group: Self.group, ready: ready)])
    }

    /// The machine loses power: only what the file system made durable survives (torn or not).
    /// With `flip`, a byte of an older log segment also rots.
    func crash(seed: UInt64, flip: Bool) {
        store.log.close()
        fileSystem = fileSystem.crashClone(seed: seed)
        guard flip else { return }
        var random = SeededRandom(seed: seed ^ 0xF11B)
        let segments = ((try? fileSystem.list(Self.directory)) ?? []).filter { $0.hasSuffix(".vlog") }.sorted()
        guard segments.count >= 2 else { return }
        let victim = Self.directory + "/" + segments[Int(random.next() % UInt64(segments.count - 1))]
        guard var bytes = fileSystem.contents(of: victim), !bytes.isEmpty else { return }
        bytes[Int(random.next() % UInt64(bytes.count))] ^= UInt8(1 << (random.next() % 8))
        fileSystem.setContents(of: victim, bytes)
    }

    /// Reopens the log and recovers the group's state. A damaged log (a checksum or a rule
    /// fails) is set aside: the node restarts empty, with its term and vote from the hard-state
    /// file, marked as having lost its log. Returns whether that happened.
    func recover(initial membership: Membership) throws(RaftStorageError) -> (PersistedState, lostLog: Bool) {
        let file = try HardStateFile.read(Self.hardStatePath, fileSystem: fileSystem)
        written = file ?? DurableVote()
        do throws(RaftStorageError) {
            do throws(LogError) {
                store = RaftLogStore(log: try RecordLog.open(directory: Self.directory, fileSystem: fileSystem, options: Self.logOptions).0)
            } catch {
                throw .log(error)
            }
            return (try store.recover(group: Self.group).restartState(vote: file, membership: membership), false)
        } catch {
            switch error {
            case .log(.corruption), .corrupt: break
            default: throw error
            }
        }
        // Set the damaged log aside and start an empty one.
        store.log.close()
        for name in (try? fileSystem.list(Self.directory)) ?? [] {
            do throws(FileIOError) { try fileSystem.remove(Self.directory + "/" + name) } catch { throw .log(.io(error)) }
        }
        do throws(LogError) {
            store = RaftLogStore(log: try RecordLog.open(directory: Self.directory, fileSystem: fileSystem, options: Self.logOptions).0)
        } catch {
            throw .log(error)
        }
        written.recovering = true
        do throws(FileIOError) { try HardStateFile.write(Self.hardStatePath, written, fileSystem: fileSystem) } catch {
            throw .log(.io(error))
        }
        return (.lostLog(vote: written, membership: membership), true)
    }
}

struct SimNode {
    var raft: RaftNode
    var disk: SimDisk
    var machine = KVStateMachine()
    var isUp = true
    /// The node's log may be damaged (a byte flipped while it was down) or it restarted with a
    /// lost log and has not caught up yet.
    var lostLogPending = false
    var restartAt = 0
    var liveness = NodeLiveness()
    /// Drawn at every start; pings carry it.
    var incarnation: UInt64 = 0
    var tickSteps: Int
    var tickPhase: Int
    /// Proposals this node made for clients: log index → (term, client, sequence).
    var proposals: [UInt64: (term: UInt64, client: Int, sequence: UInt64)] = [:]
    /// Read-index requests: context → (client, sequence, key).
    var reads: [[UInt8]: (client: Int, sequence: UInt64, key: String)] = [:]
    /// Confirmed reads waiting for the state machine to apply their index.
    var readyReads: [(index: UInt64, client: Int, sequence: UInt64, key: String)] = []
}

struct PendingRequest {
    var operation: KVOperation
    var historyIndex: Int
    /// When to send again: a timeout, or soon after a refusal that named the leader.
    var retryAt: Int
    /// Timeouts so far (the client gives up after `maxAttempts`).
    var attempts = 0
    var redirects = 0
    var redirected = false
    var target: NodeID
}

struct SimClient {
    var id: Int
    var sequence: UInt64 = 0
    var pending: PendingRequest?
    var leaderGuess: NodeID = 1
}

public final class Simulation {
    let options: SimulationOptions
    var random: SeededRandom
    var now = 0
    var nodes: [NodeID: SimNode] = [:]
    var ids: [NodeID]
    var clients: [SimClient]
    var inFlight: [(at: Int, message: Message)] = []
    /// Directed links that drop everything (from, to).
    var blocked: Set<[NodeID]> = []
    var result: SimulationResult
    var faultsActive = true
    /// Checkers' memory: the entry applied at each index (term and data), and each term's leader.
    var appliedAt: [UInt64: (term: UInt64, data: [UInt8])] = [:]
    var leaderOf: [UInt64: NodeID] = [:]

    public init(options: SimulationOptions) {
        self.options = options
        random = SeededRandom(seed: options.seed)
        ids = (1...UInt64(options.nodes)).map { $0 }
        clients = (0..<options.clients).map { SimClient(id: $0) }
        result = SimulationResult(options: options)
        let membership = Membership(voters: Set(ids))
        for id in ids {
            let skew = options.faults.contains(.clockSkew) ? Int(random.next() % 5) - 2 : 0
            var configuration = RaftConfiguration(id: id, seed: options.seed &* 7919 &+ id)
            configuration.maxInflight = 8
            configuration.maxMessageBytes = 4096
            configuration.quiesce = options.quiesce
            configuration.leaseReads = options.leaseReads
            let disk = try! SimDisk()
            nodes[id] = SimNode(raft: try! RaftNode(configuration: configuration, state: PersistedState(membership: membership)), disk: disk,
                                tickSteps: options.tickSteps + skew, tickPhase: Int(random.next() % UInt64(options.tickSteps)))
            for peer in ids where peer != id { nodes[id]!.liveness.track(peer) }
            nodes[id]!.incarnation = random.next() | 1
        }
    }

    public func run() -> SimulationResult {
        let quietFrom = options.steps - options.steps / 4
        while now < options.steps {
            if now == quietFrom { beginQuietPhase() }
            if faultsActive { injectFaults() }
            restartDueNodes()
            tickNodes()
            deliverMessages()
            driveClients()
            processReadies()
            if now % 50 == 0 { checkLogMatching() }
            now += 1
            if !result.violations.isEmpty { break }
        }
        if result.violations.isEmpty { finish() }
        if result.violations.isEmpty { checkLinearizability() }
        result.leaseReads += nodes.values.map(\.raft.leaseReadsServed).reduce(0, +)
        result.maxTerm = nodes.values.map(\.raft.term).max() ?? 0
        result.committed = nodes.values.map(\.raft.committed).max() ?? 0
        return result
    }

    func violation(_ text: String) {
        result.violations.append("step \(now): \(text)")
        if result.trace.isEmpty { result.trace = recorder.events }
    }

    // MARK: Flight recorder

    /// What happened, kept cheaply (formatted only when a run fails).
    enum TraceEvent {
        case delivered(Message)
        case crashed(NodeID, flip: Bool)
        case restarted(NodeID, lostLog: Bool)
        case partitioned(Set<[NodeID]>)
        case transfer(from: NodeID, to: NodeID)
        case membership(leader: NodeID, ConfigurationChange)
    }

    /// The last `capacity` events, in a ring.
    struct FlightRecorder {
        static let capacity = 400
        var ring: [(step: Int, event: TraceEvent)] = []
        var next = 0

        mutating func record(_ step: Int, _ event: TraceEvent) {
            if ring.count < Self.capacity {
                ring.append((step, event))
            } else {
                ring[next] = (step, event)
            }
            next = (next + 1) % Self.capacity
        }

        var events: [String] {
            let ordered = ring.count < Self.capacity ? ring : Array(ring[next...] + ring[..<next])
            return ordered.map { step, event in
                let text: String
                switch event {
                case let .delivered(message): text = "deliver \(message)"
                case let .crashed(node, flip): text = "crash node \(node)" + (flip ? " (and a byte of an old segment flips)" : "")
                case let .restarted(node, lostLog): text = "restart node \(node)" + (lostLog ? " with its log set aside" : "")
                case let .partitioned(links):
                    text = links.isEmpty ? "network healed" : "links cut: " + links.sorted { $0.lexicographicallyPrecedes($1) }.map { "\($0[0])->\($0[1])" }.joined(separator: " ")
                case let .transfer(from, to): text = "leader \(from) hands leadership to \(to)"
                case let .membership(leader, change): text = "leader \(leader) proposes \(change)"
                }
                return "step \(step): \(text)"
            }
        }
    }

    var recorder = FlightRecorder()

    // MARK: Faults

    func injectFaults() {
        let faults = options.faults
        if faults.contains(.crashes) && random.next() % 400 == 0 {
            let up = ids.filter { nodes[$0]!.isUp }
            // Crash anyone, even a majority: the quiet phase restarts them all.
            if let victim = up.randomElement(using: &random) {
                nodes[victim]!.isUp = false
                // A rotten byte loses data on this node: allowed only while every other node's
                // log is whole (Raft tolerates a minority of failures, and a node that lost its
                // log counts as failed until it has caught up).
                // With a voter out (membership changes), the rest have no failure to spare.
                let othersWhole = ids.allSatisfy { $0 == victim || (!nodes[$0]!.lostLogPending && !nodes[$0]!.raft.recovering) }
                let flip = faults.contains(.bitFlips) && othersWhole && membershipSettled && random.next() % 3 == 0
                nodes[victim]!.disk.crash(seed: random.next(), flip: flip)
                if flip { nodes[victim]!.lostLogPending = true }  // until its restart tells
                nodes[victim]!.restartAt = now + 50 + Int(random.next() % 400)
                inFlight.removeAll { $0.message.to == victim }
                result.crashes += 1
                recorder.record(now, .crashed(victim, flip: flip))
            }
        }
        if faults.contains(.transfers) && random.next() % 300 == 0 { transferLeadership() }
        if faults.contains(.membership) && random.next() % 400 == 0 { changeMembership() }
        if faults.contains(.partitions) && random.next() % 500 == 0 {
            blocked = []
            switch random.next() % 3 {
            case 0:
                // Symmetric: a random minority side.
                let side = Set(ids.shuffled(using: &random).prefix(Int(random.next() % UInt64(ids.count / 2 + 1)) + 1))
                for a in ids { for b in ids where side.contains(a) != side.contains(b) { blocked.insert([a, b]) } }
            case 1:
                // One-way: one node can send but not receive (or the reverse).
                let node = ids.randomElement(using: &random)!
                let inbound = random.next() % 2 == 0
                for other in ids where other != node { blocked.insert(inbound ? [other, node] : [node, other]) }
            default:
                break  // healed
            }
            recorder.record(now, .partitioned(blocked))
        }
    }

    /// The up node leading the highest term, if any.
    var currentLeader: NodeID? {
        ids.filter { nodes[$0]!.isUp && nodes[$0]!.raft.role == .leader }.max { nodes[$0]!.raft.term < nodes[$1]!.raft.term }
    }

    /// Asks the leader to hand over to another voter (`Faults.transfers`).
    func transferLeadership() {
        guard let leader = currentLeader else { return }
        let others = nodes[leader]!.raft.membership.voters.filter { $0 != leader }.sorted()
        guard let target = others.randomElement(using: &random) else { return }
        do throws(RaftError) {
            try nodes[leader]!.raft.transferLeadership(to: target)
            result.transfers += 1
            recorder.record(now, .transfer(from: leader, to: target))
        } catch {}
    }

    /// Every node counts every node as a voter and has no membership change in its log waiting
    /// to be applied.
    var membershipSettled: Bool {
        ids.allSatisfy { id in
            let raft = nodes[id]!.raft
            guard raft.membership.voters.count == ids.count else { return false }
            guard raft.applied < raft.lastIndex else { return true }
            return !((raft.applied + 1)...raft.lastIndex).contains { raft.entry(at: $0)?.kind == .configurationChange }
        }
    }

    /// Has the leader propose the next membership change of the cycle (`Faults.membership`):
    /// promote a learner; else add back, as a learner, a node that was removed; else remove a
    /// voter other than itself. One node at most is out of the voters at any time.
    func changeMembership() {
        guard let leader = currentLeader else { return }
        let membership = nodes[leader]!.raft.membership
        let change: ConfigurationChange
        if let learner = membership.learners.sorted().first {
            change = ConfigurationChange(.addVoter, learner)
        } else if let missing = ids.first(where: { !membership.members.contains($0) }) {
            change = ConfigurationChange(.addLearner, missing)
        } else if ids.allSatisfy({ !nodes[$0]!.lostLogPending && !nodes[$0]!.raft.recovering }),
                  let victim = membership.voters.filter({ $0 != leader }).sorted().randomElement(using: &random) {
            // Not while a node has lost its log: it counts as failed until it catches up, and a
            // voter out leaves no failure to spare.
            change = ConfigurationChange(.remove, victim)
        } else {
            return
        }
        do throws(RaftError) {
            try nodes[leader]!.raft.proposeConfigurationChange(change)
            result.membershipChanges += 1
            recorder.record(now, .membership(leader: leader, change))
        } catch {}
    }

    /// Faults stop; a probe write starts the liveness clock.
    func beginQuietPhase() {
        faultsActive = false
        blocked = []
        for id in ids where !nodes[id]!.isUp { nodes[id]!.restartAt = now }
        quietStart = now
        afterFaultsStop?(self)
        let probe = clients.count
        clients.append(SimClient(id: probe))
        startOperation(client: probe, .put(key: "liveness", value: "probe"))
        probeOperation = result.history.count - 1
    }

    var quietStart: Int?
    /// Runs once faults stop (tests use it to break the cluster for good and watch the liveness
    /// check fire).
    var afterFaultsStop: ((Simulation) -> Void)?
    var probeOperation: Int?
    var clientsStopped = false

    func restartDueNodes() {
        for id in ids where !nodes[id]!.isUp && nodes[id]!.restartAt <= now {
            var node = nodes[id]!
            let configuration = node.raft.configuration
            let state: PersistedState
            do throws(RaftStorageError) {
                let (recovered, lostLog) = try node.disk.recover(initial: Membership(voters: Set(ids)))
                state = recovered
                if lostLog { result.lostLogs += 1 }
                recorder.record(now, .restarted(id, lostLog: lostLog))
                node.lostLogPending = recovered.lostLog
            } catch {
                violation("node \(id) cannot recover its log: \(error)")
                return
            }
            do throws(RaftError) {
                result.leaseReads += node.raft.leaseReadsServed
                node.raft = try RaftNode(configuration: configuration, state: state)
            } catch {
                violation("node \(id) cannot restart from its disk: \(error)")
                return
            }
            // The state machine restarts from the snapshot; the log replays the rest.
            if let snapshot = state.snapshot {
                do throws(DecodeError) { node.machine = try KVStateMachine(decoding: snapshot.data) } catch {
                    violation("node \(id)'s snapshot does not decode: \(error)")
                    return
                }
            } else {
                node.machine = KVStateMachine()
            }
            node.proposals = [:]
            node.reads = [:]
            node.readyReads = []
            node.liveness = NodeLiveness()
            for peer in ids where peer != id { node.liveness.track(peer) }
            node.incarnation = random.next() | 1
            node.isUp = true
            nodes[id] = node
        }
    }

    // MARK: Time and network

    func tickNodes() {
        for id in ids where nodes[id]!.isUp && (now + nodes[id]!.tickPhase) % nodes[id]!.tickSteps == 0 {
            if nodes[id]!.raft.quiesced { result.quietTicks += 1 }
            nodes[id]!.raft.tick()
            guard options.quiesce else { continue }
            let (ping, nowDown) = nodes[id]!.liveness.tick()
            for peer in ping { send(Message(kind: .ping, from: id, to: peer, term: nodes[id]!.incarnation)) }
            for peer in nowDown {
                let wasQuiet = nodes[id]!.raft.quiesced
                nodes[id]!.raft.reportNodeDown(peer)
                if wasQuiet && !nodes[id]!.raft.quiesced { result.livenessWakeups += 1 }
            }
        }
    }

    func send(_ message: Message) {
        nodes[message.from]?.liveness.sent(to: message.to)
        if faultsActive && options.faults.contains(.network) {
            if random.next() % 20 == 0 { return }  // 5 % lost
            if random.next() % 50 == 0 { inFlight.append((now + 1 + Int(random.next() % UInt64(options.maxDelay * 4)), message)) }
        }
        let delay = options.faults.contains(.network) && faultsActive ? 1 + Int(random.next() % UInt64(options.maxDelay)) : 1
        inFlight.append((now + delay, message))
    }

    func deliverMessages() {
        var due: [Message] = []
        inFlight.removeAll { item in
            if item.at <= now { due.append(item.message); return true }
            return false
        }
        for message in due {
            guard nodes[message.to]?.isUp == true, !blocked.contains([message.from, message.to]) else { continue }
            if message.kind == .ping {
                if nodes[message.to]!.liveness.heard(from: message.from, incarnation: message.term) {
                    nodes[message.to]!.raft.reportNodeRestarted(message.from)
                    result.restartsNoticed += 1
                }
                continue
            }
            nodes[message.to]!.liveness.heard(from: message.from)
            recorder.record(now, .delivered(message))
            nodes[message.to]!.raft.step(message)
            result.messagesDelivered += 1
        }
    }

    // MARK: Clients

    func driveClients() {
        for index in clients.indices {
            if var pending = clients[index].pending {
                if now >= pending.retryAt {
                    if pending.redirected && pending.redirects < 20 {
                        pending.redirected = false
                    } else {
                        pending.attempts += 1
                        if pending.attempts >= options.maxAttempts && index < options.clients {
                            // Give up: the outcome stays unknown.
                            clients[index].pending = nil
                            continue
                        }
                        pending.target = ids.randomElement(using: &random)!
                    }
                    clients[index].pending = pending
                    submit(client: index)
                }
                continue
            }
            guard !clientsStopped, index < options.clients, !idleWindow, random.next() % 8 == 0 else { continue }
            let key = "k\(random.next() % UInt64(options.keys))"
            let value = "c\(index)v\(clients[index].sequence + 1)"
            let operation: KVOperation
            switch random.next() % 5 {
            case 0, 1: operation = .get(key: key)
            case 2, 3: operation = .put(key: key, value: value)
            default:
                let expected: String? = random.next() % 4 == 0 ? nil : "c\(random.next() % UInt64(options.clients))v\(random.next() % 8 + 1)"
                operation = .cas(key: key, expected: expected, new: value)
            }
            startOperation(client: index, operation)
        }
    }

    /// Clients start nothing new now (see `SimulationOptions.idleWindowSteps`).
    var idleWindow: Bool {
        options.idleWindowSteps > 0 && faultsActive && (now / options.idleWindowSteps) % 3 == 2
    }

    func startOperation(client index: Int, _ operation: KVOperation) {
        clients[index].sequence += 1
        result.history.append(ClientOperation(client: index, operation: operation, invokedAt: now, returnedAt: nil, result: nil))
        clients[index].pending = PendingRequest(operation: operation, historyIndex: result.history.count - 1, retryAt: now,
                                                target: clients[index].leaderGuess)
        submit(client: index)
    }

    /// Delivers the client's pending request to its target node (lost if the node is down or the
    /// network loses it).
    func submit(client index: Int) {
        guard let pending = clients[index].pending else { return }
        clients[index].pending!.retryAt = now + options.clientTimeout

        if faultsActive && options.faults.contains(.network) && random.next() % 20 == 0 { return }
        let id = pending.target
        guard nodes[id]!.isUp else { return }
        let sequence = clients[index].sequence
        if case let .get(key) = pending.operation {
            var context = [UInt8]()
            withUnsafeBytes(of: UInt64(index).littleEndian) { context.append(contentsOf: $0) }
            withUnsafeBytes(of: sequence.littleEndian) { context.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt64(pending.attempts).littleEndian) { context.append(contentsOf: $0) }
            do throws(RaftError) {
                try nodes[id]!.raft.readIndex(context: context)
                nodes[id]!.reads[context] = (index, sequence, key)
            } catch {
                redirect(client: index, error)
            }
            return
        }
        let command = KVCommand(client: UInt64(index), sequence: sequence, operation: pending.operation)
        do throws(RaftError) {
            let at = try nodes[id]!.raft.propose(command.encoded)
            nodes[id]!.proposals[at] = (nodes[id]!.raft.term, index, sequence)
        } catch {
            redirect(client: index, error)
        }
    }

    /// A refusal: try the hinted leader (or another node) at once.
    func redirect(client index: Int, _ error: RaftError) {
        guard var pending = clients[index].pending else { return }
        if case let .notLeader(leader) = error, leader != 0 {
            pending.target = leader
        } else {
            pending.target = ids.randomElement(using: &random)!
        }
        // Retry soon; a request refused before reaching the log did not take effect.
        pending.redirected = true
        pending.redirects += 1
        pending.retryAt = now + 3
        clients[index].leaderGuess = pending.target
        clients[index].pending = pending
    }

    func respond(client index: Int, sequence: UInt64, _ answer: KVResult, from node: NodeID) {
        guard let pending = clients[index].pending, clients[index].sequence == sequence else { return }
        if faultsActive && options.faults.contains(.network) && random.next() % 20 == 0 { return }  // response lost
        result.history[pending.historyIndex].returnedAt = now
        result.history[pending.historyIndex].result = answer
        clients[index].pending = nil
        clients[index].leaderGuess = node
    }

    // MARK: Nodes

    func processReadies() {
        for id in ids where nodes[id]!.isUp && nodes[id]!.raft.hasReady {
            process(id)
        }
    }

    func process(_ id: NodeID) {
        var node = nodes[id]!
        let ready = node.raft.ready()
        if let soft = ready.softState, soft.role == .leader {
            result.elections += 1
            checkLeaderCompleteness(node.raft)
        }
        if node.raft.role == .leader {
            if let other = leaderOf[node.raft.term], other != id {
                violation("election safety: nodes \(other) and \(id) both lead term \(node.raft.term)")
            }
            leaderOf[node.raft.term] = id
        }
        // Persist: one append to the node's record log, synced if the Ready says so.
        if !ready.entries.isEmpty || ready.hardState != nil || ready.snapshot != nil {
            do throws(RaftStorageError) {
                try node.disk.persist(ready, recovering: node.raft.recovering)
            } catch {
                violation("node \(id) cannot persist: \(error)")
                nodes[id] = node
                return
            }
        }
        for message in ready.messages { send(message) }
        if let snapshot = ready.snapshot {
            do throws(DecodeError) { node.machine = try KVStateMachine(decoding: snapshot.data) } catch {
                violation("node \(id) received a snapshot that does not decode: \(error)")
            }
        }
        var answers: [(client: Int, sequence: UInt64, result: KVResult)] = []
        for entry in ready.committedEntries {
            checkApplied(entry, by: id)
            if entry.kind == .configurationChange, let change = try? ConfigurationChange(decoding: entry.data) {
                node.raft.applyConfigurationChange(change)
                node.machine.applied = entry.index
                continue
            }
            guard !entry.data.isEmpty else {
                node.machine.applied = entry.index
                continue
            }
            let command: KVCommand
            do throws(DecodeError) { command = try KVCommand(decoding: entry.data) } catch {
                violation("node \(id) applied an entry that does not decode at \(entry.index): \(error)")
                continue
            }
            let outcome = node.machine.apply(command, index: entry.index)
            if let proposal = node.proposals.removeValue(forKey: entry.index), proposal.term == entry.term,
               UInt64(proposal.client) == command.client, proposal.sequence == command.sequence, let outcome {
                answers.append((proposal.client, proposal.sequence, outcome))
            }
        }
        for read in ready.readStates {
            guard let request = node.reads.removeValue(forKey: read.context) else { continue }
            node.readyReads.append((read.index, request.client, request.sequence, request.key))
        }
        node.raft.advance(ready)
        if node.lostLogPending && !node.raft.recovering {
            // Caught up: record it durably before anything else (the next persist would too).
            do throws(RaftStorageError) { try node.disk.persist(Ready(), recovering: false) } catch {
                violation("node \(id) cannot record its recovery: \(error)")
            }
            node.lostLogPending = false
        }
        // Serve confirmed reads the state machine has caught up with.
        let applied = node.raft.applied
        var waiting: [(index: UInt64, client: Int, sequence: UInt64, key: String)] = []
        for read in node.readyReads {
            if read.index <= applied {
                answers.append((read.client, read.sequence, .value(node.machine.values[read.key])))
            } else {
                waiting.append(read)
            }
        }
        node.readyReads = waiting
        // Compact now and then.
        if applied >= node.raft.firstIndex - 1 + UInt64(options.compactEvery), node.raft.term(at: applied) != nil {
            let snapshot = Snapshot(metadata: SnapshotMetadata(index: applied, term: node.raft.term(at: applied)!,
                                                               membership: node.raft.membership),
                                    data: node.machine.encoded)
            do throws(RaftError) {
                try node.raft.compact(snapshot: snapshot)
            } catch {
                violation("node \(id) cannot compact at \(applied): \(error)")
            }
            do throws(RaftStorageError) {
                try node.disk.store.compact(group: SimDisk.group, snapshot: snapshot)
            } catch {
                violation("node \(id) cannot compact at \(applied): \(error)")
            }
        }
        nodes[id] = node
        for answer in answers { respond(client: answer.client, sequence: answer.sequence, answer.result, from: id) }
    }

    // MARK: Checkers

    func checkApplied(_ entry: Entry, by id: NodeID) {
        if let seen = appliedAt[entry.index] {
            if seen.term != entry.term || seen.data != entry.data {
                violation("state-machine safety: node \(id) applied \(entry.term)/\(entry.index), another node applied \(seen.term)/\(entry.index) there")
            }
        } else {
            appliedAt[entry.index] = (entry.term, entry.data)
        }
    }

    /// A new leader's log holds every entry applied anywhere (those are committed).
    func checkLeaderCompleteness(_ raft: RaftNode) {
        for (index, seen) in appliedAt where index >= raft.firstIndex {
            guard let term = raft.term(at: index) else {
                violation("leader completeness: leader \(raft.id) of term \(raft.term) lacks committed index \(index)")
                return
            }
            if term != seen.term {
                violation("leader completeness: leader \(raft.id) has term \(term) at \(index), committed was term \(seen.term)")
                return
            }
        }
    }

    /// Two logs that hold an entry with the same index and term are identical up to it.
    func checkLogMatching() {
        let up = ids.filter { nodes[$0]!.isUp }
        for (position, a) in up.enumerated() {
            for b in up[(position + 1)...] {
                let x = nodes[a]!.raft, y = nodes[b]!.raft
                let low = max(x.firstIndex, y.firstIndex), high = min(x.lastIndex, y.lastIndex)
                guard low <= high else { continue }
                var index = high
                while index >= low && x.term(at: index) != y.term(at: index) { index -= 1 }
                guard index >= low else { continue }
                for at in low...index where x.entry(at: at) != y.entry(at: at) {
                    violation("log matching: nodes \(a) and \(b) agree on \(x.term(at: index)!)/\(index) but differ at \(at)")
                    return
                }
            }
        }
    }

    // MARK: The end

    /// The client history against a single register per key (Wing & Gong search with
    /// timed-out operations as unknown outcomes). A lost acknowledged write shows here too: the
    /// final reads of every key would contradict it.
    func checkLinearizability() {
        let operations = result.history.map { operation -> HistoryOperation<KVModel.Input, KVModel.Output> in
            let input: KVModel.Input
            switch operation.operation {
            case let .put(key, value): input = .put(key: key, value: value)
            case let .get(key): input = .get(key: key)
            case let .cas(key, expected, new): input = .cas(key: key, expected: expected, new: new)
            }
            guard let returned = operation.returnedAt, let answer = operation.result else {
                return .unknown(clientID: operation.client, input, invoked: operation.invokedAt)
            }
            let output: KVModel.Output
            switch answer {
            case .ok: output = .ok
            case let .value(value): output = .value(value)
            case let .swapped(done): output = .casResult(done)
            }
            return .completed(clientID: operation.client, input, output, invoked: operation.invokedAt, returned: returned)
        }
        let checker = LinearizabilityChecker(model: KVModel(), partitionStepsMax: 20_000_000)
        switch checker.check(operations) {
        case .linearizable:
            break
        case let .notLinearizable(failure):
            violation("linearizability: \(failure)")
        case let .unknown(keys):
            violation("linearizability: the search ran out of steps on keys \(keys)")
        }
    }

    /// Liveness (the probe write of the quiet phase commits within the budget), then every key
    /// is read back, so that a lost acknowledged write shows in the history.
    func finish() {
        guard let quietStart, let probeOperation else { return }
        clientsStopped = true
        let budgetSteps = options.livenessTicks * (options.tickSteps + 2)
        while now < quietStart + budgetSteps && result.history[probeOperation].returnedAt == nil { step() }
        guard let done = result.history[probeOperation].returnedAt else {
            violation("liveness: no write committed within \(options.livenessTicks) ticks after faults stopped at step \(quietStart); "
                      + clusterState())
            return
        }
        result.recoveryTicks = (done - quietStart) / options.tickSteps
        var budget = budgetSteps
        while budget > 0 && clients.contains(where: { $0.pending != nil }) {
            step()
            budget -= 1
        }
        let reader = clients.count - 1
        for key in 0..<options.keys {
            startOperation(client: reader, .get(key: "k\(key)"))
            let operation = result.history.count - 1
            var left = budgetSteps
            while left > 0 && result.history[operation].returnedAt == nil {
                step()
                left -= 1
            }
            if result.history[operation].returnedAt == nil {
                violation("liveness: the final read of k\(key) got no answer")
                return
            }
        }
    }

    /// One line per node, for violation reports.
    func clusterState() -> String {
        ids.map { id in
            let node = nodes[id]!, raft = node.raft
            var text = "node \(id) \(node.isUp ? "\(raft.role)" : "down") term \(raft.term) leader \(raft.leader) commit \(raft.committed) applied \(raft.applied) last \(raft.lastIndex)/\(raft.lastTerm) \(raft.membership)"
            if raft.recovering { text += " recovering" }
            if raft.role == .leader {
                text += " progress " + raft.progress.keys.sorted().map { "\($0):\(raft.progress[$0]!.state)/\(raft.progress[$0]!.match)/\(raft.progress[$0]!.next)" }.joined(separator: " ")
            }
            return text
        }.joined(separator: "; ")
    }

    func step() {
        restartDueNodes()
        tickNodes()
        deliverMessages()
        driveClients()
        processReadies()
        now += 1
    }
}
