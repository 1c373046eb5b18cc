// Golden frames: Format/golden/rpc/ holds one file per frame kind (and the error and handshake
// payloads), written by `goldenFrames`. The tests decode the committed bytes and re-encode them
// byte for byte, so a change to the codec that breaks peers of an older build fails here.
//
// Regenerate (only for a new protocol version, never to paper over a change):
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter GoldenFrameTests

import Foundation
import RPC
import Testing

let rpcRepositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let goldenRPCDirectory = rpcRepositoryRoot + "/Format/golden/rpc"

/// File name → the frame it holds.
let goldenFrames: [(String, Frame)] = [
    ("handshake-node.frame", Frame(kind: .handshake, requestID: 0, payload: Handshake(
        clusterID: 0x5EED, role: .node, nodeID: 2, payloadBytesMax: 16 << 20, credential: .bearerToken(Array("node-2-token".utf8))).encoded())),
    ("handshake-client.frame", Frame(kind: .handshake, requestID: 0, payload: Handshake(
        clusterID: 0x5EED, role: .client, payloadBytesMax: 1 << 20, credential: .apiKey(Array("vk_test_0123456789".utf8))).encoded())),
    ("handshake-accepted.frame", Frame(kind: .handshakeAccepted, requestID: 0, payload: HandshakeAccepted(
        clusterID: 0x5EED, nodeID: 1, payloadBytesMax: 16 << 20).encoded())),
    ("request.frame", .request(id: 1, method: 7, deadlineMicroseconds: 1_500_000, payload: Array("search k=10".utf8))),
    ("response.frame", .response(id: 1, payload: Array((0..<32).map { UInt8($0 * 7 & 0xFF) }))),
    ("response-lz4.frame", .response(id: 3, payload: Array(String(repeating: "vector database ", count: 32).utf8), flags: .lz4)),
    ("error-not-leader.frame", .error(id: 4, .notLeader(leaderHint: 3, "not the leader of group 9"))),
    ("error-wrong-shard.frame", .error(id: 5, .wrongShard(mapEpoch: 41, "shard 17 moved"))),
    ("error-connection.frame", .error(id: 0, .unavailable("server is shutting down"))),
    ("stream-chunk.frame", Frame(kind: .streamChunk, requestID: 6, payload: Array("snapshot bytes 0..15".utf8))),
    ("stream-end.frame", Frame(kind: .streamEnd, requestID: 6)),
    ("cancel.frame", Frame(kind: .cancel, requestID: 1)),
    ("ping.frame", Frame(kind: .ping, requestID: 11)),
    ("pong.frame", Frame(kind: .pong, requestID: 11)),
]

@Suite(.serialized) struct GoldenFrameTests {
    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try FileManager.default.createDirectory(atPath: goldenRPCDirectory, withIntermediateDirectories: true)
        for (name, frame) in goldenFrames {
            try Data(FrameCodec.encode(frame)).write(to: URL(fileURLWithPath: goldenRPCDirectory + "/" + name))
        }
    }

    @Test func goldenFilesDecodeAndReencodeByteForByte() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: goldenRPCDirectory).filter { $0.hasSuffix(".frame") }.sorted()
        #expect(names == goldenFrames.map(\.0).sorted(), "a golden file is missing or unexpected")
        for (name, expected) in goldenFrames {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: goldenRPCDirectory + "/" + name)))
            let frame = try FrameCodec.decodeOne(bytes)
            #expect(frame == expected, "\(name)")
            #expect(FrameCodec.encode(frame) == bytes, "\(name) does not re-encode to the same bytes")
            switch frame.kind {
            case .handshake: #expect(try Handshake.decode(frame.payload).encoded() == frame.payload)
            case .handshakeAccepted: #expect(try HandshakeAccepted.decode(frame.payload).encoded() == frame.payload)
            case .error: #expect(try RPCError.decode(frame.payload).encoded() == frame.payload)
            default: break
            }
        }
    }

    @Test func theLZ4GoldenFrameIsCompressed() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: goldenRPCDirectory + "/response-lz4.frame")))
        #expect(bytes[FrameFormat.flagsOffset] == 1)
        #expect(bytes.count < 512 / 2)
    }
}
