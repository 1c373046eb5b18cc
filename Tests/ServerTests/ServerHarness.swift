// Starts the real `vectron` binary (built next to the test bundle) in a fresh temporary data
// directory on port 0, reads the port and the bootstrap administrator key from its stdout, and
// waits for `vectron ready` — with a deadline, never a sleep. Stops it with SIGTERM (or SIGKILL
// for crash tests) and removes its directories.
//
// stdout is read by a thread into a buffer (so the pipe never fills) and copied to a log file;
// stderr goes straight to a log file. Both are kept for the secret-leak checks.
//
// The end-to-end tests block on sockets and pipes for seconds, so every suite carries
// `.ownThread` (TestSupport): they wait in the heavy lane, not on the cooperative pool that the
// async tests of other targets need. Each test runs its own server(s), so suites may run in
// parallel; `.serialized` keeps a suite's tests on one server at a time.

import Foundation
import JSON
#if canImport(Glibc)
import Glibc
#endif

struct HarnessError: Error, CustomStringConvertible {
    var description: String
}

final class ServerHarness: @unchecked Sendable {
    /// How long a start may take (recovery included) before the test fails.
    static let startSecondsMax: TimeInterval = 60
    static let stopSecondsMax: TimeInterval = 60

    /// The binary: next to the running test executable (`swift build --build-tests` and
    /// `swift test` build every product into the same directory).
    static let binaryPath: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // On some layouts the runner sits inside a bundle directory (`….xctest/…`).
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("vectron").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("vectron").path
    }()

    let root: URL
    let dataDirectory: URL
    let ownsDataDirectory: Bool
    let extraArguments: [String]
    let environment: [String: String]
    /// 0 picks a free port; a busy one makes the start fail.
    var httpPort = 0
    private(set) var process: Process?
    private(set) var port = 0
    /// The binary protocol's port: 0 picks a free one (read from the output, as `binaryPort`).
    var rpcPort = 0
    private(set) var binaryPort = 0
    /// The bootstrap administrator's API key, printed at first start only.
    private(set) var adminKey: String?
    private let output = NSCondition()
    private var stdoutText = ""
    private var stdoutClosed = false
    private var reader: Thread?
    private(set) var starts = 0

    var stdoutLog: URL { root.appendingPathComponent("stdout-\(starts).log") }
    var stderrLog: URL { root.appendingPathComponent("stderr-\(starts).log") }
    var logDirectory: URL { root }

    /// `config` is written to a JSON file passed with `--config`.
    init(config: String? = nil, dataDirectory: URL? = nil, extraArguments: [String] = [], environment: [String: String] = [:]) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("vectron-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        if let dataDirectory {
            self.dataDirectory = dataDirectory
            ownsDataDirectory = false
        } else {
            self.dataDirectory = root.appendingPathComponent("data")
            ownsDataDirectory = true
        }
        var arguments = extraArguments
        if let config {
            let path = root.appendingPathComponent("config.json")
            try Data(config.utf8).write(to: path)
            arguments += ["--config", path.path]
        }
        self.extraArguments = arguments
        self.environment = environment
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    /// Starts the binary and waits until it is ready; throws with its output if it exits first.
    func start(readyWithinSeconds: TimeInterval = ServerHarness.startSecondsMax) throws {
        let process = try launch()
        let deadline = Date().addingTimeInterval(readyWithinSeconds)
        guard let listening = waitForLine(containing: "vectron listening on ", until: deadline) else {
            throw HarnessError(description: "no `listening` line; exit \(exitDescription(process)); stdout: \(currentStdout()); stderr: \(currentStderr())")
        }
        guard let portText = listening.split(separator: ":").dropFirst(2).first?.split(separator: " ").first, let port = Int(portText) else {
            throw HarnessError(description: "cannot read the port from \(listening)")
        }
        self.port = port
        guard let binary = currentStdout().split(separator: "\n").last(where: { $0.contains("vectron binary protocol on vectron://") }),
              let binaryPortText = binary.split(separator: ":").last, let binaryPort = Int(binaryPortText) else {
            throw HarnessError(description: "no binary protocol port in \(currentStdout())")
        }
        self.binaryPort = binaryPort
        guard waitForLine(containing: "vectron ready", until: deadline) != nil else {
            // A server that is not ready may not be listening to SIGTERM yet: kill it.
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            throw HarnessError(description: "not ready; exit \(exitDescription(process)); stdout: \(currentStdout()); stderr: \(currentStderr())")
        }
        if let line = currentStdout().split(separator: "\n").first(where: { $0.contains("Administrator API key") }),
           let key = line.split(separator: " ").last {
            adminKey = String(key)
        }
    }

    /// Runs the binary to completion (for starts that must fail): its exit status and output.
    func runToExit() throws -> (status: Int32, stdout: String, stderr: String) {
        let process = try launch()
        let deadline = Date().addingTimeInterval(Self.startSecondsMax)
        output.locked {
            while !stdoutClosed {
                if !output.wait(until: deadline) { break }
            }
        }
        guard !process.isRunning || waitForExit(process, until: deadline) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError(description: "the server did not exit; stdout: \(currentStdout())")
        }
        process.waitUntilExit()
        self.process = nil
        return (process.terminationStatus, currentStdout(), currentStderr())
    }

    private func launch() throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: Self.binaryPath) else {
            throw HarnessError(description: "no vectron binary at \(Self.binaryPath): build it with `swift build --build-tests`")
        }
        starts += 1
        FileManager.default.createFile(atPath: stderrLog.path, contents: nil)
        FileManager.default.createFile(atPath: stdoutLog.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binaryPath)
        process.arguments = ["serve", "--data-dir", dataDirectory.path, "--http-port", String(httpPort), "--rpc-port", String(rpcPort),
                             "--password-cost", "minimum"] + extraArguments
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "VECTRON_ADMIN_KEY")
        environment.removeValue(forKey: "VECTRON_CONFIG")
        environment.removeValue(forKey: "VECTRON_HTTP_PORT")
        environment.removeValue(forKey: "VECTRON_DATA_DIR")
        for (key, value) in self.environment { environment[key] = value }
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = try FileHandle(forWritingTo: stderrLog)
        process.standardInput = FileHandle.nullDevice
        output.locked {
            stdoutText = ""
            stdoutClosed = false
        }
        try process.run()
        self.process = process
        let handle = pipe.fileHandleForReading
        let logHandle = try FileHandle(forWritingTo: stdoutLog)
        let thread = Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                logHandle.write(data)
                output.locked {
                    stdoutText += String(decoding: data, as: UTF8.self)
                    output.broadcast()
                }
            }
            try? logHandle.close()
            output.locked {
                stdoutClosed = true
                output.broadcast()
            }
        }
        thread.start()
        reader = thread
        return process
    }

    private func waitForExit(_ process: Process, until deadline: Date) -> Bool {
        // stdout closes when the process exits (or closes it): wait for that, then reap.
        output.locked {
            while !stdoutClosed {
                if !output.wait(until: deadline) { return }
            }
        }
        return output.locked { stdoutClosed }
    }

    private func waitForLine(containing needle: String, until deadline: Date) -> String? {
        output.locked { () -> String? in
            while true {
                if let line = stdoutText.split(separator: "\n").first(where: { $0.contains(needle) }) { return String(line) }
                if stdoutClosed { return nil }
                if !output.wait(until: deadline) { return nil }
            }
        }
    }

    func currentStdout() -> String { output.locked { stdoutText } }
    func currentStderr() -> String { (try? String(contentsOf: stderrLog, encoding: .utf8)) ?? "" }

    private func exitDescription(_ process: Process) -> String {
        process.isRunning ? "still running" : "status \(process.terminationStatus)"
    }

    /// SIGTERM, then waits for a clean exit; returns the exit status.
    @discardableResult
    func stop() throws -> Int32 {
        try signalAndWait(SIGTERM)
    }

    /// SIGKILL: a crash.
    func crash() throws {
        _ = try signalAndWait(SIGKILL)
    }

    private func signalAndWait(_ signal: Int32) throws -> Int32 {
        guard let process else { return 0 }
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(Self.stopSecondsMax)
        guard waitForExit(process, until: deadline) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw HarnessError(description: "the server did not stop on signal \(signal)")
        }
        process.waitUntilExit()
        self.process = nil
        return process.terminationStatus
    }

    var isRunning: Bool { process?.isRunning ?? false }

    /// Stops the server if running and removes every directory it used.
    func tearDown() {
        if process != nil { _ = try? stop() }
        // VECTRON_E2E_KEEP=1 keeps the data and logs for a post-mortem.
        if ProcessInfo.processInfo.environment["VECTRON_E2E_KEEP"] != nil {
            print("ServerHarness: kept \(root.path)")
            return
        }
        try? FileManager.default.removeItem(at: root)
    }

    func client(keepAlive: Bool = true) -> BlockingHTTPClient { BlockingHTTPClient(port: port, keepAlive: keepAlive) }

    /// Every file under the data directory and the logs, as bytes (for secret-leak checks).
    func allFiles() -> [(path: String, bytes: [UInt8])] {
        var files: [(String, [UInt8])] = []
        for base in [dataDirectory, root] {
            guard let enumerator = FileManager.default.enumerator(at: base, includingPropertiesForKeys: [.isRegularFileKey]) else { continue }
            for case let url as URL in enumerator {
                guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                      let data = FileManager.default.contents(atPath: url.path) else { continue }
                files.append((url.path, [UInt8](data)))
            }
        }
        return files
    }
}

extension NSCondition {
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
