// Methods and their handlers. A method is a stable u32 id (never reused for another meaning)
// with typed request and response messages; the registry maps ids to type-erased handlers that
// the transport runs. Handlers see every failure as an `RPCError` and throw only `RPCError`.
//
// Three handler shapes:
// - `register(_:handler:)`: async, run as a task; sees cancellation (`Task.isCancelled`) when the
//   caller cancels or the deadline passes.
// - `registerInline(_:handler:)`: synchronous, run on the connection's event loop — for cheap,
//   non-blocking work (no disk, no locks held long), where a task per request would cost more
//   than the work.
// - streaming: async, sends any number of chunks, then the transport ends the stream.

import Wire

/// A unary method: one request message, one response message.
public struct RPCMethod<Request: RPCMessage, Response: RPCMessage>: Sendable {
    public let id: UInt32
    public let name: String

    public init(id: UInt32, name: String) {
        precondition(id != 0, "method id 0 is reserved")
        self.id = id
        self.name = name
    }
}

/// A server-streaming method: one request, a stream of chunks (large transfers such as snapshots).
public struct RPCStreamingMethod<Request: RPCMessage, Chunk: RPCMessage>: Sendable {
    public let id: UInt32
    public let name: String

    public init(id: UInt32, name: String) {
        precondition(id != 0, "method id 0 is reserved")
        self.id = id
        self.name = name
    }
}

/// What a handler knows about the request it serves.
public struct RPCContext: Sendable {
    public let requestID: UInt64
    public let methodID: UInt32
    /// Who sent it, as established by the handshake.
    public let peer: RPCPeer
    /// When the caller stops waiting (nil: no deadline). The transport cancels the handler then.
    public let deadline: ContinuousClock.Instant?

    public init(requestID: UInt64, methodID: UInt32, peer: RPCPeer, deadline: ContinuousClock.Instant?) {
        self.requestID = requestID
        self.methodID = methodID
        self.peer = peer
        self.deadline = deadline
    }
}

/// Sends the chunks of a streaming response. `send` waits while the connection cannot take
/// more bytes (backpressure) and throws once the request was cancelled or timed out.
public struct RPCStreamWriter<Chunk: RPCMessage>: Sendable {
    let sink: RPCChunkSink

    public init(_ sink: RPCChunkSink) { self.sink = sink }

    public func send(_ chunk: Chunk) async throws(RPCError) {
        try await sink.send(chunk.encoded())
    }
}

/// The transport's side of a stream writer.
public struct RPCChunkSink: Sendable {
    let sendBytes: @Sendable ([UInt8]) async throws(RPCError) -> Void

    public init(_ sendBytes: @escaping @Sendable ([UInt8]) async throws(RPCError) -> Void) {
        self.sendBytes = sendBytes
    }

    public func send(_ bytes: [UInt8]) async throws(RPCError) {
        try await sendBytes(bytes)
    }
}

/// A handler with its types erased to payload bytes.
public enum RPCHandler: Sendable {
    case async(@Sendable ([UInt8], RPCContext) async throws(RPCError) -> [UInt8])
    case inline(@Sendable ([UInt8], RPCContext) throws(RPCError) -> [UInt8])
    case streaming(@Sendable ([UInt8], RPCContext, RPCChunkSink) async throws(RPCError) -> Void)
}

public struct MethodRegistry: Sendable {
    public struct Entry: Sendable {
        public let name: String
        public let handler: RPCHandler
    }

    var entries: [UInt32: Entry] = [:]

    public init() {}

    public func entry(for methodID: UInt32) -> Entry? { entries[methodID] }

    /// Registered method ids, ascending.
    public var methodIDs: [UInt32] { entries.keys.sorted() }

    public mutating func register<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        handler: @escaping @Sendable (Request, RPCContext) async throws(RPCError) -> Response
    ) {
        add(method.id, method.name, .async { (payload, context) async throws(RPCError) -> [UInt8] in
            let request = try decodeRequest(Request.self, payload, method: method.name)
            return try await handler(request, context).encoded()
        })
    }

    public mutating func registerInline<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        handler: @escaping @Sendable (Request, RPCContext) throws(RPCError) -> Response
    ) {
        add(method.id, method.name, .inline { (payload, context) throws(RPCError) -> [UInt8] in
            let request = try decodeRequest(Request.self, payload, method: method.name)
            return try handler(request, context).encoded()
        })
    }

    public mutating func register<Request, Chunk>(
        _ method: RPCStreamingMethod<Request, Chunk>,
        handler: @escaping @Sendable (Request, RPCContext, RPCStreamWriter<Chunk>) async throws(RPCError) -> Void
    ) {
        add(method.id, method.name, .streaming { (payload, context, sink) async throws(RPCError) -> Void in
            let request = try decodeRequest(Request.self, payload, method: method.name)
            try await handler(request, context, RPCStreamWriter(sink))
        })
    }

    mutating func add(_ id: UInt32, _ name: String, _ handler: RPCHandler) {
        precondition(entries[id] == nil, "method id \(id) registered twice")
        entries[id] = Entry(name: name, handler: handler)
    }
}

/// Decodes a request payload; a malformed one is the caller's fault (`invalidArgument`).
func decodeRequest<Request: RPCMessage>(_ type: Request.Type, _ payload: [UInt8], method: String) throws(RPCError) -> Request {
    do throws(DecodeError) {
        return try Request.decode(payload)
    } catch {
        throw RPCError.invalidArgument("\(method): malformed request: \(error)")
    }
}
