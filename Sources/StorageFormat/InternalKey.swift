// Internal keys: how the storage engine stores versions of a user key in segments and memtables.
// Format/segment.md §14 is the normative description.
//
// An internal key is the user key followed by an 8-byte trailer: the big-endian complement of
// (sequence << 8 | kind). Segments holding internal keys declare `KeyOrder.internalKey`: user
// key ascending (bytewise), then trailer ascending — that is, sequence descending, the newest
// version of a key first.

import Wire

public enum ValueKind: UInt8, Sendable {
    /// A tombstone: the key is deleted as of this sequence number. The value is empty.
    case deletion = 0
    /// The value is stored inline.
    case value = 1
    /// The value lives in a value file; the entry holds its reference (reserved, not written yet).
    case valueReference = 2
}

public struct InternalKey: Equatable, Sendable {
    public static let sequenceMax: UInt64 = (1 << 56) - 1
    public static let trailerBytes = 8
    /// The kind byte of a seek key: sorts before every real kind of the same sequence.
    public static let seekKindByte: UInt8 = 0xFF

    public var userKey: [UInt8]
    public var sequence: UInt64
    public var kind: ValueKind

    public init(userKey: [UInt8], sequence: UInt64, kind: ValueKind) {
        self.userKey = userKey
        self.sequence = sequence
        self.kind = kind
    }

    @inlinable
    public static func appendTrailer(sequence: UInt64, kindByte: UInt8, to out: inout [UInt8]) {
        let trailer = ~(sequence << 8 | UInt64(kindByte))
        withUnsafeBytes(of: trailer.bigEndian) { out.append(contentsOf: $0) }
    }

    @inlinable
    public static func encode<C: Collection<UInt8>>(userKey: C, sequence: UInt64, kindByte: UInt8) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(userKey.count + trailerBytes)
        out.append(contentsOf: userKey)
        appendTrailer(sequence: sequence, kindByte: kindByte, to: &out)
        return out
    }

    @inlinable
    public static func encode<C: Collection<UInt8>>(userKey: C, sequence: UInt64, kind: ValueKind) -> [UInt8] {
        encode(userKey: userKey, sequence: sequence, kindByte: kind.rawValue)
    }

    /// The first internal key of `userKey` visible at `sequence` (the seek target of a read).
    @inlinable
    public static func seekKey<C: Collection<UInt8>>(userKey: C, sequence: UInt64) -> [UInt8] {
        encode(userKey: userKey, sequence: sequence, kindByte: seekKindByte)
    }

    public func encoded() -> [UInt8] { Self.encode(userKey: userKey, sequence: sequence, kind: kind) }

    /// Sequence and kind byte of an encoded internal key (at least 8 bytes), without checks.
    @inlinable
    public static func trailer(_ encoded: [UInt8]) -> (sequence: UInt64, kindByte: UInt8) {
        let value = ~encoded.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: encoded.count - 8, as: UInt64.self)) }
        return (value >> 8, UInt8(truncatingIfNeeded: value))
    }

    /// The user key of an encoded internal key (at least 8 bytes).
    @inlinable
    public static func userKey(_ encoded: [UInt8]) -> ArraySlice<UInt8> { encoded[..<(encoded.count - trailerBytes)] }

    /// Decodes and validates an encoded internal key.
    public static func decode(_ encoded: [UInt8], baseOffset: UInt64 = 0) throws(DecodeError) -> InternalKey {
        guard encoded.count >= trailerBytes else {
            throw DecodeError(field: "internal key", offset: baseOffset, reason: .truncated(needed: trailerBytes, available: encoded.count))
        }
        let (sequence, kindByte) = trailer(encoded)
        guard let kind = ValueKind(rawValue: kindByte) else {
            throw DecodeError(field: "internal key kind", offset: baseOffset + UInt64(encoded.count - 1), reason: .invalidValue(UInt64(kindByte)))
        }
        return InternalKey(userKey: Array(userKey(encoded)), sequence: sequence, kind: kind)
    }
}
