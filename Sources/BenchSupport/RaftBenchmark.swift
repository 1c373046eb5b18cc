// `vectron-bench raft`: committed Raft proposals per second through the real write path — three
// nodes in one process, each with its own unified record log on disk and a multi-Raft host,
// `groups` Raft groups (each replicated on every node, leaders spread over the nodes), and an
// in-memory transport — beside the raw single-writer fdatasync rate of the same disk measured
// in the same run. A proposal counts when its entry is applied on its leader (committed on a
// quorum, every copy fdatasynced before it was acknowledged).

import Basics
import FileIO
import Foundation
import Raft
import RaftStorage
import RecordLog

public struct RaftBenchmarkConfiguration: Sendable {
    public var nodes = 3
    public var groups = 3
    public var proposers = 64
    public var bytes = 1024
    public var seconds = 10.0
    public var directory = "./.vectron-bench-raft"
    /// Milliseconds per Raft tick.
    public var tickMilliseconds = 10
    /// Hosts write in the background (the default) or inline in their cycles.
    public var writesInBackground = true
    /// Each proposer is a thread blocked until its proposal is applied, instead of an
    /// asynchronous client whose completion proposes its next one (the default, which is how
    /// the server's event loops wait for a commit).
    public var proposerThreads = false

    public init() {}
}

public struct RaftBenchmarkResult: Sendable {
    public var system: String
    public var proposers: Int
    public var operations: Int
    public var seconds: Double
    public var latency: LatencySummary
    public var syncs: Int?
    /// Mean time of one fdatasync (and of the write before it) in the nodes' logs.
    public var meanSyncMicroseconds: Double?
    public var meanWriteMicroseconds: Double?

    public var perSecond: Double { Double(operations) / seconds }

    public var jsonLine: String {
        var line = "{\"system\": \"\(system)\", \"proposers\": \(proposers), \"per_s\": \(formatNumber(perSecond)), "
            + "\"p50_us\": \(formatNumber(latency.p50Microseconds)), \"p99_us\": \(formatNumber(latency.p99Microseconds)), "
            + "\"operations\": \(operations), \"seconds\": \(formatNumber(seconds, digits: 2))"
        if let syncs { line += ", \"fdatasyncs\": \(syncs)" }
        if let meanSyncMicroseconds { line += ", \"mean_fdatasync_us\": \(formatNumber(meanSyncMicroseconds))" }
        if let meanWriteMicroseconds { line += ", \"mean_write_us\": \(formatNumber(meanWriteMicroseconds))" }
        return line + "}"
    }
}

public enum RaftBenchmarkError: Error, CustomStringConvertible {
    case noLeader(UInt64)

    public var description: String {
        switch self {
        case let .noLeader(group): "group \(group) elected no leader"
        }
    }
}

public enum RaftBenchmark {
    public static func run(_ configuration: RaftBenchmarkConfiguration) throws -> [RaftBenchmarkResult] {
        let fileSystem = POSIXFileSystem()
        LogBenchmark.removeTreeRecursively(configuration.directory)
        try fileSystem.createDirectory(configuration.directory)
        defer { LogBenchmark.removeTreeRecursively(configuration.directory) }
        // The raw rate first, then the cluster, then the raw rate again: both see the same disk.
        let rawPath = joinPath(configuration.directory, "raw.bin")
        let half = configuration.seconds / 2
        let (rawCount1, rawSeconds1, rawLatencies1) = try LogBenchmark.runRaw(path: rawPath, batchBytes: configuration.bytes, seconds: half, fileSystem: fileSystem)
        let cluster = try runCluster(configuration, fileSystem: fileSystem)
        let (rawCount2, rawSeconds2, rawLatencies2) = try LogBenchmark.runRaw(path: rawPath, batchBytes: configuration.bytes, seconds: half, fileSystem: fileSystem)
        let raw = RaftBenchmarkResult(system: "raw_fdatasync", proposers: 1, operations: rawCount1 + rawCount2,
                                      seconds: rawSeconds1 + rawSeconds2, latency: LatencySummary(nanoseconds: rawLatencies1 + rawLatencies2))
        return [cluster, raw]
    }

    static func runCluster(_ configuration: RaftBenchmarkConfiguration, fileSystem: POSIXFileSystem) throws -> RaftBenchmarkResult {
        let nodeIDs = (1...UInt64(configuration.nodes)).map { $0 }
        var hosts: [RaftHost] = []
        var logs: [RecordLog] = []
        for id in nodeIDs {
            let (log, _) = try RecordLog.open(directory: joinPath(configuration.directory, "node-\(id)"), fileSystem: fileSystem)
            logs.append(log)
            let host = RaftHost(node: id, store: RaftLogStore(log: log))
            host.writesInBackground = configuration.writesInBackground
            hosts.append(host)
        }
        let everyone = hosts
        for host in hosts {
            host.transport = { to, messages in everyone[Int(to) - 1].receive(messages) }
            for group in 1...UInt64(configuration.groups) {
                var raft = RaftConfiguration(id: host.node, seed: group &* 100 &+ host.node)
                raft.maxInflight = 1024
                try host.addGroup(group, configuration: raft, membership: Membership(voters: Set(nodeIDs)))
            }
        }
        var finished: [Event] = []
        for host in hosts {
            let done = Event()
            finished.append(done)
            startDetachedThread {
                host.runLoop()
                done.set()
            }
        }
        let ticking = StopFlag()
        let tickerDone = Event()
        let tickNanoseconds = UInt64(configuration.tickMilliseconds) * 1_000_000
        startDetachedThread {
            while !ticking.isSet {
                sleepNanoseconds(tickNanoseconds)
                for host in everyone { host.tick() }
            }
            tickerDone.set()
        }
        defer {
            ticking.set()
            tickerDone.wait()
            for host in hosts { host.stop() }
            for done in finished { done.wait() }
            for log in logs { log.close() }
        }
        // Group g is led from node ((g − 1) mod n) + 1: campaign there and wait for a first
        // proposal to commit.
        let leaders = (1...UInt64(configuration.groups)).map { hosts[Int(($0 - 1) % UInt64(configuration.nodes))] }
        @Sendable func leaderHost(_ group: UInt64) -> RaftHost { leaders[Int(group - 1)] }
        for group in 1...UInt64(configuration.groups) {
            leaderHost(group).campaign(group: group)
            var committed = false
            for _ in 0..<200 where !committed {
                committed = proposeAndWait(leaderHost(group), group: group, data: [0]) != nil
                if !committed { sleepNanoseconds(20_000_000) }
            }
            guard committed else { throw RaftBenchmarkError.noLeader(group) }
        }
        let payload = [UInt8](repeating: 0xAB, count: configuration.bytes)
        let latencies = LockedArray(count: configuration.proposers)
        let counts = LockedArray(count: configuration.proposers)
        let syncsBefore = hosts.map(\.syncs).reduce(0, +)
        let statsBefore = logs.map(\.stats)
        let start = MonotonicClock.nanoseconds()
        let deadline = start + UInt64(configuration.seconds * 1e9)
        if configuration.proposerThreads {
            runConcurrently(threads: configuration.proposers) { proposer in
                let group = UInt64(proposer % configuration.groups) + 1
                let host = leaderHost(group)
                var mine: [UInt64] = []
                var failures: UInt64 = 0
                while MonotonicClock.nanoseconds() < deadline {
                    let before = MonotonicClock.nanoseconds()
                    if proposeAndWait(host, group: group, data: payload) != nil {
                        mine.append(MonotonicClock.nanoseconds() - before)
                    } else {
                        failures += 1
                    }
                }
                latencies.set(proposer, mine)
                counts.set(proposer, [failures])
            }
        } else {
            // Asynchronous proposers: each keeps one proposal in flight, and its completion (on
            // the leader's driver thread) records the latency and proposes the next.
            let finished = CountDown(configuration.proposers)
            let proposers = (0..<configuration.proposers).map { proposer in
                AsyncProposer(host: leaderHost(UInt64(proposer % configuration.groups) + 1),
                              group: UInt64(proposer % configuration.groups) + 1, payload: payload, deadline: deadline,
                              finished: finished)
            }
            for proposer in proposers { proposer.next() }
            finished.wait()
            for (index, proposer) in proposers.enumerated() {
                latencies.set(index, proposer.latencies)
                counts.set(index, [proposer.failures])
            }
        }
        let elapsed = Double(MonotonicClock.nanoseconds() - start) / 1e9
        let all = latencies.all()
        let syncs = hosts.map(\.syncs).reduce(0, +) - syncsBefore
        let statsAfter = logs.map(\.stats)
        let logSyncs = zip(statsAfter, statsBefore).map { Double($0.syncs - $1.syncs) }.reduce(0, +)
        let syncTime = zip(statsAfter, statsBefore).map { Double($0.syncNanoseconds - $1.syncNanoseconds) }.reduce(0, +)
        let writeTime = zip(statsAfter, statsBefore).map { Double($0.writeNanoseconds - $1.writeNanoseconds) }.reduce(0, +)
        var result = RaftBenchmarkResult(system: "vectron", proposers: configuration.proposers, operations: all.count, seconds: elapsed,
                                         latency: LatencySummary(nanoseconds: all), syncs: syncs)
        if logSyncs > 0 {
            result.meanSyncMicroseconds = syncTime / logSyncs / 1000
            result.meanWriteMicroseconds = writeTime / logSyncs / 1000
        }
        return result
    }

    /// Proposes and blocks until applied; nil if the proposal was refused or lost.
    static func proposeAndWait(_ host: RaftHost, group: UInt64, data: [UInt8]) -> UInt64? {
        let done = Event()
        let result = ResultBox()
        host.propose(group: group, data: data) { outcome in
            if case let .success(index) = outcome { result.value = index }
            done.set()
        }
        done.wait()
        return result.value
    }
}

/// A client with one proposal in flight at a time. Its completion runs on the leader's driver
/// thread, which is the only thread touching it after `next()` is first called.
final class AsyncProposer: @unchecked Sendable {
    let host: RaftHost
    let group: UInt64
    let payload: [UInt8]
    let deadline: UInt64
    let finished: CountDown
    var latencies: [UInt64] = []
    var failures: UInt64 = 0

    init(host: RaftHost, group: UInt64, payload: [UInt8], deadline: UInt64, finished: CountDown) {
        self.host = host
        self.group = group
        self.payload = payload
        self.deadline = deadline
        self.finished = finished
        latencies.reserveCapacity(1 << 16)
    }

    func next() {
        let before = MonotonicClock.nanoseconds()
        guard before < deadline else {
            finished.done()
            return
        }
        host.propose(group: group, data: payload) { [self] outcome in
            if case .success = outcome { latencies.append(MonotonicClock.nanoseconds() - before) } else { failures += 1 }
            next()
        }
    }
}

/// Blocks `wait()` until `done()` was called `count` times.
final class CountDown: @unchecked Sendable {
    private let lock = ConditionLock()
    private var remaining: Int
    init(_ count: Int) { remaining = count }
    func done() {
        lock.withLock {
            remaining -= 1
            if remaining == 0 { lock.broadcast() }
        }
    }
    func wait() {
        lock.lock()
        while remaining > 0 { lock.wait() }
        lock.unlock()
    }
}

final class ResultBox: @unchecked Sendable {
    var value: UInt64?
}

final class StopFlag: @unchecked Sendable {
    private let lock = ConditionLock()
    private var flag = false
    var isSet: Bool { lock.withLock { flag } }
    func set() { lock.withLock { flag = true } }
}

func sleepNanoseconds(_ nanoseconds: UInt64) {
    var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 { request = remaining }
}
