// One HTTP connection, confined to its event loop. It sits after NIO's
// `HTTPServerPipelineHandler`, which delivers one request at a time and stops reading until it
// is answered, so responses go out in request order.
//
// Rules:
// - A request is collected whole (head, body, end) and then handed to the server's handler with
//   a responder; the next request is not read until the responder answered. A response that
//   arrives on another thread hops to this event loop; one for a request that is no longer
//   current (the connection closed) is dropped.
// - Body limit: a Content-Length over `maxBodyBytes` is refused at the head, a chunked body as
//   soon as it grows past it: 413, then the connection closes; no excess byte is kept.
// - `Expect: 100-continue` gets "100 Continue" once the head passed the limits.
// - Parse errors: header overflow 431, anything else 400 (JSON bodies), then close. An invalid
//   percent-encoding in the target is 400 and closes too. After such a refusal the connection
//   closes its output first and discards input for at most `lingerTimeout` (so the client's
//   kernel does not reset the connection before the client read the answer).
// - Keep-alive as the request asks (HTTP/1.1 default on, 1.0 off unless asked); "Connection:
//   close" from either side closes after the response.
// - Backpressure: while the channel is not writable (the client does not read its responses)
//   no further request is read from the socket, and a complete request (e.g. the next of a
//   pipelined burst, which NIO's pipelining handler delivers as soon as the previous answer is
//   written) waits for writability before it reaches the handler. So one slow client holds at
//   most one response plus the watermark in this process's memory. `IdleStateHandler` closes connections silent for `idleTimeout`.
// - Flushes come once per read burst when answering inside it, at once otherwise.

import NIOCore
import NIOHTTP1
import Synchronization

final class HTTPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the request being read or answered needs to be answered.
    struct Current {
        var sequence: UInt64
        var head: HTTPRequestHead
        var keepAlive: Bool
        var body: [UInt8]
    }

    enum State {
        /// Waiting for a request head.
        case idle
        /// Reading the body of `Current`.
        case receiving(Current)
        /// `Current` is complete but the channel is not writable: it goes to the handler once
        /// the client has read enough of the earlier answers.
        case waitingForWritability(Current)
        /// The handler has the request; waiting for its response.
        case awaitingResponse(Current)
        /// An answer that closes the connection was sent; everything inbound is ignored.
        case closing
    }

    /// How long a connection that refused a request keeps discarding input after its answer.
    static let lingerTimeout = TimeAmount.seconds(2)

    /// Whether the connection is still open, readable from any thread (responders check it
    /// before hopping to a loop that may be gone).
    final class Liveness: Sendable {
        let open = Atomic<Bool>(true)
    }

    let configuration: HTTPServerConfiguration
    let handler: HTTPServer.Handler
    let liveness = Liveness()
    var context: ChannelHandlerContext?
    var state = State.idle
    var sequence: UInt64 = 0
    var remoteAddress: String?
    var inReadBurst = false
    var flushPending = false
    /// A read held back because the channel was not writable.
    var readPending = false
    /// Inside the call to the server's handler: a response given synchronously waits here so the
    /// handler is never re-entered from its own `respond`.
    var inHandlerCall = false
    var responseFromHandlerCall: (UInt64, HTTPResponse)?

    init(configuration: HTTPServerConfiguration, handler: @escaping HTTPServer.Handler) {
        self.configuration = configuration
        self.handler = handler
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let address = context.channel.remoteAddress, let ip = address.ipAddress, let port = address.port {
            remoteAddress = address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        liveness.open.store(false, ordering: .releasing)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        liveness.open.store(false, ordering: .releasing)
        state = .closing
        context.fireChannelInactive()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inReadBurst = true
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
            startRequest(head, context: context)
        case .body(let part):
            guard case .receiving(var current) = state else { return }
            guard current.body.count + part.readableBytes <= configuration.maxBodyBytes else {
                refuse(413, "request body exceeds \(configuration.maxBodyBytes) bytes", version: current.head.version)
                return
            }
            state = .idle  // drop the copy held in `state` so appending does not copy the body
            current.body.append(contentsOf: part.readableBytesView)
            state = .receiving(current)
        case .end:
            guard case .receiving(let current) = state else { return }
            if context.channel.isWritable {
                dispatch(current, context: context)
            } else {
                state = .waitingForWritability(current)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadBurst = false
        flushIfPending()
        context.fireChannelReadComplete()
    }

    func startRequest(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        sequence &+= 1
        var current = Current(sequence: sequence, head: head, keepAlive: head.isKeepAlive, body: [])
        if let length = head.headers.first(name: "content-length").flatMap({ Int($0) }) {
            guard length <= configuration.maxBodyBytes else {
                refuse(413, "request body of \(length) bytes exceeds \(configuration.maxBodyBytes) bytes", version: head.version)
                return
            }
            current.body.reserveCapacity(length)
        }
        state = .receiving(current)
        if head.version.major == 1, head.version.minor >= 1,
            let expect = head.headers.first(name: "expect"), HTTPRequest.equalIgnoringASCIICase(expect, "100-continue")
        {
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            flushPending = true
            if !inReadBurst { flushIfPending() }
        }
    }

    /// Hands a complete request to the server's handler.
    func dispatch(_ current: Current, context: ChannelHandlerContext) {
        guard let target = RequestTarget(current.head.uri) else {
            refuse(400, "invalid percent-encoding in the request target", version: current.head.version)
            return
        }
        state = .awaitingResponse(current)
        var headers: [(String, String)] = []
        headers.reserveCapacity(current.head.headers.count)
        for (name, value) in current.head.headers { headers.append((name, value)) }
        let request = HTTPRequest(
            method: HTTPMethod(current.head.method.rawValue), path: target.path, pathSegments: target.segments,
            rawPath: current.head.uri, query: target.query, headers: headers, body: current.body,
            remoteAddress: remoteAddress)
        let sequence = current.sequence
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let liveness = self.liveness
        let responder = HTTPResponder { response in
            if eventLoop.inEventLoop {
                bound.value.deliver(sequence, response)
            } else if liveness.open.load(ordering: .acquiring) {
                eventLoop.execute { bound.value.deliver(sequence, response) }
            }
        }
        inHandlerCall = true
        handler(request, responder)
        inHandlerCall = false
        if let (sequence, response) = responseFromHandlerCall {
            responseFromHandlerCall = nil
            deliver(sequence, response)
        }
    }

    // MARK: Responses

    /// The response to request `sequence`, on the event loop.
    func deliver(_ sequence: UInt64, _ response: HTTPResponse) {
        guard case .awaitingResponse(let current) = state, current.sequence == sequence else { return }
        if inHandlerCall {
            responseFromHandlerCall = (sequence, response)
            return
        }
        send(response, version: current.head.version, keepAlive: current.keepAlive, isHead: current.head.method == .HEAD)
    }

    /// Answers with an error and closes the connection (the request is not read further).
    func refuse(_ status: Int, _ message: String, version: HTTPVersion) {
        send(.error(status: status, message: message), version: version, keepAlive: false, isHead: false, lingering: true)
    }

    /// Writes `response` whole. The state moves on before the end is written: writing it lets
    /// the pipelining handler deliver the next request at once.
    func send(_ response: HTTPResponse, version: HTTPVersion, keepAlive requestKeepAlive: Bool, isHead: Bool, lingering: Bool = false) {
        guard let context else { return }
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 3)
        var keepAlive = requestKeepAlive
        var hasContentType = false
        for (name, value) in response.headers {
            if HTTPRequest.equalIgnoringASCIICase(name, "content-length") || HTTPRequest.equalIgnoringASCIICase(name, "transfer-encoding") {
                continue
            }
            if HTTPRequest.equalIgnoringASCIICase(name, "connection") {
                if HTTPRequest.equalIgnoringASCIICase(value, "close") { keepAlive = false }
                continue
            }
            if HTTPRequest.equalIgnoringASCIICase(name, "content-type") { hasContentType = true }
            headers.add(name: name, value: value)
        }
        if !hasContentType { headers.add(name: "Content-Type", value: "application/json") }
        // 1xx, 204 and 304 answers have no body (RFC 9110 §6.4.1); 1xx and 204 no Content-Length.
        let bodyless = response.status < 200 || response.status == 204 || response.status == 304
        if response.status >= 200 && response.status != 204 {
            headers.add(name: "Content-Length", value: String(bodyless ? 0 : response.body.count))
        }
        if !keepAlive {
            headers.add(name: "Connection", value: "close")
        } else if version.major == 1, version.minor == 0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        state = keepAlive ? .idle : .closing
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        if !isHead, !bodyless, !response.body.isEmpty {
            let buffer = context.channel.allocator.buffer(bytes: response.body)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if keepAlive {
            context.write(Self.wrapOutboundOut(.end(nil)), promise: nil)
            flushPending = true
            if !inReadBurst { flushIfPending() }
        } else if !lingering {
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                channel.close(promise: nil)
            }
        } else {
            // A refused request may still be arriving. Closing with unread input makes the kernel
            // send a reset, which can destroy the response before the client reads it; so close
            // our side only, discard what still comes, and close fully when the client does or
            // after `lingerTimeout`.
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: Self.lingerTimeout) { channel.close(promise: nil) }
            }
        }
    }

    func flushIfPending() {
        guard flushPending, let context else { return }
        flushPending = false
        context.flush()
    }

    // MARK: Errors, events, backpressure

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .closing = state, case .dataReceivedInErrorState? = error as? ByteToMessageDecoderError {
            return  // input after a parse error, arriving while the connection lingers: discarded
        }
        guard let parserError = error as? HTTPParserError else {
            state = .closing
            context.close(promise: nil)
            return
        }
        switch state {
        case .idle, .receiving:
            if parserError == .headerOverflow {
                refuse(431, "request header fields exceed \(configuration.maxHeaderBytes) bytes", version: .http1_1)
            } else {
                refuse(400, "malformed HTTP request: \(parserError)", version: .http1_1)
            }
        case .waitingForWritability, .awaitingResponse, .closing:
            // A response is owed or was sent: no room for another; just close.
            state = .closing
            context.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            state = .closing
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .waitingForWritability(let current) = state {
            dispatch(current, context: context)
        }
        if context.channel.isWritable, readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }
}
