// `vectron-bench ann`: builds an HNSW index from a TEXMEX .fvecs file, then for each ef runs
// every query one at a time on one thread and measures recall@k against an .ivecs ground truth
// and queries per second. Prints one JSON object per ef, then one with build, memory, save and
// load figures. `Benchmarks/ann/compare.py` runs hnswlib on the same files and parameters.

import Basics
import FileIO
import Foundation
import VectorIndex

public struct ANNBenchmarkConfiguration: Sendable {
    public var base = ""
    public var query = ""
    public var truth = ""
    public var metric = Metric.cosine
    public var m = 16
    public var efConstruction = 200
    public var efs = [10, 16, 32, 64, 100, 128, 200, 300, 400]
    public var k = 10
    public var threads = 1
    public var queryLimit: Int?
    /// Where to save a checkpoint (then load it back and time both).
    public var save: String?
    /// Load this checkpoint instead of building (for profiling searches).
    public var load: String?
    public init() {}
}

/// Vectors read from an .fvecs file into one flat buffer (no second copy).
public final class VectorFile: @unchecked Sendable {
    public let count: Int
    public let dimension: Int
    public let storage: UnsafeMutablePointer<Float>

    init(count: Int, dimension: Int, storage: UnsafeMutablePointer<Float>) {
        self.count = count
        self.dimension = dimension
        self.storage = storage
    }

    deinit { storage.deallocate() }

    public func vector(_ index: Int) -> [Float] { Array(UnsafeBufferPointer(start: storage + index * dimension, count: dimension)) }

    /// Reads `path` (records of a little-endian Int32 dimension followed by that many Float32),
    /// in 4 MiB chunks straight into the flat buffer.
    public static func readFvecs(_ path: String) throws -> VectorFile {
        let handle = try POSIXFileSystem().open(path, options: .read)
        defer { handle.close() }
        let size = Int(try handle.size())
        let head = try handle.read(at: 0, count: 4)
        guard head.count == 4 else { throw ANNBenchmarkError.badFile(path, "shorter than one record") }
        let dimension = Int(Int32(littleEndian: head.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }))
        guard dimension > 0, dimension <= 65_536 else { throw ANNBenchmarkError.badFile(path, "dimension \(dimension)") }
        let recordBytes = 4 + 4 * dimension
        guard size % recordBytes == 0 else { throw ANNBenchmarkError.badFile(path, "\(size) bytes is not a whole number of \(recordBytes)-byte records") }
        let count = size / recordBytes
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: count * dimension)
        let recordsPerChunk = max(1, (4 << 20) / recordBytes)
        var record = 0
        while record < count {
            let records = min(recordsPerChunk, count - record)
            let bytes = try handle.read(at: UInt64(record * recordBytes), count: records * recordBytes)
            guard bytes.count == records * recordBytes else { throw ANNBenchmarkError.badFile(path, "short read") }
            bytes.withUnsafeBytes { raw in
                for index in 0..<records {
                    let at = index * recordBytes
                    let stated = Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
                    precondition(stated == dimension, "record \(record + index) of \(path) has dimension \(stated)")
                    UnsafeMutableRawPointer(storage + (record + index) * dimension)
                        .copyMemory(from: raw.baseAddress! + at + 4, byteCount: 4 * dimension)
                }
            }
            record += records
        }
        return VectorFile(count: count, dimension: dimension, storage: storage)
    }

    /// Reads an .ivecs ground-truth file: per query, the ids of its exact neighbours, best first.
    public static func readIvecs(_ path: String) throws -> [[Int32]] {
        let bytes = try POSIXFileSystem().open(path, options: .read).readAll()
        var rows: [[Int32]] = []
        var at = 0
        while at + 4 <= bytes.count {
            let count = Int(bytes.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: Int32.self)) })
            guard count >= 0, at + 4 + 4 * count <= bytes.count else { throw ANNBenchmarkError.badFile(path, "record at byte \(at)") }
            rows.append((0..<count).map { index in
                bytes.withUnsafeBytes { Int32(littleEndian: $0.loadUnaligned(fromByteOffset: at + 4 + 4 * index, as: Int32.self)) }
            })
            at += 4 + 4 * count
        }
        return rows
    }
}

public enum ANNBenchmarkError: Error, CustomStringConvertible {
    case badFile(String, String)
    case mismatch(String)

    public var description: String {
        switch self {
        case let .badFile(path, reason): "\(path): \(reason)"
        case let .mismatch(reason): reason
        }
    }
}

public enum ANNBenchmark {
    /// Peak resident set size of this process (VmHWM), in bytes.
    public static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kilobytes = Int(fields[1]) { return kilobytes * 1024 }
        }
        return 0
    }

    public static func run(_ configuration: ANNBenchmarkConfiguration, print emit: (String) -> Void) throws {
        let base = try VectorFile.readFvecs(configuration.base)
        let queries = try VectorFile.readFvecs(configuration.query)
        let truth = try VectorFile.readIvecs(configuration.truth)
        guard queries.dimension == base.dimension else {
            throw ANNBenchmarkError.mismatch("queries have \(queries.dimension) dimensions, the base \(base.dimension)")
        }
        let queryCount = min(configuration.queryLimit ?? queries.count, queries.count, truth.count)
        var hnsw = HNSWConfiguration(dimension: base.dimension, metric: configuration.metric, m: configuration.m,
                                     efConstruct: configuration.efConstruction)
        hnsw.ef = configuration.efs.first ?? 100
        let started = MonotonicClock.nanoseconds()
        let index: HNSWIndex
        if let path = configuration.load {
            index = try HNSWIndex.load(from: path, fileSystem: POSIXFileSystem()).index
        } else {
            index = try HNSWIndex(configuration: hnsw, capacity: base.count)
            try index.insert(ids: (0..<base.count).map(UInt64.init), vectors: base.storage, threads: configuration.threads)
        }
        let buildSeconds = Double(MonotonicClock.nanoseconds() - started) / 1e9

        func measure(_ index: HNSWIndex, ef: Int) throws -> (recall: Double, qps: Double) {
            var found = 0
            let k = configuration.k
            let begin = MonotonicClock.nanoseconds()
            var results: [[SearchHit]] = []
            results.reserveCapacity(queryCount)
            for query in 0..<queryCount {
                results.append(try index.search(queries.vector(query), k: k, ef: ef))
            }
            let seconds = Double(MonotonicClock.nanoseconds() - begin) / 1e9
            for query in 0..<queryCount {
                let expected = Set(truth[query].prefix(k).map { UInt64($0) })
                found += results[query].filter { expected.contains($0.id) }.count
            }
            return (Double(found) / Double(queryCount * k), Double(queryCount) / seconds)
        }
        for ef in configuration.efs {
            let (recall, qps) = try measure(index, ef: ef)
            emit(#"{"ef":\#(ef),"recall":\#(rounded(recall, 4)),"qps":\#(rounded(qps, 1))}"#)
        }
        var summary = #"{"build_seconds":\#(rounded(buildSeconds, 3)),"build_threads":\#(configuration.threads),"peak_rss_bytes":\#(peakResidentBytes())"#
        if let path = configuration.save {
            let fileSystem = POSIXFileSystem()
            let saveStarted = MonotonicClock.nanoseconds()
            try index.save(to: path, appliedIndex: 0, fileSystem: fileSystem)
            let saveSeconds = Double(MonotonicClock.nanoseconds() - saveStarted) / 1e9
            let loadStarted = MonotonicClock.nanoseconds()
            let loaded = try HNSWIndex.load(from: path, fileSystem: fileSystem).index
            let loadSeconds = Double(MonotonicClock.nanoseconds() - loadStarted) / 1e9
            // The loaded index must answer exactly as the saved one.
            let ef = configuration.efs.first ?? 100
            for query in 0..<queryCount {
                let vector = queries.vector(query)
                guard try index.search(vector, k: configuration.k, ef: ef) == loaded.search(vector, k: configuration.k, ef: ef) else {
                    throw ANNBenchmarkError.mismatch("query \(query) is answered differently after save and load")
                }
            }
            summary += #","save_seconds":\#(rounded(saveSeconds, 3)),"load_seconds":\#(rounded(loadSeconds, 3))"#
        }
        emit(summary + "}")
    }

    static func rounded(_ value: Double, _ places: Int) -> String { String(format: "%.\(places)f", value) }
}
