// The one error every decoder of untrusted bytes (disk or network) returns.
//
// It names the field being decoded and the absolute byte offset where decoding failed, so a
// corrupt file or frame can be located with `vectron-tool dump`. Decoders never trap on bad
// input and never allocate more than the input justifies.

public struct DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// The input ended before the field was complete.
        case truncated(needed: Int, available: Int)
        /// A varint ran longer than 10 bytes, overflowed 64 bits, or was not in its shortest form.
        case malformedVarint
        /// A length or count exceeds the limit the format allows.
        case tooLarge(value: UInt64, limit: UInt64)
        /// A field holds a value the format does not define.
        case invalidValue(UInt64)
        /// A magic number did not match.
        case badMagic
        /// A format version this build cannot read.
        case unsupportedVersion(UInt64)
        /// A checksum did not match the bytes it covers.
        case checksumMismatch(stored: UInt64, computed: UInt64)
        /// Any other structural rule, described in words.
        case invalid(String)
    }

    public var field: String
    public var offset: UInt64
    public var reason: Reason

    public init(field: String, offset: UInt64, reason: Reason) {
        self.field = field
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        let what: String
        switch reason {
        case let .truncated(needed, available): what = "truncated: needs \(needed) bytes, \(available) available"
        case .malformedVarint: what = "malformed varint"
        case let .tooLarge(value, limit): what = "value \(value) exceeds limit \(limit)"
        case let .invalidValue(value): what = "invalid value \(value)"
        case .badMagic: what = "bad magic"
        case let .unsupportedVersion(version): what = "unsupported version \(version)"
        case let .checksumMismatch(stored, computed):
            what = "checksum mismatch: stored \(hex(stored)), computed \(hex(computed))"
        case let .invalid(text): what = text
        }
        return "\(field) at byte \(offset): \(what)"
    }
}

@usableFromInline
func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}
