// swift-tools-version: 6.1
// Vectron — a distributed vector database.
//
// Modules are layered and import only downwards:
//   0 primitives   Basics · Wire · Checksum (CXXHash) · Compression (CLZ4) · Linearizability
//                  · JSON (strict RFC 8259 parser, float32 vector fast path, writer)
//                  · Payload (Qdrant point ids, filters and payload updates, over JSON)
//   1 file I/O     FileIO (protocol + POSIX) · FileIOSim (crashable in-memory + fault injection)
//   2 formats/log  RecordLog (the unified record log) · StorageFormat (storage segments, manifest edits)
//   3 engines      LSM (the storage engine) · VectorIndex (HNSW, CVectorSupport)
//   4 replication  Raft (the consensus core) · RaftStorage (Raft state over the record log)
//   5 services     RPC (frames, messages, errors, method registry) · RPCTransport (SwiftNIO client and server)
//                  · RaftTransport (Raft message batches between nodes over the RPC)
//                  · Auth (argon2id passwords, API keys, HS256 JWTs, rate limits; libsodium via CSodium)
//                  · HTTPServer (HTTP/1.1 server and router on SwiftNIO's NIOHTTP1)
//                  · ClientProtocol (the binary client protocol's methods and messages)
//   6 database     Catalog (the catalog group's state machine) · Shard (a shard group's: storage + HNSW)
//   7 server       Server (the node: groups, recovery, checkpoints; the REST and binary gateways, auth)
//                  · VectronClient (the Swift SDK over the binary protocol)
//   tools          Inspection (dump / verify / repair) · BenchSupport · RaftSim (the simulator)
// `Tests/InspectionTests/LayeringTests.swift` checks every import against these rules.
import PackageDescription
import class Foundation.ProcessInfo

let hotCodeSettings: [SwiftSetting] = [
    // AVX2 + FMA for release builds of the hot code (see SWIFT.md); debug builds stay portable.
    .unsafeFlags(["-Xcc", "-march=x86-64-v3"], .when(configuration: .release)),
    // Dynamic exclusivity checks cost 5–10 % on the storage read path (swift_beginAccess on every
    // class-property access); static checking stays on. Release builds only.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

var products: [Product] = [
    .executable(name: "vectron", targets: ["vectron"]),
    .executable(name: "vectron-tool", targets: ["vectron-tool"]),
    .executable(name: "vectron-bench", targets: ["vectron-bench"]),
    .executable(name: "vectron-sim", targets: ["vectron-sim"]),
    .library(name: "VectronRecordLog", targets: ["RecordLog"]),
    // The Swift client SDK (the binary protocol, async/await).
    .library(name: "VectronClient", targets: ["VectronClient"]),
    // For the micro-benchmark package in Benchmarks/.
    .library(name: "VectronPrimitives", targets: ["Checksum", "Compression", "Wire"]),
]

var targets: [Target] = [
    // Layer 0 — C libraries and primitives.
    .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
    .systemLibrary(name: "CXXHash", path: "Sources/CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
    .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
    .target(name: "Basics"),
    .target(name: "Wire", swiftSettings: hotCodeSettings),
    .target(name: "Checksum", dependencies: ["CXXHash"], swiftSettings: hotCodeSettings),
    .target(name: "Compression", dependencies: ["CLZ4"], swiftSettings: hotCodeSettings),
    .target(name: "Linearizability"),
    .target(name: "JSON", swiftSettings: hotCodeSettings),
    .target(name: "Payload", dependencies: ["JSON"], swiftSettings: hotCodeSettings),
    // Layer 1 — file I/O.
    .target(name: "FileIO", dependencies: ["Basics"]),
    .target(name: "FileIOSim", dependencies: ["Basics", "FileIO"]),
    // Layer 2 — formats and the unified record log.
    .target(name: "RecordLog", dependencies: ["Basics", "Wire", "Checksum", "Compression", "FileIO"], swiftSettings: hotCodeSettings),
    .target(name: "StorageFormat", dependencies: ["Wire", "Checksum", "Compression", "FileIO"], swiftSettings: hotCodeSettings),
    // Tools.
    // The int8 kernels are optimised in debug builds too (the tests build real indexes with them);
    // release builds target x86-64-v3 like the Swift hot code.
    .target(name: "CVectorSupport", path: "Sources/CVectorSupport",
            cSettings: [.unsafeFlags(["-O2"]), .unsafeFlags(["-march=x86-64-v3"], .when(configuration: .release))]),
    .target(name: "VectorIndex", dependencies: ["Basics", "Wire", "Checksum", "FileIO", "CVectorSupport"], swiftSettings: hotCodeSettings),
    .target(name: "LSM", dependencies: ["Basics", "Wire", "Checksum", "FileIO", "RecordLog", "StorageFormat"], swiftSettings: hotCodeSettings),
    // Layer 4 — replication.
    .target(name: "Raft", dependencies: ["Basics"], swiftSettings: hotCodeSettings),
    .target(name: "RaftStorage", dependencies: ["Basics", "Wire", "Checksum", "FileIO", "Raft", "RecordLog"], swiftSettings: hotCodeSettings),
    // Layer 5 — services.
    .target(name: "RPC", dependencies: ["Basics", "Wire", "Checksum", "Compression"], swiftSettings: hotCodeSettings),
    .target(name: "RPCTransport", dependencies: [
        "Basics", "Wire", "RPC",
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
    ], swiftSettings: hotCodeSettings),
    .target(name: "RaftTransport", dependencies: ["Basics", "Wire", "Checksum", "Raft", "RaftStorage", "RPC", "RPCTransport"], swiftSettings: hotCodeSettings),
    .target(name: "Auth", dependencies: ["CSodium", "JSON", "Basics"]),
    .target(name: "ClientProtocol", dependencies: ["Wire", "RPC", "Payload"], swiftSettings: hotCodeSettings),
    .target(name: "HTTPServer", dependencies: [
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
    ], swiftSettings: hotCodeSettings),
    // Layers 6 and 7 — the database (state machines of the shard and catalog groups) and the server.
    .target(name: "Catalog", dependencies: ["Wire", "Checksum", "VectorIndex"], swiftSettings: hotCodeSettings),
    .target(name: "Server", dependencies: [
        "Basics", "Wire", "Checksum", "FileIO", "JSON", "Payload", "LSM", "VectorIndex", "RecordLog", "Raft", "RaftStorage",
        "Catalog", "Shard", "Auth", "HTTPServer", "RPC", "RPCTransport", "ClientProtocol", .product(name: "Logging", package: "swift-log"),
    ], swiftSettings: hotCodeSettings),
    // The Swift SDK: the client protocol over the RPC transport.
    .target(name: "VectronClient", dependencies: ["ClientProtocol", "RPC", "RPCTransport", "Payload", "JSON"], swiftSettings: hotCodeSettings),
    .target(name: "Shard", dependencies: ["Basics", "Wire", "Checksum", "FileIO", "JSON", "Payload", "LSM", "VectorIndex"], swiftSettings: hotCodeSettings),
    // Tools.
    .target(name: "RaftSim", dependencies: ["Basics", "Wire", "FileIO", "FileIOSim", "RecordLog", "Linearizability", "Raft", "RaftStorage"], swiftSettings: hotCodeSettings),
    .target(name: "Inspection", dependencies: ["Basics", "Wire", "Checksum", "Compression", "FileIO", "FileIOSim", "RecordLog", "StorageFormat", "LSM", "VectorIndex", "Shard"]),
    .target(name: "BenchSupport", dependencies: ["Basics", "FileIO", "RecordLog", "LSM", "VectorIndex", "Raft", "RaftStorage", "RPC", "RPCTransport", "JSON"], swiftSettings: hotCodeSettings),
    .executableTarget(
        name: "vectron",
        dependencies: ["Server", "JSON", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                       .product(name: "Logging", package: "swift-log")],
        path: "cmd/vectron", swiftSettings: hotCodeSettings),
    .executableTarget(
        name: "vectron-tool",
        dependencies: ["Inspection", "FileIO", "LSM", .product(name: "ArgumentParser", package: "swift-argument-parser")],
        path: "cmd/vectron-tool"),
    .executableTarget(
        name: "vectron-sim",
        dependencies: ["RaftSim", .product(name: "ArgumentParser", package: "swift-argument-parser")],
        path: "cmd/vectron-sim", swiftSettings: hotCodeSettings),
    .executableTarget(
        name: "vectron-bench",
        dependencies: ["BenchSupport", "VectorIndex", .product(name: "ArgumentParser", package: "swift-argument-parser")],
        path: "cmd/vectron-bench", swiftSettings: hotCodeSettings),
    // Tests.
    .target(name: "TestSupport", dependencies: ["Basics"], path: "Tests/TestSupport"),
    .testTarget(name: "WireTests", dependencies: ["TestSupport", "Wire", "Basics"]),
    .testTarget(name: "CodecTests", dependencies: ["TestSupport", "Checksum", "Compression", "Basics"]),
    .testTarget(name: "FileIOTests", dependencies: ["TestSupport", "FileIO", "FileIOSim", "Basics"]),
    .testTarget(name: "RecordLogTests", dependencies: ["TestSupport", "RecordLog", "FileIO", "FileIOSim", "Basics", "Wire", "Checksum", "Inspection"]),
    .testTarget(name: "StorageFormatTests", dependencies: ["TestSupport", "StorageFormat", "FileIO", "FileIOSim", "Basics", "Wire"]),
    .testTarget(name: "LSMTests", dependencies: ["TestSupport", "LSM", "StorageFormat", "RecordLog", "FileIO", "FileIOSim", "Basics", "Wire"]),
    .testTarget(name: "RaftTests", dependencies: ["Raft", "Basics"], exclude: ["testdata"]),
    .testTarget(name: "RaftStorageTests", dependencies: ["TestSupport", "RaftStorage", "Raft", "RecordLog", "FileIO", "FileIOSim", "Basics", "Wire", "Checksum"]),
    .testTarget(name: "RaftSimTests", dependencies: ["TestSupport", "RaftSim", "Raft", "Basics"]),
    .testTarget(name: "VectorIndexTests", dependencies: ["TestSupport", "VectorIndex", "CVectorSupport", "Basics", "Checksum", "FileIO", "FileIOSim"]),
    .testTarget(name: "LinearizabilityTests", dependencies: ["Linearizability", "Basics"]),
    .testTarget(name: "JSONTests", dependencies: ["TestSupport", "JSON", "Basics"]),
    .testTarget(name: "PayloadTests", dependencies: ["Payload", "JSON", "Basics"]),
    .testTarget(name: "AuthTests", dependencies: ["Auth", "JSON", "Basics"]),
    .testTarget(name: "RPCTests", dependencies: [
        "RPC", "RPCTransport", "Basics", "Wire", "Checksum",
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
    ]),
    .testTarget(name: "RaftTransportTests", dependencies: [
        "RaftTransport", "RaftStorage", "Raft", "RPC", "RPCTransport", "RecordLog", "FileIO", "FileIOSim", "Basics", "Checksum", "Wire",
    ]),
    .testTarget(name: "HTTPServerTests", dependencies: [
        "HTTPServer",
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
    ]),
    .testTarget(name: "ShardTests", dependencies: [
        "TestSupport", "Shard", "LSM", "VectorIndex", "Payload", "JSON", "FileIO", "FileIOSim", "Basics", "Wire", "Checksum",
    ]),
    .testTarget(name: "CatalogTests", dependencies: ["TestSupport", "Catalog", "VectorIndex", "Basics", "Wire", "Checksum"]),
    .testTarget(name: "ServerTests", dependencies: ["TestSupport", "JSON", "Basics", "Payload", "VectronClient", "ClientProtocol", "RPC", "RPCTransport"]),
    .testTarget(name: "ClientProtocolTests", dependencies: ["TestSupport", "ClientProtocol", "RPC", "Payload", "Wire"], exclude: []),
    .testTarget(name: "InspectionTests", dependencies: ["TestSupport", "Inspection", "LSM", "RecordLog", "StorageFormat", "VectorIndex", "FileIO", "FileIOSim", "Basics", "Shard", "Payload"]),
]

// Fuzz targets exist only when VECTRON_FUZZ is set, so plain `swift build` / `swift test` never
// need sanitizer flags. Build them with Fuzz/run.sh.
if ProcessInfo.processInfo.environment["VECTRON_FUZZ"] != nil {
    targets.append(.systemLibrary(name: "CFuzzer", path: "Fuzz/CFuzzer"))
    targets.append(.target(name: "FuzzSupport", dependencies: ["CFuzzer"], path: "Fuzz/FuzzSupport"))
    for (name, deps) in [
        ("FuzzRecordLogReader", ["RecordLog", "FileIO", "FileIOSim"]),
        ("FuzzLZ4", ["Compression"]),
        ("FuzzStorageSegment", ["StorageFormat", "Checksum", "Wire", "FileIO", "FileIOSim"]),
        ("FuzzBlockDecoder", ["StorageFormat"]),
        ("FuzzFooterDecoder", ["StorageFormat", "Checksum"]),
        ("FuzzManifestDecoder", ["StorageFormat", "Checksum"]),
        ("FuzzHNSWCheckpoint", ["VectorIndex", "Checksum", "FileIO", "FileIOSim"]),
        ("FuzzRaftRecords", ["Raft", "RaftStorage", "RecordLog", "Checksum", "FileIO", "FileIOSim"]),
        ("FuzzRPCFrame", ["RPC", "Basics", "Checksum", "Wire"]),
        ("FuzzRPCMessages", ["RPC", "Checksum", "Wire"]),
        ("FuzzRaftMessages", ["RaftStorage"]),
        ("FuzzJSON", ["JSON"]),
        ("FuzzPayload", ["JSON", "Payload"]),
        ("FuzzShardCommand", ["Shard", "Wire", "Checksum", "FileIO", "FileIOSim"]),
        ("FuzzCatalog", ["Catalog", "Wire", "Checksum"]),
        ("FuzzClientMessages", ["ClientProtocol", "RPC", "Wire"]),
    ] as [(String, [Target.Dependency])] {
        targets.append(.executableTarget(name: name, dependencies: deps + ["FuzzSupport"], path: "Fuzz/\(name)"))
        products.append(.executable(name: name, targets: [name]))
    }
}

let package = Package(
    name: "Vectron",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: targets
)
