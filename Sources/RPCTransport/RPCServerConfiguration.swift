// Settings of an `RPCServer`. Every limit is named and bounded.

import RPC

public struct RPCServerConfiguration: Sendable {
    /// Connections from another cluster are refused (`permissionDenied`).
    public var clusterID: UInt64
    /// This node's id, told to peers in the handshake; 0 when the server is not a cluster node.
    public var nodeID: UInt64
    /// Bound on every frame payload this server reads (and tells peers in the handshake).
    public var limits: FrameLimits
    /// Requests one connection may have running at once; more are answered `resourceExhausted`.
    public var concurrentRequestsMax: Int
    /// Payloads at least this large are sent LZ4-compressed (nil: never).
    public var compressionBytesMin: Int?
    /// NIO's outbound watermarks: above `high` the connection stops reading requests and
    /// streams wait, until the buffered bytes fall under `low`.
    public var writeBufferLowWatermark: Int
    public var writeBufferHighWatermark: Int
    /// A connection that has not completed its handshake by then is closed.
    public var handshakeTimeout: Duration
    /// Connections open at once; more are closed as they arrive.
    public var connectionsMax: Int

    public init(
        clusterID: UInt64, nodeID: UInt64 = 0, limits: FrameLimits = FrameLimits(), concurrentRequestsMax: Int = 8192,
        compressionBytesMin: Int? = nil, writeBufferLowWatermark: Int = 32 << 10, writeBufferHighWatermark: Int = 256 << 10,
        handshakeTimeout: Duration = .seconds(10), connectionsMax: Int = 1024
    ) {
        precondition(concurrentRequestsMax > 0, "concurrentRequestsMax must be positive")
        precondition(writeBufferLowWatermark > 0 && writeBufferLowWatermark <= writeBufferHighWatermark, "bad watermarks")
        self.clusterID = clusterID
        self.nodeID = nodeID
        self.limits = limits
        self.concurrentRequestsMax = concurrentRequestsMax
        self.compressionBytesMin = compressionBytesMin
        self.writeBufferLowWatermark = writeBufferLowWatermark
        self.writeBufferHighWatermark = writeBufferHighWatermark
        self.handshakeTimeout = handshakeTimeout
        precondition(connectionsMax > 0, "connectionsMax must be positive")
        self.connectionsMax = connectionsMax
    }
}
