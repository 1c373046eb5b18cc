// The storage manifest: which segments make up the database, at which level, and the engine's
// counters. Format/manifest.md is the normative description.
//
// The manifest is a record log (Format/log.md) in its own directory, whose records (stream 1,
// kind 1) are version edits. Replaying the edits in order gives the current version. A new
// manifest starts with one edit that describes the whole version (a snapshot); the CURRENT file
// names the manifest in use and is replaced atomically (write temporary, sync, rename, sync the
// directory).

import Checksum
import Wire

public struct SegmentDescriptor: Equatable, Sendable {
    public var level: Int
    public var number: UInt64
    public var fileBytes: UInt64
    /// XXH3-64 of the whole segment file.
    public var checksum: UInt64
    public var entryCount: UInt64
    public var smallestSequence: UInt64
    public var largestSequence: UInt64
    /// Smallest and largest internal keys in the segment.
    public var smallestKey: [UInt8]
    public var largestKey: [UInt8]

    public init(level: Int, number: UInt64, fileBytes: UInt64, checksum: UInt64, entryCount: UInt64,
                smallestSequence: UInt64, largestSequence: UInt64, smallestKey: [UInt8], largestKey: [UInt8]) {
        self.level = level
        self.number = number
        self.fileBytes = fileBytes
        self.checksum = checksum
        self.entryCount = entryCount
        self.smallestSequence = smallestSequence
        self.largestSequence = largestSequence
        self.smallestKey = smallestKey
        self.largestKey = largestKey
    }
}

public struct VersionEdit: Equatable, Sendable {
    /// Set on the first edit of a manifest: it describes the whole version.
    public var isSnapshot = false
    public var nextFileNumber: UInt64?
    public var lastSequence: UInt64?
    /// Write-ahead-log records below this LSN are contained in segments.
    public var walReplayFrom: UInt64?
    /// Per stream, the highest caller-supplied applied index contained in segments.
    public var appliedIndexes: [UInt64: UInt64] = [:]
    public var deletedSegments: [(level: Int, number: UInt64)] = []
    public var addedSegments: [SegmentDescriptor] = []

    public init() {}

    public static func == (a: VersionEdit, b: VersionEdit) -> Bool {
        a.isSnapshot == b.isSnapshot && a.nextFileNumber == b.nextFileNumber && a.lastSequence == b.lastSequence
            && a.walReplayFrom == b.walReplayFrom && a.appliedIndexes == b.appliedIndexes
            && a.deletedSegments.elementsEqual(b.deletedSegments, by: { $0.level == $1.level && $0.number == $1.number })
            && a.addedSegments == b.addedSegments
    }
}

public enum ManifestFormat {
    public static let editVersion: UInt8 = 1
    public static let stream: UInt64 = 1
    public static let recordKind: UInt8 = 1
    public static let levelCountMax = 16
    public static let keyBytesLimit = Block.keyBytesLimit
    public static let currentFileName = "CURRENT"
    public static let currentMagic: [UInt8] = Array("VECTRCUR".utf8)

    enum Tag: UInt64 {
        case snapshot = 1, nextFileNumber = 2, lastSequence = 3, walReplayFrom = 4
        case appliedIndex = 5, deletedSegment = 6, addedSegment = 7
    }

    public static func encode(_ edit: VersionEdit) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + edit.addedSegments.count * 96)
        writer.write(editVersion)
        if edit.isSnapshot { writer.writeVarint(Tag.snapshot.rawValue) }
        if let value = edit.nextFileNumber { writer.writeVarint(Tag.nextFileNumber.rawValue); writer.writeVarint(value) }
        if let value = edit.lastSequence { writer.writeVarint(Tag.lastSequence.rawValue); writer.writeVarint(value) }
        if let value = edit.walReplayFrom { writer.writeVarint(Tag.walReplayFrom.rawValue); writer.writeVarint(value) }
        for (stream, index) in edit.appliedIndexes.sorted(by: { $0.key < $1.key }) {
            writer.writeVarint(Tag.appliedIndex.rawValue)
            writer.writeVarint(stream)
            writer.writeVarint(index)
        }
        for deleted in edit.deletedSegments {
            writer.writeVarint(Tag.deletedSegment.rawValue)
            writer.writeVarint(UInt64(deleted.level))
            writer.writeVarint(deleted.number)
        }
        for added in edit.addedSegments {
            writer.writeVarint(Tag.addedSegment.rawValue)
            writer.writeVarint(UInt64(added.level))
            writer.writeVarint(added.number)
            writer.writeVarint(added.fileBytes)
            writer.write(added.checksum)
            writer.writeVarint(added.entryCount)
            writer.writeVarint(added.smallestSequence)
            writer.writeVarint(added.largestSequence)
            writer.writeLengthPrefixed(added.smallestKey)
            writer.writeLengthPrefixed(added.largestKey)
        }
        return writer.finish()
    }

    public static func decode(_ bytes: [UInt8], baseOffset: UInt64 = 0) throws(DecodeError) -> VersionEdit {
        var reader = ByteReader(bytes, baseOffset: baseOffset)
        let version = try reader.readUInt8("edit.version")
        guard version == editVersion else { throw reader.error("edit.version", .unsupportedVersion(UInt64(version))) }
        var edit = VersionEdit()
        var seen: Set<UInt64> = []
        func level(_ reader: inout ByteReader) throws(DecodeError) -> Int {
            let value = try reader.readVarint("edit.level")
            guard value < UInt64(levelCountMax) else { throw reader.error("edit.level", .tooLarge(value: value, limit: UInt64(levelCountMax - 1))) }
            return Int(value)
        }
        while !reader.isAtEnd {
            let tagOffset = reader.absoluteOffset
            let rawTag = try reader.readVarint("edit.tag")
            guard let tag = Tag(rawValue: rawTag) else {
                throw DecodeError(field: "edit.tag", offset: tagOffset, reason: .invalidValue(rawTag))
            }
            switch tag {
            case .snapshot, .nextFileNumber, .lastSequence, .walReplayFrom:
                guard seen.insert(rawTag).inserted else {
                    throw DecodeError(field: "edit.tag", offset: tagOffset, reason: .invalid("field \(tag) appears twice"))
                }
            default: break
            }
            switch tag {
            case .snapshot: edit.isSnapshot = true
            case .nextFileNumber:
                let value = try reader.readVarint("edit.next file number")
                guard value <= 1 << 62 else { throw reader.error("edit.next file number", .tooLarge(value: value, limit: 1 << 62)) }
                edit.nextFileNumber = value
            case .lastSequence:
                let value = try reader.readVarint("edit.last sequence")
                guard value <= InternalKey.sequenceMax else { throw reader.error("edit.last sequence", .tooLarge(value: value, limit: InternalKey.sequenceMax)) }
                edit.lastSequence = value
            case .walReplayFrom: edit.walReplayFrom = try reader.readVarint("edit.wal replay from")
            case .appliedIndex:
                let stream = try reader.readVarint("edit.applied index.stream")
                let index = try reader.readVarint("edit.applied index.index")
                guard edit.appliedIndexes.updateValue(index, forKey: stream) == nil else {
                    throw DecodeError(field: "edit.applied index", offset: tagOffset, reason: .invalid("stream \(stream) appears twice"))
                }
            case .deletedSegment:
                let level = try level(&reader)
                edit.deletedSegments.append((level, try reader.readVarint("edit.deleted segment.number")))
            case .addedSegment:
                let level = try level(&reader)
                let number = try reader.readVarint("edit.added segment.number")
                guard number < 1 << 62 else { throw reader.error("edit.added segment.number", .tooLarge(value: number, limit: 1 << 62)) }
                let fileBytes = try reader.readVarint("edit.added segment.file bytes")
                let checksum = try reader.readUInt64("edit.added segment.checksum")
                let entryCount = try reader.readVarint("edit.added segment.entry count")
                let smallestSequence = try reader.readVarint("edit.added segment.smallest sequence")
                let largestSequence = try reader.readVarint("edit.added segment.largest sequence")
                guard smallestSequence <= largestSequence, largestSequence <= InternalKey.sequenceMax else {
                    throw reader.error("edit.added segment.sequence range", .invalid("\(smallestSequence)...\(largestSequence) is not a sequence range"))
                }
                let smallest = Array(try reader.readLengthPrefixed("edit.added segment.smallest key", limit: keyBytesLimit))
                let largest = Array(try reader.readLengthPrefixed("edit.added segment.largest key", limit: keyBytesLimit))
                guard smallest.count >= 8, largest.count >= 8, compareInternalKeys(smallest, largest) <= 0 else {
                    throw reader.error("edit.added segment.key range", .invalid("smallest key is after largest key"))
                }
                edit.addedSegments.append(SegmentDescriptor(
                    level: level, number: number, fileBytes: fileBytes, checksum: checksum, entryCount: entryCount,
                    smallestSequence: smallestSequence, largestSequence: largestSequence, smallestKey: smallest, largestKey: largest))
            }
        }
        return edit
    }

    /// The CURRENT file: magic, length-prefixed manifest directory name, XXH3 of what precedes.
    public static func encodeCurrent(manifestName: String) -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.write(bytes: currentMagic)
        writer.writeLengthPrefixed(Array(manifestName.utf8))
        let checksum = XXH3.hash(writer.bytes)
        writer.write(checksum)
        return writer.finish()
    }

    public static func decodeCurrent(_ bytes: [UInt8]) throws(DecodeError) -> String {
        var reader = ByteReader(bytes)
        let magic = try reader.readBytes(currentMagic.count, "current.magic")
        guard Array(magic) == currentMagic else { throw DecodeError(field: "current.magic", offset: 0, reason: .badMagic) }
        let name = try reader.readLengthPrefixed("current.name", limit: 255)
        let covered = reader.position
        let stored = try reader.readUInt64("current.checksum")
        let computed = XXH3.hash(bytes, range: 0..<covered)
        guard stored == computed else {
            throw DecodeError(field: "current.checksum", offset: UInt64(covered), reason: .checksumMismatch(stored: stored, computed: computed))
        }
        guard reader.isAtEnd else { throw reader.error("current", .invalid("\(reader.remaining) trailing bytes")) }
        guard let text = String(validating: name, as: UTF8.self), !text.isEmpty, !text.contains("/"), text != ".", text != ".." else {
            throw DecodeError(field: "current.name", offset: UInt64(currentMagic.count), reason: .invalid("not a directory name"))
        }
        return text
    }
}
