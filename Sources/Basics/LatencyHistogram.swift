// A latency histogram with fixed bucket bounds: a count, a sum and one counter per bound (each
// counts the observations at or below its bound, the way Prometheus exposes them). A value
// type with no lock: its owner guards it (the record log keeps one under its own lock, the
// server behind its metrics lock). Every histogram shares `bounds`, so merging two is a sum.
//
// The bucket array is allocated on the first observation: an empty histogram (the record
// log resets its per-batch statistics after every batch) costs no allocation.

public struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds in seconds, ascending: 50 µs (an fdatasync on a fast device) to 10 s.
    public static let bounds: [Double] = [
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    public private(set) var count: UInt64 = 0
    /// Sum of the observations, in seconds.
    public private(set) var sum: Double = 0
    /// Cumulative counts, one per bound (empty until the first observation).
    private var cumulative: [UInt64] = []

    public init() {}

    public mutating func record(seconds: Double) {
        precondition(seconds >= 0, "a latency is never negative")
        if cumulative.isEmpty { cumulative = [UInt64](repeating: 0, count: Self.bounds.count) }
        count += 1
        sum += seconds
        // Bounds ascend: every bucket from the first that holds the value on counts it.
        var index = Self.bounds.count
        while index > 0 && seconds <= Self.bounds[index - 1] { index -= 1 }
        for bucket in index..<Self.bounds.count { cumulative[bucket] += 1 }
    }

    public mutating func record(nanoseconds: UInt64) {
        record(seconds: Double(nanoseconds) / 1e9)
    }

    /// Adds `other`'s observations to this one.
    public mutating func merge(_ other: LatencyHistogram) {
        guard other.count > 0 else { return }
        if cumulative.isEmpty { cumulative = [UInt64](repeating: 0, count: Self.bounds.count) }
        count += other.count
        sum += other.sum
        for bucket in 0..<Self.bounds.count { cumulative[bucket] += other.cumulative[bucket] }
    }

    /// Observations at or below `bounds[bucket]`.
    public func cumulativeCount(bucket: Int) -> UInt64 {
        cumulative.isEmpty ? 0 : cumulative[bucket]
    }
}
