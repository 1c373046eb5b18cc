// API keys: the `vk_<12 hex>_<43 base64url>` format, parsing that refuses every malformed
// variant, and constant-time matching against the stored SHA-256.

import Auth
import Basics
import Testing

@Suite struct APIKeyTests {
    @Test func generatedKeysHaveTheDocumentedFormat() {
        var random = SeededRandom(seed: 42)
        for _ in 0..<100 {
            let (id, secret) = APIKey.generate(using: &random)
            #expect(secret.utf8.count == 59)
            #expect(secret.hasPrefix("vk_" + id + "_"))
            #expect(id.utf8.count == 12)
            #expect(id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
            guard let parsed = APIKey.parse(secret) else {
                Issue.record("generated key did not parse (seed \(random.seed))")
                continue
            }
            #expect(parsed.id == id)
            #expect(parsed.secret.count == 32)
            #expect("vk_" + id + "_" + Secrets.base64URLEncode(parsed.secret) == secret)
        }
    }

    @Test func seededGenerationIsReproducible() {
        var a = SeededRandom(seed: 7)
        var b = SeededRandom(seed: 7)
        #expect(APIKey.generate(using: &a) == APIKey.generate(using: &b))
    }

    @Test func systemKeysDiffer() {
        let first = APIKey.generate()
        let second = APIKey.generate()
        #expect(first.id != second.id)
        #expect(first.secret != second.secret)
        #expect(APIKey.parse(first.secret)?.id == first.id)
    }

    @Test func parseRejectsMalformedKeys() {
        var random = SeededRandom(seed: 3)
        let (_, key) = APIKey.generate(using: &random)
        let characters = Array(key)
        func replacing(_ offset: Int, with character: Character) -> String {
            var copy = characters
            copy[offset] = character
            return String(copy)
        }
        let bad = [
            "", "vk_", String(key.dropLast()), key + "A", key + "=",
            "VK_" + key.dropFirst(3), "vk-" + key.dropFirst(3), "xk_" + key.dropFirst(3),
            replacing(3, with: "A"),   // uppercase hex in the id
            replacing(8, with: "g"),   // not hex
            replacing(15, with: "-"),  // separator
            replacing(20, with: "+"),  // standard base64, not base64url
            replacing(20, with: "="),
            replacing(58, with: "B"),  // non-canonical: the last character's low 2 bits must be 0
            " " + key.dropFirst(),
        ]
        for text in bad {
            #expect(APIKey.parse(text) == nil, "accepted \(text.debugDescription)")
        }
    }

    @Test func matchesOnlyTheRightKey() {
        var random = SeededRandom(seed: 11)
        let (_, key) = APIKey.generate(using: &random)
        let stored = APIKey.hash(key)
        #expect(stored == Secrets.sha256(Array(key.utf8)))
        #expect(stored.count == 32)
        #expect(APIKey.matches(presented: key, storedHash: stored))
        // Change the last character to another canonical one (low 2 bits zero: A, E, I, …) and to
        // a non-canonical one: neither matches.
        var last = key.last!
        let canonicalOther: Character = last == "A" ? "E" : "A"
        #expect(APIKey.parse(String(key.dropLast()) + String(canonicalOther)) != nil)
        #expect(!APIKey.matches(presented: String(key.dropLast()) + String(canonicalOther), storedHash: stored))
        last = last == "B" ? "C" : "B"
        #expect(!APIKey.matches(presented: String(key.dropLast()) + String(last), storedHash: stored))
        let (_, other) = APIKey.generate(using: &random)
        #expect(!APIKey.matches(presented: other, storedHash: stored))
        #expect(!APIKey.matches(presented: key, storedHash: Array(stored.dropLast())))
        #expect(!APIKey.matches(presented: key, storedHash: []))
    }
}
