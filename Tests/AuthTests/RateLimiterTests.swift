// The token bucket under injected time: burst then refusal with the exact Retry-After, refill,
// the cap at `burst`, independent keys, exactness under concurrent callers, and the memory bound
// with its eviction order (full buckets first, then least recently used).

import Auth
import Basics
import Dispatch
import Synchronization
import Testing

@Suite struct RateLimiterTests {
    @Test func burstThenLimitedWithRetryAfter() {
        let limiter = RateLimiter(rate: 1, burst: 3)
        for _ in 0..<3 { #expect(limiter.take(key: "k", now: 0) == .allowed) }
        #expect(limiter.take(key: "k", now: 0) == .limited(retryAfterSeconds: 1))
        #expect(limiter.take(key: "k", now: 0.5) == .limited(retryAfterSeconds: 1))
        #expect(limiter.take(key: "k", now: 1) == .allowed)
        #expect(limiter.take(key: "k", now: 1) == .limited(retryAfterSeconds: 1))
    }

    @Test func retryAfterRoundsUp() {
        let slow = RateLimiter(rate: 0.2, burst: 1)  // one token per 5 s
        #expect(slow.take(key: "k", now: 100) == .allowed)
        #expect(slow.take(key: "k", now: 100) == .limited(retryAfterSeconds: 5))
        #expect(slow.take(key: "k", now: 101.5) == .limited(retryAfterSeconds: 4))  // 3.5 s → 4
        #expect(slow.take(key: "k", now: 104.9) == .limited(retryAfterSeconds: 1))  // 0.1 s → 1
        #expect(slow.take(key: "k", now: 105) == .allowed)
        let fast = RateLimiter(rate: 10, burst: 1)
        #expect(fast.take(key: "k", now: 0) == .allowed)
        #expect(fast.take(key: "k", now: 0) == .limited(retryAfterSeconds: 1))  // 0.1 s, at least 1
        #expect(fast.take(key: "k", now: 0.1) == .allowed)
    }

    @Test func refillsOverTimeUpToBurst() {
        let limiter = RateLimiter(rate: 2, burst: 4)
        for _ in 0..<4 { #expect(limiter.take(key: "k", now: 0) == .allowed) }
        #expect(limiter.take(key: "k", now: 0) != .allowed)
        // 1.5 s at 2/s: three tokens.
        for _ in 0..<3 { #expect(limiter.take(key: "k", now: 1.5) == .allowed) }
        #expect(limiter.take(key: "k", now: 1.5) != .allowed)
        // An hour idle refills only to burst.
        for _ in 0..<4 { #expect(limiter.take(key: "k", now: 3_600) == .allowed) }
        #expect(limiter.take(key: "k", now: 3_600) == .limited(retryAfterSeconds: 1))
    }

    /// Retry-After is tight: still refused a second before it, allowed at it.
    @Test func retryAfterIsExactSeeded() {
        var random = SeededRandom(seed: 0x5EED)
        var limitedCount = 0
        for round in 0..<2_000 {
            let rate = [0.01, 0.3, 1, 1.7, 3, 10, 97.5][Int(random.next() % 7)]
            let limiter = RateLimiter(rate: rate, burst: Int(random.next() % 5) + 1)
            var now = Double(random.next() % 1_000_000) / 1000
            for _ in 0..<20 {
                switch limiter.take(key: "k", now: now) {
                case .allowed:
                    now += Double(random.next() % 1_000) / 1000 / rate / 4
                case .limited(let seconds):
                    limitedCount += 1
                    #expect(seconds >= 1)
                    if seconds > 1 {
                        #expect(limiter.take(key: "k", now: now + Double(seconds - 1)) != .allowed,
                                 "seed \(random.seed) round \(round) rate \(rate)")
                    }
                    now += Double(seconds)
                    #expect(limiter.take(key: "k", now: now) == .allowed, "seed \(random.seed) round \(round) rate \(rate)")
                }
            }
        }
        #expect(limitedCount > 1_000)  // the test exercised refusals
    }

    @Test func keysAreIndependentAndTimeNeverRunsBackwards() {
        let limiter = RateLimiter(rate: 1, burst: 1)
        #expect(limiter.take(key: "a", now: 10) == .allowed)
        #expect(limiter.take(key: "b", now: 10) == .allowed)
        #expect(limiter.take(key: "a", now: 10) != .allowed)
        // A reading from the past refills nothing and does not rewind the bucket.
        #expect(limiter.take(key: "a", now: 0) == .limited(retryAfterSeconds: 1))
        #expect(limiter.take(key: "a", now: 10.5) == .limited(retryAfterSeconds: 1))
        #expect(limiter.take(key: "a", now: 11) == .allowed)
    }

    @Test func concurrentTakesAllowExactlyTheBurst() {
        let limiter = RateLimiter(rate: 0.001, burst: 500)
        let allowed = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<250 {
                if limiter.take(key: "shared", now: 0) == .allowed { allowed.add(1, ordering: .relaxed) }
            }
        }
        #expect(allowed.load(ordering: .relaxed) == 500)
    }

    @Test func memoryBoundHolds() {
        let limiter = RateLimiter(rate: 0.001, burst: 2, keysMax: 64)
        for index in 0..<10_000 {
            _ = limiter.take(key: "key-\(index)", now: Double(index) / 1000)
            #expect(limiter.trackedKeyCount <= 64)
        }
        #expect(limiter.trackedKeyCount > 0)
    }

    @Test func fullBucketsAreEvictedFirst() {
        let limiter = RateLimiter(rate: 1, burst: 2, keysMax: 4)
        for key in ["a", "b", "c", "d"] { #expect(limiter.take(key: key, now: 0) == .allowed) }
        #expect(limiter.take(key: "a", now: 0.1) == .allowed)  // a: 0.1 tokens left
        // At 1.5 s b, c and d have refilled to 2 (full); a has 1.5.
        #expect(limiter.take(key: "e", now: 1.5) == .allowed)
        #expect(limiter.trackedKeyCount == 2)
        // a kept its state: one token, then refused.
        #expect(limiter.take(key: "a", now: 1.5) == .allowed)
        #expect(limiter.take(key: "a", now: 1.5) == .limited(retryAfterSeconds: 1))
    }

    @Test func leastRecentlyUsedIsEvictedWhenNoneIsFull() {
        let limiter = RateLimiter(rate: 0.001, burst: 2, keysMax: 8)
        for index in 0..<8 {
            let key = "k\(index)"
            #expect(limiter.take(key: key, now: Double(index)) == .allowed)
            #expect(limiter.take(key: key, now: Double(index)) == .allowed)
            #expect(limiter.take(key: key, now: Double(index)) != .allowed)
        }
        #expect(limiter.trackedKeyCount == 8)
        // A ninth key evicts the oldest (keysMax / 8 = 1 of them): k0.
        #expect(limiter.take(key: "new", now: 8) == .allowed)
        #expect(limiter.trackedKeyCount == 8)
        #expect(limiter.take(key: "k1", now: 9) != .allowed)  // still remembered (and now recent)
        #expect(limiter.take(key: "k0", now: 10) == .allowed)  // forgotten: a fresh bucket
        #expect(limiter.take(key: "k2", now: 11) == .allowed)  // k0's return evicted k2, the oldest
        #expect(limiter.trackedKeyCount == 8)
    }
}
