// A Bloom filter over a segment's keys: about `bitsPerKey` bits per key and
// k = round(bitsPerKey × 0.69) probes (≈ ln 2; the file stores k) derived from one XXH3-64 by double hashing.
//
//   filter block = u8 probe count k, then the bit array (bit i is byte i/8, bit i%8)

import Checksum
import Wire

public struct BloomFilter: Sendable {
    public let probes: Int
    public let bits: [UInt8]

    /// Builds a filter from key hashes (`BloomFilter.hash`).
    public init(hashes: [UInt64], bitsPerKey: Int) {
        precondition(bitsPerKey >= 1, "bitsPerKey must be positive")
        probes = max(1, min(30, Int((Double(bitsPerKey) * 0.69).rounded())))
        let bitCount = max(64, hashes.count * bitsPerKey)
        var bits = [UInt8](repeating: 0, count: (bitCount + 7) / 8)
        let m = UInt64(bits.count * 8)
        for hash in hashes {
            var h = hash
            let delta = (h >> 33) | (h << 31)
            for _ in 0..<probes {
                let bit = h % m
                bits[Int(bit / 8)] |= UInt8(1) << UInt8(bit % 8)
                h &+= delta
            }
        }
        self.bits = bits
    }

    init(probes: Int, bits: [UInt8]) {
        self.probes = probes
        self.bits = bits
    }

    public static func hash<C: Collection<UInt8>>(_ key: C) -> UInt64 {
        key.withContiguousStorageIfAvailable { XXH3.hash(UnsafeRawBufferPointer($0)) } ?? XXH3.hash(Array(key))
    }

    /// False means the key is certainly absent.
    public func mayContain(hash: UInt64) -> Bool {
        guard !bits.isEmpty else { return true }
        let m = UInt64(bits.count * 8)
        var h = hash
        let delta = (h >> 33) | (h << 31)
        for _ in 0..<probes {
            let bit = h % m
            if bits[Int(bit / 8)] & (UInt8(1) << UInt8(bit % 8)) == 0 { return false }
            h &+= delta
        }
        return true
    }

    public func encode() -> [UInt8] { [UInt8(probes)] + bits }

    public static func decode(_ bytes: [UInt8], baseOffset: UInt64) throws(DecodeError) -> BloomFilter {
        guard let first = bytes.first else {
            throw DecodeError(field: "filter.probes", offset: baseOffset, reason: .truncated(needed: 1, available: 0))
        }
        guard (1...30).contains(first) else {
            throw DecodeError(field: "filter.probes", offset: baseOffset, reason: .invalidValue(UInt64(first)))
        }
        return BloomFilter(probes: Int(first), bits: Array(bytes.dropFirst()))
    }
}
