// LZ4 block compression over liblz4.
//
// Decompression treats its input as hostile: it uses `LZ4_decompress_safe` (never reads or
// writes out of bounds), refuses a claimed size above the caller's limit or above what LZ4's
// maximum ratio allows for the input length (so a tiny input cannot make us allocate a huge
// buffer), and requires the output to be exactly the claimed size.

import CLZ4

public struct CompressionError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// The claimed decompressed size exceeds the caller's limit.
        case sizeExceedsLimit(size: Int, limit: Int)
        /// The claimed decompressed size is impossible for an input this short.
        case impossibleRatio(compressed: Int, claimed: Int)
        /// liblz4 rejected the input as malformed.
        case malformedInput
        /// The input decompressed to a different size than claimed.
        case sizeMismatch(claimed: Int, actual: Int)
        /// The input is larger than LZ4 can compress (about 2 GiB).
        case inputTooLarge(Int)
    }
    public let kind: Kind

    public var description: String {
        switch kind {
        case let .sizeExceedsLimit(size, limit): return "LZ4: decompressed size \(size) exceeds limit \(limit)"
        case let .impossibleRatio(compressed, claimed):
            return "LZ4: \(compressed) compressed bytes cannot expand to \(claimed)"
        case .malformedInput: return "LZ4: malformed compressed block"
        case let .sizeMismatch(claimed, actual): return "LZ4: block decompressed to \(actual) bytes, header says \(claimed)"
        case let .inputTooLarge(size): return "LZ4: input of \(size) bytes is too large"
        }
    }
}

public enum LZ4 {
    /// LZ4's worst-case expansion factor: one literal-run byte can describe at most 255 bytes of
    /// a match, so no valid block expands more than this.
    public static let expansionRatioMax = 255

    /// Upper bound of the compressed size of `count` input bytes.
    public static func compressBound(_ count: Int) -> Int {
        Int(LZ4_compressBound(Int32(clamping: count)))
    }

    /// Compresses `input` into a new LZ4 block.
    public static func compress(_ input: UnsafeRawBufferPointer) throws(CompressionError) -> [UInt8] {
        guard input.count <= Int(LZ4_MAX_INPUT_SIZE) else { throw CompressionError(kind: .inputTooLarge(input.count)) }
        let bound = compressBound(input.count)
        if input.count == 0 { return [] }
        return [UInt8](unsafeUninitializedCapacity: bound) { buffer, initialized in
            let written = LZ4_compress_default(
                input.baseAddress!.assumingMemoryBound(to: CChar.self),
                UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self),
                Int32(input.count), Int32(bound))
            initialized = Int(max(0, written))
        }
    }

    public static func compress(_ input: [UInt8]) throws(CompressionError) -> [UInt8] {
        try withBytes(input) { (raw) throws(CompressionError) in try compress(raw) }
    }

    public static func compress(_ input: ArraySlice<UInt8>) throws(CompressionError) -> [UInt8] {
        try withBytes(input) { (raw) throws(CompressionError) in try compress(raw) }
    }

    /// Runs a typed-throwing body over the bytes of an array or slice.
    static func withBytes<Bytes: Sequence<UInt8>>(
        _ input: Bytes, _ body: (UnsafeRawBufferPointer) throws(CompressionError) -> [UInt8]
    ) throws(CompressionError) -> [UInt8] {
        var result: Result<[UInt8], CompressionError> = .success([])
        let ran: Void? = input.withContiguousStorageIfAvailable { buffer in
            do throws(CompressionError) { result = .success(try body(UnsafeRawBufferPointer(buffer))) }
            catch { result = .failure(error) }
        }
        if ran == nil {
            let copy = Array(input)
            copy.withUnsafeBytes { raw in
                do throws(CompressionError) { result = .success(try body(raw)) } catch { result = .failure(error) }
            }
        }
        return try result.get()
    }

    /// Decompresses an LZ4 block that must expand to exactly `decompressedSize` bytes, which may
    /// not exceed `limit`.
    public static func decompress(
        _ input: UnsafeRawBufferPointer, decompressedSize: Int, limit: Int
    ) throws(CompressionError) -> [UInt8] {
        guard decompressedSize >= 0, decompressedSize <= limit else {
            throw CompressionError(kind: .sizeExceedsLimit(size: decompressedSize, limit: limit))
        }
        if decompressedSize == 0 {
            // An empty block compresses to a single zero token.
            if input.count == 1 && input[0] == 0 { return [] }
            if input.isEmpty { return [] }
            throw CompressionError(kind: .malformedInput)
        }
        guard !input.isEmpty else { throw CompressionError(kind: .malformedInput) }
        guard input.count <= Int(Int32.max),
              decompressedSize <= input.count &* expansionRatioMax &+ 16 else {
            throw CompressionError(kind: .impossibleRatio(compressed: input.count, claimed: decompressedSize))
        }
        var produced: Int32 = 0
        let output = [UInt8](unsafeUninitializedCapacity: decompressedSize) { buffer, initialized in
            produced = LZ4_decompress_safe(
                input.baseAddress!.assumingMemoryBound(to: CChar.self),
                UnsafeMutableRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self),
                Int32(input.count), Int32(decompressedSize))
            // Zero-fill on failure so no uninitialised memory is ever exposed.
            if produced < 0 {
                buffer.initialize(repeating: 0)
                initialized = decompressedSize
            } else {
                initialized = Int(produced)
            }
        }
        guard produced >= 0 else { throw CompressionError(kind: .malformedInput) }
        guard Int(produced) == decompressedSize else {
            throw CompressionError(kind: .sizeMismatch(claimed: decompressedSize, actual: Int(produced)))
        }
        return output
    }

    public static func decompress(
        _ input: [UInt8], decompressedSize: Int, limit: Int
    ) throws(CompressionError) -> [UInt8] {
        try withBytes(input) { (raw) throws(CompressionError) in
            try decompress(raw, decompressedSize: decompressedSize, limit: limit)
        }
    }

    public static func decompress(
        _ input: ArraySlice<UInt8>, decompressedSize: Int, limit: Int
    ) throws(CompressionError) -> [UInt8] {
        try withBytes(input) { (raw) throws(CompressionError) in
            try decompress(raw, decompressedSize: decompressedSize, limit: limit)
        }
    }
}

