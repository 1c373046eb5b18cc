// Fuzz target: the shard's decoders of untrusted bytes (Format/shard.md) — commands (Raft entry
// data), point records (storage values) and keys files (vector checkpoints).
//
// Input byte 0 picks what the rest is: 0 a command, 1 a point record, 2 a keys file, 3 a keys
// file whose checksum is recomputed over the mutated bytes first (so mutations get past it to
// the header and entry checks). A decode must either throw a typed DecodeError or give a value
// that re-encodes and decodes to the same bytes, within the format's bounds.

import Checksum
import FuzzSupport
import Shard
import Wire

func repairChecksum(_ bytes: inout [UInt8]) {
    guard bytes.count >= 8 else { return }
    let checksum = XXH3.hash(bytes, range: 0..<(bytes.count - 8))
    withUnsafeBytes(of: checksum.littleEndian) { for offset in 0..<8 { bytes[bytes.count - 8 + offset] = $0[offset] } }
}

func checkError(_ error: DecodeError, _ bytes: [UInt8]) {
    precondition(!error.field.isEmpty, "a decode error names no field")
    precondition(error.offset <= UInt64(bytes.count), "a decode error points past the input")
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    switch mode % 4 {
    case 0:
        let command: ShardCommand
        do throws(DecodeError) { command = try ShardCommand.decode(bytes) } catch {
            checkError(error, bytes)
            return
        }
        let encoded = command.encode()
        // Compared as bytes: a command may carry NaNs, which are never equal.
        let again = try? ShardCommand.decode(encoded).encode()
        precondition(again == encoded, "a decoded command does not round-trip")
        for key in command.keys { precondition(!key.isEmpty && key.count <= ShardCommand.keyBytesMax, "a key out of bounds") }
        if case .upsert(let points) = command {
            for point in points { precondition((1...ShardCommand.dimensionMax).contains(point.vector.count)) }
        }
    case 1:
        let record: PointRecord
        do throws(DecodeError) { record = try PointRecord.decode(bytes) } catch {
            checkError(error, bytes)
            return
        }
        let encoded = record.encode()
        let again = try? PointRecord.decode(encoded).encode()
        precondition(again == encoded, "a decoded record does not round-trip")
        precondition(record.vector.count <= ShardCommand.dimensionMax)
    default:
        if mode % 4 == 3 { repairChecksum(&bytes) }
        do throws(DecodeError) {
            let decoded = try VectorState.decodeKeys(bytes)
            var seen = Set<[UInt8]>()
            for (number, key) in decoded.keys {
                precondition(number >= 1 && number < decoded.nextNumber, "a number out of range")
                precondition(!key.isEmpty && key.count <= ShardCommand.keyBytesMax, "a key out of bounds")
                precondition(seen.insert(key).inserted, "a repeated key")
            }
        } catch {
            checkError(error, bytes)
        }
    }
}

runFuzzer(fuzzOne)
