// A shard's commands: what a Raft entry of a shard group carries (Format/shard.md §2). Points
// are named by their key (an encoded point id, opaque here); payloads are canonical JSON object
// text. Commands are deterministic: applying one to the same state gives the same state on
// every replica, so anything that depends on a query (delete by filter) is resolved to keys
// before it is proposed.

import Wire

public enum ShardCommand: Equatable, Sendable {
    public struct Point: Equatable, Sendable {
        public var key: [UInt8]
        public var vector: [Float]
        /// A JSON object's text (`{}` when the point has no payload).
        public var payload: [UInt8]

        public init(key: [UInt8], vector: [Float], payload: [UInt8]) {
            self.key = key
            self.vector = vector
            self.payload = payload
        }
    }

    /// Inserts or replaces points (vector and payload).
    case upsert([Point])
    /// Deletes points; keys that do not exist are ignored.
    case delete(keys: [[UInt8]])
    /// Merges `payload`'s keys into each point's payload (at the object at `path` when given).
    case setPayload(keys: [[UInt8]], payload: [UInt8], path: String?)
    /// Replaces each point's payload.
    case overwritePayload(keys: [[UInt8]], payload: [UInt8])
    /// Removes the given (dotted) keys from each point's payload.
    case deletePayloadKeys(keys: [[UInt8]], paths: [String])
    /// Empties each point's payload.
    case clearPayload(keys: [[UInt8]])

    public static let formatVersion: UInt8 = 1
    /// Bounds a decoder enforces (a command is also bounded by the Raft entry size).
    public static let keyBytesMax = 64
    public static let dimensionMax = 65_536
    public static let payloadBytesMax = 8 << 20
    public static let countMax = 1 << 20
    public static let pathBytesMax = 4096

    enum Kind: UInt8 {
        case upsert = 1, delete = 2, setPayload = 3, overwritePayload = 4, deletePayloadKeys = 5, clearPayload = 6
    }

    /// The keys a command touches, in command order.
    public var keys: [[UInt8]] {
        switch self {
        case .upsert(let points): points.map(\.key)
        case .delete(let keys), .setPayload(let keys, _, _), .overwritePayload(let keys, _),
             .deletePayloadKeys(let keys, _), .clearPayload(let keys): keys
        }
    }

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.write(Self.formatVersion)
        func writeKeys(_ keys: [[UInt8]]) {
            writer.writeVarint(UInt64(keys.count))
            for key in keys { writer.writeLengthPrefixed(key) }
        }
        switch self {
        case .upsert(let points):
            writer.write(Kind.upsert.rawValue)
            writer.writeVarint(UInt64(points.count))
            for point in points {
                writer.writeLengthPrefixed(point.key)
                writer.writeVarint(UInt64(point.vector.count))
                // Little-endian float32s: the host's own layout (Vectron runs on little-endian CPUs).
                point.vector.withUnsafeBytes { writer.write(bytes: $0) }
                writer.writeLengthPrefixed(point.payload)
            }
        case .delete(let keys):
            writer.write(Kind.delete.rawValue)
            writeKeys(keys)
        case .setPayload(let keys, let payload, let path):
            writer.write(Kind.setPayload.rawValue)
            writeKeys(keys)
            writer.writeLengthPrefixed(payload)
            if let path {
                writer.write(UInt8(1))
                writer.writeLengthPrefixed(Array(path.utf8))
            } else {
                writer.write(UInt8(0))
            }
        case .overwritePayload(let keys, let payload):
            writer.write(Kind.overwritePayload.rawValue)
            writeKeys(keys)
            writer.writeLengthPrefixed(payload)
        case .deletePayloadKeys(let keys, let paths):
            writer.write(Kind.deletePayloadKeys.rawValue)
            writeKeys(keys)
            writer.writeVarint(UInt64(paths.count))
            for path in paths { writer.writeLengthPrefixed(Array(path.utf8)) }
        case .clearPayload(let keys):
            writer.write(Kind.clearPayload.rawValue)
            writeKeys(keys)
        }
        return writer.finish()
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> ShardCommand {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("command.version")
        guard version == formatVersion else { throw reader.error("command.version", .unsupportedVersion(UInt64(version))) }
        let kindByte = try reader.readUInt8("command.kind")
        guard let kind = Kind(rawValue: kindByte) else { throw reader.error("command.kind", .invalidValue(UInt64(kindByte))) }
        func readCount(_ field: String) throws(DecodeError) -> Int {
            let count = try reader.readVarint(field)
            // Every counted item takes at least one byte: a count above the bytes left is a lie.
            guard count <= UInt64(countMax), count <= UInt64(reader.remaining) else {
                throw reader.error(field, .tooLarge(value: count, limit: UInt64(min(countMax, reader.remaining))))
            }
            return Int(count)
        }
        func readKeys() throws(DecodeError) -> [[UInt8]] {
            let count = try readCount("command.keys.count")
            var keys: [[UInt8]] = []
            keys.reserveCapacity(count)
            for _ in 0..<count {
                let key = try reader.readLengthPrefixed("command.keys.key", limit: keyBytesMax)
                guard !key.isEmpty else { throw reader.error("command.keys.key", .invalid("an empty key")) }
                keys.append(Array(key))
            }
            return keys
        }
        func readPath(_ field: String) throws(DecodeError) -> String {
            let bytes = try reader.readLengthPrefixed(field, limit: pathBytesMax)
            guard let path = String(validating: bytes, as: UTF8.self) else { throw reader.error(field, .invalid("not UTF-8")) }
            return path
        }
        let command: ShardCommand
        switch kind {
        case .upsert:
            let count = try readCount("command.points.count")
            var points: [Point] = []
            points.reserveCapacity(count)
            for _ in 0..<count {
                let key = try reader.readLengthPrefixed("command.point.key", limit: keyBytesMax)
                guard !key.isEmpty else { throw reader.error("command.point.key", .invalid("an empty key")) }
                let dimension = try reader.readVarint("command.point.dimension")
                guard dimension >= 1, dimension <= UInt64(dimensionMax) else {
                    throw reader.error("command.point.dimension", .tooLarge(value: dimension, limit: UInt64(dimensionMax)))
                }
                let raw = try reader.readBytes(Int(dimension) * 4, "command.point.vector")
                let vector = [Float](unsafeUninitializedCapacity: Int(dimension)) { buffer, initialised in
                    raw.withUnsafeBytes { source in
                        UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
                    }
                    initialised = Int(dimension)
                }
                let payload = try reader.readLengthPrefixed("command.point.payload", limit: payloadBytesMax)
                points.append(Point(key: Array(key), vector: vector, payload: Array(payload)))
            }
            command = .upsert(points)
        case .delete:
            command = .delete(keys: try readKeys())
        case .setPayload:
            let keys = try readKeys()
            let payload = try reader.readLengthPrefixed("command.payload", limit: payloadBytesMax)
            let hasPath = try reader.readUInt8("command.path.present")
            guard hasPath <= 1 else { throw reader.error("command.path.present", .invalidValue(UInt64(hasPath))) }
            command = .setPayload(keys: keys, payload: Array(payload), path: hasPath == 1 ? try readPath("command.path") : nil)
        case .overwritePayload:
            let keys = try readKeys()
            command = .overwritePayload(keys: keys, payload: Array(try reader.readLengthPrefixed("command.payload", limit: payloadBytesMax)))
        case .deletePayloadKeys:
            let keys = try readKeys()
            let count = try readCount("command.paths.count")
            var paths: [String] = []
            for _ in 0..<count { paths.append(try readPath("command.paths.path")) }
            command = .deletePayloadKeys(keys: keys, paths: paths)
        case .clearPayload:
            command = .clearPayload(keys: try readKeys())
        }
        guard reader.isAtEnd else { throw reader.error("command", .invalid("\(reader.remaining) bytes after the command")) }
        return command
    }
}

/// A point as the storage engine keeps it (the value under its key; Format/shard.md §3).
public struct PointRecord: Equatable, Sendable {
    public var vector: [Float]
    public var payload: [UInt8]

    public init(vector: [Float], payload: [UInt8]) {
        self.vector = vector
        self.payload = payload
    }

    public static let formatVersion: UInt8 = 1

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 8 + vector.count * 4 + payload.count)
        writer.write(Self.formatVersion)
        writer.writeVarint(UInt64(vector.count))
        vector.withUnsafeBytes { writer.write(bytes: $0) }
        writer.writeLengthPrefixed(payload)
        return writer.finish()
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> PointRecord {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("point.version")
        guard version == formatVersion else { throw reader.error("point.version", .unsupportedVersion(UInt64(version))) }
        let dimension = try reader.readVarint("point.dimension")
        guard dimension <= UInt64(ShardCommand.dimensionMax), dimension * 4 <= UInt64(reader.remaining) else {
            throw reader.error("point.dimension", .tooLarge(value: dimension, limit: UInt64(reader.remaining / 4)))
        }
        var vector: [Float] = []
        vector.reserveCapacity(Int(dimension))
        for _ in 0..<dimension { vector.append(Float(bitPattern: try reader.readUInt32("point.vector"))) }
        let payload = try reader.readLengthPrefixed("point.payload", limit: ShardCommand.payloadBytesMax)
        guard reader.isAtEnd else { throw reader.error("point", .invalid("\(reader.remaining) bytes after the point")) }
        return PointRecord(vector: vector, payload: Array(payload))
    }
}
