// A Vectron node: the storage engine, the unified log under a multi-Raft host, the catalog
// group and one shard per shard group it hosts. On one machine every group has this node as
// its only member; the code paths are the cluster's.
//
// Data directory layout:
//   LOCK                  held while the node runs (a second process is refused)
//   storage/              the storage engine (external WAL: the Raft log is its log)
//   raft/log/, raft/raft/ the unified record log and the groups' hard-state files
//   shards/<group>/       each shard's vector checkpoints
//
// Threads: the Raft driver (`RaftHost.runLoop`) applies the catalog inline and hands shard
// entries to each shard's apply thread; a ticker drives Raft time; a maintenance thread
// checkpoints shards and compacts the log.

import Auth
import Basics
import Catalog
import FileIO
import Logging
import LSM
import Raft
import RaftStorage
import RecordLog
import Shard
import Synchronization
import VectorIndex
import Wire

public enum ServerError: Error, CustomStringConvertible {
    case startup(String)
    case notFound(String)
    case invalid(String)
    case conflict(String)
    case unavailable(String)
    case internalError(String)

    public var description: String {
        switch self {
        case let .startup(text), let .notFound(text), let .invalid(text), let .conflict(text), let .unavailable(text), let .internalError(text): text
        }
    }
}

public final class Node: @unchecked Sendable {
    public static let catalogGroup: UInt64 = 1
    static let nodeID: NodeID = 1

    public let configuration: ServerConfiguration
    let fileSystem: any FileSystem
    let directoryLock: any FileLock
    let engine: StorageEngine
    let host: RaftHost
    let logger: Logger

    private let lock = ConditionLock()
    private var catalogState = Catalog()
    private var catalogApplied: UInt64 = 0
    private var outcomes: [UInt64: CatalogOutcome] = [:]
    private var catalogWaiters: [(UInt64, @Sendable () -> Void)] = []
    private var shards: [UInt64: ShardRunner] = [:]
    private var stopping = false
    private var threadsRunning = 0
    public private(set) var recoverySeconds: Double = 0
    private var ready = false

    /// Raft commit latency: from `propose` until the entry is applied and its proposer is
    /// answered (successes only). Its own lock: the driver and every shard's apply thread
    /// record here.
    private let commitLatencyHistogram = Mutex(LatencyHistogram())
    var commitLatency: LatencyHistogram { commitLatencyHistogram.withLock { $0 } }

    public var catalog: Catalog { lock.withLock { catalogState } }
    public var isReady: Bool { lock.withLock { ready } }

    static let catalogKey: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 1, 0x63]

    public init(configuration: ServerConfiguration, logger: Logger) throws(ServerError) {
        self.configuration = configuration
        self.logger = logger
        let fileSystem = POSIXFileSystem()
        self.fileSystem = fileSystem
        let data = configuration.dataDirectory
        do throws(FileIOError) {
            directoryLock = try fileSystem.lockDirectory(data, lockFileName: "LOCK")
        } catch {
            if error.kind == .locked { throw .startup("the data directory \(data) is in use by another process") }
            throw .startup("cannot open the data directory \(data): \(error)")
        }
        var options = StorageOptions()
        options.walMode = .external
        do throws(StorageError) {
            engine = try StorageEngine.open(directory: joinPath(data, "storage"), fileSystem: fileSystem, options: options)
        } catch {
            directoryLock.unlock()
            throw .startup("cannot open the storage engine: \(error)")
        }
        do throws(RaftStorageError) {
            host = try RaftHost.open(node: Self.nodeID, directory: joinPath(data, "raft"), fileSystem: fileSystem)
        } catch {
            engine.close()
            directoryLock.unlock()
            throw .startup("cannot open the Raft log: \(error)")
        }
        host.writesInBackground = true
    }

    // MARK: Starting and stopping

    /// Recovers the catalog and every shard, starts the threads and waits until every group has
    /// applied everything it had committed (then `isReady`).
    public func start() throws(ServerError) {
        let started = ContinuousClock.now
        // The catalog as the engine holds it, then its log replayed after that.
        do throws(StorageError) {
            if let bytes = try engine.get(Self.catalogKey) {
                do throws(DecodeError) { catalogState = try Catalog.decode(bytes) } catch {
                    throw StorageError.inconsistent("the stored catalog does not decode: \(error)")
                }
            }
        } catch {
            throw .startup("cannot read the catalog: \(error)")
        }
        catalogApplied = engine.durableAppliedIndexes[Self.catalogGroup] ?? 0
        host.applier = self
        try addGroup(Self.catalogGroup)
        for info in catalogState.collections.values {
            for group in info.shardGroups { try openShard(group: group, collection: info) }
        }
        lock.withLock { driverStarted = true }
        startDetachedThread { [self] in
            host.runLoop()
            driverStopped.set()
        }
        startThread { [self] in tickLoop() }
        startThread { [self] in maintenanceLoop() }
        // Every group: elect (one member), then a no-op through the log shows that everything
        // committed before has been applied.
        try settle(group: Self.catalogGroup)
        // Only now is the catalog whole (its log replayed): a shard created after the stored
        // catalog was written must not be taken for an orphan.
        sweepOrphanShards()
        if catalogState.secret.isEmpty {
            _ = try proposeCatalogAndWait(.initialise(secret: JWT.generateSecret()))
        }
        let groups = lock.withLock { shards.keys.sorted() }
        for group in groups {
            guard let shard = shard(group: group) else { continue }
            let from = shard.replayFrom
            try settle(group: group)
            logger.info("shard recovered", metadata: [
                "group": "\(group)", "replayed_from": "\(from)",
                "applied": "\(shard.appliedIndex)", "points": "\(shard.count)",
            ])
        }
        let elapsed = ContinuousClock.now - started
        lock.withLock {
            recoverySeconds = elapsed.seconds
            ready = true
        }
        logger.info("recovered", metadata: ["seconds": "\(recoverySeconds)", "collections": "\(catalog.collections.count)", "shards": "\(groups.count)"])
    }

    /// Stops the threads, checkpoints every shard (so the next start replays nothing) and closes.
    public func stop() {
        let runners: [ShardRunner] = lock.withLock {
            stopping = true
            lock.broadcast()
            return Array(shards.values)
        }
        lock.withLock { while threadsRunning > 0 { lock.wait() } }
        for runner in runners { runner.stop() }
        host.stop()
        // The driver ends its cycle (it may be applying catalog entries to the engine) first;
        // a collection deletion it applied meanwhile started a thread: wait for that too, and
        // checkpoint only the shards still open.
        if lock.withLock({ driverStarted }) { driverStopped.wait() }
        let open: [ShardRunner] = lock.withLock {
            while threadsRunning > 0 { lock.wait() }
            return Array(shards.values)
        }
        for runner in open where !runners.contains(where: { $0 === runner }) { runner.stop() }
        for runner in open {
            do throws(ShardError) { try runner.shard.checkpoint() } catch {
                logger.error("checkpoint at shutdown failed", metadata: ["group": "\(runner.shard.group)", "error": "\(error)"])
            }
        }
        host.store.log.close()
        engine.close()
        directoryLock.unlock()
    }

    /// Committed command bytes a shard may have waiting to be applied before writes that do
    /// not wait for their apply wait for it anyway.
    static let applyBacklogBytesMax = 64 << 20

    private var driverStarted = false
    private let driverStopped = Event()
    /// Threads removing deleted collections' shards.
    var deletionsRunning = 0

    private func startThread(_ body: @escaping @Sendable () -> Void) {
        lock.withLock { threadsRunning += 1 }
        startDetachedThread { [self] in
            body()
            lock.withLock {
                threadsRunning -= 1
                lock.broadcast()
            }
        }
    }

    private func tickLoop() {
        while !sleepUnlessStopping(milliseconds: configuration.tickMilliseconds) { host.tick() }
    }

    /// Sleeps; true if the node is stopping.
    private func sleepUnlessStopping(milliseconds: Int) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        return lock.withLock {
            while !stopping {
                let left = deadline - ContinuousClock.now
                if left <= .zero { return false }
                lock.wait(timeout: left)
            }
            return true
        }
    }

    private func maintenanceLoop() {
        while !sleepUnlessStopping(milliseconds: configuration.maintenanceMilliseconds) {
            let runners = lock.withLock { Array(shards.values) }
            for runner in runners { runner.maintain(force: false) }
            let durable = engine.durableAppliedIndexes[Self.catalogGroup] ?? 0
            if durable > 0 { host.compact(group: Self.catalogGroup, through: durable) }
        }
    }

    // MARK: Groups

    /// Adds and recovers a Raft group; returns its log's first index.
    @discardableResult
    private func addGroup(_ group: UInt64) throws(ServerError) -> UInt64 {
        var raft = RaftConfiguration(id: Self.nodeID, seed: group &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        raft.quiesce = true
        let firstIndex: UInt64
        do throws(RaftStorageError) {
            firstIndex = try host.addGroup(group, configuration: raft, membership: Membership(voters: [Self.nodeID]))
        } catch {
            throw .startup("cannot recover Raft group \(group): \(error)")
        }
        if let reason = host.lostLog(group) {
            logger.critical("a Raft group's log failed its checks and was dropped; the group waits for its peers",
                            metadata: ["group": "\(group)", "error": "\(reason)"])
        }
        host.campaign(group: group)
        return firstIndex
    }

    private func openShard(group: UInt64, collection: CollectionInfo) throws(ServerError) {
        var hnsw = HNSWConfiguration(dimension: collection.dimension, metric: collection.metric,
                                     m: collection.m, efConstruct: collection.efConstruct)
        hnsw.seed = group
        let shard: Shard
        do throws(ShardError) {
            shard = try Shard(group: group, directory: joinPath(joinPath(configuration.dataDirectory, "shards"), "\(group)"),
                              engine: engine, fileSystem: fileSystem, configuration: hnsw)
        } catch {
            throw .startup("cannot open shard \(group) of `\(collection.name)`: \(error)")
        }
        for failure in shard.loadFailures {
            logger.error("a shard checkpoint was damaged; an older one was used", metadata: ["group": "\(group)", "error": "\(failure)"])
        }
        if shard.rebuiltPoints > 0 {
            logger.warning("a shard had no usable checkpoint; its index was rebuilt from storage",
                           metadata: ["group": "\(group)", "points": "\(shard.rebuiltPoints)"])
        }
        shard.insertThreads = configuration.insertThreads
        let runner = ShardRunner(shard: shard, node: self)
        lock.withLock { shards[group] = runner }
        let firstIndex = try addGroup(group)
        // Replay must start where both sides left off; if the log no longer holds that (state
        // lost beyond what the log kept), serving would hide the lost writes: refuse to start.
        do throws(ShardError) { try shard.ensureCovered(firstIndex: firstIndex) } catch {
            throw .startup("shard \(group) of `\(collection.name)` cannot be recovered: \(error); its checkpoints and storage "
                           + "hold less than the log was compacted to. Restore the data directory from a backup.")
        }
    }

    /// Waits until `group` has a leader and has applied a no-op proposed through it.
    func settle(group: UInt64) throws(ServerError) {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let result = proposeAndWait(group: group, data: [])
            switch result {
            case .success: return
            case .failure(let error):
                if ContinuousClock.now > deadline { throw .startup("group \(group) did not recover: \(error)") }
                _ = sleepUnlessStopping(milliseconds: 5)
            }
        }
    }

    private func proposeAndWait(group: UInt64, data: [UInt8]) -> Result<UInt64, ServerError> {
        let done = Event()
        nonisolated(unsafe) var outcome: Result<UInt64, ServerError> = .failure(.unavailable("no answer"))
        propose(group: group, data: data) { result in
            outcome = result
            done.set()
        }
        done.wait()
        return outcome
    }

    // MARK: Proposing

    /// Proposes `data` to `group`; `completion` runs (on some internal thread) once the entry is
    /// applied — to the catalog or to the shard — or failed.
    /// With `waitForApply` false a shard write is answered once it is committed — durable in
    /// the log, applied soon after, in order — unless the shard's backlog of committed entries
    /// not yet applied exceeds `applyBacklogBytesMax`; then it waits for the apply like the rest
    /// (backpressure).
    func propose(group: UInt64, data: [UInt8], waitForApply: Bool = true,
                 completion answer: @escaping @Sendable (Result<UInt64, ServerError>) -> Void) {
        let started = ContinuousClock.now
        // Recorded before the answer, so that whoever sees the answer sees the observation.
        let completion: @Sendable (Result<UInt64, ServerError>) -> Void = { [self] result in
            if case .success = result {
                let elapsed = (ContinuousClock.now - started).seconds
                commitLatencyHistogram.withLock { $0.record(seconds: elapsed) }
            }
            answer(result)
        }
        host.propose(group: group, data: data) { [self] result in
            switch result {
            case .failure(let error):
                completion(.failure(.unavailable("the write was not committed: \(error)")))
            case .success(let index):
                if group == Self.catalogGroup {
                    // Applied inline by the driver before completions run.
                    completion(.success(index))
                } else if let runner = lock.withLock({ shards[group] }) {
                    if !waitForApply && runner.backlogBytes <= Self.applyBacklogBytesMax {
                        completion(.success(index))
                        return
                    }
                    runner.shard.whenApplied(index) { applied in
                        completion(applied ? .success(index) : .failure(.unavailable("the shard stopped applying its log; see the server log")))
                    }
                } else {
                    completion(.failure(.notFound("the shard was removed")))
                }
            }
        }
    }

    public func proposeCatalog(_ command: CatalogCommand, completion: @escaping @Sendable (Result<CatalogOutcome, ServerError>) -> Void) {
        propose(group: Self.catalogGroup, data: command.encode()) { [self] result in
            switch result {
            case .failure(let error): completion(.failure(error))
            case .success(let index):
                let outcome = lock.withLock { outcomes.removeValue(forKey: index) }
                completion(outcome.map { .success($0) } ?? .failure(.internalError("the catalog entry \(index) has no outcome")))
            }
        }
    }

    public func proposeCatalogAndWait(_ command: CatalogCommand) throws(ServerError) -> CatalogOutcome {
        let done = Event()
        nonisolated(unsafe) var outcome: Result<CatalogOutcome, ServerError> = .failure(.unavailable("no answer"))
        proposeCatalog(command) { result in
            outcome = result
            done.set()
        }
        done.wait()
        return try outcome.get()
    }

    /// Calls `done` (on another thread) once every shard of a new collection takes writes.
    func whenShardsReady(_ info: CollectionInfo, _ done: @escaping @Sendable (Bool) -> Void) {
        startDetachedThread { [self] in
            for group in info.shardGroups {
                do throws(ServerError) { try settle(group: group) } catch {
                    done(false)
                    return
                }
            }
            done(true)
        }
    }

    func shard(group: UInt64) -> Shard? { lock.withLock { shards[group]?.shard } }

    func runner(group: UInt64) -> ShardRunner? { lock.withLock { shards[group] } }
}

// MARK: Applying (the Raft driver thread)

extension Node: RaftApplier {
    public func apply(group: UInt64, entries: [Entry]) {
        if group == Self.catalogGroup {
            applyCatalog(entries)
        } else if let runner = lock.withLock({ shards[group] }) {
            runner.enqueue(entries.map { (index: $0.index, data: $0.kind == .normal ? $0.data : []) })
        }
    }

    private func applyCatalog(_ entries: [Entry]) {
        var changed = false
        var created: [CollectionInfo] = []
        var deleted: [CollectionInfo] = []
        var last: UInt64 = 0
        lock.withLock {
            for entry in entries where entry.index > catalogApplied {
                last = entry.index
                guard entry.kind == .normal, !entry.data.isEmpty else { continue }
                let outcome: CatalogOutcome
                do throws(DecodeError) {
                    outcome = catalogState.apply(try CatalogCommand.decode(entry.data))
                } catch {
                    outcome = .invalid("the catalog entry \(entry.index) does not decode: \(error)")
                }
                changed = true
                outcomes[entry.index] = outcome
                if case .collectionCreated(let info) = outcome { created.append(info) }
                if case .collectionDeleted(let info) = outcome { deleted.append(info) }
            }
            if last > 0 { catalogApplied = last }
        }
        guard last > 0 else { return }
        var batch = WriteBatch()
        if changed { batch.put(Self.catalogKey, catalog.encode()) }
        batch.setAppliedIndex(stream: Self.catalogGroup, index: last)
        do throws(StorageError) { try engine.write(batch) } catch {
            logger.critical("the catalog could not be written", metadata: ["error": "\(error)"])
        }
        for info in created {
            do throws(ServerError) {
                for group in info.shardGroups { try openShard(group: group, collection: info) }
            } catch {
                logger.error("a new collection's shard did not open", metadata: ["collection": "\(info.name)", "error": "\(error)"])
            }
        }
        for info in deleted {
            for group in info.shardGroups {
                guard let runner = lock.withLock({ shards.removeValue(forKey: group) }) else { continue }
                host.removeGroup(group) { [logger] error in
                    if let error { logger.error("removing a shard group failed", metadata: ["group": "\(group)", "error": "\(error)"]) }
                }
                // Off the driver thread: stopping the runner waits for its current batch of HNSW
                // inserts, and removing the data flushes the storage engine.
                lock.withLock { deletionsRunning += 1 }
                startThread { [self] in
                    runner.stop()
                    do throws(ShardError) { try runner.shard.destroy() } catch {
                        logger.error("removing a shard's data failed", metadata: ["group": "\(group)", "error": "\(error)"])
                    }
                    lock.withLock {
                        deletionsRunning -= 1
                        lock.broadcast()
                    }
                }
            }
        }
    }

    /// Removes the data of shard groups no collection has (a crash during a deletion left them).
    private func sweepOrphanShards() {
        // Deletions replayed from the catalog's log remove their own shards first.
        lock.withLock { while deletionsRunning > 0 { lock.wait() } }
        let directory = joinPath(configuration.dataDirectory, "shards")
        guard fileSystem.isDirectory(directory), let names = try? fileSystem.list(directory) else { return }
        let live = Set(catalog.collections.values.flatMap(\.shardGroups))
        for name in names {
            guard let group = UInt64(name), !live.contains(group) else { continue }
            do throws(ShardError) {
                try Shard.destroy(group: group, directory: joinPath(directory, name), engine: engine, fileSystem: fileSystem)
                logger.info("removed the data of a deleted collection's shard", metadata: ["group": "\(group)"])
            } catch {
                logger.error("removing an orphan shard's data failed", metadata: ["group": "\(group)", "error": "\(error)"])
            }
        }
    }
}

/// A shard's apply thread: entries from the Raft driver queue here and are applied in order,
/// so the driver never waits for an HNSW insert. It also checkpoints the shard when enough has
/// changed and then lets the Raft log drop what the checkpoint covers.
final class ShardRunner: @unchecked Sendable {
    let shard: Shard
    unowned let node: Node
    private let lock = ConditionLock()
    private var queue: [[(index: UInt64, data: [UInt8])]] = []
    private var stopped = false
    private var running = true
    private var failure: ShardError?
    private var sinceCheckpoint = 0
    private var lastMaintenance = ContinuousClock.now

    init(shard: Shard, node: Node) {
        self.shard = shard
        self.node = node
        startDetachedThread { [self] in run() }
    }

    var failed: ShardError? { lock.withLock { failure } }

    func enqueue(_ entries: [(index: UInt64, data: [UInt8])]) {
        let bytes = entries.reduce(0) { $0 + $1.data.count }
        lock.withLock {
            queue.append(entries)
            backlog += bytes
            lock.signal()
        }
    }

    /// Bytes of committed commands queued or being applied.
    var backlogBytes: Int { lock.withLock { backlog } }
    private var backlog = 0

    func stop() {
        lock.withLock {
            stopped = true
            lock.broadcast()
            while running { lock.wait() }
        }
    }

    private func run() {
        while true {
            let batch: [(index: UInt64, data: [UInt8])]? = lock.withLock {
                while queue.isEmpty && !stopped { lock.wait() }
                if queue.isEmpty { return nil }
                let all = queue.flatMap { $0 }
                queue.removeAll()
                return all
            }
            guard let batch else { break }
            let bytes = batch.reduce(0) { $0 + $1.data.count }
            defer { lock.withLock { backlog -= bytes } }
            if lock.withLock({ failure }) != nil { continue }
            do throws(ShardError) {
                try shard.apply(batch)
                // Replay after a crash costs in proportion to the command bytes since the last
                // checkpoint (HNSW inserts): bound those, not the entry count.
                lock.withLock { sinceCheckpoint += bytes }
            } catch {
                node.logger.critical("a shard stopped applying its log", metadata: ["group": "\(shard.group)", "error": "\(error)"])
                lock.withLock { failure = error }
                shard.fail()
            }
            if lock.withLock({ sinceCheckpoint }) >= node.configuration.checkpointBytes { maintain(force: true) }
        }
        lock.withLock {
            running = false
            lock.broadcast()
        }
    }

    /// Checkpoints the shard if it changed (always with `force`, else once a maintenance
    /// interval passed), then compacts its log through what both sides hold.
    func maintain(force: Bool) {
        let due: Bool = lock.withLock {
            guard failure == nil else { return false }
            return force || (sinceCheckpoint > 0 && ContinuousClock.now - lastMaintenance >= .milliseconds(node.configuration.checkpointMilliseconds))
        }
        guard due else { return }
        do throws(ShardError) {
            try shard.checkpoint()
            lock.withLock {
                sinceCheckpoint = 0
                lastMaintenance = ContinuousClock.now
            }
        } catch {
            node.logger.error("a shard checkpoint failed", metadata: ["group": "\(shard.group)", "error": "\(error)"])
        }
        let compactable = shard.compactableIndex
        if compactable > 0 { node.host.compact(group: shard.group, through: compactable) }
    }
}
