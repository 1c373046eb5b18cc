// Hex formatting shared by the dump and verify reports.

func hex64(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

func hexBytes<C: Collection>(_ bytes: C, limit: Int = 32) -> String where C.Element == UInt8 {
    var out = ""
    for (i, byte) in bytes.prefix(limit).enumerated() {
        if i > 0 { out += " " }
        let digits = String(byte, radix: 16)
        out += digits.count == 1 ? "0" + digits : digits
    }
    if bytes.count > limit { out += " …" }
    return out
}

func offsetString(_ offset: Int) -> String {
    let digits = String(offset, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
