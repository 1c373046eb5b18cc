// `vectron-bench log`: durable append throughput and latency of the unified record log,
// side by side with the physical limit of the same disk — a raw loop of `pwrite` + `fdatasync`
// writing batches of the same size the log's group commit produced.
//
// Runs alternate (log, raw, log, raw, …) in `rounds` rounds so that both see the same disk
// weather; figures are totals over all rounds. Latency of the log is per `append` call; of the
// raw loop, per write + fdatasync of one batch.
//
// The log prepares its segments in the background (`segmentPreparation = .background`, what a
// server uses); VECTRON_LOG_PREPARATION=none|inline|background overrides it, so that one
// binary measures the variants side by side.
//
// The raw loop appends to a fresh file, as issue 2 defines it. With
// VECTRON_BENCH_RAW=overwrite it instead overwrites a 64 MiB file zero-filled and synced before
// the clock starts (wrapping around at its end): the limit for writes that commit no size
// change, which is what a log of prepared segments does — without paying for the zero-fill.

import Basics
import FileIO
import Foundation
import RecordLog

public struct LogBenchmarkConfiguration: Sendable {
    public var appenders = 1
    public var recordBytes = 1024
    public var seconds = 10.0
    public var rounds = 3
    public var directory = "./.vectron-bench"
    /// Appenders are OS threads calling the blocking `append`, or Swift tasks calling
    /// `appendAsync` (what the server's async code does).
    public var appenderKind: AppenderKind = .tasks

    public enum AppenderKind: String, Sendable { case threads, tasks }

    /// How the benchmarked log prepares segments (VECTRON_LOG_PREPARATION overrides it).
    public var segmentPreparation: RecordLogOptions.SegmentPreparation = {
        switch ProcessInfo.processInfo.environment["VECTRON_LOG_PREPARATION"] {
        case "none": return .none
        case "inline": return .inline
        default: return .background
        }
    }()

    var logOptions: RecordLogOptions {
        var options = RecordLogOptions()
        options.segmentPreparation = segmentPreparation
        return options
    }

    public init() {}
}

public struct LogBenchmarkResult: Sendable {
    public var system: String
    public var appenderKind: String
    public var appenders: Int
    public var recordBytes: Int
    public var records: Int
    public var elapsedSeconds: Double
    public var latency: LatencySummary
    public var batches: Int
    /// The log's `segmentPreparation` (empty for the raw loop).
    public var segmentPreparation = ""

    public var recordsPerSecond: Double { Double(records) / elapsedSeconds }
    public var meanBatchRecords: Double { batches == 0 ? 0 : Double(records) / Double(batches) }

    public var jsonLine: String {
        "{\"system\": \"\(system)\", \"appenders\": \(appenders), \"appender_kind\": \"\(appenderKind)\", \"record_bytes\": \(recordBytes), "
            + "\"records_per_s\": \(formatNumber(recordsPerSecond)), \"p50_us\": \(formatNumber(latency.p50Microseconds)), "
            + "\"p99_us\": \(formatNumber(latency.p99Microseconds)), \"batches\": \(batches), "
            + "\"mean_batch_records\": \(formatNumber(meanBatchRecords, digits: 2)), \"seconds\": \(formatNumber(elapsedSeconds, digits: 2))"
            + (segmentPreparation.isEmpty ? "" : ", \"segment_preparation\": \"\(segmentPreparation)\"") + "}"
    }
}

public enum LogBenchmark {
    public static func run(_ configuration: LogBenchmarkConfiguration) async throws -> [LogBenchmarkResult] {
        let fs = POSIXFileSystem()
        try fs.createDirectory(configuration.directory)
        let perRound = configuration.seconds / Double(max(1, configuration.rounds))
        var vectron = LogBenchmarkResult(system: "vectron", appenderKind: configuration.appenderKind.rawValue, appenders: configuration.appenders, recordBytes: configuration.recordBytes,
                                         records: 0, elapsedSeconds: 0, latency: LatencySummary(nanoseconds: []), batches: 0)
        var raw = LogBenchmarkResult(system: "raw", appenderKind: ProcessInfo.processInfo.environment["VECTRON_BENCH_RAW"] == "overwrite" ? "single-thread-overwrite" : "single-thread", appenders: configuration.appenders, recordBytes: configuration.recordBytes,
                                     records: 0, elapsedSeconds: 0, latency: LatencySummary(nanoseconds: []), batches: 0)
        vectron.segmentPreparation = "\(configuration.segmentPreparation)"
        var vectronLatencies: [UInt64] = []
        var rawLatencies: [UInt64] = []
        for round in 0..<max(1, configuration.rounds) {
            let logDirectory = joinPath(configuration.directory, "log-\(round)")
            let (records, batches, elapsed, latencies) = configuration.appenderKind == .threads
                ? try runLog(configuration, directory: logDirectory, seconds: perRound, fileSystem: fs)
                : try await runLogTasks(configuration, directory: logDirectory, seconds: perRound, fileSystem: fs)
            vectron.records += records
            vectron.batches += batches
            vectron.elapsedSeconds += elapsed
            vectronLatencies += latencies
            try removeTree(logDirectory)
            // Commit the removal before the raw loop's clock starts: on a file system mounted
            // with `discard`, freeing a gigabyte of blocks otherwise lands in the raw loop's
            // first journal commits (and the raw file's removal in the log's next round).
            try fs.syncDirectory(configuration.directory)
            // The raw loop writes batches of the size the log just produced.
            let batchRecords = max(1, Int((Double(records) / Double(max(1, batches))).rounded()))
            let rawPath = joinPath(configuration.directory, "raw-\(round).bin")
            let (rawBatches, rawElapsed, rawBatchLatencies) = try runRaw(
                path: rawPath, batchBytes: batchRecords * (configuration.recordBytes + LogFormat.recordHeaderBytes),
                seconds: perRound, fileSystem: fs)
            if ProcessInfo.processInfo.environment["VECTRON_BENCH_DEBUG"] != nil {
                FileHandle.standardError.write(Data("round \(round): log \(Double(records) / elapsed) rec/s, raw \(Double(rawBatches * batchRecords) / rawElapsed) rec/s (batch \(batchRecords))\n".utf8))
            }
            raw.records += rawBatches * batchRecords
            raw.batches += rawBatches
            raw.elapsedSeconds += rawElapsed
            rawLatencies += rawBatchLatencies
            try? fs.remove(rawPath)
            try fs.syncDirectory(configuration.directory)
        }
        vectron.latency = LatencySummary(nanoseconds: vectronLatencies)
        raw.latency = LatencySummary(nanoseconds: rawLatencies)
        try? fs.remove(configuration.directory)
        return [vectron, raw]
    }

    static func runLog(_ configuration: LogBenchmarkConfiguration, directory: String, seconds: Double,
                       fileSystem: POSIXFileSystem) throws -> (Int, Int, Double, [UInt64]) {
        let (log, _) = try RecordLog.open(directory: directory, fileSystem: fileSystem, options: configuration.logOptions)
        let startBatches = Int(log.stats.batches)
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
        let perThread = LockedArray(count: configuration.appenders)
        let group = DispatchGroup()
        let start = MonotonicClock.nanoseconds()
        for thread in 0..<configuration.appenders {
            group.enter()
            let worker = Thread {
                var random = SeededRandom(seed: UInt64(thread))
                let payload = random.bytes(configuration.recordBytes)
                var latencies: [UInt64] = []
                latencies.reserveCapacity(1 << 16)
                while true {
                    let before = MonotonicClock.nanoseconds()
                    if before >= deadline { break }
                    do {
                        try log.append(LogRecord(stream: UInt64(thread), kind: 1, payload: payload))
                    } catch {
                        fatalError("benchmark append failed: \(error)")
                    }
                    latencies.append(MonotonicClock.nanoseconds() - before)
                }
                perThread.set(thread, latencies)
                group.leave()
            }
            worker.stackSize = 1 << 20
            worker.start()
        }
        group.wait()
        let all = perThread.all()
        return finish(log, startBatches: startBatches, start: start, latencies: all)
    }

    static func runLogTasks(_ configuration: LogBenchmarkConfiguration, directory: String, seconds: Double,
                            fileSystem: POSIXFileSystem) async throws -> (Int, Int, Double, [UInt64]) {
        let (log, _) = try RecordLog.open(directory: directory, fileSystem: fileSystem, options: configuration.logOptions)
        let startBatches = Int(log.stats.batches)
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1e9)
        let start = MonotonicClock.nanoseconds()
        let all = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for task in 0..<configuration.appenders {
                group.addTask {
                    var random = SeededRandom(seed: UInt64(task))
                    let record = LogRecord(stream: UInt64(task), kind: 1, payload: random.bytes(configuration.recordBytes))
                    var latencies: [UInt64] = []
                    latencies.reserveCapacity(1 << 14)
                    while true {
                        let before = MonotonicClock.nanoseconds()
                        if before >= deadline { break }
                        try await log.appendAsync([record])
                        latencies.append(MonotonicClock.nanoseconds() - before)
                    }
                    return latencies
                }
            }
            var all: [UInt64] = []
            for try await latencies in group { all += latencies }
            return all
        }
        return finish(log, startBatches: startBatches, start: start, latencies: all)
    }

    /// Closes a benchmarked log and returns (records, batches, seconds, latencies); with
    /// VECTRON_BENCH_DEBUG set, prints where the batches' time went.
    static func finish(_ log: RecordLog, startBatches: Int, start: UInt64, latencies: [UInt64]) -> (Int, Int, Double, [UInt64]) {
        let elapsed = Double(MonotonicClock.nanoseconds() - start) / 1e9
        let stats = log.stats
        let batches = Int(stats.batches) - startBatches
        if ProcessInfo.processInfo.environment["VECTRON_BENCH_DEBUG"] != nil {
            let syncs = Double(max(1, stats.syncs))
            FileHandle.standardError.write(Data("log: \(batches) batches in \(elapsed)s; pwrite \(Double(stats.writeNanoseconds) / syncs / 1000) us/sync, fdatasync \(Double(stats.syncNanoseconds) / syncs / 1000) us/sync; segments \(stats.segmentsCreated), prepared \(stats.segmentsPrepared)\n".utf8))
        }
        log.close()
        return (latencies.count, batches, elapsed, latencies)
    }

    static func runRaw(path: String, batchBytes: Int, seconds: Double, fileSystem: POSIXFileSystem) throws -> (Int, Double, [UInt64]) {
        let handle = try fileSystem.open(path, options: [.read, .write, .create, .truncate])
        var random = SeededRandom(seed: 99)
        let buffer = random.bytes(batchBytes)
        var offset: UInt64 = 0
        let overwrite = ProcessInfo.processInfo.environment["VECTRON_BENCH_RAW"] == "overwrite"
        let overwriteBytes = max(64 << 20, 2 * batchBytes)
        if overwrite {
            let zeros = [UInt8](repeating: 0, count: 1 << 20)
            var filled = 0
            while filled < overwriteBytes {
                try handle.write(at: UInt64(filled), zeros)
                filled += zeros.count
            }
            try handle.dataSync()
        }
        var latencies: [UInt64] = []
        let start = MonotonicClock.nanoseconds()
        let deadline = start + UInt64(seconds * 1e9)
        while true {
            let before = MonotonicClock.nanoseconds()
            if before >= deadline { break }
            try handle.write(at: offset, buffer)
            try handle.dataSync()
            offset += UInt64(batchBytes)
            if overwrite && offset + UInt64(batchBytes) > UInt64(overwriteBytes) { offset = 0 }
            latencies.append(MonotonicClock.nanoseconds() - before)
        }
        let elapsed = Double(MonotonicClock.nanoseconds() - start) / 1e9
        handle.close()
        return (latencies.count, elapsed, latencies)
    }

    /// Removes `directory` and everything under it (benchmark scratch space only).
    static func removeTreeRecursively(_ directory: String) {
        let fs = POSIXFileSystem()
        for name in (try? fs.list(directory)) ?? [] {
            let path = joinPath(directory, name)
            if fs.isDirectory(path) { removeTreeRecursively(path) } else { try? fs.remove(path) }
        }
        try? fs.remove(directory)
    }

    static func removeTree(_ directory: String) throws {
        let fs = POSIXFileSystem()
        for name in (try? fs.list(directory)) ?? [] { try? fs.remove(joinPath(directory, name)) }
        try? fs.remove(directory)
    }
}

/// Per-thread result slots filled once each, read after all threads joined.
final class LockedArray: @unchecked Sendable {
    private let lock = ConditionLock()
    private var slots: [[UInt64]]
    init(count: Int) { slots = Array(repeating: [], count: count) }
    func set(_ index: Int, _ values: [UInt64]) { lock.withLock { slots[index] = values } }
    func all() -> [UInt64] { lock.withLock { slots.flatMap { $0 } } }
}
