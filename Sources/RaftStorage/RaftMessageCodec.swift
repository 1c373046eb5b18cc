// Raft messages on the wire (Format/raft.md §8): a batch of (group, message) pairs, the unit a
// host sends to one node per cycle. Entries and snapshots reuse the log's encodings (§2, §3),
// so a follower stores exactly the bytes the leader sent. Every count and length is checked
// against the bytes that remain before anything is allocated.

import Basics
import Raft
import Wire

public enum RaftMessageCodec {
    /// Version of the batch encoding (the first byte of every batch).
    public static let version: UInt8 = 1
    /// Bytes of one message before its variable parts.
    static let fixedBytes = 8 + 1 + 8 * 4 + 8 + 8 + 1 + 8 * 3 + 4 + 4

    enum Flag {
        static let reject: UInt8 = 1 << 0
        static let quiesce: UInt8 = 1 << 1
        static let snapshot: UInt8 = 1 << 2
        static let known: UInt8 = reject | quiesce | snapshot
    }

    public static func encode(_ batch: [(group: UInt64, message: Message)]) -> [UInt8] {
        var capacity = 5
        for (_, message) in batch {
            capacity += fixedBytes + message.context.count + message.entries.reduce(0) { $0 + 4 + 17 + $1.data.count }
            if let snapshot = message.snapshot { capacity += 4 + 32 + snapshot.data.count + 8 * snapshot.metadata.membership.members.count }
        }
        var writer = ByteWriter(capacity: capacity)
        writer.write(version)
        writer.write(UInt32(batch.count))
        for (group, m) in batch {
            writer.write(group)
            writer.write(m.kind.rawValue)
            writer.write(m.from)
            writer.write(m.to)
            writer.write(m.term)
            writer.write(m.logTerm)
            writer.write(m.index)
            writer.write(m.commit)
            var flags: UInt8 = 0
            if m.reject { flags |= Flag.reject }
            if m.quiesce { flags |= Flag.quiesce }
            if m.snapshot != nil { flags |= Flag.snapshot }
            writer.write(flags)
            writer.write(m.rejectHint)
            writer.write(m.lastIndex)
            writer.write(m.recoveryNonce)
            writer.write(UInt32(m.context.count))
            writer.write(bytes: m.context)
            writer.write(UInt32(m.entries.count))
            for entry in m.entries {
                let bytes = RaftLogStore.encode(entry)
                writer.write(UInt32(bytes.count))
                writer.write(bytes: bytes)
            }
            if let snapshot = m.snapshot {
                let bytes = RaftLogStore.encode(snapshot)
                writer.write(UInt32(bytes.count))
                writer.write(bytes: bytes)
            }
        }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> [(group: UInt64, message: Message)] {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("batch version")
        guard version == Self.version else { throw reader.error("batch version", .invalid("unsupported version \(version)")) }
        let count = Int(try reader.readUInt32("message count"))
        guard count <= reader.remaining / fixedBytes else { throw reader.error("message count", .invalid("\(count) messages cannot fit")) }
        var batch: [(group: UInt64, message: Message)] = []
        batch.reserveCapacity(count)
        for _ in 0..<count {
            let group = try reader.readUInt64("group")
            let rawKind = try reader.readUInt8("message kind")
            guard let kind = MessageKind(rawValue: rawKind) else { throw reader.error("message kind", .invalid("unknown kind \(rawKind)")) }
            var m = Message(kind: kind, from: try reader.readUInt64("from"), to: try reader.readUInt64("to"), term: try reader.readUInt64("term"))
            m.logTerm = try reader.readUInt64("log term")
            m.index = try reader.readUInt64("index")
            m.commit = try reader.readUInt64("commit")
            let flags = try reader.readUInt8("flags")
            guard flags & ~Flag.known == 0 else { throw reader.error("flags", .invalid("unknown flags \(flags)")) }
            m.reject = flags & Flag.reject != 0
            m.quiesce = flags & Flag.quiesce != 0
            m.rejectHint = try reader.readUInt64("reject hint")
            m.lastIndex = try reader.readUInt64("last index")
            m.recoveryNonce = try reader.readUInt64("recovery nonce")
            let contextLength = Int(try reader.readUInt32("context length"))
            m.context = Array(try reader.readBytes(contextLength, "context"))
            let entryCount = Int(try reader.readUInt32("entry count"))
            guard entryCount <= reader.remaining / (4 + 17) else { throw reader.error("entry count", .invalid("\(entryCount) entries cannot fit")) }
            m.entries.reserveCapacity(entryCount)
            for _ in 0..<entryCount {
                let length = Int(try reader.readUInt32("entry length"))
                let entryBytes = Array(try reader.readBytes(length, "entry"))
                let entry: Entry
                do throws(DecodeError) { entry = try RaftLogStore.decodeEntry(entryBytes) } catch {
                    throw reader.error("entry", .invalid("\(error)"))
                }
                if let previous = m.entries.last, entry.index != previous.index + 1 {
                    throw reader.error("entry", .invalid("entry \(entry.index) does not follow \(previous.index)"))
                }
                m.entries.append(entry)
            }
            if flags & Flag.snapshot != 0 {
                let length = Int(try reader.readUInt32("snapshot length"))
                let snapshotBytes = Array(try reader.readBytes(length, "snapshot"))
                do throws(DecodeError) { m.snapshot = try RaftLogStore.decodeSnapshot(snapshotBytes) } catch {
                    throw reader.error("snapshot", .invalid("\(error)"))
                }
            }
            batch.append((group, m))
        }
        guard reader.isAtEnd else { throw reader.error("batch", .invalid("\(reader.remaining) trailing bytes")) }
        return batch
    }
}

/// One piece of a message too large for one call — in practice a snapshot (Format/raft.md §9).
/// The sender encodes the message as a one-message batch (§8) and sends the bytes in order, each
/// chunk naming the transfer, the batch's total length and its XXH3-64 checksum; the receiver
/// appends them and decodes the batch once every byte is there and the checksum matches.
public struct RaftMessageChunk: Sendable, Equatable {
    public static let version: UInt8 = 1
    /// Bytes of a chunk before its data.
    public static let headerBytes = 1 + 8 * 4 + 4

    /// Chosen by the sender; one transfer's chunks share it.
    public var transfer: UInt64
    /// Length of the whole encoded batch (at least 1).
    public var total: UInt64
    /// Where `bytes` start in the batch.
    public var offset: UInt64
    /// XXH3-64 (seed 0) of the whole encoded batch.
    public var checksum: UInt64
    public var bytes: [UInt8]

    public init(transfer: UInt64, total: UInt64, offset: UInt64, checksum: UInt64, bytes: [UInt8]) {
        self.transfer = transfer
        self.total = total
        self.offset = offset
        self.checksum = checksum
        self.bytes = bytes
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(Self.version)
        writer.write(transfer)
        writer.write(total)
        writer.write(offset)
        writer.write(checksum)
        writer.write(UInt32(bytes.count))
        writer.write(bytes: bytes)
    }

    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.headerBytes + bytes.count)
        encode(into: &writer)
        return writer.bytes
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> RaftMessageChunk {
        let version = try reader.readUInt8("chunk version")
        guard version == Self.version else { throw reader.error("chunk version", .invalid("unsupported version \(version)")) }
        let transfer = try reader.readUInt64("transfer")
        let total = try reader.readUInt64("total")
        guard total > 0 else { throw reader.error("total", .invalid("a transfer carries at least one byte")) }
        let offset = try reader.readUInt64("offset")
        let checksum = try reader.readUInt64("checksum")
        let length = try reader.readUInt32("chunk length")
        guard length > 0 else { throw reader.error("chunk length", .invalid("an empty chunk")) }
        guard offset < total, UInt64(length) <= total - offset else {
            throw reader.error("chunk length", .invalid("\(length) bytes at \(offset) pass the total of \(total)"))
        }
        let bytes = Array(try reader.readBytes(Int(length), "chunk bytes"))
        guard reader.isAtEnd else { throw reader.error("chunk", .invalid("\(reader.remaining) trailing bytes")) }
        return RaftMessageChunk(transfer: transfer, total: total, offset: offset, checksum: checksum, bytes: bytes)
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> RaftMessageChunk {
        var reader = ByteReader(bytes)
        return try decode(from: &reader)
    }
}
