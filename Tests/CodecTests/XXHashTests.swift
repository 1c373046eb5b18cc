// Known answers and consistency of the xxHash wrappers. The expected values come from the
// reference implementation (Python `xxhash` 4.1.0, bundling xxHash 0.8.4) over a fixed byte
// pattern at lengths that cross every internal code path of XXH64 (< 4, < 8, < 32, ≥ 32 bytes)
// and XXH3 (0, 1–3, 4–8, 9–16, 17–128, 129–240, > 240 bytes, more than one stripe block), with
// and without a seed. The overloads (array, slice, raw buffer, array range) must agree with each
// other, a range must hash like a copy of its bytes, and XXH3 with seed 0 equals unseeded XXH3.

import Basics
import Checksum
import Testing

@Suite struct XXHashTests {
    /// The byte pattern the known answers were computed over.
    static func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { i in UInt8(truncatingIfNeeded: (i &* 131 &+ 17) ^ (i >> 8)) }
    }

    static let seed64: UInt64 = 0x9E37_79B9_7F4A_7C15
    static let seed3: UInt64 = 42

    /// length, XXH64 seed 0, XXH64 seed `seed64`, XXH3-64 unseeded, XXH3-64 seed `seed3`.
    static let knownAnswers: [(Int, UInt64, UInt64, UInt64, UInt64)] = [
        (0, 0xEF46_DB37_51D8_E999, 0xC434_9FC9_3C01_0000, 0x2D06_8005_38D3_94C2, 0xB029_411F_F43D_84D2),
        (1, 0xAD10_CD97_80AC_4FF7, 0xEEE0_B6D2_7C96_399C, 0xF319_FE2B_DFCD_FEBD, 0x46D8_BD2C_8A4B_5D7C),
        (3, 0x4062_6D96_276E_4594, 0x93BA_463A_0847_67E9, 0xA107_BB65_B715_C89B, 0x7E86_A122_8318_2455),
        (4, 0x8822_07C1_22C7_6E23, 0xD0C2_67B9_EE1E_5859, 0x509F_0567_AA8A_3123, 0x5921_0C7F_AB91_A74E),
        (8, 0x90FD_A2F0_89FA_86DE, 0x7DEC_3505_3605_1091, 0xB143_3DC3_9B7F_946E, 0x03EE_97C6_938E_854E),
        (9, 0xA80D_EB19_2B8C_5215, 0xC682_06E0_D369_9C4D, 0xFE25_4244_0B36_DDC7, 0x2C2F_C180_20F3_554E),
        (16, 0x3A5B_1165_D151_AA50, 0xE6C0_9E8A_168A_56C0, 0x7151_89FF_3DCD_CFF6, 0x033B_F984_DC81_A351),
        (17, 0xC0BB_B6AC_5DBE_FE29, 0xC0CA_E4F1_374D_E2C9, 0x7D33_163B_8AF0_179C, 0xF876_ED44_DB52_83E5),
        (128, 0x9441_5292_08FC_B7EC, 0x28AC_83EC_62B9_36EE, 0xEE84_7F7F_CEF4_DDBC, 0x0A2F_642E_1323_75CE),
        (129, 0x8175_5BB2_4BDE_67E2, 0x37E8_4903_8785_5C08, 0x7E3E_7B75_0239_D4FC, 0x90C2_2C07_3C32_1443),
        (240, 0xC7B9_5BC2_DAB6_9193, 0x56DB_084B_6BB7_2CAD, 0x4408_9A14_4AAD_E02D, 0x7B53_67E0_6527_DFCF),
        (241, 0x5E18_79FF_D390_8474, 0x0B01_7D3E_3DA4_BA0B, 0xED93_572E_52AC_AC83, 0xCE69_84B7_5270_5DBB),
        (1000, 0x5045_7B1A_2D36_99F8, 0x00C9_2909_0D11_990B, 0xAD43_A3E6_D794_90D0, 0x173B_829F_07A7_4670),
        (4096, 0x961F_9915_3449_1146, 0x9F36_AC4F_DFDD_AFDB, 0x6F46_40BD_DC95_4A4E, 0x8E6F_C392_170C_6314),
        (100_000, 0x6DE1_42F5_7A37_E2B1, 0x3096_8303_7945_400F, 0x8DB9_A40E_72C4_F4A3, 0xC9FA_4BD2_0DB7_4047),
    ]

    @Test func knownAnswers() {
        #expect(XXH64.hash([]) == 0xEF46_DB37_51D8_E999)
        #expect(XXH3.hash([UInt8]()) == 0x2D06_8005_38D3_94C2)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        #expect(XXH3.hash(Array("abc".utf8)) == 0x78AF_5F94_892F_3950)

        for (count, xxh64, xxh64Seeded, xxh3, xxh3Seeded) in Self.knownAnswers {
            let bytes = Self.pattern(count)
            #expect(XXH64.hash(bytes) == xxh64, "XXH64 of \(count) bytes")
            #expect(XXH64.hash(bytes, seed: Self.seed64) == xxh64Seeded, "seeded XXH64 of \(count) bytes")
            #expect(XXH3.hash(bytes) == xxh3, "XXH3 of \(count) bytes")
            bytes.withUnsafeBytes { raw in
                #expect(XXH64.hash(raw) == xxh64, "raw XXH64 of \(count) bytes")
                #expect(XXH3.hash(raw) == xxh3, "raw XXH3 of \(count) bytes")
                #expect(XXH3.hash(raw, seed: Self.seed3) == xxh3Seeded, "seeded XXH3 of \(count) bytes")
                #expect(XXH3.hash(raw, seed: 0) == xxh3, "XXH3 with seed 0 of \(count) bytes")
            }
        }
        // A buffer without an address (the canonical empty buffer) hashes as empty input.
        #expect(XXH3.hash(UnsafeRawBufferPointer(start: nil, count: 0)) == 0x2D06_8005_38D3_94C2)
        #expect(XXH64.hash(UnsafeRawBufferPointer(start: nil, count: 0)) == 0xEF46_DB37_51D8_E999)
    }

    @Test func rangesAndSlicesHashLikeCopies() {
        var random = SeededRandom(seed: 0xC0DEC)
        for round in 0..<300 {
            let count = round == 0 ? 0 : Int(random.next() % (round < 250 ? 600 : 20_000))
            let bytes = random.bytes(count)
            for _ in 0..<4 {
                let a = Int(random.next() % UInt64(count + 1))
                let b = Int(random.next() % UInt64(count + 1))
                let range = min(a, b)..<max(a, b)
                let copy = Array(bytes[range])
                let expected = XXH3.hash(copy)
                #expect(XXH3.hash(bytes, range: range) == expected, "round \(round) range \(range)")
                #expect(XXH3.hash(bytes[range]) == expected, "round \(round) slice \(range)")
                let viaRaw = bytes.withUnsafeBytes { XXH3.hash(UnsafeRawBufferPointer(rebasing: $0[range])) }
                #expect(viaRaw == expected, "round \(round) raw \(range)")
            }
            #expect(XXH3.hash(bytes, range: 0..<count) == XXH3.hash(bytes))
            #expect(XXH3.hash(bytes, range: count..<count) == 0x2D06_8005_38D3_94C2)
        }
    }

    @Test func everySingleBitFlipChangesTheHash() {
        var random = SeededRandom(seed: 77)
        for count in [1, 7, 16, 64, 200, 1024] {
            let original = random.bytes(count)
            let originalXXH3 = XXH3.hash(original)
            let originalXXH64 = XXH64.hash(original)
            var seen: Set<UInt64> = [originalXXH3]
            for bit in 0..<min(count * 8, 2048) {
                var flipped = original
                flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                #expect(XXH64.hash(flipped) != originalXXH64, "XXH64, \(count) bytes, bit \(bit)")
                #expect(seen.insert(XXH3.hash(flipped)).inserted, "XXH3 collision, \(count) bytes, bit \(bit)")
            }
        }
    }
}
