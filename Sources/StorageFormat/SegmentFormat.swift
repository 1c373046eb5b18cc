// Byte layout of a storage segment (sorted string table) — normative spec: Format/segment.md.
// NEVER CHANGE the meaning of a version-1 field; new versions add, readers keep old ones.
//
//   [data block][trailer] … [filter block][trailer] [properties block][trailer]
//   [index block][trailer] [footer, 64 bytes]
//
// Every block is followed by a 13-byte trailer: u8 compression, u32 uncompressed length,
// u64 XXH3-64 over the stored block bytes and the trailer's first 5 bytes. The footer carries
// the handles of the index, filter and properties blocks, the version, the magic and its own
// checksum.

import Checksum
import Wire

public enum SegmentFormat {
    /// "VECTRSEG" in ASCII.
    public static let magic: [UInt8] = Array("VECTRSEG".utf8)
    public static let version: UInt16 = 1
    public static let footerBytes = 64
    public static let trailerBytes = 13
    /// Decoders refuse blocks larger than this (stored or uncompressed).
    public static let blockBytesLimit = 64 << 20

    public enum FooterField {
        public static let indexOffset = 0, indexSize = 8, filterOffset = 12, filterSize = 20,
            propertiesOffset = 24, propertiesSize = 32, version = 36, reserved16 = 38, magic = 40,
            reserved64 = 48, checksum = 56
    }
}

public enum BlockCompression: UInt8, Sendable {
    case plain = 0
    case lz4 = 1
}

/// Where a block sits in the file: offset and stored size (without the trailer).
public struct BlockHandle: Equatable, Hashable, Sendable {
    public var offset: UInt64
    public var size: UInt32

    public init(offset: UInt64, size: UInt32) {
        self.offset = offset
        self.size = size
    }

    /// As stored in index entries: two varints.
    public func encode(into writer: inout ByteWriter) {
        writer.writeVarint(offset)
        writer.writeVarint(UInt64(size))
    }

    public static func decode(_ reader: inout ByteReader) throws(DecodeError) -> BlockHandle {
        let offset = try reader.readVarint("block handle.offset")
        let sizeAt = reader.absoluteOffset
        let size = try reader.readVarint("block handle.size")
        guard size <= UInt64(SegmentFormat.blockBytesLimit) else {
            throw DecodeError(field: "block handle.size", offset: sizeAt, reason: .tooLarge(value: size, limit: UInt64(SegmentFormat.blockBytesLimit)))
        }
        return BlockHandle(offset: offset, size: UInt32(size))
    }
}

public struct SegmentFooter: Equatable, Sendable {
    public var index: BlockHandle
    public var filter: BlockHandle
    public var properties: BlockHandle
    public var keyOrder: KeyOrder

    public init(index: BlockHandle, filter: BlockHandle, properties: BlockHandle, keyOrder: KeyOrder = .bytewise) {
        self.index = index
        self.filter = filter
        self.properties = properties
        self.keyOrder = keyOrder
    }

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: SegmentFormat.footerBytes)
        writer.write(index.offset)
        writer.write(index.size)
        writer.write(filter.offset)
        writer.write(filter.size)
        writer.write(properties.offset)
        writer.write(properties.size)
        writer.write(SegmentFormat.version)
        writer.write(keyOrder.rawValue)
        writer.write(bytes: SegmentFormat.magic)
        writer.write(UInt64(0))
        writer.write(XXH3.hash(writer.bytes))
        return writer.finish()
    }

    /// Decodes the 64-byte footer; `baseOffset` is where it sits in the file.
    public static func decode(_ bytes: [UInt8], baseOffset: UInt64) throws(DecodeError) -> SegmentFooter {
        guard bytes.count == SegmentFormat.footerBytes else {
            throw DecodeError(field: "footer", offset: baseOffset, reason: .truncated(needed: SegmentFormat.footerBytes, available: bytes.count))
        }
        let f = SegmentFormat.FooterField.self
        guard bytes[f.magic..<(f.magic + 8)].elementsEqual(SegmentFormat.magic) else {
            throw DecodeError(field: "footer.magic", offset: baseOffset + UInt64(f.magic), reason: .badMagic)
        }
        let stored = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: f.checksum, as: UInt64.self)) }
        let computed = XXH3.hash(bytes, range: 0..<f.checksum)
        guard stored == computed else {
            throw DecodeError(field: "footer.checksum", offset: baseOffset + UInt64(f.checksum), reason: .checksumMismatch(stored: stored, computed: computed))
        }
        var reader = ByteReader(bytes, baseOffset: baseOffset)
        let index = BlockHandle(offset: try reader.readUInt64("footer.index offset"), size: try reader.readUInt32("footer.index size"))
        let filter = BlockHandle(offset: try reader.readUInt64("footer.filter offset"), size: try reader.readUInt32("footer.filter size"))
        let properties = BlockHandle(offset: try reader.readUInt64("footer.properties offset"), size: try reader.readUInt32("footer.properties size"))
        let versionAt = reader.absoluteOffset
        let version = try reader.readUInt16("footer.version")
        guard version == SegmentFormat.version else {
            throw DecodeError(field: "footer.version", offset: versionAt, reason: .unsupportedVersion(UInt64(version)))
        }
        let orderAt = reader.absoluteOffset
        let rawOrder = try reader.readUInt16("footer.key order")
        guard let keyOrder = KeyOrder(rawValue: rawOrder) else {
            throw DecodeError(field: "footer.key order", offset: orderAt, reason: .invalidValue(UInt64(rawOrder)))
        }
        try reader.skip(8, "footer.magic")
        try reader.readReserved(UInt64.self, "footer.reserved")
        return SegmentFooter(index: index, filter: filter, properties: properties, keyOrder: keyOrder)
    }
}
