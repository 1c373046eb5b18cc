// The payload of an error frame (Format/rpc.md §6): code, which details follow, the details,
// then the message.
//
//   u16 code · u8 details (bit 0 leader hint, bit 1 map epoch) · [u64 leader hint] ·
//   [u64 map epoch] · varint length + UTF-8 message (≤ 4096 bytes)

import Wire

extension RPCError: RPCMessage {
    static let detailLeaderHint: UInt8 = 1 << 0
    static let detailMapEpoch: UInt8 = 1 << 1

    public func encode(into writer: inout ByteWriter) {
        writer.write(code.rawValue)
        var details: UInt8 = 0
        if leaderHint != nil { details |= Self.detailLeaderHint }
        if mapEpoch != nil { details |= Self.detailMapEpoch }
        writer.write(details)
        if let leaderHint { writer.write(leaderHint) }
        if let mapEpoch { writer.write(mapEpoch) }
        writer.writeString(message)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> RPCError {
        let codeAt = reader.absoluteOffset
        let rawCode = try reader.readUInt16("error code")
        guard let code = Code(rawValue: rawCode) else {
            throw DecodeError(field: "error code", offset: codeAt, reason: .invalidValue(UInt64(rawCode)))
        }
        let detailsAt = reader.absoluteOffset
        let details = try reader.readUInt8("error details")
        guard details & ~(detailLeaderHint | detailMapEpoch) == 0 else {
            throw DecodeError(field: "error details", offset: detailsAt, reason: .invalidValue(UInt64(details)))
        }
        let leaderHint = details & detailLeaderHint != 0 ? try reader.readUInt64("leader hint") : nil
        let mapEpoch = details & detailMapEpoch != 0 ? try reader.readUInt64("map epoch") : nil
        let message = try reader.readString("error message", limit: messageBytesMax)
        return RPCError(code, message, leaderHint: leaderHint, mapEpoch: mapEpoch)
    }
}
