// Scalar quantisation for the graph walk.
//
// Every node keeps, next to its neighbour list in the level-0 arena, a *code record*: its vector
// as int8 codes with one scale per vector, and the exact squared norm. Walks (inserts, searches,
// repairs) compare code records — a quarter of the bytes of the float vector, which is what a
// memory-bound walk pays for — and searches re-score their final candidates with the float
// vectors, so the scores users see are exact. See docs/DECISIONS.md, "Walks read int8 codes".
//
// Record layout (`codeBytes`, a multiple of 4): scale (Float32), squared norm (Float32), then
// `dimension` codes in −127…127 with vᵢ ≈ scale·codeᵢ, padded with zeros.

import CVectorSupport

enum Quantizer {
    static let headerBytes = 8

    /// Bytes of one code record.
    static func recordBytes(dimension: Int) -> Int { (headerBytes + dimension + 3) & ~3 }

    /// Writes the code record of `vector` (`dimension` finite floats) to `record`.
    static func encode(_ vector: UnsafePointer<Float>, dimension: Int, into record: UnsafeMutableRawPointer) {
        var largest: Float = 0
        for index in 0..<dimension { largest = max(largest, abs(vector[index])) }
        let scale = largest / 127
        let inverse: Float = largest > 0 ? 127 / largest : 0
        record.storeBytes(of: scale, as: Float.self)
        record.storeBytes(of: Kernels.squaredNorm(vector, count: dimension), toByteOffset: 4, as: Float.self)
        let codes = (record + headerBytes).assumingMemoryBound(to: Int8.self)
        for index in 0..<dimension {
            // |vᵢ·inverse| ≤ 127 up to rounding: clamp so that −128 never appears.
            codes[index] = Int8(max(-127, min(127, (vector[index] * inverse).rounded())))
        }
        let padded = recordBytes(dimension: dimension)
        if padded > headerBytes + dimension {
            (record + headerBytes + dimension).initializeMemory(as: UInt8.self, repeating: 0, count: padded - headerBytes - dimension)
        }
    }
}

extension Metric {
    /// The internal distance (as `distance(_:_:dimension:)`) estimated from two code records.
    @inline(__always)
    func estimate(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, dimension: Int) -> Float {
        let scaleA = a.load(as: Float.self), scaleB = b.load(as: Float.self)
        let codesA = (a + Quantizer.headerBytes).assumingMemoryBound(to: Int8.self)
        let codesB = (b + Quantizer.headerBytes).assumingMemoryBound(to: Int8.self)
        switch self {
        case .cosine, .dot:
            return -(scaleA * scaleB) * Float(vectron_dot_i8(codesA, codesB, Int64(dimension)))
        case .euclid:
            let dot = scaleA * scaleB * Float(vectron_dot_i8(codesA, codesB, Int64(dimension)))
            return max(0, a.load(fromByteOffset: 4, as: Float.self) + b.load(fromByteOffset: 4, as: Float.self) - 2 * dot)
        case .manhattan:
            return vectron_l1_i8(codesA, scaleA, codesB, scaleB, Int64(dimension))
        }
    }
}
