// grpc-echo-bench: the gRPC side of `vectron-bench rpc` (issue 6). grpc-swift-2 with its
// HTTP/2 NIOPosix transport on loopback (plaintext, default configuration), an echo service over
// raw bytes (a custom serializer, no protobuf), server and client in this one process — as
// `vectron-bench rpc` runs Vectron's server and client in its process. `vectron-bench rpc
// --grpc-peer PATH` runs this binary once per case and passes its JSON lines through.
//
//   grpc-echo-bench --case 64B-inflight1|64B-inflight64|1MiB --seconds 5 --warmup 1 [--flush-coalescing on|off]
//
// `--flush-coalescing off` turns off the transports' flush coalescing (on by default since
// grpc-swift-nio-transport 2.8: a flush waits up to 100 µs for more writes), on both server and
// client; everything else stays at gRPC's defaults.
//
// Each case: warm up for --warmup seconds, then measure for --seconds: every completed call's
// latency (start of `client.unary` to its response) is recorded; requests/s = calls completed in
// the measured window ÷ window. "inflight N" = N tasks, each with one unary call in flight at a
// time, on one client (one HTTP/2 connection).

import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import Synchronization

struct RawSerializer: MessageSerializer {
    typealias Message = [UInt8]
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

struct RawDeserializer: MessageDeserializer {
    typealias Message = [UInt8]
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

let echoMethod = MethodDescriptor(fullyQualifiedService: "vectron.bench.Echo", method: "Echo")

struct EchoService: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(forMethod: echoMethod, deserializer: RawDeserializer(), serializer: RawSerializer()) {
            request, _ in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: single.message))
        }
    }
}

struct Options {
    var caseName = "64B-inflight1"
    var seconds = 5.0
    var warmup = 1.0
    var flushCoalescing = true

    init(arguments: [String]) throws {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            guard let value = iterator.next() else { throw UsageError(message: "\(argument) needs a value") }
            switch argument {
            case "--case": caseName = value
            case "--seconds": guard let v = Double(value), v > 0 else { throw UsageError(message: "bad --seconds") }; seconds = v
            case "--warmup": guard let v = Double(value), v >= 0 else { throw UsageError(message: "bad --warmup") }; warmup = v
            case "--flush-coalescing":
                guard value == "on" || value == "off" else { throw UsageError(message: "--flush-coalescing takes on or off") }
                flushCoalescing = value == "on"
            default: throw UsageError(message: "unknown option \(argument)")
            }
        }
    }
}

struct UsageError: Error, CustomStringConvertible {
    var message: String
    var description: String { "usage: grpc-echo-bench --case 64B-inflight1|64B-inflight64|1MiB [--seconds S] [--warmup S]: \(message)" }
}

/// Latencies recorded by the workers once the measured window has begun.
final class Recorder: Sendable {
    private let state = Mutex<(samples: [UInt64], failures: Int)>(([], 0))
    func record(_ samples: [UInt64], failures: Int) {
        state.withLock { $0.samples.append(contentsOf: samples); $0.failures += failures }
    }
    var result: (samples: [UInt64], failures: Int) { state.withLock { $0 } }
}

func percentile(_ sorted: [UInt64], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let index = min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))
    return Double(sorted[index]) / 1000
}

func format(_ value: Double) -> String {
    let rounded = (value * 10).rounded() / 10
    return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
}

@main
struct GRPCEchoBench {
    static func main() async throws {
        let options: Options
        do { options = try Options(arguments: CommandLine.arguments) } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8)); exit(2)
        }
        let (payloadBytes, inflight): (Int, Int)
        switch options.caseName {
        case "64B-inflight1": (payloadBytes, inflight) = (64, 1)
        case "64B-inflight64": (payloadBytes, inflight) = (64, 64)
        case "1MiB": (payloadBytes, inflight) = (1 << 20, 1)
        default: FileHandle.standardError.write(Data("unknown case \(options.caseName)\n".utf8)); exit(2)
        }
        var generator = SystemRandomNumberGenerator()
        let payload = (0..<payloadBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }

        let coalescing = options.flushCoalescing
        let serverTransport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext,
            config: .defaults { if !coalescing { $0.connection.flushCoalescing = nil } })
        let line = try await withGRPCServer(transport: serverTransport, services: [EchoService()]) { server in
            guard let port = try await serverTransport.listeningAddress.ipv4?.port else {
                throw UsageError(message: "server has no IPv4 address")
            }
            let clientTransport = try HTTP2ClientTransport.Posix(
                target: .ipv4(host: "127.0.0.1", port: port), transportSecurity: .plaintext,
                config: .defaults { if !coalescing { $0.connection.flushCoalescing = nil } })
            return try await withGRPCClient(transport: clientTransport) { client in
                let clock = ContinuousClock()
                let start = clock.now
                let measureFrom = start + .seconds(options.warmup)
                let end = measureFrom + .seconds(options.seconds)
                let recorder = Recorder()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<inflight {
                        group.addTask {
                            var samples: [UInt64] = []
                            samples.reserveCapacity(1 << 16)
                            var failures = 0
                            while true {
                                let began = clock.now
                                if began >= end { break }
                                let ok: Bool
                                do {
                                    let echoed = try await client.unary(
                                        request: ClientRequest(message: payload), descriptor: echoMethod,
                                        serializer: RawSerializer(), deserializer: RawDeserializer(),
                                        options: .defaults
                                    ) { response in try response.message }
                                    ok = echoed.count == payload.count
                                } catch {
                                    ok = false
                                }
                                let finished = clock.now
                                if began >= measureFrom && finished <= end {
                                    if ok {
                                        let elapsed = finished - began
                                        samples.append(UInt64(elapsed.components.seconds) * 1_000_000_000
                                            + UInt64(elapsed.components.attoseconds / 1_000_000_000))
                                    } else {
                                        failures += 1
                                    }
                                }
                            }
                            recorder.record(samples, failures: failures)
                        }
                    }
                    try await group.waitForAll()
                }
                let (samples, failures) = recorder.result
                let sorted = samples.sorted()
                let rate = Double(sorted.count) / options.seconds
                var json = "{\"system\": \"grpc\", \"case\": \"\(options.caseName)\", \"requests_per_s\": \(format(rate)), "
                if payloadBytes >= 1 << 20 {
                    json += "\"mb_per_s\": \(format(rate * Double(payloadBytes) / 1_000_000)), "
                }
                json += "\"p50_us\": \(format(percentile(sorted, 0.5))), \"p99_us\": \(format(percentile(sorted, 0.99))), "
                json += "\"inflight\": \(inflight), \"payload_bytes\": \(payloadBytes), \"seconds\": \(format(options.seconds)), \"errors\": \(failures), "
                json += "\"flush_coalescing\": \(coalescing)}"
                return json
            }
        }
        print(line)
    }
}
