// Node liveness: which peer nodes this node has heard from lately. Quiet Raft groups
// (`RaftConfiguration.quiesce`) send no heartbeats, so a follower cannot learn from missing
// heartbeats that its leader died; it learns it here instead, from one cheap signal per node
// rather than per group: any message from a node counts, and a node pings each peer it has
// sent nothing to for `pingTicks`. A peer silent for `timeoutTicks` is reported down once (the
// host then calls `RaftNode.reportNodeDown` on the groups it led); hearing from it again brings
// it back. A ping carries its sender's incarnation (drawn at each start): a new one means the
// peer restarted — perhaps too quickly to be missed, perhaps with a lost log — and the host
// calls `RaftNode.reportNodeRestarted`. Like the rest of the core: no I/O, no clock — the host
// feeds it ticks and traffic.

public struct NodeLiveness: Sendable {
    public let pingTicks: Int
    public let timeoutTicks: Int
    /// Per peer: ticks since it was last heard from, and since anything was last sent to it.
    private var silent: [NodeID: Int] = [:]
    private var quiet: [NodeID: Int] = [:]
    private var down: Set<NodeID> = []
    private var incarnations: [NodeID: UInt64] = [:]

    public init(pingTicks: Int = 2, timeoutTicks: Int = 10) {
        precondition(pingTicks > 0 && timeoutTicks > pingTicks, "liveness needs 0 < pingTicks < timeoutTicks")
        self.pingTicks = pingTicks
        self.timeoutTicks = timeoutTicks
    }

    /// Starts tracking `peer` (idempotent); it counts as just heard from.
    public mutating func track(_ peer: NodeID) {
        if silent[peer] == nil {
            silent[peer] = 0
            quiet[peer] = pingTicks  // ping at the first tick
        }
    }

    public var peers: [NodeID] { silent.keys.sorted() }

    public func isDown(_ peer: NodeID) -> Bool { down.contains(peer) }

    /// Something arrived from `peer`.
    public mutating func heard(from peer: NodeID) {
        track(peer)
        silent[peer] = 0
        down.remove(peer)
    }

    /// A ping from `peer` carrying its incarnation: true if the peer restarted since its last
    /// ping (a different incarnation than the one known).
    public mutating func heard(from peer: NodeID, incarnation: UInt64) -> Bool {
        heard(from: peer)
        let known = incarnations.updateValue(incarnation, forKey: peer)
        return known != nil && known != incarnation
    }

    /// Something was sent to `peer`.
    public mutating func sent(to peer: NodeID) {
        track(peer)
        quiet[peer] = 0
    }

    /// One tick: the peers to ping now (they will count as sent to), and the peers that have
    /// just been silent for `timeoutTicks`, ascending.
    public mutating func tick() -> (ping: [NodeID], nowDown: [NodeID]) {
        var ping: [NodeID] = [], nowDown: [NodeID] = []
        for peer in silent.keys.sorted() {
            silent[peer]! += 1
            quiet[peer]! += 1
            if quiet[peer]! >= pingTicks {
                quiet[peer] = 0
                ping.append(peer)
            }
            if silent[peer]! >= timeoutTicks && !down.contains(peer) {
                down.insert(peer)
                nowDown.append(peer)
            }
        }
        return (ping, nowDown)
    }
}
