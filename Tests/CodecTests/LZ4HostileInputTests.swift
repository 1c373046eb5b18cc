// LZ4 decompression treats its input as hostile. A claimed size above the caller's limit (or
// negative) is `.sizeExceedsLimit`; a claimed size no block of this length could reach is
// `.impossibleRatio`, refused before any allocation; a claimed size other than the real one is
// `.sizeMismatch` or `.malformedInput`; truncated blocks, random garbage and thousands of seeded
// mutations of real blocks (bit flips, byte changes, insertions, deletions, cuts) either throw a
// `CompressionError` or return exactly the claimed number of bytes — never trap, never read out
// of bounds. An empty buffer with no base address must not trap either.

import Basics
import Compression
import Testing
import TestSupport

@Suite struct LZ4HostileInputTests {
    static let limit = 1 << 20

    /// Real blocks of a few shapes, with their decompressed sizes.
    static func sampleBlocks() throws -> [(input: [UInt8], block: [UInt8])] {
        var random = SeededRandom(seed: 0xB10C)
        var inputs: [[UInt8]] = [
            random.bytes(700),
            [UInt8](repeating: 0x41, count: 3_000),
            Array(String(repeating: "the quick brown fox jumps over the lazy dog; ", count: 60).utf8),
            (0..<2_500).map { UInt8(truncatingIfNeeded: ($0 / 3) % 11) },
        ]
        let chunk = random.bytes(97)
        inputs.append(Array((0..<30).flatMap { _ in chunk }))
        return try inputs.map { ($0, try LZ4.compress($0)) }
    }

    @Test func claimedSizeOverTheLimitIsRefused() throws {
        let input = [UInt8](repeating: 7, count: 1_000)
        let block = try LZ4.compress(input)
        #expect(compressionError { try LZ4.decompress(block, decompressedSize: 1_000, limit: 999) }?.kind
                == .sizeExceedsLimit(size: 1_000, limit: 999))
        #expect(compressionError { try LZ4.decompress(block, decompressedSize: -1, limit: 100) }?.kind
                == .sizeExceedsLimit(size: -1, limit: 100))
        #expect(compressionError { try LZ4.decompress(block, decompressedSize: .max, limit: Self.limit) }?.kind
                == .sizeExceedsLimit(size: .max, limit: Self.limit))
        #expect(compressionError { try LZ4.decompress([0], decompressedSize: 1, limit: 0) }?.kind
                == .sizeExceedsLimit(size: 1, limit: 0))
        // At the limit it is fine.
        #expect(try LZ4.decompress(block, decompressedSize: 1_000, limit: 1_000) == input)
    }

    @Test func claimedSizeImpossibleForTheInputLengthIsRefused() throws {
        let garbage: [UInt8] = [0xF0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        let limit = 1 << 30
        let ceiling = garbage.count * LZ4.expansionRatioMax + 16
        #expect(compressionError { try LZ4.decompress(garbage, decompressedSize: ceiling + 1, limit: limit) }?.kind
                == .impossibleRatio(compressed: 10, claimed: ceiling + 1))
        #expect(compressionError { try LZ4.decompress(garbage, decompressedSize: limit, limit: limit) }?.kind
                == .impossibleRatio(compressed: 10, claimed: limit))
        // Empty input can describe nothing: refused (by the ratio or as malformed), never decoded.
        #expect(compressionError { try LZ4.decompress([UInt8](), decompressedSize: 17, limit: limit) } != nil)
        // At the ceiling the ratio check passes and liblz4 judges the bytes.
        let atCeiling = compressionError { try LZ4.decompress(garbage, decompressedSize: ceiling, limit: limit) }
        #expect(atCeiling != nil)
        #expect(atCeiling?.kind != .impossibleRatio(compressed: 10, claimed: ceiling))
        // A real block claimed at many times its true size.
        let block = try LZ4.compress([UInt8](repeating: 1, count: 100))
        let claimed = block.count * LZ4.expansionRatioMax + 17
        #expect(compressionError { try LZ4.decompress(block, decompressedSize: claimed, limit: limit) }?.kind
                == .impossibleRatio(compressed: block.count, claimed: claimed))
    }

    @Test func claimedSizeOtherThanTheRealOneIsRefused() throws {
        for (input, block) in try Self.sampleBlocks() {
            let size = input.count
            for claimed in [size + 1, size + 2, size + 100, 2 * size] {
                let kind = compressionError { try LZ4.decompress(block, decompressedSize: claimed, limit: Self.limit) }?.kind
                if claimed > block.count * LZ4.expansionRatioMax + 16 {
                    // Highly compressed blocks claimed larger hit the ratio ceiling first.
                    #expect(kind == .impossibleRatio(compressed: block.count, claimed: claimed))
                } else {
                    #expect(kind == .sizeMismatch(claimed: claimed, actual: size) || kind == .malformedInput,
                            "\(size)-byte input claimed as \(claimed): \(String(describing: kind))")
                }
            }
            for claimed in [size - 1, size - 5, size / 2, 1] {
                let kind = compressionError { try LZ4.decompress(block, decompressedSize: claimed, limit: Self.limit) }?.kind
                #expect(kind == .malformedInput || kind.map { if case .sizeMismatch = $0 { true } else { false } } == true,
                        "\(size)-byte input claimed as \(claimed): \(String(describing: kind))")
            }
            #expect(compressionError { try LZ4.decompress(block, decompressedSize: 0, limit: Self.limit) }?.kind
                    == .malformedInput, "a non-empty block claimed empty")
        }
        // An empty input claiming a few bytes (within the ratio ceiling) is malformed.
        for claimed in 1...16 {
            #expect(compressionError { try LZ4.decompress([UInt8](), decompressedSize: claimed, limit: 100) }?.kind
                    == .malformedInput, "empty input claimed as \(claimed)")
        }
        // Anything but the empty encoding claimed as empty.
        for bytes: [UInt8] in [[1], [0, 0], [0x10, 0x41]] {
            #expect(compressionError { try LZ4.decompress(bytes, decompressedSize: 0, limit: 100) }?.kind == .malformedInput)
        }
    }

    @Test func everyTruncationOfARealBlockIsRefused() throws {
        for (input, block) in try Self.sampleBlocks() {
            for cut in 0..<block.count {
                let prefix = block[..<cut]
                let result = Result { () throws(CompressionError) in
                    try LZ4.decompress(prefix, decompressedSize: input.count, limit: Self.limit)
                }
                if case let .success(output) = result {
                    Issue.record("\(cut) of \(block.count) bytes decompressed to \(output.count) bytes")
                }
            }
        }
    }

    @Test func randomGarbageNeverTraps() {
        var random = SeededRandom(seed: 0x6A8BA6E)
        var refused = 0
        for round in 0..<4_000 {
            var bytes = random.bytes(Int(random.next() % 300))
            if round % 2 == 1, !bytes.isEmpty {
                // Plausible-looking tokens: small literal runs and nearby offsets.
                for i in stride(from: 0, to: bytes.count, by: 7) { bytes[i] &= 0x3F }
            }
            let claimed = Int(random.next() % 6_000) - 100
            switch Result(catching: { () throws(CompressionError) in
                try LZ4.decompress(bytes, decompressedSize: claimed, limit: Self.limit)
            }) {
            case let .success(output): #expect(output.count == claimed, "round \(round)")
            case .failure: refused += 1
            }
        }
        #expect(refused > 3_900, "random bytes are almost never a valid block of the claimed size")
    }

    @Test func mutatedBlocksThrowOrReturnExactlyTheClaimedSize() throws {
        let samples = try Self.sampleBlocks()
        var random = SeededRandom(seed: 0x5EED_CAFE)
        var refused = 0
        var accepted = 0
        for round in 0..<4_000 {
            let (input, original) = samples[round % samples.count]
            var block = original
            for _ in 0..<(1 + Int(random.next() % 3)) {
                let position = block.isEmpty ? 0 : Int(random.next() % UInt64(block.count))
                switch random.next() % 6 {
                case 0 where !block.isEmpty: block[position] ^= 1 << UInt8(random.next() % 8)
                case 1 where !block.isEmpty: block[position] = UInt8(truncatingIfNeeded: random.next())
                case 2: block.insert(UInt8(truncatingIfNeeded: random.next()), at: position)
                case 3 where !block.isEmpty: block.remove(at: position)
                case 4 where !block.isEmpty: block.removeSubrange(position...)
                default:  // duplicate a short run in place
                    let end = min(block.count, position + Int(random.next() % 16))
                    block.insert(contentsOf: Array(block[position..<end]), at: position)
                }
            }
            let claimed: Int
            switch random.next() % 5 {
            case 0: claimed = Int(random.next() % UInt64(2 * input.count + 1))
            case 1: claimed = input.count + Int(random.next() % 9) - 4
            default: claimed = input.count
            }
            let result = Result { () throws(CompressionError) in
                try LZ4.decompress(block, decompressedSize: claimed, limit: Self.limit)
            }
            switch result {
            case let .success(output):
                accepted += 1
                #expect(output.count == claimed, "round \(round): \(output.count) bytes for a claimed \(claimed)")
            case .failure:
                refused += 1
            }
        }
        // Both outcomes occur: literal bytes can change freely, structure cannot.
        #expect(refused > 1_000)
        #expect(accepted > 100)
    }

    @Test func emptyBufferWithoutBaseAddressDoesNotTrap() async {
        // `UnsafeRawBufferPointer(start: nil, count: 0)` is the canonical empty buffer. A claimed
        // size within the ratio ceiling (1...16 bytes for empty input) must throw, not force-
        // unwrap the nil base address.
        await #expect(processExitsWith: .success) {
            let empty = UnsafeRawBufferPointer(start: nil, count: 0)
            for claimed in 1...16 {
                do {
                    _ = try LZ4.decompress(empty, decompressedSize: claimed, limit: 100)
                    fatalError("decoded nothing into \(claimed) bytes")
                } catch {}
            }
        }
    }
}

/// The `CompressionError` a body throws, or nil if it succeeds.
/// (Untyped so that closures inside `#expect` need no annotation; the APIs under test throw
/// only `CompressionError`, anything else is recorded as an issue.)
func compressionError<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> CompressionError? {
    thrownError(CompressionError.self, body, sourceLocation: sourceLocation)
}
