// Helpers for the loopback tests: probes to await events (never sleeps), scripted peers that
// speak the frame protocol by hand, and a raw TCP connection for sending arbitrary bytes.

import NIOCore
import NIOPosix
import RPC
import RPCTransport
import Synchronization
import Testing
import Wire

let testClusterID: UInt64 = 7

struct Number: RPCMessage, Equatable {
    var value: UInt64
    /// How many times the server yields before answering (to shuffle the answer order).
    var yields: UInt8

    func encode(into writer: inout ByteWriter) {
        writer.write(value)
        writer.write(yields)
    }

    static func decode(from reader: inout ByteReader) throws(DecodeError) -> Number {
        Number(value: try reader.readUInt64("value"), yields: try reader.readUInt8("yields"))
    }
}

let echoMethod = RPCMethod<RawPayload, RawPayload>(id: 1, name: "echo")
let computeMethod = RPCMethod<Number, Number>(id: 2, name: "compute")
let waitMethod = RPCMethod<Empty, Empty>(id: 3, name: "wait")
let leaderMethod = RPCMethod<Empty, Empty>(id: 4, name: "leader")
let snapshotMethod = RPCStreamingMethod<Number, RawPayload>(id: 5, name: "snapshot")
let floodMethod = RPCStreamingMethod<Number, RawPayload>(id: 6, name: "flood")
let bigMethod = RPCMethod<Number, RawPayload>(id: 7, name: "big")

struct TimedOut: Error, CustomStringConvertible {
    var description: String { "an awaited event did not happen within its upper bound" }
}

/// Runs `body`, failing if it takes longer than `seconds` (an upper bound, never a wait).
func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut() }
        return value
    }
}

/// A queue of events a test awaits; `next()` returns nil if the waiting task is cancelled.
final class Probe<Value: Sendable>: Sendable {
    struct State {
        var items: [Value] = []
        var waiters: [(Int, CheckedContinuation<Value?, Never>)] = []
        var nextWaiter = 0
    }
    let state = Mutex(State())

    func send(_ value: Value) {
        let waiter = state.withLock { state -> CheckedContinuation<Value?, Never>? in
            if !state.waiters.isEmpty { return state.waiters.removeFirst().1 }
            state.items.append(value)
            return nil
        }
        waiter?.resume(returning: value)
    }

    func next() async -> Value? {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                let ready = state.withLock { state -> Value?? in
                    if !state.items.isEmpty { return .some(state.items.removeFirst()) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Value?, Never>? in
                guard let index = state.waiters.firstIndex(where: { $0.0 == id }) else { return nil }
                return state.waiters.remove(at: index).1
            }
            waiter?.resume(returning: nil)
        }
    }

    /// The next value, failing the test if none comes within `seconds`.
    func expectNext(within seconds: Double = 10) async throws -> Value {
        try await RPCTests.within(seconds) { [self] in
            guard let value = await next() else { throw TimedOut() }
            return value
        }
    }

    var pending: [Value] { state.withLock { $0.items } }
}

/// Opens once; every waiter then proceeds. `wait()` returns false if the task was cancelled first.
final class Gate: Sendable {
    let probe = Probe<Void>()
    let opened = Mutex(false)

    func open() {
        opened.withLock { $0 = true }
        for _ in 0..<1024 { probe.send(()) }
    }

    func wait() async -> Bool {
        if opened.withLock({ $0 }) { return true }
        return await probe.next() != nil
    }
}

func startServer(
    _ registry: MethodRegistry, authenticator: RPCAuthenticator = .acceptAll, port: Int = 0,
    configure: (inout RPCServerConfiguration) -> Void = { _ in }
) async throws -> (RPCServer, Int) {
    var configuration = RPCServerConfiguration(clusterID: testClusterID, nodeID: 1)
    configure(&configuration)
    let server = RPCServer(configuration: configuration, registry: registry, authenticator: authenticator)
    let bound = try await server.start(port: port)
    return (server, bound)
}

func makeClient(port: Int, configure: (inout RPCClientConfiguration) -> Void = { _ in }) -> RPCClient {
    var configuration = RPCClientConfiguration(
        handshake: Handshake(clusterID: testClusterID, role: .client), backoffInitial: .milliseconds(10),
        backoffMax: .milliseconds(200), randomSeed: 42)
    // The full suite loads both cores: a pong may take seconds. Tests of keepalive set their own.
    configuration.keepaliveTimeout = .seconds(60)
    configure(&configuration)
    return RPCClient(host: "127.0.0.1", port: port, configuration: configuration)
}

/// Waits for the client's next event matching `predicate`.
func awaitEvent(_ client: RPCClient, within seconds: Double = 10, _ predicate: @escaping @Sendable (RPCClient.Event) -> Bool) async throws {
    try await within(seconds) {
        for await event in client.events where predicate(event) { return }
        throw TimedOut()
    }
}

// MARK: Scripted peers

final class ChannelList: Sendable {
    let channels = Mutex<[any Channel]>([])
}

/// A server that answers handshakes, records every frame, and — if asked — echoes requests.
/// With `pauseAfterHandshake` it stops reading from the socket right after the handshake, until
/// `resumeReading()`.
final class ScriptedServer: Sendable {
    let received = Probe<Frame>()
    let listener: any Channel
    let children = ChannelList()
    var port: Int { listener.localAddress!.port! }

    init(answerRequests: Bool, pauseAfterHandshake: Bool, receiveBufferBytes: Int? = nil, port: Int = 0) async throws {
        let received = self.received
        let children = self.children
        var bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        if let receiveBufferBytes {
            bootstrap = bootstrap.childChannelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBufferBytes))
        }
        listener = try await bootstrap.childChannelInitializer { channel in
            children.channels.withLock { $0.append(channel) }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addFrameCodec(limits: FrameLimits())
                try channel.pipeline.syncOperations.addHandler(
                    ScriptedHandler(received: received, answerRequests: answerRequests, pauseAfterHandshake: pauseAfterHandshake))
            }
        }.bind(host: "127.0.0.1", port: port).get()
    }

    func resumeReading() async throws {
        for child in children.channels.withLock({ $0 }) {
            try await child.setOption(.autoRead, value: true).get()
            child.read()
        }
    }

    func close() async {
        try? await listener.close()
        for child in children.channels.withLock({ $0 }) { try? await child.close() }
    }
}

final class ScriptedHandler: ChannelInboundHandler {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame
    let received: Probe<Frame>
    let answerRequests: Bool
    let pauseAfterHandshake: Bool

    init(received: Probe<Frame>, answerRequests: Bool, pauseAfterHandshake: Bool) {
        self.received = received
        self.answerRequests = answerRequests
        self.pauseAfterHandshake = pauseAfterHandshake
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        received.send(frame)
        switch frame.kind {
        case .handshake:
            let clusterID = (try? Handshake.decode(frame.payload))?.clusterID ?? 0
            let accepted = HandshakeAccepted(clusterID: clusterID, nodeID: 9, payloadBytesMax: UInt32(FrameFormat.payloadBytesDefault))
            context.writeAndFlush(Self.wrapOutboundOut(Frame(kind: .handshakeAccepted, requestID: 0, payload: accepted.encoded())), promise: nil)
            if pauseAfterHandshake {
                try? context.channel.syncOptions?.setOption(.autoRead, value: false)
            }
        case .request where answerRequests:
            context.write(Self.wrapOutboundOut(.response(id: frame.requestID, payload: frame.payload)), promise: nil)
        default:
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }
}

/// A raw TCP connection: sends any bytes, and decodes what comes back into frames
/// (nil once the connection closed or sent undecodable bytes).
final class RawConnection: Sendable {
    let channel: any Channel
    let frames = Probe<Frame?>()

    init(port: Int) async throws {
        let frames = self.frames
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawCollector(frames: frames))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    func send(_ frame: Frame) async throws {
        try await send(FrameCodec.encode(frame))
    }

    func handshake(clusterID: UInt64 = testClusterID) async throws -> Frame {
        try await send(Frame(kind: .handshake, requestID: 0, payload: Handshake(clusterID: clusterID, role: .client).encoded()))
        return try await nextFrame()
    }

    /// The next frame; fails if the connection closes first.
    func nextFrame() async throws -> Frame {
        guard let frame = try await frames.expectNext() else { throw TimedOut() }
        return frame
    }

    /// Waits for the connection to be closed by the peer.
    func expectClosed() async throws {
        try await within(10) { [self] in try await channel.closeFuture.get() }
    }
}

final class RawCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let frames: Probe<Frame?>
    var decoder = FrameDecoder()
    var failed = false

    init(frames: Probe<Frame?>) { self.frames = frames }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = Self.unwrapInboundIn(data)
        decoder.append(buffer.readBytes(length: buffer.readableBytes) ?? [])
        while !failed {
            do throws(DecodeError) {
                guard let frame = try decoder.next() else { break }
                frames.send(frame)
            } catch {
                failed = true
                frames.send(nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        frames.send(nil)
    }
}
