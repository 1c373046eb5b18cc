// Fuzz target: the RPC frame decoder (Format/rpc.md §2–§3), fed incrementally.
//
// Byte 0 is the mode: its low 7 bits seed the sizes of the pieces the rest is fed in; bit 7
// repairs every frame's checksum first, so that the fuzzer reaches the payload (LZ4) and the
// frames after the first. The rest is a byte stream from a peer. Properties:
// - every outcome is frames and then nothing, "need more", or one typed DecodeError;
// - feeding in pieces gives exactly the frames and the error of feeding it all at once;
// - every decoded frame re-encodes to bytes that decode to the same frame.

import Basics
import Checksum
import FuzzSupport
import RPC
import Wire

let limits = FrameLimits(payloadBytesMax: 1 << 20)

/// Rewrites the checksum of each frame whose header parses, walking the stream frame by frame.
func repairChecksums(_ bytes: inout [UInt8]) {
    var at = 0
    while at < bytes.count {
        let header: FrameHeader? = bytes.withUnsafeBytes { raw in
            try? FrameCodec.decodeHeader(UnsafeRawBufferPointer(rebasing: raw[at...]), limits: limits)
        }
        guard let header, at + header.frameBytes <= bytes.count else { return }
        let checksumAt = at + FrameFormat.headerBytes + header.storedLength
        let checksum = XXH3.hash(bytes, range: at..<checksumAt)
        withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[checksumAt + i] = $0[i] } }
        at += header.frameBytes
    }
}

/// Decodes `bytes` fed in pieces (sizes drawn from `random`); returns the frames and the error.
func decodeAll(_ bytes: [UInt8], random: inout SeededRandom?) -> ([Frame], DecodeError?) {
    var decoder = FrameDecoder(limits: limits)
    var frames: [Frame] = []
    var at = 0
    while at < bytes.count {
        let piece = random.map { _ in 1 + Int(random!.next() % 97) } ?? bytes.count
        let end = min(bytes.count, at + piece)
        decoder.append(bytes[at..<end])
        at = end
        do throws(DecodeError) {
            while let frame = try decoder.next() { frames.append(frame) }
        } catch {
            return (frames, error)
        }
    }
    do throws(DecodeError) {
        try decoder.finish()
    } catch {
        return (frames, error)
    }
    return (frames, nil)
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    if mode & 0x80 != 0 { repairChecksums(&bytes) }
    var whole: SeededRandom? = nil
    let (frames, error) = decodeAll(bytes, random: &whole)
    var pieces: SeededRandom? = SeededRandom(seed: UInt64(mode & 0x7F))
    let (pieceFrames, pieceError) = decodeAll(bytes, random: &pieces)
    precondition(frames == pieceFrames, "feeding in pieces changed the frames")
    // A truncated tail is reported with how much was available, which depends on the pieces
    // only through the final buffer: the error must be the same.
    precondition(error == pieceError, "feeding in pieces changed the error: \(String(describing: error)) vs \(String(describing: pieceError))")
    for frame in frames {
        var expected = frame
        expected.flags = FrameCodec.storedPayload(of: frame).flags
        let again = try? FrameCodec.decodeOne(FrameCodec.encode(frame), limits: limits)
        precondition(again == expected, "frame round trip")
    }
}

runFuzzer(fuzzOne)
