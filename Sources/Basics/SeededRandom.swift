// A small, fast, seedable random source (xoshiro256**, seeded through SplitMix64).
//
// Every random choice in Vectron — crash simulation, fault injection, test workloads, later HNSW
// levels and Raft election timeouts — draws from one of these, so a run is reproduced exactly by
// its seed. Never use the system generator in code that a test or simulator must replay.

public struct SeededRandom: RandomNumberGenerator, Sendable {
    @usableFromInline var state: (UInt64, UInt64, UInt64, UInt64)

    /// The seed this generator started from, for printing in failure messages.
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        var splitMix = seed
        func next() -> UInt64 {
            splitMix &+= 0x9E37_79B9_7F4A_7C15
            var z = splitMix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    @inlinable
    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, by: 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, by: 45)
        return result
    }

    @inlinable
    func rotateLeft(_ x: UInt64, by k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// True with probability `p` (0 ≤ p ≤ 1).
    public mutating func chance(_ p: Double) -> Bool {
        if p <= 0 { return false }
        if p >= 1 { return true }
        return Double(next() >> 11) * 0x1.0p-53 < p
    }

    /// Fills `count` bytes with random data.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = next()
            for _ in 0..<8 where i < count {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }
}
