// The RPC frame layout (Format/rpc.md, version 1). These constants, offsets and kinds are the
// format: a version 1 byte never changes meaning. A new protocol version may add kinds, flags
// and error codes, and is negotiated by the handshake (§5 of the spec).
//
//   offset size type   field
//        0    4 bytes  magic "VRPC"
//        4    1 u8     version (1)
//        5    1 u8     kind (FrameKind)
//        6    2 u16    flags (bit 0: payload is one LZ4 block)
//        8    8 u64    request id
//       16    4 u32    method id (requests only, else 0)
//       20    4 u32    stored length (payload bytes on the wire)
//       24    4 u32    payload length (after decompression)
//       28    8 u64    deadline: remaining budget in microseconds (requests only; 0 = none)
//       36    n bytes  stored payload
//     36+n    8 u64    checksum: XXH3-64 (seed 0) of bytes [0, 36+n)

public enum FrameFormat {
    /// "VRPC" in ASCII.
    public static let magic: [UInt8] = [0x56, 0x52, 0x50, 0x43]
    public static let version: UInt8 = 1
    public static let headerBytes = 36
    public static let trailerBytes = 8
    /// Header plus trailer: the bytes a frame costs besides its payload.
    public static let overheadBytes = headerBytes + trailerBytes

    public static let versionOffset = 4
    public static let kindOffset = 5
    public static let flagsOffset = 6
    public static let requestIDOffset = 8
    public static let methodIDOffset = 16
    public static let storedLengthOffset = 20
    public static let payloadLengthOffset = 24
    public static let deadlineOffset = 28

    /// The largest payload limit a peer may configure (the length fields are u32; this keeps a
    /// whole frame far below 2^31 bytes).
    public static let payloadBytesLimitMax = 1 << 30
    /// Receivers treat a request budget above this (30 days) as this.
    public static let deadlineMicrosecondsMax: UInt64 = 30 * 86_400 * 1_000_000
    /// Default bound on a frame's payload, before and after decompression.
    public static let payloadBytesDefault = 16 << 20
}

/// What a frame is. Values are stored in the `kind` byte and never change meaning.
public enum FrameKind: UInt8, Sendable, CaseIterable {
    case request = 1
    case response = 2
    case error = 3
    case streamChunk = 4
    case streamEnd = 5
    case cancel = 6
    case ping = 7
    case pong = 8
    case handshake = 9
    case handshakeAccepted = 10

    /// Kinds whose payload must be empty.
    public var requiresEmptyPayload: Bool {
        switch self {
        case .streamEnd, .cancel, .ping, .pong: return true
        default: return false
        }
    }
}

/// Frame flags (the u16 at offset 6). Bits not listed here must be zero in version 1.
public struct FrameFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The stored payload is one LZ4 block that expands to `payload length` bytes.
    public static let lz4 = FrameFlags(rawValue: 1 << 0)

    public static let known: FrameFlags = [.lz4]
}

/// Limits a decoder enforces before it buffers or allocates anything.
extension FrameFormat {
    /// The largest payload a server reads before the handshake succeeded (a handshake is at
    /// most ~4.1 KiB: its fields and a credential of ≤ 4096 bytes).
    public static let handshakeBytesMax = 16 << 10
}

public struct FrameLimits: Sendable, Equatable {
    /// Bound on both the stored and the decompressed payload length.
    public var payloadBytesMax: Int

    public init(payloadBytesMax: Int = FrameFormat.payloadBytesDefault) {
        precondition(payloadBytesMax >= 0 && payloadBytesMax <= FrameFormat.payloadBytesLimitMax, "payloadBytesMax out of range")
        self.payloadBytesMax = payloadBytesMax
    }

    /// The most bytes one frame can occupy on the wire under these limits.
    public var frameBytesMax: Int { payloadBytesMax + FrameFormat.overheadBytes }
}
