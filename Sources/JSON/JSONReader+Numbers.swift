// Number literals: RFC 8259's grammar checked byte by byte, the decimal significand (up to 19
// digits) and exponent collected on the way, then converted.
//
// Doubles: Clinger's fast path (significand ≤ 2^53, |exponent| ≤ 22: one correctly rounded
// multiplication or division of two exact doubles), otherwise the C library's correctly
// rounded strtod through `Double(String)`. Float32: the same double, rounded to float, is the
// correctly rounded float unless the double landed exactly on a midpoint between two floats
// (double rounding); then — and for everything off the fast path — `Float(String)` (strtof).
// Non-finite results are refused: JSON has no infinities.

struct NumberLiteral {
    var start: Int
    var end: Int
    var negative = false
    /// The first 19 significant digits.
    var significand: UInt64 = 0
    /// value = significand × 10^exponent (when `truncated` is false).
    var exponent = 0
    /// More than 19 significant digits: only the slow path is exact.
    var truncated = false
    /// No fraction and no exponent part.
    var isInteger = true
    /// The integer part, when the literal is an integer that fits UInt64.
    var integer: UInt64? = 0
}

extension JSONReader {
    /// Exactly representable powers of ten.
    static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]
    static let significantDigitsMax = 19
    /// Exponents are clamped here while scanning (far beyond any finite double's reach).
    static let exponentClamp = 100_000

    @inline(__always)
    func isDigit(_ offset: Int) -> Bool {
        offset < end && bytes[offset] >= UInt8(ascii: "0") && bytes[offset] <= UInt8(ascii: "9")
    }

    /// Scans the literal at `position` (which must start with '-' or a digit to be valid).
    /// Whether the eight bytes of `chunk` (the first in its low byte) are all ASCII digits
    /// (SWAR: a byte is a digit iff its high nibble is 3 and adding 6 keeps it so).
    @inline(__always)
    static func isEightDigits(_ chunk: UInt64) -> Bool {
        ((chunk & 0xF0F0_F0F0_F0F0_F0F0) | (((chunk &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4)) == 0x3333_3333_3333_3333
    }

    /// The value of eight ASCII digits (the first, most significant, in the low byte): pairs,
    /// then fours, then all eight, by three multiplications.
    @inline(__always)
    static func eightDigitsValue(_ chunk: UInt64) -> UInt64 {
        var value = chunk & 0x0F0F_0F0F_0F0F_0F0F
        value = (value &* (10 << 8 + 1)) >> 8
        value = ((value & 0x00FF_00FF_00FF_00FF) &* (100 << 16 + 1)) >> 16
        return ((value & 0x0000_FFFF_0000_FFFF) &* (10_000 << 32 + 1)) >> 32
    }

    mutating func scanNumber() throws(JSONError) -> NumberLiteral {
        var number = NumberLiteral(start: position, end: position)
        if position < end, bytes[position] == UInt8(ascii: "-") {
            number.negative = true
            position += 1
        }
        guard position < end else { throw unexpected("a digit") }
        var digits = 0
        let first = bytes[position]
        if first == UInt8(ascii: "0") {
            position += 1
            if isDigit(position) { throw error(.invalidNumber("leading zero"), at: number.start) }
        } else if first >= UInt8(ascii: "1") && first <= UInt8(ascii: "9") {
            var integer: UInt64? = 0
            while isDigit(position) {
                let digit = UInt64(bytes[position] &- UInt8(ascii: "0"))
                if let value = integer {
                    let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                    let (sum, overflow2) = times10.addingReportingOverflow(digit)
                    integer = overflow1 || overflow2 ? nil : sum
                }
                if digits < Self.significantDigitsMax {
                    number.significand = number.significand &* 10 &+ digit
                    digits += 1
                } else {
                    number.truncated = true
                    number.exponent += 1
                }
                position += 1
            }
            number.integer = integer
        } else {
            if startsNonFiniteLiteral(at: position) { throw error(.nonFiniteLiteral, at: number.start) }
            throw unexpected("a digit")
        }
        if position < end, bytes[position] == UInt8(ascii: ".") {
            number.isInteger = false
            position += 1
            guard isDigit(position) else {
                throw error(.invalidNumber("no digit after the decimal point"), at: position)
            }
            while isDigit(position) {
                // Eight digits at a time once the significant ones began (vectors printed by
                // other languages carry 16–18 fraction digits each).
                if digits > 0 && digits + 8 <= Self.significantDigitsMax && position + 8 <= end {
                    let chunk = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
                    if Self.isEightDigits(chunk) {
                        number.significand = number.significand &* 100_000_000 &+ Self.eightDigitsValue(chunk)
                        number.exponent -= 8
                        digits += 8
                        position += 8
                        continue
                    }
                }
                let digit = UInt64(bytes[position] &- UInt8(ascii: "0"))
                if digits == 0 && digit == 0 {
                    number.exponent -= 1  // a leading zero of the fraction
                } else if digits < Self.significantDigitsMax {
                    number.significand = number.significand &* 10 &+ digit
                    number.exponent -= 1
                    digits += 1
                } else {
                    number.truncated = true
                }
                position += 1
            }
        }
        if position < end, bytes[position] | 0x20 == UInt8(ascii: "e") {
            number.isInteger = false
            position += 1
            var exponentNegative = false
            if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                exponentNegative = bytes[position] == UInt8(ascii: "-")
                position += 1
            }
            guard isDigit(position) else {
                throw error(.invalidNumber("no digit in the exponent"), at: position)
            }
            var exponent = 0
            while isDigit(position) {
                if exponent < Self.exponentClamp {
                    exponent = exponent * 10 + Int(bytes[position] &- UInt8(ascii: "0"))
                }
                position += 1
            }
            number.exponent += exponentNegative ? -exponent : exponent
        }
        number.end = position
        if number.end - number.start > options.numberBytesMax {
            throw error(.numberTooLong(limit: options.numberBytesMax), at: number.start)
        }
        return number
    }

    /// The general path: exact integers, else a finite double.
    func value(of number: NumberLiteral) throws(JSONError) -> JSONValue {
        if number.isInteger, let integer = number.integer {
            if !number.negative {
                return integer <= UInt64(Int64.max) ? .integer(Int64(integer)) : .unsigned(integer)
            }
            if integer == 0 { return .double(-0.0) }
            if integer <= UInt64(Int64.max) + 1 { return .integer(Int64(truncatingIfNeeded: 0 &- integer)) }
        }
        return .double(try double(of: number))
    }

    func double(of number: NumberLiteral) throws(JSONError) -> Double {
        if number.significand == 0 && !number.truncated { return number.negative ? -0.0 : 0.0 }
        if let fast = fastDouble(number) { return fast }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[number.start..<number.end]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw error(.numberOutOfRange, at: number.start) }
        return value
    }

    @inline(__always)
    func fastDouble(_ number: NumberLiteral) -> Double? {
        guard !number.truncated, number.significand <= 1 << 53,
              number.exponent >= -22, number.exponent <= 22 else { return nil }
        var value = Double(number.significand)
        if number.exponent >= 0 {
            value *= Self.powersOfTen[number.exponent]
        } else {
            value /= Self.powersOfTen[-number.exponent]
        }
        return number.negative ? -value : value
    }

    /// The correctly rounded float32, or `notFiniteFloat32`.
    func float(of number: NumberLiteral) throws(JSONError) -> Float {
        if number.significand == 0 && !number.truncated { return number.negative ? -0.0 : 0.0 }
        if let float = fastFloat(number) {
            guard float.isFinite else { throw error(.notFiniteFloat32, at: number.start) }
            return float
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[number.start..<number.end]), as: UTF8.self)
        guard let value = Float(text), value.isFinite else { throw error(.notFiniteFloat32, at: number.start) }
        return value
    }

    /// The float32 nearest the literal without strtof, or nil when this path cannot be sure.
    /// Literals with more digits than a double holds exactly (a float32 printed as a double has
    /// 17) are bracketed: the value lies between the significand cut to 16 digits and that plus
    /// one unit, and if both ends round to the same float (rounding is monotonic) so does it.
    @inline(__always)
    func fastFloat(_ number: NumberLiteral) -> Float? {
        var cut = number
        var exact = !number.truncated
        while cut.significand >= 1 << 53 {
            cut.significand /= 10
            cut.exponent += 1
            exact = false
        }
        cut.truncated = false
        guard let lower = fastDouble(cut) else { return nil }
        let float = Float(lower)
        if Self.isFloatMidpoint(lower, rounded: float) { return nil }
        if exact { return float }
        cut.significand += 1
        guard let upper = fastDouble(cut) else { return nil }
        let upperFloat = Float(upper)
        if Self.isFloatMidpoint(upper, rounded: upperFloat) || upperFloat != float { return nil }
        return float
    }

    /// Whether `double` lies exactly halfway between two adjacent floats (or at the overflow
    /// threshold), where rounding it again may differ from rounding the exact decimal once.
    @inline(__always)
    static func isFloatMidpoint(_ double: Double, rounded float: Float) -> Bool {
        let roundedBack = Double(float)
        if roundedBack == double { return false }
        if float.isInfinite { return double.magnitude == float32OverflowThreshold }
        let neighbour = double > roundedBack ? float.nextUp : float.nextDown
        if neighbour.isInfinite { return double.magnitude == float32OverflowThreshold }
        return (roundedBack + Double(neighbour)) / 2 == double
    }

    /// The magnitude from which float32 rounding overflows: Float.max + half an ulp.
    static let float32OverflowThreshold = Double(Float.greatestFiniteMagnitude) + Double(Float.greatestFiniteMagnitude.ulp) / 2
}
