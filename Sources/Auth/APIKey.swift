// API keys. The key a user is shown once is `vk_<id>_<secret>`:
//
//   vk_          3 bytes  fixed prefix (finds keys in logs and secret scanners)
//   <id>        12 bytes  lowercase hex of 6 random bytes: the public lookup id
//   _            1 byte
//   <secret>    43 bytes  unpadded base64url of 32 random bytes (canonical)
//
// 59 ASCII bytes in all. The server stores only the id and `APIKey.hash` of the whole presented
// string (SHA-256: the 256-bit secret makes a slow hash unnecessary), and checks a presented key
// with `matches`, comparing digests in constant time. The id is not secret.

public enum APIKey {
    public static let prefix = "vk_"
    public static let idBytes = 6
    public static let secretBytes = 32
    /// Characters of the encoded parts.
    public static let idLength = idBytes * 2
    public static let secretLength = (secretBytes * 4 + 2) / 3
    public static let length = prefix.utf8.count + idLength + 1 + secretLength

    /// A new key from the system CSPRNG: its `id` and the full `secret` string to show the user.
    public static func generate() -> (id: String, secret: String) {
        make(idBytes: Secrets.randomBytes(idBytes), secretBytes: Secrets.randomBytes(secretBytes))
    }

    /// A key drawn from `generator`: for tests and simulations only (a seeded generator makes
    /// guessable keys).
    public static func generate<Generator: RandomNumberGenerator>(using generator: inout Generator) -> (id: String, secret: String) {
        let id = (0..<idBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let secret = (0..<secretBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return make(idBytes: id, secretBytes: secret)
    }

    private static func make(idBytes: [UInt8], secretBytes: [UInt8]) -> (id: String, secret: String) {
        let id = Secrets.hex(idBytes)
        return (id, prefix + id + "_" + Secrets.base64URLEncode(secretBytes))
    }

    /// The id and the 32 secret bytes of a well-formed presented key, or nil.
    public static func parse(_ presented: String) -> (id: String, secret: [UInt8])? {
        let bytes = Array(presented.utf8)
        guard bytes.count == length, presented.hasPrefix(prefix) else { return nil }
        let idStart = prefix.utf8.count
        let separator = idStart + idLength
        let idDigits = bytes[idStart..<separator]
        guard idDigits.allSatisfy({ ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f")) }),
              bytes[separator] == UInt8(ascii: "_"),
              let secret = Secrets.base64URLDecode(utf8: bytes[(separator + 1)...]),
              secret.count == secretBytes
        else { return nil }
        return (String(decoding: idDigits, as: UTF8.self), secret)
    }

    /// The form to store: SHA-256 of the whole presented string.
    public static func hash(_ presented: String) -> [UInt8] {
        Secrets.sha256(presented)
    }

    /// True if `presented` is well formed and hashes to `storedHash`; the digest comparison takes
    /// the same time wherever the digests differ.
    public static func matches(presented: String, storedHash: [UInt8]) -> Bool {
        guard parse(presented) != nil else { return false }
        return Secrets.constantTimeEqual(hash(presented), storedHash)
    }
}
