// Fuzz target: every client-protocol message decoder (Format/client.md §4).
//
// Byte 0 picks the message (mod 17); the rest is its payload. A payload that decodes must
// re-encode to exactly its own bytes (the encoding is canonical); everything else must be a
// typed DecodeError — never a trap, never an allocation the bytes do not justify.

import ClientProtocol
import FuzzSupport
import RPC
import Wire

func check<M: RPCMessage>(_ type: M.Type, _ bytes: [UInt8]) {
    guard let message = try? M.decode(bytes) else { return }
    precondition(message.encoded() == bytes, "\(M.self) does not re-encode to its bytes")
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let selector = data.first else { return }
    let bytes = [UInt8](data.dropFirst())
    switch selector % 17 {
    case 0: check(CollectionSpec.self, bytes)
    case 1: check(CreateCollectionResult.self, bytes)
    case 2: check(CollectionName.self, bytes)
    case 3: check(Flag.self, bytes)
    case 4: check(CollectionDescription.self, bytes)
    case 5: check(CollectionNames.self, bytes)
    case 6: check(UpsertRequest.self, bytes)
    case 7: check(UpdateResult.self, bytes)
    case 8: check(DeletePointsRequest.self, bytes)
    case 9: check(PayloadChangeRequest.self, bytes)
    case 10: check(RetrieveRequest.self, bytes)
    case 11: check(PointList.self, bytes)
    case 12: check(SearchRequest.self, bytes)
    case 13: check(ScrollRequest.self, bytes)
    case 14: check(ScrollResult.self, bytes)
    case 15: check(CountRequest.self, bytes)
    default: check(CountResult.self, bytes)
    }
}

runFuzzer(fuzzOne)
