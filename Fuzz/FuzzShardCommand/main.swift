// Fuzz target: the shard's decoders of untrusted bytes (Format/shard.md) — commands (Raft entry
// data), point records (storage values), keys files (vector checkpoints) and snapshots.
//
// Input byte 0 picks what the rest is: 0 a command, 1 a point record, 2 a keys file, 3 a keys
// file whose checksum is recomputed over the mutated bytes first (so mutations get past it to
// the header and entry checks), 4 a snapshot, 5 a snapshot whose header checksum and chunk
// chain are recomputed first. A decode must either throw a typed error or give a value that
// re-encodes and decodes to the same bytes, within the format's bounds; a snapshot check must
// throw a ShardError or accept a snapshot whose parts agree.

import Checksum
import FileIO
import FileIOSim
import FuzzSupport
import Shard
import Wire

/// Recomputes a snapshot's header checksum and chunk chain over the (mutated) bytes, as far as
/// the framing can be followed.
func repairSnapshotChecksums(_ bytes: inout [UInt8]) {
    func store(_ value: UInt64, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { for index in 0..<8 { bytes[offset + index] = $0[index] } }
    }
    guard bytes.count >= ShardSnapshot.headerBytes else { return }
    var previous = XXH3.hash(bytes, range: 0..<(ShardSnapshot.headerBytes - 8))
    store(previous, at: ShardSnapshot.headerBytes - 8)
    var offset = ShardSnapshot.headerBytes
    while bytes.count - offset >= ShardSnapshot.chunkHeaderBytes + 8 {
        let length = Int(bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self)) })
        let end = offset + ShardSnapshot.chunkHeaderBytes + length
        guard length <= ShardSnapshot.chunkBytesMax, end + 8 <= bytes.count else { return }
        previous = bytes.withUnsafeBytes { XXH3.hash(UnsafeRawBufferPointer(rebasing: $0[offset..<end]), seed: previous) }
        store(previous, at: end)
        offset = end + 8
    }
}

func fuzzSnapshot(_ bytes: [UInt8]) {
    let fileSystem = MemoryFileSystem()
    do throws(FileIOError) { try fileSystem.writeAtomically("/s", bytes) } catch { preconditionFailure("\(error)") }
    do throws(ShardError) {
        let (info, state) = try ShardSnapshot.check(path: "/s", fileSystem: fileSystem, configuration: nil,
                                                    staging: fileSystem, indexPath: "/i", keysPath: "/k")
        precondition(info.bytes == UInt64(bytes.count), "a snapshot accepted with bytes left over")
        precondition(UInt64(state.count) == info.points, "the checkpoint's keys and the points disagree")
        precondition(state.appliedIndex == info.appliedIndex, "the checkpoint's applied index is not the snapshot's")
    } catch {
        _ = error.description
    }
}

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
    switch mode % 6 {
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
    case 4, 5:
        if mode % 6 == 5 { repairSnapshotChecksums(&bytes) }
        fuzzSnapshot(bytes)
    default:
        if mode % 6 == 3 { repairChecksum(&bytes) }
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
