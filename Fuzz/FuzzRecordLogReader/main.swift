// Fuzz target: the record-log segment reader (header, records, checkpoint payloads, tail
// classification), recovery through RecordLog.open, and vectron-tool's verify.
//
// Input byte 0 picks a mode:
//   even — the rest of the input is one segment file, scanned as is;
//   odd  — "repair checksums" mode: the rest is parsed as a segment, and the header checksum
//          and every record checksum are recomputed before scanning, so the fuzzer gets past
//          the 64-bit checksums and exercises the structural rules and payload decoders.
// Both modes then open the file as the only segment of a log in an in-memory file system and
// read every stream back. Any trap is a bug; typed errors are expected.

import FuzzSupport
import Checksum
import FileIO
import FileIOSim
import RecordLog

func repairChecksums(_ input: [UInt8]) -> [UInt8] {
    var bytes = input
    guard bytes.count >= LogFormat.segmentHeaderBytes else { return bytes }
    let headerChecksum = XXH3.hash(bytes, range: 0..<LogFormat.HeaderField.checksum)
    withUnsafeBytes(of: headerChecksum.littleEndian) { for i in 0..<8 { bytes[LogFormat.HeaderField.checksum + i] = $0[i] } }
    var offset = LogFormat.segmentHeaderBytes
    while offset + LogFormat.recordHeaderBytes <= bytes.count {
        let stored = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))) }
        let end = offset + LogFormat.recordHeaderBytes + stored
        guard stored <= 1 << 20, end <= bytes.count else { break }
        let checksum = XXH3.hash(bytes, range: (offset + 8)..<end)
        withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[offset + i] = $0[i] } }
        offset = end
    }
    return bytes
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    if mode & 1 == 1 { bytes = repairChecksums(bytes) }
    let scan = SegmentScanner.scan(bytes, isLast: true)
    _ = SegmentScanner.scan(bytes, isLast: false)
    for record in scan.records where record.header.kind == .checkpoint {
        _ = try? TruncationState.decode(Array(bytes[record.payloadRange]))
    }
    let fs = MemoryFileSystem()
    try? fs.createDirectory("/log")
    fs.setContents(of: "/log/" + LogFormat.segmentFileName(1), bytes)
    // Small segments: a new segment is preallocated to segmentBytesMax on every open.
    var options = RecordLogOptions()
    options.segmentBytesMax = 64 << 10
    options.recordPayloadBytesMax = 64 << 10
    if let (log, _) = try? RecordLog.open(directory: "/log", fileSystem: fs, options: options) {
        for stream in log.streams() { _ = try? log.read(stream: stream) }
        log.close()
    }
}

runFuzzer(fuzzOne)
