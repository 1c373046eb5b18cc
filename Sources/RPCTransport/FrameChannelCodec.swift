// The frame codec as SwiftNIO handlers: `FrameByteDecoder` (under `ByteToMessageHandler`) and
// `FrameByteEncoder` (under `MessageToByteHandler`). Both run `FrameCodec`'s rules directly over
// NIO's buffers, so the transport and the byte-array decoder cannot disagree.
//
// The decoder checks a frame's header against the limits as soon as 36 bytes are in, so an
// oversized length is refused before NIO buffers the frame's body. Its errors are the
// `DecodeError`s of `FrameCodec`, with offsets counted from the start of the connection.

import NIOCore
import RPC
import Wire

/// The limits a connection's decoder applies, changeable while it runs: a server reads the
/// handshake under small limits and raises them once the peer is authenticated, so an
/// unauthenticated peer cannot make it buffer large frames. Used on the channel's event loop only.
public final class FrameLimitGate: @unchecked Sendable {
    public var limits: FrameLimits

    public init(_ limits: FrameLimits) { self.limits = limits }
}

public struct FrameByteDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Frame

    public let gate: FrameLimitGate
    public var limits: FrameLimits { gate.limits }
    /// Bytes of the connection consumed so far (for error offsets).
    var streamOffset: UInt64 = 0

    public init(limits: FrameLimits) {
        gate = FrameLimitGate(limits)
    }

    public init(gate: FrameLimitGate) {
        self.gate = gate
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let base = streamOffset
        let limits = gate.limits
        let result = try buffer.withUnsafeReadableBytes { raw in
            try FrameCodec.decode(raw, baseOffset: base, limits: limits)
        }
        switch result {
        case .needMore:
            return .needMoreData
        case .frame(let frame, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            streamOffset += UInt64(consumed)
            context.fireChannelRead(Self.wrapInboundOut(frame))
            return .continue
        }
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Frames that arrived complete are still delivered; a partial frame at the end of the
        // connection is dropped with it.
        while case .continue = try decode(context: context, buffer: &buffer) {}
        return .needMoreData
    }
}

public struct FrameByteEncoder: MessageToByteEncoder {
    public typealias OutboundIn = Frame

    public init() {}

    public func encode(data frame: Frame, out: inout ByteBuffer) throws {
        let (flags, stored) = FrameCodec.storedPayload(of: frame)
        let size = stored.count + FrameFormat.overheadBytes
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            FrameCodec.write(frame, flags: flags, stored: stored, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<size]))
            return size
        }
    }
}

extension ChannelPipeline.SynchronousOperations {
    /// Adds the frame decoder and encoder: the handlers after them read and write `Frame`s.
    public func addFrameCodec(limits: FrameLimits) throws {
        try addFrameCodec(gate: FrameLimitGate(limits))
    }

    /// The same, with limits the handlers after it may change (`FrameLimitGate`).
    public func addFrameCodec(gate: FrameLimitGate) throws {
        try addHandler(ByteToMessageHandler(FrameByteDecoder(gate: gate)))
        try addHandler(MessageToByteHandler(FrameByteEncoder()))
    }
}

/// Maps a decoder failure to the error frame that tells the peer why its connection is closed.
func connectionError(for decodeError: DecodeError) -> RPCError {
    if case .tooLarge = decodeError.reason {
        return .resourceExhausted("frame refused: \(decodeError)")
    }
    return .invalidArgument("malformed frame: \(decodeError)")
}

extension TimeAmount {
    /// The duration in nanoseconds, saturating instead of overflowing.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow {
            self = .nanoseconds(seconds < 0 ? .min : .max)
        } else {
            let (sum, overflowed) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
            self = .nanoseconds(overflowed ? (seconds < 0 ? .min : .max) : sum)
        }
    }
}
