// The order-preserving binary key of a point id, for storage engines that keep points sorted by
// key bytes: comparing two keys with memcmp (shorter-is-smaller on a common prefix) gives the
// same order as `PointID.<`. Never changes once written to disk.
//
//   offset  size  type        meaning
//   0       1     UInt8       tag: 0x00 number, 0x01 UUID (numbers sort first)
//   1       8     UInt64 BE   number (tag 0x00); big-endian so byte order is numeric order
//   1       16    bytes       UUID in RFC 4122 byte order (tag 0x01)
//
// A number key is 9 bytes, a UUID key 17. Decoding checks the tag and the exact length.

/// Why bytes are not a point id key.
public enum PointIDKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case unknownTag(UInt8)
    /// The length does not match the tag.
    case wrongLength(tag: UInt8, count: Int, expected: Int)

    public var description: String {
        switch self {
        case .empty: return "point id key: empty"
        case .unknownTag(let tag): return "point id key: unknown tag 0x\(String(tag, radix: 16)) at offset 0"
        case .wrongLength(let tag, let count, let expected):
            return "point id key: tag 0x\(String(tag, radix: 16)) needs \(expected) bytes, got \(count)"
        }
    }
}

extension PointID {
    static let numberKeyTag: UInt8 = 0x00
    static let uuidKeyTag: UInt8 = 0x01
    public static let numberKeyBytes = 9
    public static let uuidKeyBytes = 17

    /// The key bytes (see the file comment).
    public var encodedKey: [UInt8] {
        var key: [UInt8] = []
        switch self {
        case .number(let value):
            key.reserveCapacity(Self.numberKeyBytes)
            key.append(Self.numberKeyTag)
            Self.appendBigEndian(value, to: &key)
        case .uuid(let uuid):
            key.reserveCapacity(Self.uuidKeyBytes)
            key.append(Self.uuidKeyTag)
            Self.appendBigEndian(uuid.high, to: &key)
            Self.appendBigEndian(uuid.low, to: &key)
        }
        return key
    }

    /// Decodes `encodedKey`'s bytes; bad bytes are a typed error, never a trap.
    public init(encodedKey key: some Collection<UInt8>) throws(PointIDKeyError) {
        guard let tag = key.first else { throw .empty }
        let body = key.dropFirst()
        switch tag {
        case Self.numberKeyTag:
            guard key.count == Self.numberKeyBytes else {
                throw .wrongLength(tag: tag, count: key.count, expected: Self.numberKeyBytes)
            }
            self = .number(Self.readBigEndian(body.prefix(8)))
        case Self.uuidKeyTag:
            guard key.count == Self.uuidKeyBytes else {
                throw .wrongLength(tag: tag, count: key.count, expected: Self.uuidKeyBytes)
            }
            self = .uuid(UUIDBytes(high: Self.readBigEndian(body.prefix(8)), low: Self.readBigEndian(body.dropFirst(8))))
        default:
            throw .unknownTag(tag)
        }
    }

    private static func appendBigEndian(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
        }
    }

    private static func readBigEndian(_ bytes: some Collection<UInt8>) -> UInt64 {
        var value: UInt64 = 0
        for byte in bytes { value = value << 8 | UInt64(byte) }
        return value
    }
}
