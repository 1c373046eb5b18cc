// Distance kernels and metrics.
//
// Every kernel works on raw `Float` pointers with explicit `SIMD16<Float>` lanes and two
// accumulators (Swift never reassociates float sums, so a plain loop is not vectorised), plus
// a scalar tail; release builds target x86-64-v3, so the lanes become AVX2 `ymm` registers and
// `addProduct` becomes `vfmadd231ps` (how that was checked: docs/DECISIONS.md, "Distance
// kernels"). `ScalarReference` holds the plain loops the tests compare against.
//
// Inside the index every metric is a *distance*: smaller is closer. `Metric.score` turns it
// into what Qdrant reports: the dot product for Cosine and Dot (larger is better), the
// Euclidean distance (not squared) and the Manhattan distance (smaller is better).

/// How vectors are compared. Raw values are the on-disk codes (Format/hnsw.md).
public enum Metric: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Vectors are normalised to unit length at insert; distance = −dot.
    case cosine = 1
    /// Distance = −dot (vectors kept as given).
    case dot = 2
    /// Distance = squared L2; reported as the L2 distance.
    case euclid = 3
    /// Distance = L1.
    case manhattan = 4

    public var description: String {
        switch self {
        case .cosine: "cosine"
        case .dot: "dot"
        case .euclid: "euclid"
        case .manhattan: "manhattan"
        }
    }

    /// Parses the names used by the CLI and the REST API (case-insensitive; `l2` for Euclid).
    public init?(name: String) {
        switch name.lowercased() {
        case "cosine": self = .cosine
        case "dot", "ip": self = .dot
        case "euclid", "l2", "euclidean": self = .euclid
        case "manhattan", "l1": self = .manhattan
        default: return nil
        }
    }

    /// Whether a larger score is closer (Cosine, Dot) or a smaller one (Euclid, Manhattan).
    public var higherIsBetter: Bool { self == .cosine || self == .dot }

    /// The internal distance between two vectors of `dimension` floats.
    @inlinable @inline(__always)
    public func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimension: Int) -> Float {
        switch self {
        case .cosine, .dot: -Kernels.dot(a, b, count: dimension)
        case .euclid: Kernels.squaredL2(a, b, count: dimension)
        case .manhattan: Kernels.l1(a, b, count: dimension)
        }
    }

    /// The score a user sees for an internal distance.
    @inlinable
    public func score(distance: Float) -> Float {
        switch self {
        case .cosine, .dot: -distance
        case .euclid: distance.squareRoot()
        case .manhattan: distance
        }
    }

    /// The internal distance of a user-facing score (for score thresholds).
    @inlinable
    public func distance(score: Float) -> Float {
        switch self {
        case .cosine, .dot: -score
        case .euclid: score * score
        case .manhattan: score
        }
    }
}

/// SIMD distance kernels over raw pointers.
public enum Kernels {
    @inlinable @inline(__always)
    static func load16(_ pointer: UnsafePointer<Float>, _ offset: Int) -> SIMD16<Float> {
        UnsafeRawPointer(pointer + offset).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Σ aᵢ·bᵢ. Four accumulators (eight `ymm` registers): an FMA has a latency of four cycles
    /// and two issue ports, so fewer independent sums leave the units idle when the data is in
    /// cache (inserts revisit recently touched vectors).
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var sum0 = SIMD16<Float>(), sum1 = SIMD16<Float>(), sum2 = SIMD16<Float>(), sum3 = SIMD16<Float>()
        var index = 0
        while index + 64 <= count {
            sum0.addProduct(load16(a, index), load16(b, index))
            sum1.addProduct(load16(a, index + 16), load16(b, index + 16))
            sum2.addProduct(load16(a, index + 32), load16(b, index + 32))
            sum3.addProduct(load16(a, index + 48), load16(b, index + 48))
            index += 64
        }
        while index + 16 <= count {
            sum0.addProduct(load16(a, index), load16(b, index))
            index += 16
        }
        var result = ((sum0 + sum1) + (sum2 + sum3)).sum()
        while index < count {
            result += a[index] * b[index]
            index += 1
        }
        return result
    }

    /// Σ (aᵢ − bᵢ)².
    @inlinable
    public static func squaredL2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var sum0 = SIMD16<Float>(), sum1 = SIMD16<Float>()
        var index = 0
        while index + 32 <= count {
            let d0 = load16(a, index) - load16(b, index)
            let d1 = load16(a, index + 16) - load16(b, index + 16)
            sum0.addProduct(d0, d0)
            sum1.addProduct(d1, d1)
            index += 32
        }
        if index + 16 <= count {
            let d0 = load16(a, index) - load16(b, index)
            sum0.addProduct(d0, d0)
            index += 16
        }
        var result = (sum0 + sum1).sum()
        while index < count {
            let d = a[index] - b[index]
            result += d * d
            index += 1
        }
        return result
    }

    /// Σ |aᵢ − bᵢ|.
    @inlinable
    public static func l1(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var sum0 = SIMD16<Float>(), sum1 = SIMD16<Float>()
        var index = 0
        while index + 32 <= count {
            let d0 = load16(a, index) - load16(b, index)
            let d1 = load16(a, index + 16) - load16(b, index + 16)
            sum0 += pointwiseMax(d0, -d0)
            sum1 += pointwiseMax(d1, -d1)
            index += 32
        }
        if index + 16 <= count {
            let d0 = load16(a, index) - load16(b, index)
            sum0 += pointwiseMax(d0, -d0)
            index += 16
        }
        var result = (sum0 + sum1).sum()
        while index < count {
            result += abs(a[index] - b[index])
            index += 1
        }
        return result
    }

    /// Σ aᵢ², for normalising.
    @inlinable
    public static func squaredNorm(_ a: UnsafePointer<Float>, count: Int) -> Float { dot(a, a, count: count) }
}

/// Plain loops in Double precision: the oracle the SIMD kernels are tested against.
public enum ScalarReference {
    public static func dot(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    public static func squaredL2(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
    }

    public static func l1(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).reduce(0) { $0 + abs(Double($1.0) - Double($1.1)) }
    }

    /// The internal distance (as `Metric.distance`) in Double precision.
    public static func distance(_ metric: Metric, _ a: [Float], _ b: [Float]) -> Double {
        switch metric {
        case .cosine, .dot: -dot(a, b)
        case .euclid: squaredL2(a, b)
        case .manhattan: l1(a, b)
        }
    }
}
