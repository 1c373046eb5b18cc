// Fuzz target: the manifest decoders — version edits and the CURRENT file — and their round
// trips.
//
// Input byte 0: even — the rest is a version edit; odd — a CURRENT file (bit 1: repair its
// checksum first, so the fuzzer reaches the name checks behind it).

import Checksum
import FuzzSupport
import StorageFormat

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    if mode & 1 == 0 {
        guard let edit = try? ManifestFormat.decode(bytes) else { return }
        let again = try? ManifestFormat.decode(ManifestFormat.encode(edit))
        precondition(again == edit, "version edit round trip")
    } else {
        if mode & 2 != 0 && bytes.count >= 8 {
            let at = bytes.count - 8
            let checksum = XXH3.hash(bytes, range: 0..<at)
            withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[at + i] = $0[i] } }
        }
        guard let name = try? ManifestFormat.decodeCurrent(bytes) else { return }
        precondition(!name.isEmpty && !name.contains("/"), "CURRENT names a path")
        let again = try? ManifestFormat.decodeCurrent(ManifestFormat.encodeCurrent(manifestName: name))
        precondition(again == name, "CURRENT round trip")
    }
}

runFuzzer(fuzzOne)
