// Reads a storage segment: verifies the footer, loads the index, filter and properties blocks,
// and serves point lookups and ordered scans. Every block read verifies its checksum and every
// decoder bounds-checks, so a corrupt segment gives `SegmentError.corruption` — never data.

import Checksum
import Compression
import FileIO
import Wire

public final class SegmentReader: @unchecked Sendable {
    public let path: String
    public let size: UInt64
    public let footer: SegmentFooter
    public let properties: SegmentProperties
    let handle: any FileHandle
    let filter: BloomFilter
    /// (last key of the block, handle), ascending.
    let index: [(key: [UInt8], handle: BlockHandle)]
    /// The index keys, flat, for binary search.
    let indexKeys: DecodedBlock
    let cache: BlockCache?
    /// Names this segment in `cache` (unique among the segments sharing the cache).
    public let cacheID: UInt64

    public init(handle: any FileHandle, cache: BlockCache? = nil, cacheID: UInt64 = 0) throws(SegmentError) {
        self.handle = handle
        self.cache = cache
        self.cacheID = cacheID
        path = handle.path
        do throws(FileIOError) { size = try handle.size() } catch { throw .io(error) }
        guard size >= UInt64(SegmentFormat.footerBytes) else {
            throw .corruption(path: handle.path, DecodeError(field: "footer", offset: 0,
                                                             reason: .truncated(needed: SegmentFormat.footerBytes, available: Int(size))))
        }
        let footerAt = size - UInt64(SegmentFormat.footerBytes)
        let footerBytes = try Self.read(handle, at: footerAt, count: SegmentFormat.footerBytes)
        do throws(DecodeError) {
            footer = try SegmentFooter.decode(footerBytes, baseOffset: footerAt)
        } catch { throw .corruption(path: handle.path, error) }
        let limit = footerAt
        // Layout: data blocks from 0, then filter, properties and index, each right after the
        // previous block's trailer, and the footer right after the index.
        let trailer = UInt64(SegmentFormat.trailerBytes)
        let layout: [(String, BlockHandle)] = [("filter", footer.filter), ("properties", footer.properties), ("index", footer.index)]
        var expectedNext = footer.filter.offset
        for (name, block) in layout {
            guard block.offset == expectedNext, Int(block.size) <= SegmentFormat.blockBytesLimit,
                  UInt64(block.size) + trailer <= limit, block.offset <= limit - UInt64(block.size) - trailer else {
                throw .corruption(path: handle.path, DecodeError(field: "footer.\(name) handle", offset: footerAt,
                                                                 reason: .invalid("\(name) block \(block.offset)+\(block.size) is out of place")))
            }
            expectedNext = block.offset + UInt64(block.size) + trailer
        }
        guard expectedNext == footerAt else {
            throw .corruption(path: handle.path, DecodeError(field: "footer.index handle", offset: footerAt,
                                                             reason: .invalid("index block does not end where the footer starts")))
        }
        let indexBytes = try Self.readBlock(handle, footer.index, fileLimit: limit, name: "index")
        let filterBytes = try Self.readBlock(handle, footer.filter, fileLimit: limit, name: "filter")
        let propertiesBytes = try Self.readBlock(handle, footer.properties, fileLimit: limit, name: "properties")
        do throws(DecodeError) {
            filter = try BloomFilter.decode(filterBytes, baseOffset: footer.filter.offset)
            properties = try SegmentProperties.decode(propertiesBytes, baseOffset: footer.properties.offset)
            let entries = try Block(indexBytes, baseOffset: footer.index.offset, order: footer.keyOrder).entries()
            indexKeys = try DecodedBlock.decode(indexBytes, baseOffset: footer.index.offset, order: footer.keyOrder)
            var index: [(key: [UInt8], handle: BlockHandle)] = []
            index.reserveCapacity(entries.count)
            var end: UInt64 = 0
            for entry in entries {
                var reader = ByteReader(Array(entry.value), baseOffset: footer.index.offset)
                let blockHandle = try BlockHandle.decode(&reader)
                guard reader.isAtEnd else { throw reader.error("index.block handle", .invalid("\(reader.remaining) trailing bytes")) }
                // Data blocks are contiguous from offset 0 up to the filter block.
                guard blockHandle.offset == end,
                      UInt64(blockHandle.size) + trailer <= footer.filter.offset - end else {
                    throw DecodeError(field: "index.block handle", offset: footer.index.offset,
                                      reason: .invalid("data block at \(blockHandle.offset)+\(blockHandle.size) is not where the previous one ended"))
                }
                end = blockHandle.offset + UInt64(blockHandle.size) + trailer
                index.append((entry.key, blockHandle))
            }
            guard end == footer.filter.offset else {
                throw DecodeError(field: "index", offset: footer.index.offset, reason: .invalid("data blocks end at \(end), the filter starts at \(footer.filter.offset)"))
            }
            guard UInt64(index.count) == properties.dataBlockCount else {
                throw DecodeError(field: "properties.data block count", offset: footer.properties.offset,
                                  reason: .invalid("index has \(index.count) blocks, properties say \(properties.dataBlockCount)"))
            }
            self.index = index
        } catch { throw .corruption(path: handle.path, error) }
    }

    static func read(_ handle: any FileHandle, at offset: UInt64, count: Int) throws(SegmentError) -> [UInt8] {
        let bytes: [UInt8]
        do throws(FileIOError) { bytes = try handle.read(at: offset, count: count) } catch { throw .io(error) }
        guard bytes.count == count else {
            throw .corruption(path: handle.path, DecodeError(field: "block", offset: offset, reason: .truncated(needed: count, available: bytes.count)))
        }
        return bytes
    }

    /// Reads, verifies and decompresses one block.
    static func readBlock(_ handle: any FileHandle, _ block: BlockHandle, fileLimit: UInt64, name: String,
                          readahead: Readahead? = nil) throws(SegmentError) -> [UInt8] {
        let total = UInt64(block.size) + UInt64(SegmentFormat.trailerBytes)
        guard block.offset <= fileLimit, total <= fileLimit - block.offset else {
            throw .corruption(path: handle.path, DecodeError(field: "\(name) handle", offset: block.offset,
                                                             reason: .invalid("block \(block.offset)+\(total) runs past the end of the data")))
        }
        let bytes: [UInt8]
        if let readahead {
            bytes = try readahead.read(handle, at: block.offset, count: Int(total), limit: fileLimit)
        } else {
            bytes = try read(handle, at: block.offset, count: Int(total))
        }
        let size = Int(block.size)
        let stored = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: size + 5, as: UInt64.self)) }
        let computed = XXH3.hash(bytes, range: 0..<(size + 5))
        guard stored == computed else {
            throw .corruption(path: handle.path, DecodeError(field: "\(name) block checksum", offset: block.offset + UInt64(size + 5),
                                                             reason: .checksumMismatch(stored: stored, computed: computed)))
        }
        let kind = bytes[size]
        let rawLength = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: size + 1, as: UInt32.self))) }
        guard rawLength <= SegmentFormat.blockBytesLimit else {
            throw .corruption(path: handle.path, DecodeError(field: "\(name) block length", offset: block.offset + UInt64(size + 1),
                                                             reason: .tooLarge(value: UInt64(rawLength), limit: UInt64(SegmentFormat.blockBytesLimit))))
        }
        switch BlockCompression(rawValue: kind) {
        case .plain:
            guard rawLength == size else {
                throw .corruption(path: handle.path, DecodeError(field: "\(name) block length", offset: block.offset + UInt64(size + 1),
                                                                 reason: .invalid("uncompressed block of \(size) bytes says \(rawLength)")))
            }
            return Array(bytes[..<size])
        case .lz4:
            do throws(CompressionError) {
                return try LZ4.decompress(bytes[..<size], decompressedSize: rawLength, limit: SegmentFormat.blockBytesLimit)
            } catch {
                throw .corruption(path: handle.path, DecodeError(field: "\(name) block", offset: block.offset, reason: .invalid(error.description)))
            }
        case nil:
            throw .corruption(path: handle.path, DecodeError(field: "\(name) block compression", offset: block.offset + UInt64(size),
                                                             reason: .invalidValue(UInt64(kind))))
        }
    }

    func dataBlock(_ position: Int) throws(SegmentError) -> Block {
        let bytes = try Self.readBlock(handle, index[position].handle, fileLimit: footer.filter.offset, name: "data")
        do throws(DecodeError) {
            return try Block(bytes, baseOffset: index[position].handle.offset, order: footer.keyOrder)
        } catch { throw .corruption(path: path, error) }
    }

    public var blockCount: Int { index.count }

    /// Closes the file. The reader must not be used afterwards.
    public func close() { handle.close() }

    /// False when the segment certainly holds no entry whose filter hash is `filterHash`.
    public func mayContain(filterHash: UInt64) -> Bool { filter.mayContain(hash: filterHash) }

    /// Data block `position`, verified and decoded, from the cache when there. Checks that the
    /// block is non-empty, ends with its index key and starts after the previous block's.
    /// `fillCache: false` for one-off bulk reads (compaction) that would only evict what
    /// readers need; `readahead` for sequential scans.
    public func decodedBlock(_ position: Int, fillCache: Bool = true, readahead: Readahead? = nil) throws(SegmentError) -> DecodedBlock {
        let key = BlockCache.Key(segment: cacheID, offset: index[position].handle.offset)
        if let cache, let hit = cache.lookup(key) { return hit }
        let bytes = try Self.readBlock(handle, index[position].handle, fileLimit: footer.filter.offset, name: "data", readahead: readahead)
        let decoded: DecodedBlock
        do throws(DecodeError) { decoded = try DecodedBlock.decode(bytes, baseOffset: index[position].handle.offset, order: footer.keyOrder) } catch {
            throw .corruption(path: path, error)
        }
        guard decoded.count > 0, decoded.compareKey(decoded.count - 1, index[position].key) == 0,
              position == 0 || decoded.compareKey(0, index[position - 1].key) > 0 else {
            throw .corruption(path: path, DecodeError(field: "index", offset: index[position].handle.offset,
                                                      reason: .invalid("data block \(position) does not match its index entry")))
        }
        if fillCache { cache?.insert(key, decoded) }
        return decoded
    }

    /// The value stored for `key`, or nil. Consults the Bloom filter first.
    public func get(_ key: [UInt8]) throws(SegmentError) -> [UInt8]? {
        guard filter.mayContain(hash: footer.keyOrder.filterHash(key)) else { return nil }
        guard let position = firstBlock(atLeast: key) else { return nil }
        let block = try dataBlock(position)
        do throws(DecodeError) {
            guard let entry = try block.seek(key), entry.key == key else { return nil }
            return Array(entry.value)
        } catch { throw .corruption(path: path, error) }
    }

    /// Index of the first data block whose last key is ≥ `key`.
    public func firstBlock(atLeast key: [UInt8]) -> Int? {
        let low = indexKeys.lowerBound(key)
        return low < index.count ? low : nil
    }

    /// Entries with keys in `range` (lower inclusive, upper exclusive; nil = unbounded), in
    /// ascending order, or descending when `reverse`.
    public func scan(from lower: [UInt8]? = nil, to upper: [UInt8]? = nil, reverse: Bool = false) throws(SegmentError) -> [(key: [UInt8], value: [UInt8])] {
        var out: [(key: [UInt8], value: [UInt8])] = []
        let start = lower.flatMap { firstBlock(atLeast: $0) } ?? (lower == nil ? 0 : index.count)
        var position = start
        var previousLast: [UInt8]? = position > 0 ? index[position - 1].key : nil
        blocks: while position < index.count {
            let block = try dataBlock(position)
            let entries: [Block.Entry]
            do throws(DecodeError) { entries = try block.entries() } catch { throw .corruption(path: path, error) }
            // Each block is non-empty, ends with its index key, and starts after the previous one.
            guard let firstEntry = entries.first, entries.last!.key == index[position].key,
                  previousLast.map({ footer.keyOrder.compare($0, firstEntry.key) < 0 }) ?? true else {
                throw .corruption(path: path, DecodeError(field: "index", offset: index[position].handle.offset,
                                                          reason: .invalid("data block \(position) does not match its index entry")))
            }
            previousLast = entries.last!.key
            for entry in entries {
                if let lower, footer.keyOrder.compare(entry.key, lower) < 0 { continue }
                if let upper, footer.keyOrder.compare(entry.key, upper) >= 0 { break blocks }
                out.append((entry.key, Array(entry.value)))
            }
            position += 1
        }
        return reverse ? out.reversed() : out
    }
}

extension SegmentReader {
    public struct DataBlockSummary: Sendable {
        public var handle: BlockHandle
        public var compression: BlockCompression
        public var rawBytes: Int
        public var entries: Int
        public var lastKey: [UInt8]
    }

    /// Reads and checks every data block (for `vectron-tool dump`).
    public func dataBlockSummaries() -> [Result<DataBlockSummary, SegmentError>] {
        (0..<index.count).map { position in
            Result { () throws(SegmentError) -> DataBlockSummary in
                let block = try dataBlock(position)
                let entries: [Block.Entry]
                do throws(DecodeError) { entries = try block.entries() } catch { throw .corruption(path: path, error) }
                let stored = try Self.read(handle, at: index[position].handle.offset + UInt64(index[position].handle.size), count: 1)
                return DataBlockSummary(handle: index[position].handle, compression: BlockCompression(rawValue: stored[0]) ?? .plain,
                                        rawBytes: block.bytes.count, entries: entries.count, lastKey: index[position].key)
            }
        }
    }
}

/// Reads ahead for a sequential scan: one large read serves the following blocks, instead of
/// one read per 4 KiB block. Grows from 16 KiB to 256 KiB while the scan stays sequential.
public final class Readahead {
    var start: UInt64 = 0
    var buffer: [UInt8] = []
    var size = 16 << 10
    static let sizeMax = 256 << 10

    public init() {}

    func read(_ handle: any FileHandle, at offset: UInt64, count: Int, limit: UInt64) throws(SegmentError) -> [UInt8] {
        if offset >= start, offset + UInt64(count) <= start + UInt64(buffer.count) {
            let from = Int(offset - start)
            return Array(buffer[from..<(from + count)])
        }
        if !buffer.isEmpty && offset == start + UInt64(buffer.count) { size = min(Self.sizeMax, size * 2) }
        let length = Int(min(UInt64(max(size, count)), limit - offset))
        buffer = try SegmentReader.read(handle, at: offset, count: length)
        start = offset
        return Array(buffer[0..<count])
    }
}
