// Byte layout of the unified record log (normative spec: Format/log.md). NEVER CHANGE the
// meaning of a field of format version 1: new fields and kinds come with a new version number,
// and readers keep accepting every older version.
//
// A log is a directory of segment files `<segment number, 16 hex digits>.vlog`. Each segment is
// a 64-byte header followed by records. Every byte of a segment is covered by a checksum: the
// header by its own, each record by one over its header and stored payload.

import Checksum
import Wire

public enum LogFormat {
    /// "VECTRLOG" in ASCII, as stored (little-endian u64 of these bytes).
    public static let magic: [UInt8] = Array("VECTRLOG".utf8)
    /// The newest version (readers accept `versionMin...version`). Version 2 (Format/log.md
    /// §11) adds one rule to version 1: a segment may be longer than its records, the rest of
    /// the file all zero bytes (a segment prepared ahead, zero-filled, so that appends overwrite
    /// instead of growing the file). Writers write version 2 for prepared segments only; a
    /// segment created empty is written as version 1.
    public static let version: UInt16 = 2
    /// The oldest version readers accept.
    public static let versionMin: UInt16 = 1
    /// The first version whose segments may end in a zero-filled tail.
    public static let zeroFilledTailVersion: UInt16 = 2
    public static let segmentHeaderBytes = 64
    public static let recordHeaderBytes = 40
    public static let segmentFileSuffix = ".vlog"

    /// Offset of each segment-header field.
    public enum HeaderField {
        public static let magic = 0, version = 8, headerSize = 10, flags = 12, logID = 16,
            segmentNumber = 24, firstLSN = 32, createdUnixNanos = 40, reserved = 48, checksum = 56
    }

    /// Offset of each record-header field, relative to the record start.
    public enum RecordField {
        public static let checksum = 0, storedLength = 8, payloadLength = 12, stream = 16, lsn = 24,
            syncedOffset = 32, kind = 36, flags = 37, reserved = 38
    }

    public static func segmentFileName(_ number: UInt64) -> String {
        let digits = String(number, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits + segmentFileSuffix
    }

    /// A segment file prepared ahead (zero-filled, synced) waits under this name until a
    /// rotation writes its header and renames it. Not a segment name: readers ignore it, and
    /// opening a log removes a leftover one.
    public static let preparedFileName = "prepared-segment.tmp"

    /// The segment number named by a file name, or nil if the name is not a segment's.
    public static func segmentNumber(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(segmentFileSuffix), name.utf8.count == 16 + segmentFileSuffix.utf8.count else { return nil }
        let digits = name.utf8.prefix(16)
        // Exactly the names `segmentFileName` produces: 16 lowercase hex digits.
        guard digits.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else { return nil }
        return UInt64(String(decoding: digits, as: UTF8.self), radix: 16)
    }
}

/// What a record is. Kinds 1...127 belong to the log's users (Raft entries, hard state, storage
/// WAL batches); 128...255 are the log's own bookkeeping records.
public struct RecordKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let userRange: ClosedRange<UInt8> = 1...127
    /// Records of the stream with LSN below the payload's u64 bound are dead.
    public static let truncatePrefix = RecordKind(rawValue: 128)
    /// Records of the stream with LSN in [payload bound, this record's LSN) are dead.
    public static let truncateSuffix = RecordKind(rawValue: 129)
    /// The full truncation state of every stream; the first record of every segment.
    public static let checkpoint = RecordKind(rawValue: 130)
    /// The last record of a sealed (rotated-away) segment.
    public static let seal = RecordKind(rawValue: 131)

    public var isUser: Bool { RecordKind.userRange.contains(rawValue) }
    public var isDefined: Bool { isUser || (128...131).contains(rawValue) }

    public var description: String {
        switch self {
        case .truncatePrefix: return "truncate-prefix"
        case .truncateSuffix: return "truncate-suffix"
        case .checkpoint: return "checkpoint"
        case .seal: return "seal"
        default: return isUser ? "user(\(rawValue))" : "undefined(\(rawValue))"
        }
    }
}

public struct RecordFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The stored payload is one LZ4 block that expands to `payloadLength` bytes.
    public static let lz4 = RecordFlags(rawValue: 1 << 0)
    /// A copy of a live record moved forward from an older segment; keeps its original LSN.
    public static let relocated = RecordFlags(rawValue: 1 << 1)
    public static let defined: RecordFlags = [.lz4, .relocated]
}

/// Header flags (a `u32` bit set at offset 12).
public struct SegmentHeaderFlags: OptionSet, Equatable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// When this segment was created, an older segment was sealed but not yet synced (an
    /// unsynced batch filled it): after a crash the older segment may end in a torn tail, and
    /// then this segment and every newer one hold nothing that was ever synced (Format/log.md §7.4).
    public static let predecessorUnsynced = SegmentHeaderFlags(rawValue: 1 << 0)
    public static let defined: SegmentHeaderFlags = [.predecessorUnsynced]
}

public struct SegmentHeader: Equatable, Sendable {
    public var logID: UInt64
    public var segmentNumber: UInt64
    /// The LSN the first fresh (not relocated) record of this segment carries.
    public var firstLSN: UInt64
    public var createdUnixNanos: UInt64
    public var flags: SegmentHeaderFlags
    /// The segment's format version (`LogFormat.versionMin...LogFormat.version`).
    public var version: UInt16

    public init(logID: UInt64, segmentNumber: UInt64, firstLSN: UInt64, createdUnixNanos: UInt64, flags: SegmentHeaderFlags = [],
                version: UInt16 = LogFormat.version) {
        self.version = version
        self.logID = logID
        self.segmentNumber = segmentNumber
        self.firstLSN = firstLSN
        self.createdUnixNanos = createdUnixNanos
        self.flags = flags
    }

    public func encode(into writer: inout ByteWriter) {
        let start = writer.count
        writer.write(bytes: LogFormat.magic)
        writer.write(version)
        writer.write(UInt16(LogFormat.segmentHeaderBytes))
        writer.write(flags.rawValue)
        writer.write(logID)
        writer.write(segmentNumber)
        writer.write(firstLSN)
        writer.write(createdUnixNanos)
        writer.write(UInt64(0))
        let checksum = XXH3.hash(writer.bytes, range: start..<(start + LogFormat.HeaderField.checksum))
        writer.write(checksum)
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> SegmentHeader {
        var reader = ByteReader(bytes)
        guard bytes.count >= LogFormat.segmentHeaderBytes else {
            throw reader.error("segment header", .truncated(needed: LogFormat.segmentHeaderBytes, available: bytes.count))
        }
        let magic = try reader.readBytes(8, "magic")
        guard magic.elementsEqual(LogFormat.magic) else { throw DecodeError(field: "magic", offset: 0, reason: .badMagic) }
        let stored = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: LogFormat.HeaderField.checksum, as: UInt64.self)) }
        let computed = XXH3.hash(bytes, range: 0..<LogFormat.HeaderField.checksum)
        guard stored == computed else {
            throw DecodeError(field: "header checksum", offset: UInt64(LogFormat.HeaderField.checksum),
                              reason: .checksumMismatch(stored: stored, computed: computed))
        }
        let version = try reader.readUInt16("version")
        guard (LogFormat.versionMin...LogFormat.version).contains(version) else {
            throw DecodeError(field: "version", offset: 8, reason: .unsupportedVersion(UInt64(version)))
        }
        let headerSize = try reader.readUInt16("header size")
        guard headerSize == LogFormat.segmentHeaderBytes else {
            throw DecodeError(field: "header size", offset: 10, reason: .invalidValue(UInt64(headerSize)))
        }
        let flags = SegmentHeaderFlags(rawValue: try reader.readUInt32("flags"))
        guard SegmentHeaderFlags.defined.isSuperset(of: flags) else {
            throw DecodeError(field: "flags", offset: UInt64(LogFormat.HeaderField.flags), reason: .invalidValue(UInt64(flags.rawValue)))
        }
        let logID = try reader.readUInt64("log id")
        let number = try reader.readUInt64("segment number")
        let firstLSN = try reader.readUInt64("first lsn")
        let created = try reader.readUInt64("created")
        try reader.readReserved(UInt64.self, "reserved")
        return SegmentHeader(logID: logID, segmentNumber: number, firstLSN: firstLSN, createdUnixNanos: created, flags: flags, version: version)
    }
}

/// The fixed 40-byte header in front of each record's stored payload.
public struct RecordHeader: Equatable, Sendable {
    public var checksum: UInt64
    public var storedLength: UInt32
    public var payloadLength: UInt32
    public var stream: UInt64
    public var lsn: UInt64
    /// How far this segment was durable when the record was written: everything before this
    /// offset had been synced. Recovery uses it to tell a torn tail from corruption.
    public var syncedOffset: UInt32
    public var kind: RecordKind
    public var flags: RecordFlags

    public var totalLength: Int { LogFormat.recordHeaderBytes + Int(storedLength) }

    /// Appends a record (header and stored payload) and fills in its checksum.
    public static func encode(
        stream: UInt64, lsn: UInt64, syncedOffset: UInt32, kind: RecordKind, flags: RecordFlags,
        payloadLength: UInt32, storedPayload: UnsafeRawBufferPointer, into buffer: inout [UInt8]
    ) {
        let start = buffer.count
        buffer.reserveCapacity(start + LogFormat.recordHeaderBytes + storedPayload.count)
        func put<T: FixedWidthInteger>(_ value: T) {
            var v = value.littleEndian
            withUnsafeBytes(of: &v) { buffer.append(contentsOf: $0) }
        }
        put(UInt64(0))
        put(UInt32(storedPayload.count))
        put(payloadLength)
        put(stream)
        put(lsn)
        put(syncedOffset)
        put(kind.rawValue)
        put(flags.rawValue)
        put(UInt16(0))
        buffer.append(contentsOf: storedPayload)
        let checksum = XXH3.hash(buffer, range: (start + 8)..<buffer.count)
        var c = checksum.littleEndian
        withUnsafeBytes(of: &c) { raw in
            for i in 0..<8 { buffer[start + i] = raw[i] }
        }
    }

    /// Decodes and verifies the record starting at `offset` of `bytes[..<end]`: header fields,
    /// length bounds and checksum. The stored payload is `bytes[offset + 40 ..< offset + totalLength]`.
    public static func decode(
        _ bytes: [UInt8], at offset: Int, end: Int, payloadBytesMax: Int
    ) throws(DecodeError) -> RecordHeader {
        var reader = ByteReader(bytes, range: offset..<end)
        guard reader.remaining >= LogFormat.recordHeaderBytes else {
            throw reader.error("record header", .truncated(needed: LogFormat.recordHeaderBytes, available: reader.remaining))
        }
        let checksum = try reader.readUInt64("checksum")
        let storedLength = try reader.readUInt32("stored length")
        let payloadLength = try reader.readUInt32("payload length")
        let stream = try reader.readUInt64("stream")
        let lsn = try reader.readUInt64("lsn")
        let syncedOffset = try reader.readUInt32("synced offset")
        let kindAt = reader.absoluteOffset
        let kind = RecordKind(rawValue: try reader.readUInt8("kind"))
        let flagsAt = reader.absoluteOffset
        let flags = RecordFlags(rawValue: try reader.readUInt8("flags"))
        try reader.readReserved(UInt16.self, "reserved")
        let bound = UInt64(payloadBytesMax)
        if UInt64(storedLength) > bound {
            throw DecodeError(field: "stored length", offset: UInt64(offset + 8), reason: .tooLarge(value: UInt64(storedLength), limit: bound))
        }
        if UInt64(payloadLength) > bound {
            throw DecodeError(field: "payload length", offset: UInt64(offset + 12), reason: .tooLarge(value: UInt64(payloadLength), limit: bound))
        }
        guard reader.remaining >= Int(storedLength) else {
            throw reader.error("payload", .truncated(needed: Int(storedLength), available: reader.remaining))
        }
        let computed = XXH3.hash(bytes, range: (offset + 8)..<(offset + LogFormat.recordHeaderBytes + Int(storedLength)))
        guard computed == checksum else {
            throw DecodeError(field: "record checksum", offset: UInt64(offset), reason: .checksumMismatch(stored: checksum, computed: computed))
        }
        // Checksummed fields are trusted not to be torn, but a buggy or hostile writer could
        // still produce values this version does not define.
        guard kind.isDefined else { throw DecodeError(field: "kind", offset: kindAt, reason: .invalidValue(UInt64(kind.rawValue))) }
        guard RecordFlags.defined.isSuperset(of: flags) else {
            throw DecodeError(field: "flags", offset: flagsAt, reason: .invalidValue(UInt64(flags.rawValue)))
        }
        if !flags.contains(.lz4) && storedLength != payloadLength {
            throw DecodeError(field: "payload length", offset: UInt64(offset + 12),
                              reason: .invalid("uncompressed record with stored length \(storedLength) ≠ payload length \(payloadLength)"))
        }
        return RecordHeader(checksum: checksum, storedLength: storedLength, payloadLength: payloadLength, stream: stream,
                            lsn: lsn, syncedOffset: syncedOffset, kind: kind, flags: flags)
    }
}
