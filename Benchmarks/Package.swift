// swift-tools-version: 6.1
// Micro-benchmarks of Vectron's hot primitives (ordo-one/benchmark), kept in their own package so
// that a plain `swift build` / `swift test` of Vectron never builds the benchmark toolchain.
//   cd Benchmarks && swift package benchmark
// The side-by-side system benchmarks (record log vs raw fdatasync, RocksDB, hnswlib, gRPC) are
// `vectron-bench` subcommands in the root package; their figures are in RESULTS.md. The gRPC
// side of `vectron-bench rpc` lives here (`grpc-echo-bench`) so that the root package, which CI
// builds on every run, never builds gRPC:
//   cd Benchmarks && swift build -c release --product grpc-echo-bench
import PackageDescription

// A path dependency's identity is its folder's name, which differs between checkouts.
let rootPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "main")

let package = Package(
    name: "VectronBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
    ],
    targets: [
        .executableTarget(
            name: "Primitives",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "VectronPrimitives", package: rootPackage),
            ],
            path: "Benchmarks/Primitives",
            swiftSettings: [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
        .executableTarget(
            name: "grpc-echo-bench",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            ],
            path: "grpc-echo-bench"),
    ]
)
