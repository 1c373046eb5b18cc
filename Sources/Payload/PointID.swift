// Qdrant-compatible point ids: an unsigned 64-bit number or a UUID. The two kinds never compare
// equal (`1` and the UUID whose value is 1 are different points) and sort numbers first, numbers
// by value, then UUIDs by their 16 bytes — the order scroll returns points in, and the order of
// `encodedKey` (PointID+Key.swift), so a storage engine's byte order is the scroll order.
// JSON parsing and printing live in PointID+JSON.swift.

/// A UUID as 16 bytes in RFC 4122 order, held as two big-endian halves so that comparing
/// (`high`, `low`) as unsigned integers is comparing the bytes. No Foundation.
public struct UUIDBytes: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Bytes 0–7, big-endian.
    public var high: UInt64
    /// Bytes 8–15, big-endian.
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// From exactly 16 bytes; nil for any other count.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (position, byte) in bytes.enumerated() {
            if position < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// The 16 bytes in order.
    public var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return result
    }

    public static func < (lhs: UUIDBytes, rhs: UUIDBytes) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// Lowercase hyphenated form, `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    public var description: String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (position, byte) in bytes.enumerated() {
            if position == 4 || position == 6 || position == 8 || position == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Parses the forms Qdrant (the Rust `uuid` crate) accepts, hex digits in any case:
    /// hyphenated (36 characters), simple (32 hex digits), braced `{hyphenated}` and
    /// `urn:uuid:hyphenated` (prefix in any case). Anything else, including a string of decimal
    /// digits, is nil.
    public init?(parsing text: String) {
        var utf8 = Array(text.utf8)
        if utf8.count == 38, utf8.first == UInt8(ascii: "{"), utf8.last == UInt8(ascii: "}") {
            utf8 = Array(utf8[1..<37])
        } else if utf8.count == 45 {
            let prefix = Array("urn:uuid:".utf8)
            for position in 0..<9 where Self.lowercased(utf8[position]) != prefix[position] { return nil }
            utf8 = Array(utf8[9...])
        }
        var digits: [UInt8] = []
        digits.reserveCapacity(32)
        switch utf8.count {
        case 32:
            digits = utf8
        case 36:
            for (position, byte) in utf8.enumerated() {
                if position == 8 || position == 13 || position == 18 || position == 23 {
                    guard byte == UInt8(ascii: "-") else { return nil }
                } else {
                    digits.append(byte)
                }
            }
        default:
            return nil
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (position, byte) in digits.enumerated() {
            guard let nibble = Self.hexValue(byte) else { return nil }
            if position < 16 { high = high << 4 | UInt64(nibble) } else { low = low << 4 | UInt64(nibble) }
        }
        self.init(high: high, low: low)
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

/// A point's external id.
public enum PointID: Hashable, Sendable, Comparable, CustomStringConvertible {
    case number(UInt64)
    case uuid(UUIDBytes)

    /// Numbers before UUIDs; numbers by value; UUIDs by bytes.
    public static func < (lhs: PointID, rhs: PointID) -> Bool {
        switch (lhs, rhs) {
        case (.number(let left), .number(let right)): return left < right
        case (.uuid(let left), .uuid(let right)): return left < right
        case (.number, .uuid): return true
        case (.uuid, .number): return false
        }
    }

    /// The decimal number, or the lowercase hyphenated UUID.
    public var description: String {
        switch self {
        case .number(let value): return String(value)
        case .uuid(let uuid): return uuid.description
        }
    }
}
