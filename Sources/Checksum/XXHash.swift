// xxHash over libxxhash. XXH3-64 uses the runtime-dispatched variant (AVX2/AVX-512 picked at
// run time, 5–20× faster than the portable one here); XXH64 is kept for formats that name it.
//
// Every checksum in Vectron's formats is XXH3-64 with seed 0 unless the format spec says otherwise.

import CXXHash

public enum XXH3 {
    @inlinable
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits_dispatch(bytes.baseAddress, bytes.count)
    }

    @inlinable
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        XXH3_64bits_withSeed_dispatch(bytes.baseAddress, bytes.count, seed)
    }

    @inlinable
    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash($0) }
    }

    @inlinable
    public static func hash(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.withUnsafeBytes { hash($0) }
    }

    /// Hash of `bytes[range]` without copying.
    @inlinable
    public static func hash(_ bytes: [UInt8], range: Range<Int>) -> UInt64 {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "hash range out of bounds")
        return bytes.withUnsafeBytes { hash(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }
}

public enum XXH64 {
    @inlinable
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        CXXHash.XXH64(bytes.baseAddress, bytes.count, seed)
    }

    @inlinable
    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }
}

/// XXH3-64 over data that arrives in pieces: the same value as `XXH3.hash` of the concatenation.
public final class XXH3Stream {
    let state: OpaquePointer

    public init() {
        guard let state = XXH3_createState() else { fatalError("XXH3_createState: out of memory") }
        self.state = state
        XXH3_64bits_reset(state)
    }

    deinit { XXH3_freeState(state) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        _ = XXH3_64bits_update_dispatch(state, bytes.baseAddress, bytes.count)
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public var digest: UInt64 { XXH3_64bits_digest(state) }
}
