// Encodes and decodes frames (Format/rpc.md §2–§3) over raw bytes, so that byte arrays
// (`FrameDecoder`, the fuzzers, the golden tests) and the SwiftNIO transport share one
// implementation of every rule.
//
// Decoding never trusts the input: the header's lengths are checked against `FrameLimits`
// before anything is buffered or allocated, the checksum before the payload is used, and an
// LZ4 payload may not claim more than LZ4 can expand to. Every failure is a `DecodeError`
// naming the field and its absolute offset in the connection's byte stream.

import Checksum
import Compression
import Wire

/// The outcome of decoding from the front of some bytes.
public enum FrameDecodeResult: Equatable, Sendable {
    /// The bytes hold no complete frame yet; at least this many bytes (counted from the frame's
    /// start) are needed before trying again. Never more than the limits allow.
    case needMore(Int)
    /// A frame, which occupied the first `consumed` bytes.
    case frame(Frame, consumed: Int)
}

/// The validated fixed-size header of a frame.
public struct FrameHeader: Equatable, Sendable {
    public var kind: FrameKind
    public var flags: FrameFlags
    public var requestID: UInt64
    public var methodID: UInt32
    public var storedLength: Int
    public var payloadLength: Int
    public var deadlineMicroseconds: UInt64

    /// Bytes the whole frame occupies on the wire.
    public var frameBytes: Int { FrameFormat.headerBytes + storedLength + FrameFormat.trailerBytes }
}

public enum FrameCodec {
    // MARK: Encoding

    /// The payload as stored on the wire and the flags that describe it: LZ4 only when asked for
    /// and when it makes the payload shorter.
    public static func storedPayload(of frame: Frame) -> (flags: FrameFlags, bytes: [UInt8]) {
        var flags = frame.flags
        if flags.contains(.lz4) {
            if let compressed = try? LZ4.compress(frame.payload), compressed.count < frame.payload.count {
                return (flags, compressed)
            }
            flags.remove(.lz4)
        }
        return (flags, frame.payload)
    }

    /// Writes the 36-byte header into `destination` (which must hold at least 36 bytes).
    public static func writeHeader(
        _ frame: Frame, flags: FrameFlags, storedLength: Int, into destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(destination.count >= FrameFormat.headerBytes, "header buffer too small")
        precondition(storedLength <= UInt32.max && frame.payload.count <= UInt32.max, "payload too large for a frame")
        for (i, byte) in FrameFormat.magic.enumerated() { destination[i] = byte }
        destination[FrameFormat.versionOffset] = FrameFormat.version
        destination[FrameFormat.kindOffset] = frame.kind.rawValue
        destination.storeBytes(of: flags.rawValue.littleEndian, toByteOffset: FrameFormat.flagsOffset, as: UInt16.self)
        destination.storeBytes(of: frame.requestID.littleEndian, toByteOffset: FrameFormat.requestIDOffset, as: UInt64.self)
        destination.storeBytes(of: frame.methodID.littleEndian, toByteOffset: FrameFormat.methodIDOffset, as: UInt32.self)
        destination.storeBytes(of: UInt32(storedLength).littleEndian, toByteOffset: FrameFormat.storedLengthOffset, as: UInt32.self)
        destination.storeBytes(of: UInt32(frame.payload.count).littleEndian, toByteOffset: FrameFormat.payloadLengthOffset, as: UInt32.self)
        destination.storeBytes(of: frame.deadlineMicroseconds.littleEndian, toByteOffset: FrameFormat.deadlineOffset, as: UInt64.self)
    }

    /// Writes a whole frame — header, stored payload, checksum — into `destination`, which
    /// must hold exactly `FrameFormat.overheadBytes + stored.count` bytes.
    public static func write(
        _ frame: Frame, flags: FrameFlags, stored: [UInt8], into destination: UnsafeMutableRawBufferPointer
    ) {
        let checksumAt = FrameFormat.headerBytes + stored.count
        precondition(destination.count == checksumAt + FrameFormat.trailerBytes, "frame buffer has the wrong size")
        writeHeader(frame, flags: flags, storedLength: stored.count,
                    into: UnsafeMutableRawBufferPointer(rebasing: destination[0..<FrameFormat.headerBytes]))
        stored.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(rebasing: destination[FrameFormat.headerBytes..<checksumAt]).copyMemory(from: source)
        }
        let checksum = XXH3.hash(UnsafeRawBufferPointer(rebasing: destination[0..<checksumAt]))
        destination.storeBytes(of: checksum.littleEndian, toByteOffset: checksumAt, as: UInt64.self)
    }

    /// Appends the encoded frame to `output`.
    public static func encode(_ frame: Frame, into output: inout [UInt8]) {
        let (flags, stored) = storedPayload(of: frame)
        let start = output.count
        let size = stored.count + FrameFormat.overheadBytes
        output.append(contentsOf: repeatElement(0, count: size))
        output.withUnsafeMutableBytes { raw in
            write(frame, flags: flags, stored: stored, into: UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + size)]))
        }
    }

    public static func encode(_ frame: Frame) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(frame.payload.count + FrameFormat.overheadBytes)
        encode(frame, into: &output)
        return output
    }

    // MARK: Decoding

    /// Checks the header at the front of `raw` (§3 steps 1–9). Returns nil when fewer than
    /// 36 bytes are present and the ones present are a prefix of the magic.
    public static func decodeHeader(
        _ raw: UnsafeRawBufferPointer, baseOffset: UInt64 = 0, limits: FrameLimits
    ) throws(DecodeError) -> FrameHeader? {
        for i in 0..<min(raw.count, FrameFormat.magic.count) where raw[i] != FrameFormat.magic[i] {
            throw DecodeError(field: "magic", offset: baseOffset, reason: .badMagic)
        }
        guard raw.count >= FrameFormat.headerBytes else { return nil }
        func at(_ offset: Int) -> UInt64 { baseOffset + UInt64(offset) }
        func load<T: FixedWidthInteger>(_ offset: Int, _ type: T.Type) -> T {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        let version = raw[FrameFormat.versionOffset]
        guard version == FrameFormat.version else {
            throw DecodeError(field: "version", offset: at(FrameFormat.versionOffset), reason: .unsupportedVersion(UInt64(version)))
        }
        let kindByte = raw[FrameFormat.kindOffset]
        guard let kind = FrameKind(rawValue: kindByte) else {
            throw DecodeError(field: "kind", offset: at(FrameFormat.kindOffset), reason: .invalidValue(UInt64(kindByte)))
        }
        let flags = FrameFlags(rawValue: load(FrameFormat.flagsOffset, UInt16.self))
        guard FrameFlags.known.isSuperset(of: flags) else {
            throw DecodeError(field: "flags", offset: at(FrameFormat.flagsOffset), reason: .invalidValue(UInt64(flags.rawValue)))
        }
        let stored = Int(load(FrameFormat.storedLengthOffset, UInt32.self))
        let payload = Int(load(FrameFormat.payloadLengthOffset, UInt32.self))
        let limit = limits.payloadBytesMax
        guard stored <= limit else {
            throw DecodeError(field: "stored length", offset: at(FrameFormat.storedLengthOffset),
                              reason: .tooLarge(value: UInt64(stored), limit: UInt64(limit)))
        }
        guard payload <= limit else {
            throw DecodeError(field: "payload length", offset: at(FrameFormat.payloadLengthOffset),
                              reason: .tooLarge(value: UInt64(payload), limit: UInt64(limit)))
        }
        if flags.contains(.lz4) {
            guard stored < payload else {
                throw DecodeError(field: "stored length", offset: at(FrameFormat.storedLengthOffset),
                                  reason: .invalid("an LZ4 payload must be shorter than its payload length"))
            }
            guard payload <= stored * LZ4.expansionRatioMax + 16 else {
                throw DecodeError(field: "payload length", offset: at(FrameFormat.payloadLengthOffset),
                                  reason: .invalid("\(stored) LZ4 bytes cannot expand to \(payload)"))
            }
        } else if stored != payload {
            throw DecodeError(field: "payload length", offset: at(FrameFormat.payloadLengthOffset),
                              reason: .invalid("stored length \(stored) differs from payload length \(payload) without LZ4"))
        }
        let methodID = load(FrameFormat.methodIDOffset, UInt32.self)
        let deadline = load(FrameFormat.deadlineOffset, UInt64.self)
        if kind == .request {
            guard methodID != 0 else {
                throw DecodeError(field: "method id", offset: at(FrameFormat.methodIDOffset), reason: .invalidValue(0))
            }
        } else {
            guard methodID == 0 else {
                throw DecodeError(field: "method id", offset: at(FrameFormat.methodIDOffset), reason: .invalidValue(UInt64(methodID)))
            }
            guard deadline == 0 else {
                throw DecodeError(field: "deadline", offset: at(FrameFormat.deadlineOffset), reason: .invalidValue(deadline))
            }
        }
        if kind.requiresEmptyPayload && payload != 0 {
            throw DecodeError(field: "payload length", offset: at(FrameFormat.payloadLengthOffset), reason: .invalidValue(UInt64(payload)))
        }
        return FrameHeader(
            kind: kind, flags: flags, requestID: load(FrameFormat.requestIDOffset, UInt64.self), methodID: methodID,
            storedLength: stored, payloadLength: payload, deadlineMicroseconds: deadline)
    }

    /// Decodes the frame at the front of `raw`. `baseOffset` is where `raw` starts in the
    /// connection's byte stream (for error offsets).
    public static func decode(
        _ raw: UnsafeRawBufferPointer, baseOffset: UInt64 = 0, limits: FrameLimits
    ) throws(DecodeError) -> FrameDecodeResult {
        guard let header = try decodeHeader(raw, baseOffset: baseOffset, limits: limits) else {
            return .needMore(FrameFormat.headerBytes)
        }
        let total = header.frameBytes
        guard raw.count >= total else { return .needMore(total) }
        let checksumAt = FrameFormat.headerBytes + header.storedLength
        let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: checksumAt, as: UInt64.self))
        let computed = XXH3.hash(UnsafeRawBufferPointer(rebasing: raw[0..<checksumAt]))
        guard stored == computed else {
            throw DecodeError(field: "checksum", offset: baseOffset + UInt64(checksumAt),
                              reason: .checksumMismatch(stored: stored, computed: computed))
        }
        let body = UnsafeRawBufferPointer(rebasing: raw[FrameFormat.headerBytes..<checksumAt])
        let payload: [UInt8]
        if header.flags.contains(.lz4) {
            do throws(CompressionError) {
                payload = try LZ4.decompress(body, decompressedSize: header.payloadLength, limit: limits.payloadBytesMax)
            } catch {
                throw DecodeError(field: "payload", offset: baseOffset + UInt64(FrameFormat.headerBytes), reason: .invalid(error.description))
            }
        } else {
            payload = [UInt8](body)
        }
        let frame = Frame(
            kind: header.kind, flags: header.flags, requestID: header.requestID, methodID: header.methodID,
            deadlineMicroseconds: header.deadlineMicroseconds, payload: payload)
        return .frame(frame, consumed: total)
    }

    /// Decodes exactly one frame that fills `bytes`.
    public static func decodeOne(_ bytes: [UInt8], limits: FrameLimits = FrameLimits()) throws(DecodeError) -> Frame {
        var decoder = FrameDecoder(limits: limits)
        decoder.append(bytes)
        guard let frame = try decoder.next() else {
            try decoder.finish()
            throw DecodeError(field: "frame", offset: 0, reason: .truncated(needed: FrameFormat.headerBytes, available: bytes.count))
        }
        try decoder.finish()
        return frame
    }
}
