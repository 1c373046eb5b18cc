// An RPC server: listens on a TCP port, checks each connection's handshake, and serves the
// registered methods. Every connection multiplexes many requests, answered as they finish
// (out of order). See `ServerConnectionHandler` for one connection's rules.
//
// Shutdown is graceful: the listener closes, every connection is told the server is going
// away (an `unavailable` error frame with request id 0), new requests on it are refused, and
// it closes once its running requests have answered — or when the grace period ends.

import NIOCore
import NIOPosix
import RPC
import Synchronization

public final class RPCServer: Sendable {
    public let configuration: RPCServerConfiguration
    let registry: MethodRegistry
    let authenticator: RPCAuthenticator
    let group: any EventLoopGroup

    struct State {
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var stopping = false
    }
    let state = Mutex(State())

    public init(
        configuration: RPCServerConfiguration, registry: MethodRegistry, authenticator: RPCAuthenticator = .acceptAll,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.registry = registry
        self.authenticator = authenticator
        self.group = group
    }

    /// Starts listening; returns the bound port (pass port 0 for a free one).
    public func start(host: String = "127.0.0.1", port: Int = 0) async throws(RPCError) -> Int {
        let configuration = self.configuration
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(
                low: configuration.writeBufferLowWatermark, high: configuration.writeBufferHighWatermark))
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard self.adopt(channel) else { throw RPCError.unavailable("server is shutting down or at its connection limit") }
                    // Until the handshake succeeds, frames are held to the handshake's size.
                    let gate = FrameLimitGate(FrameLimits(payloadBytesMax: min(configuration.limits.payloadBytesMax, FrameFormat.handshakeBytesMax)))
                    try channel.pipeline.syncOperations.addFrameCodec(gate: gate)
                    try channel.pipeline.syncOperations.addHandler(ServerConnectionHandler(server: self, gate: gate))
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw RPCError.unavailable("cannot listen on \(host):\(port): \(error)")
        }
        let accepted = state.withLock { state -> Bool in
            guard !state.stopping, state.listener == nil else { return false }
            state.listener = listener
            return true
        }
        guard accepted else {
            try? await listener.close()
            throw RPCError.internal("server already started or stopped")
        }
        guard let bound = listener.localAddress?.port else { throw RPCError.internal("listener has no port") }
        return bound
    }

    /// The port the server listens on, once started.
    public var port: Int? {
        state.withLock { $0.listener?.localAddress?.port }
    }

    /// Connections currently open.
    public var connectionCount: Int {
        state.withLock { $0.connections.count }
    }

    public struct ConnectionStatistics: Sendable, Equatable {
        public var runningRequests: Int
        /// Requests read while the connection could not take more answers, not started yet.
        public var deferredRequests: Int
        /// Reading stopped because the client does not take its answers.
        public var readsPaused: Bool
        public var isWritable: Bool
        /// Bytes NIO holds for the socket (written, not yet sent).
        public var bufferedWritableBytes: Int
    }

    /// A look at each open connection, taken on its event loop.
    public func statistics() async -> [ConnectionStatistics] {
        let connections = state.withLock { Array($0.connections.values) }
        var result: [ConnectionStatistics] = []
        for connection in connections {
            let statistics = try? await connection.eventLoop.submit {
                try connection.pipeline.syncOperations.handler(type: ServerConnectionHandler.self).statistics()
            }.get()
            if let statistics { result.append(statistics) }
        }
        return result
    }

    func adopt(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let adopted = state.withLock { state -> Bool in
            guard !state.stopping, state.connections.count < configuration.connectionsMax else { return false }
            state.connections[id] = channel
            return true
        }
        if adopted {
            channel.closeFuture.whenComplete { [self] _ in
                _ = state.withLock { $0.connections.removeValue(forKey: id) }
            }
        }
        return adopted
    }

    /// Stops accepting, lets running requests finish (at most `gracePeriod`), then closes.
    public func shutdown(gracePeriod: Duration = .seconds(30)) async {
        let (listener, connections) = state.withLock { state in
            state.stopping = true
            return (state.listener, Array(state.connections.values))
        }
        try? await listener?.close()
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ServerConnectionHandler.Drain())
        }
        let deadline = NIODeadline.now() + TimeAmount(gracePeriod)
        for connection in connections {
            let timer = connection.eventLoop.scheduleTask(deadline: deadline) { connection.close(promise: nil) }
            try? await connection.closeFuture.get()
            timer.cancel()
        }
    }

    /// Closes the listener and every connection at once, answering nothing: what peers see when
    /// a server process dies.
    public func kill() async {
        let (listener, connections) = state.withLock { state in
            state.stopping = true
            return (state.listener, Array(state.connections.values))
        }
        try? await listener?.close()
        for connection in connections {
            try? await connection.close()
        }
    }
}
