// vectron: the server. `vectron serve` runs every role (placement, worker, gateway) in one
// process on defaults that need no flag; flags, environment variables and a JSON config file
// change them (a flag beats the environment, which beats the file).

import ArgumentParser
import Foundation
import JSON
import Logging
import Server

@main
struct Vectron: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectron",
        abstract: "Vectron, a vector database.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Vectron node (single node: every role in this process).",
        discussion: """
        Defaults: data in ./vectron-data, REST API on 127.0.0.1:6333, binary protocol on 127.0.0.1:6334.
        Environment: VECTRON_DATA_DIR, VECTRON_HTTP_HOST, VECTRON_HTTP_PORT, VECTRON_RPC_HOST,
        VECTRON_RPC_PORT, VECTRON_ADMIN_KEY, VECTRON_CONFIG (a JSON file with any of "data_dir",
        "http_host", "http_port", "rpc_host", "rpc_port", "rate_limit_per_second", "rate_limit_burst",
        "password_attempts_per_second", "password_attempts_burst", "token_lifetime_seconds",
        "checkpoint_bytes"), VECTRON_LOG_LEVEL.
        """)

    @Option(name: .long, help: "The data directory (default ./vectron-data).") var dataDir: String?
    @Option(name: .long, help: "The REST API's address (default 127.0.0.1).") var httpHost: String?
    @Option(name: .long, help: "The REST API's port (default 6333; 0 picks a free one).") var httpPort: Int?
    @Option(name: .long, help: "The binary protocol's address (default: the REST API's).") var rpcHost: String?
    @Option(name: .long, help: "The binary protocol's port (default 6334; 0 picks a free one).") var rpcPort: Int?
    @Option(name: .long, help: "A JSON config file.") var config: String?
    @Option(name: .long, help: "argon2id cost: interactive (default) or minimum (tests only).") var passwordCost: String?

    func run() throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = ProcessInfo.processInfo.environment["VECTRON_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
            return handler
        }
        let logger = Logger(label: "vectron")
        let configuration: ServerConfiguration
        do {
            configuration = try resolveConfiguration()
        } catch {
            FileHandle.standardError.write(Data("vectron: bad configuration: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let node: Node
        do {
            node = try Node(configuration: configuration, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("vectron: \(error)\n".utf8))
            throw ExitCode(1)
        }
        // The port first, so a busy one fails before anything is recovered or written; until
        // recovery ends the API answers 503 and /readyz says so.
        let gateway = Gateway(node: node, logger: logger)
        let port: Int, rpcPort: Int
        do {
            port = try gateway.start()
            rpcPort = try gateway.startBinary()
        } catch {
            FileHandle.standardError.write(Data("vectron: \(error)\n".utf8))
            gateway.stop()
            node.stop()
            throw ExitCode(1)
        }
        let rpcHost = configuration.rpcHost ?? configuration.httpHost
        print("vectron binary protocol on vectron://\(rpcHost):\(rpcPort)")
        print("vectron listening on http://\(configuration.httpHost):\(port) (data: \(configuration.dataDirectory))")
        fflush(nil)  /* stdout: a test reads the port from it */
        // SIGINT / SIGTERM: during recovery, exit at once (recovery is crash-safe: the next start
        // resumes it); once serving, stop cleanly (below).
        let stopped = DispatchSemaphore(value: 0)
        let serving = ServingFlag()
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                if serving.isSet {
                    stopped.signal()
                } else {
                    FileHandle.standardError.write(Data("vectron: stopped during recovery (signal \(signalNumber)); the next start resumes it\n".utf8))
                    _exit(128 + signalNumber)
                }
            }
            source.resume()
            sources.append(source)
        }
        do {
            try node.start()
            if let generated = try gateway.bootstrapAdministrator() {
                // Shown once: only its hash is kept.
                print("Administrator API key (shown only now; keep it): \(generated)")
            }
        } catch {
            FileHandle.standardError.write(Data("vectron: \(error)\n".utf8))
            gateway.stop()
            node.stop()
            throw ExitCode(1)
        }
        serving.set()
        gateway.markReady()
        print("vectron ready")
        fflush(nil)
        logger.info("serving", metadata: ["http": "\(configuration.httpHost):\(port)", "rpc": "\(rpcHost):\(rpcPort)",
                                          "data": "\(configuration.dataDirectory)"])

        // SIGINT / SIGTERM (handled from before recovery, see above): stop serving, checkpoint, close.
        stopped.wait()
        logger.info("stopping")
        gateway.stop()
        node.stop()
        logger.info("stopped")
        _ = sources
    }

    /// Ten years.
    static let tokenLifetimeSecondsMax: Int64 = 10 * 366 * 86_400

    func resolveConfiguration() throws -> ServerConfiguration {
        var configuration = ServerConfiguration()
        let environment = ProcessInfo.processInfo.environment
        if let path = config ?? environment["VECTRON_CONFIG"] {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the config file \(path)") }
            guard case .object(let object) = try JSONParser.parse([UInt8](data)) else { throw ValidationError("the config file must hold a JSON object") }
            for (key, value) in object.members {
                switch key {
                case "data_dir": configuration.dataDirectory = try string(value, key)
                case "http_host": configuration.httpHost = try string(value, key)
                case "http_port": configuration.httpPort = try integer(value, key)
                case "rpc_host": configuration.rpcHost = try string(value, key)
                case "rpc_port": configuration.rpcPort = try integer(value, key)
                case "rate_limit_per_second": configuration.rateLimitPerSecond = Double(try integer(value, key))
                case "rate_limit_burst": configuration.rateLimitBurst = try integer(value, key)
                case "password_attempts_per_second": configuration.passwordAttemptsPerSecond = Double(try integer(value, key))
                case "password_attempts_burst": configuration.passwordAttemptsBurst = try integer(value, key)
                case "token_lifetime_seconds": configuration.tokenLifetimeSeconds = Int64(try integer(value, key))
                case "checkpoint_bytes": configuration.checkpointBytes = try integer(value, key)
                default: throw ValidationError("unknown setting `\(key)` in \(path)")
                }
            }
        }
        if let value = environment["VECTRON_DATA_DIR"] { configuration.dataDirectory = value }
        if let value = environment["VECTRON_HTTP_HOST"] { configuration.httpHost = value }
        if let value = environment["VECTRON_HTTP_PORT"] {
            guard let port = Int(value) else { throw ValidationError("VECTRON_HTTP_PORT must be a port number") }
            configuration.httpPort = port
        }
        if let value = environment["VECTRON_RPC_HOST"] { configuration.rpcHost = value }
        if let value = environment["VECTRON_RPC_PORT"] {
            guard let port = Int(value) else { throw ValidationError("VECTRON_RPC_PORT must be a port number") }
            configuration.rpcPort = port
        }
        if let value = environment["VECTRON_ADMIN_KEY"], !value.isEmpty {
            guard value.utf8.count >= 16 else { throw ValidationError("VECTRON_ADMIN_KEY must be at least 16 characters") }
            configuration.adminKey = value
        }
        if let dataDir { configuration.dataDirectory = dataDir }
        if let httpHost { configuration.httpHost = httpHost }
        if let httpPort { configuration.httpPort = httpPort }
        if let rpcHost { configuration.rpcHost = rpcHost }
        if let rpcPort { configuration.rpcPort = rpcPort }
        switch passwordCost {
        case nil, "interactive": break
        case "minimum": configuration.passwordHashing = .fastForTests
        default: throw ValidationError("--password-cost must be interactive or minimum")
        }
        // Bounded so that issue time + lifetime cannot overflow (JWT.issue traps on overflow).
        guard (-Self.tokenLifetimeSecondsMax...Self.tokenLifetimeSecondsMax).contains(configuration.tokenLifetimeSeconds) else {
            throw ValidationError("token_lifetime_seconds must be within ±\(Self.tokenLifetimeSecondsMax)")
        }
        guard (0...65_535).contains(configuration.httpPort) else { throw ValidationError("the HTTP port must be in 0…65535") }
        guard (0...65_535).contains(configuration.rpcPort) else { throw ValidationError("the binary protocol's port must be in 0…65535") }
        guard !configuration.dataDirectory.isEmpty else { throw ValidationError("the data directory cannot be empty") }
        return configuration
    }

    private func string(_ value: JSONValue, _ key: String) throws -> String {
        guard case .string(let text) = value else { throw ValidationError("`\(key)` must be a string") }
        return text
    }

    private func integer(_ value: JSONValue, _ key: String) throws -> Int {
        guard let number = value.int64Value, let result = Int(exactly: number) else { throw ValidationError("`\(key)` must be an integer") }
        return result
    }
}

/// Whether the server has finished recovering (read from the signal handler's queue).
final class ServingFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
