// An HTTP/1.1 server on SwiftNIO's NIOHTTP1, handler-style (no async in the data path): each
// complete request goes to one `@Sendable` callback with an `HTTPResponder`, which may answer
// from any thread. See `HTTPConnectionHandler` for one connection's rules.
//
// The server owns its event loop group (`eventLoopThreads`). Connections beyond
// `maxConnections` are closed as soon as they are accepted. Shutdown is graceful: the listener
// closes, idle connections close, a connection with a request in flight closes after answering
// it ("Connection: close"), and whatever is still open after `shutdownGracePeriod` is closed.

import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

public enum HTTPServerError: Error, Sendable, CustomStringConvertible {
    case alreadyStarted
    case cannotBind(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .alreadyStarted: "the server was already started or shut down (a server starts once)"
        case .cannotBind(let host, let port, let reason): "cannot listen on \(host):\(port): \(reason)"
        }
    }
}

public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPRequest, HTTPResponder) -> Void

    public let configuration: HTTPServerConfiguration
    let handler: Handler
    /// Connections the kernel may queue before the server accepts them.
    static let listenBacklog: Int32 = 256

    struct State {
        var group: MultiThreadedEventLoopGroup?
        var listener: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
        var started = false
        var stopping = false
    }
    let state = Mutex(State())

    public init(configuration: HTTPServerConfiguration = HTTPServerConfiguration(), handler: @escaping Handler) {
        self.configuration = configuration
        self.handler = handler
    }

    /// Starts listening; returns the bound port. Blocks until the socket is bound; call it
    /// outside the server's event loops.
    @discardableResult
    public func start() throws(HTTPServerError) -> Int {
        let configuration = self.configuration
        let group = try state.withLock { state throws(HTTPServerError) -> MultiThreadedEventLoopGroup in
            guard !state.started, !state.stopping else { throw .alreadyStarted }
            state.started = true
            let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.eventLoopThreads)
            state.group = group
            return group
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: Self.listenBacklog)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(
                low: configuration.writeBufferLowWatermark, high: configuration.writeBufferHighWatermark))
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard self.adopt(channel) else { throw HTTPServerRefusal() }
                    try self.configurePipeline(channel)
                }
            }
        let listener: any Channel
        do {
            listener = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
        } catch {
            stopThreads()
            throw .cannotBind(host: configuration.host, port: configuration.port, reason: "\(error)")
        }
        let stopping = state.withLock { state in
            state.listener = listener
            return state.stopping
        }
        if stopping { listener.close(promise: nil) }
        return listener.localAddress?.port ?? configuration.port
    }

    func configurePipeline(_ channel: any Channel) throws {
        let operations = channel.pipeline.syncOperations
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = configuration.maxHeaderBytes
        limits.maxHeaderListSize = configuration.maxHeaderBytes
        try operations.addHandler(IdleStateHandler(allTimeout: TimeAmount(configuration.idleTimeout)))
        // NIO's pipelining assistance holds further requests (and stops reading) until the
        // current one is answered, and closes quiesced connections once they are idle. Protocol
        // errors are answered by `HTTPConnectionHandler` (400 or 431, JSON bodies).
        try operations.configureHTTPServerPipeline(
            withPipeliningAssistance: true, withErrorHandling: false,
            withEncoderConfiguration: HTTPResponseEncoder.Configuration(), withDecoderLimitConfiguration: limits)
        try operations.addHandler(HTTPConnectionHandler(configuration: configuration, handler: handler))
    }

    /// The port the server listens on, once started (nil after shutdown).
    public var localPort: Int? {
        state.withLock { $0.listener?.localAddress?.port }
    }

    /// Connections currently open.
    public var connectionCount: Int {
        state.withLock { $0.connections.count }
    }

    func adopt(_ channel: any Channel) -> Bool {
        let id = ObjectIdentifier(channel)
        let adopted = state.withLock { state -> Bool in
            guard !state.stopping, state.connections.count < configuration.maxConnections else { return false }
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

    /// Stops accepting and asks every connection to close once its request in flight (if any)
    /// is answered. Returns at once; `shutdown()` also waits.
    public func beginShutdown() {
        let (listener, connections) = state.withLock { state in
            state.stopping = true
            return (state.listener, Array(state.connections.values))
        }
        listener?.close(promise: nil)
        for connection in connections {
            connection.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    /// Stops accepting, lets requests in flight answer (for at most `shutdownGracePeriod`),
    /// closes every connection and stops the server's threads. Blocks; call it outside the
    /// server's event loops.
    public func shutdown() {
        beginShutdown()
        let (listener, connections) = state.withLock { state in
            (state.listener, Array(state.connections.values))
        }
        try? listener?.closeFuture.wait()
        let deadline = NIODeadline.now() + TimeAmount(configuration.shutdownGracePeriod)
        for connection in connections {
            let timer = connection.eventLoop.scheduleTask(deadline: deadline) { connection.close(promise: nil) }
            try? connection.closeFuture.wait()
            timer.cancel()
        }
        stopThreads()
    }

    func stopThreads() {
        let group = state.withLock { state in
            state.stopping = true
            state.listener = nil
            defer { state.group = nil }
            return state.group
        }
        try? group?.syncShutdownGracefully()
    }
}

/// Thrown by the child initializer to refuse a connection (server full or stopping).
struct HTTPServerRefusal: Error {}
