// Internal keys: how the storage engine stores versions of a user key in segments and memtables.
// Format/segment.md §14 is the normative description.
//
// An internal key is the user key, escaped so that byte order is preserved (each 0x00 byte
// becomes 0x00 0xFF) and terminated by 0x00 0x01, followed by 8 big-endian bytes holding the
// complement of (sequence << 8 | kind). Bytewise order of internal keys is then: user key
// ascending, then sequence descending (newest version first) — exactly what the segment format's
// bytewise comparison gives, with no custom comparator.

import Wire

public enum ValueKind: UInt8, Sendable {
    /// A tombstone: the key is deleted as of this sequence number. The value is empty.
    case deletion = 0
    /// The value is stored inline.
    case value = 1
    /// The value lives in a value file; the entry holds its reference (Format/segment.md §14).
    case valueReference = 2
}

public struct InternalKey: Equatable, Sendable {
    public static let sequenceMax: UInt64 = (1 << 56) - 1
    public static let suffixBytes = 10  // terminator + 8

    public var userKey: [UInt8]
    public var sequence: UInt64
    public var kind: ValueKind

    public init(userKey: [UInt8], sequence: UInt64, kind: ValueKind) {
        self.userKey = userKey
        self.sequence = sequence
        self.kind = kind
    }

    /// Appends the escaped user key and its terminator.
    @inlinable
    public static func appendEscaped<C: Collection<UInt8>>(_ userKey: C, to out: inout [UInt8]) {
        for byte in userKey {
            out.append(byte)
            if byte == 0 { out.append(0xFF) }
        }
        out.append(0)
        out.append(1)
    }

    /// The escaped user key with terminator: every internal key of `userKey` starts with it.
    @inlinable
    public static func escapedPrefix<C: Collection<UInt8>>(_ userKey: C) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(userKey.count + 2)
        appendEscaped(userKey, to: &out)
        return out
    }

    @inlinable
    public static func encode<C: Collection<UInt8>>(userKey: C, sequence: UInt64, kind: ValueKind) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(userKey.count + suffixBytes + 2)
        appendEscaped(userKey, to: &out)
        appendTrailer(sequence: sequence, kind: kind, to: &out)
        return out
    }

    @inlinable
    public static func appendTrailer(sequence: UInt64, kind: ValueKind, to out: inout [UInt8]) {
        appendTrailer(sequence: sequence, kindByte: kind.rawValue, to: &out)
    }

    @inlinable
    public static func appendTrailer(sequence: UInt64, kindByte: UInt8, to out: inout [UInt8]) {
        let trailer = ~(sequence << 8 | UInt64(kindByte))
        var shift: UInt64 = 56
        while true {
            out.append(UInt8(truncatingIfNeeded: trailer >> shift))
            if shift == 0 { break }
            shift -= 8
        }
    }

    /// The smallest internal key of `userKey` visible at `sequence` (seek target for a read).
    public static func seekKey<C: Collection<UInt8>>(userKey: C, sequence: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(userKey.count + suffixBytes + 2)
        appendEscaped(userKey, to: &out)
        appendTrailer(sequence: sequence, kindByte: 0xFF, to: &out)
        return out
    }

    public func encoded() -> [UInt8] { Self.encode(userKey: userKey, sequence: sequence, kind: kind) }

    /// Length of the escaped prefix (user key + terminator) of an encoded internal key.
    @inlinable
    public static func prefixLength(_ encoded: [UInt8]) -> Int { encoded.count - 8 }

    /// Sequence and kind of an encoded internal key, without checks (keys the engine wrote).
    @inlinable
    public static func trailer(_ encoded: [UInt8]) -> (sequence: UInt64, kindByte: UInt8) {
        var value: UInt64 = 0
        for index in (encoded.count - 8)..<encoded.count { value = value << 8 | UInt64(encoded[index]) }
        value = ~value
        return (value >> 8, UInt8(truncatingIfNeeded: value))
    }

    /// Decodes and validates an encoded internal key.
    public static func decode(_ encoded: [UInt8], baseOffset: UInt64 = 0) throws(DecodeError) -> InternalKey {
        guard encoded.count >= suffixBytes else {
            throw DecodeError(field: "internal key", offset: baseOffset, reason: .truncated(needed: suffixBytes, available: encoded.count))
        }
        let end = encoded.count - 8
        var userKey: [UInt8] = []
        userKey.reserveCapacity(end)
        var index = 0
        while true {
            guard index < end else {
                throw DecodeError(field: "internal key", offset: baseOffset, reason: .invalid("user key is not terminated"))
            }
            let byte = encoded[index]
            if byte != 0 {
                userKey.append(byte)
                index += 1
                continue
            }
            guard index + 1 < end else {
                throw DecodeError(field: "internal key", offset: baseOffset + UInt64(index), reason: .invalid("escape at the end of the key"))
            }
            if encoded[index + 1] == 0xFF {
                userKey.append(0)
                index += 2
            } else if encoded[index + 1] == 1 && index + 2 == end {
                break
            } else {
                throw DecodeError(field: "internal key", offset: baseOffset + UInt64(index), reason: .invalid("bad escape 00 \(encoded[index + 1])"))
            }
        }
        let (sequence, kindByte) = trailer(encoded)
        guard let kind = ValueKind(rawValue: kindByte) else {
            throw DecodeError(field: "internal key kind", offset: baseOffset + UInt64(end), reason: .invalidValue(UInt64(kindByte)))
        }
        return InternalKey(userKey: userKey, sequence: sequence, kind: kind)
    }
}
