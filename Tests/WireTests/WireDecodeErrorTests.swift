// How `ByteReader` rejects bad input: every read on truncated input throws a `DecodeError` that
// names the field and gives the absolute offset of the field's first byte (`baseOffset` plus
// the position), with the number of bytes needed and available, and leaves the reader where it
// was; over-long or overflowing varints throw `.malformedVarint`; a length prefix above its
// limit throws `.tooLarge`; a non-zero reserved field throws `.invalidValue`; negative counts are
// rejected rather than moving the reader backwards; and `DecodeError.description` reads as
// documented.

import Testing
import Wire

@Suite struct WireDecodeErrorTests {
    /// A reader positioned after a 3-byte preamble, whose `bytes[0]` sits at byte 1_000_000.
    static func reader(after tail: [UInt8]) throws -> ByteReader {
        var reader = ByteReader([0xAA, 0xBB, 0xCC] + tail, baseOffset: 1_000_000)
        try reader.skip(3, "preamble")
        return reader
    }

    static let fieldOffset: UInt64 = 1_000_003

    @Test func everyFixedWidthReadOnTruncatedInputNamesTheFieldAndOffset() throws {
        func check<T>(_ tail: [UInt8], _ field: String, needed: Int,
                      _ read: (inout ByteReader) throws -> T,
                      sourceLocation: SourceLocation = #_sourceLocation) throws {
            var reader = try Self.reader(after: tail)
            let failure = decodeError { try read(&reader) }
            #expect(failure == DecodeError(field: field, offset: Self.fieldOffset,
                                           reason: .truncated(needed: needed, available: tail.count)),
                    sourceLocation: sourceLocation)
            // A failed read consumes nothing.
            #expect(reader.position == 3, sourceLocation: sourceLocation)
        }
        try check([], "kind", needed: 1) { (r: inout ByteReader) in try r.readUInt8("kind") }
        try check([1], "port", needed: 2) { (r: inout ByteReader) in try r.readUInt16("port") }
        try check([1, 2, 3], "count", needed: 4) { (r: inout ByteReader) in try r.readUInt32("count") }
        try check([1, 2, 3, 4, 5, 6, 7], "lsn", needed: 8) { (r: inout ByteReader) in try r.readUInt64("lsn") }
        try check([1, 2, 3, 4], "payload", needed: 5) { (r: inout ByteReader) in try r.readBytes(5, "payload") }
        try check([1, 2, 3, 4], "padding", needed: 5) { (r: inout ByteReader) in try r.skip(5, "padding") }
        try check([0, 0], "reserved", needed: 4) { (r: inout ByteReader) in try r.readReserved(UInt32.self, "reserved") }
        try check([], "reserved", needed: 8) { (r: inout ByteReader) in try r.readReserved(UInt64.self, "reserved") }
    }

    @Test func truncatedVarintsSayHowManyBytesWereNeeded() throws {
        // Empty input: one byte needed, none available.
        var empty = try Self.reader(after: [])
        #expect(decodeError { try empty.readVarint("term") }
                == DecodeError(field: "term", offset: Self.fieldOffset, reason: .truncated(needed: 1, available: 0)))
        #expect(empty.position == 3)

        // Continuation bits promise more bytes than there are: the k bytes present are not
        // enough, so at least k + 1 are needed. (Fails if `needed` is computed after the position
        // has been reset to the start of the field.)
        for present in [1, 2, 9] {
            var reader = try Self.reader(after: Array(repeating: 0xFF, count: present))
            #expect(decodeError { try reader.readVarint("term") }
                    == DecodeError(field: "term", offset: Self.fieldOffset,
                                   reason: .truncated(needed: present + 1, available: present)),
                    "\(present) continuation bytes")
            #expect(reader.position == 3, "a failed varint read consumes nothing")
        }
    }

    @Test func overlongAndOverflowingVarintsAreMalformed() throws {
        let malformed: [(String, [UInt8])] = [
            ("11 bytes", Array(repeating: 0x80, count: 10) + [0x00]),
            ("11 bytes of ones", Array(repeating: 0xFF, count: 10) + [0x01]),
            ("10th byte 2", Array(repeating: 0xFF, count: 9) + [0x02]),
            ("10th byte 0x7F", Array(repeating: 0x80, count: 9) + [0x7F]),
            ("10th byte continues", Array(repeating: 0x80, count: 9) + [0x81, 0x00]),
            ("10th byte 0x80", Array(repeating: 0x80, count: 9) + [0x80, 0x00]),
            ("16 bytes", Array(repeating: 0xFF, count: 16)),
            ("overlong zero", [0x80, 0x00]),
            ("overlong 1", [0x81, 0x80, 0x00]),
            ("overlong 127", [0xFF, 0x00]),
        ]
        for (name, bytes) in malformed {
            var reader = try Self.reader(after: bytes)
            #expect(decodeError { try reader.readVarint("offset") }
                    == DecodeError(field: "offset", offset: Self.fieldOffset, reason: .malformedVarint), "\(name)")
            #expect(reader.position == 3, "\(name): a failed varint read consumes nothing")
        }
        // The largest legal 10-byte varints still decode.
        var maxReader = try Self.reader(after: Array(repeating: 0xFF, count: 9) + [0x01, 0x42])
        #expect(try maxReader.readVarint("max") == .max)
        #expect(try maxReader.readUInt8("next") == 0x42)
        var topBit = try Self.reader(after: Array(repeating: 0x80, count: 9) + [0x01])
        #expect(try topBit.readVarint("top") == 1 << 63)
    }

    @Test func lengthPrefixAboveItsLimitIsTooLarge() throws {
        var writer = ByteWriter()
        writer.writeLengthPrefixed([UInt8](repeating: 7, count: 300))
        // Accepted at the limit.
        var atLimit = try Self.reader(after: writer.bytes)
        #expect(try atLimit.readLengthPrefixed("key", limit: 300).count == 300)
        // Refused one below it, naming the length field and pointing at its first byte.
        var overLimit = try Self.reader(after: writer.bytes)
        #expect(decodeError { try overLimit.readLengthPrefixed("key", limit: 299) }
                == DecodeError(field: "key.length", offset: Self.fieldOffset, reason: .tooLarge(value: 300, limit: 299)))

        // A huge claimed length with almost no bytes behind it: refused by the limit, nothing
        // allocated, no trap.
        var huge = ByteWriter()
        huge.writeVarint(.max)
        huge.write(UInt8(1))
        var hugeReader = try Self.reader(after: huge.bytes)
        #expect(decodeError { try hugeReader.readLengthPrefixed("value", limit: 1 << 20) }
                == DecodeError(field: "value.length", offset: Self.fieldOffset, reason: .tooLarge(value: .max, limit: 1 << 20)))

        // A length within the limit but beyond the input: the body is truncated, at the body.
        var short = ByteWriter()
        short.writeVarint(10)
        short.write(bytes: [1, 2, 3, 4])
        var shortReader = try Self.reader(after: short.bytes)
        #expect(decodeError { try shortReader.readLengthPrefixed("value", limit: 100) }
                == DecodeError(field: "value", offset: Self.fieldOffset + 1, reason: .truncated(needed: 10, available: 4)))

        // A malformed length is reported as the length field.
        var badLength = try Self.reader(after: Array(repeating: 0xFF, count: 11))
        #expect(decodeError { try badLength.readLengthPrefixed("value", limit: 100) }
                == DecodeError(field: "value.length", offset: Self.fieldOffset, reason: .malformedVarint))
    }

    @Test func reservedFieldsMustBeZero() throws {
        var zeros = try Self.reader(after: [UInt8](repeating: 0, count: 15))
        try zeros.readReserved(UInt8.self, "r8")
        try zeros.readReserved(UInt16.self, "r16")
        try zeros.readReserved(UInt32.self, "r32")
        try zeros.readReserved(UInt64.self, "r64")
        #expect(zeros.isAtEnd)

        let cases: [(String, [UInt8], UInt64, (inout ByteReader) throws -> Void)] = [
            ("r8", [0x01], 1, { (r: inout ByteReader) in try r.readReserved(UInt8.self, "r8") }),
            ("r16", [0x00, 0x01], 0x100, { (r: inout ByteReader) in try r.readReserved(UInt16.self, "r16") }),
            ("r32", [0, 0, 0, 0x80], 0x8000_0000, { (r: inout ByteReader) in try r.readReserved(UInt32.self, "r32") }),
            ("r64", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], .max,
             { (r: inout ByteReader) in try r.readReserved(UInt64.self, "r64") }),
        ]
        for (field, bytes, value, read) in cases {
            var reader = try Self.reader(after: bytes)
            #expect(decodeError { try read(&reader) }
                    == DecodeError(field: field, offset: Self.fieldOffset, reason: .invalidValue(value)))
        }
    }

    @Test func negativeCountsAreRejectedNotFollowedBackwards() throws {
        var reader = try Self.reader(after: [1, 2, 3, 4])
        #expect(decodeError { try reader.readBytes(-1, "payload") }
                == DecodeError(field: "payload", offset: Self.fieldOffset, reason: .invalidValue(UInt64.max)))
        #expect(reader.position == 3)
        // A count computed from bad input (say, a length minus a header size) can be negative;
        // `skip` must refuse it like `readBytes` does instead of moving the position backwards,
        // where a later read would index before the buffer.
        let failure = decodeError { try reader.skip(-4, "gap") }
        #expect(failure?.field == "gap")
        #expect(reader.position == 3, "skip(-4) moved the reader to \(reader.position)")
    }

    @Test func descriptionsNameFieldOffsetAndReason() {
        let cases: [(DecodeError.Reason, String)] = [
            (.truncated(needed: 8, available: 3), "truncated: needs 8 bytes, 3 available"),
            (.malformedVarint, "malformed varint"),
            (.tooLarge(value: 300, limit: 299), "value 300 exceeds limit 299"),
            (.invalidValue(7), "invalid value 7"),
            (.badMagic, "bad magic"),
            (.unsupportedVersion(9), "unsupported version 9"),
            (.checksumMismatch(stored: 0xFF, computed: 0xDEAD_BEEF_0000_1234),
             "checksum mismatch: stored 0x00000000000000ff, computed 0xdeadbeef00001234"),
            (.invalid("stream ids out of order"), "stream ids out of order"),
        ]
        for (reason, text) in cases {
            let error = DecodeError(field: "header.crc", offset: 4_294_967_296, reason: reason)
            #expect(error.description == "header.crc at byte 4294967296: " + text)
        }
        let reader = ByteReader([1, 2, 3], baseOffset: 50)
        #expect(reader.error("x", .badMagic) == DecodeError(field: "x", offset: 50, reason: .badMagic))
    }
}
