// Appends little-endian integers, LEB128 varints and length-prefixed byte strings to a growable
// buffer. Every on-disk and wire format in Vectron is written with this type: integers are
// sized and little-endian, never `Int`.

public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    @inlinable
    public mutating func write(_ value: UInt8) { bytes.append(value) }

    @inlinable
    public mutating func write(_ value: UInt16) { appendLittleEndian(value) }

    @inlinable
    public mutating func write(_ value: UInt32) { appendLittleEndian(value) }

    @inlinable
    public mutating func write(_ value: UInt64) { appendLittleEndian(value) }

    @inlinable
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }

    /// Unsigned LEB128: 7 bits a byte, low bits first, at most 10 bytes.
    public mutating func writeVarint(_ value: UInt64) {
        appendVarint(value, to: &bytes)
    }

    public mutating func write<C: Collection>(bytes other: C) where C.Element == UInt8 {
        bytes.append(contentsOf: other)
    }

    /// A varint length followed by the bytes.
    public mutating func writeLengthPrefixed<C: Collection>(_ other: C) where C.Element == UInt8 {
        writeVarint(UInt64(other.count))
        bytes.append(contentsOf: other)
    }

    public mutating func writeZeros(_ count: Int) {
        bytes.append(contentsOf: repeatElement(0, count: count))
    }

    /// Overwrites a little-endian integer at `position` (for fields filled in after the body,
    /// such as lengths and checksums).
    public mutating func patch<T: FixedWidthInteger>(_ value: T, at position: Int) {
        precondition(position >= 0 && position + MemoryLayout<T>.size <= bytes.count, "patch out of bounds")
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { source in
            for i in 0..<source.count { bytes[position + i] = source[i] }
        }
    }

    public mutating func removeAll(keepingCapacity: Bool = true) {
        bytes.removeAll(keepingCapacity: keepingCapacity)
    }

    /// Hands over the buffer without copying.
    public consuming func finish() -> [UInt8] { bytes }
}

/// Encoded size of a varint, for callers that must size a buffer before writing.
public func varintSize(_ value: UInt64) -> Int {
    var v = value
    var n = 1
    while v >= 0x80 { v >>= 7; n += 1 }
    return n
}

/// Appends `value` as an unsigned LEB128 varint (7 bits a byte, low bits first, at most 10
/// bytes) — for code that builds into its own buffer rather than a `ByteWriter`.
@inlinable
public func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    bytes.append(UInt8(v))
}
