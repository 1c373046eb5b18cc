// Fuzz target: every RPC message decoder (Format/rpc.md §5–§6).
//
// Byte 0 picks the decoder (mod 4): 0 the handshake, 1 the handshake answer, 2 the error
// payload, 3 a whole frame whose payload then goes to the decoder its kind calls for (bit 7 of
// byte 0 repairs that frame's checksum first). Every decoded message must re-encode to bytes that
// decode to the same message; everything else must be a typed DecodeError.

import Checksum
import FuzzSupport
import RPC
import Wire

func roundTrip<M: RPCMessage & Equatable>(_ type: M.Type, _ bytes: [UInt8]) {
    guard let message = try? M.decode(bytes) else { return }
    precondition((try? M.decode(message.encoded())) == message, "\(M.self) round trip")
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    switch mode % 4 {
    case 0: roundTrip(Handshake.self, bytes)
    case 1: roundTrip(HandshakeAccepted.self, bytes)
    case 2: roundTrip(RPCError.self, bytes)
    default:
        if mode & 0x80 != 0, bytes.count >= FrameFormat.overheadBytes {
            let checksumAt = bytes.count - FrameFormat.trailerBytes
            let checksum = XXH3.hash(bytes, range: 0..<checksumAt)
            withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[checksumAt + i] = $0[i] } }
        }
        guard let frame = try? FrameCodec.decodeOne(bytes, limits: FrameLimits(payloadBytesMax: 1 << 20)) else { return }
        switch frame.kind {
        case .handshake: roundTrip(Handshake.self, frame.payload)
        case .handshakeAccepted: roundTrip(HandshakeAccepted.self, frame.payload)
        case .error: roundTrip(RPCError.self, frame.payload)
        default: roundTrip(RawPayload.self, frame.payload)
        }
    }
}

runFuzzer(fuzzOne)
