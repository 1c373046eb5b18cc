// Settings of an `RPCClient` (one peer). Every queue and limit is named and bounded.

import Basics
import RPC

public struct RPCClientConfiguration: Sendable {
    /// What this side says about itself in the handshake: cluster id, role, node id, credential.
    /// Its `payloadBytesMax` is overwritten with `limits.payloadBytesMax`.
    public var handshake: Handshake
    /// Connections kept open to the peer; calls are spread over them round-robin.
    public var connectionsPerPeer: Int
    /// Bound on every frame payload this client reads.
    public var limits: FrameLimits
    /// Calls admitted but not yet handed to a socket (waiting for a connection or for the
    /// connection to become writable). Beyond either bound a call fails `resourceExhausted`.
    public var queuedRequestsMax: Int
    public var queuedBytesMax: Int
    /// Calls awaiting an answer on one connection (bounded like every queue).
    public var inFlightRequestsMax: Int
    /// Bound on the bytes of a streaming response received but not yet consumed; beyond it the
    /// stream is cancelled and fails `resourceExhausted`.
    public var streamBufferBytesMax: Int
    /// Payloads at least this large are sent LZ4-compressed (nil: never).
    public var compressionBytesMin: Int?
    public var connectTimeout: Duration
    /// Reconnection backoff: the first retry waits `backoffInitial`, each next one
    /// `backoffMultiplier` times longer up to `backoffMax`, each spread by ± `backoffJitter`
    /// (a fraction) drawn from a generator seeded with `randomSeed`.
    public var backoffInitial: Duration
    public var backoffMax: Duration
    public var backoffMultiplier: Double
    public var backoffJitter: Double
    public var randomSeed: UInt64
    /// An idle-or-not connection sends a ping this often (nil: never) and is closed when the
    /// pong does not arrive within `keepaliveTimeout`.
    public var keepaliveInterval: Duration?
    public var keepaliveTimeout: Duration
    /// NIO's outbound watermarks: above `high` calls stay queued until the buffered bytes fall
    /// under `low` (backpressure instead of unbounded buffering).
    public var writeBufferLowWatermark: Int
    public var writeBufferHighWatermark: Int

    public init(
        handshake: Handshake, connectionsPerPeer: Int = 1, limits: FrameLimits = FrameLimits(),
        queuedRequestsMax: Int = 16_384, queuedBytesMax: Int = 64 << 20, inFlightRequestsMax: Int = 65_536,
        streamBufferBytesMax: Int = 64 << 20, compressionBytesMin: Int? = nil, connectTimeout: Duration = .seconds(5),
        backoffInitial: Duration = .milliseconds(50), backoffMax: Duration = .seconds(5), backoffMultiplier: Double = 2,
        backoffJitter: Double = 0.2, randomSeed: UInt64 = 1, keepaliveInterval: Duration? = .seconds(10),
        keepaliveTimeout: Duration = .seconds(5), writeBufferLowWatermark: Int = 32 << 10, writeBufferHighWatermark: Int = 256 << 10
    ) {
        precondition((1...4).contains(connectionsPerPeer), "connectionsPerPeer must be 1...4")
        precondition(queuedRequestsMax > 0 && queuedBytesMax > 0 && inFlightRequestsMax > 0, "queue bounds must be positive")
        precondition(backoffMultiplier >= 1 && (0...1).contains(backoffJitter), "bad backoff")
        precondition(writeBufferLowWatermark > 0 && writeBufferLowWatermark <= writeBufferHighWatermark, "bad watermarks")
        self.handshake = handshake
        self.connectionsPerPeer = connectionsPerPeer
        self.limits = limits
        self.queuedRequestsMax = queuedRequestsMax
        self.queuedBytesMax = queuedBytesMax
        self.inFlightRequestsMax = inFlightRequestsMax
        self.streamBufferBytesMax = streamBufferBytesMax
        self.compressionBytesMin = compressionBytesMin
        self.connectTimeout = connectTimeout
        self.backoffInitial = backoffInitial
        self.backoffMax = backoffMax
        self.backoffMultiplier = backoffMultiplier
        self.backoffJitter = backoffJitter
        self.randomSeed = randomSeed
        self.keepaliveInterval = keepaliveInterval
        self.keepaliveTimeout = keepaliveTimeout
        self.writeBufferLowWatermark = writeBufferLowWatermark
        self.writeBufferHighWatermark = writeBufferHighWatermark
    }
}

/// Per-call settings.
public struct CallOptions: Sendable {
    /// How long the caller waits for the answer (nil: no deadline). Sent to the server as the
    /// remaining budget, so the server stops working on it too.
    public var timeout: Duration?
    /// Wait for a connection (up to the deadline) instead of failing `unavailable` at once
    /// while the peer is unreachable.
    public var waitForReady: Bool

    public init(timeout: Duration? = nil, waitForReady: Bool = false) {
        self.timeout = timeout
        self.waitForReady = waitForReady
    }
}

/// Reconnection delays: exponential with seeded jitter.
struct Backoff {
    let configuration: RPCClientConfiguration
    var random: SeededRandom

    init(configuration: RPCClientConfiguration, slot: Int) {
        self.configuration = configuration
        self.random = SeededRandom(seed: configuration.randomSeed &+ UInt64(slot))
    }

    /// The delay before retry number `attempt` (1 for the first retry).
    mutating func delay(attempt: Int) -> Duration {
        let base = Double(nanoseconds(configuration.backoffInitial))
            * pow(configuration.backoffMultiplier, Double(max(0, attempt - 1)))
        let capped = min(base, Double(nanoseconds(configuration.backoffMax)))
        let spread = (Double(random.next() >> 11) * 0x1.0p-53 * 2 - 1) * configuration.backoffJitter
        return .nanoseconds(Int64(max(0, capped * (1 + spread))))
    }

    func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 && result < 1e12 { result *= base; remaining -= 1 }
        return result
    }
}
