// One server connection, confined to its event loop.
//
// Rules (Format/rpc.md §4–§5):
// - The first frame must be a handshake. Its protocol version and cluster id are checked, then
//   the authenticator; a refusal is an error frame with request id 0, then the connection
//   closes. Any other frame before the handshake is refused the same way.
// - Requests run concurrently (at most `concurrentRequestsMax`); each is answered by exactly one
//   response, error or stream end — or nothing, if the client cancelled it.
// - A request's deadline starts a timer: when it fires first, the handler's task is cancelled
//   and the client gets `deadlineExceeded`.
// - Backpressure: while the channel is not writable (its outbound bytes passed the high
//   watermark), the connection stops reading, requests already read wait in `deferred`
//   (bounded by one read burst, since reading stopped), and streams wait. So a client that
//   does not read its answers holds at most the high watermark plus one answer per request
//   already running in this server's buffers.
// - A malformed frame answers an error frame (request id 0) naming the field and offset, then
//   closes this connection only.

import NIOCore
import RPC
import Wire

final class ServerConnectionHandler: ChannelDuplexHandler, FrameFlushing {
    typealias InboundIn = Frame
    typealias OutboundIn = Frame
    typealias OutboundOut = Frame

    /// Sent through the pipeline when the server starts a graceful shutdown.
    struct Drain {}

    enum Phase {
        case awaitingHandshake
        case ready(RPCPeer)
        case closing
    }

    struct Running {
        var task: Task<Void, Never>?
        var timer: Scheduled<Void>?
        var streaming: Bool
    }

    let server: RPCServer
    let configuration: RPCServerConfiguration
    var context: ChannelHandlerContext?
    var phase = Phase.awaitingHandshake
    var running: [UInt64: Running] = [:]
    var draining = false
    var handshakeTimer: Scheduled<Void>?
    /// The largest payload the client accepts (from its handshake).
    var peerPayloadBytesMax = 0
    /// A read that was held back because the channel was not writable.
    var readPending = false
    var inReadBurst = false
    var flushPending = false
    var flushScheduled = false
    /// Streams waiting for the channel to become writable, by request id.
    var writabilityWaiters: [(UInt64, EventLoopPromise<Void>)] = []
    /// Requests read while the channel was not writable, started once it is again.
    var deferred: [Frame] = []
    var deferredHead = 0

    /// The decoder's limits: the handshake's until the peer is authenticated, then the server's.
    let gate: FrameLimitGate

    init(server: RPCServer, gate: FrameLimitGate) {
        self.server = server
        self.configuration = server.configuration
        self.gate = gate
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: TimeAmount(configuration.handshakeTimeout)) {
            if case .awaitingHandshake = bound.value.phase {
                bound.value.failConnection(.unauthenticated("no handshake within \(bound.value.configuration.handshakeTimeout)"))
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closing
        handshakeTimer?.cancel()
        for (_, request) in running {
            request.task?.cancel()
            request.timer?.cancel()
        }
        running.removeAll()
        deferred.removeAll()
        deferredHead = 0
        let waiters = writabilityWaiters
        writabilityWaiters.removeAll()
        for (_, waiter) in waiters { waiter.fail(RPCError.unavailable("connection closed")) }
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBurst = true
        let frame = Self.unwrapInboundIn(data)
        switch phase {
        case .closing:
            return
        case .awaitingHandshake:
            handleHandshake(frame)
        case .ready(let peer):
            switch frame.kind {
            case .request:
                if deferredHead < deferred.count || !context.channel.isWritable {
                    deferred.append(frame)
                } else {
                    handleRequest(frame, peer: peer)
                }
            case .cancel: handleCancel(frame.requestID)
            case .ping: write(Frame(kind: .pong, requestID: frame.requestID))
            case .pong: break
            default: failConnection(.invalidArgument("a client may not send \(frame.kind) frames"))
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        flushIfPending()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let decodeError = error as? DecodeError {
            failConnection(connectionError(for: decodeError))
        } else {
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Drain {
            startDraining()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            runDeferred(context: context)
            if readPending {
                readPending = false
                context.read()
            }
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            for (_, waiter) in waiters { waiter.succeed(()) }
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        // Backpressure: a client that does not read its responses stops getting requests read.
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    // MARK: Handshake

    func handleHandshake(_ frame: Frame) {
        guard frame.kind == .handshake else {
            failConnection(.unauthenticated("the first frame must be a handshake, not \(frame.kind)"))
            return
        }
        let hello: Handshake
        do throws(DecodeError) {
            hello = try Handshake.decode(frame.payload)
        } catch {
            failConnection(.invalidArgument("malformed handshake: \(error)"))
            return
        }
        guard hello.protocolVersion == Handshake.currentProtocolVersion else {
            failConnection(.invalidArgument("unsupported protocol version \(hello.protocolVersion) (this server speaks \(Handshake.currentProtocolVersion))"))
            return
        }
        guard hello.clusterID == configuration.clusterID else {
            failConnection(.permissionDenied("cluster id \(hello.clusterID) does not match this server's \(configuration.clusterID)"))
            return
        }
        switch server.authenticator.authenticate(hello) {
        case .failure(let error):
            failConnection(error)
        case .success(let peer):
            handshakeTimer?.cancel()
            handshakeTimer = nil
            gate.limits = configuration.limits
            peerPayloadBytesMax = Int(hello.payloadBytesMax)
            phase = .ready(peer)
            let accepted = HandshakeAccepted(
                clusterID: configuration.clusterID, nodeID: configuration.nodeID,
                payloadBytesMax: UInt32(configuration.limits.payloadBytesMax))
            write(Frame(kind: .handshakeAccepted, requestID: frame.requestID, payload: accepted.encoded()))
            if draining { sendGoingAway() }
        }
    }

    // MARK: Requests

    func handleRequest(_ frame: Frame, peer: RPCPeer) {
        let id = frame.requestID
        guard running[id] == nil else {
            failConnection(.invalidArgument("request id \(id) is already in flight"))
            return
        }
        if draining {
            write(.error(id: id, .unavailable("server is shutting down")))
            return
        }
        guard running.count < configuration.concurrentRequestsMax else {
            write(.error(id: id, .resourceExhausted("more than \(configuration.concurrentRequestsMax) requests in flight on one connection")))
            return
        }
        guard let entry = server.registry.entry(for: frame.methodID) else {
            write(.error(id: id, .notFound("no method with id \(frame.methodID)")))
            return
        }
        // A budget beyond the bound is taken as the bound (it also keeps the timer arithmetic
        // from overflowing on hostile values).
        let budget = min(frame.deadlineMicroseconds, FrameFormat.deadlineMicrosecondsMax)
        let deadline: ContinuousClock.Instant? = budget == 0 ? nil : .now + .microseconds(budget)
        let requestContext = RPCContext(requestID: id, methodID: frame.methodID, peer: peer, deadline: deadline)
        guard let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let payload = frame.payload

        switch entry.handler {
        case .inline(let handler):
            do throws(RPCError) {
                respond(id, try handler(payload, requestContext))
            } catch {
                write(.error(id: id, error))
            }
            return
        case .async(let handler):
            running[id] = Running(task: nil, timer: nil, streaming: false)
            running[id]?.task = Task {
                let result: Result<[UInt8], RPCError>
                do throws(RPCError) {
                    result = .success(try await handler(payload, requestContext))
                } catch {
                    result = .failure(error)
                }
                eventLoop.execute { bound.value.finish(id, result) }
            }
        case .streaming(let handler):
            running[id] = Running(task: nil, timer: nil, streaming: true)
            let sink = RPCChunkSink { (bytes) async throws(RPCError) -> Void in
                let promise = eventLoop.makePromise(of: Void.self)
                eventLoop.execute { bound.value.sendChunk(id, bytes, promise) }
                do {
                    try await promise.futureResult.get()
                } catch {
                    throw error as? RPCError ?? .internal("\(error)")
                }
            }
            running[id]?.task = Task {
                let result: Result<[UInt8], RPCError>
                do throws(RPCError) {
                    try await handler(payload, requestContext, sink)
                    result = .success([])
                } catch {
                    result = .failure(error)
                }
                eventLoop.execute { bound.value.finish(id, result) }
            }
        }
        if budget != 0 {
            running[id]?.timer = eventLoop.scheduleTask(in: .microseconds(Int64(budget))) {
                bound.value.expire(id)
            }
        }
    }

    /// Starts the requests deferred while the channel was not writable, as long as it is.
    func runDeferred(context: ChannelHandlerContext) {
        guard case .ready(let peer) = phase else { return }
        while deferredHead < deferred.count && context.channel.isWritable {
            let frame = deferred[deferredHead]
            deferredHead += 1
            handleRequest(frame, peer: peer)
        }
        if deferredHead == deferred.count {
            deferred.removeAll(keepingCapacity: true)
            deferredHead = 0
        }
        flushIfPending()
    }

    func handleCancel(_ id: UInt64) {
        if let index = deferred[deferredHead...].firstIndex(where: { $0.requestID == id }) {
            deferred.remove(at: index)
            return
        }
        guard let request = running.removeValue(forKey: id) else { return }
        request.task?.cancel()
        request.timer?.cancel()
        releaseWriters(of: id, .cancelled("the client cancelled the request"))
        closeIfDrained()
    }

    /// The deadline of request `id` passed before it answered.
    func expire(_ id: UInt64) {
        guard let request = running.removeValue(forKey: id) else { return }
        request.task?.cancel()
        releaseWriters(of: id, .deadlineExceeded("the request's deadline passed on the server"))
        write(.error(id: id, .deadlineExceeded("the request's deadline passed on the server")))
        scheduleFlush()
        closeIfDrained()
    }

    /// A handler task ended. Its answer is dropped if the request was cancelled or expired.
    func finish(_ id: UInt64, _ result: Result<[UInt8], RPCError>) {
        guard let request = running.removeValue(forKey: id) else { return }
        request.timer?.cancel()
        switch result {
        case .success(let payload):
            if request.streaming {
                write(Frame(kind: .streamEnd, requestID: id))
            } else {
                respond(id, payload)
            }
        case .failure(let error):
            write(.error(id: id, error))
        }
        scheduleFlush()
        closeIfDrained()
    }

    func respond(_ id: UInt64, _ payload: [UInt8]) {
        guard payload.count <= peerPayloadBytesMax else {
            write(.error(id: id, .resourceExhausted("response of \(payload.count) bytes exceeds the client's limit of \(peerPayloadBytesMax)")))
            return
        }
        write(Frame(kind: .response, flags: compressionFlags(payload.count), requestID: id, payload: payload))
    }

    func sendChunk(_ id: UInt64, _ bytes: [UInt8], _ promise: EventLoopPromise<Void>) {
        guard running[id] != nil, let context else {
            promise.fail(RPCError.cancelled("the stream was cancelled, timed out or its connection closed"))
            return
        }
        guard bytes.count <= peerPayloadBytesMax else {
            promise.fail(RPCError.resourceExhausted("chunk of \(bytes.count) bytes exceeds the client's limit of \(peerPayloadBytesMax)"))
            return
        }
        write(Frame(kind: .streamChunk, flags: compressionFlags(bytes.count), requestID: id, payload: bytes))
        scheduleFlush()
        if context.channel.isWritable {
            promise.succeed(())
        } else {
            writabilityWaiters.append((id, promise))
        }
    }

    /// Fails the writability waits of a stream that ended, so its handler stops at once.
    func releaseWriters(of id: UInt64, _ error: RPCError) {
        guard writabilityWaiters.contains(where: { $0.0 == id }) else { return }
        var kept: [(UInt64, EventLoopPromise<Void>)] = []
        for (waiterID, promise) in writabilityWaiters {
            if waiterID == id { promise.fail(error) } else { kept.append((waiterID, promise)) }
        }
        writabilityWaiters = kept
    }

    func compressionFlags(_ count: Int) -> FrameFlags {
        if let minimum = configuration.compressionBytesMin, count >= minimum { return .lz4 }
        return []
    }

    // MARK: Shutdown and failures

    func startDraining() {
        guard !draining else { return }
        draining = true
        if case .ready = phase { sendGoingAway() }
        closeIfDrained()
    }

    func sendGoingAway() {
        write(.error(id: 0, .unavailable("server is shutting down")))
        scheduleFlush()
    }

    func closeIfDrained() {
        guard draining, running.isEmpty, let context else { return }
        if case .closing = phase { return }
        phase = .closing
        flushIfPending()
        context.close(promise: nil)
    }

    /// Tells the client why, then closes this connection.
    func failConnection(_ error: RPCError) {
        guard let context else { return }
        if case .closing = phase { return }
        phase = .closing
        for (_, request) in running {
            request.task?.cancel()
            request.timer?.cancel()
        }
        running.removeAll()
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(.error(id: 0, error))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func statistics() -> RPCServer.ConnectionStatistics {
        let channel = context?.channel
        return RPCServer.ConnectionStatistics(
            runningRequests: running.count, deferredRequests: deferred.count - deferredHead, readsPaused: readPending,
            isWritable: channel?.isWritable ?? false,
            bufferedWritableBytes: (try? channel?.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0)
    }

}
