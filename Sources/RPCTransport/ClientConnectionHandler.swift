// One client connection, confined to its event loop: the handshake, request ids, the calls in
// flight, backpressure and keepalive.
//
// Calls arrive through `ClientConnection.submit` (an outbox drained once per event-loop turn).
// A call is written only while the channel is writable; otherwise it waits in `blocked`, still
// counted against the peer's queue budget, until NIO's outbound bytes fall under the low
// watermark. So the bytes this side buffers stay under the high watermark plus one frame in
// NIO, plus the queue budget — whatever the peer does.

import NIOCore
import RPC
import Synchronization
import Wire

final class ClientConnectionHandler: ChannelInboundHandler, FrameFlushing {
    typealias InboundIn = Frame
    typealias OutboundOut = Frame

    enum Phase { case handshaking, ready, closing }

    let client: RPCClient
    let slot: Int
    let generation: Int
    let configuration: RPCClientConfiguration
    var context: ChannelHandlerContext?
    var connection: ClientConnection?
    var phase = Phase.handshaking
    var inFlight: [UInt64: PendingCall] = [:]
    var nextRequestID: UInt64 = 1
    var blocked: [PendingCall] = []
    var blockedHead = 0
    var blockedBytes = 0
    var peerPayloadBytesMax = 0
    var handshakeTimer: Scheduled<Void>?
    var keepalive: RepeatedTask?
    var pingTimer: Scheduled<Void>?
    var pingOutstanding = false
    var nextPingID: UInt64 = 1
    /// Why the connection closes, when known (a refusal from the server, a protocol error).
    var closeError: RPCError?
    var inReadBurst = false
    var flushPending = false
    var flushScheduled = false

    init(client: RPCClient, slot: Int, generation: Int) {
        self.client = client
        self.slot = slot
        self.generation = generation
        self.configuration = client.configuration
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        var hello = configuration.handshake
        hello.payloadBytesMax = UInt32(configuration.limits.payloadBytesMax)
        write(Frame(kind: .handshake, requestID: 0, payload: hello.encoded()))
        flushIfPending()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: TimeAmount(configuration.connectTimeout)) {
            let handler = bound.value
            guard handler.phase == .handshaking else { return }
            handler.close(because: .unavailable("no handshake answer within \(handler.configuration.connectTimeout)"))
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasReady = phase == .ready
        phase = .closing
        handshakeTimer?.cancel()
        keepalive?.cancel()
        pingTimer?.cancel()
        let reason = closeError.map { "\($0)" } ?? "closed by the peer"
        let lost = RPCError.unavailable("connection to \(client.host):\(client.port) lost: \(reason)")
        // Calls on the wire may or may not have run: they fail. Calls never sent go back to the
        // pool, which routes them to another connection (or fails them) once it knows this one
        // is gone.
        let sent = Array(inFlight.values)
        let unsent = Array(blocked[blockedHead...]) + (connection?.takeOutbox() ?? [])
        inFlight.removeAll()
        blocked.removeAll()
        blockedHead = 0
        blockedBytes = 0
        for call in sent {
            call.finish(.failure(lost))
            call.releaseReservation()
        }
        client.connectionClosed(slot: slot, generation: generation, error: closeError ?? lost, wasReady: wasReady)
        client.reroute(unsent)
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBurst = true
        let frame = Self.unwrapInboundIn(data)
        switch phase {
        case .closing:
            return
        case .handshaking:
            handleHandshakeAnswer(frame, context: context)
        case .ready:
            switch frame.kind {
            case .response:
                if let call = inFlight.removeValue(forKey: frame.requestID) {
                    _ = call.deliver(frame.payload)
                    call.finish(.success(()))  // a stream answered with one response ends with it
                }
            case .streamChunk:
                if let call = inFlight[frame.requestID] {
                    let accepted = call.deliver(frame.payload)
                    if !accepted || call.isEnded { inFlight.removeValue(forKey: frame.requestID) }
                    // A stream whose receive buffer overflowed: stop the server.
                    if !accepted { write(Frame(kind: .cancel, requestID: frame.requestID)) }
                }
            case .streamEnd:
                inFlight.removeValue(forKey: frame.requestID)?.finish(.success(()))
            case .error:
                let error = decodeError(frame.payload)
                if frame.requestID == 0 {
                    // About the whole connection: the server is going away or refused us.
                    closeError = error
                    if error.code == .unavailable {
                        client.connectionDraining(slot: slot, generation: generation)
                    }
                } else {
                    inFlight.removeValue(forKey: frame.requestID)?.finish(.failure(error))
                }
            case .pong:
                if frame.requestID == nextPingID &- 1 {
                    pingOutstanding = false
                    pingTimer?.cancel()
                    client.emit(.pong(slot: slot))
                }
            case .ping:
                write(Frame(kind: .pong, requestID: frame.requestID))
            case .request, .cancel, .handshake, .handshakeAccepted:
                failConnection(.invalidArgument("a server may not send \(frame.kind) frames here"))
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
            close(because: .unavailable("\(error)"))
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { writeBlocked() }
        context.fireChannelWritabilityChanged()
    }

    func handleHandshakeAnswer(_ frame: Frame, context: ChannelHandlerContext) {
        switch frame.kind {
        case .handshakeAccepted:
            let accepted: HandshakeAccepted
            do throws(DecodeError) {
                accepted = try HandshakeAccepted.decode(frame.payload)
            } catch {
                failConnection(.invalidArgument("malformed handshake answer: \(error)"))
                return
            }
            guard accepted.protocolVersion == Handshake.currentProtocolVersion else {
                failConnection(.invalidArgument("server answered protocol version \(accepted.protocolVersion)"))
                return
            }
            guard accepted.clusterID == configuration.handshake.clusterID else {
                failConnection(.permissionDenied("server belongs to cluster \(accepted.clusterID), not \(configuration.handshake.clusterID)"))
                return
            }
            handshakeTimer?.cancel()
            handshakeTimer = nil
            peerPayloadBytesMax = Int(accepted.payloadBytesMax)
            phase = .ready
            startKeepalive(context: context)
            let connection = ClientConnection(
                channel: context.channel, handler: NIOLoopBound(self, eventLoop: context.eventLoop), slot: slot,
                peerNodeID: accepted.nodeID)
            self.connection = connection
            client.connectionReady(slot: slot, generation: generation, connection: connection)
        case .error:
            close(because: decodeError(frame.payload))
        default:
            failConnection(.invalidArgument("expected a handshake answer, got \(frame.kind)"))
        }
    }

    func decodeError(_ payload: [UInt8]) -> RPCError {
        do throws(DecodeError) {
            return try RPCError.decode(payload)
        } catch {
            return .internal("malformed error frame: \(error)")
        }
    }

    // MARK: Sending calls

    /// Calls handed over by the pool (on this event loop).
    func send(_ calls: [PendingCall]) {
        for call in calls {
            if call.isEnded {
                call.releaseReservation()
            } else if phase != .ready {
                call.finish(.failure(.unavailable("connection to \(client.host):\(client.port) is closing")))
                call.releaseReservation()
            } else if blockedHead < blocked.count || !(context?.channel.isWritable ?? false) {
                blocked.append(call)
                blockedBytes += call.cost
            } else {
                writeCall(call)
            }
        }
        flushIfPending()
    }

    func writeBlocked() {
        guard let context else { return }
        while blockedHead < blocked.count && context.channel.isWritable && phase == .ready {
            let call = blocked[blockedHead]
            blockedHead += 1
            blockedBytes -= call.cost
            writeCall(call)
        }
        if blockedHead == blocked.count {
            blocked.removeAll(keepingCapacity: true)
            blockedHead = 0
        }
        flushIfPending()
    }

    func writeCall(_ call: PendingCall) {
        defer { call.releaseReservation() }
        guard let context, !call.isEnded else { return }
        var budget: UInt64 = 0
        if let deadline = call.deadline {
            let remaining = (deadline - .now()).nanoseconds / 1000
            guard remaining > 0 else {
                call.abort(.deadlineExceeded("the deadline passed before the request was sent"))
                return
            }
            budget = UInt64(remaining)
        }
        guard call.payload.count <= peerPayloadBytesMax else {
            call.finish(.failure(.resourceExhausted("request of \(call.payload.count) bytes exceeds the server's limit of \(peerPayloadBytesMax)")))
            return
        }
        guard inFlight.count < configuration.inFlightRequestsMax else {
            call.finish(.failure(.resourceExhausted("more than \(configuration.inFlightRequestsMax) requests in flight on one connection")))
            return
        }
        let id = nextRequestID
        nextRequestID += 1
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        guard call.attach(abandon: { eventLoop.execute { bound.value.cancelOnWire(id) } }) else { return }
        inFlight[id] = call
        var flags: FrameFlags = []
        if let minimum = configuration.compressionBytesMin, call.payload.count >= minimum { flags = .lz4 }
        write(.request(id: id, method: call.methodID, deadlineMicroseconds: budget, payload: call.payload, flags: flags))
    }

    /// The caller gave up on request `id` (deadline, cancellation): tell the server to stop.
    func cancelOnWire(_ id: UInt64) {
        guard inFlight.removeValue(forKey: id) != nil, phase == .ready else { return }
        write(Frame(kind: .cancel, requestID: id))
        scheduleFlush()
    }

    // MARK: Keepalive

    func startKeepalive(context: ChannelHandlerContext) {
        guard let interval = configuration.keepaliveInterval else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: TimeAmount(interval), delay: TimeAmount(interval)) { _ in
            bound.value.sendPing()
        }
    }

    func sendPing() {
        guard phase == .ready, !pingOutstanding, let context else { return }
        pingOutstanding = true
        write(Frame(kind: .ping, requestID: nextPingID))
        nextPingID &+= 1
        flushIfPending()
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        pingTimer = context.eventLoop.scheduleTask(in: TimeAmount(configuration.keepaliveTimeout)) {
            let handler = bound.value
            guard handler.pingOutstanding else { return }
            handler.close(because: .unavailable("no keepalive answer within \(handler.configuration.keepaliveTimeout)"))
        }
    }

    // MARK: Closing

    func close(because error: RPCError) {
        guard phase != .closing, let context else { return }
        if closeError == nil { closeError = error }
        phase = .closing
        context.close(promise: nil)
    }

    /// A protocol violation by the server: say why, then close.
    func failConnection(_ error: RPCError) {
        guard phase != .closing, let context else { return }
        closeError = error
        phase = .closing
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(.error(id: 0, error))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func statistics() -> RPCClient.ConnectionStatistics {
        let channel = context?.channel
        let buffered = (try? channel?.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        return RPCClient.ConnectionStatistics(
            slot: slot, inFlightRequests: inFlight.count, blockedRequests: blocked.count - blockedHead,
            blockedBytes: blockedBytes, isWritable: channel?.isWritable ?? false, bufferedWritableBytes: buffered)
    }

}

/// A ready connection as the pool sees it (any thread).
final class ClientConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<ClientConnectionHandler>
    let slot: Int
    let peerNodeID: UInt64

    struct Outbox {
        var calls: [PendingCall] = []
        var scheduled = false
    }
    let outbox = Mutex(Outbox())

    init(channel: any Channel, handler: NIOLoopBound<ClientConnectionHandler>, slot: Int, peerNodeID: UInt64) {
        self.channel = channel
        self.handler = handler
        self.slot = slot
        self.peerNodeID = peerNodeID
    }

    /// Hands calls to the connection; the event loop writes them in one batch.
    func submit(_ calls: [PendingCall]) {
        guard !calls.isEmpty else { return }
        let schedule = outbox.withLock { outbox -> Bool in
            outbox.calls.append(contentsOf: calls)
            defer { outbox.scheduled = true }
            return !outbox.scheduled
        }
        if schedule {
            channel.eventLoop.execute { [self] in
                handler.value.send(takeOutbox())
            }
        }
    }

    func takeOutbox() -> [PendingCall] {
        outbox.withLock { outbox in
            defer {
                outbox.calls = []
                outbox.scheduled = false
            }
            return outbox.calls
        }
    }

    func statistics() async -> RPCClient.ConnectionStatistics? {
        try? await channel.eventLoop.submit { [self] in handler.value.statistics() }.get()
    }
}
