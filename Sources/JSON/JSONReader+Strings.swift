// Strings: a scan that stops only at '"', '\\', control bytes and non-ASCII bytes; UTF-8 is
// validated by hand (RFC 3629: no overlongs, no encoded surrogates, nothing past U+10FFFF);
// escapes, including surrogate pairs, are decoded into a reused scratch buffer. A string
// without escapes is built straight from the input bytes.

extension JSONReader {
    /// At the opening quote; returns the unescaped string and leaves `position` after the
    /// closing quote.
    mutating func parseString() throws(JSONError) -> String {
        position += 1  // '"'
        let start = position
        var hasEscapes = false
        scratch.removeAll(keepingCapacity: true)
        // `runStart` is where bytes not yet copied to `scratch` begin (escapes only).
        var runStart = start
        while true {
            guard position < end else { throw unexpected("'\"'") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                break
            } else if byte == UInt8(ascii: "\\") {
                if !hasEscapes { hasEscapes = true }
                scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
                try parseEscape()
                runStart = position
            } else if byte < 0x20 {
                throw error(.controlCharacterInString, at: position)
            } else if byte < 0x80 {
                position += 1
            } else {
                try skipUTF8Sequence()
            }
            let length = hasEscapes ? scratch.count + (position - runStart) : position - start
            if length > options.stringBytesMax {
                throw error(.stringTooLong(limit: options.stringBytesMax), at: start - 1)
            }
        }
        let string: String
        if hasEscapes {
            scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<position]))
            string = String(decoding: scratch, as: UTF8.self)
        } else {
            string = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        }
        position += 1  // '"'
        return string
    }

    /// At a byte ≥ 0x80: checks one well-formed UTF-8 sequence and steps over it.
    mutating func skipUTF8Sequence() throws(JSONError) {
        let lead = bytes[position]
        var count: Int
        var secondLow: UInt8 = 0x80
        var secondHigh: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: count = 2
        case 0xE0: count = 3; secondLow = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED: count = 3; secondHigh = 0x9F
        case 0xF0: count = 4; secondLow = 0x90
        case 0xF1...0xF3: count = 4
        case 0xF4: count = 4; secondHigh = 0x8F
        default: throw error(.invalidUTF8, at: position)
        }
        guard position + count <= end else { throw error(.invalidUTF8, at: position) }
        let second = bytes[position + 1]
        guard second >= secondLow && second <= secondHigh else { throw error(.invalidUTF8, at: position) }
        var index = 2
        while index < count {
            guard bytes[position + index] & 0xC0 == 0x80 else { throw error(.invalidUTF8, at: position) }
            index += 1
        }
        position += count
    }

    /// At a backslash: appends the escaped character's UTF-8 to `scratch`.
    mutating func parseEscape() throws(JSONError) {
        let escapeStart = position
        position += 1
        guard position < end else { throw unexpected("an escape character") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""): scratch.append(UInt8(ascii: "\""))
        case UInt8(ascii: "\\"): scratch.append(UInt8(ascii: "\\"))
        case UInt8(ascii: "/"): scratch.append(UInt8(ascii: "/"))
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try parseHex4(escapeStart: escapeStart)
            var scalarValue = UInt32(unit)
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard position + 1 < end, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error(.loneSurrogate, at: escapeStart)
                }
                position += 2
                let low = try parseHex4(escapeStart: position - 2)
                guard low >= 0xDC00 && low <= 0xDFFF else { throw error(.loneSurrogate, at: escapeStart) }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            } else if unit >= 0xDC00 && unit <= 0xDFFF {
                throw error(.loneSurrogate, at: escapeStart)
            }
            // Surrogates are excluded above, so the scalar is valid.
            appendUTF8(scalarValue)
        default:
            throw error(.invalidEscape, at: escapeStart)
        }
    }

    mutating func parseHex4(escapeStart: Int) throws(JSONError) -> UInt16 {
        guard position + 4 <= end else { throw error(.invalidEscape, at: escapeStart) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error(.invalidEscape, at: escapeStart)
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    /// Appends the UTF-8 encoding of a scalar value (never a surrogate).
    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
