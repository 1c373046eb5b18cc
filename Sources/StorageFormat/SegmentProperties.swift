// The properties block: what a segment holds, for the manifest, compaction picking and recovery.
//
//   varint entry count, varint data block count, varint raw key bytes, varint raw value bytes,
//   length-prefixed smallest key, length-prefixed largest key,
//   varint smallest sequence, varint largest sequence,
//   varint marker count, then per marker (ascending stream): varint stream, varint applied index

import Wire

public struct SegmentProperties: Equatable, Sendable {
    public var entryCount: UInt64 = 0
    public var dataBlockCount: UInt64 = 0
    public var rawKeyBytes: UInt64 = 0
    public var rawValueBytes: UInt64 = 0
    public var smallestKey: [UInt8] = []
    public var largestKey: [UInt8] = []
    /// Sequence-number range of the entries (set by the engine; 0 when unused).
    public var smallestSequence: UInt64 = 0
    public var largestSequence: UInt64 = 0
    /// Per stream (Raft group), the highest applied log index whose effects this segment holds.
    public var appliedIndexes: [UInt64: UInt64] = [:]

    public init() {}

    public static let keyBytesLimit = Block.keyBytesLimit

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + smallestKey.count + largestKey.count)
        writer.writeVarint(entryCount)
        writer.writeVarint(dataBlockCount)
        writer.writeVarint(rawKeyBytes)
        writer.writeVarint(rawValueBytes)
        writer.writeLengthPrefixed(smallestKey)
        writer.writeLengthPrefixed(largestKey)
        writer.writeVarint(smallestSequence)
        writer.writeVarint(largestSequence)
        writer.writeVarint(UInt64(appliedIndexes.count))
        for stream in appliedIndexes.keys.sorted() {
            writer.writeVarint(stream)
            writer.writeVarint(appliedIndexes[stream]!)
        }
        return writer.finish()
    }

    public static func decode(_ bytes: [UInt8], baseOffset: UInt64) throws(DecodeError) -> SegmentProperties {
        var reader = ByteReader(bytes, baseOffset: baseOffset)
        var p = SegmentProperties()
        p.entryCount = try reader.readVarint("properties.entry count")
        p.dataBlockCount = try reader.readVarint("properties.data block count")
        p.rawKeyBytes = try reader.readVarint("properties.raw key bytes")
        p.rawValueBytes = try reader.readVarint("properties.raw value bytes")
        p.smallestKey = Array(try reader.readLengthPrefixed("properties.smallest key", limit: keyBytesLimit))
        p.largestKey = Array(try reader.readLengthPrefixed("properties.largest key", limit: keyBytesLimit))
        p.smallestSequence = try reader.readVarint("properties.smallest sequence")
        p.largestSequence = try reader.readVarint("properties.largest sequence")
        let countAt = reader.absoluteOffset
        let count = try reader.readVarint("properties.marker count")
        guard count <= UInt64(reader.remaining / 2) else {
            throw DecodeError(field: "properties.marker count", offset: countAt, reason: .tooLarge(value: count, limit: UInt64(reader.remaining / 2)))
        }
        var previous: UInt64?
        for _ in 0..<count {
            let at = reader.absoluteOffset
            let stream = try reader.readVarint("properties.marker stream")
            if let previous, stream <= previous {
                throw DecodeError(field: "properties.marker stream", offset: at, reason: .invalid("streams not ascending"))
            }
            previous = stream
            p.appliedIndexes[stream] = try reader.readVarint("properties.marker applied index")
        }
        guard reader.isAtEnd else { throw reader.error("properties", .invalid("\(reader.remaining) trailing bytes")) }
        return p
    }
}
