// The handshake (Format/rpc.md §5). The connecting side sends `Handshake` first; the accepting
// side answers `HandshakeAccepted`, or an error frame (request id 0) and closes. No request is
// served before the handshake succeeded.
//
//   Handshake:          u16 protocol version · u64 cluster id · u8 role · u64 node id ·
//                       u32 payload bytes max · u8 credential kind · varint length + credential
//   HandshakeAccepted:  u16 protocol version · u64 cluster id · u64 node id · u32 payload bytes max

import Wire

/// Who is connecting.
public enum PeerRole: UInt8, Sendable, Equatable {
    /// Another node of the cluster; `nodeID` names it.
    case node = 1
    /// A client (gateway user, SDK); `nodeID` is 0.
    case client = 2
}

/// How the connecting side proves who it is.
public enum Credential: Sendable, Equatable, Hashable {
    case none
    case apiKey([UInt8])
    case bearerToken([UInt8])

    static let kindNone: UInt8 = 0
    static let kindAPIKey: UInt8 = 1
    static let kindBearerToken: UInt8 = 2

    /// Bound on a credential on the wire.
    public static let bytesMax = 4096
}

public struct Handshake: RPCMessage, Equatable {
    public var protocolVersion: UInt16
    public var clusterID: UInt64
    public var role: PeerRole
    /// The connecting node's id (non-zero) when `role` is `.node`; 0 for clients.
    public var nodeID: UInt64
    /// The largest frame payload the connecting side accepts.
    public var payloadBytesMax: UInt32
    public var credential: Credential

    public static let currentProtocolVersion: UInt16 = 1

    public init(
        protocolVersion: UInt16 = Handshake.currentProtocolVersion, clusterID: UInt64, role: PeerRole, nodeID: UInt64 = 0,
        payloadBytesMax: UInt32 = UInt32(FrameFormat.payloadBytesDefault), credential: Credential = .none
    ) {
        self.protocolVersion = protocolVersion
        self.clusterID = clusterID
        self.role = role
        self.nodeID = nodeID
        self.payloadBytesMax = payloadBytesMax
        self.credential = credential
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(protocolVersion)
        writer.write(clusterID)
        writer.write(role.rawValue)
        writer.write(nodeID)
        writer.write(payloadBytesMax)
        switch credential {
        case .none:
            writer.write(Credential.kindNone)
            writer.writeLengthPrefixed([UInt8]())
        case .apiKey(let key):
            writer.write(Credential.kindAPIKey)
            writer.writeLengthPrefixed(key)
        case .bearerToken(let token):
            writer.write(Credential.kindBearerToken)
            writer.writeLengthPrefixed(token)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> Handshake {
        let version = try reader.readUInt16("protocol version")
        let clusterID = try reader.readUInt64("cluster id")
        let roleAt = reader.absoluteOffset
        let roleByte = try reader.readUInt8("role")
        guard let role = PeerRole(rawValue: roleByte) else {
            throw DecodeError(field: "role", offset: roleAt, reason: .invalidValue(UInt64(roleByte)))
        }
        let nodeAt = reader.absoluteOffset
        let nodeID = try reader.readUInt64("node id")
        guard (role == .node) == (nodeID != 0) else {
            throw DecodeError(field: "node id", offset: nodeAt, reason: .invalid("a node has a non-zero id and a client has id 0"))
        }
        let payloadBytesMax = try reader.readUInt32("payload bytes max")
        let kindAt = reader.absoluteOffset
        let kind = try reader.readUInt8("credential kind")
        let bytesAt = reader.absoluteOffset
        let bytes = Array(try reader.readLengthPrefixed("credential", limit: Credential.bytesMax))
        let credential: Credential
        switch kind {
        case Credential.kindNone:
            guard bytes.isEmpty else {
                throw DecodeError(field: "credential", offset: bytesAt, reason: .invalid("credential kind none carries no bytes"))
            }
            credential = .none
        case Credential.kindAPIKey: credential = .apiKey(bytes)
        case Credential.kindBearerToken: credential = .bearerToken(bytes)
        default: throw DecodeError(field: "credential kind", offset: kindAt, reason: .invalidValue(UInt64(kind)))
        }
        return Handshake(protocolVersion: version, clusterID: clusterID, role: role, nodeID: nodeID,
                         payloadBytesMax: payloadBytesMax, credential: credential)
    }
}

public struct HandshakeAccepted: RPCMessage, Equatable {
    public var protocolVersion: UInt16
    public var clusterID: UInt64
    /// The accepting node's id, or 0 if it is not a cluster node (a gateway, a test server).
    public var nodeID: UInt64
    /// The largest frame payload the accepting side accepts.
    public var payloadBytesMax: UInt32

    public init(protocolVersion: UInt16 = Handshake.currentProtocolVersion, clusterID: UInt64, nodeID: UInt64, payloadBytesMax: UInt32) {
        self.protocolVersion = protocolVersion
        self.clusterID = clusterID
        self.nodeID = nodeID
        self.payloadBytesMax = payloadBytesMax
    }

    public func encode(into writer: inout ByteWriter) {
        writer.write(protocolVersion)
        writer.write(clusterID)
        writer.write(nodeID)
        writer.write(payloadBytesMax)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> HandshakeAccepted {
        HandshakeAccepted(
            protocolVersion: try reader.readUInt16("protocol version"), clusterID: try reader.readUInt64("cluster id"),
            nodeID: try reader.readUInt64("node id"), payloadBytesMax: try reader.readUInt32("payload bytes max"))
    }
}
