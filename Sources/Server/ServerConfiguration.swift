// What `vectron serve` runs with. Every field has a default that works on a laptop; the command
// line, environment variables and a config file change them (cmd/vectron).

import Auth

public struct ServerConfiguration: Sendable {
    /// Where everything is kept.
    public var dataDirectory = "./vectron-data"
    /// The REST API's address. Loopback by default: exposing it is a deliberate choice.
    public var httpHost = "127.0.0.1"
    public var httpPort = 6333
    /// The binary protocol's address (Format/client.md); its host defaults to the REST API's.
    public var rpcHost: String?
    public var rpcPort = 6334
    /// The bootstrap administrator's API key (`VECTRON_ADMIN_KEY`); when nil, the first start
    /// generates one and prints it once.
    public var adminKey: String?
    /// Raft time: one tick per interval (elections take 10 ticks).
    public var tickMilliseconds = 100
    /// How often shards are considered for a checkpoint and the log for compaction.
    public var maintenanceMilliseconds = 1000
    /// A shard is checkpointed once this many bytes of commands were applied since the last
    /// checkpoint (16 MiB ≈ 10,000 points of 384 floats: what a restart after a crash replays)…
    public var checkpointBytes = 16 << 20
    /// …or this long after its last change.
    public var checkpointMilliseconds = 10_000
    /// Threads one upsert command's HNSW inserts may use.
    public var insertThreads = 2
    /// The largest request body (Qdrant's default).
    public var maxBodyBytes = 32 << 20
    /// Per credential: sustained requests per second and the burst above it.
    public var rateLimitPerSecond: Double = 2000
    public var rateLimitBurst = 4000
    /// Per client address, for login and registration (each costs an argon2id hash): sustained
    /// attempts per second and the burst above it.
    public var passwordAttemptsPerSecond: Double = 10
    public var passwordAttemptsBurst = 30
    /// Lifetime of a login token.
    public var tokenLifetimeSeconds: Int64 = 3600
    /// argon2id cost for passwords.
    public var passwordHashing: PasswordHasher.Parameters = .interactive
    /// Threads of the HTTP server's event loops.
    public var eventLoopThreads = 2

    public init() {}
}
