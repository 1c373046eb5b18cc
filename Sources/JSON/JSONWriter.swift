// Writes compact JSON straight into a byte buffer, with no intermediate tree: responses are
// built member by member (`beginObject`, `key`, `value`, `endObject`). Doubles and floats are
// printed shortest-round-trip (Swift's `description`), so reading them back gives the same
// bits; a non-finite double or float, which JSON cannot express, is written as `null`.
// Misuse (a value where a key is due, unbalanced ends) is a programmer error and traps.

public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    private struct Container {
        var isObject: Bool
        var count = 0
    }
    private var containers: [Container] = []
    /// A key was written and its value is due.
    private var afterKey = false
    private var topLevelWritten = false

    public init(reservingCapacity capacity: Int = 0) {
        bytes.reserveCapacity(capacity)
    }

    /// True once one complete top-level value has been written.
    public var isComplete: Bool { topLevelWritten && containers.isEmpty }

    // MARK: Structure

    public mutating func beginObject() {
        prepareValue()
        bytes.append(UInt8(ascii: "{"))
        containers.append(Container(isObject: true))
    }

    public mutating func endObject() {
        precondition(containers.last?.isObject == true && !afterKey, "endObject without a matching beginObject, or after a key")
        containers.removeLast()
        bytes.append(UInt8(ascii: "}"))
    }

    public mutating func beginArray() {
        prepareValue()
        bytes.append(UInt8(ascii: "["))
        containers.append(Container(isObject: false))
    }

    public mutating func endArray() {
        precondition(containers.last?.isObject == false, "endArray without a matching beginArray")
        containers.removeLast()
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func key(_ key: String) {
        precondition(containers.last?.isObject == true && !afterKey, "a key outside an object or after a key")
        if containers[containers.count - 1].count > 0 { bytes.append(UInt8(ascii: ",")) }
        containers[containers.count - 1].count += 1
        appendString(key)
        bytes.append(UInt8(ascii: ":"))
        afterKey = true
    }

    /// Before a value: the comma, and the checks that a value may go here.
    private mutating func prepareValue() {
        if afterKey {
            afterKey = false
            return
        }
        if containers.isEmpty {
            precondition(!topLevelWritten, "a second top-level value")
            topLevelWritten = true
            return
        }
        precondition(!containers[containers.count - 1].isObject, "a value in an object without its key")
        if containers[containers.count - 1].count > 0 { bytes.append(UInt8(ascii: ",")) }
        containers[containers.count - 1].count += 1
    }

    // MARK: Values

    public mutating func null() {
        prepareValue()
        appendASCII("null")
    }

    /// Writes `json`, which must be one complete, valid JSON value (such as stored payload text
    /// this process wrote), as is.
    public mutating func rawValue(_ json: [UInt8]) {
        prepareValue()
        bytes.append(contentsOf: json)
    }

    public mutating func value(_ bool: Bool) {
        prepareValue()
        appendASCII(bool ? "true" : "false")
    }

    public mutating func value(_ string: String) {
        prepareValue()
        appendString(string)
    }

    public mutating func value(_ integer: Int) {
        value(Int64(integer))
    }

    public mutating func value(_ integer: Int64) {
        prepareValue()
        if integer < 0 {
            bytes.append(UInt8(ascii: "-"))
            appendDecimal(integer.magnitude)
        } else {
            appendDecimal(UInt64(integer))
        }
    }

    public mutating func value(_ integer: UInt64) {
        prepareValue()
        appendDecimal(integer)
    }

    public mutating func value(_ double: Double) {
        prepareValue()
        if double.isFinite { appendASCII(double.description) } else { appendASCII("null") }
    }

    public mutating func value(_ float: Float) {
        prepareValue()
        if float.isFinite { appendASCII(float.description) } else { appendASCII("null") }
    }

    /// A float32 vector, each element shortest-round-trip.
    public mutating func value(_ floats: [Float]) {
        prepareValue()
        bytes.append(UInt8(ascii: "["))
        for (index, float) in floats.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            if float.isFinite { appendASCII(float.description) } else { appendASCII("null") }
        }
        bytes.append(UInt8(ascii: "]"))
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let bool): self.value(bool)
        case .integer(let integer): self.value(integer)
        case .unsigned(let integer): self.value(integer)
        case .double(let double): self.value(double)
        case .string(let string): self.value(string)
        case .floats(let floats): self.value(floats)
        case .array(let elements):
            beginArray()
            for element in elements { self.value(element) }
            endArray()
        case .object(let object):
            beginObject()
            for (key, member) in object.members {
                self.key(key)
                self.value(member)
            }
            endObject()
        }
    }

    /// `key` then `value`, for the common case.
    public mutating func member(_ key: String, _ value: JSONValue) {
        self.key(key)
        self.value(value)
    }

    // MARK: Bytes

    private mutating func appendASCII(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    private mutating func appendDecimal(_ value: UInt64) {
        if value < 10 {
            bytes.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes ≥ 20 digits
        var count = 0
        var remaining = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while remaining > 0 {
                buffer[23 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
        }
    }

    private mutating func appendString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for index in 0..<utf8.count {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                runStart = index + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// Compact JSON bytes.
    public func serialized() -> [UInt8] {
        var writer = JSONWriter()
        writer.value(self)
        return writer.bytes
    }

    /// Compact JSON text.
    public var jsonString: String {
        String(decoding: serialized(), as: UTF8.self)
    }
}
