// JSONTestSuite-style cases written inline: y_ must parse (and re-parse equal after
// serializing), n_ must be refused with a JSONError. Names follow JSONTestSuite where a case
// comes from it; a few n_ cases are this parser's policy (duplicate keys, lone surrogates,
// numbers beyond the doubles), which RFC 8259 leaves to implementations.

import JSON
import Testing

struct Case: CustomStringConvertible, Sendable {
    let name: String
    let bytes: [UInt8]
    init(_ name: String, _ text: String) {
        self.name = name
        self.bytes = Array(text.utf8)
    }
    init(_ name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
    var description: String { name }
}

func parseError(_ bytes: [UInt8], _ options: JSONParser.Options = .init()) -> JSONError? {
    do throws(JSONError) {
        _ = try JSONParser.parse(bytes, options: options)
        return nil
    } catch {
        return error
    }
}

func parseError(_ text: String, _ options: JSONParser.Options = .init()) -> JSONError? {
    parseError(Array(text.utf8), options)
}

let mustAccept: [Case] = [
    Case("y_array_arraysWithSpaces", "[[]   ]"),
    Case("y_array_empty", "[]"),
    Case("y_array_empty-string", "[\"\"]"),
    Case("y_array_false", "[false]"),
    Case("y_array_heterogeneous", "[null, 1, \"1\", {}]"),
    Case("y_array_null", "[null]"),
    Case("y_array_with_1_and_newline", "[1\n]"),
    Case("y_array_with_leading_space", " [1]"),
    Case("y_array_with_several_null", "[1,null,null,null,2]"),
    Case("y_array_with_trailing_space", "[2] "),
    Case("y_number", "[123e65]"),
    Case("y_number_0e+1", "[0e+1]"),
    Case("y_number_0e1", "[0e1]"),
    Case("y_number_after_space", "[ 4]"),
    Case("y_number_double_close_to_zero", "[-0.000000000000000000000000000000000000000000000000000000000000000000000000000001]"),
    Case("y_number_int_with_exp", "[20e1]"),
    Case("y_number_minus_zero", "[-0]"),
    Case("y_number_negative_int", "[-123]"),
    Case("y_number_negative_one", "[-1]"),
    Case("y_number_real_capital_e", "[1E22]"),
    Case("y_number_real_capital_e_neg_exp", "[1E-2]"),
    Case("y_number_real_capital_e_pos_exp", "[1E+2]"),
    Case("y_number_real_exponent", "[123e45]"),
    Case("y_number_real_fraction_exponent", "[123.456e78]"),
    Case("y_number_real_neg_exp", "[1e-2]"),
    Case("y_number_real_pos_exponent", "[1e+2]"),
    Case("y_number_simple_int", "[123]"),
    Case("y_number_simple_real", "[123.456789]"),
    Case("y_number_u64_max", "18446744073709551615"),
    Case("y_number_i64_min", "-9223372036854775808"),
    Case("y_number_tiny_underflows_to_zero", "[1e-400]"),
    Case("y_number_many_digits", "[3.14159265358979323846264338327950288419716939937510]"),
    Case("y_object", "{\"asd\":\"sdf\", \"dfg\":\"fgh\"}"),
    Case("y_object_basic", "{\"asd\":\"sdf\"}"),
    Case("y_object_empty", "{}"),
    Case("y_object_empty_key", "{\"\":0}"),
    Case("y_object_escaped_null_in_key", "{\"foo\\u0000bar\": 42}"),
    Case("y_object_extreme_numbers", "{ \"min\": -1.0e+28, \"max\": 1.0e+28 }"),
    Case("y_object_simple", "{\"a\":[]}"),
    Case("y_object_string_unicode", "{\"title\":\"\\u041f\\u043e\\u043b\\u0442\\u043e\\u0440\\u0430 \\u0417\\u0435\\u043c\\u043b\\u0435\\u043a\\u043e\\u043f\\u0430\" }"),
    Case("y_object_with_newlines", "{\n\"a\": \"b\"\n}"),
    Case("y_object_many_keys", "{" + (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}"),
    Case("y_string_1_2_3_bytes_UTF-8_sequences", "[\"\\u0060\\u012a\\u12AB\"]"),
    Case("y_string_accepted_surrogate_pair", "[\"\\uD801\\udc37\"]"),
    Case("y_string_allowed_escapes", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"),
    Case("y_string_backslash_and_u_escaped_zero", "[\"\\\\u0000\"]"),
    Case("y_string_comments", "[\"a/*b*/c/*d//e\"]"),
    Case("y_string_in_array", "[\"asd\"]"),
    Case("y_string_nonCharacterInUTF-8_U+FFFF", bytes: [0x5B, 0x22, 0xEF, 0xBF, 0xBF, 0x22, 0x5D]),
    Case("y_string_utf8", "[\"€𝄞\"]"),
    Case("y_string_unicode_U+10FFFE_nonchar", "[\"\\uDBFF\\uDFFE\"]"),
    Case("y_string_with_del_character", "[\"a\u{7F}a\"]"),
    Case("y_string_four_byte_max", bytes: [0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]),
    Case("y_structure_lonely_false", "false"),
    Case("y_structure_lonely_int", "42"),
    Case("y_structure_lonely_negative_real", "-0.1"),
    Case("y_structure_lonely_null", "null"),
    Case("y_structure_lonely_string", "\"asd\""),
    Case("y_structure_lonely_true", "true"),
    Case("y_structure_string_empty", "\"\""),
    Case("y_structure_trailing_newline", "[\"a\"]\n"),
    Case("y_structure_true_in_array", "[true]"),
    Case("y_structure_whitespace_array", " \t\r\n[] \t\r\n"),
]

let mustReject: [Case] = [
    Case("n_array_1_true_without_comma", "[1 true]"),
    Case("n_array_a_invalid_utf8", bytes: [0x5B, 0x61, 0xE5, 0x5D]),
    Case("n_array_colon_instead_of_comma", "[\"\": 1]"),
    Case("n_array_comma_after_close", "[\"\"],"),
    Case("n_array_comma_and_number", "[,1]"),
    Case("n_array_double_comma", "[1,,2]"),
    Case("n_array_double_extra_comma", "[\"x\",,]"),
    Case("n_array_extra_close", "[\"x\"]]"),
    Case("n_array_extra_comma", "[\"\",]"),
    Case("n_array_incomplete", "[\"x\""),
    Case("n_array_incomplete_invalid_value", "[x"),
    Case("n_array_inner_array_no_comma", "[3[4]]"),
    Case("n_array_items_separated_by_semicolon", "[1:2]"),
    Case("n_array_just_comma", "[,]"),
    Case("n_array_just_minus", "[-]"),
    Case("n_array_missing_value", "[   , \"\"]"),
    Case("n_array_newlines_unclosed", "[\"a\",\n4\n,1,"),
    Case("n_array_number_and_comma", "[1,]"),
    Case("n_array_number_and_several_commas", "[1,,]"),
    Case("n_array_spaces_vertical_tab_formfeed", "[\"\u{0B}a\"\u{0C}]"),
    Case("n_array_star_inside", "[*]"),
    Case("n_array_unclosed", "[\"\""),
    Case("n_array_unclosed_trailing_comma", "[1,"),
    Case("n_array_unclosed_with_object_inside", "[{}"),
    Case("n_incomplete_false", "[fals]"),
    Case("n_incomplete_null", "[nul]"),
    Case("n_incomplete_true", "[tru]"),
    Case("n_number_++", "[++1234]"),
    Case("n_number_+1", "[+1]"),
    Case("n_number_+Inf", "[+Inf]"),
    Case("n_number_-01", "[-01]"),
    Case("n_number_-1.0.", "[-1.0.]"),
    Case("n_number_-2.", "[-2.]"),
    Case("n_number_-NaN", "[-NaN]"),
    Case("n_number_.-1", "[.-1]"),
    Case("n_number_.2e-3", "[.2e-3]"),
    Case("n_number_0.1.2", "[0.1.2]"),
    Case("n_number_0.3e+", "[0.3e+]"),
    Case("n_number_0.e1", "[0.e1]"),
    Case("n_number_0_capital_E+", "[0E+]"),
    Case("n_number_1.0e-", "[1.0e-]"),
    Case("n_number_1_000", "[1 000.0]"),
    Case("n_number_2.e+3", "[2.e+3]"),
    Case("n_number_9.e+", "[9.e+]"),
    Case("n_number_Inf", "[Inf]"),
    Case("n_number_NaN", "[NaN]"),
    Case("n_number_nan_lowercase", "[nan]"),
    Case("n_number_hex_1_digit", "[0x1]"),
    Case("n_number_infinity", "[Infinity]"),
    Case("n_number_minus_infinity", "[-Infinity]"),
    Case("n_number_neg_int_starting_with_zero", "[-012]"),
    Case("n_number_real_without_fractional_part", "[1.]"),
    Case("n_number_with_leading_zero", "[012]"),
    Case("n_number_starting_with_dot", "[.123]"),
    Case("n_number_too_big_for_double", "[1e400]"),
    Case("n_number_negative_too_big_for_double", "[-1e400]"),
    Case("n_object_bad_value", "[\"x\", truth]"),
    Case("n_object_comma_instead_of_colon", "{\"x\", null}"),
    Case("n_object_double_colon", "{\"x\"::\"b\"}"),
    Case("n_object_missing_colon", "{\"a\" b}"),
    Case("n_object_missing_key", "{:\"b\"}"),
    Case("n_object_missing_value", "{\"a\":"),
    Case("n_object_no-colon", "{\"a\""),
    Case("n_object_non_string_key", "{1:1}"),
    Case("n_object_single_quote", "{'a':0}"),
    Case("n_object_trailing_comma", "{\"id\":0,}"),
    Case("n_object_trailing_comment", "{\"a\":\"b\"}/**/"),
    Case("n_object_unquoted_key", "{a: \"b\"}"),
    Case("n_object_with_trailing_garbage", "{\"a\": true} \"x\""),
    Case("n_object_duplicate_key", "{\"a\":1,\"a\":2}"),
    Case("n_object_duplicate_key_many_members", "{" + (0..<30).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + ",\"k7\":1}"),
    Case("n_string_1_surrogate_then_escape", "[\"\\uD800\\\"]"),
    Case("n_string_incomplete_surrogate", "[\"\\uD834\\uDd\"]"),
    Case("n_string_invalid_backslash_esc", "[\"\\a\"]"),
    Case("n_string_invalid_utf8_after_escape", bytes: [0x5B, 0x22, 0x5C, 0xE5, 0x22, 0x5D]),
    Case("n_string_escaped_ctrl_char_tab", "[\"\\\t\"]"),
    Case("n_string_unescaped_newline", "[\"new\nline\"]"),
    Case("n_string_unescaped_tab", "[\"\t\"]"),
    Case("n_string_unescaped_nul", bytes: [0x22, 0x00, 0x22]),
    Case("n_string_single_quote", "['single quote']"),
    Case("n_string_no_quotes_with_bad_escape", "[\\n]"),
    Case("n_string_lone_low_surrogate", "[\"\\uDC00\"]"),
    Case("n_string_lone_high_surrogate", "[\"\\uD800\"]"),
    Case("n_string_high_surrogate_then_non_surrogate", "[\"\\uD800\\u0041\"]"),
    Case("n_string_invalid_utf8_ff", bytes: [0x5B, 0x22, 0xFF, 0x22, 0x5D]),
    Case("n_string_overlong_slash", bytes: [0x5B, 0x22, 0xC0, 0xAF, 0x22, 0x5D]),
    Case("n_string_overlong_three_bytes", bytes: [0x22, 0xE0, 0x80, 0xAF, 0x22]),
    Case("n_string_utf8_encoded_surrogate", bytes: [0x5B, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x5D]),
    Case("n_string_beyond_U+10FFFF", bytes: [0x5B, 0x22, 0xF4, 0x90, 0x80, 0x80, 0x22, 0x5D]),
    Case("n_string_truncated_utf8", bytes: [0x5B, 0x22, 0xE6, 0x97, 0x22, 0x5D]),
    Case("n_string_lone_continuation_byte", bytes: [0x22, 0x80, 0x22]),
    Case("n_string_unclosed", "\"abc"),
    Case("n_string_short_unicode_escape", "[\"\\u12\"]"),
    Case("n_string_unicode_escape_bad_hex", "[\"\\u00G0\"]"),
    Case("n_structure_UTF8_BOM_no_data", bytes: [0xEF, 0xBB, 0xBF]),
    Case("n_structure_UTF8_BOM_then_object", bytes: [0xEF, 0xBB, 0xBF, 0x7B, 0x7D]),
    Case("n_structure_no_data", ""),
    Case("n_structure_whitespace_only", "  \n "),
    Case("n_structure_open_object", "{"),
    Case("n_structure_close_unopened_array", "1]"),
    Case("n_structure_double_array", "[][]"),
    Case("n_structure_trailing_#", "{\"a\":\"b\"}#{}"),
    Case("n_structure_comment", "[1] // comment"),
    Case("n_structure_null_byte_outside_string", bytes: [0x5B, 0x00, 0x5D]),
    Case("n_structure_U+2060_word_joined", "[\u{2060}]"),
    Case("n_structure_capitalized_True", "[True]"),
    Case("n_structure_lone-open-bracket", "["),
    Case("n_multidigit_number_then_00", bytes: [0x31, 0x32, 0x33, 0x00]),
    Case("n_structure_angle_bracket_.", "<.>"),
    Case("n_structure_vertical_tab_whitespace", "[\u{0B}1]"),
    Case("n_structure_object_with_trailing_garbage", "{\"a\":1}x"),
    Case("n_structure_array_trailing_garbage", "[1]x"),
    Case("n_structure_single_quoted_top_level", "'a'"),
]

@Suite struct JSONCorpusTests {
    @Test func corpusIsLargeEnough() {
        #expect(mustAccept.count >= 40)
        #expect(mustReject.count >= 60)
    }

    @Test(arguments: mustAccept)
    func acceptsValidDocuments(_ testCase: Case) throws {
        let value = try JSONParser.parse(testCase.bytes)
        let again = try JSONParser.parse(value.serialized())
        #expect(again == value, "\(testCase.name): serialize and re-parse differ")
    }

    @Test(arguments: mustReject)
    func rejectsInvalidDocuments(_ testCase: Case) {
        let error = parseError(testCase.bytes)
        #expect(error != nil, "\(testCase.name) was accepted")
        if let error {
            #expect(error.offset >= 0 && error.offset <= testCase.bytes.count)
            #expect(error.description.contains("byte \(error.offset)"))
        }
    }

    @Test func acceptedValuesAreRight() throws {
        #expect(try JSONParser.parse("[\"\\uD801\\udc37\"]") == .array([.string("\u{10437}")]))
        #expect(try JSONParser.parse("{\"foo\\u0000bar\": 42}") == .object(JSONObject(["foo\u{0}bar": .integer(42)])))
        #expect(try JSONParser.parse("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]") == .array([.string("\"\\/\u{8}\u{C}\n\r\t")]))
        #expect(try JSONParser.parse("[-0]") == .array([.double(-0.0)]))
        #expect(try JSONParser.parse("[1e-400]") == .array([.double(0)]))
        #expect(try JSONParser.parse("[123.456e78]") == .array([.double(123.456e78)]))
        #expect(try JSONParser.parse("[1E22, 1e-2, 20e1]") == .array([.double(1e22), .double(0.01), .double(200)]))
        #expect(try JSONParser.parse("[3.14159265358979323846264338327950288419716939937510]") == .array([.double(Double.pi)]))
        #expect(try JSONParser.parse("\"€𝄞\"") == .string("€𝄞"))
        let many = try JSONParser.parse(mustAccept.first { $0.name == "y_object_many_keys" }!.bytes)
        #expect(many["k0"] == .integer(0))
        #expect(many["k39"] == .integer(39))
        #expect(many.objectValue?.keys == (0..<40).map { "k\($0)" })
    }

    @Test func rejectionsAreTyped() {
        #expect(parseError("[1,]")?.kind == .unexpectedByte(UInt8(ascii: "]"), expected: "a value"))
        #expect(parseError("[012]")?.kind == .invalidNumber("leading zero"))
        #expect(parseError("[NaN]")?.kind == .nonFiniteLiteral)
        #expect(parseError("[-Infinity]")?.kind == .nonFiniteLiteral)
        #expect(parseError("[1e400]")?.kind == .numberOutOfRange)
        #expect(parseError("{\"a\":1,\"a\":2}") == JSONError(.duplicateKey("a"), offset: 7, line: 1, column: 8))
        #expect(parseError("[\"\\uDC00\"]")?.kind == .loneSurrogate)
        #expect(parseError("[\"\\a\"]")?.kind == .invalidEscape)
        #expect(parseError([0x22, 0xC0, 0xAF, 0x22] as [UInt8])?.kind == .invalidUTF8)
        #expect(parseError("[\"a\tb\"]")?.kind == .controlCharacterInString)
        #expect(parseError("[1] x")?.kind == .trailingContent)
        #expect(parseError("[1")?.kind == .unexpectedEnd(expected: "',' or ']'"))
    }
}
