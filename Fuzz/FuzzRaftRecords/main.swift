// Fuzz target: Raft's records in the unified log (Format/raft.md) — each payload decoder with
// its round trip, the hard-state file, and replay of a whole stream of records.
//
// Input byte 0 picks the mode (mod 5). Modes 0–3 decode the rest as an entry, a hard state, a
// snapshot or a hard-state file (bit 3 of byte 0 repairs the file's checksum first, so that the
// fuzzer reaches the fields behind it). Mode 4 reads the rest as records — kind u8, length u8,
// payload — appends them to stream 1 of an in-memory record log and replays the stream: every
// outcome must be a recovered state or a typed error.

import Checksum
import FileIO
import FileIOSim
import FuzzSupport
import Raft
import RaftStorage
import RecordLog

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    switch mode % 5 {
    case 0:
        guard let entry = try? RaftLogStore.decodeEntry(bytes) else { return }
        precondition((try? RaftLogStore.decodeEntry(RaftLogStore.encode(entry))) == entry, "entry round trip")
    case 1:
        guard let hard = try? RaftLogStore.decodeHardState(bytes) else { return }
        precondition((try? RaftLogStore.decodeHardState(RaftLogStore.encode(hard))) == hard, "hard state round trip")
    case 2:
        guard let snapshot = try? RaftLogStore.decodeSnapshot(bytes) else { return }
        precondition((try? RaftLogStore.decodeSnapshot(RaftLogStore.encode(snapshot))) == snapshot, "snapshot round trip")
    case 3:
        if mode & 8 != 0 && bytes.count == HardStateFile.bytes {
            let checksum = XXH3.hash(bytes, range: 0..<24)
            withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[24 + i] = $0[i] } }
        }
        guard let state = try? HardStateFile.decode(bytes) else { return }
        precondition((try? HardStateFile.decode(HardStateFile.encode(state))) == state, "hard-state file round trip")
    default:
        var records: [LogRecord] = []
        var at = 0
        while at + 2 <= bytes.count {
            let kind = bytes[at] % 6
            let length = Int(bytes[at + 1])
            let end = min(bytes.count, at + 2 + length)
            records.append(LogRecord(stream: 1, kind: max(1, kind), payload: Array(bytes[(at + 2)..<end])))
            at = end
        }
        let fileSystem = MemoryFileSystem()
        guard let (log, _) = try? RecordLog.open(directory: "/log", fileSystem: fileSystem) else { return }
        defer { log.close() }
        guard (try? log.append(records)) != nil else { return }
        let store = RaftLogStore(log: log)
        guard let state = try? store.recover(group: 1) else { return }
        // A recovered state keeps its promises: contiguous entries right after the snapshot.
        var expected = (state.snapshot?.metadata.index ?? 0) + 1
        for entry in state.entries {
            precondition(entry.index == expected, "replay produced a gap")
            expected += 1
        }
    }
}

runFuzzer(fuzzOne)
