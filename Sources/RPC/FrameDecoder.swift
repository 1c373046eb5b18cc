// Incremental frame decoding over byte arrays: append bytes as they arrive, take frames out.
// Used by tests, fuzzers and tools; the SwiftNIO transport runs the same `FrameCodec` rules over
// its own buffers.
//
// Invariant: the decoder never buffers more than one frame's worth of bytes beyond what the
// caller appended, and it never allocates for a frame before its header passed the limits.
// After an error it stays failed: a byte stream cannot be resynchronised once a frame is bad.

import Wire

public struct FrameDecoder: Sendable {
    public let limits: FrameLimits
    var buffer: [UInt8] = []
    /// Index in `buffer` of the next undecoded byte.
    var start = 0
    /// Absolute stream offset of `buffer[start]`.
    public private(set) var streamOffset: UInt64 = 0
    var failure: DecodeError?

    public init(limits: FrameLimits = FrameLimits()) {
        self.limits = limits
    }

    /// Bytes appended but not yet returned as frames.
    public var bufferedBytes: Int { buffer.count - start }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil if more bytes are needed.
    public mutating func next() throws(DecodeError) -> Frame? {
        if let failure { throw failure }
        let begin = start
        let base = streamOffset
        let limits = self.limits
        let result: Result<FrameDecodeResult, DecodeError> = buffer.withUnsafeBytes { raw in
            do throws(DecodeError) {
                return .success(try FrameCodec.decode(UnsafeRawBufferPointer(rebasing: raw[begin...]), baseOffset: base, limits: limits))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .failure(let error):
            failure = error
            throw error
        case .success(.needMore):
            return nil
        case .success(.frame(let frame, let consumed)):
            start += consumed
            streamOffset += UInt64(consumed)
            return frame
        }
    }

    /// Declares the end of the stream: bytes of an incomplete frame left over are an error.
    public mutating func finish() throws(DecodeError) {
        if let failure { throw failure }
        if bufferedBytes > 0 {
            var needed = FrameFormat.headerBytes
            if case .needMore(let count)? = try? buffer.withUnsafeBytes({ raw throws(DecodeError) in
                try FrameCodec.decode(UnsafeRawBufferPointer(rebasing: raw[start...]), baseOffset: streamOffset, limits: limits)
            }) {
                needed = count
            }
            let error = DecodeError(field: "frame", offset: streamOffset, reason: .truncated(needed: needed, available: bufferedBytes))
            failure = error
            throw error
        }
    }
}
