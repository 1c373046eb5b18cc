// Settings of an `HTTPServer`. Every limit is named; defaults suit a database API server.

import NIOCore

public struct HTTPServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port; `HTTPServer.start()` returns the one bound.
    public var port: Int
    /// A larger request body is answered 413 and the connection closes (the excess is not read
    /// into memory).
    public var maxBodyBytes: Int
    /// Bound on a request's header fields (each field and all together): beyond it, 431.
    public var maxHeaderBytes: Int
    /// Connections beyond this are closed as soon as they are accepted.
    public var maxConnections: Int
    /// A connection with no traffic either way for this long is closed — also one whose handler
    /// never answers.
    public var idleTimeout: Duration
    /// Threads of the server's own event loop group.
    public var eventLoopThreads: Int
    /// How long `shutdown()` waits for requests in flight before closing their connections.
    public var shutdownGracePeriod: Duration
    /// NIO's outbound watermarks: above `high` the connection reads no further requests until
    /// the buffered response bytes fall below `low`.
    public var writeBufferLowWatermark: Int
    public var writeBufferHighWatermark: Int

    public init(
        host: String = "127.0.0.1", port: Int = 0, maxBodyBytes: Int = 32 << 20, maxHeaderBytes: Int = 16 << 10,
        maxConnections: Int = 1024, idleTimeout: Duration = .seconds(60), eventLoopThreads: Int = System.coreCount,
        shutdownGracePeriod: Duration = .seconds(10), writeBufferLowWatermark: Int = 64 << 10,
        writeBufferHighWatermark: Int = 256 << 10
    ) {
        precondition(maxBodyBytes >= 0 && maxHeaderBytes > 0 && maxConnections > 0 && eventLoopThreads > 0, "limits must be positive")
        precondition(writeBufferLowWatermark > 0 && writeBufferLowWatermark <= writeBufferHighWatermark, "bad watermarks")
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.eventLoopThreads = eventLoopThreads
        self.shutdownGracePeriod = shutdownGracePeriod
        self.writeBufferLowWatermark = writeBufferLowWatermark
        self.writeBufferHighWatermark = writeBufferHighWatermark
    }
}
