// Fuzz target: Raft messages on the wire — message batches (Format/raft.md §8) and the chunks of
// a large message (§9). Every input must decode or give a typed error, as a batch and as a chunk;
// whatever decodes must encode back to exactly the input (one encoding each).

import FuzzSupport
import RaftStorage

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let bytes = [UInt8](data)
    if let batch = try? RaftMessageCodec.decode(bytes) {
        precondition(RaftMessageCodec.encode(batch) == bytes, "a decoded batch encodes differently")
    }
    if let chunk = try? RaftMessageChunk.decode(bytes) {
        precondition(chunk.encoded() == bytes, "a decoded chunk encodes differently")
        precondition(chunk.offset < chunk.total && UInt64(chunk.bytes.count) <= chunk.total - chunk.offset && !chunk.bytes.isEmpty,
                     "a decoded chunk lies outside its transfer")
    }
}

runFuzzer(fuzzOne)
