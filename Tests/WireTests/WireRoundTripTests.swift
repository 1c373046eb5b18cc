// Round trips through `ByteWriter` and `ByteReader`: the exact little-endian bytes of every
// integer width, the exact LEB128 encoding of varints at their edges (0, 127, 128, 2^63,
// UInt64.max and every power of two), length-prefixed byte strings, zeros, `patch` of fields
// filled in after the body, and a seeded random property test that writes a random sequence of
// fields, reads it back value for value from a reader with a non-zero `baseOffset`, and checks
// that every cut of the encoding fails on exactly the field that straddles the cut, at that
// field's absolute offset.

import Basics
import Testing
import TestSupport
import Wire

@Suite struct WireRoundTripTests {
    @Test func integersAreLittleEndianAndRoundTrip() throws {
        var writer = ByteWriter()
        writer.write(UInt8(0xAB))
        writer.write(UInt16(0x0102))
        writer.write(UInt32(0x0102_0304))
        writer.write(UInt64(0x0102_0304_0506_0708))
        #expect(writer.bytes == [
            0xAB,
            0x02, 0x01,
            0x04, 0x03, 0x02, 0x01,
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
        ])
        #expect(writer.count == 15)

        let bytes8: [UInt8] = [0, 1, 0x7F, 0x80, 0xFE, .max]
        let values16: [UInt16] = [0, 1, 0xFF, 0x100, 0x7FFF, 0x8000, .max]
        let values32: [UInt32] = [0, 1, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xDEAD_BEEF, .max]
        let values64: [UInt64] = [0, 1, 0xFFFF_FFFF, 0x1_0000_0000, 1 << 63, (1 << 63) - 1, 0x0123_4567_89AB_CDEF, .max]
        var all = ByteWriter(capacity: 4)
        for value in bytes8 { all.write(value) }
        for value in values16 { all.write(value) }
        for value in values32 { all.write(value) }
        for value in values64 { all.write(value) }
        #expect(all.count == bytes8.count + 2 * values16.count + 4 * values32.count + 8 * values64.count)

        var reader = ByteReader(all.finish(), baseOffset: 77)
        for value in bytes8 { #expect(try reader.readUInt8("u8") == value) }
        for value in values16 { #expect(try reader.readUInt16("u16") == value) }
        for value in values32 { #expect(try reader.readUInt32("u32") == value) }
        for value in values64 { #expect(try reader.readUInt64("u64") == value) }
        #expect(reader.isAtEnd)
        #expect(reader.remaining == 0)
        #expect(reader.absoluteOffset == 77 + UInt64(reader.bytes.count))
    }

    @Test func varintEncodingsAtTheEdges() throws {
        let known: [(UInt64, [UInt8])] = [
            (0, [0x00]),
            (1, [0x01]),
            (127, [0x7F]),
            (128, [0x80, 0x01]),
            (300, [0xAC, 0x02]),
            (16_383, [0xFF, 0x7F]),
            (16_384, [0x80, 0x80, 0x01]),
            (UInt64(UInt32.max), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
            ((1 << 63) - 1, Array(repeating: 0xFF, count: 8) + [0x7F]),
            (1 << 63, Array(repeating: 0x80, count: 9) + [0x01]),
            (.max, Array(repeating: 0xFF, count: 9) + [0x01]),
        ]
        for (value, encoding) in known {
            var writer = ByteWriter()
            writer.writeVarint(value)
            #expect(writer.bytes == encoding, "encoding of \(value)")
            #expect(varintSize(value) == encoding.count, "varintSize(\(value))")
            var reader = ByteReader(writer.bytes)
            #expect(try reader.readVarint("v") == value)
            #expect(reader.isAtEnd)
        }

        // Every power of two and its predecessor: size grows by one byte per 7 bits.
        for bit in 0..<64 {
            for value in [UInt64(1) << bit, (UInt64(1) << bit) &- 1] {
                var writer = ByteWriter()
                writer.writeVarint(value)
                let significantBits = max(1, 64 - value.leadingZeroBitCount)
                #expect(writer.count == (significantBits + 6) / 7, "size of \(value)")
                #expect(varintSize(value) == writer.count)
                var reader = ByteReader(writer.bytes)
                #expect(try reader.readVarint("v") == value)
                #expect(reader.isAtEnd)
            }
        }
    }

    @Test func lengthPrefixedBytesZerosAndRawBytesRoundTrip() throws {
        var random = SeededRandom(seed: 0x5EED_0001)
        let payloads: [[UInt8]] = [[], [0x42], random.bytes(127), random.bytes(128), random.bytes(300), random.bytes(20_000)]
        var writer = ByteWriter()
        for payload in payloads { writer.writeLengthPrefixed(payload) }
        writer.writeLengthPrefixed(payloads[4][10..<20])  // a slice, not an array
        writer.writeZeros(5)
        writer.write(bytes: [1, 2, 3])
        writer.writeZeros(0)

        let expectedCount = payloads.reduce(0) { $0 + varintSize(UInt64($1.count)) + $1.count } + 11 + 5 + 3
        #expect(writer.count == expectedCount)
        // A 128-byte string needs a two-byte length.
        let offsetOf128 = 1 + 2 + 127 + 1
        #expect(Array(writer.bytes[offsetOf128..<(offsetOf128 + 2)]) == [0x80, 0x01])

        var reader = ByteReader(writer.bytes, baseOffset: 4096)
        for payload in payloads {
            // The limit is inclusive: a length equal to the limit is accepted.
            #expect(Array(try reader.readLengthPrefixed("payload", limit: payload.count)) == payload)
        }
        #expect(Array(try reader.readLengthPrefixed("slice", limit: 10)) == Array(payloads[4][10..<20]))
        try reader.readReserved(UInt32.self, "reserved")
        try reader.readReserved(UInt8.self, "reserved")
        #expect(Array(try reader.readBytes(3, "raw")) == [1, 2, 3])
        #expect(Array(try reader.readBytes(0, "empty")) == [])
        #expect(reader.isAtEnd)
    }

    @Test func patchOverwritesOnlyTheFieldsBytes() throws {
        var writer = ByteWriter()
        writer.write(UInt32(0))  // length placeholder
        writer.write(UInt64(0))  // checksum placeholder
        writer.write(bytes: [0xEE, 0xEE, 0xEE, 0xEE])
        writer.writeVarint(1000)
        let bodyLength = UInt32(writer.count - 12)
        writer.patch(bodyLength, at: 0)
        writer.patch(UInt64(0x1122_3344_5566_7788), at: 4)
        #expect(writer.bytes == [
            0x06, 0x00, 0x00, 0x00,
            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
            0xEE, 0xEE, 0xEE, 0xEE,
            0xE8, 0x07,
        ])
        // A narrower patch inside a wider field touches only its own bytes.
        writer.patch(UInt16(0xABCD), at: 13)
        writer.patch(UInt8(0x5A), at: 17)
        #expect(Array(writer.bytes[12..<18]) == [0xEE, 0xCD, 0xAB, 0xEE, 0xE8, 0x5A])
        // Patching the last bytes exactly is in bounds.
        writer.patch(UInt64.max, at: writer.count - 8)
        #expect(Array(writer.bytes.suffix(8)) == Array(repeating: 0xFF, count: 8))
        #expect(writer.count == 18)

        var reader = ByteReader(writer.bytes)
        #expect(try reader.readUInt32("length") == 6)
        #expect(try reader.readUInt16("half") == 0x7788)

        writer.removeAll()
        #expect(writer.count == 0)
        writer.write(UInt8(1))
        #expect(writer.finish() == [1])
    }

    @Test func rangedReaderSeesOnlyItsRangeButCountsOffsetsFromTheStart() throws {
        let bytes: [UInt8] = [9, 9, 9, 9, 0x04, 0x03, 0x02, 0x01, 7, 7]
        var reader = ByteReader(bytes, range: 4..<8, baseOffset: 100)
        #expect(reader.position == 4)
        #expect(reader.absoluteOffset == 104)
        #expect(reader.remaining == 4)
        #expect(try reader.readUInt32("value") == 0x0102_0304)
        #expect(reader.isAtEnd)
        #expect(decodeError { try reader.readUInt8("beyond") }
                == DecodeError(field: "beyond", offset: 108, reason: .truncated(needed: 1, available: 0)))
    }

    /// One field of a random message, with what it reads back as.
    enum Field {
        case u8(UInt8), u16(UInt16), u32(UInt32), u64(UInt64), varint(UInt64)
        case raw([UInt8]), lengthPrefixed([UInt8]), zeros(Int), reserved64

        static func random(_ random: inout SeededRandom) -> Field {
            switch random.next() % 9 {
            case 0: return .u8(UInt8(truncatingIfNeeded: random.next()))
            case 1: return .u16(UInt16(truncatingIfNeeded: random.next()))
            case 2: return .u32(UInt32(truncatingIfNeeded: random.next()))
            case 3: return .u64(random.next())
            case 4: return .varint(random.next() >> (random.next() % 64))  // every encoded length
            case 5: return .raw(random.bytes(Int(random.next() % 40)))
            case 6: return .lengthPrefixed(random.bytes(Int(random.next() % 200)))
            case 7: return .zeros(Int(random.next() % 9))
            default: return .reserved64
            }
        }

        func write(to writer: inout ByteWriter) {
            switch self {
            case let .u8(v): writer.write(v)
            case let .u16(v): writer.write(v)
            case let .u32(v): writer.write(v)
            case let .u64(v): writer.write(v)
            case let .varint(v): writer.writeVarint(v)
            case let .raw(b): writer.write(bytes: b)
            case let .lengthPrefixed(b): writer.writeLengthPrefixed(b)
            case let .zeros(n): writer.writeZeros(n)
            case .reserved64: writer.write(UInt64(0))
            }
        }

        /// Reads the field back and checks it; throws only a `DecodeError`.
        func readAndCheck(_ reader: inout ByteReader, name: String) throws(DecodeError) {
            switch self {
            case let .u8(v): let r = try reader.readUInt8(name); #expect(r == v)
            case let .u16(v): let r = try reader.readUInt16(name); #expect(r == v)
            case let .u32(v): let r = try reader.readUInt32(name); #expect(r == v)
            case let .u64(v): let r = try reader.readUInt64(name); #expect(r == v)
            case let .varint(v): let r = try reader.readVarint(name); #expect(r == v)
            case let .raw(b): let r = try reader.readBytes(b.count, name); #expect(Array(r) == b)
            case let .lengthPrefixed(b): let r = try reader.readLengthPrefixed(name, limit: 200); #expect(Array(r) == b)
            case let .zeros(n): try reader.skip(n, name)
            case .reserved64: try reader.readReserved(UInt64.self, name)
            }
        }

        /// The sub-fields this field is read as: (name suffix, start within the field, size).
        var parts: [(suffix: String, start: Int, size: Int, isVarint: Bool)] {
            switch self {
            case .u8: return [("", 0, 1, false)]
            case .u16: return [("", 0, 2, false)]
            case .u32: return [("", 0, 4, false)]
            case .u64, .reserved64: return [("", 0, 8, false)]
            case let .varint(v): return [("", 0, varintSize(v), true)]
            case let .raw(b): return [("", 0, b.count, false)]
            case let .lengthPrefixed(b):
                let prefix = varintSize(UInt64(b.count))
                return [(".length", 0, prefix, true), ("", prefix, b.count, false)]
            case let .zeros(n): return [("", 0, n, false)]
            }
        }
    }

    @Test func seededRandomMessagesRoundTripAndFailAtTheRightField() throws {
        for seed in UInt64(1)...120 {
            var random = SeededRandom(seed: seed)
            let fields = (0..<(1 + Int(random.next() % 24))).map { _ in Field.random(&random) }
            var writer = ByteWriter(capacity: 0)
            var starts: [Int] = []
            for field in fields {
                starts.append(writer.count)
                field.write(to: &writer)
            }
            let bytes = writer.finish()
            let base = random.next() % (1 << 40)

            var reader = ByteReader(bytes, baseOffset: base)
            for (index, field) in fields.enumerated() {
                #expect(reader.position == starts[index], "seed \(seed) field \(index)")
                try field.readAndCheck(&reader, name: "f\(index)")
            }
            #expect(reader.isAtEnd, "seed \(seed)")
            #expect(reader.absoluteOffset == base + UInt64(bytes.count))

            // Every cut fails on the first sub-field that ends past it, at its absolute offset.
            guard seed <= 40 else { continue }
            for cut in 0..<bytes.count {
                var expected: (name: String, offset: Int, size: Int, isVarint: Bool)?
                search: for (index, field) in fields.enumerated() {
                    for part in field.parts where starts[index] + part.start + part.size > cut {
                        expected = ("f\(index)" + part.suffix, starts[index] + part.start, part.size, part.isVarint)
                        break search
                    }
                }
                guard let expected else { Issue.record("seed \(seed): no field straddles cut \(cut)"); continue }
                // Alternate between a copied prefix and a ranged reader over the whole buffer.
                var truncated = cut % 2 == 0
                    ? ByteReader(Array(bytes[..<cut]), baseOffset: base)
                    : ByteReader(bytes, range: 0..<cut, baseOffset: base)
                let failure = decodeError {
                    for (index, field) in fields.enumerated() { try field.readAndCheck(&truncated, name: "f\(index)") }
                }
                guard let failure else { Issue.record("seed \(seed): cut \(cut) decoded without error"); continue }
                #expect(failure.field == expected.name, "seed \(seed) cut \(cut)")
                #expect(failure.offset == base + UInt64(expected.offset), "seed \(seed) cut \(cut) field \(failure.field)")
                guard case let .truncated(needed, available) = failure.reason else {
                    Issue.record("seed \(seed) cut \(cut): expected truncation, got \(failure)")
                    continue
                }
                #expect(available == cut - expected.offset, "seed \(seed) cut \(cut): \(failure)")
                if !expected.isVarint {
                    #expect(needed == expected.size, "seed \(seed) cut \(cut): \(failure)")
                }
            }
        }
    }
}

/// The `DecodeError` a body throws, or nil if it succeeds.
/// (Untyped so that closures inside `#expect` need no annotation; the APIs under test throw
/// only `DecodeError`, anything else is recorded as an issue.)
func decodeError<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> DecodeError? {
    thrownError(DecodeError.self, body, sourceLocation: sourceLocation)
}
