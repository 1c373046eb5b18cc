// Latency summaries for benchmarks.

public struct LatencySummary: Sendable {
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    public var count: Int

    /// Summarises latencies given in nanoseconds (sorts a copy).
    public init(nanoseconds samples: [UInt64]) {
        let sorted = samples.sorted()
        count = sorted.count
        func at(_ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))
            return Double(sorted[index]) / 1000
        }
        p50Microseconds = at(0.50)
        p99Microseconds = at(0.99)
    }
}

/// Formats a Double with at most `digits` decimals, for JSON output.
public func formatNumber(_ value: Double, digits: Int = 1) -> String {
    guard value.isFinite else { return "null" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    if rounded == rounded.rounded() && abs(rounded) < 1e15 { return String(Int64(rounded)) }
    return String(rounded)
}
