// Point ids: what JSON is accepted, how it is written back, UUID forms, and the binary key.

import Basics
import JSON
import Payload
import Testing

@Suite struct PointIDTests {
    static let uuid = "550e8400-e29b-41d4-a716-446655440000"

    @Test func numbersParse() throws {
        #expect(try PointID(json: json("0")) == .number(0))
        #expect(try PointID(json: json("42")) == .number(42))
        #expect(try PointID(json: json("9223372036854775807")) == .number(UInt64(Int64.max)))
        #expect(try PointID(json: json("18446744073709551615")) == .number(.max))
    }

    @Test func negativeAndNonIntegerNumbersAreRejected() {
        #expect(pointIDError(json("-1")) == .negative(-1))
        #expect(pointIDError(json("1.5")) == .notAnInteger(1.5))
        #expect(pointIDError(json("3.0")) == .notAnInteger(3.0))
        #expect(pointIDError(json("1e2")) == .notAnInteger(100))
        // Beyond UInt64 the JSON parser yields a double: still not an id.
        #expect(pointIDError(json("18446744073709551616")) != nil)
    }

    @Test func digitStringsAndOtherTypesAreRejected() {
        #expect(pointIDError(.string("42")) == .notAUUID("42"))
        #expect(pointIDError(.string("")) == .notAUUID(""))
        #expect(pointIDError(.string("550e8400-e29b-41d4-a716-44665544000")) != nil)  // one digit short
        #expect(pointIDError(.string("550e8400-e29b-41d4-a716-44665544000g")) != nil)  // not hex
        #expect(pointIDError(.string("550e8400e-29b-41d4-a716-446655440000")) != nil)  // hyphen misplaced
        #expect(pointIDError(.string("{550e8400e29b41d4a716446655440000}")) != nil)  // braces need hyphens
        #expect(pointIDError(.null) == .wrongType("null"))
        #expect(pointIDError(.bool(true)) == .wrongType("a boolean"))
        #expect(pointIDError(json("[1]")) == .wrongType("an array"))
        #expect(pointIDError(json("{}")) == .wrongType("an object"))
    }

    @Test(arguments: [
        "550e8400-e29b-41d4-a716-446655440000",
        "550E8400-E29B-41D4-A716-446655440000",
        "550e8400e29b41d4a716446655440000",
        "550E8400E29B41D4A716446655440000",
        "{550e8400-e29b-41d4-a716-446655440000}",
        "{550E8400-e29b-41D4-a716-446655440000}",
        "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
        "URN:UUID:550E8400-E29B-41D4-A716-446655440000",
    ])
    func uuidFormsNormalise(text: String) throws {
        let id = try PointID(json: .string(text))
        #expect(id.json == .string(Self.uuid))
        #expect(id.description == Self.uuid)
        guard case .uuid(let bytes) = id else {
            Issue.record("not a UUID")
            return
        }
        #expect(bytes.bytes == [0x55, 0x0e, 0x84, 0x00, 0xe2, 0x9b, 0x41, 0xd4, 0xa7, 0x16, 0x44, 0x66, 0x55, 0x44, 0x00, 0x00])
    }

    @Test func numbersWriteBackAsJSONNumbers() {
        #expect(PointID.number(7).json == .integer(7))
        #expect(PointID.number(UInt64(Int64.max)).json == .integer(.max))
        #expect(PointID.number(.max).json == .unsigned(.max))
        #expect(PointID.number(.max).json.jsonString == "18446744073709551615")
        #expect(PointID.number(12).description == "12")
    }

    @Test func orderIsNumbersThenUUIDs() throws {
        let small = try PointID(json: .string("00000000-0000-0000-0000-000000000000"))
        let large = try PointID(json: .string("ffffffff-ffff-ffff-ffff-fffffffffffe"))
        #expect(PointID.number(.max) < small)
        #expect(small < large)
        #expect(PointID.number(2) < .number(10))
        #expect(!(large < .number(0)))
        // The UUID whose bytes spell 1 is not the number 1.
        #expect(try PointID(json: .string("00000000-0000-0000-0000-000000000001")) != .number(1))
    }

    @Test func keysRoundTripAndSortLikeComparable() throws {
        var random = SeededRandom(seed: 0x5EED_1D5)
        var ids: [PointID] = [.number(0), .number(.max), .uuid(UUIDBytes(high: 0, low: 0)), .uuid(UUIDBytes(high: .max, low: .max))]
        for _ in 0..<500 {
            switch random.next() % 4 {
            case 0: ids.append(.number(random.next() % 1_000))
            case 1: ids.append(.number(random.next()))
            case 2: ids.append(.uuid(UUIDBytes(high: random.next(), low: random.next())))
            default: ids.append(.uuid(UUIDBytes(high: random.next() % 3, low: random.next())))
            }
        }
        for id in ids {
            let key = id.encodedKey
            #expect(key.count == (id < .uuid(UUIDBytes(high: 0, low: 0)) ? 9 : 17))
            #expect(try PointID(encodedKey: key) == id)
            #expect(try PointID(json: id.json) == id)
        }
        let byComparable = ids.sorted()
        let byKey = ids.sorted { $0.encodedKey.lexicographicallyPrecedes($1.encodedKey) }
        let sameOrder = byComparable == byKey  // not inside #expect: a failure would print 1,000 ids
        #expect(sameOrder)
        // Sorting is not vacuous: the input was not already in order.
        #expect(byComparable != ids)
    }

    @Test func badKeysAreTypedErrors() {
        func keyError(_ bytes: [UInt8]) -> PointIDKeyError? {
            do throws(PointIDKeyError) {
                _ = try PointID(encodedKey: bytes)
                return nil
            } catch {
                return error
            }
        }
        #expect(keyError([]) == .empty)
        #expect(keyError([0x02, 0, 0, 0, 0, 0, 0, 0, 0]) == .unknownTag(0x02))
        #expect(keyError([0x00, 1, 2]) == .wrongLength(tag: 0, count: 3, expected: 9))
        #expect(keyError([0x00] + [UInt8](repeating: 0, count: 16)) == .wrongLength(tag: 0, count: 17, expected: 9))
        #expect(keyError([0x01] + [UInt8](repeating: 0, count: 8)) == .wrongLength(tag: 1, count: 9, expected: 17))
        #expect(keyError([0x00, 0, 0, 0, 0, 0, 0, 1, 0]) == nil)
        #expect(PointID.number(256).encodedKey == [0, 0, 0, 0, 0, 0, 0, 1, 0])
    }
}
