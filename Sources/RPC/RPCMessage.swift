// Message types carried in frame payloads. Each one writes itself with `ByteWriter` and reads
// itself back with `ByteReader`, checking every length and value: no JSON, no reflection.
// A payload must be consumed exactly: trailing bytes are an error, so that every accepted
// payload has one meaning and re-encodes to the same bytes.

import Wire

public protocol RPCMessage: Sendable {
    func encode(into writer: inout ByteWriter)
    static func decode(from reader: inout ByteReader) throws(DecodeError) -> Self
    /// The message as a payload (a default writes it with `encode(into:)`).
    func encoded() -> [UInt8]
}

extension RPCMessage {
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        encode(into: &writer)
        return writer.finish()
    }

    /// Decodes a whole payload; bytes left over are an error.
    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Self {
        var reader = ByteReader(bytes)
        let message = try decode(from: &reader)
        guard reader.isAtEnd else {
            throw reader.error("payload end", .invalid("\(reader.remaining) bytes after the message"))
        }
        return message
    }
}

/// A payload taken as it is: for echo, opaque blobs and chunks of large transfers.
public struct RawPayload: RPCMessage, Equatable, Hashable {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func encode(into writer: inout ByteWriter) { writer.write(bytes: bytes) }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> RawPayload {
        RawPayload(Array(try reader.readBytes(reader.remaining, "payload")))
    }

    public func encoded() -> [UInt8] { bytes }
}

/// The empty message, for methods that take or return nothing.
public struct Empty: RPCMessage, Equatable, Hashable {
    public init() {}
    public func encode(into writer: inout ByteWriter) {}
    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> Empty { Empty() }
}

extension ByteReader {
    /// A varint-length UTF-8 string of at most `limit` bytes; invalid UTF-8 is an error.
    public mutating func readString(_ field: String, limit: Int) throws(DecodeError) -> String {
        let at = absoluteOffset
        let bytes = try readLengthPrefixed(field, limit: limit)
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw DecodeError(field: field, offset: at, reason: .invalid("not valid UTF-8"))
        }
        return string
    }
}

extension ByteWriter {
    public mutating func writeString(_ string: String) {
        writeLengthPrefixed(Array(string.utf8))
    }
}
