// Fuzz target: the storage-segment reader — footer, index/filter/properties/data block
// decoders, LZ4 block decompression, lookups and scans.
//
// Input byte 0 picks a mode: even — the rest is a segment file as is; odd — "repair checksums":
// the footer checksum and the trailer checksum of every block the footer and index point at are
// recomputed first, so the fuzzer reaches the block decoders behind the 64-bit checksums.

import FuzzSupport
import Checksum
import FileIO
import FileIOSim
import StorageFormat
import Wire

func fixTrailer(_ bytes: inout [UInt8], _ handle: BlockHandle, limit: Int) {
    let size = Int(handle.size)
    guard handle.offset <= UInt64(limit), size + SegmentFormat.trailerBytes <= limit - Int(handle.offset) else { return }
    // (limit ≤ file size, so the checksum range below is in bounds.)
    let start = Int(handle.offset)
    let checksum = XXH3.hash(bytes, range: start..<(start + size + 5))
    withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[start + size + 5 + i] = $0[i] } }
}

func repairChecksums(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    guard bytes.count >= SegmentFormat.footerBytes else { return bytes }
    let footerAt = bytes.count - SegmentFormat.footerBytes
    let checksum = XXH3.hash(bytes, range: footerAt..<(footerAt + SegmentFormat.FooterField.checksum))
    withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[footerAt + SegmentFormat.FooterField.checksum + i] = $0[i] } }
    guard let footer = try? SegmentFooter.decode(Array(bytes[footerAt...]), baseOffset: UInt64(footerAt)) else { return bytes }
    for handle in [footer.index, footer.filter, footer.properties] { fixTrailer(&bytes, handle, limit: footerAt) }
    guard footer.index.offset <= UInt64(footerAt), Int(footer.index.size) <= footerAt - Int(footer.index.offset),
          let block = try? Block(Array(bytes[Int(footer.index.offset)..<(Int(footer.index.offset) + Int(footer.index.size))])), let entries = try? block.entries() else { return bytes }
    for entry in entries {
        var reader = ByteReader(Array(entry.value))
        if let handle = try? BlockHandle.decode(&reader) { fixTrailer(&bytes, handle, limit: footerAt) }
    }
    return bytes
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    if mode & 1 == 1 { bytes = repairChecksums(bytes) }
    let fs = MemoryFileSystem()
    fs.setContents(of: "/s.vseg", bytes)
    guard let handle = try? fs.open("/s.vseg", options: .read), let reader = try? SegmentReader(handle: handle) else { return }
    if let entries = try? reader.scan() {
        for entry in entries.prefix(64) { _ = try? reader.get(entry.key) }
    }
    _ = try? reader.get(Array("points/1100".utf8))
    _ = reader.dataBlockSummaries()
}

runFuzzer(fuzzOne)
