// Known answers for SHA-256 (FIPS 180-2 "abc") and HMAC-SHA256 (RFC 4231 cases 1, 2, 6 — case
// 6's 131-byte key exercises the longer-than-a-block path), base64url against RFC 4648's
// vectors, seeded round trips and the strict decoder's refusals, constant-time comparison, hex.

import Auth
import Basics
import Testing

@Suite struct SecretsTests {
    @Test func sha256KnownAnswers() {
        #expect(Secrets.hex(Secrets.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Secrets.hex(Secrets.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func hmacSHA256RFC4231Case1() {
        let mac = Secrets.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8))
        #expect(Secrets.hex(mac) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    @Test func hmacSHA256RFC4231Case2() {
        let mac = Secrets.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(Secrets.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func hmacSHA256RFC4231Case6() {
        let mac = Secrets.hmacSHA256(key: [UInt8](repeating: 0xaa, count: 131),
                                     message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
        #expect(Secrets.hex(mac) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func base64URLKnownAnswers() {
        let vectors: [(String, String)] = [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"),
                                           ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        for (plain, encoded) in vectors {
            #expect(Secrets.base64URLEncode(Array(plain.utf8)) == encoded)
            #expect(Secrets.base64URLDecode(encoded) == Array(plain.utf8))
        }
        // The two characters that differ from standard base64.
        #expect(Secrets.base64URLEncode([0xfb, 0xff]) == "-_8")
        #expect(Secrets.base64URLDecode("-_8") == [0xfb, 0xff])
    }

    @Test func base64URLRoundTripsSeeded() {
        var random = SeededRandom(seed: 0xA17)
        for length in 0..<200 {
            let bytes = random.bytes(length)
            let encoded = Secrets.base64URLEncode(bytes)
            #expect(encoded.utf8.count == (length * 4 + 2) / 3, "seed \(random.seed) length \(length)")
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Secrets.base64URLDecode(encoded) == bytes, "seed \(random.seed) length \(length)")
        }
    }

    @Test func base64URLRejectsNonCanonicalInput() {
        for bad in ["Zg==", "Zg=", "Zm9vYg==", "Zm9v+w", "Zm9v/w", "Zm9 v", "Zm9v\n", "Z", "Zm9vY",
                    "Zh", "Zm9", "Zm9vYmF", "é", "Zm\u{0}v", ".", "Zm9v.Zg"] {
            #expect(Secrets.base64URLDecode(bad) == nil, "accepted \(bad.debugDescription)")
        }
    }

    @Test func constantTimeEqual() {
        #expect(Secrets.constantTimeEqual([], []))
        #expect(Secrets.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!Secrets.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!Secrets.constantTimeEqual([9, 2, 3], [1, 2, 3]))
        #expect(!Secrets.constantTimeEqual([1, 2, 3], [1, 2]))
        #expect(!Secrets.constantTimeEqual([], [0]))
    }

    @Test func hexRoundTrips() {
        #expect(Secrets.hex([0x00, 0x0f, 0xa5, 0xff]) == "000fa5ff")
        #expect(Secrets.bytes(fromHex: "000fa5ff") == [0x00, 0x0f, 0xa5, 0xff])
        #expect(Secrets.bytes(fromHex: "") == [])
        #expect(Secrets.bytes(fromHex: "abc") == nil)
        #expect(Secrets.bytes(fromHex: "AB") == nil)
        #expect(Secrets.bytes(fromHex: "0g") == nil)
    }

    @Test func randomBytes() {
        #expect(Secrets.randomBytes(0).isEmpty)
        let a = Secrets.randomBytes(32)
        let b = Secrets.randomBytes(32)
        #expect(a.count == 32)
        #expect(a != b)  // fails with probability 2⁻²⁵⁶
    }
}
