// vectron-bench: Vectron's benchmarks, each run side by side with its reference in one process
// run, printing one JSON object per line. Thin: flags in, BenchSupport does the work.

import ArgumentParser
import BenchSupport

@main
struct VectronBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectron-bench",
        abstract: "Benchmarks, side by side with a reference measured in the same run.",
        subcommands: [Log.self])
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
