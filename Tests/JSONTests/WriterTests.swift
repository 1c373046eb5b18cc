// JSONWriter: the REST envelope, escapes, numbers at their extremes, non-finite as null.

import JSON
import Testing

@Suite struct JSONWriterTests {
    @Test func responseEnvelope() throws {
        var writer = JSONWriter(reservingCapacity: 128)
        writer.beginObject()
        writer.key("result")
        writer.beginArray()
        writer.beginObject()
        writer.key("id")
        writer.value(UInt64.max)
        writer.key("score")
        writer.value(Float(0.875))
        writer.key("vector")
        writer.value([Float(0.1), -2, .leastNonzeroMagnitude])
        writer.endObject()
        writer.endArray()
        writer.key("status")
        writer.value("ok")
        writer.key("time")
        writer.value(0.000123)
        writer.endObject()
        #expect(writer.isComplete)
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == "{\"result\":[{\"id\":18446744073709551615,\"score\":0.875,\"vector\":[0.1,-2.0,1e-45]}],\"status\":\"ok\",\"time\":0.000123}")
        let parsed = try JSONParser.parse(writer.bytes)
        #expect(parsed["status"] == .string("ok"))
        #expect(parsed["result"]?.arrayValue?.first?["id"]?.uint64Value == .max)
    }

    @Test func stringsAreEscaped() throws {
        let tricky = "quote\" backslash\\ slash/ nl\n cr\r tab\t nul\u{0} unit\u{1F} del\u{7F} é 😀"
        var writer = JSONWriter()
        writer.value(tricky)
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == "\"quote\\\" backslash\\\\ slash/ nl\\n cr\\r tab\\t nul\\u0000 unit\\u001f del\u{7F} é 😀\"")
        #expect(try JSONParser.parse(writer.bytes) == .string(tricky))
    }

    @Test func numbers() {
        var writer = JSONWriter()
        writer.beginArray()
        writer.value(Int64.min)
        writer.value(Int64.max)
        writer.value(0)
        writer.value(-7)
        writer.value(1e300)
        writer.value(-0.0)
        writer.value(Double.nan)
        writer.value(Float.infinity)
        writer.value(true)
        writer.null()
        writer.endArray()
        #expect(String(decoding: writer.bytes, as: UTF8.self)
            == "[-9223372036854775808,9223372036854775807,0,-7,1e+300,-0.0,null,null,true,null]")
    }

    @Test func valuesAndMembers() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.member("a", .array([.integer(1), .object(JSONObject(["b": .null]))]))
        writer.member("v", .floats([1.5]))
        writer.key("empty")
        writer.beginObject()
        writer.endObject()
        writer.endObject()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "{\"a\":[1,{\"b\":null}],\"v\":[1.5],\"empty\":{}}")
    }

    @Test func objectLookupAndOrder() {
        var object = JSONObject()
        for index in 0..<30 {
            let inserted = object.insertNew("k\(29 - index)", .integer(Int64(index)))
            #expect(inserted)
        }
        let duplicateInserted = object.insertNew("k3", .null)
        #expect(!duplicateInserted)
        #expect(object["k0"] == .integer(29))
        #expect(object.keys.first == "k29")
        object.set("k0", .bool(true))
        object.set("new", .null)
        #expect(object["k0"] == .bool(true))
        #expect(object.keys.last == "new")
        #expect(object.count == 31)
    }
}
