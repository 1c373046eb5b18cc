// Fuzz target: Raft message batches on the wire (Format/raft.md §8). Every input must decode to
// a batch or give a typed error; a batch that decodes must encode back to exactly the input
// (one encoding per batch).

import FuzzSupport
import RaftStorage

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let bytes = [UInt8](data)
    guard let batch = try? RaftMessageCodec.decode(bytes) else { return }
    precondition(RaftMessageCodec.encode(batch) == bytes, "a decoded batch encodes differently")
}

runFuzzer(fuzzOne)
