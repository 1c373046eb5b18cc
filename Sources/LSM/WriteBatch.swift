// An atomic group of writes. Either every operation of a batch is applied (and survives a crash,
// once synced) or none is. Encoded into one write-ahead-log record.

import StorageFormat
import Wire

public struct WriteBatch: Sendable, Equatable {
    public enum Operation: Sendable, Equatable {
        case put(key: [UInt8], value: [UInt8])
        case delete(key: [UInt8])
        /// Deletes every key in `lower ..< upper`.
        case deleteRange(lower: [UInt8], upper: [UInt8])
    }

    public private(set) var operations: [Operation] = []
    /// Per stream, the caller's applied index that this batch brings the engine up to
    /// (`StorageOptions.WALMode.external`).
    public private(set) var appliedIndexes: [UInt64: UInt64] = [:]
    var byteCount = 0

    public init() {}

    public var isEmpty: Bool { operations.isEmpty && appliedIndexes.isEmpty }
    public var count: Int { operations.count }

    public mutating func put(_ key: [UInt8], _ value: [UInt8]) {
        operations.append(.put(key: key, value: value))
        byteCount += key.count + value.count
    }

    public mutating func delete(_ key: [UInt8]) {
        operations.append(.delete(key: key))
        byteCount += key.count
    }

    public mutating func deleteRange(from lower: [UInt8], to upper: [UInt8]) {
        operations.append(.deleteRange(lower: lower, upper: upper))
        byteCount += lower.count + upper.count
    }

    public mutating func setAppliedIndex(stream: UInt64, index: UInt64) {
        appliedIndexes[stream] = max(index, appliedIndexes[stream] ?? 0)
    }
}

/// A batch as logged: point operations only (range deletes are expanded to the keys they
/// delete, under the write lock), with the sequence number of the first.
struct LoggedBatch: Equatable {
    static let formatVersion: UInt8 = 1
    enum Entry: Equatable {
        case put([UInt8], [UInt8])
        case delete([UInt8])
    }

    var firstSequence: UInt64
    var entries: [Entry]
    var appliedIndexes: [UInt64: UInt64]

    func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 32 + entries.reduce(0) {
            switch $1 {
            case let .put(key, value): return $0 + key.count + value.count + 8
            case let .delete(key): return $0 + key.count + 4
            }
        })
        writer.write(Self.formatVersion)
        writer.writeVarint(firstSequence)
        writer.writeVarint(UInt64(entries.count))
        for entry in entries {
            switch entry {
            case let .put(key, value):
                writer.write(UInt8(1))
                writer.writeLengthPrefixed(key)
                writer.writeLengthPrefixed(value)
            case let .delete(key):
                writer.write(UInt8(0))
                writer.writeLengthPrefixed(key)
            }
        }
        writer.writeVarint(UInt64(appliedIndexes.count))
        for (stream, index) in appliedIndexes.sorted(by: { $0.key < $1.key }) {
            writer.writeVarint(stream)
            writer.writeVarint(index)
        }
        return writer.finish()
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> LoggedBatch {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("batch.version")
        guard version == formatVersion else { throw reader.error("batch.version", .unsupportedVersion(UInt64(version))) }
        let first = try reader.readVarint("batch.first sequence")
        let count = try reader.readVarint("batch.count")
        guard count <= UInt64(reader.remaining) else { throw reader.error("batch.count", .tooLarge(value: count, limit: UInt64(reader.remaining))) }
        guard first >= 1, count <= InternalKey.sequenceMax, first - 1 <= InternalKey.sequenceMax - count else {
            throw reader.error("batch.first sequence", .invalid("sequences \(first)..<\(first &+ count) are outside 1...\(InternalKey.sequenceMax)"))
        }
        var entries: [Entry] = []
        entries.reserveCapacity(Int(count))
        for _ in 0..<count {
            let kind = try reader.readUInt8("batch.entry.kind")
            let key = Array(try reader.readLengthPrefixed("batch.entry.key", limit: StorageEngine.keyBytesLimit))
            switch kind {
            case 1: entries.append(.put(key, Array(try reader.readLengthPrefixed("batch.entry.value", limit: StorageEngine.valueBytesLimit))))
            case 0: entries.append(.delete(key))
            default: throw reader.error("batch.entry.kind", .invalidValue(UInt64(kind)))
            }
        }
        let streams = try reader.readVarint("batch.applied index count")
        guard streams <= UInt64(reader.remaining) else { throw reader.error("batch.applied index count", .tooLarge(value: streams, limit: UInt64(reader.remaining))) }
        var applied: [UInt64: UInt64] = [:]
        for _ in 0..<streams {
            applied[try reader.readVarint("batch.applied index.stream")] = try reader.readVarint("batch.applied index.index")
        }
        guard reader.isAtEnd else { throw reader.error("batch", .invalid("\(reader.remaining) trailing bytes")) }
        return LoggedBatch(firstSequence: first, entries: entries, appliedIndexes: applied)
    }
}
