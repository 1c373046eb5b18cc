// A node's multi-Raft host: many Raft groups over one record log. Inputs (messages from peers,
// proposals, ticks) queue from any thread; one driver thread runs `runCycle()`, which steps
// them into the groups, gathers every group's `Ready`, persists all of them in one append and
// one fdatasync, hands the messages out batched per destination node, applies committed
// entries and completes the proposals they answer. Inputs that arrive while a cycle syncs are
// batched into the next one: that is the group commit. Ticks that pile up during a slow sync
// coalesce into one.
//
// With `writesInBackground` (what `runLoop` is for), the driver does not wait for the sync: it
// writes each cycle's records without syncing (one append), queues the messages that depend on
// them, and goes on stepping inputs. Sync threads (`syncsInFlightMax` of them) each take
// everything written so far, fdatasync it (`RaftLogStore.syncWritten`) — so a new batch never
// waits for the sync in flight, it starts its own beside it — then send the covered jobs'
// messages in order and tell the driver what is now durable (`RaftNode.persisted`). A cycle
// that installs a snapshot first waits for every job to be delivered and writes inline.
//
// Idle groups whose configuration says `quiesce` go quiet (no heartbeats, no ticks) until a
// message or request wakes them. The host runs node liveness (`NodeLiveness`) for them: every
// message from a node counts as a sign of life, a peer the host has sent nothing to for a few
// ticks gets one `.ping` (group 0) — one per node pair, not per group — and when a peer stays
// silent for an election timeout, every quiet group it led is told (`reportNodeDown`), wakes
// and elects again. Pings carry the sender's incarnation: a peer that restarted faster than
// that is caught by its new incarnation (`reportNodeRestarted`).

import Basics
import FileIO
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
        case unreachable(NodeID)
        case snapshotSent(UInt64, to: NodeID, index: UInt64, success: Bool)
        case compact(UInt64, through: UInt64)
        case remove(UInt64, done: @Sendable (RaftStorageError?) -> Void)
        /// The writer made these `Ready`s' writes durable.
        case persisted([(UInt64, Ready)])
    }

    /// Write in the background (see the type's comment). Set before `runLoop`.
    public var writesInBackground = false

    /// A cycle's written records, waiting for a sync before its messages go out.
    private struct WriteJob {
        var sequence: Int
        var needsSync: Bool
        var messages: [(to: NodeID, messages: [(group: UInt64, message: Message)])]
        var readies: [(UInt64, Ready)]
    }

    /// fdatasyncs in flight at once in the background mode.
    public static let syncsInFlightMax = 2

    // Background state, under `writerLock`.
    private let writerLock = ConditionLock()
    /// Written, not yet delivered, in sequence order.
    private var jobs: [WriteJob] = []
    private var lastWritten = 0
    /// The highest sequence a sync thread has taken.
    private var syncTaken = 0
    private var delivered = 0
    private var writerStopped = false
    private var writerFailure: RaftStorageError?
    private var syncersRunning = 0
    /// Keeps deliveries in sequence order.
    private let deliveryLock = ConditionLock()

    private let inboxLock = ConditionLock()
    private var inbox: [Input] = []
    private var stopped = false

    // Driver-thread state.
    private var groups: [UInt64: RaftNode] = [:]
    private var waiters: [UInt64: [UInt64: (term: UInt64, completion: Completion)]] = [:]
    public private(set) var cycles = 0
    /// Cycles that synced the log (read after `stop`).
    public private(set) var syncs = 0

    /// Node liveness (driver thread), and this start's incarnation (what pings carry).
    private var liveness = NodeLiveness()
    public let incarnation = UInt64.random(in: 1...UInt64.max)

    /// Where each group's hard-state file lives (`<directory>/<group>.vote`), if anywhere.
    private let stateDirectory: String?
    private let fileSystem: (any FileSystem)?
    /// Per group, what its hard-state file says (driver thread).
    private var durableVotes: [UInt64: DurableVote] = [:]
    /// The node's log was damaged and set aside at open: every group starts as having lost
    /// its log.
    public let logWasSetAside: Bool

    /// A host over `store`. With `stateDirectory`, each group's term, vote and recovering flag
    /// are also kept in a hard-state file there (Format/raft.md §6), which is what lets a group
    /// recover from a damaged log.
    public init(node: NodeID, store: RaftLogStore, stateDirectory: String? = nil, fileSystem: (any FileSystem)? = nil,
                logWasSetAside: Bool = false) {
        self.node = node
        self.store = store
        self.stateDirectory = stateDirectory
        self.fileSystem = fileSystem
        self.logWasSetAside = logWasSetAside
    }

    /// Opens the node's Raft storage under `directory`: the record log in `log/` and the
    /// hard-state files in `raft/`. A log that fails its checks is moved aside to
    /// `log.damaged-N` (never read again by Vectron, kept for inspection) and replaced by an
    /// empty one.
    public static func open(node: NodeID, directory: String, fileSystem: any FileSystem,
                            options: RecordLogOptions = RecordLogOptions()) throws(RaftStorageError) -> RaftHost {
        let logDirectory = joinPath(directory, "log"), stateDirectory = joinPath(directory, "raft")
        var setAside = false
        do throws(FileIOError) { try fileSystem.createDirectory(stateDirectory) } catch { throw .log(.io(error)) }
        var opened: RecordLog?
        do throws(LogError) { opened = try RecordLog.open(directory: logDirectory, fileSystem: fileSystem, options: options).0 } catch {
            guard case .corruption = error else { throw .log(error) }
        }
        if opened == nil {
            var number = 1
            while fileSystem.fileExists(joinPath(directory, "log.damaged-\(number)")) { number += 1 }
            let damaged = joinPath(directory, "log.damaged-\(number)")
            do throws(FileIOError) {
                // File by file, so that any file system can do it; the new directory first.
                try fileSystem.createDirectory(damaged)
                try fileSystem.syncDirectory(directory)
                for name in try fileSystem.list(logDirectory) {
                    try fileSystem.rename(joinPath(logDirectory, name), to: joinPath(damaged, name))
                }
                try fileSystem.syncDirectory(damaged)
                try fileSystem.syncDirectory(logDirectory)
            } catch {
                throw .log(.io(error))
            }
            setAside = true
            do throws(LogError) { opened = try RecordLog.open(directory: logDirectory, fileSystem: fileSystem, options: options).0 } catch {
                throw .log(error)
            }
        }
        let log = opened!
        return RaftHost(node: node, store: RaftLogStore(log: log), stateDirectory: stateDirectory, fileSystem: fileSystem,
                        logWasSetAside: setAside)
    }

    private func votePath(_ group: UInt64) -> String? { stateDirectory.map { joinPath($0, "\(group).vote") } }

    /// Adds a group, recovering its state from the log (a new group starts with `membership`).
    /// If the group's records fail their checks (or the whole log was set aside), the group
    /// drops them and starts empty as having lost its log — which needs its hard-state file.
    /// Returns the index of the first entry the group's recovered log holds (entries before it
    /// were compacted).
    @discardableResult
    public func addGroup(_ group: UInt64, configuration: RaftConfiguration, membership: Membership) throws(RaftStorageError) -> UInt64 {
        // Ticks that queue up during a slow sync coalesce here, so a leader's tick count can lag
        // its followers': a lease would outlive their promise.
        precondition(!configuration.leaseReads, "RaftHost coalesces ticks; lease reads need every tick counted")
        var vote: DurableVote?
        if let path = votePath(group), let fileSystem { vote = try HardStateFile.read(path, fileSystem: fileSystem) }
        var state: PersistedState
        do throws(RaftStorageError) {
            if logWasSetAside { throw RaftStorageError.corrupt(group: group, lsn: 0, "the log was set aside") }
            state = try store.recover(group: group).restartState(vote: vote, membership: membership)
        } catch {
            switch error {
            case .log(.corruption), .corrupt: break
            default: throw error
            }
            // Without the hard-state file the node might vote twice in a term: refuse.
            guard let path = votePath(group), let fileSystem else { throw error }
            inboxLock.withLock { lostLogs[group] = "\(error)" }
            if !logWasSetAside, let bounds = store.log.bounds(of: group) {
                do throws(LogError) { try store.log.truncatePrefix(stream: group, below: bounds.upperBound + 1) } catch { throw .log(error) }
            }
            var lost = vote ?? DurableVote()
            lost.recovering = true
            do throws(FileIOError) { try HardStateFile.write(path, lost, fileSystem: fileSystem) } catch { throw .log(.io(error)) }
            vote = lost
            state = .lostLog(vote: lost, membership: membership)
        }
        do throws(RaftError) {
            let raft = try RaftNode(configuration: configuration, state: state)
            let known = vote ?? DurableVote()
            inboxLock.withLock { pendingGroups.append((group, raft, known)) }
            return raft.firstIndex
        } catch {
            throw .corrupt(group: group, lsn: 0, "the recovered state is inconsistent: \(error)")
        }
    }

    private var pendingGroups: [(UInt64, RaftNode, DurableVote)] = []
    private var lostLogs: [UInt64: String] = [:]

    /// Why a group added here started as having lost its log (its records failed their checks
    /// or the log was set aside), if it did.
    public func lostLog(_ group: UInt64) -> String? { inboxLock.withLock { lostLogs[group] } }

    // MARK: Inputs (any thread)

    public func receive(_ batch: [(group: UInt64, message: Message)]) {
        enqueue(batch.map { .message($0.group, $0.message) })
    }

    /// Proposes `data` to `group`; `completion` runs on the driver thread once the entry is
    /// applied (success: its index) or known lost (failure).
    /// The largest proposal: what one log record holds, less room for the entry's header.
    public var proposalBytesMax: Int { store.log.options.recordPayloadBytesMax - 64 }

    public func propose(group: UInt64, data: [UInt8], completion: @escaping Completion) {
        enqueue([.propose(group, data, completion)])
    }

    public func tick() { enqueue([.tick]) }

    /// The transport could not deliver to `peer`: every group this node leads stops streaming
    /// to it optimistically and probes (`RaftNode.reportUnreachable`).
    public func reportUnreachable(_ peer: NodeID) { enqueue([.unreachable(peer)]) }

    /// The transport finished sending `group`'s snapshot at `index` to `peer` (`success`: the
    /// peer's node has it) or gave up: the leader stops waiting for it (`RaftNode.reportSnapshot`).
    public func reportSnapshot(group: UInt64, to peer: NodeID, index: UInt64, success: Bool) {
        enqueue([.snapshotSent(group, to: peer, index: index, success: success)])
    }
    public func campaign(group: UInt64) { enqueue([.campaign(group)]) }

    /// Compacts `group`'s log through `index` (at most its applied index): the state machine
    /// holds everything up to there durably on its own. The snapshot recorded carries no data —
    /// a peer that needs entries from before it must get the state machine's own snapshot.
    public func compact(group: UInt64, through index: UInt64) { enqueue([.compact(group, through: index)]) }

    /// Removes `group` from this node: its waiters fail, its records leave the log and its
    /// hard-state file is deleted. `done` runs on the driver thread.
    public func removeGroup(_ group: UInt64, done: @escaping @Sendable (RaftStorageError?) -> Void) {
        enqueue([.remove(group, done: done)])
    }

    private func enqueue(_ inputs: [Input]) {
        inboxLock.lock()
        inbox.append(contentsOf: inputs)
        inboxLock.signal()
        inboxLock.unlock()
    }

    /// Runs cycles on the calling thread until `stop()`, sleeping while there is nothing to do.
    public func runLoop() {
        if writesInBackground {
            writerLock.withLock { syncersRunning = Self.syncsInFlightMax }
            for _ in 0..<Self.syncsInFlightMax { startDetachedThread { [self] in syncLoop() } }
        }
        defer {
            if writesInBackground {
                writerLock.lock()
                writerStopped = true
                writerLock.broadcast()
                while syncersRunning > 0 { writerLock.wait() }
                writerLock.unlock()
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

    // MARK: The sync threads

    private func syncLoop() {
        defer {
            writerLock.withLock {
                syncersRunning -= 1
                writerLock.broadcast()
            }
        }
        while true {
            writerLock.lock()
            while lastWritten <= syncTaken && !writerStopped && writerFailure == nil { writerLock.wait() }
            if writerFailure != nil || lastWritten <= syncTaken {
                writerLock.unlock()
                return
            }
            let target = lastWritten
            syncTaken = target
            // Everything not yet delivered up to `target`: a sync here covers it all, so a range
            // whose own jobs need no sync still waits for an earlier one's.
            let needsSync = jobs.contains { $0.sequence <= target && $0.needsSync }
            writerLock.unlock()
            if needsSync {
                do throws(RaftStorageError) { try store.syncWritten() } catch {
                    writerLock.withLock {
                        if writerFailure == nil { writerFailure = error }
                        writerLock.broadcast()
                    }
                    enqueue([])  // wake the driver to notice
                    return
                }
                writerLock.withLock { syncs += 1 }
            }
            deliver(through: target)
        }
    }

    /// Sends the messages of every job up to `target` not yet delivered, in order, and reports
    /// them durable to the driver.
    private func deliver(through target: Int) {
        deliveryLock.lock()
        defer { deliveryLock.unlock() }
        let ready = writerLock.withLock { () -> [WriteJob] in
            // After a failed sync nothing more leaves: what it covered may not be on disk.
            if writerFailure != nil { return [] }
            let count = jobs.prefix { $0.sequence <= target }.count
            let taken = Array(jobs.prefix(count))
            jobs.removeFirst(count)
            return taken
        }
        guard let last = ready.last else { return }
        if let transport {
            for job in ready { for (to, messages) in job.messages { transport(to, messages) } }
        }
        enqueue([.persisted(ready.flatMap(\.readies))])
        writerLock.withLock {
            delivered = max(delivered, last.sequence)
            writerLock.broadcast()
        }
    }

    private func writeVotes(_ votes: [(path: String, state: DurableVote)]) throws(RaftStorageError) {
        guard let fileSystem else { return }
        for (path, state) in votes {
            do throws(FileIOError) { try HardStateFile.write(path, state, fileSystem: fileSystem) } catch { throw .log(.io(error)) }
        }
    }

    /// Blocks until every written job has been synced and delivered.
    private func drainWriter() {
        writerLock.lock()
        while delivered < lastWritten && writerFailure == nil { writerLock.wait() }
        writerLock.unlock()
    }

    private var hasReady: Bool { groups.values.contains { $0.hasReady } }

    /// Whether a cycle would do anything (queued inputs or a group with a `Ready`).
    public var hasWork: Bool {
        inboxLock.withLock { !inbox.isEmpty || !pendingGroups.isEmpty } || hasReady
    }

    // MARK: The cycle (driver thread)

    public func runCycle() throws(RaftStorageError) {
        let (inputs, added) = inboxLock.withLock { () -> ([Input], [(UInt64, RaftNode, DurableVote)]) in
            defer { inbox = []; pendingGroups = [] }
            return (inbox, pendingGroups)
        }
        for (group, raft, vote) in added {
            groups[group] = raft
            durableVotes[group] = vote
            for member in raft.membership.members where member != node { liveness.track(member) }
        }
        var ticked = false
        for input in inputs {
            switch input {
            case let .message(group, message):
                if message.kind == .ping {
                    if liveness.heard(from: message.from, incarnation: message.term) {
                        for group in groups.keys.sorted() { groups[group]!.reportNodeRestarted(message.from) }
                    }
                    continue
                }
                liveness.heard(from: message.from)
                guard groups[group] != nil else { continue }
                groups[group]!.step(message)
            case let .propose(group, data, completion):
                guard groups[group] != nil else { completion(.failure(.invalidArgument("no group \(group)"))); continue }
                // An entry the log cannot hold would fail the whole cycle's append (and stop the
                // driver): refuse it here, alone.
                guard data.count <= proposalBytesMax else {
                    completion(.failure(.invalidArgument("a proposal of \(data.count) bytes is over the limit of \(proposalBytesMax)")))
                    continue
                }
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
                let (ping, nowDown) = liveness.tick()
                if let transport {
                    for peer in ping { transport(peer, [(0, Message(kind: .ping, from: node, to: peer, term: incarnation))]) }
                }
                for peer in nowDown {
                    for group in groups.keys.sorted() where groups[group]!.leader == peer { groups[group]!.reportNodeDown(peer) }
                }
            case let .campaign(group):
                groups[group]?.campaign()
            case let .unreachable(peer):
                for group in groups.keys.sorted() { groups[group]!.reportUnreachable(peer) }
            case let .snapshotSent(group, peer, index, success):
                groups[group]?.reportSnapshot(peer, index: index, success: success)
            case let .compact(group, index):
                guard var raft = groups[group] else { continue }
                let through = min(index, raft.applied)
                guard through > raft.firstIndex, let term = raft.term(at: through) else { continue }
                let snapshot = Snapshot(metadata: SnapshotMetadata(index: through, term: term, membership: raft.membership))
                do throws(RaftError) { try raft.compact(snapshot: snapshot) } catch { continue }
                groups[group] = raft
                try store.compact(group: group, snapshot: snapshot)
            case let .remove(group, done):
                guard groups.removeValue(forKey: group) != nil else { done(nil); continue }
                for (_, waiter) in waiters.removeValue(forKey: group) ?? [:] {
                    waiter.completion(.failure(.invalidArgument("group \(group) was removed")))
                }
                durableVotes[group] = nil
                do throws(RaftStorageError) {
                    if let bounds = store.log.bounds(of: group) {
                        do throws(LogError) { try store.log.truncatePrefix(stream: group, below: bounds.upperBound + 1) } catch { throw .log(error) }
                    }
                    if let path = votePath(group), let fileSystem, fileSystem.fileExists(path) {
                        do throws(FileIOError) { try fileSystem.remove(path) } catch { throw .log(.io(error)) }
                    }
                    done(nil)
                } catch {
                    done(error)
                }
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
        for destination in early.keys { liveness.sent(to: destination) }
        for destination in outgoing.keys { liveness.sent(to: destination) }
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
        // Hard-state files whose term, vote or recovering flag changed: written before the log.
        var votes: [(String, DurableVote)] = []
        if stateDirectory != nil {
            for (group, ready) in readies {
                let raft = groups[group]!
                var wanted = durableVotes[group] ?? DurableVote()
                if let hard = ready.hardState {
                    wanted.term = hard.term
                    wanted.vote = hard.vote
                }
                wanted.recovering = raft.recovering
                if wanted != durableVotes[group] {
                    votes.append((votePath(group)!, wanted))
                    durableVotes[group] = wanted
                }
            }
        }
        let messages = outgoing.keys.sorted().map { ($0, outgoing[$0]!) }
        if writesInBackground && !readies.contains(where: { $0.1.snapshot != nil }) {
            // Written now, synced and delivered by a sync thread.
            try writeVotes(votes)
            if !writes.isEmpty { try store.persist(writes, syncing: false) }
            writerLock.withLock {
                lastWritten += 1
                jobs.append(WriteJob(sequence: lastWritten, needsSync: writes.contains { $0.ready.mustSync },
                                     messages: messages, readies: readies))
                writerLock.signal()
            }
            return
        }
        // Inline: after everything the sync threads still hold, so that order is kept.
        if writesInBackground { drainWriter() }
        if let failure = writerLock.withLock({ writerFailure }) { throw failure }
        try writeVotes(votes)
        if !writes.isEmpty {
            try store.persist(writes)
            if writes.contains(where: { $0.ready.mustSync }) { writerLock.withLock { syncs += 1 } }
        }
        if let transport {
            for (to, messages) in messages { transport(to, messages) }
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

    /// Whether `group` is quiet (see `RaftConfiguration.quiesce`).
    public func isQuiet(_ group: UInt64) -> Bool? { groups[group]?.quiesced }
}
