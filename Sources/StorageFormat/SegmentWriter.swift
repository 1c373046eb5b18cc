// Builds a storage segment from entries added in strictly increasing key order, streaming it to
// a file. Data blocks are cut at `blockBytes`, LZ4-compressed when that saves at least 1/8, and
// each gets a checksummed trailer; then the filter, properties and index blocks and the footer.
// The caller syncs the file (and its directory) before recording it in a manifest.

import Checksum
import Compression
import FileIO
import Wire

public struct SegmentWriterOptions: Sendable {
    /// Target uncompressed size of a data block.
    public var blockBytes = 4096
    public var restartInterval = 16
    public var bloomBitsPerKey = 10
    public var compression: BlockCompression = .lz4
    public var keyOrder: KeyOrder = .bytewise
    public init() {}
}

public enum SegmentError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(FileIOError)
    /// The caller passed an entry the format cannot hold (a value over `valueBytesLimit`).
    case invalidArgument(String)
    /// The bytes are not a valid segment: a checksum, length or structural rule failed.
    case corruption(path: String, DecodeError)

    public var description: String {
        switch self {
        case let .io(error): return "segment I/O error: \(error)"
        case let .invalidArgument(text): return "invalid argument: \(text)"
        case let .corruption(path, error): return "segment corruption in \(path): \(error)"
        }
    }
}

public final class SegmentWriter {
    public let options: SegmentWriterOptions
    let handle: any FileHandle
    var pendingOutput: [UInt8] = []
    var offset: UInt64 = 0
    var dataBlock: BlockBuilder
    var indexBlock: BlockBuilder
    var keyHashes: [UInt64] = []
    public private(set) var properties = SegmentProperties()
    var lastKey: [UInt8] = []
    var hasLastKey = false
    /// Key bytes a reader will materialise when decoding the current data block.
    var blockDecodedKeyBytes = 0
    let fileHash = XXH3Stream()
    /// XXH3-64 of the whole file, set by `finish` (a manifest records it).
    public private(set) var fileChecksum: UInt64 = 0

    /// Largest value an entry may carry (a block holding it must stay under the format's
    /// block limit).
    public static let valueBytesLimit = 16 << 20

    /// Output flushed to the file once it exceeds this.
    static let outputBufferBytes = 1 << 20

    public init(handle: any FileHandle, options: SegmentWriterOptions = SegmentWriterOptions()) {
        self.handle = handle
        self.options = options
        dataBlock = BlockBuilder(restartInterval: options.restartInterval, order: options.keyOrder)
        indexBlock = BlockBuilder(restartInterval: 1, order: options.keyOrder)
    }

    /// Bytes the file will have if finished now (about: the open block is counted uncompressed).
    public var estimatedFileBytes: UInt64 { offset + UInt64(dataBlock.estimatedBytes) }

    /// Adds an entry. Keys must be strictly increasing (a programmer error otherwise).
    /// The Bloom filter records `options.keyOrder.filterHash(key)`.
    public func add(key: [UInt8], value: [UInt8]) throws(SegmentError) {
        var failure: SegmentError?
        key.withUnsafeBufferPointer { key in
            value.withUnsafeBufferPointer { value in
                do throws(SegmentError) { try add(key: key, value: value) } catch { failure = error }
            }
        }
        if let failure { throw failure }
    }

    /// Adds an entry from borrowed bytes (copied; nothing is kept).
    public func add(key: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) throws(SegmentError) {
        if hasLastKey {
            lastKey.withUnsafeBufferPointer { last in
                precondition(options.keyOrder.compare(last, key) < 0, "segment keys must be strictly increasing")
            }
        }
        precondition(options.keyOrder.allowsKeyLength(key.count), "key too short for the segment's key order")
        precondition(key.count <= Block.keyBytesLimit, "key longer than \(Block.keyBytesLimit) bytes")
        guard value.count <= Self.valueBytesLimit else {
            throw .invalidArgument("value of \(value.count) bytes exceeds \(Self.valueBytesLimit)")
        }
        // Keep every block within what readers agree to decode (see Block.decodedKeyBytesLimit).
        if !dataBlock.isEmpty && blockDecodedKeyBytes + key.count
            > Block.decodedKeyBytesLimit(blockBytes: dataBlock.estimatedBytes) {
            try finishDataBlock()
        }
        if properties.entryCount == 0 { properties.smallestKey = Array(key) }
        properties.entryCount += 1
        properties.rawKeyBytes += UInt64(key.count)
        properties.rawValueBytes += UInt64(value.count)
        let hash = options.keyOrder.filterHash(key)
        if keyHashes.last != hash { keyHashes.append(hash) }
        dataBlock.add(key: key, value: value)
        blockDecodedKeyBytes += key.count
        lastKey.removeAll(keepingCapacity: true)
        lastKey.append(contentsOf: key)
        hasLastKey = true
        if dataBlock.estimatedBytes >= options.blockBytes { try finishDataBlock() }
    }

    func finishDataBlock() throws(SegmentError) {
        guard !dataBlock.isEmpty else { return }
        blockDecodedKeyBytes = 0
        let lastKey = dataBlock.lastAddedKey
        let handle = try writeBlock(dataBlock.finish(), compression: options.compression)
        var value = ByteWriter(capacity: 12)
        handle.encode(into: &value)
        indexBlock.add(key: lastKey, value: value.bytes[...])
        properties.dataBlockCount += 1
    }

    /// Writes a block with its trailer; returns its handle.
    func writeBlock(_ raw: [UInt8], compression: BlockCompression) throws(SegmentError) -> BlockHandle {
        var stored = raw
        var kind = BlockCompression.plain
        if compression == .lz4, raw.count >= 64, let compressed = try? LZ4.compress(raw),
           compressed.count <= raw.count - raw.count / 8 {
            stored = compressed
            kind = .lz4
        }
        let handle = BlockHandle(offset: offset, size: UInt32(stored.count))
        var trailer = ByteWriter(capacity: SegmentFormat.trailerBytes)
        trailer.write(kind.rawValue)
        trailer.write(UInt32(raw.count))
        let start = pendingOutput.count
        pendingOutput.append(contentsOf: stored)
        pendingOutput.append(contentsOf: trailer.bytes)
        let checksum = XXH3.hash(pendingOutput, range: start..<pendingOutput.count)
        withUnsafeBytes(of: checksum.littleEndian) { pendingOutput.append(contentsOf: $0) }
        offset += UInt64(stored.count + SegmentFormat.trailerBytes)
        if pendingOutput.count >= Self.outputBufferBytes { try flushOutput() }
        return handle
    }

    func flushOutput() throws(SegmentError) {
        guard !pendingOutput.isEmpty else { return }
        let at = offset - UInt64(pendingOutput.count)
        do throws(FileIOError) { try handle.write(at: at, pendingOutput) } catch { throw .io(error) }
        fileHash.update(pendingOutput)
        pendingOutput.removeAll(keepingCapacity: true)
    }

    /// Writes the remaining blocks and the footer; returns the file size and properties.
    /// `configure` may fill engine-level properties (sequence range, applied indexes).
    public func finish(_ configure: (inout SegmentProperties) -> Void = { _ in }) throws(SegmentError) -> (bytes: UInt64, properties: SegmentProperties) {
        try finishDataBlock()
        if hasLastKey { properties.largestKey = lastKey }
        // The caller sets engine-level fields; the counts and key range stay the writer's.
        let counted = properties
        configure(&properties)
        properties.entryCount = counted.entryCount
        properties.dataBlockCount = counted.dataBlockCount
        properties.rawKeyBytes = counted.rawKeyBytes
        properties.rawValueBytes = counted.rawValueBytes
        properties.smallestKey = counted.smallestKey
        properties.largestKey = counted.largestKey
        let filter = try writeBlock(BloomFilter(hashes: keyHashes, bitsPerKey: options.bloomBitsPerKey).encode(), compression: .plain)
        let props = try writeBlock(properties.encode(), compression: .plain)
        let index = try writeBlock(indexBlock.finish(), compression: .plain)
        pendingOutput.append(contentsOf: SegmentFooter(index: index, filter: filter, properties: props, keyOrder: options.keyOrder).encode())
        offset += UInt64(SegmentFormat.footerBytes)
        try flushOutput()
        fileChecksum = fileHash.digest
        return (offset, properties)
    }
}
