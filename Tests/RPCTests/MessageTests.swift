// Payload messages: seeded round trips of every message, and typed errors for malformed ones.

import Basics
import RPC
import Testing
import Wire

func randomError(_ random: inout SeededRandom) -> RPCError {
    let code = RPCError.Code.allCases[Int(random.next() % UInt64(RPCError.Code.allCases.count))]
    let words = ["leader", "shard", "épsilon", "节点", "timeout", ""]
    let message = (0..<Int(random.next() % 5)).map { _ in words[Int(random.next() % UInt64(words.count))] }.joined(separator: " ")
    return RPCError(code, message, leaderHint: random.chance(0.5) ? random.next() : nil, mapEpoch: random.chance(0.5) ? random.next() : nil)
}

func randomHandshake(_ random: inout SeededRandom) -> Handshake {
    let isNode = random.chance(0.5)
    let credential: Credential
    switch random.next() % 3 {
    case 0: credential = .none
    case 1: credential = .apiKey(random.bytes(Int(random.next() % 64)))
    default: credential = .bearerToken(random.bytes(Int(random.next() % 300)))
    }
    return Handshake(
        protocolVersion: UInt16(truncatingIfNeeded: random.next()), clusterID: random.next(), role: isNode ? .node : .client,
        nodeID: isNode ? random.next() | 1 : 0, payloadBytesMax: UInt32(truncatingIfNeeded: random.next()), credential: credential)
}

@Suite struct MessageTests {
    @Test func errorsRoundTrip() throws {
        var random = SeededRandom(seed: 0xE220)
        for _ in 0..<2000 {
            let error = randomError(&random)
            #expect(try RPCError.decode(error.encoded()) == error)
        }
        // Frames carry them too.
        let frame = Frame.error(id: 5, .wrongShard(mapEpoch: 12, "moved"))
        #expect(try RPCError.decode(FrameCodec.decodeOne(FrameCodec.encode(frame)).payload) == .wrongShard(mapEpoch: 12, "moved"))
    }

    @Test func handshakesRoundTrip() throws {
        var random = SeededRandom(seed: 0x4A5D)
        for _ in 0..<2000 {
            let hello = randomHandshake(&random)
            #expect(try Handshake.decode(hello.encoded()) == hello)
            let accepted = HandshakeAccepted(
                protocolVersion: UInt16(truncatingIfNeeded: random.next()), clusterID: random.next(), nodeID: random.next(),
                payloadBytesMax: UInt32(truncatingIfNeeded: random.next()))
            #expect(try HandshakeAccepted.decode(accepted.encoded()) == accepted)
        }
    }

    @Test func malformedMessagesAreTypedErrors() {
        // Unknown error code.
        #expect(throws: DecodeError(field: "error code", offset: 0, reason: .invalidValue(999))) {
            try RPCError.decode([0xE7, 0x03, 0, 0])
        }
        // Unknown detail bit.
        #expect(throws: DecodeError(field: "error details", offset: 2, reason: .invalidValue(4))) {
            try RPCError.decode([1, 0, 4, 0])
        }
        // Invalid UTF-8 message.
        #expect(throws: DecodeError.self) { try RPCError.decode([1, 0, 0, 2, 0xC3, 0x28]) }
        // A message length over the bound is refused before reading it.
        var long = ByteWriter()
        long.write(UInt16(1)); long.write(UInt8(0)); long.writeVarint(1 << 40)
        #expect(throws: DecodeError(field: "error message.length", offset: 3, reason: .tooLarge(value: 1 << 40, limit: 4096))) {
            try RPCError.decode(long.finish())
        }
        // Trailing bytes.
        #expect(throws: DecodeError.self) { try RPCError.decode(RPCError.internal("x").encoded() + [0]) }
        // A client with a node id, a node without one, credential kind none with bytes.
        var hello = Handshake(clusterID: 1, role: .client).encoded()
        hello[11] = 1  // the node id's low byte
        #expect(throws: DecodeError.self) { try Handshake.decode(hello) }
        var none = Handshake(clusterID: 1, role: .client).encoded()
        none.removeLast()
        none += [2, 9, 9]
        #expect(throws: DecodeError.self) { try Handshake.decode(none) }
        var role = Handshake(clusterID: 1, role: .client).encoded()
        role[10] = 3
        #expect(throws: DecodeError(field: "role", offset: 10, reason: .invalidValue(3))) { try Handshake.decode(role) }
    }

    @Test func longMessagesAreClipped() throws {
        let error = RPCError.internal(String(repeating: "é", count: 5000))
        #expect(error.message.utf8.count <= RPCError.messageBytesMax)
        #expect(try RPCError.decode(error.encoded()) == error)
    }
}
