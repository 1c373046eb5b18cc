// Fuzz target: the JSON parser, serializer and float32 fast path. Every input must parse or
// give a JSONError with an offset inside the input. A parsed document, serialized and parsed
// again with the same options, must be equal and serialize to the same bytes — without float
// scope, with it under "vector"/"vectors" and with it everywhere. An input that is an array of
// numbers must read through the fast paths (`parseFloatArray`, `.everywhere`) as exactly the
// floats strtof gives for each literal (or be refused as not a finite float32 when one
// overflows), and its general numbers must be strtod's doubles and exact integers.

import FuzzSupport
import JSON

func parse(_ data: UnsafeRawBufferPointer, _ options: JSONParser.Options) -> Result<JSONValue, JSONError> {
    do throws(JSONError) {
        return .success(try JSONParser.parse(data, options: options))
    } catch {
        precondition(error.offset >= 0 && error.offset <= data.count, "error offset \(error.offset) outside the input")
        precondition(!error.description.isEmpty)
        return .failure(error)
    }
}

func parsed(_ data: UnsafeRawBufferPointer, _ options: JSONParser.Options) -> JSONValue? {
    try? parse(data, options).get()
}

func checkRoundTrip(_ value: JSONValue, _ options: JSONParser.Options) {
    let bytes = value.serialized()
    let again: JSONValue
    do throws(JSONError) {
        again = try JSONParser.parse(bytes, options: options)
    } catch {
        preconditionFailure("serialized document refused: \(error) — \(String(decoding: bytes, as: UTF8.self))")
    }
    precondition(again == value, "re-parsed value differs: \(String(decoding: bytes, as: UTF8.self))")
    precondition(again.serialized() == bytes, "serialization is not canonical")
}

/// The element literals of an input known to be a JSON array of numbers (bytes, not
/// Characters: "\r\n" is one Character).
func numberLiterals(_ data: UnsafeRawBufferPointer) -> [String] {
    let isWhitespace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
    let bytes = [UInt8](data).filter { !isWhitespace($0) }
    let inner = bytes.dropFirst().dropLast()  // '[' and ']'
    if inner.isEmpty { return [] }
    return inner.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
}

func checkFloatArray(_ data: UnsafeRawBufferPointer, elements: [JSONValue]) {
    let literals = numberLiterals(data)
    precondition(literals.count == elements.count, "literal split disagrees with the parser")
    for (literal, element) in zip(literals, elements) {
        switch element {
        case .integer(let integer): precondition(Int64(literal) == integer, "\(literal) read as \(integer)")
        case .unsigned(let integer): precondition(UInt64(literal) == integer, "\(literal) read as \(integer)")
        case .double(let double):
            precondition(Double(literal) == double && (double != 0 || Double(literal)!.sign == double.sign),
                         "\(literal) read as \(double), strtod says \(Double(literal) as Any)")
        default: preconditionFailure("not a number")
        }
    }
    let reference = literals.map { Float($0)! }
    var everywhere = JSONParser.Options()
    everywhere.floatArrays = .everywhere
    do throws(JSONError) {
        let fast = try JSONParser.parseFloatArray(data, range: 0..<data.count)
        precondition(reference.allSatisfy(\.isFinite), "an overflowing float was accepted")
        precondition(fast.map(\.bitPattern) == reference.map(\.bitPattern), "fast path differs from strtof: \(literals)")
        precondition(parsed(data, everywhere) == .floats(fast), "float scope differs from parseFloatArray")
    } catch {
        precondition(error.kind == .notFiniteFloat32 && !reference.allSatisfy(\.isFinite), "fast path refused a valid vector: \(error)")
        precondition(parsed(data, everywhere) == nil)
    }
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    var vectorKeys = JSONParser.Options()
    vectorKeys.floatArrays = .underKeys(["vector", "vectors"])
    var everywhere = JSONParser.Options()
    everywhere.floatArrays = .everywhere
    let general = parsed(data, JSONParser.Options())
    for options in [JSONParser.Options(), vectorKeys, everywhere] {
        switch parse(data, options) {
        case .success(let value):
            checkRoundTrip(value, options)
        case .failure(let error):
            // Float scope refuses a document the general parse took only for a vector that
            // is not all finite float32 numbers.
            if general != nil {
                precondition([.notFiniteFloat32, .notANumber].contains(error.kind), "float scope refused: \(error)")
            }
        }
    }
    if case .array(let elements)? = general, elements.allSatisfy({ $0.doubleValue != nil }) {
        checkFloatArray(data, elements: elements)
    }
}

runFuzzer(fuzzOne)
