// A test client that speaks raw bytes over a real loopback socket (NIO's ClientBootstrap), so
// tests can send malformed, pipelined or chunked requests exactly as written and read the
// server's bytes back. Reading awaits data; nothing sleeps.

import NIOCore
import NIOPosix

struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

struct RawHTTPClientError: Error, CustomStringConvertible {
    var description: String
}

final class ByteCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<[UInt8]>.Continuation

    init(_ continuation: AsyncStream<[UInt8]>.Continuation) {
        self.continuation = continuation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(Array(Self.unwrapInboundIn(data).readableBytesView))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

struct RawHTTPClient {
    let channel: any Channel
    var incoming: AsyncStream<[UInt8]>.Iterator
    var buffer: [UInt8] = []

    /// Without `autoRead` the client reads only when `requestRead()` asks (a slow reader).
    static func connect(port: Int, autoRead: Bool = true) async throws -> RawHTTPClient {
        let (stream, continuation) = AsyncStream<[UInt8]>.makeStream()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteCollector(continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawHTTPClient(channel: channel, incoming: stream.makeAsyncIterator())
    }

    func send(_ text: String) async throws {
        try await send(Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes)).get()
    }

    /// Asks the socket for one more read (with `autoRead` off).
    func requestRead() {
        channel.read()
    }

    /// Reads more bytes; false at end of stream.
    mutating func fill() async -> Bool {
        guard let chunk = await incoming.next() else { return false }
        buffer += chunk
        return true
    }

    /// The next response; `noBody` for answers to HEAD. Throws if the connection ends first.
    mutating func readResponse(noBody: Bool = false) async throws -> RawResponse {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            if buffer.count >= 4 {
                headEnd = (0...(buffer.count - 4)).first { Array(buffer[$0..<$0 + 4]) == separator }
            }
            if headEnd == nil, !(await fill()) {
                throw RawHTTPClientError(description: "connection closed before a response head; got \(String(decoding: buffer, as: UTF8.self))")
            }
        }
        let headText = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw RawHTTPClientError(description: "bad status line in \(headText)")
        }
        let headers: [(String, String)] = lines.map { line in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), String(line[line.index(after: colon)...].drop { $0 == " " }))
        }
        var response = RawResponse(status: status, headers: headers, body: [])
        if noBody || status < 200 { return response }
        guard let length = response.header("content-length").flatMap({ Int($0) }) else {
            throw RawHTTPClientError(description: "response without Content-Length: \(headText)")
        }
        while buffer.count < length {
            if !(await fill()) { throw RawHTTPClientError(description: "connection closed inside a body") }
        }
        response.body = Array(buffer[..<length])
        buffer.removeFirst(length)
        return response
    }

    /// Waits until the server closes the connection; returns the bytes that came before.
    mutating func readUntilClosed() async -> [UInt8] {
        while await fill() {}
        defer { buffer.removeAll() }
        return buffer
    }

    func close() async {
        try? await channel.close()
    }
}
