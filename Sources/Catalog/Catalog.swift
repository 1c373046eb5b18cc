// The catalog: what the placement role's Raft group replicates — collections and their shard
// groups, users, API keys and the token-signing secret (Format/catalog.md). A value type;
// `apply` is deterministic, so every replica that applies the same commands holds the same
// catalog, and an outcome (a name already taken) is the same everywhere.
//
// Secrets never enter it in clear: passwords arrive as argon2id hashes and API keys as SHA-256
// digests (the `Auth` module makes both before proposing).

import VectorIndex
import Wire

public struct CollectionInfo: Sendable, Equatable {
    public var name: String
    public var owner: UInt64
    public var dimension: Int
    public var metric: Metric
    /// One Raft group per shard, in shard order (a point's shard is its hash modulo the count).
    public var shardGroups: [UInt64]
    public var m: Int
    public var efConstruct: Int
    public var createdAt: Int64

    public init(name: String, owner: UInt64, dimension: Int, metric: Metric, shardGroups: [UInt64], m: Int, efConstruct: Int, createdAt: Int64) {
        self.name = name
        self.owner = owner
        self.dimension = dimension
        self.metric = metric
        self.shardGroups = shardGroups
        self.m = m
        self.efConstruct = efConstruct
        self.createdAt = createdAt
    }
}

public struct UserInfo: Sendable, Equatable {
    public var id: UInt64
    public var email: String
    /// argon2id, encoded (`$argon2id$v=19$...`).
    public var passwordHash: String
    public var isAdmin: Bool
    public var createdAt: Int64
}

public struct APIKeyInfo: Sendable, Equatable {
    public var id: String
    public var owner: UInt64
    /// SHA-256 of the key as shown to its owner.
    public var hash: [UInt8]
    public var name: String
    public var createdAt: Int64
}

public enum CatalogCommand: Sendable, Equatable {
    case createCollection(name: String, owner: UInt64, dimension: Int, metric: Metric, shards: Int, m: Int, efConstruct: Int, createdAt: Int64)
    /// Deletes collection `name` — only the one whose first shard group is `firstGroup` when
    /// that is given, so a delete decided against one collection cannot remove another that
    /// took its name since (nil: whichever holds the name; the legacy form, kind 2).
    case deleteCollection(name: String, firstGroup: UInt64?)
    case createUser(email: String, passwordHash: String, isAdmin: Bool, createdAt: Int64)
    case createKey(id: String, owner: UInt64, hash: [UInt8], name: String, createdAt: Int64)
    case deleteKey(id: String)
    /// Sets the token-signing secret if none is set yet (the first start proposes one).
    case initialise(secret: [UInt8])
}

public enum CatalogOutcome: Sendable, Equatable {
    case done
    case collectionCreated(CollectionInfo)
    case collectionDeleted(CollectionInfo)
    case userCreated(UserInfo)
    case keyCreated(APIKeyInfo)
    case keyDeleted(APIKeyInfo)
    case alreadyExists(String)
    case notFound(String)
    case invalid(String)
}

public struct Catalog: Sendable, Equatable {
    public internal(set) var collections: [String: CollectionInfo] = [:]
    public internal(set) var users: [UInt64: UserInfo] = [:]
    public internal(set) var keys: [String: APIKeyInfo] = [:]
    public internal(set) var secret: [UInt8] = []
    /// The next Raft group id for a shard (groups are never reused).
    public internal(set) var nextGroup: UInt64 = Catalog.firstShardGroup
    public internal(set) var nextUser: UInt64 = 1

    /// Group 0 carries node liveness, 1 the catalog; shard groups start here.
    public static let firstShardGroup: UInt64 = 1024
    public static let shardsMax = 64
    public static let collectionNameBytesMax = 255

    public init() {}

    public func user(email: String) -> UserInfo? { users.values.first { $0.email == email } }

    public static func validateCollectionName(_ name: String) -> String? {
        if name.isEmpty { return "a collection name cannot be empty" }
        if name.utf8.count > collectionNameBytesMax { return "a collection name is at most \(collectionNameBytesMax) bytes" }
        for scalar in name.unicodeScalars {
            let ok = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9")
                || scalar == "_" || scalar == "-" || scalar == "."
            if !ok { return "a collection name may hold only letters, digits, '_', '-' and '.'" }
        }
        if name == "." || name == ".." { return "a collection name cannot be '.' or '..'" }
        return nil
    }

    public mutating func apply(_ command: CatalogCommand) -> CatalogOutcome {
        switch command {
        case let .createCollection(name, owner, dimension, metric, shards, m, efConstruct, createdAt):
            if let problem = Self.validateCollectionName(name) { return .invalid(problem) }
            if collections[name] != nil { return .alreadyExists("collection `\(name)` already exists") }
            guard shards >= 1, shards <= Self.shardsMax else { return .invalid("shard_number must be 1…\(Self.shardsMax)") }
            guard dimension >= 1, dimension <= 65_536 else { return .invalid("the vector size must be 1…65536") }
            // Only a damaged or forged snapshot comes near the end of the id space; refusing keeps
            // `apply` total (the same outcome on every replica, no trap).
            guard nextGroup <= UInt64.max - UInt64(shards) else { return .invalid("no shard group ids are left") }
            let groups = (0..<UInt64(shards)).map { nextGroup + $0 }
            nextGroup += UInt64(shards)
            let info = CollectionInfo(name: name, owner: owner, dimension: dimension, metric: metric, shardGroups: groups,
                                      m: m, efConstruct: efConstruct, createdAt: createdAt)
            collections[name] = info
            return .collectionCreated(info)
        case let .deleteCollection(name, firstGroup):
            guard let info = collections[name] else { return .notFound("collection `\(name)` does not exist") }
            if let firstGroup, info.shardGroups.first != firstGroup {
                return .notFound("collection `\(name)` was deleted and created again since")
            }
            collections[name] = nil
            return .collectionDeleted(info)
        case let .createUser(email, passwordHash, isAdmin, createdAt):
            if user(email: email) != nil { return .alreadyExists("a user with this email already exists") }
            guard nextUser < UInt64.max else { return .invalid("no user ids are left") }
            let info = UserInfo(id: nextUser, email: email, passwordHash: passwordHash, isAdmin: isAdmin, createdAt: createdAt)
            nextUser += 1
            users[info.id] = info
            return .userCreated(info)
        case let .createKey(id, owner, hash, name, createdAt):
            if keys[id] != nil { return .alreadyExists("an API key with this id already exists") }
            guard users[owner] != nil else { return .notFound("user \(owner) does not exist") }
            let info = APIKeyInfo(id: id, owner: owner, hash: hash, name: name, createdAt: createdAt)
            keys[id] = info
            return .keyCreated(info)
        case let .deleteKey(id):
            guard let info = keys.removeValue(forKey: id) else { return .notFound("API key `\(id)` does not exist") }
            return .keyDeleted(info)
        case let .initialise(secret):
            if self.secret.isEmpty { self.secret = secret }
            return .done
        }
    }
}
