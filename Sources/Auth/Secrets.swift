// Byte-level primitives for the rest of Auth: system randomness, constant-time comparison,
// SHA-256 and HMAC-SHA256 (libsodium), and the text encodings secrets travel in (unpadded
// base64url, lowercase hex).
//
// The base64url decoder is strict so that every byte string has exactly one spelling: no
// padding, no characters outside `A–Z a–z 0–9 - _`, no length that leaves a lone 6-bit group,
// and the unused low bits of the last character must be zero. A token whose signature could be
// spelled two ways would be malleable; this rules that out.

import CSodium

public enum Secrets {
    public static let sha256Bytes = 32

    // MARK: Randomness and comparison

    /// `count` bytes from the operating system's CSPRNG.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "negative byte count")
        Sodium.ensureInitialised()
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { randombytes_buf(buffer.baseAddress!, count) }
            initialized = count
        }
    }

    /// True if `a` and `b` are equal; the time taken depends only on the length, not on where they
    /// differ. Different lengths compare unequal at once (lengths are not secret here: every
    /// caller compares fixed-size digests).
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        Sodium.ensureInitialised()
        return a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                sodium_memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
            }
        }
    }

    // MARK: Hashes

    public static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        return [UInt8](unsafeUninitializedCapacity: sha256Bytes) { digest, initialized in
            let status = bytes.withUnsafeBufferPointer { input in
                crypto_hash_sha256(digest.baseAddress!, input.baseAddress ?? emptyInput, UInt64(input.count))
            }
            precondition(status == 0, "crypto_hash_sha256 failed")
            initialized = sha256Bytes
        }
    }

    public static func sha256(_ text: String) -> [UInt8] {
        sha256(Array(text.utf8))
    }

    /// HMAC-SHA256 (RFC 2104) with a key of any length (longer than 64 bytes is hashed first).
    public static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        var state = crypto_auth_hmacsha256_state()
        return [UInt8](unsafeUninitializedCapacity: sha256Bytes) { mac, initialized in
            key.withUnsafeBufferPointer { key in
                _ = crypto_auth_hmacsha256_init(&state, key.baseAddress ?? emptyInput, key.count)
            }
            message.withUnsafeBufferPointer { message in
                _ = crypto_auth_hmacsha256_update(&state, message.baseAddress ?? emptyInput, UInt64(message.count))
            }
            _ = crypto_auth_hmacsha256_final(&state, mac.baseAddress!)
            initialized = sha256Bytes
        }
    }

    /// A valid pointer for zero-length inputs (C APIs here require non-null even for length 0).
    /// Never written after initialisation, so sharing it between threads is safe.
    nonisolated(unsafe) private static let emptyInput: UnsafePointer<UInt8> = {
        let pointer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        return UnsafePointer(pointer)
    }()

    // MARK: base64url (RFC 4648 §5, no padding)

    private static let base64URLAlphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 6-bit value of each byte, or 0xFF for bytes outside the alphabet.
    private static let base64URLValues: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in base64URLAlphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    public static func base64URLEncode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out.append(base64URLAlphabet[Int(group >> 18)])
            out.append(base64URLAlphabet[Int(group >> 12 & 0x3F)])
            out.append(base64URLAlphabet[Int(group >> 6 & 0x3F)])
            out.append(base64URLAlphabet[Int(group & 0x3F)])
            index += 3
        }
        switch bytes.count - index {
        case 1:
            let group = UInt32(bytes[index]) << 16
            out.append(base64URLAlphabet[Int(group >> 18)])
            out.append(base64URLAlphabet[Int(group >> 12 & 0x3F)])
        case 2:
            let group = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
            out.append(base64URLAlphabet[Int(group >> 18)])
            out.append(base64URLAlphabet[Int(group >> 12 & 0x3F)])
            out.append(base64URLAlphabet[Int(group >> 6 & 0x3F)])
        default:
            break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes `text` encodes, or nil if it is not the canonical unpadded base64url of any
    /// byte string.
    public static func base64URLDecode(_ text: String) -> [UInt8]? {
        base64URLDecode(utf8: Array(text.utf8))
    }

    /// As `base64URLDecode(_:)`, over the encoded characters' bytes.
    public static func base64URLDecode<Bytes: Collection<UInt8>>(utf8 text: Bytes) -> [UInt8]? {
        let count = text.count
        if count % 4 == 1 { return nil }  // one lone character carries only 6 bits
        var out: [UInt8] = []
        out.reserveCapacity(count * 3 / 4)
        var group: UInt32 = 0
        var groupCount = 0
        for byte in text {
            let value = base64URLValues[Int(byte)]
            if value == 0xFF { return nil }
            group = group << 6 | UInt32(value)
            groupCount += 1
            if groupCount == 4 {
                out.append(UInt8(truncatingIfNeeded: group >> 16))
                out.append(UInt8(truncatingIfNeeded: group >> 8))
                out.append(UInt8(truncatingIfNeeded: group))
                group = 0
                groupCount = 0
            }
        }
        switch groupCount {
        case 2:  // 12 bits: one byte, the low 4 bits unused
            guard group & 0xF == 0 else { return nil }
            out.append(UInt8(truncatingIfNeeded: group >> 4))
        case 3:  // 18 bits: two bytes, the low 2 bits unused
            guard group & 0x3 == 0 else { return nil }
            out.append(UInt8(truncatingIfNeeded: group >> 10))
            out.append(UInt8(truncatingIfNeeded: group >> 2))
        default:
            break
        }
        return out
    }

    // MARK: Hex

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Lowercase hex, two digits per byte.
    public static func hex(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of lowercase hex `text`, or nil for odd lengths, uppercase or other characters.
    public static func bytes(fromHex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
