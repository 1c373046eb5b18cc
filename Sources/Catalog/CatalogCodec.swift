// Binary encodings of catalog commands (Raft entries of the catalog group) and of a whole
// catalog (what the storage engine keeps, and a snapshot), per Format/catalog.md.

import Checksum
import VectorIndex
import Wire

extension CatalogCommand {
    public static let formatVersion: UInt8 = 1
    static let stringBytesMax = 4096

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.write(Self.formatVersion)
        switch self {
        case let .createCollection(name, owner, dimension, metric, shards, m, efConstruct, createdAt):
            writer.write(UInt8(1))
            writer.writeString(name)
            writer.writeVarint(owner)
            writer.writeVarint(UInt64(dimension))
            writer.write(metric.rawValue)
            writer.writeVarint(UInt64(shards))
            writer.writeVarint(UInt64(m))
            writer.writeVarint(UInt64(efConstruct))
            writer.write(UInt64(bitPattern: createdAt))
        case let .deleteCollection(name, nil):
            writer.write(UInt8(2))
            writer.writeString(name)
        case let .deleteCollection(name, firstGroup?):
            writer.write(UInt8(7))
            writer.writeString(name)
            writer.writeVarint(firstGroup)
        case let .createUser(email, passwordHash, isAdmin, createdAt):
            writer.write(UInt8(3))
            writer.writeString(email)
            writer.writeString(passwordHash)
            writer.write(UInt8(isAdmin ? 1 : 0))
            writer.write(UInt64(bitPattern: createdAt))
        case let .createKey(id, owner, hash, name, createdAt):
            writer.write(UInt8(4))
            writer.writeString(id)
            writer.writeVarint(owner)
            writer.writeLengthPrefixed(hash)
            writer.writeString(name)
            writer.write(UInt64(bitPattern: createdAt))
        case let .deleteKey(id):
            writer.write(UInt8(5))
            writer.writeString(id)
        case let .initialise(secret):
            writer.write(UInt8(6))
            writer.writeLengthPrefixed(secret)
        }
        return writer.finish()
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> CatalogCommand {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8("command.version")
        guard version == formatVersion else { throw reader.error("command.version", .unsupportedVersion(UInt64(version))) }
        let kind = try reader.readUInt8("command.kind")
        let command: CatalogCommand
        switch kind {
        case 1:
            let name = try reader.readString("collection.name")
            let owner = try reader.readVarint("collection.owner")
            let dimension = try reader.readBoundedInt("collection.dimension", max: 65_536)
            let metric = try reader.readMetric("collection.metric")
            let shards = try reader.readBoundedInt("collection.shards", max: Catalog.shardsMax)
            let m = try reader.readBoundedInt("collection.m", max: 1024)
            let efConstruct = try reader.readBoundedInt("collection.ef construct", max: 1 << 20)
            let createdAt = Int64(bitPattern: try reader.readUInt64("collection.created at"))
            command = .createCollection(name: name, owner: owner, dimension: dimension, metric: metric, shards: shards,
                                        m: m, efConstruct: efConstruct, createdAt: createdAt)
        case 2:
            command = .deleteCollection(name: try reader.readString("collection.name"), firstGroup: nil)
        case 3:
            let email = try reader.readString("user.email")
            let hash = try reader.readString("user.password hash")
            let admin = try reader.readFlag("user.admin")
            let createdAt = Int64(bitPattern: try reader.readUInt64("user.created at"))
            command = .createUser(email: email, passwordHash: hash, isAdmin: admin, createdAt: createdAt)
        case 4:
            let id = try reader.readString("key.id")
            let owner = try reader.readVarint("key.owner")
            let hash = Array(try reader.readLengthPrefixed("key.hash", limit: 64))
            let name = try reader.readString("key.name")
            let createdAt = Int64(bitPattern: try reader.readUInt64("key.created at"))
            command = .createKey(id: id, owner: owner, hash: hash, name: name, createdAt: createdAt)
        case 5:
            command = .deleteKey(id: try reader.readString("key.id"))
        case 6:
            command = .initialise(secret: Array(try reader.readLengthPrefixed("secret", limit: 1024)))
        case 7:
            let name = try reader.readString("collection.name")
            command = .deleteCollection(name: name, firstGroup: try reader.readVarint("collection.first group"))
        default:
            throw reader.error("command.kind", .invalidValue(UInt64(kind)))
        }
        guard reader.isAtEnd else { throw reader.error("command", .invalid("\(reader.remaining) bytes after the command")) }
        return command
    }
}

extension Catalog {
    static let magic: [UInt8] = Array("VXCATLG1".utf8)

    /// The whole catalog: magic, fields, XXH3-64 of everything before the checksum.
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 256)
        writer.write(bytes: Self.magic)
        writer.writeVarint(nextGroup)
        writer.writeVarint(nextUser)
        writer.writeLengthPrefixed(secret)
        writer.writeVarint(UInt64(collections.count))
        for name in collections.keys.sorted() {
            let info = collections[name]!
            writer.writeString(info.name)
            writer.writeVarint(info.owner)
            writer.writeVarint(UInt64(info.dimension))
            writer.write(info.metric.rawValue)
            writer.writeVarint(UInt64(info.shardGroups.count))
            for group in info.shardGroups { writer.writeVarint(group) }
            writer.writeVarint(UInt64(info.m))
            writer.writeVarint(UInt64(info.efConstruct))
            writer.write(UInt64(bitPattern: info.createdAt))
        }
        writer.writeVarint(UInt64(users.count))
        for id in users.keys.sorted() {
            let user = users[id]!
            writer.writeVarint(user.id)
            writer.writeString(user.email)
            writer.writeString(user.passwordHash)
            writer.write(UInt8(user.isAdmin ? 1 : 0))
            writer.write(UInt64(bitPattern: user.createdAt))
        }
        writer.writeVarint(UInt64(keys.count))
        for id in keys.keys.sorted() {
            let key = keys[id]!
            writer.writeString(key.id)
            writer.writeVarint(key.owner)
            writer.writeLengthPrefixed(key.hash)
            writer.writeString(key.name)
            writer.write(UInt64(bitPattern: key.createdAt))
        }
        writer.write(XXH3.hash(writer.bytes))
        return writer.finish()
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Catalog {
        guard bytes.count >= magic.count + 8 else {
            throw DecodeError(field: "catalog", offset: 0, reason: .truncated(needed: magic.count + 8, available: bytes.count))
        }
        guard Array(bytes[0..<magic.count]) == magic else { throw DecodeError(field: "catalog.magic", offset: 0, reason: .badMagic) }
        var tail = ByteReader(bytes, range: bytes.count - 8 ..< bytes.count)
        let stored = try tail.readUInt64("catalog.checksum")
        let computed = XXH3.hash(bytes, range: 0 ..< bytes.count - 8)
        guard stored == computed else {
            throw DecodeError(field: "catalog.checksum", offset: UInt64(bytes.count - 8), reason: .checksumMismatch(stored: stored, computed: computed))
        }
        var reader = ByteReader(bytes, range: magic.count ..< bytes.count - 8)
        var catalog = Catalog()
        let nextGroupAt = reader.absoluteOffset
        catalog.nextGroup = try reader.readVarint("catalog.next group")
        // Shard groups start at 1,024: a lower counter would hand out the liveness or catalog group.
        guard catalog.nextGroup >= firstShardGroup else {
            throw DecodeError(field: "catalog.next group", offset: nextGroupAt,
                              reason: .invalid("\(catalog.nextGroup) is below the first shard group \(firstShardGroup)"))
        }
        catalog.nextUser = try reader.readVarint("catalog.next user")
        catalog.secret = Array(try reader.readLengthPrefixed("catalog.secret", limit: 1024))
        let collectionCount = try reader.readBoundedInt("catalog.collections.count", max: reader.remaining)
        for _ in 0..<collectionCount {
            let name = try reader.readString("collection.name")
            let owner = try reader.readVarint("collection.owner")
            let dimension = try reader.readBoundedInt("collection.dimension", max: 65_536)
            let metric = try reader.readMetric("collection.metric")
            let groupCount = try reader.readBoundedInt("collection.groups.count", max: shardsMax)
            var groups: [UInt64] = []
            for _ in 0..<groupCount {
                let group = try reader.readVarint("collection.group")
                guard group >= firstShardGroup, group < catalog.nextGroup else {
                    throw reader.error("collection.group", .invalid("group \(group) is outside \(firstShardGroup)..<\(catalog.nextGroup)"))
                }
                groups.append(group)
            }
            let m = try reader.readBoundedInt("collection.m", max: 1024)
            let efConstruct = try reader.readBoundedInt("collection.ef construct", max: 1 << 20)
            let createdAt = Int64(bitPattern: try reader.readUInt64("collection.created at"))
            guard catalog.collections[name] == nil else { throw reader.error("collection.name", .invalid("`\(name)` twice")) }
            catalog.collections[name] = CollectionInfo(name: name, owner: owner, dimension: dimension, metric: metric,
                                                       shardGroups: groups, m: m, efConstruct: efConstruct, createdAt: createdAt)
        }
        let userCount = try reader.readBoundedInt("catalog.users.count", max: reader.remaining)
        for _ in 0..<userCount {
            let id = try reader.readVarint("user.id")
            let email = try reader.readString("user.email")
            let hash = try reader.readString("user.password hash")
            let admin = try reader.readFlag("user.admin")
            let createdAt = Int64(bitPattern: try reader.readUInt64("user.created at"))
            guard id < catalog.nextUser, catalog.users[id] == nil else { throw reader.error("user.id", .invalid("user \(id) is repeated or not below the next id")) }
            catalog.users[id] = UserInfo(id: id, email: email, passwordHash: hash, isAdmin: admin, createdAt: createdAt)
        }
        let keyCount = try reader.readBoundedInt("catalog.keys.count", max: reader.remaining)
        for _ in 0..<keyCount {
            let id = try reader.readString("key.id")
            let owner = try reader.readVarint("key.owner")
            let hash = Array(try reader.readLengthPrefixed("key.hash", limit: 64))
            let name = try reader.readString("key.name")
            let createdAt = Int64(bitPattern: try reader.readUInt64("key.created at"))
            guard catalog.keys[id] == nil else { throw reader.error("key.id", .invalid("key `\(id)` twice")) }
            catalog.keys[id] = APIKeyInfo(id: id, owner: owner, hash: hash, name: name, createdAt: createdAt)
        }
        guard reader.isAtEnd else { throw reader.error("catalog", .invalid("\(reader.remaining) bytes after the keys")) }
        return catalog
    }
}

extension ByteWriter {
    mutating func writeString(_ string: String) { writeLengthPrefixed(Array(string.utf8)) }
}

extension ByteReader {
    mutating func readString(_ field: String) throws(DecodeError) -> String {
        let bytes = try readLengthPrefixed(field, limit: CatalogCommand.stringBytesMax)
        guard let string = String(validating: bytes, as: UTF8.self) else { throw error(field, .invalid("not UTF-8")) }
        return string
    }

    mutating func readBoundedInt(_ field: String, max: Int) throws(DecodeError) -> Int {
        let value = try readVarint(field)
        guard value <= UInt64(max) else { throw error(field, .tooLarge(value: value, limit: UInt64(max))) }
        return Int(value)
    }

    mutating func readFlag(_ field: String) throws(DecodeError) -> Bool {
        let value = try readUInt8(field)
        guard value <= 1 else { throw error(field, .invalidValue(UInt64(value))) }
        return value == 1
    }

    mutating func readMetric(_ field: String) throws(DecodeError) -> Metric {
        let raw = try readUInt8(field)
        guard let metric = Metric(rawValue: raw) else { throw error(field, .invalidValue(UInt64(raw))) }
        return metric
    }
}
