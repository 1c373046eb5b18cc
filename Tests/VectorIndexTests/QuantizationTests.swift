// The int8 code records the graph walk reads (Quantization.swift): the AVX2 kernels against the
// scalar loops, the encoder's bounds, and the estimates against exact distances.

import TestSupport
import Basics
import CVectorSupport
import Testing
@testable import VectorIndex

@Suite(.ownThread) struct QuantizationTests {
    /// Random codes in −127…127, with runs of the extremes.
    func codes(_ count: Int, _ random: inout SeededRandom) -> [Int8] {
        (0..<count).map { index in
            switch random.next() % 8 {
            case 0: 127
            case 1: -127
            default: Int8(Int(random.next() % 255) - 127)
            }
        }
    }

    @Test func int8KernelsMatchTheScalarLoops() {
        var random = SeededRandom(seed: 31)
        for count in Array(0...70) + [95, 96, 97, 127, 128, 129, 384, 1000, 65_536] {
            let a = codes(count, &random), b = codes(count, &random)
            let scaleA = Float(random.next() % 1000 + 1) / 10_000, scaleB = Float(random.next() % 1000 + 1) / 10_000
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    let pa = a.baseAddress ?? UnsafePointer(bitPattern: 64)!, pb = b.baseAddress ?? UnsafePointer(bitPattern: 64)!
                    #expect(vectron_dot_i8(pa, pb, Int64(count)) == vectron_dot_i8_scalar(pa, pb, Int64(count)), "dot, \(count) codes")
                    let l1 = vectron_l1_i8(pa, scaleA, pb, scaleB, Int64(count))
                    let reference = vectron_l1_i8_scalar(pa, scaleA, pb, scaleB, Int64(count))
                    #expect(abs(l1 - reference) <= 1e-4 * max(1, reference), "l1, \(count) codes: \(l1) vs \(reference)")
                }
            }
        }
    }

    @Test func theLargestDotProductDoesNotOverflow() {
        let count = HNSWConfiguration.dimensionMax
        let a = [Int8](repeating: 127, count: count), b = [Int8](repeating: -127, count: count)
        #expect(vectron_dot_i8(a, b, Int64(count)) == -127 * 127 * Int32(count))
        #expect(vectron_dot_i8(a, a, Int64(count)) == 127 * 127 * Int32(count))
    }

    @Test func codesReconstructTheVectorWithinHalfAStep() {
        var random = SeededRandom(seed: 32)
        for dimension in [1, 2, 3, 5, 24, 384, 1001] {
            let vector = (0..<dimension).map { _ in Float(Int(random.next() % 20_001) - 10_000) / 1000 }
            let bytes = Quantizer.recordBytes(dimension: dimension)
            #expect(bytes % 4 == 0 && bytes >= Quantizer.headerBytes + dimension)
            let record = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            defer { record.deallocate() }
            record.initializeMemory(as: UInt8.self, repeating: 0xAB, count: bytes)
            vector.withUnsafeBufferPointer { Quantizer.encode($0.baseAddress!, dimension: dimension, into: record) }
            let scale = record.load(as: Float.self)
            let largest = vector.map(abs).max()!
            #expect(abs(scale - largest / 127) <= 1e-6 * largest)
            let norm = record.load(fromByteOffset: 4, as: Float.self)
            let exactNorm = ScalarReference.dot(vector, vector)
            #expect(abs(Double(norm) - exactNorm) <= 1e-5 * max(1, exactNorm))
            for index in 0..<dimension {
                let code = record.load(fromByteOffset: Quantizer.headerBytes + index, as: Int8.self)
                #expect(code != -128)
                #expect(abs(Float(code) * scale - vector[index]) <= scale / 2 * 1.0001, "dimension \(dimension), component \(index)")
            }
            for index in (Quantizer.headerBytes + dimension)..<bytes {
                #expect(record.load(fromByteOffset: index, as: UInt8.self) == 0, "padding byte \(index)")
            }
        }
    }

    @Test func aZeroVectorEncodesToZeros() {
        let vector = [Float](repeating: 0, count: 7)
        let record = UnsafeMutableRawPointer.allocate(byteCount: Quantizer.recordBytes(dimension: 7), alignment: 64)
        defer { record.deallocate() }
        vector.withUnsafeBufferPointer { Quantizer.encode($0.baseAddress!, dimension: 7, into: record) }
        #expect(record.load(as: Float.self) == 0)
        #expect((0..<7).allSatisfy { record.load(fromByteOffset: Quantizer.headerBytes + $0, as: Int8.self) == 0 })
        #expect(Metric.euclid.estimate(record, record, dimension: 7) == 0)
    }

    /// Estimates stay close to exact distances (relative to the vectors' magnitudes): the walk
    /// ranks by them, so their error is what costs recall.
    @Test(arguments: Metric.allCases)
    func estimatesAreCloseToExactDistances(metric: Metric) throws {
        let dimension = 384
        let vectors = clusteredVectors(count: 200, dimension: dimension, seed: 33 + UInt64(metric.rawValue))
        let index = try HNSWIndex(configuration: HNSWConfiguration(dimension: dimension, metric: metric))
        for (id, vector) in vectors.enumerated() { try index.insert(id: UInt64(id), vector: vector) }
        var worst: Float = 0
        for a in 0..<50 {
            for b in 150..<200 {
                let (na, nb) = (UInt32(a), UInt32(b))
                let exact = metric.distance(index.vector(na), index.vector(nb), dimension: dimension)
                let estimate = metric.estimate(index.code(na), index.code(nb), dimension: dimension)
                let magnitude = metric == .cosine ? 1 : Kernels.squaredNorm(index.vector(na), count: dimension).squareRoot()
                    * Kernels.squaredNorm(index.vector(nb), count: dimension).squareRoot()
                let scale: Float = metric == .manhattan ? Float(dimension).squareRoot() * magnitude.squareRoot() : magnitude
                worst = max(worst, abs(exact - estimate) / scale)
            }
        }
        #expect(worst < 0.01, "\(metric): worst relative error \(worst)")
    }

    /// The walk ranks by estimates; what a search returns is exact.
    @Test(arguments: Metric.allCases)
    func searchesReportExactDistances(metric: Metric) throws {
        let vectors = clusteredVectors(count: 500, dimension: 40, seed: 34)
        let index = try HNSWIndex(configuration: HNSWConfiguration(dimension: 40, metric: metric))
        for (id, vector) in vectors.enumerated() { try index.insert(id: UInt64(id), vector: vector) }
        let queries = clusteredVectors(count: 20, dimension: 40, seed: 35)
        for query in queries {
            let stored = try index.prepare(query)
            let hits = try index.search(query, k: 10)
            #expect(hits.count == 10)
            for hit in hits {
                let exact = Float(ScalarReference.distance(metric, stored, index.vector(of: hit.id)!))
                #expect(abs(hit.distance - exact) <= 1e-4 * max(1, abs(exact)), "\(metric): \(hit.distance) vs \(exact)")
            }
            #expect(hits.map(\.distance) == hits.map(\.distance).sorted())
        }
    }
}
