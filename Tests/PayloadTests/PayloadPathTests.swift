// Key paths: what parses, what does not, and that the canonical text parses back.

import Payload
import Testing

@Suite struct PayloadPathTests {
    func pathError(_ text: String) -> PayloadPathError? {
        do throws(PayloadPathError) {
            _ = try PayloadPath(parsing: text)
            return nil
        } catch {
            return error
        }
    }

    @Test func accepted() {
        #expect(path("a").components == [.key("a")])
        #expect(path("city_name-2.ß").components == [.key("city_name-2"), .key("ß")])
        #expect(path("a[][0][12].b").components == [.key("a"), .wildcard, .index(0), .index(12), .key("b")])
        #expect(path("\"\"").components == [.key("")])
        #expect(path("\"a.b[]\".\"c d\"").components == [.key("a.b[]"), .key("c d")])
        for text in ["a", "a.b[].c", "\"x y\"[3]", "\"\"", "a[0][1]"] {
            #expect(path(path(text).description) == path(text), "\(text)")
        }
        #expect(path("\"plain\".b").description == "plain.b")
    }

    @Test func refused() {
        #expect(pathError("") == .empty)
        #expect(pathError(".a") == .invalid(text: ".a", offset: 0, problem: "expected a key"))
        #expect(pathError("a.") == .invalid(text: "a.", offset: 2, problem: "expected a key"))
        #expect(pathError("[0]") == .invalid(text: "[0]", offset: 0, problem: "expected a key"))
        #expect(pathError("a[") == .invalid(text: "a[", offset: 2, problem: "expected an array index or ]"))
        #expect(pathError("a[1") == .invalid(text: "a[1", offset: 3, problem: "expected ]"))
        #expect(pathError("a[-1]") == .invalid(text: "a[-1]", offset: 2, problem: "expected an array index or ]"))
        #expect(pathError("\"a") == .invalid(text: "\"a", offset: 0, problem: "unterminated quoted key"))
        #expect(pathError("\"a\\\"b\"") == .invalid(text: "\"a\\\"b\"", offset: 2, problem: "a quoted key cannot contain \\"))
        #expect(pathError("\"a\"b") == .invalid(text: "\"a\"b", offset: 3, problem: "expected . or ["))
        #expect(pathError("a$") != nil)
        #expect(pathError("a b") != nil)
        #expect(pathError("a[99999999999999999999999]") == .invalid(text: "a[99999999999999999999999]", offset: 20, problem: "array index too large"))
    }
}
