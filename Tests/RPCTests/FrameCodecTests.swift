// The frame codec: seeded round trips fed in random pieces, every single-byte flip of a small
// frame detected, limits checked from the header alone, errors naming field and offset.

import Basics
import Checksum
import RPC
import Testing
import Wire

/// A random frame that respects the per-kind rules of Format/rpc.md §3.
func randomFrame(_ random: inout SeededRandom, payloadBytesMax: Int = 2048) -> Frame {
    let kind = FrameKind.allCases[Int(random.next() % UInt64(FrameKind.allCases.count))]
    var frame = Frame(kind: kind, requestID: random.next() >> (random.next() % 64))
    if kind == .request {
        frame.methodID = UInt32(truncatingIfNeeded: random.next()) | 1
        frame.deadlineMicroseconds = random.chance(0.5) ? random.next() % 10_000_000 : 0
    }
    if !kind.requiresEmptyPayload {
        let count = Int(random.next() % UInt64(payloadBytesMax + 1))
        if random.chance(0.3) {
            // Compressible: a short pattern repeated.
            let pattern = random.bytes(1 + Int(random.next() % 8))
            frame.payload = (0..<count).map { pattern[$0 % pattern.count] }
        } else {
            frame.payload = random.bytes(count)
        }
        if random.chance(0.5) { frame.flags = .lz4 }
    }
    return frame
}

/// The frame as a decoder returns it: `.lz4` only if the encoder actually compressed.
func canonical(_ frame: Frame) -> Frame {
    var copy = frame
    copy.flags = FrameCodec.storedPayload(of: frame).flags
    return copy
}

func expectDecodeError(_ bytes: [UInt8], limits: FrameLimits = FrameLimits(), _ check: (DecodeError) -> Bool = { _ in true },
                       sourceLocation: SourceLocation = #_sourceLocation) {
    do throws(DecodeError) {
        let frame = try FrameCodec.decodeOne(bytes, limits: limits)
        Issue.record("decoded \(frame) from bad bytes", sourceLocation: sourceLocation)
    } catch {
        #expect(check(error), "unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct FrameCodecTests {
    @Test func randomFramesRoundTripWhenFedInPieces() throws {
        var random = SeededRandom(seed: 0xF4A3E)
        for round in 0..<200 {
            let frames = (0..<(1 + Int(random.next() % 12))).map { _ in randomFrame(&random) }
            var stream: [UInt8] = []
            for frame in frames { FrameCodec.encode(frame, into: &stream) }
            var decoder = FrameDecoder()
            var decoded: [Frame] = []
            var at = 0
            while at < stream.count {
                let piece = min(stream.count - at, 1 + Int(random.next() % 300))
                decoder.append(stream[at..<(at + piece)])
                at += piece
                while let frame = try decoder.next() { decoded.append(frame) }
            }
            try decoder.finish()
            #expect(decoded == frames.map(canonical), "round \(round), seed \(random.seed)")
            #expect(decoder.streamOffset == UInt64(stream.count))
        }
    }

    @Test func compressibleFramesAreSmallerOnTheWire() throws {
        let payload = [UInt8](String(repeating: "vector database ", count: 256).utf8)
        let frame = Frame.response(id: 7, payload: payload, flags: .lz4)
        let bytes = FrameCodec.encode(frame)
        #expect(bytes.count < payload.count / 4)
        #expect(try FrameCodec.decodeOne(bytes) == frame)
        // Incompressible payloads are stored raw and the flag is cleared.
        var random = SeededRandom(seed: 3)
        let noise = Frame.response(id: 8, payload: random.bytes(512), flags: .lz4)
        let raw = FrameCodec.encode(noise)
        #expect(raw.count == 512 + FrameFormat.overheadBytes)
        #expect(try FrameCodec.decodeOne(raw).flags == [])
    }

    @Test func everySingleByteFlipIsDetected() {
        let frames = [
            Frame.request(id: 42, method: 7, deadlineMicroseconds: 250_000, payload: Array("hello, vectron".utf8)),
            Frame.response(id: 42, payload: [UInt8](String(repeating: "abc", count: 40).utf8), flags: .lz4),
            Frame.error(id: 9, .notLeader(leaderHint: 3, "ask node 3")),
            Frame(kind: .cancel, requestID: 77),
        ]
        for frame in frames {
            let bytes = FrameCodec.encode(frame)
            for index in bytes.indices {
                for mask in [UInt8(0x01), 0x80, 0xFF] {
                    var flipped = bytes
                    flipped[index] ^= mask
                    expectDecodeError(flipped)
                }
            }
        }
    }

    @Test func oversizedLengthIsRefusedFromTheHeaderAlone() {
        var frame = FrameCodec.encode(.response(id: 1, payload: []))
        frame.removeLast(FrameFormat.trailerBytes)
        // Claim 1 GiB; only the 36 header bytes exist.
        let huge = UInt32(1 << 30)
        withUnsafeBytes(of: huge.littleEndian) { for i in 0..<4 { frame[20 + i] = $0[i]; frame[24 + i] = $0[i] } }
        var decoder = FrameDecoder(limits: FrameLimits(payloadBytesMax: 1 << 20))
        decoder.append(frame)
        #expect(throws: DecodeError(field: "stored length", offset: 20, reason: .tooLarge(value: 1 << 30, limit: 1 << 20))) {
            try decoder.next()
        }
    }

    @Test func garbageIsRefusedAtTheFirstByte() {
        var decoder = FrameDecoder()
        decoder.append(Array("G".utf8))
        #expect(throws: DecodeError(field: "magic", offset: 0, reason: .badMagic)) { try decoder.next() }
        // A valid magic prefix waits for more.
        var partial = FrameDecoder()
        partial.append(FrameFormat.magic[0..<3])
        #expect(throws: Never.self) { try partial.next() }
    }

    @Test func errorsNameTheFieldAndTheStreamOffset() throws {
        let good = FrameCodec.encode(.response(id: 1, payload: [1, 2, 3]))
        var bad = FrameCodec.encode(.response(id: 2, payload: [4]))
        bad[FrameFormat.versionOffset] = 2
        var decoder = FrameDecoder()
        decoder.append(good + bad)
        #expect(try decoder.next()?.requestID == 1)
        #expect(throws: DecodeError(field: "version", offset: UInt64(good.count + 4), reason: .unsupportedVersion(2))) {
            try decoder.next()
        }
        // The decoder stays failed.
        #expect(throws: DecodeError.self) { try decoder.next() }

        var kinds = FrameCodec.encode(.response(id: 1, payload: []))
        kinds[FrameFormat.kindOffset] = 99
        expectDecodeError(kinds) { $0.field == "kind" && $0.offset == 5 }
        let pingWithMethod = Frame(kind: .ping, requestID: 1, methodID: 3)
        expectDecodeError(FrameCodec.encode(pingWithMethod)) { $0.field == "method id" && $0.offset == 16 }
        let requestWithoutMethod = Frame(kind: .request, requestID: 1)
        expectDecodeError(FrameCodec.encode(requestWithoutMethod)) { $0.field == "method id" }
        let cancelWithPayload = Frame(kind: .cancel, requestID: 1, payload: [1])
        expectDecodeError(FrameCodec.encode(cancelWithPayload)) { $0.field == "payload length" }
    }

    @Test func truncatedFramesAreReportedAtTheEnd() throws {
        let bytes = FrameCodec.encode(.response(id: 1, payload: Array(repeating: 5, count: 100)))
        for cut in [1, 10, 36, 100, bytes.count - 1] {
            var decoder = FrameDecoder()
            decoder.append(bytes[0..<cut])
            #expect(try decoder.next() == nil)
            #expect(throws: DecodeError.self) { try decoder.finish() }
        }
    }

    @Test func lz4PayloadsMustShrinkAndMatchTheirLength() {
        // A frame flagged LZ4 whose stored bytes are as long as the payload.
        var frame = FrameCodec.encode(.response(id: 1, payload: [1, 2, 3, 4]))
        frame[FrameFormat.flagsOffset] = 1
        let checksum = XXH3.hash(frame, range: 0..<(frame.count - 8))
        withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { frame[frame.count - 8 + i] = $0[i] } }
        expectDecodeError(frame) { $0.field == "stored length" }
    }
}
