// swift-tools-version: 6.1
// Micro-benchmarks of Vectron's hot primitives (ordo-one/benchmark), kept in their own package so
// that a plain `swift build` / `swift test` of Vectron never builds the benchmark toolchain.
//   cd Benchmarks && swift package benchmark
// The side-by-side system benchmarks (record log vs raw fdatasync, later RocksDB, hnswlib, gRPC)
// are `vectron-bench` subcommands in the root package; their figures are in RESULTS.md.
import PackageDescription

// A path dependency's identity is its folder's name, which differs between checkouts.
let rootPackage = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "main")

let package = Package(
    name: "VectronBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
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
    ]
)
