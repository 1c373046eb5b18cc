// A node's multi-Raft host: many Raft groups over one record log. Inputs (messages from peers,
// proposals, ticks) queue from any thread; one driver thread runs `runCycle()`, which steps
// them into the groups, gathers every group's `Ready`, persists all of them in one append and
// one fdatasync, hands the messages out batched per destination node, applies committed
// entries and completes the proposals they answer. Inputs that arrive while a cycle syncs are
// batched into the next one: that is the group commit. Ticks that pile up during a slow sync
// coalesce into one.
//
// With `writesInBackground` (what `runLoop` is for), the driver does not wait for the write: it
// hands each cycle's writes and the messages that depend on them to a writer thread and goes
// on stepping inputs. The writer merges every job queued while it was syncing into one append
// and one fdatasync, then sends those jobs' messages in order and tells the driver what is now
// durable (`RaftNode.persisted`). A cycle that installs a snapshot waits for the writer.
//
// Not yet: quiescing idle groups. A leader that stops heartbeating is safe only if its
// followers stop their election timers too and restart them when the leader's node is known
// dead, which needs node liveness from the RPC layer (issue 6).

import Basics
import Raft
import RecordLog

/// Applies a group's committed entries (on the driver thread).
public protocol RaftApplier: AnyObject {
    func apply(group: UInt64, entries: [Entry])
}

public final class RaftHost: @unchecked Sendable {
    public let node: NodeID
    public let store: RaftLogStore
    /// Where outgoing messages go: one call per destination node per cycle.
    public var transport: (@Sendable (_ to: NodeID, _ messages: [(group: UInt64, message: Message)]) -> Void)?
    public weak var applier: (any RaftApplier)?

    public typealias Completion = @Sendable (Result<UInt64, RaftError>) -> Void

    private enum Input {
        case message(UInt64, Message)
        case propose(UInt64, [UInt8], Completion)
        case tick
        case campaign(UInt64)
        /// The writer made these `Ready`s' writes durable.
        case persisted([(UInt64, Ready)])
    }

    /// Write in the background (see the type's comment). Set before `runLoop`.
    public var writesInBackground = false

    private struct WriteJob {
        var writes: [RaftLogStore.Write]
        var messages: [(to: NodeID, messages: [(group: UInt64, message: Message)])]
        var readies: [(UInt64, Ready)]
    }

    private let writerLock = ConditionLock()
    private var jobs: [WriteJob] = []
    private var jobsInFlight = 0
    private var writerStopped = false
    private var writerFailure: RaftStorageError?
    private let writerDone = Event()

    private let inboxLock = ConditionLock()
    private var inbox: [Input] = []
    private var stopped = false

    // Driver-thread state.
    private var groups: [UInt64: RaftNode] = [:]
    private var waiters: [UInt64: [UInt64: (term: UInt64, completion: Completion)]] = [:]
    public private(set) var cycles = 0
    /// Cycles that synced the log (read after `stop`).
    public private(set) var syncs = 0

    public init(node: NodeID, store: RaftLogStore) {
        self.node = node
        self.store = store
    }

    /// Adds a group, recovering its state from the log (a new group starts with `membership`).
    public func addGroup(_ group: UInt64, configuration: RaftConfiguration, membership: Membership) throws(RaftStorageError) {
        let recovered = try store.recover(group: group)
        let state = PersistedState(hardState: recovered.hardState, snapshot: recovered.snapshot, entries: recovered.entries,
                                   membership: recovered.snapshot?.metadata.membership ?? membership,
                                   applied: recovered.snapshot?.metadata.index ?? 0)
        do throws(RaftError) {
            let raft = try RaftNode(configuration: configuration, state: state)
            inboxLock.withLock { pendingGroups.append((group, raft)) }
        } catch {
            throw .corrupt(group: group, lsn: 0, "the recovered state is inconsistent: \(error)")
        }
    }

    private var pendingGroups: [(UInt64, RaftNode)] = []

    // MARK: Inputs (any thread)

    public func receive(_ batch: [(group: UInt64, message: Message)]) {
        enqueue(batch.map { .message($0.group, $0.message) })
    }

    /// Proposes `data` to `group`; `completion` runs on the driver thread once the entry is
    /// applied (success: its index) or known lost (failure).
    public func propose(group: UInt64, data: [UInt8], completion: @escaping Completion) {
        enqueue([.propose(group, data, completion)])
    }

    public func tick() { enqueue([.tick]) }
    public func campaign(group: UInt64) { enqueue([.campaign(group)]) }

    private func enqueue(_ inputs: [Input]) {
        inboxLock.lock()
        inbox.append(contentsOf: inputs)
        inboxLock.signal()
        inboxLock.unlock()
    }

    /// Runs cycles on the calling thread until `stop()`, sleeping while there is nothing to do.
    public func runLoop() {
        if writesInBackground { startDetachedThread { [self] in writerLoop() } }
        defer {
            if writesInBackground {
                writerLock.withLock {
                    writerStopped = true
                    writerLock.broadcast()
                }
                writerDone.wait()
            }
        }
        while true {
            inboxLock.lock()
            while inbox.isEmpty && pendingGroups.isEmpty && !stopped && !hasReady { inboxLock.wait() }
            let done = stopped
            inboxLock.unlock()
            if done { return }
            do throws(RaftStorageError) { try runCycle() } catch {
                // The log failed (it refuses writes from now on): fail everything waiting.
                failAll(.invalidArgument("the record log failed: \(error)"))
                return
            }
        }
    }

    public func stop() {
        inboxLock.withLock {
            stopped = true
            inboxLock.broadcast()
        }
    }

    // MARK: The writer (its own thread)

    private func writerLoop() {
        defer { writerDone.set() }
        while true {
            writerLock.lock()
            while jobs.isEmpty && !writerStopped { writerLock.wait() }
            if jobs.isEmpty && writerStopped {
                writerLock.unlock()
                return
            }
            let batch = jobs
            jobs = []
            writerLock.unlock()
            do throws(RaftStorageError) {
                try write(batch)
            } catch {
                writerLock.withLock { writerFailure = error }
                enqueue([])  // wake the driver to notice
                return
            }
            writerLock.withLock {
                jobsInFlight -= batch.count
                writerLock.broadcast()
            }
        }
    }

    /// Persists jobs in one append, sends their messages in order, reports them durable.
    private func write(_ batch: [WriteJob]) throws(RaftStorageError) {
        let writes = batch.flatMap(\.writes)
        if !writes.isEmpty {
            try store.persist(writes)
            if writes.contains(where: { $0.ready.mustSync }) { writerLock.withLock { syncs += 1 } }
        }
        if let transport {
            for job in batch { for (to, messages) in job.messages { transport(to, messages) } }
        }
        enqueue([.persisted(batch.flatMap(\.readies))])
    }

    /// Blocks until the writer has finished every job handed to it.
    private func drainWriter() {
        writerLock.lock()
        while jobsInFlight > 0 && writerFailure == nil { writerLock.wait() }
        writerLock.unlock()
    }

    private var hasReady: Bool { groups.values.contains { $0.hasReady } }

    /// Whether a cycle would do anything (queued inputs or a group with a `Ready`).
    public var hasWork: Bool {
        inboxLock.withLock { !inbox.isEmpty || !pendingGroups.isEmpty } || hasReady
    }

    // MARK: The cycle (driver thread)

    public func runCycle() throws(RaftStorageError) {
        let (inputs, added) = inboxLock.withLock { () -> ([Input], [(UInt64, RaftNode)]) in
            defer { inbox = []; pendingGroups = [] }
            return (inbox, pendingGroups)
        }
        for (group, raft) in added { groups[group] = raft }
        var ticked = false
        for input in inputs {
            switch input {
            case let .message(group, message):
                guard groups[group] != nil else { continue }
                groups[group]!.step(message)
            case let .propose(group, data, completion):
                guard groups[group] != nil else { completion(.failure(.invalidArgument("no group \(group)"))); continue }
                do throws(RaftError) {
                    let index = try groups[group]!.propose(data)
                    waiters[group, default: [:]][index] = (groups[group]!.term, completion)
                } catch {
                    completion(.failure(error))
                }
            case .tick:
                guard !ticked else { continue }  // ticks that queued up during a slow sync coalesce
                ticked = true
                for group in groups.keys.sorted() { groups[group]!.tick() }
            case let .campaign(group):
                groups[group]?.campaign()
            case let .persisted(readies):
                for (group, ready) in readies { groups[group]?.persisted(ready) }
            }
        }
        if let failure = writerLock.withLock({ writerFailure }) { throw failure }
        // Gather, persist once, then send, apply, advance.
        var readies: [(UInt64, Ready)] = []
        for group in groups.keys.sorted() where groups[group]!.hasReady {
            readies.append((group, groups[group]!.ready()))
        }
        guard !readies.isEmpty else { return }
        cycles += 1
        // A leader's appends go out before its own write (the Raft thesis, §10.2.1): followers
        // persist in parallel with the leader, and the leader counts itself toward a commit
        // only once its own write is durable (`advance`). Everything else — votes, responses —
        // waits for the write.
        var early: [NodeID: [(group: UInt64, message: Message)]] = [:]
        var outgoing: [NodeID: [(group: UInt64, message: Message)]] = [:]
        for (group, ready) in readies {
            for message in ready.messages {
                if message.kind == .append && groups[group]!.role == .leader {
                    early[message.to, default: []].append((group, message))
                } else {
                    outgoing[message.to, default: []].append((group, message))
                }
            }
        }
        if let transport {
            for destination in early.keys.sorted() { transport(destination, early[destination]!) }
        }
        // Committed entries are durable on a quorum (this node's copy included: the core hands
        // out only entries its own log has made durable), so they are applied before this
        // cycle's write, which keeps that write's fdatasync off their latency.
        for (group, ready) in readies where !ready.committedEntries.isEmpty {
            for entry in ready.committedEntries where entry.kind == .configurationChange {
                if let change = try? ConfigurationChange(decoding: entry.data) { groups[group]!.applyConfigurationChange(change) }
            }
            applier?.apply(group: group, entries: ready.committedEntries)
            complete(group: group, entries: ready.committedEntries)
        }
        let writes = readies.filter { !$0.1.entries.isEmpty || $0.1.hardState != nil || $0.1.snapshot != nil }
            .map { RaftLogStore.Write(group: $0.0, ready: $0.1) }
        for (group, ready) in readies { groups[group]!.applied(ready) }
        let job = WriteJob(writes: writes, messages: outgoing.keys.sorted().map { ($0, outgoing[$0]!) }, readies: readies)
        if writesInBackground && !readies.contains(where: { $0.1.snapshot != nil }) {
            writerLock.withLock {
                jobs.append(job)
                jobsInFlight += 1
                writerLock.signal()
            }
            return
        }
        // Inline: after anything the writer still holds, so that order is kept.
        if writesInBackground { drainWriter() }
        if let failure = writerLock.withLock({ writerFailure }) { throw failure }
        if !writes.isEmpty {
            try store.persist(writes)
            if writes.contains(where: { $0.ready.mustSync }) { writerLock.withLock { syncs += 1 } }
        }
        if let transport {
            for (to, messages) in job.messages { transport(to, messages) }
        }
        for (group, ready) in readies { groups[group]!.persisted(ready) }
    }

    private func complete(group: UInt64, entries: [Entry]) {
        guard var pending = waiters[group], !pending.isEmpty else { return }
        for entry in entries {
            guard let waiter = pending.removeValue(forKey: entry.index) else { continue }
            waiter.completion(waiter.term == entry.term ? .success(entry.index) : .failure(.notLeader(leader: groups[group]!.leader)))
        }
        // Proposals at indexes now applied by other entries were lost with an earlier leadership.
        if let last = entries.last {
            for (index, waiter) in pending where index <= last.index {
                pending[index] = nil
                waiter.completion(.failure(.notLeader(leader: groups[group]!.leader)))
            }
        }
        waiters[group] = pending
    }

    private func failAll(_ error: RaftError) {
        for (_, pending) in waiters { for (_, waiter) in pending { waiter.completion(.failure(error)) } }
        waiters = [:]
    }

    // MARK: Status (driver thread, or after stop)

    public func status(of group: UInt64) -> (role: Role, term: UInt64, leader: NodeID, committed: UInt64)? {
        groups[group].map { ($0.role, $0.term, $0.leader, $0.committed) }
    }
}
