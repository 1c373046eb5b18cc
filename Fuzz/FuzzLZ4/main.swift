// Fuzz target: LZ4 decompression of hostile input, and compress → decompress round trips.
//
// Input: byte 0 picks the mode. Even: bytes 1...4 are a little-endian claimed decompressed
// size (taken modulo 1 MiB), the rest is a compressed block to decode — it must throw or return
// exactly the claimed size. Odd: the rest is plain data that must round-trip exactly.

import FuzzSupport
import Compression

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    let rest = [UInt8](data.dropFirst())
    if mode & 1 == 0 {
        guard rest.count >= 4 else { return }
        let claimed = rest.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) % (1 << 20)) }
        let block = Array(rest.dropFirst(4))
        if let output = try? LZ4.decompress(block, decompressedSize: claimed, limit: 1 << 20) {
            precondition(output.count == claimed, "LZ4 returned \(output.count) bytes, claimed \(claimed)")
        }
    } else {
        let compressed = try! LZ4.compress(rest)
        let back = try! LZ4.decompress(compressed, decompressedSize: rest.count, limit: 1 << 24)
        precondition(back == rest, "LZ4 round trip changed the data")
    }
}

runFuzzer(fuzzOne)
