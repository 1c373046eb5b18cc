// One client call from admission to its end, shared by the caller's task, the connection's
// event loop and the deadline timer. Whichever outcome comes first wins: the answer, an error
// frame, the deadline, the caller's cancellation, or the connection's loss. Later ones are
// ignored, so a caller is resumed exactly once per item.
//
// A unary call receives one item (the response payload) and then ends; a streaming call
// receives chunks, bounded by `bufferBytesMax` bytes not yet taken by the caller.

import NIOCore
import RPC
import Synchronization
import Wire

/// The per-peer bound on calls admitted but not yet handed to a socket.
final class QueueBudget: Sendable {
    let requestsMax: Int
    let bytesMax: Int
    let requests = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)

    init(requestsMax: Int, bytesMax: Int) {
        self.requestsMax = requestsMax
        self.bytesMax = bytesMax
    }

    func reserve(bytes cost: Int) throws(RPCError) {
        let requestCount = requests.add(1, ordering: .relaxed).newValue
        let byteCount = bytes.add(cost, ordering: .relaxed).newValue
        if requestCount > requestsMax || byteCount > bytesMax {
            release(bytes: cost)
            throw RPCError.resourceExhausted(
                "the queue to this peer is full (\(requestCount - 1) requests, \(byteCount - cost) bytes; bounds \(requestsMax), \(bytesMax))")
        }
    }

    func release(bytes cost: Int) {
        requests.subtract(1, ordering: .relaxed)
        bytes.subtract(cost, ordering: .relaxed)
    }
}

final class PendingCall: Sendable {
    let methodID: UInt32
    let payload: [UInt8]
    let deadline: NIODeadline?
    let waitForReady: Bool
    let streaming: Bool
    let bufferBytesMax: Int
    let budget: QueueBudget
    /// Told when the call is ended from this side (deadline, cancellation), so that a queue
    /// holding it can let it go.
    let onAbort: @Sendable (PendingCall) -> Void
    /// What this call counts against the queue budget.
    var cost: Int { payload.count + FrameFormat.overheadBytes }

    struct State {
        var items: [[UInt8]] = []
        var head = 0
        var bufferedBytes = 0
        var end: Result<Void, RPCError>?
        var waiter: CheckedContinuation<Result<[UInt8]?, RPCError>, Never>?
        /// Tells the server to stop (a cancel frame); set once the request is on the wire.
        var abandon: (@Sendable () -> Void)?
        var timer: Scheduled<Void>?
        var holdsReservation = true
    }
    let state = Mutex(State())

    init(methodID: UInt32, payload: [UInt8], deadline: NIODeadline?, waitForReady: Bool, streaming: Bool,
         bufferBytesMax: Int, budget: QueueBudget, onAbort: @escaping @Sendable (PendingCall) -> Void = { _ in }) {
        self.methodID = methodID
        self.payload = payload
        self.deadline = deadline
        self.waitForReady = waitForReady
        self.streaming = streaming
        self.bufferBytesMax = bufferBytesMax
        self.budget = budget
        self.onAbort = onAbort
    }

    var isEnded: Bool { state.withLock { $0.end != nil } }

    /// Gives the call's place in the queue back (once).
    func releaseReservation() {
        let held = state.withLock { state -> Bool in
            defer { state.holdsReservation = false }
            return state.holdsReservation
        }
        if held { budget.release(bytes: cost) }
    }

    func setTimer(_ timer: Scheduled<Void>) {
        let ended = state.withLock { state -> Bool in
            if state.end == nil { state.timer = timer }
            return state.end != nil
        }
        if ended { timer.cancel() }
    }

    /// Registers how to cancel the call on the wire; false if it already ended (do not send it).
    func attach(abandon: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            guard state.end == nil else { return false }
            state.abandon = abandon
            return true
        }
    }

    /// An item from the peer. False if the call cannot take it (ended, or a stream's buffer
    /// is full — then the call has failed and the caller of `deliver` must cancel it).
    func deliver(_ item: [UInt8]) -> Bool {
        var resume: (CheckedContinuation<Result<[UInt8]?, RPCError>, Never>, Result<[UInt8]?, RPCError>)?
        var timer: Scheduled<Void>?
        let accepted = state.withLock { state -> Bool in
            guard state.end == nil else { return false }
            if let waiter = state.waiter {
                state.waiter = nil
                resume = (waiter, .success(item))
            } else {
                if state.bufferedBytes + item.count > bufferBytesMax && state.bufferedBytes > 0 {
                    state.end = .failure(.resourceExhausted("the stream's receive buffer of \(bufferBytesMax) bytes is full"))
                    timer = state.timer
                    return false
                }
                state.items.append(item)
                state.bufferedBytes += item.count
            }
            if !streaming {
                state.end = .success(())
                timer = state.timer
            }
            return true
        }
        timer?.cancel()
        if let (waiter, value) = resume { waiter.resume(returning: value) }
        return accepted
    }

    /// Ends the call (first outcome wins). Returns whether this call ended it. `beforeResuming`
    /// runs once the outcome is settled but before the caller is resumed.
    @discardableResult
    func finish(_ outcome: Result<Void, RPCError>, beforeResuming: () -> Void = {}) -> Bool {
        var resume: (CheckedContinuation<Result<[UInt8]?, RPCError>, Never>, Result<[UInt8]?, RPCError>)?
        let (ended, timer) = state.withLock { state -> (Bool, Scheduled<Void>?) in
            guard state.end == nil else { return (false, nil) }
            state.end = outcome
            if let waiter = state.waiter {
                state.waiter = nil
                switch outcome {
                case .success: resume = (waiter, .success(nil))
                case .failure(let error): resume = (waiter, .failure(error))
                }
            }
            return (true, state.timer)
        }
        guard ended else { return false }
        timer?.cancel()
        beforeResuming()
        if let (waiter, value) = resume { waiter.resume(returning: value) }
        return true
    }

    /// Ends the call from this side (deadline, cancellation): the queue holding it lets it go
    /// and the server is told to stop — both before the caller hears of it.
    func abort(_ error: RPCError) {
        finish(.failure(error)) {
            let abandon = state.withLock { state in
                defer { state.abandon = nil }
                return state.abandon
            }
            abandon?()
            onAbort(self)
        }
    }

    /// The next item, nil once the call ended successfully. Buffered items are handed out
    /// before a failure that came after them.
    func next() async -> Result<[UInt8]?, RPCError> {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt8]?, RPCError>, Never>) in
                let ready = state.withLock { state -> Result<[UInt8]?, RPCError>? in
                    if state.head < state.items.count {
                        let item = state.items[state.head]
                        state.items[state.head] = []
                        state.head += 1
                        state.bufferedBytes -= item.count
                        if state.head == state.items.count {
                            state.items.removeAll(keepingCapacity: true)
                            state.head = 0
                        }
                        return .success(item)
                    }
                    if let end = state.end {
                        switch end {
                        case .success: return .success(nil)
                        case .failure(let error): return .failure(error)
                        }
                    }
                    precondition(state.waiter == nil, "one reader at a time")
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            abort(.cancelled("the caller's task was cancelled"))
        }
    }
}

/// A call in progress: await its response, or cancel it.
public struct RPCCall<Response: RPCMessage>: Sendable {
    let pending: PendingCall

    public func response() async throws(RPCError) -> Response {
        switch await pending.next() {
        case .failure(let error):
            throw error
        case .success(nil):
            throw RPCError.internal("the call ended without a response")
        case .success(let payload?):
            do throws(DecodeError) {
                return try Response.decode(payload)
            } catch {
                throw RPCError.internal("malformed response: \(error)")
            }
        }
    }

    /// Stops waiting; the server is told to stop too. The response fails `cancelled`.
    public func cancel() {
        pending.abort(.cancelled("cancelled by the caller"))
    }
}

/// The chunks of a streaming response, in order. `next()` returns nil after the stream's end.
public struct RPCResponseStream<Chunk: RPCMessage>: Sendable {
    let pending: PendingCall

    public func next() async throws(RPCError) -> Chunk? {
        switch await pending.next() {
        case .failure(let error):
            throw error
        case .success(nil):
            return nil
        case .success(let payload?):
            do throws(DecodeError) {
                return try Chunk.decode(payload)
            } catch {
                pending.abort(.internal("malformed stream chunk: \(error)"))
                throw RPCError.internal("malformed stream chunk: \(error)")
            }
        }
    }

    /// Every remaining chunk, until the end.
    public func collect() async throws(RPCError) -> [Chunk] {
        var chunks: [Chunk] = []
        while let chunk = try await next() { chunks.append(chunk) }
        return chunks
    }

    public func cancel() {
        pending.abort(.cancelled("cancelled by the caller"))
    }
}
