// Fuzz target: the fixed-layout segment decoders — footer, Bloom filter block, properties
// block — and their round trips.
//
// Input byte 0 picks the decoder (mod 3); for the footer, bit 2 asks to repair the checksum
// first so the fuzzer reaches the fields behind it.

import Checksum
import FuzzSupport
import StorageFormat

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    switch mode % 3 {
    case 0:
        if mode & 4 != 0 && bytes.count == SegmentFormat.footerBytes {
            let at = SegmentFormat.FooterField.checksum
            let checksum = XXH3.hash(bytes, range: 0..<at)
            withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[at + i] = $0[i] } }
        }
        guard let footer = try? SegmentFooter.decode(bytes, baseOffset: 1000) else { return }
        let again = try? SegmentFooter.decode(footer.encode(), baseOffset: 0)
        precondition(again == footer, "footer round trip")
    case 1:
        guard let filter = try? BloomFilter.decode(bytes, baseOffset: 0) else { return }
        for probe in 0..<64 { _ = filter.mayContain(hash: UInt64(probe) &* 0x9E37_79B9_7F4A_7C15) }
        let again = try? BloomFilter.decode(filter.encode(), baseOffset: 0)
        precondition(again?.bits == filter.bits && again?.probes == filter.probes, "filter round trip")
    default:
        guard let properties = try? SegmentProperties.decode(bytes, baseOffset: 0) else { return }
        let again = try? SegmentProperties.decode(properties.encode(), baseOffset: 0)
        precondition(again == properties, "properties round trip")
    }
}

runFuzzer(fuzzOne)
