// LZ4 block round trips: empty and one-byte inputs, sizes around LZ4's own boundaries (the
// 4-byte minimum match, the 12-byte minimum for a match, 64 KiB windows), seeded random
// (incompressible) inputs and several families of compressible ones (zeros, runs, a small
// alphabet, repeated chunks with mutations), through the array, slice and raw-buffer overloads.
// Compressed blocks never exceed `compressBound`, and the most compressible input there is (all
// zeros) still decompresses, so the `expansionRatioMax` guard never refuses a real block.

import Basics
import Compression
import Testing

@Suite struct LZ4RoundTripTests {
    /// Compresses, checks the bound, decompresses with an exact limit, and compares.
    static func roundTrip(_ input: [UInt8], _ label: @autoclosure () -> String,
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        let compressed = try LZ4.compress(input)
        #expect(compressed.count <= LZ4.compressBound(input.count), "\(label()): bound", sourceLocation: sourceLocation)
        let output = try LZ4.decompress(compressed, decompressedSize: input.count, limit: input.count)
        #expect(output == input, "\(label()): \(input.count) bytes via \(compressed.count)", sourceLocation: sourceLocation)
    }

    @Test func emptyAndOneByteInputs() throws {
        #expect(try LZ4.compress([UInt8]()) == [])
        #expect(try LZ4.decompress([UInt8](), decompressedSize: 0, limit: 0) == [])
        // liblz4's own encoding of an empty block is a single zero token.
        #expect(try LZ4.decompress([0], decompressedSize: 0, limit: 0) == [])
        for byte in [UInt8(0), 1, 0x7F, 0xFF] {
            let compressed = try LZ4.compress([byte])
            #expect(compressed == [0x10, byte], "one literal: token 0x10, then the byte")
            #expect(try LZ4.decompress(compressed, decompressedSize: 1, limit: 1) == [byte])
        }
        let nothing = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(try LZ4.compress(nothing) == [])
        #expect(try LZ4.decompress(nothing, decompressedSize: 0, limit: 10) == [])
    }

    @Test func sizesAroundFormatBoundaries() throws {
        var random = SeededRandom(seed: 0x1_2345)
        let sizes = [2, 3, 4, 5, 11, 12, 13, 15, 16, 17, 63, 64, 65, 255, 256, 257, 4095, 4096,
                     65_535, 65_536, 65_537, 131_073]
        for size in sizes {
            try Self.roundTrip(random.bytes(size), "random \(size)")
            try Self.roundTrip([UInt8](repeating: 0x61, count: size), "constant \(size)")
            try Self.roundTrip((0..<size).map { UInt8(truncatingIfNeeded: $0 % 7) }, "period 7, \(size)")
        }
    }

    @Test func seededRandomAndCompressibleInputs() throws {
        for seed in UInt64(0)..<240 {
            var random = SeededRandom(seed: seed)
            let size = Int(random.next() % (seed % 8 == 0 ? 70_000 : 3_000))
            let input: [UInt8]
            switch seed % 6 {
            case 0:
                input = random.bytes(size)
            case 1:  // runs of random bytes with random lengths
                var bytes: [UInt8] = []
                while bytes.count < size {
                    let run = Int(random.next() % 300) + 1
                    bytes.append(contentsOf: repeatElement(UInt8(truncatingIfNeeded: random.next()), count: run))
                }
                input = Array(bytes.prefix(size))
            case 2:  // a small alphabet, like text
                let alphabet = Array("etaoin shrdlu".utf8)
                input = (0..<size).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            case 3:  // a random chunk repeated with occasional mutations (long-distance matches)
                let chunk = random.bytes(Int(random.next() % 5_000) + 1)
                var bytes: [UInt8] = []
                while bytes.count < size {
                    var copy = chunk
                    if random.chance(0.5) { copy[Int(random.next() % UInt64(copy.count))] ^= 0x5A }
                    bytes.append(contentsOf: copy)
                }
                input = Array(bytes.prefix(size))
            case 4:  // sparse: mostly zeros
                var bytes = [UInt8](repeating: 0, count: size)
                for _ in 0..<(size / 50) { bytes[Int(random.next() % UInt64(size))] = UInt8(truncatingIfNeeded: random.next()) }
                input = bytes
            default:  // little-endian counters, like ids and offsets
                var bytes: [UInt8] = []
                var counter = UInt32(truncatingIfNeeded: random.next())
                while bytes.count < size {
                    withUnsafeBytes(of: counter.littleEndian) { bytes.append(contentsOf: $0) }
                    counter &+= UInt32(random.next() % 4)
                }
                input = Array(bytes.prefix(size))
            }
            try Self.roundTrip(input, "seed \(seed) family \(seed % 6)")
        }
    }

    @Test func slicesAndRawBuffersCompressLikeArrays() throws {
        var random = SeededRandom(seed: 4242)
        let buffer = random.bytes(10_000) + [UInt8](repeating: 9, count: 10_000)
        for (start, end) in [(0, 0), (1, 2), (777, 9_999), (5_000, 20_000), (19_999, 20_000)] {
            let slice = buffer[start..<end]
            let fromSlice = try LZ4.compress(slice)
            let fromArray = try LZ4.compress(Array(slice))
            #expect(fromSlice == fromArray, "slice \(start)..<\(end)")
            let fromRaw = try buffer.withUnsafeBytes { raw throws(CompressionError) in
                try LZ4.compress(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
            }
            #expect(fromRaw == fromSlice)
            // Decompress from a slice of a larger buffer, not from index 0.
            let framed = [0xEE, 0xEE] + fromSlice + [0xEE]
            let output = try LZ4.decompress(framed[2..<(2 + fromSlice.count)], decompressedSize: slice.count, limit: 1 << 20)
            #expect(output == Array(slice))
        }
    }

    @Test func mostCompressibleInputsStillDecompress() throws {
        for size in [16, 100, 1 << 16, 1 << 20, 4 << 20] {
            let zeros = [UInt8](repeating: 0, count: size)
            let compressed = try LZ4.compress(zeros)
            // The ratio guard must admit every block liblz4 can produce.
            #expect(size <= compressed.count * LZ4.expansionRatioMax + 16, "\(size) zeros compress to \(compressed.count)")
            let output = try LZ4.decompress(compressed, decompressedSize: size, limit: size)
            #expect(output.count == size)
            #expect(output.allSatisfy { $0 == 0 })
        }
    }
}

