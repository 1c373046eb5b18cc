// `vectron-bench kv`: the storage engine under RocksDB db_bench's workloads, with db_bench's
// flags and output format, so that `Benchmarks/kv-vs-rocksdb.sh` can run both tools back to
// back on the same disk and compare line by line.
//
// Keys and values are generated as db_bench generates them: a key is the key number as 8
// big-endian bytes padded with '0' to `keySize`; values are cut from a pool of random data that
// compresses to half its size. Fill benchmarks start from an empty database; reads use what the
// previous fill left.

import Basics
import FileIO
import Foundation
import LSM

public struct KVBenchmarkConfiguration: Sendable {
    public var benchmarks = ["fillseq", "fillrandom", "readrandom", "readseq"]
    public var num = 1_000_000
    public var reads: Int?
    public var keySize = 16
    public var valueSize = 100
    /// Sync every write (db_bench `--sync`).
    public var sync = false
    /// Sync every n-th write (0: never, unless `sync`).
    public var writesPerSync = 0
    /// Writes per batch (db_bench `--batch_size`).
    public var batchSize = 1
    public var cacheSize = 32 << 20
    public var directory = "./.vectron-bench-kv"
    public var seed: UInt64 = 301
    public var memtableBytes = 64 << 20
    public init() {}
}

public enum KVBenchmark {
    public static func key(_ number: UInt64, size: Int) -> [UInt8] {
        var key = [UInt8](repeating: UInt8(ascii: "0"), count: size)
        for index in 0..<min(8, size) { key[index] = UInt8(truncatingIfNeeded: number >> (56 - 8 * UInt64(index))) }
        return key
    }

    /// db_bench's value generator: random data that LZ4 compresses to about half.
    struct ValueGenerator {
        var pool: [UInt8] = []
        var position = 0
        init(seed: UInt64) {
            var random = SeededRandom(seed: seed)
            while pool.count < 1 << 20 {
                let piece = random.bytes(50)
                pool += piece
                pool += piece
            }
        }
        mutating func next(_ size: Int) -> [UInt8] {
            if position + size > pool.count { position = 0 }
            defer { position += size }
            return Array(pool[position..<(position + size)])
        }
    }

    public static func line(_ name: String, seconds: Double, operations: Int, bytes: Int, extra: String = "") -> String {
        let micros = seconds * 1e6 / Double(max(1, operations))
        let opsPerSecond = Int(Double(operations) / max(seconds, 1e-9))
        let megabytes = Double(bytes) / 1_048_576 / max(seconds, 1e-9)
        let name = name.padding(toLength: 12, withPad: " ", startingAt: 0)
        return String(format: "%@ : %11.3f micros/op %d ops/sec %.3f seconds %d operations; %5.1f MB/s%@",
                      name, micros, opsPerSecond, seconds, operations, megabytes, extra)
    }

    static func options(_ configuration: KVBenchmarkConfiguration) -> StorageOptions {
        var options = StorageOptions()
        options.blockCacheBytes = configuration.cacheSize
        options.memtableBytes = configuration.memtableBytes
        return options
    }

    static func footprint(_ directory: String) -> UInt64 {
        let manager = FileManager.default
        guard let enumerator = manager.enumerator(atPath: directory) else { return 0 }
        var total: UInt64 = 0
        while let name = enumerator.nextObject() as? String {
            if let attributes = try? manager.attributesOfItem(atPath: directory + "/" + name),
               attributes[.type] as? FileAttributeType == .typeRegular,
               let size = attributes[.size] as? NSNumber {
                total += size.uint64Value
            }
        }
        return total
    }

    /// Runs the benchmarks in order; returns the printed lines.
    public static func run(_ configuration: KVBenchmarkConfiguration, print emit: (String) -> Void) throws {
        let fileSystem = POSIXFileSystem()
        var engine: StorageEngine?
        var values = ValueGenerator(seed: configuration.seed)
        var random = SeededRandom(seed: configuration.seed &+ 1)
        let keySize = configuration.keySize, valueSize = configuration.valueSize, num = configuration.num
        func fresh() throws -> StorageEngine {
            engine?.close()
            engine = nil
            try? FileManager.default.removeItem(atPath: configuration.directory)
            let opened = try StorageEngine.open(directory: configuration.directory, fileSystem: fileSystem, options: options(configuration))
            engine = opened
            return opened
        }
        func existing() throws -> StorageEngine {
            if let engine { return engine }
            let opened = try StorageEngine.open(directory: configuration.directory, fileSystem: fileSystem, options: options(configuration))
            engine = opened
            return opened
        }
        for (position, name) in configuration.benchmarks.enumerated() {
            // Each benchmark draws its own keys (a read pass must not replay the fill's keys).
            let nameHash = name.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
            random = SeededRandom(seed: configuration.seed ^ nameHash &+ UInt64(position))
            switch name {
            case "fillseq", "fillrandom":
                let db = try fresh()
                let started = MonotonicClock.nanoseconds()
                var written = 0
                var batch = WriteBatch()
                for index in 0..<num {
                    let number = name == "fillseq" ? UInt64(index) : random.next() % UInt64(num)
                    batch.put(key(number, size: keySize), values.next(valueSize))
                    written += 1
                    if batch.count >= configuration.batchSize || index == num - 1 {
                        let sync = configuration.sync
                            || (configuration.writesPerSync > 0 && written % configuration.writesPerSync == 0)
                        try db.write(batch, sync: sync)
                        batch = WriteBatch()
                    }
                }
                let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
                emit(line(name, seconds: seconds, operations: num, bytes: num * (keySize + valueSize)))
            case "readrandom":
                let db = try existing()
                let reads = configuration.reads ?? num
                var found = 0
                let started = MonotonicClock.nanoseconds()
                for _ in 0..<reads {
                    if try db.get(key(random.next() % UInt64(num), size: keySize)) != nil { found += 1 }
                }
                let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
                emit(line(name, seconds: seconds, operations: reads, bytes: found * (keySize + valueSize), extra: " (\(found) of \(reads) found)"))
            case "readseq":
                let db = try existing()
                let started = MonotonicClock.nanoseconds()
                let iterator = try db.makeIterator()
                var count = 0, bytes = 0
                // As db_bench does: step and look at the key and value in place.
                while count < configuration.reads ?? num, try iterator.advance() {
                    count += 1
                    bytes += iterator.withCurrent { key, value in key.count + value.count }
                }
                let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
                emit(line(name, seconds: seconds, operations: count, bytes: bytes))
            default:
                throw KVBenchmarkError.unknownBenchmark(name)
            }
        }
        if let db = engine {
            let stats = db.statistics
            let levels = stats.levels.enumerated().filter { $0.element.segments > 0 }
                .map { "L\($0.offset)=\($0.element.segments)/\($0.element.bytes >> 20)MiB" }.joined(separator: " ")
            emit(String(format: "vectron stats: write-amp %.2f (wal %llu, flush %llu, compaction %llu bytes; user %llu) levels %@ cache hit rate %.3f flushes %llu compactions %llu trivial moves %llu stalls %llu/%llu",
                        stats.writeAmplification, stats.walBytesWritten, stats.flushBytesWritten, stats.compactionBytesWritten,
                        stats.userBytesWritten, levels, stats.blockCache.hitRate, stats.flushes, stats.compactions,
                        stats.trivialMoves, stats.writeSlowdowns, stats.writeStops))
            db.close()
            emit("vectron disk footprint: \(footprint(configuration.directory)) bytes")
        }
    }
}

public enum KVBenchmarkError: Error, CustomStringConvertible {
    case unknownBenchmark(String)
    public var description: String {
        switch self {
        case let .unknownBenchmark(name): return "unknown benchmark \(name) (supported: fillseq, fillrandom, readrandom, readseq)"
        }
    }
}
