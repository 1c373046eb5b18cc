// Throughput of the checksum and compression primitives every format leans on: XXH3-64 over a
// 4 KiB block and a 384-float vector, LZ4 compress and decompress of a 16 KiB page of mixed data.

import Benchmark
import Checksum
import Compression

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.throughput, .wallClock], maxDuration: .seconds(2))

    let block: [UInt8] = (0..<4096).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: (i &* 2_654_435_761) >> 7) }
    Benchmark("XXH3-64 4 KiB") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(XXH3.hash(block)) }
    }

    let vector: [UInt8] = (0..<(384 * 4)).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i &* 31) }
    Benchmark("XXH3-64 1536 B (one 384-d vector)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(XXH3.hash(vector)) }
    }

    let page: [UInt8] = (0..<16384).map { (i: Int) -> UInt8 in
        if i % 64 < 40 { return UInt8(i / 64 % 251) }
        return UInt8(truncatingIfNeeded: i &* 7919)
    }
    let compressed = try! LZ4.compress(page)
    Benchmark("LZ4 compress 16 KiB") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try! LZ4.compress(page)) }
    }
    Benchmark("LZ4 decompress 16 KiB") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! LZ4.decompress(compressed, decompressedSize: page.count, limit: page.count))
        }
    }
}
