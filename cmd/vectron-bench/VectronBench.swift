// vectron-bench: Vectron's benchmarks, each run side by side with its reference in one process
// run, printing one JSON object per line. Thin: flags in, BenchSupport does the work.

import ArgumentParser
import BenchSupport
import VectorIndex

@main
struct VectronBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectron-bench",
        abstract: "Benchmarks, side by side with a reference measured in the same run.",
        subcommands: [Log.self, KV.self, ANN.self, RaftCommand.self, RPCCommand.self, JSONCommand.self])
}

struct Log: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Durable appends to the unified record log vs a raw pwrite + fdatasync loop writing the same batches.")
    @Option(help: "Concurrent appender threads.") var appenders = 1
    @Option(name: .customLong("record-bytes"), help: "Payload bytes per record.") var recordBytes = 1024
    @Option(help: "Total seconds per system (split over the rounds).") var seconds = 10.0
    @Option(help: "Alternating rounds (log, raw, log, raw, …).") var rounds = 3
    @Option(help: "Scratch directory on the disk to measure (removed afterwards).") var dir = "./.vectron-bench"
    @Option(help: "Appenders are 'tasks' (async appendAsync, as the server uses the log) or 'threads' (blocking append).")
    var kind = "tasks"

    func run() async throws {
        guard let appenderKind = LogBenchmarkConfiguration.AppenderKind(rawValue: kind) else {
            throw ValidationError("--kind must be tasks or threads")
        }
        var configuration = LogBenchmarkConfiguration()
        configuration.appenders = appenders
        configuration.recordBytes = recordBytes
        configuration.seconds = seconds
        configuration.rounds = rounds
        configuration.directory = dir
        configuration.appenderKind = appenderKind
        for result in try await LogBenchmark.run(configuration) { print(result.jsonLine) }
    }
}

struct KV: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "The storage engine under db_bench's workloads, with db_bench's flags and output lines.")
    @Option(name: .customLong("benchmarks"), help: "Comma-separated: fillseq, fillrandom, readrandom, readseq.")
    var benchmarks = "fillseq,fillrandom,readrandom,readseq"
    @Option(name: .customLong("num"), help: "Number of keys.") var num = 1_000_000
    @Option(name: .customLong("reads"), help: "Reads (default: num).") var reads: Int?
    @Option(name: .customLong("key_size")) var keySize = 16
    @Option(name: .customLong("value_size")) var valueSize = 100
    @Option(name: .customLong("sync"), help: "Sync every write (0/1, true/false).") var sync = "false"
    @Option(name: .customLong("writes_per_sync"), help: "Sync every n-th write (0: never).") var writesPerSync = 0
    @Option(name: .customLong("batch_size"), help: "Writes per batch.") var batchSize = 1
    @Option(name: .customLong("cache_size"), help: "Block cache bytes.") var cacheSize = 32 << 20
    @Option(name: .customLong("write_buffer_size"), help: "Memtable bytes.") var writeBufferSize = 64 << 20
    @Option(name: .customLong("db"), help: "Database directory (replaced by fill benchmarks).") var db = "./.vectron-bench-kv"
    @Option(name: .customLong("seed")) var seed: UInt64 = 301

    func run() throws {
        var configuration = KVBenchmarkConfiguration()
        configuration.benchmarks = benchmarks.split(separator: ",").map(String.init)
        configuration.num = num
        configuration.reads = reads
        configuration.keySize = keySize
        configuration.valueSize = valueSize
        configuration.sync = ["1", "true"].contains(sync.lowercased())
        configuration.writesPerSync = writesPerSync
        configuration.batchSize = max(1, batchSize)
        configuration.cacheSize = cacheSize
        configuration.memtableBytes = writeBufferSize
        configuration.directory = db
        configuration.seed = seed
        try KVBenchmark.run(configuration) { print($0) }
    }
}

struct ANN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ann",
        abstract: "HNSW build and search on .fvecs/.ivecs files: recall@k and QPS per ef (one JSON object per line).")
    @Option(help: "Base vectors (.fvecs).") var base: String
    @Option(help: "Query vectors (.fvecs).") var query: String
    @Option(help: "Ground truth (.ivecs): exact neighbour ids per query, best first.") var truth: String
    @Option(help: "cosine, l2 or dot.") var metric = "cosine"
    @Option var m = 16
    @Option(name: .customLong("ef-construction")) var efConstruction = 200
    @Option(help: "Comma-separated ef values.") var ef = "10,16,32,64,100,128,200,300,400"
    @Option var k = 10
    @Option(help: "Build threads.") var threads = 1
    @Option(help: "Use only the first n queries.") var queries: Int?
    @Option(help: "Save a checkpoint here, load it back, and report both times.") var save: String?
    @Option(help: "Load this checkpoint instead of building (build_seconds is then the load time).") var load: String?

    func run() throws {
        var configuration = ANNBenchmarkConfiguration()
        configuration.base = base
        configuration.query = query
        configuration.truth = truth
        guard let parsed = Metric(name: metric) else { throw ValidationError("unknown metric \(metric)") }
        configuration.metric = parsed
        configuration.m = m
        configuration.efConstruction = efConstruction
        configuration.efs = ef.split(separator: ",").compactMap { Int($0) }
        configuration.k = k
        configuration.threads = threads
        configuration.queryLimit = queries
        configuration.save = save
        configuration.load = load
        try ANNBenchmark.run(configuration) { print($0) }
    }
}

struct RaftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raft",
        abstract: "Committed Raft proposals/s: three nodes in one process with real record logs and an in-memory transport, beside the raw fdatasync rate.")
    @Option(help: "Nodes (each group is replicated on all of them).") var nodes = 3
    @Option(help: "Raft groups (leaders spread over the nodes).") var groups = 3
    @Option(help: "Concurrent proposers, each with one proposal in flight until it is applied.") var proposers = 64
    @Option(help: "Payload bytes per proposal.") var bytes = 1024
    @Option(help: "Seconds for the cluster (the raw fdatasync loop runs as long, half before and half after).") var seconds = 10.0
    @Option(help: "Scratch directory on the disk to measure (removed afterwards).") var dir = "./.vectron-bench-raft"
    @Flag(help: "Write inline in each host cycle instead of on a background writer.") var inlineWrites = false
    @Flag(help: "One blocked thread per proposer instead of asynchronous proposers.") var proposerThreads = false

    func run() throws {
        var configuration = RaftBenchmarkConfiguration()
        configuration.nodes = nodes
        configuration.groups = groups
        configuration.proposers = proposers
        configuration.bytes = bytes
        configuration.seconds = seconds
        configuration.directory = dir
        configuration.writesInBackground = !inlineWrites
        configuration.proposerThreads = proposerThreads
        for result in try RaftBenchmark.run(configuration) { print(result.jsonLine) }
    }
}

struct RPCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rpc",
        abstract: "Echo round trips over Vectron's RPC on loopback and, with --grpc-peer, over grpc-swift-2 in the same run.")
    @Option(help: "Seconds measured per case and system (after the warm-up).") var seconds = 5.0
    @Option(help: "Warm-up seconds per case and system.") var warmup = 1.0
    @Option(help: "Comma-separated cases: 64B-inflight1, 64B-inflight64, 1MiB.") var cases = "64B-inflight1,64B-inflight64,1MiB"
    @Option(help: "Vectron's echo handler: inline (on the event loop) or async (a task per request).") var handler = "inline"
    @Option(name: .customLong("grpc-peer"), help: "The grpc-echo-bench binary built in Benchmarks/ (run once per case after Vectron's).")
    var grpcPeer: String?
    @Option(name: .customLong("grpc-flush-coalescing"),
            help: "gRPC's flush coalescing, comma-separated: on (its default), off; the peer runs once per value.")
    var grpcFlushCoalescing = "on"

    func run() async throws {
        var configuration = RPCBenchmarkConfiguration()
        configuration.seconds = seconds
        configuration.warmupSeconds = warmup
        configuration.cases = try cases.split(separator: ",").map {
            guard let parsed = RPCBenchmarkConfiguration.Case(rawValue: String($0)) else { throw ValidationError("unknown case \($0)") }
            return parsed
        }
        guard let parsedHandler = RPCBenchmarkConfiguration.Handler(rawValue: handler) else {
            throw ValidationError("--handler must be inline or async")
        }
        configuration.handler = parsedHandler
        configuration.grpcPeer = grpcPeer
        configuration.grpcFlushCoalescing = grpcFlushCoalescing.split(separator: ",").map(String.init)
        guard !configuration.grpcFlushCoalescing.isEmpty,
              configuration.grpcFlushCoalescing.allSatisfy({ $0 == "on" || $0 == "off" }) else {
            throw ValidationError("--grpc-flush-coalescing takes on, off or on,off")
        }
        try await RPCBenchmark.run(configuration) { print($0) }
    }
}

struct JSONCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "json",
        abstract: "Decoding a Qdrant-style upsert body with the JSON module vs Foundation's JSONDecoder, and writing a response with JSONWriter vs JSONEncoder.")
    @Option(help: "Points in the body.") var points = 256
    @Option(help: "Floats per vector.") var dimension = 384
    @Option(help: "Timed rounds per decoder (alternating).") var rounds = 30
    @Option var seed: UInt64 = 42

    func run() throws {
        var configuration = JSONBenchmarkConfiguration()
        configuration.points = points
        configuration.dimension = dimension
        configuration.rounds = rounds
        configuration.seed = seed
        try JSONBenchmark.run(configuration) { print($0) }
    }
}
