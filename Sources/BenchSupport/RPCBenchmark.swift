// `vectron-bench rpc`: Vectron's RPC against grpc-swift-2, echo round trips on loopback (issue 6).
//
// Both systems run their server and client in one process on NIO's default event-loop group
// (one thread per core): Vectron's in this process, gRPC's in the `grpc-echo-bench` peer binary
// built from the Benchmarks/ package (so that the root package never builds gRPC), which
// `--grpc-peer PATH` runs once per case right after Vectron's run of that case, passing its JSON
// lines through. Both sides echo raw bytes (no protobuf; Vectron's `RawPayload`), with the same
// random payload sizes, one client connection each, and the same measurement:
//
//   * `inflight` tasks each keep one call in flight at a time (1 or 64 on one connection —
//     Vectron pipelines them as frames on its one connection, gRPC as HTTP/2 streams);
//   * warm up for `warmupSeconds`, then for `seconds` record every call that starts and ends in
//     the window: requests/s = those calls ÷ `seconds`, latency = start of the call to its
//     decoded response (p50, p99).

import Foundation
import RPC
import RPCTransport
import Synchronization

public struct RPCBenchmarkConfiguration: Sendable {
    public enum Case: String, Sendable, CaseIterable {
        case small1 = "64B-inflight1"
        case small64 = "64B-inflight64"
        case large = "1MiB"

        public var payloadBytes: Int { self == .large ? 1 << 20 : 64 }
        public var inflight: Int { self == .small64 ? 64 : 1 }
    }

    /// How Vectron's server runs the echo handler: `inline` on the event loop (the registry's
    /// shape for cheap work), or `async` as a task per request (gRPC's only shape).
    public enum Handler: String, Sendable {
        case inline, async
    }

    public var cases: [Case] = Case.allCases
    public var seconds = 5.0
    public var warmupSeconds = 1.0
    public var handler = Handler.inline
    /// The built `grpc-echo-bench` binary; nil runs Vectron's side alone.
    public var grpcPeer: String?
    /// The gRPC transports' flush coalescing, each value a run of the peer per case: `on` (its
    /// default) and/or `off`.
    public var grpcFlushCoalescing = ["on"]

    public init() {}
}

public struct RPCBenchmarkResult: Sendable {
    public var system: String
    public var caseName: String
    public var payloadBytes: Int
    public var inflight: Int
    public var calls: Int
    public var errors: Int
    public var seconds: Double
    public var latency: LatencySummary
    public var handler: String

    public var perSecond: Double { Double(calls) / seconds }

    public var jsonLine: String {
        var line = "{\"system\": \"\(system)\", \"case\": \"\(caseName)\", \"requests_per_s\": \(formatNumber(perSecond)), "
        if payloadBytes >= 1 << 20 {
            line += "\"mb_per_s\": \(formatNumber(perSecond * Double(payloadBytes) / 1_000_000)), "
        }
        line += "\"p50_us\": \(formatNumber(latency.p50Microseconds)), \"p99_us\": \(formatNumber(latency.p99Microseconds)), "
            + "\"inflight\": \(inflight), \"payload_bytes\": \(payloadBytes), \"seconds\": \(formatNumber(seconds)), "
            + "\"errors\": \(errors), \"handler\": \"\(handler)\"}"
        return line
    }
}

public enum RPCBenchmarkError: Error, CustomStringConvertible {
    case peerFailed(String, Int32)
    case noLines(String)

    public var description: String {
        switch self {
        case .peerFailed(let path, let status): return "\(path) exited with status \(status) (its standard error is above)"
        case .noLines(let path): return "\(path) printed no JSON line"
        }
    }
}

public enum RPCBenchmark {
    static let echo = RPCMethod<RawPayload, RawPayload>(id: 1, name: "echo")
    static let clusterID: UInt64 = 0xBE4C

    /// Runs every case, Vectron first and then the gRPC peer, and emits each JSON line as it is made.
    public static func run(_ configuration: RPCBenchmarkConfiguration, emit: (String) -> Void) async throws {
        for benchCase in configuration.cases {
            let result = try await runVectron(benchCase, configuration)
            emit(result.jsonLine)
            if let peer = configuration.grpcPeer {
                for coalescing in configuration.grpcFlushCoalescing {
                    for line in try runPeer(peer, benchCase, coalescing: coalescing, configuration) { emit(line) }
                }
            }
        }
    }

    static func runVectron(_ benchCase: RPCBenchmarkConfiguration.Case, _ configuration: RPCBenchmarkConfiguration) async throws -> RPCBenchmarkResult {
        var registry = MethodRegistry()
        switch configuration.handler {
        case .inline:
            registry.registerInline(echo) { (request, _) throws(RPCError) -> RawPayload in request }
        case .async:
            registry.register(echo) { (request, _) async throws(RPCError) -> RawPayload in request }
        }
        let server = RPCServer(configuration: RPCServerConfiguration(clusterID: clusterID), registry: registry)
        let port = try await server.start()
        let client = RPCClient(
            host: "127.0.0.1", port: port,
            configuration: RPCClientConfiguration(handshake: Handshake(clusterID: clusterID, role: .client)))
        var generator = SystemRandomNumberGenerator()
        let payload = RawPayload((0..<benchCase.payloadBytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
        // The first call waits for the connection and its handshake.
        _ = try await client.call(echo, payload, options: CallOptions(waitForReady: true))

        let clock = ContinuousClock()
        let measureFrom = clock.now + .seconds(configuration.warmupSeconds)
        let end = measureFrom + .seconds(configuration.seconds)
        let collected = Collected()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<benchCase.inflight {
                group.addTask {
                    var samples: [UInt64] = []
                    samples.reserveCapacity(1 << 16)
                    var errors = 0
                    while true {
                        let began = clock.now
                        if began >= end { break }
                        let ok: Bool
                        do throws(RPCError) {
                            let echoed = try await client.call(echo, payload)
                            ok = echoed.bytes.count == payload.bytes.count
                        } catch {
                            ok = false
                        }
                        let finished = clock.now
                        if began >= measureFrom && finished <= end {
                            if ok { samples.append(nanoseconds(finished - began)) } else { errors += 1 }
                        }
                    }
                    collected.add(samples, errors: errors)
                }
            }
        }
        await client.shutdown()
        await server.shutdown(gracePeriod: .seconds(1))
        let (samples, errors) = collected.result
        return RPCBenchmarkResult(
            system: "vectron", caseName: benchCase.rawValue, payloadBytes: benchCase.payloadBytes,
            inflight: benchCase.inflight, calls: samples.count, errors: errors, seconds: configuration.seconds,
            latency: LatencySummary(nanoseconds: samples), handler: configuration.handler.rawValue)
    }

    /// What the caller tasks measured.
    final class Collected: Sendable {
        let state = Mutex<(samples: [UInt64], errors: Int)>(([], 0))

        func add(_ samples: [UInt64], errors: Int) {
            state.withLock {
                $0.samples.append(contentsOf: samples)
                $0.errors += errors
            }
        }

        var result: (samples: [UInt64], errors: Int) { state.withLock { $0 } }
    }

    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        return UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    /// Runs the gRPC peer for one case; returns its JSON lines.
    static func runPeer(
        _ path: String, _ benchCase: RPCBenchmarkConfiguration.Case, coalescing: String, _ configuration: RPCBenchmarkConfiguration
    ) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["--case", benchCase.rawValue, "--seconds", String(configuration.seconds),
                             "--warmup", String(configuration.warmupSeconds), "--flush-coalescing", coalescing]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RPCBenchmarkError.peerFailed(path, process.terminationStatus)
        }
        let lines = String(decoding: outData, as: UTF8.self).split(separator: "\n").map(String.init).filter { $0.hasPrefix("{") }
        guard !lines.isEmpty else { throw RPCBenchmarkError.noLines(path) }
        return lines
    }
}
