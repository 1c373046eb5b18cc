// Float32 and integer exactness: shortest representations of random float32 bit patterns read
// back bit for bit, through the single-literal entry point and the array fast path; decimals
// near float midpoints (where double rounding bites) agree with strtof; integers are exact up
// to UInt64.max.

import Basics
import JSON
import Testing

func floatError(_ text: String) -> JSONError? {
    do throws(JSONError) {
        _ = try JSONParser.parseFloat(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct JSONFloatTests {
    /// 100,000 seeded random finite float32 bit patterns (all exponents, subnormals included).
    static func randomFloats(count: Int, seed: UInt64) -> [Float] {
        var random = SeededRandom(seed: seed)
        var floats: [Float] = []
        floats.reserveCapacity(count)
        while floats.count < count {
            let float = Float(bitPattern: UInt32(truncatingIfNeeded: random.next()))
            if float.isFinite { floats.append(float) }
        }
        return floats
    }

    static let specials: [Float] = [
        0, -0.0, 1, -1, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .leastNormalMagnitude,
        Float.leastNormalMagnitude.nextDown, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
        0.1, 1.0 / 3, 16_777_216, 16_777_218, 3.4028235e38, Float(bitPattern: 1), Float(bitPattern: 0x0080_0000),
    ]

    @Test func shortestRepresentationsRoundTripBitExact() throws {
        let floats = Self.specials + Self.randomFloats(count: 100_000, seed: 7)
        for float in floats {
            let parsed = try JSONParser.parseFloat(float.description)
            #expect(parsed.bitPattern == float.bitPattern, "\(float.description) read back as \(parsed)")
        }
        // The same values through the array fast path, in chunks of 1,000.
        var start = 0
        while start < floats.count {
            let chunk = Array(floats[start..<min(start + 1000, floats.count)])
            var writer = JSONWriter()
            writer.value(chunk)
            let parsed = try JSONParser.parseFloatArray(writer.bytes)
            #expect(parsed.map(\.bitPattern) == chunk.map(\.bitPattern))
            start += 1000
        }
    }

    /// How Python clients send float32 vectors: each float widened to a double and printed
    /// shortest-round-trip as a double (17 significant digits, past the exact fast path).
    @Test func doubleRepresentationsOfFloatsReadBackBitExact() throws {
        let floats = Self.specials + Self.randomFloats(count: 100_000, seed: 8)
        for float in floats {
            let text = Double(float).description
            let parsed = try JSONParser.parseFloat(text)
            #expect(parsed.bitPattern == float.bitPattern, "\(text) read back as \(parsed)")
        }
    }

    /// Literals of 17 to 24 significant digits (the bracketing path) against strtof.
    @Test func longLiteralsAgreeWithStrtof() throws {
        var random = SeededRandom(seed: 14)
        for _ in 0..<50_000 {
            var digits = String(random.next() % 9 + 1)
            for _ in 0..<(16 + Int(random.next() % 8)) { digits.append(Character(String(random.next() % 10))) }
            let point = Int(random.next() % UInt64(digits.count))
            let exponent = Int(random.next() % 90) - 45
            let text = (random.next() & 1 == 0 ? "-" : "") + digits.prefix(point + 1) + "." + digits.dropFirst(point + 1) + "0e\(exponent)"
            let reference = Float(text)!
            if reference.isFinite {
                #expect(try JSONParser.parseFloat(text).bitPattern == reference.bitPattern, "\(text)")
            } else {
                #expect(floatError(text)?.kind == .notFiniteFloat32)
            }
        }
    }

    @Test func subnormalsAndExtremes() throws {
        #expect(try JSONParser.parseFloat("1e-45") == .leastNonzeroMagnitude)
        // Half the smallest subnormal is 7.00649232162408535…e-46: below rounds to 0, above up.
        #expect(try JSONParser.parseFloat("7.1e-46") == .leastNonzeroMagnitude)
        #expect(try JSONParser.parseFloat("7e-46") == 0)
        #expect(try JSONParser.parseFloat("7.006492321624085e-46") == 0)
        #expect(try JSONParser.parseFloat("7.0064923216240854e-46") == .leastNonzeroMagnitude)
        let exactHalf = "7.00649232162408535461864791644958065640130970938257885878534141944895541342930300743319094181060791015625e-46"
        #expect(try JSONParser.parseFloat(exactHalf) == 0)  // ties to even
        #expect(try JSONParser.parseFloat(exactHalf.dropLast(4) + "1e-46") == .leastNonzeroMagnitude)
        #expect(try JSONParser.parseFloat("1e-50") == 0)
        #expect(try JSONParser.parseFloat("-1e-50").bitPattern == (-0.0 as Float).bitPattern)
        #expect(try JSONParser.parseFloat("3.4028235e38") == .greatestFiniteMagnitude)
        #expect(try JSONParser.parseFloat("3.4028235677973366e38") == .greatestFiniteMagnitude)  // just below the threshold
        #expect(floatError("3.4028236e38")?.kind == .notFiniteFloat32)
        #expect(floatError("1e39")?.kind == .notFiniteFloat32)
        #expect(floatError("-1e39")?.kind == .notFiniteFloat32)
        #expect(floatError("1e400")?.kind == .notFiniteFloat32)
        #expect(floatError("NaN")?.kind == .nonFiniteLiteral)
        #expect(floatError("-Infinity")?.kind == .nonFiniteLiteral)
        #expect(floatError("1.")?.kind == .invalidNumber("no digit after the decimal point"))
        #expect(floatError("1e")?.kind == .invalidNumber("no digit in the exponent"))
        #expect(floatError("01") != nil)
        #expect(floatError("1 ") != nil)
        #expect(floatError("not a finite float32 at all")?.offset == 0)
        #expect(floatError("1e39")?.description.contains("not a finite float32") == true)
    }

    /// Decimals at and next to the midpoints between adjacent floats: the double nearest to
    /// them can sit exactly on the midpoint, so rounding that double again would be wrong.
    @Test func midpointNeighbourhoodsAgreeWithStrtof() throws {
        var random = SeededRandom(seed: 11)
        var texts: [String] = [
            "1.000000059604644775390625", "1.0000000596046448", "1.0000000596046446",
            "0.50000002980232238769531250", "16777217", "16777219", "33554433.0", "3.4028235677973366e38",
        ]
        for _ in 0..<20_000 {
            var float = Float(bitPattern: UInt32(truncatingIfNeeded: random.next()) & 0x7FFF_FFFF)
            if !float.isFinite || float == .greatestFiniteMagnitude { float = 1.5 }
            let midpoint = (Double(float) + Double(float.nextUp)) / 2
            texts.append(midpoint.description)
            texts.append(midpoint.nextUp.description)
            texts.append(midpoint.nextDown.description)
            // The midpoint cut to fewer digits: fast-path-sized literals near it.
            let description = midpoint.description
            var cut = String(description.prefix(17))
            while cut.hasSuffix(".") { cut.removeLast() }
            if !description.contains("e") { texts.append(cut) }
        }
        for text in texts {
            guard let reference = Float(text), reference.isFinite else {
                #expect(floatError(text) != nil, "\(text) should be refused")
                continue
            }
            let parsed = try JSONParser.parseFloat(text)
            #expect(parsed.bitPattern == reference.bitPattern, "\(text): \(parsed) vs strtof \(reference)")
        }
    }

    @Test func doublesAgreeWithStrtod() throws {
        var random = SeededRandom(seed: 12)
        for _ in 0..<20_000 {
            let double = Double(bitPattern: random.next())
            guard double.isFinite else { continue }
            let value = try JSONParser.parse(double.description)
            #expect(value == .double(double) || (value.int64Value.map(Double.init) == double))
            let digits = random.next() % 10_000_000_000_000
            let exponent = Int(random.next() % 60) - 30
            let text = "\(digits)e\(exponent)"
            #expect(try JSONParser.parse(text).doubleValue == Double(text), "\(text)")
        }
    }

    @Test func integersAreExact() throws {
        #expect(try JSONParser.parse("18446744073709551615") == .unsigned(.max))
        #expect(try JSONParser.parse("9223372036854775808") == .unsigned(1 << 63))
        #expect(try JSONParser.parse("9223372036854775807") == .integer(.max))
        #expect(try JSONParser.parse("-9223372036854775808") == .integer(.min))
        #expect(try JSONParser.parse("-9223372036854775809") == .double(-9223372036854775808.0))
        #expect(try JSONParser.parse("18446744073709551616") == .double(18446744073709551616))
        #expect(try JSONParser.parse("0") == .integer(0))
        #expect(try JSONParser.parse("1.0") == .double(1))
        #expect(try JSONParser.parse("1e2") == .double(100))
        #expect(try JSONParser.parse("18446744073709551615").uint64Value == .max)
        var random = SeededRandom(seed: 13)
        for _ in 0..<10_000 {
            let unsigned = random.next()
            let parsedUnsigned = try JSONParser.parse(String(unsigned))
            #expect(parsedUnsigned.uint64Value == unsigned)
            #expect(try JSONParser.parse(parsedUnsigned.serialized()) == parsedUnsigned)
            let signed = Int64(bitPattern: random.next())
            let parsedSigned = try JSONParser.parse(String(signed))
            #expect(parsedSigned == .integer(signed))
            #expect(try JSONParser.parse(parsedSigned.serialized()) == parsedSigned)
        }
    }
}
