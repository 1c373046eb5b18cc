// End-to-end tests of the HTTP server over real loopback sockets (port 0), with raw bytes on
// the wire. Each test starts its own one-thread server; nothing sleeps to wait for an event —
// tests await responses, connection closes, or signals from handlers.

import Dispatch
import HTTPServer
import NIOCore
import Synchronization
import Testing

/// Starts a server, runs `body` with its port, shuts it down.
func withServer(
    _ configuration: HTTPServerConfiguration = HTTPServerConfiguration(eventLoopThreads: 1),
    handler: @escaping HTTPServer.Handler, _ body: (Int, HTTPServer) async throws -> Void
) async throws {
    let server = HTTPServer(configuration: configuration, handler: handler)
    let port = try server.start()
    do {
        try await body(port, server)
    } catch {
        server.shutdown()
        throw error
    }
    server.shutdown()
}

/// Answers with the method, path, a query value and the body, as JSON.
let echoHandler: HTTPServer.Handler = { request, responder in
    let echo = #"{"method":"\#(request.method)","path":"\#(request.path)","q":"\#(request.queryValue("q") ?? "")","body":\#(String(decoding: request.body, as: UTF8.self).isEmpty ? "null" : String(decoding: request.body, as: UTF8.self))}"#
    responder.respond(.json(status: request.method == .put ? 201 : 200, body: echo))
}

/// Hands each request's responder to the test.
final class Inbox: Sendable {
    let stream: AsyncStream<(HTTPRequest, HTTPResponder)>
    let continuation: AsyncStream<(HTTPRequest, HTTPResponder)>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream()
    }

    var handler: HTTPServer.Handler {
        { [continuation] request, responder in continuation.yield((request, responder)) }
    }
}

@Suite(.timeLimit(.minutes(1)))
struct HTTPServerTests {
    @Test func jsonRoundTripsForGetPutAndPost() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("GET /collections/a%20b?q=x%2By+z HTTP/1.1\r\nHost: t\r\n\r\n")
            let get = try await client.readResponse()
            #expect(get.status == 200)
            #expect(get.header("content-type") == "application/json")
            #expect(get.text == #"{"method":"GET","path":"/collections/a b","q":"x+y z","body":null}"#)
            #expect(get.header("content-length") == String(get.body.count))

            let document = #"{"vector":[0.5,1.5]}"#
            try await client.send("PUT /points HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: \(document.utf8.count)\r\n\r\n\(document)")
            let put = try await client.readResponse()
            #expect(put.status == 201)
            #expect(put.text == #"{"method":"PUT","path":"/points","q":"","body":{"vector":[0.5,1.5]}}"#)

            try await client.send("POST /search HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\n{\"k\": 10}")
            let post = try await client.readResponse()
            #expect(post.status == 200)
            #expect(post.text == #"{"method":"POST","path":"/search","q":"","body":{"k": 10}}"#)
            await client.close()
        }
    }

    @Test func requestCarriesHeadersQueryAndRemoteAddress() async throws {
        let inbox = Inbox()
        try await withServer(handler: inbox.handler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("GET /a/b/?x=1&y&x=2 HTTP/1.1\r\nHost: t\r\nX-Api-Key: secret\r\n\r\n")
            var requests = inbox.stream.makeAsyncIterator()
            let (request, responder) = try #require(await requests.next())
            #expect(request.header("x-api-key") == "secret")
            #expect(request.header("HOST") == "t")
            #expect(request.header("missing") == nil)
            #expect(request.queryValue("x") == "1")
            #expect(request.queryValue("y") == "")
            #expect(request.query.map(\.0) == ["x", "y", "x"])
            #expect(request.pathSegments == ["a", "b", ""])
            #expect(request.rawPath == "/a/b/?x=1&y&x=2")
            #expect(request.remoteAddress?.hasPrefix("127.0.0.1:") == true)
            responder.respond(HTTPResponse(status: 200, headers: [("Content-Type", "text/plain")], body: Array("ok".utf8)))
            responder.respond(.json(status: 500, body: "{}"))  // ignored: answered already
            let response = try await client.readResponse()
            #expect(response.status == 200 && response.text == "ok")
            #expect(response.header("content-type") == "text/plain")
            #expect(responder.hasResponded)
            await client.close()
        }
    }

    @Test func keepAliveServesHundredSequentialRequestsOnOneConnection() async throws {
        try await withServer(handler: echoHandler) { port, server in
            var client = try await RawHTTPClient.connect(port: port)
            for index in 0..<100 {
                try await client.send("POST /n HTTP/1.1\r\nHost: t\r\nContent-Length: \(String(index).count)\r\n\r\n\(index)")
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.text == #"{"method":"POST","path":"/n","q":"","body":\#(index)}"#)
                #expect(response.header("connection") == nil)
            }
            #expect(server.connectionCount == 1)
            await client.close()
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        // The first answer comes late from another thread, the second at once: order must hold.
        let handler: HTTPServer.Handler = { request, responder in
            if request.path == "/slow" {
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(50)) {
                    responder.respond(.json(body: #"{"which":"slow"}"#))
                }
            } else {
                responder.respond(.json(body: #"{"which":"fast"}"#))
            }
        }
        try await withServer(handler: handler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /fast HTTP/1.1\r\nHost: t\r\n\r\nGET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(try await client.readResponse().text == #"{"which":"slow"}"#)
            #expect(try await client.readResponse().text == #"{"which":"fast"}"#)
            let last = try await client.readResponse()
            #expect(last.text == #"{"which":"fast"}"#)
            #expect(last.header("connection") == "close")
            #expect(await client.readUntilClosed().isEmpty)
        }
    }

    @Test func chunkedRequestBodyIsReassembled() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1,2\r\n")
            try await client.send("3\r\n,3]\r\n0\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.text == #"{"method":"POST","path":"/c","q":"","body":[1,2,3]}"#)
            await client.close()
        }
    }

    @Test func oversizedBodyByContentLengthIs413AndCloses() async throws {
        let configuration = HTTPServerConfiguration(maxBodyBytes: 1000, eventLoopThreads: 1)
        try await withServer(configuration, handler: echoHandler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "x", count: 100))
            let response = try await client.readResponse()
            #expect(response.status == 413)
            #expect(response.header("connection") == "close")
            #expect(response.text.hasPrefix(#"{"status":{"error":"request body of 5000 bytes exceeds 1000 bytes"},"time":0}"#))
            #expect(await client.readUntilClosed().isEmpty)

            // A client still uploading megabytes when refused gets the answer, not a reset.
            var uploader = try await RawHTTPClient.connect(port: port)
            let body = [UInt8](repeating: UInt8(ascii: "u"), count: 4 << 20)
            try? await uploader.send(Array("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
            #expect(try await uploader.readResponse().status == 413)
            #expect(await uploader.readUntilClosed().isEmpty)

            // A body at the limit is fine.
            var other = try await RawHTTPClient.connect(port: port)
            try await other.send("POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n\"" + String(repeating: "y", count: 998) + "\"")
            #expect(try await other.readResponse().status == 200)
            await other.close()
        }
    }

    @Test func oversizedChunkedBodyIs413AndCloses() async throws {
        let configuration = HTTPServerConfiguration(maxBodyBytes: 1000, eventLoopThreads: 1)
        try await withServer(configuration, handler: echoHandler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            let chunk = "258\r\n" + String(repeating: "z", count: 0x258) + "\r\n"  // 600 bytes
            try await client.send("POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
            try? await client.send(chunk)
            let response = try await client.readResponse()
            #expect(response.status == 413)
            #expect(response.text == #"{"status":{"error":"request body exceeds 1000 bytes"},"time":0}"#)
            #expect(await client.readUntilClosed().isEmpty)
        }
    }

    @Test func oversizedHeadersAre431() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "h", count: 20_000) + "\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 431)
            #expect(response.header("content-type") == "application/json")
            #expect(await client.readUntilClosed().isEmpty)
        }
    }

    @Test func overlongRequestTargetIs431() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try? await client.send("GET /" + String(repeating: "a", count: 1 << 20) + " HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().status == 431)
            #expect(await client.readUntilClosed().isEmpty)
        }
    }

    @Test func garbageIs400AndOtherConnectionsAreStillServed() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            var bad = try await RawHTTPClient.connect(port: port)
            try await bad.send([0x16, 0x03, 0x01, 0x00, 0xff] + Array("\r\n\r\nnot http at all\r\n\r\n".utf8))
            let response = try await bad.readResponse()
            #expect(response.status == 400)
            #expect(response.text.hasPrefix(#"{"status":{"error":"malformed HTTP request"#))
            #expect(await bad.readUntilClosed().isEmpty)

            var good = try await RawHTTPClient.connect(port: port)
            try await good.send("GET /still HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await good.readResponse().status == 200)
            await good.close()
        }
    }

    @Test func invalidPercentEncodingIs400() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            for target in ["/collections/%zz", "/a%2", "/x?q=%G1", "/bad-utf8-%C3%28"] {
                var client = try await RawHTTPClient.connect(port: port)
                try await client.send("GET \(target) HTTP/1.1\r\nHost: t\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 400, "\(target)")
                #expect(await client.readUntilClosed().isEmpty)
            }
        }
    }

    @Test func headGetsHeadersWithoutBody() async throws {
        let handler: HTTPServer.Handler = { _, responder in responder.respond(.json(body: #"{"hello":"world"}"#)) }
        try await withServer(handler: handler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            let head = try await client.readResponse(noBody: true)
            #expect(head.status == 200)
            #expect(head.header("content-length") == "17")
            // Had the HEAD response carried a body, this would read it as the next status line.
            let get = try await client.readResponse()
            #expect(get.text == #"{"hello":"world"}"#)
            await client.close()
        }
    }

    @Test func noContentAnswersCarryNeitherBodyNorLength() async throws {
        let handler: HTTPServer.Handler = { request, responder in
            if request.path == "/deleted" {
                responder.respond(HTTPResponse(status: 204, body: Array("ignored".utf8)))
            } else {
                responder.respond(.json(body: "[]"))
            }
        }
        try await withServer(handler: handler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("DELETE /deleted HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n")
            let deleted = try await client.readResponse(noBody: true)
            #expect(deleted.status == 204)
            #expect(deleted.header("content-length") == nil)
            #expect(try await client.readResponse().text == "[]")
            await client.close()
        }
    }

    @Test func aServerStartsOnceAndShutsDownIdempotently() throws {
        let server = HTTPServer(configuration: HTTPServerConfiguration(eventLoopThreads: 1), handler: echoHandler)
        let port = try server.start()
        #expect(port > 0)
        #expect(throws: HTTPServerError.self) { try server.start() }
        server.shutdown()
        server.shutdown()
        #expect(throws: HTTPServerError.self) { try server.start() }
        let never = HTTPServer(configuration: HTTPServerConfiguration(eventLoopThreads: 1), handler: echoHandler)
        never.shutdown()
        #expect(never.localPort == nil)
    }

    @Test func http10ClosesUnlessKeepAliveAndConnectionCloseIsHonoured() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            var plain = try await RawHTTPClient.connect(port: port)
            try await plain.send("GET /a HTTP/1.0\r\n\r\n")
            let first = try await plain.readResponse()
            #expect(first.status == 200)
            #expect(first.header("connection") == "close")
            #expect(await plain.readUntilClosed().isEmpty)

            var keepAlive = try await RawHTTPClient.connect(port: port)
            for _ in 0..<2 {
                try await keepAlive.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let response = try await keepAlive.readResponse()
                #expect(response.header("connection") == "keep-alive")
            }
            await keepAlive.close()

            var closing = try await RawHTTPClient.connect(port: port)
            try await closing.send("GET /a HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(try await closing.readResponse().header("connection") == "close")
            #expect(await closing.readUntilClosed().isEmpty)
        }
    }

    @Test func expectContinueGetsInterimResponseBeforeBody() async throws {
        try await withServer(handler: echoHandler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            let interim = try await client.readResponse()
            #expect(interim.status == 100)
            try await client.send("[]")
            let final = try await client.readResponse()
            #expect(final.status == 201)
            #expect(final.text == #"{"method":"PUT","path":"/e","q":"","body":[]}"#)
            await client.close()
        }
    }

    @Test func responseFromAnotherThreadAfterDelay() async throws {
        let handler: HTTPServer.Handler = { request, responder in
            let body = request.body
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(30)) {
                responder.respond(HTTPResponse(status: 202, headers: [("Content-Type", "application/octet-stream")], body: body.reversed()))
            }
        }
        try await withServer(handler: handler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            for _ in 0..<3 {
                try await client.send("POST /r HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
                let response = try await client.readResponse()
                #expect(response.status == 202 && response.text == "cba")
            }
            await client.close()
        }
    }

    @Test func percentEncodedSlashStaysInsideItsSegmentEndToEnd() async throws {
        var router = HTTPRouter<String>()
        router.add(.get, "/collections/{name}/points/{id}", "point")
        let handler: HTTPServer.Handler = { [router] request, responder in
            switch router.match(request) {
            case .found(let name, let params):
                responder.respond(.json(body: #"{"route":"\#(name)","name":"\#(params["name"]!)","id":"\#(params["id"]!)"}"#))
            case .notFound:
                responder.respond(.error(status: 404, message: "no route"))
            case .methodNotAllowed(let allowed):
                responder.respond(.error(status: 405, message: "no", headers: [("Allow", allowed.map(\.description).joined(separator: ", "))]))
            }
        }
        try await withServer(handler: handler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port)
            try await client.send("GET /collections/a%2Fb%20c/points/7 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().text == #"{"route":"point","name":"a/b c","id":"7"}"#)
            try await client.send("GET /collections/a/b/points/7 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await client.readResponse().status == 404)
            try await client.send("DELETE /collections/a/points/7 HTTP/1.1\r\nHost: t\r\n\r\n")
            let refused = try await client.readResponse()
            #expect(refused.status == 405)
            #expect(refused.header("allow") == "GET, HEAD")
            await client.close()
        }
    }

    @Test func gracefulShutdownAnswersTheRequestInFlight() async throws {
        let inbox = Inbox()
        let server = HTTPServer(configuration: HTTPServerConfiguration(eventLoopThreads: 1), handler: inbox.handler)
        let port = try server.start()
        #expect(server.localPort == port)
        var busy = try await RawHTTPClient.connect(port: port)
        var idle = try await RawHTTPClient.connect(port: port)
        try await idle.send("GET /warm HTTP/1.1\r\nHost: t\r\n\r\n")
        var requests = inbox.stream.makeAsyncIterator()
        let (_, warmResponder) = try #require(await requests.next())
        warmResponder.respond(.json(body: "{}"))
        #expect(try await idle.readResponse().status == 200)

        try await busy.send("POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}")
        let (_, responder) = try #require(await requests.next())
        server.beginShutdown()
        // The idle connection closes at once; the busy one is answered, then closes.
        #expect(await idle.readUntilClosed().isEmpty)
        responder.respond(.json(body: #"{"late":true}"#))
        let response = try await busy.readResponse()
        #expect(response.text == #"{"late":true}"#)
        #expect(response.header("connection") == "close")
        #expect(await busy.readUntilClosed().isEmpty)
        server.shutdown()
        #expect(server.localPort == nil)
    }

    @Test func shutdownClosesConnectionsWhoseHandlerNeverAnswers() async throws {
        let configuration = HTTPServerConfiguration(eventLoopThreads: 1, shutdownGracePeriod: .milliseconds(100))
        let inbox = Inbox()
        let server = HTTPServer(configuration: configuration, handler: inbox.handler)
        let port = try server.start()
        var client = try await RawHTTPClient.connect(port: port)
        try await client.send("GET /never HTTP/1.1\r\nHost: t\r\n\r\n")
        var requests = inbox.stream.makeAsyncIterator()
        let (_, responder) = try #require(await requests.next())
        server.shutdown()
        #expect(await client.readUntilClosed().isEmpty)
        responder.respond(.json(body: "{}"))  // too late: dropped, no crash
    }

    @Test func idleTimeoutClosesSilentAndStuckConnections() async throws {
        let configuration = HTTPServerConfiguration(idleTimeout: .milliseconds(200), eventLoopThreads: 1)
        let inbox = Inbox()
        try await withServer(configuration, handler: inbox.handler) { port, _ in
            var silent = try await RawHTTPClient.connect(port: port)
            #expect(await silent.readUntilClosed().isEmpty)

            // The timer may beat the request under load; either way the connection must close
            // without an answer (awaiting the request here could wait forever).
            var stuck = try await RawHTTPClient.connect(port: port)
            try? await stuck.send("GET /never HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(await stuck.readUntilClosed().isEmpty)
        }
    }

    @Test func slowReaderHoldsBackFurtherRequests() async throws {
        // 48 pipelined requests, each answered with 1 MiB, to a client that reads only when it
        // asks. Were writability ignored, the server would answer them all at once and buffer
        // 48 MiB; with it, a request is taken only while the answers not yet read by the client
        // fit in the kernel's socket buffers plus the watermark plus one answer.
        let answerBytes = 1 << 20
        let requestCount = 48
        let received = Atomic<Int>(0)
        let worstBacklog = Mutex(0)
        let dispatched = Mutex(0)
        let handler: HTTPServer.Handler = { _, responder in
            let sentBefore = dispatched.withLock { count in
                defer { count += 1 }
                return count * answerBytes
            }
            let backlog = sentBefore - received.load(ordering: .acquiring)
            worstBacklog.withLock { $0 = max($0, backlog) }
            responder.respond(HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream")],
                                           body: [UInt8](repeating: 7, count: answerBytes)))
        }
        try await withServer(handler: handler) { port, _ in
            var client = try await RawHTTPClient.connect(port: port, autoRead: false)
            try await client.send(String(repeating: "GET /blob HTTP/1.1\r\nHost: t\r\n\r\n", count: requestCount))
            var total = 0
            while true {
                client.requestRead()
                guard await client.fill() else { break }
                total += client.buffer.count
                client.buffer.removeAll(keepingCapacity: true)
                received.store(total, ordering: .releasing)
                if total >= requestCount * answerBytes { break }
            }
            #expect(total > requestCount * answerBytes)  // plus the heads
            #expect(dispatched.withLock { $0 } == requestCount)
            // Loopback socket buffers here are a few MiB each way; 24 MiB is far above them and
            // far below the 48 MiB an unbounded server would hold.
            #expect(worstBacklog.withLock { $0 } < 24 << 20)
            await client.close()
        }
    }

    @Test func connectionsBeyondTheCapAreClosed() async throws {
        let configuration = HTTPServerConfiguration(maxConnections: 1, eventLoopThreads: 1)
        try await withServer(configuration, handler: echoHandler) { port, server in
            var first = try await RawHTTPClient.connect(port: port)
            try await first.send("GET /1 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await first.readResponse().status == 200)
            var second = try await RawHTTPClient.connect(port: port)
            try? await second.send("GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(await second.readUntilClosed().isEmpty)
            try await first.send("GET /3 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try await first.readResponse().status == 200)
            #expect(server.connectionCount == 1)
            await first.close()
        }
    }
}
