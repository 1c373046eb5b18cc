// A per-key token-bucket rate limiter (login attempts per account, requests per API key or
// address). Each key's bucket holds up to `burst` tokens and refills at `rate` tokens per
// second; a request takes one token or is refused with the whole seconds until one is due.
//
// Time is a parameter (`now`, seconds on any monotonic scale the caller chooses), so tests and
// the simulator drive it exactly; the limiter reads no clock. Thread-safe behind one lock.
//
// Memory is bounded: at most `keysMax` buckets. When a new key arrives at the bound, first every
// bucket that has refilled to `burst` is dropped — a full bucket is indistinguishable from a
// new one, so that forgets nothing. Only if none is full are the least recently used eighth
// evicted (oldest first, ties by key, so the outcome never depends on hashing order); those keys
// start again with a full bucket, the price of a bound under a flood of distinct keys.

import Synchronization

public enum RateDecision: Sendable, Equatable {
    case allowed
    /// Refused; a token is due in at most this many whole seconds (≥ 1, for `Retry-After`).
    case limited(retryAfterSeconds: Int)
}

public final class RateLimiter: Sendable {
    public let rate: Double
    public let burst: Double
    public let keysMax: Int

    private struct Bucket {
        var tokens: Double
        /// When `tokens` was last brought up to date.
        var updatedAt: Double
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
    }

    private let state = Mutex(State())

    /// Float tolerance on token counts and waits (see `take`).
    private static let tokenSlack = 1e-9

    /// `rate` tokens per second (> 0), up to `burst` (≥ 1) at once, for at most `keysMax` keys.
    public init(rate: Double, burst: Int, keysMax: Int = 100_000) {
        precondition(rate > 0 && rate.isFinite, "rate must be positive")
        precondition(burst >= 1, "burst must be at least 1")
        precondition(keysMax >= 1, "keysMax must be at least 1")
        self.rate = rate
        self.burst = Double(burst)
        self.keysMax = keysMax
    }

    /// Takes one token from `key`'s bucket at time `now` (seconds). Time going backwards is
    /// treated as no time passing.
    public func take(key: String, now: Double) -> RateDecision {
        precondition(now.isFinite, "now must be finite")
        return state.withLock { state in
            var bucket: Bucket
            if let existing = state.buckets[key] {
                bucket = existing
                let elapsed = max(0, now - bucket.updatedAt)
                bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
                bucket.updatedAt = max(bucket.updatedAt, now)
            } else {
                if state.buckets.count >= keysMax { evict(&state, now: now) }
                bucket = Bucket(tokens: burst, updatedAt: now)
            }
            let decision: RateDecision
            // The slack absorbs float error in the refill sum, so that a caller who waits exactly
            // the Retry-After it was given is let in, and 2.0000000001 s is not rounded up to 3.
            if bucket.tokens + Self.tokenSlack >= 1 {
                bucket.tokens = max(0, bucket.tokens - 1)
                decision = .allowed
            } else {
                // The first whole second at which the deficit is within the slack.
                let seconds = ((1 - bucket.tokens - Self.tokenSlack) / rate).rounded(.up)
                decision = .limited(retryAfterSeconds: max(1, seconds >= Double(Int.max) ? Int.max : Int(seconds)))
            }
            state.buckets[key] = bucket
            return decision
        }
    }

    /// Keys currently tracked (for tests and metrics).
    public var trackedKeyCount: Int {
        state.withLock { $0.buckets.count }
    }

    private func evict(_ state: inout State, now: Double) {
        state.buckets = state.buckets.filter { _, bucket in
            bucket.tokens + max(0, now - bucket.updatedAt) * rate < burst
        }
        guard state.buckets.count >= keysMax else { return }
        let evictCount = max(1, keysMax / 8)
        let oldest = state.buckets
            .map { (key: $0.key, updatedAt: $0.value.updatedAt) }
            .sorted { ($0.updatedAt, $0.key) < ($1.updatedAt, $1.key) }
            .prefix(evictCount)
        for entry in oldest { state.buckets[entry.key] = nil }
    }
}
