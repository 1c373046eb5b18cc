// Layers only look down: every `import` in Sources/<Module> must name a module that layer may
// use (the same table as Package.swift's header), and the core (layers 0–2) never imports
// Foundation. Adding a dependency means updating Package.swift, this table and the README.

import Foundation
import Testing

@Suite struct LayeringTests {
    /// Module → the project modules it may import.
    static let allowed: [String: Set<String>] = [
        "Basics": [],
        "Wire": [],
        "Checksum": ["CXXHash"],
        "Compression": ["CLZ4"],
        "Linearizability": [],
        "JSON": [],
        "Payload": ["JSON"],
        "FileIO": ["Basics"],
        "FileIOSim": ["Basics", "FileIO"],
        "RecordLog": ["Basics", "Wire", "Checksum", "Compression", "FileIO"],
        "Inspection": ["Basics", "Wire", "Checksum", "Compression", "FileIO", "FileIOSim", "RecordLog", "StorageFormat", "LSM", "VectorIndex", "Shard"],
        "BenchSupport": ["Basics", "FileIO", "RecordLog", "LSM", "VectorIndex", "Raft", "RaftStorage", "RPC", "RPCTransport", "JSON"],
        "VectorIndex": ["Basics", "Wire", "Checksum", "FileIO", "CVectorSupport"],
        "CVectorSupport": [],
        "Raft": ["Basics"],
        "RaftStorage": ["Basics", "Wire", "Checksum", "FileIO", "Raft", "RecordLog"],
        "RaftSim": ["Basics", "Wire", "FileIO", "FileIOSim", "Linearizability", "RecordLog", "Raft", "RaftStorage"],
        "LSM": ["Basics", "Wire", "Checksum", "FileIO", "RecordLog", "StorageFormat"],
        "StorageFormat": ["Wire", "Checksum", "Compression", "FileIO"],
        "RPC": ["Basics", "Wire", "Checksum", "Compression"],
        "RPCTransport": ["Basics", "Wire", "RPC", "NIOCore", "NIOPosix"],
        "RaftTransport": ["Basics", "Wire", "Checksum", "Raft", "RaftStorage", "RPC", "RPCTransport"],
        "Auth": ["CSodium", "JSON", "Basics"],
        "HTTPServer": ["NIOCore", "NIOPosix", "NIOHTTP1"],
        "Catalog": ["Wire", "Checksum", "VectorIndex"],
        "Server": ["Basics", "Wire", "Checksum", "FileIO", "JSON", "Payload", "LSM", "VectorIndex", "RecordLog", "Raft", "RaftStorage",
                   "Catalog", "Shard", "Auth", "HTTPServer", "RPC", "RPCTransport", "ClientProtocol", "Logging"],
        "ClientProtocol": ["Wire", "RPC", "Payload"],
        "VectronClient": ["ClientProtocol", "RPC", "RPCTransport", "Payload", "JSON"],
        "Shard": ["Basics", "Wire", "Checksum", "FileIO", "JSON", "Payload", "LSM", "VectorIndex"],
    ]
    /// Platform modules any layer may import; Foundation only outside the core.
    static let platform: Set<String> = ["Glibc", "Darwin", "Synchronization", "Dispatch"]
    static let core: Set<String> = ["Basics", "Wire", "Checksum", "Compression", "Linearizability", "JSON", "Payload", "FileIO", "FileIOSim", "RecordLog", "StorageFormat", "LSM", "VectorIndex"]

    @Test func modulesImportOnlyLowerLayers() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources")
        // C system-library wrappers (a module map, no Swift) are leaves.
        let modules = try FileManager.default.contentsOfDirectory(atPath: sources.path).filter {
            !FileManager.default.fileExists(atPath: sources.appendingPathComponent($0).appendingPathComponent("module.modulemap").path)
        }
        #expect(Set(modules) == Set(Self.allowed.keys), "a module was added or removed: update this table")
        for module in modules {
            let directory = sources.appendingPathComponent(module)
            let files = FileManager.default.enumerator(atPath: directory.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
            for file in files {
                let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") where line.hasPrefix("import ") {
                    let words = line.split(separator: " ")
                    let imported = String(words.count > 2 ? words[2] : words[1]).split(separator: ".").first.map(String.init) ?? ""
                    let ok = Self.allowed[module]!.contains(imported) || Self.platform.contains(imported)
                        || (imported == "Foundation" && !Self.core.contains(module))
                    #expect(ok, "\(module)/\(file) imports \(imported), which its layer may not use")
                }
            }
        }
    }
}
