// Raft message batches on the wire (Format/raft.md §8): seeded round trips of every message
// kind, and hostile bytes — every truncation, every single-byte flip, random garbage — give a
// typed error or a batch that encodes back to the same bytes, never a crash.

import TestSupport
import Basics
import Raft
import Testing
import Wire
@testable import RaftStorage

@Suite(.ownThread) struct RaftMessageCodecTests {
    static func randomBatch(_ random: inout SeededRandom) -> [(group: UInt64, message: Message)] {
        (0..<Int(random.next() % 6)).map { _ in
            let kind = MessageKind.allCases[Int(random.next() % UInt64(MessageKind.allCases.count))]
            var m = Message(kind: kind, from: random.next() % 7 + 1, to: random.next() % 7 + 1, term: random.next() % 1000)
            m.logTerm = random.next() % 1000
            m.index = random.next() % 100_000
            m.commit = random.next()
            m.reject = random.next() % 2 == 0
            m.quiesce = random.next() % 5 == 0
            m.rejectHint = random.next() % 100
            m.lastIndex = random.next()
            m.recoveryNonce = random.next() % 3 == 0 ? random.next() : 0
            m.context = (0..<Int(random.next() % 20)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let first = random.next() % 1000 + 1
            m.entries = (0..<(random.next() % 5)).map { offset in
                Entry(term: random.next() % 50, index: first + offset, kind: random.next() % 4 == 0 ? .configurationChange : .normal,
                      data: (0..<Int(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            }
            if kind == .snapshot || random.next() % 8 == 0 {
                let voters = Set((0..<(random.next() % 5 + 1)).map { _ in random.next() % 9 + 1 })
                m.snapshot = Snapshot(metadata: SnapshotMetadata(index: random.next() % 5000, term: random.next() % 40,
                                                                 membership: Membership(voters: voters, learners: [10, 11])),
                                      data: (0..<Int(random.next() % 200)).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            }
            return (random.next() % 1_000_000, m)
        }
    }

    static func same(_ a: [(group: UInt64, message: Message)], _ b: [(group: UInt64, message: Message)]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.group == $1.group && $0.message == $1.message }
    }

    @Test func batchesRoundTrip() throws {
        for seed in UInt64(1)...500 {
            var random = SeededRandom(seed: seed)
            let batch = Self.randomBatch(&random)
            let bytes = RaftMessageCodec.encode(batch)
            let decoded = try RaftMessageCodec.decode(bytes)
            #expect(Self.same(decoded, batch), "seed \(seed)")
            #expect(RaftMessageCodec.encode(decoded) == bytes, "seed \(seed)")
        }
    }

    @Test func everyTruncationIsATypedError() throws {
        var random = SeededRandom(seed: 42)
        var batch = Self.randomBatch(&random)
        while batch.isEmpty { batch = Self.randomBatch(&random) }
        let bytes = RaftMessageCodec.encode(batch)
        for length in 0..<bytes.count {
            #expect(throws: DecodeError.self, "a batch cut to \(length) of \(bytes.count) bytes decoded") {
                _ = try RaftMessageCodec.decode(Array(bytes[..<length]))
            }
        }
        #expect(throws: DecodeError.self) { _ = try RaftMessageCodec.decode(bytes + [0]) }
    }

    @Test func flippedBytesAndGarbageNeverCrash() {
        var random = SeededRandom(seed: 7)
        var decodedAfterFlip = 0
        for _ in 0..<40 {
            let bytes = RaftMessageCodec.encode(Self.randomBatch(&random))
            for position in 0..<bytes.count {
                var flipped = bytes
                flipped[position] ^= UInt8(truncatingIfNeeded: random.next() | 1)
                // Either a typed error, or a batch that encodes back to exactly these bytes.
                if let decoded = try? RaftMessageCodec.decode(flipped) {
                    decodedAfterFlip += 1
                    let same = RaftMessageCodec.encode(decoded) == flipped
                    #expect(same, "a flip at \(position) decoded to a batch that encodes differently")
                }
            }
        }
        #expect(decodedAfterFlip > 0)  // payload bytes carry no checksum here: the RPC frame's covers them
        for _ in 0..<2000 {
            let garbage = (0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = try? RaftMessageCodec.decode(garbage)
            var header: [UInt8] = [RaftMessageCodec.version]
            withUnsafeBytes(of: UInt32.max.littleEndian) { header.append(contentsOf: $0) }
            #expect(throws: DecodeError.self) { _ = try RaftMessageCodec.decode(header + garbage) }
        }
    }

    /// Chunks of a large message (§9): seeded round trips, then every malformed shape refused.
    @Test func chunksRoundTripAndMalformedOnesAreRefused() throws {
        var random = SeededRandom(seed: 11)
        for _ in 0..<200 {
            let total = random.next() % 100_000 + 1
            let offset = random.next() % total
            let length = Int(random.next() % min(total - offset, 300)) + 1
            let chunk = RaftMessageChunk(transfer: random.next(), total: total, offset: offset, checksum: random.next(),
                                         bytes: (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            let bytes = chunk.encoded()
            #expect(bytes.count == RaftMessageChunk.headerBytes + length)
            #expect(try RaftMessageChunk.decode(bytes) == chunk)
            for cut in 0..<bytes.count {
                #expect(throws: DecodeError.self) { _ = try RaftMessageChunk.decode(Array(bytes[..<cut])) }
            }
            #expect(throws: DecodeError.self) { _ = try RaftMessageChunk.decode(bytes + [0]) }
        }
        let good = RaftMessageChunk(transfer: 1, total: 10, offset: 4, checksum: 9, bytes: [1, 2, 3])
        #expect(try RaftMessageChunk.decode(good.encoded()) == good)
        var refused: [RaftMessageChunk] = []
        var shape = good
        shape.total = 0; shape.offset = 0; refused.append(shape)            // an empty transfer
        shape = good; shape.offset = 8; refused.append(shape)               // runs past the total
        shape = good; shape.offset = 10; shape.bytes = [1]; refused.append(shape)  // starts at the total
        shape = good; shape.offset = UInt64.max; refused.append(shape)      // past the total
        shape = good; shape.total = UInt64.max; shape.offset = UInt64.max - 1; refused.append(shape)  // offset + length overflows
        shape = good; shape.bytes = []; refused.append(shape)               // an empty chunk
        for chunk in refused {
            #expect(throws: DecodeError.self, "\(chunk) was accepted") { _ = try RaftMessageChunk.decode(chunk.encoded()) }
        }
        var badVersion = good.encoded()
        badVersion[0] = 2
        #expect(throws: DecodeError.self) { _ = try RaftMessageChunk.decode(badVersion) }
    }
}
