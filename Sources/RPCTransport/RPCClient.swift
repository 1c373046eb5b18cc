// A client for one peer: a small pool of connections (`connectionsPerPeer`), each multiplexing
// many calls. Every failure a caller sees is an `RPCError`.
//
// - Admission: a call first takes a place in the peer's bounded queue (`queuedRequestsMax`,
//   `queuedBytesMax`) or fails `resourceExhausted` at once. It gives the place back when its
//   request is handed to a socket, or when it ends before that.
// - Routing: calls go round-robin to ready connections. With none ready, a call waits while a
//   connection attempt is under way (or always, with `waitForReady`); otherwise it fails fast
//   with `unavailable` (or with the server's refusal, e.g. `unauthenticated`).
// - Deadlines: a timer per call ends it with `deadlineExceeded` even if the server never
//   answers, and cancels it on the wire; the server receives the remaining budget.
// - Reconnection: a connection that closes or fails to connect is retried after an exponential
//   backoff with seeded jitter, forever, until `shutdown()`. Calls it had not sent yet are
//   routed again; calls already sent fail `unavailable` (they may or may not have run).
// - Lifetime: the reconnection timers keep the client alive; call `shutdown()` when done.

import Basics
import NIOCore
import NIOPosix
import RPC
import Synchronization

public final class RPCClient: Sendable {
    public let host: String
    public let port: Int
    public let configuration: RPCClientConfiguration
    let group: any EventLoopGroup
    let budget: QueueBudget

    /// What happens to the pool's connections, for monitoring and tests (newest 1,024 kept).
    public enum Event: Sendable, Equatable {
        case connected(slot: Int)
        case disconnected(slot: Int, RPCError)
        /// The server said it is shutting down: no new calls go to this connection.
        case draining(slot: Int)
        case pong(slot: Int)
    }
    public let events: AsyncStream<Event>
    let eventSink: AsyncStream<Event>.Continuation

    enum SlotPhase {
        case idle
        case connecting
        case ready(ClientConnection)
        /// The server is shutting down this connection: no new calls on it.
        case draining
        case waitingToReconnect
    }

    struct Slot {
        var phase = SlotPhase.idle
        var generation = 0
        var attempts = 0
        var lastError: RPCError?
        var backoff: Backoff
        var reconnectTimer: Scheduled<Void>?
        var channel: (any Channel)?
    }

    struct PoolState {
        var slots: [Slot]
        var waiters: [PendingCall] = []
        var nextSlot = 0
        var shutdown = false
    }
    let state: Mutex<PoolState>

    public init(
        host: String, port: Int, configuration: RPCClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.host = host
        self.port = port
        self.configuration = configuration
        self.group = group
        self.budget = QueueBudget(requestsMax: configuration.queuedRequestsMax, bytesMax: configuration.queuedBytesMax)
        (events, eventSink) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingNewest(1024))
        state = Mutex(PoolState(slots: (0..<configuration.connectionsPerPeer).map {
            Slot(backoff: Backoff(configuration: configuration, slot: $0))
        }))
    }

    // MARK: Calls

    /// Starts a call; throws at once if it cannot be admitted (`resourceExhausted`) or the peer
    /// is known to be unreachable (`unavailable`).
    public func start<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: CallOptions = CallOptions()
    ) throws(RPCError) -> RPCCall<Response> {
        RPCCall(pending: try startCall(methodID: method.id, payload: request.encoded(), options: options, streaming: false))
    }

    public func call<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: CallOptions = CallOptions()
    ) async throws(RPCError) -> Response {
        try await start(method, request, options: options).response()
    }

    /// Starts a streaming call; its chunks arrive through the returned stream.
    public func stream<Request, Chunk>(
        _ method: RPCStreamingMethod<Request, Chunk>, _ request: Request, options: CallOptions = CallOptions()
    ) throws(RPCError) -> RPCResponseStream<Chunk> {
        RPCResponseStream(pending: try startCall(methodID: method.id, payload: request.encoded(), options: options, streaming: true))
    }

    func startCall(methodID: UInt32, payload: [UInt8], options: CallOptions, streaming: Bool) throws(RPCError) -> PendingCall {
        guard payload.count <= configuration.limits.payloadBytesMax else {
            throw RPCError.resourceExhausted("request of \(payload.count) bytes exceeds the frame limit of \(configuration.limits.payloadBytesMax)")
        }
        let deadline = options.timeout.map { NIODeadline.now() + TimeAmount($0) }
        let call = PendingCall(
            methodID: methodID, payload: payload, deadline: deadline, waitForReady: options.waitForReady,
            streaming: streaming, bufferBytesMax: configuration.streamBufferBytesMax, budget: budget,
            onAbort: { [weak self] call in self?.dropWaiter(call) })
        try budget.reserve(bytes: call.cost)
        if let deadline, let timeout = options.timeout {
            let timer = group.next().scheduleTask(deadline: deadline) {
                call.abort(.deadlineExceeded("no answer within \(timeout)"))
            }
            call.setTimer(timer)
        }
        do throws(RPCError) {
            try route(call)
        } catch {
            call.finish(.failure(error))
            call.releaseReservation()
            throw error
        }
        return call
    }

    func route(_ call: PendingCall) throws(RPCError) {
        enum Decision {
            case send(ClientConnection)
            case wait([(Int, Int)])
            case fail(RPCError)
        }
        let decision = state.withLock { state -> Decision in
            if state.shutdown { return .fail(.unavailable("the client is shut down")) }
            let count = state.slots.count
            for step in 0..<count {
                let index = (state.nextSlot + step) % count
                if case .ready(let connection) = state.slots[index].phase {
                    state.nextSlot = index + 1
                    return .send(connection)
                }
            }
            var connects: [(Int, Int)] = []
            for index in 0..<count {
                if case .idle = state.slots[index].phase {
                    state.slots[index].phase = .connecting
                    state.slots[index].generation += 1
                    connects.append((index, state.slots[index].generation))
                }
            }
            let connecting = state.slots.contains { if case .connecting = $0.phase { return true } else { return false } }
            if connecting || call.waitForReady {
                state.waiters.append(call)
                return .wait(connects)
            }
            return .fail(unreachable(state.slots.compactMap(\.lastError).last))
        }
        switch decision {
        case .send(let connection): connection.submit([call])
        case .wait(let connects): for (slot, generation) in connects { connect(slot: slot, generation: generation) }
        case .fail(let error): throw error
        }
    }

    /// Routes again calls that a closing connection never sent (they keep their queue places).
    func reroute(_ calls: [PendingCall]) {
        for call in calls {
            if call.isEnded {
                call.releaseReservation()
                continue
            }
            do throws(RPCError) {
                try route(call)
            } catch {
                call.finish(.failure(error))
                call.releaseReservation()
            }
        }
    }

    /// The error a call gets when no connection can be had: a refusal by the server as it is,
    /// anything else as `unavailable`.
    func unreachable(_ last: RPCError?) -> RPCError {
        if let last, last.code != .unavailable { return last }
        return .unavailable("peer \(host):\(port) is unreachable" + (last.map { ": \($0.message)" } ?? ""))
    }

    /// Opens the pool's connections now instead of at the first call (their progress shows
    /// in `events`).
    public func connect() {
        let connects = state.withLock { state -> [(Int, Int)] in
            guard !state.shutdown else { return [] }
            var connects: [(Int, Int)] = []
            for index in state.slots.indices {
                if case .idle = state.slots[index].phase {
                    state.slots[index].phase = .connecting
                    state.slots[index].generation += 1
                    connects.append((index, state.slots[index].generation))
                }
            }
            return connects
        }
        for (slot, generation) in connects { connect(slot: slot, generation: generation) }
    }

    /// Takes an ended call out of the queue of calls waiting for a connection, so that calls
    /// timing out while the peer is down give their places back at once.
    func dropWaiter(_ call: PendingCall) {
        let removed = state.withLock { state -> Bool in
            guard let index = state.waiters.firstIndex(where: { $0 === call }) else { return false }
            state.waiters.remove(at: index)
            return true
        }
        if removed { call.releaseReservation() }
    }

    // MARK: Connections

    func connect(slot: Int, generation: Int) {
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(
                low: configuration.writeBufferLowWatermark, high: configuration.writeBufferHighWatermark))
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addFrameCodec(limits: configuration.limits)
                    try channel.pipeline.syncOperations.addHandler(ClientConnectionHandler(client: self, slot: slot, generation: generation))
                }
            }
        bootstrap.connect(host: host, port: port).whenComplete { [self] result in
            switch result {
            case .success(let channel):
                let keep = state.withLock { state -> Bool in
                    guard !state.shutdown, state.slots[slot].generation == generation else { return false }
                    state.slots[slot].channel = channel
                    return true
                }
                if !keep { channel.close(promise: nil) }
            case .failure(let error):
                connectionClosed(slot: slot, generation: generation,
                                 error: .unavailable("cannot connect to \(host):\(port): \(error)"), wasReady: false)
            }
        }
    }

    func connectionReady(slot: Int, generation: Int, connection: ClientConnection) {
        let waiters = state.withLock { state -> [PendingCall]? in
            guard !state.shutdown, state.slots[slot].generation == generation,
                  case .connecting = state.slots[slot].phase else { return nil }
            state.slots[slot].phase = .ready(connection)
            state.slots[slot].attempts = 0
            state.slots[slot].lastError = nil
            defer { state.waiters = [] }
            return state.waiters
        }
        guard let waiters else {
            connection.channel.close(promise: nil)
            return
        }
        connection.submit(waiters)
        emit(.connected(slot: slot))
    }

    func connectionDraining(slot: Int, generation: Int) {
        let drained = state.withLock { state -> Bool in
            guard state.slots[slot].generation == generation, case .ready = state.slots[slot].phase else { return false }
            state.slots[slot].phase = .draining
            return true
        }
        if drained { emit(.draining(slot: slot)) }
    }

    func connectionClosed(slot: Int, generation: Int, error: RPCError, wasReady: Bool) {
        let (failing, delay) = state.withLock { state -> ([PendingCall], Duration?) in
            guard state.slots[slot].generation == generation else { return ([], nil) }
            state.slots[slot].channel = nil
            state.slots[slot].lastError = error
            if state.shutdown {
                state.slots[slot].phase = .idle
                return ([], nil)
            }
            if case .waitingToReconnect = state.slots[slot].phase { return ([], nil) }
            state.slots[slot].attempts += 1
            state.slots[slot].phase = .waitingToReconnect
            let delay = state.slots[slot].backoff.delay(attempt: state.slots[slot].attempts)
            let alive = state.slots.contains {
                switch $0.phase {
                case .connecting, .ready: return true
                default: return false
                }
            }
            var failing: [PendingCall] = []
            if !alive {
                failing = state.waiters.filter { !$0.waitForReady }
                state.waiters.removeAll { !$0.waitForReady }
            }
            return (failing, delay)
        }
        guard let delay else { return }
        let reason = unreachable(error)
        for call in failing {
            call.finish(.failure(reason))
            call.releaseReservation()
        }
        let timer = group.next().scheduleTask(in: TimeAmount(delay)) { [self] in
            reconnect(slot: slot)
        }
        let keep = state.withLock { state -> Bool in
            guard !state.shutdown, case .waitingToReconnect = state.slots[slot].phase else { return false }
            state.slots[slot].reconnectTimer = timer
            return true
        }
        if !keep { timer.cancel() }
        emit(.disconnected(slot: slot, error))
    }

    func reconnect(slot: Int) {
        let generation = state.withLock { state -> Int? in
            guard !state.shutdown, case .waitingToReconnect = state.slots[slot].phase else { return nil }
            state.slots[slot].phase = .connecting
            state.slots[slot].generation += 1
            state.slots[slot].reconnectTimer = nil
            return state.slots[slot].generation
        }
        if let generation { connect(slot: slot, generation: generation) }
    }

    func emit(_ event: Event) {
        eventSink.yield(event)
    }

    /// Closes every connection; calls in flight and waiting fail `unavailable`.
    public func shutdown() async {
        let (channels, waiters, timers) = state.withLock { state -> ([any Channel], [PendingCall], [Scheduled<Void>]) in
            state.shutdown = true
            var channels: [any Channel] = []
            var timers: [Scheduled<Void>] = []
            for index in state.slots.indices {
                if let channel = state.slots[index].channel { channels.append(channel) }
                if case .ready(let connection) = state.slots[index].phase, state.slots[index].channel == nil {
                    channels.append(connection.channel)
                }
                if let timer = state.slots[index].reconnectTimer { timers.append(timer) }
                state.slots[index].reconnectTimer = nil
            }
            defer { state.waiters = [] }
            return (channels, state.waiters, timers)
        }
        for timer in timers { timer.cancel() }
        for call in waiters {
            call.finish(.failure(.unavailable("the client is shut down")))
            call.releaseReservation()
        }
        for channel in channels {
            try? await channel.close()
        }
        eventSink.finish()
    }

    // MARK: Statistics

    public struct ConnectionStatistics: Sendable, Equatable {
        public var slot: Int
        public var inFlightRequests: Int
        /// Calls waiting for the connection to become writable.
        public var blockedRequests: Int
        public var blockedBytes: Int
        public var isWritable: Bool
        /// Bytes NIO holds for the socket (written, not yet sent).
        public var bufferedWritableBytes: Int
    }

    public struct Statistics: Sendable {
        /// Calls admitted but not yet handed to a socket, and their bytes (the bounded queue).
        public var queuedRequests: Int
        public var queuedBytes: Int
        public var connections: [ConnectionStatistics]
    }

    /// A consistent look at each ready connection (taken on its event loop, after the calls
    /// already submitted to it).
    public func statistics() async -> Statistics {
        let connections = state.withLock { state in
            state.slots.compactMap { slot -> ClientConnection? in
                if case .ready(let connection) = slot.phase { return connection }
                return nil
            }
        }
        var result: [ConnectionStatistics] = []
        for connection in connections {
            if let statistics = await connection.statistics() { result.append(statistics) }
        }
        return Statistics(
            queuedRequests: budget.requests.load(ordering: .relaxed), queuedBytes: budget.bytes.load(ordering: .relaxed),
            connections: result)
    }
}
