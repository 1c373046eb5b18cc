// Checks a connecting peer's handshake. The transport verifies the protocol version and the
// cluster id itself; the authenticator decides whether the credential (or node id) is allowed
// and who the peer is. It runs on the connection's event loop, so it must be quick: compare a
// key's hash, never hash a password.

public struct RPCPeer: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var role: PeerRole
    /// The peer's node id for nodes; 0 for clients.
    public var nodeID: UInt64
    /// Who the credential belongs to (an API key's owner); empty when not known.
    public var principal: String

    public init(role: PeerRole, nodeID: UInt64 = 0, principal: String = "") {
        self.role = role
        self.nodeID = nodeID
        self.principal = principal
    }

    public var description: String {
        role == .node ? "node \(nodeID)" : "client \(principal.isEmpty ? "(anonymous)" : principal)"
    }
}

public struct RPCAuthenticator: Sendable {
    let check: @Sendable (Handshake) -> Result<RPCPeer, RPCError>

    public init(_ check: @escaping @Sendable (Handshake) -> Result<RPCPeer, RPCError>) {
        self.check = check
    }

    public func authenticate(_ handshake: Handshake) -> Result<RPCPeer, RPCError> { check(handshake) }

    /// Accepts every peer of the right cluster (tests, closed networks).
    public static let acceptAll = RPCAuthenticator { handshake in
        .success(RPCPeer(role: handshake.role, nodeID: handshake.nodeID))
    }

    /// Accepts nodes, and clients presenting one of `keys` (owner → key bytes) as an API key.
    /// Keys are compared in constant time.
    public static func apiKeys(_ keys: [String: [UInt8]]) -> RPCAuthenticator {
        let owners = keys.sorted { $0.key < $1.key }
        return RPCAuthenticator { handshake in
            if handshake.role == .node { return .success(RPCPeer(role: .node, nodeID: handshake.nodeID)) }
            guard case .apiKey(let presented) = handshake.credential else {
                return .failure(.unauthenticated("an API key is required"))
            }
            var match: String?
            for (owner, key) in owners where constantTimeEqual(key, presented) { match = owner }
            guard let match else { return .failure(.unauthenticated("unknown API key")) }
            return .success(RPCPeer(role: .client, principal: match))
        }
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for i in 0..<a.count { difference |= a[i] ^ b[i] }
    return difference == 0
}
