// Reads what `ByteWriter` wrote, checking every bound. Each read names the field it reads so a
// failure says exactly what was malformed and where (absolute offset = `baseOffset` + position).

public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var position: Int
    /// Added to `position` in error offsets: where `bytes[0]` sits in the file or frame.
    public let baseOffset: UInt64
    let end: Int

    public init(_ bytes: [UInt8], baseOffset: UInt64 = 0) {
        self.bytes = bytes
        self.position = 0
        self.baseOffset = baseOffset
        self.end = bytes.count
    }

    /// Reads `bytes[range]` only; offsets still count from `bytes[0]` plus `baseOffset`.
    public init(_ bytes: [UInt8], range: Range<Int>, baseOffset: UInt64 = 0) {
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "range out of bounds")
        self.bytes = bytes
        self.position = range.lowerBound
        self.baseOffset = baseOffset
        self.end = range.upperBound
    }

    public var remaining: Int { end - position }
    public var isAtEnd: Bool { position >= end }
    public var absoluteOffset: UInt64 { baseOffset + UInt64(position) }

    public func error(_ field: String, _ reason: DecodeError.Reason) -> DecodeError {
        DecodeError(field: field, offset: absoluteOffset, reason: reason)
    }

    @inline(__always)
    mutating func require(_ count: Int, _ field: String) throws(DecodeError) {
        if count > remaining {
            throw error(field, .truncated(needed: count, available: remaining))
        }
    }

    public mutating func readUInt8(_ field: String) throws(DecodeError) -> UInt8 {
        try require(1, field)
        defer { position += 1 }
        return bytes[position]
    }

    public mutating func readUInt16(_ field: String) throws(DecodeError) -> UInt16 { try readInteger(field) }
    public mutating func readUInt32(_ field: String) throws(DecodeError) -> UInt32 { try readInteger(field) }
    public mutating func readUInt64(_ field: String) throws(DecodeError) -> UInt64 { try readInteger(field) }

    @inline(__always)
    mutating func readInteger<T: FixedWidthInteger>(_ field: String) throws(DecodeError) -> T {
        let size = MemoryLayout<T>.size
        try require(size, field)
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: position, as: T.self) }
        position += size
        return T(littleEndian: value)
    }

    public mutating func readVarint(_ field: String) throws(DecodeError) -> UInt64 {
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard position < end else {
                let needed = position - start + 1
                position = start
                throw error(field, .truncated(needed: needed, available: end - start))
            }
            let byte = bytes[position]
            position += 1
            if shift == 63 && byte > 1 {
                position = start
                throw error(field, .malformedVarint)
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                // A last byte of 0 after others is an overlong form of a shorter varint: refused,
                // so every value has one encoding and decoded messages re-encode to their bytes.
                if byte == 0 && position - start > 1 {
                    position = start
                    throw error(field, .malformedVarint)
                }
                return result
            }
            shift += 7
            if shift > 63 {
                position = start
                throw error(field, .malformedVarint)
            }
        }
    }

    public mutating func readBytes(_ count: Int, _ field: String) throws(DecodeError) -> ArraySlice<UInt8> {
        guard count >= 0 else { throw error(field, .invalidValue(UInt64(bitPattern: Int64(count)))) }
        try require(count, field)
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    /// A varint length (at most `limit`) followed by that many bytes.
    public mutating func readLengthPrefixed(_ field: String, limit: Int) throws(DecodeError) -> ArraySlice<UInt8> {
        let lengthAt = absoluteOffset
        let length = try readVarint(field + ".length")
        if length > UInt64(limit) {
            throw DecodeError(field: field + ".length", offset: lengthAt, reason: .tooLarge(value: length, limit: UInt64(limit)))
        }
        return try readBytes(Int(length), field)
    }

    public mutating func skip(_ count: Int, _ field: String) throws(DecodeError) {
        guard count >= 0 else { throw error(field, .invalidValue(UInt64(bitPattern: Int64(count)))) }
        try require(count, field)
        position += count
    }

    /// Reads a field that must be zero in this format version.
    public mutating func readReserved<T: FixedWidthInteger>(_ type: T.Type, _ field: String) throws(DecodeError) {
        let at = absoluteOffset
        let value: T = try readInteger(field)
        if value != 0 {
            throw DecodeError(field: field, offset: at, reason: .invalidValue(UInt64(truncatingIfNeeded: value)))
        }
    }
}
