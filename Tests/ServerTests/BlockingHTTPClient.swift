// A tiny blocking HTTP/1.1 client over POSIX sockets, for driving the real `vectron` binary.
//
// One client holds at most one connection (keep-alive) and reconnects when the server closed it.
// Responses are read by `Content-Length` (or `Transfer-Encoding: chunked`, or until close).
// Every socket has a receive/send timeout, so a server that stops answering fails the test
// instead of hanging it. `sendRaw` writes arbitrary bytes on a fresh connection (malformed
// requests) and reads whatever comes back until the server closes or the timeout passes.

import Foundation
import JSON
#if canImport(Glibc)
import Glibc
#endif

struct HTTPClientError: Error, CustomStringConvertible {
    var description: String
}

struct HTTPResponseData: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as JSON, or nil if it is not JSON.
    var json: JSONValue? { try? JSONParser.parse(body) }

    /// `result` of an ok envelope.
    var result: JSONValue? { json?["result"] }

    /// `status.error` of an error envelope.
    var errorMessage: String? { json?["status"]?["error"]?.stringValue }
}

final class BlockingHTTPClient {
    let port: Int
    var keepAlive: Bool
    var timeoutSeconds: Int
    private var socket: Int32 = -1
    /// Bytes read past the last response (a pipelining server never sends any, but be exact).
    private var pending: [UInt8] = []

    init(port: Int, keepAlive: Bool = true, timeoutSeconds: Int = 30) {
        self.port = port
        self.keepAlive = keepAlive
        self.timeoutSeconds = timeoutSeconds
    }

    deinit { close() }

    func close() {
        if socket >= 0 { Glibc.close(socket) }
        socket = -1
        pending = []
    }

    static func connect(port: Int, timeoutSeconds: Int) throws(HTTPClientError) -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(description: "socket: errno \(errno)") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            Glibc.close(fd)
            throw HTTPClientError(description: "connect to 127.0.0.1:\(port): errno \(code)")
        }
        return fd
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(HTTPClientError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + written, bytes.count - written, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EINTR { continue }
                throw HTTPClientError(description: "send: errno \(errno)")
            }
            written += count
        }
    }

    /// Reads once; returns nil at end of stream.
    static func readSome(_ fd: Int32) throws(HTTPClientError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress!, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw HTTPClientError(description: "timed out waiting for the server") }
                if errno == ECONNRESET { return nil }
                throw HTTPClientError(description: "recv: errno \(errno)")
            }
            if count == 0 { return nil }
            return Array(buffer[0..<count])
        }
    }

    /// Sends one request and reads its response. A keep-alive connection the server closed in
    /// the meantime is reopened once (only before any byte of the response arrived).
    func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws(HTTPClientError) -> HTTPResponseData {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body {
            head += "Content-Length: \(body.count)\r\n"
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { head += "Content-Type: application/json\r\n" }
        } else if method == "POST" || method == "PUT" {
            head += "Content-Length: 0\r\n"
        }
        if !keepAlive { head += "Connection: close\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + (body ?? [])
        for attempt in 0..<2 {
            let reused = socket >= 0
            if socket < 0 { socket = try Self.connect(port: port, timeoutSeconds: timeoutSeconds) }
            do throws(HTTPClientError) {
                try Self.writeAll(socket, bytes)
                guard let response = try readResponse(isHead: method == "HEAD") else {
                    throw HTTPClientError(description: "the server closed the connection without answering \(method) \(path)")
                }
                let closes = response.header("connection")?.lowercased() == "close"
                if !keepAlive || closes { close() }
                return response
            } catch {
                close()
                if attempt == 0 && reused { continue }
                throw error
            }
        }
        throw HTTPClientError(description: "unreachable")
    }

    func request(_ method: String, _ path: String, headers: [(String, String)] = [], json: String) throws(HTTPClientError) -> HTTPResponseData {
        try request(method, path, headers: headers, body: Array(json.utf8))
    }

    /// Parses one response from the connection; nil if it closed before any byte.
    private func readResponse(isHead: Bool) throws(HTTPClientError) -> HTTPResponseData? {
        var buffer = pending
        pending = []
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while true {
            if let end = Self.find(separator, in: buffer) { headEnd = end; break }
            guard let more = try Self.readSome(socket) else {
                if buffer.isEmpty { return nil }
                throw HTTPClientError(description: "the connection closed inside a response head")
            }
            buffer += more
        }
        let headText = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let statusParts = statusLine.split(separator: " ", maxSplits: 2)
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw HTTPClientError(description: "bad status line: \(statusLine)")
        }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var rest = Array(buffer[(headEnd! + 4)...])
        let response = HTTPResponseData(status: status, headers: headers, body: [])
        var body: [UInt8] = []
        if isHead || status == 204 || status == 304 {
            pending = rest
        } else if let lengthText = response.header("content-length"), let length = Int(lengthText) {
            while rest.count < length {
                guard let more = try Self.readSome(socket) else { throw HTTPClientError(description: "the connection closed inside a body") }
                rest += more
            }
            body = Array(rest[0..<length])
            pending = Array(rest[length...])
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                while Self.find([13, 10], in: rest) == nil {
                    guard let more = try Self.readSome(socket) else { throw HTTPClientError(description: "the connection closed inside a chunk") }
                    rest += more
                }
                let lineEnd = Self.find([13, 10], in: rest)!
                let sizeText = String(decoding: rest[0..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw HTTPClientError(description: "bad chunk size \(sizeText)")
                }
                rest.removeFirst(lineEnd + 2)
                while rest.count < size + 2 {
                    guard let more = try Self.readSome(socket) else { throw HTTPClientError(description: "the connection closed inside a chunk") }
                    rest += more
                }
                body += rest[0..<size]
                rest.removeFirst(size + 2)
                if size == 0 { break }
            }
            pending = rest
        } else {
            body = rest
            while let more = try Self.readSome(socket) { body += more }
            close()
        }
        return HTTPResponseData(status: status, headers: headers, body: body)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var index = 0
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0] && haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    /// Writes `bytes` on a new connection, half-closes it, and reads until the server closes
    /// (or the timeout). Returns everything read; the status of the first response if any.
    static func sendRaw(port: Int, _ bytes: [UInt8], timeoutSeconds: Int = 10) throws(HTTPClientError) -> (status: Int?, bytes: [UInt8]) {
        let fd = try connect(port: port, timeoutSeconds: timeoutSeconds)
        defer { Glibc.close(fd) }
        // The server may close early (a bad head): a failed write is then not an error.
        do throws(HTTPClientError) { try writeAll(fd, bytes) } catch {}
        _ = shutdown(fd, Int32(SHUT_WR))
        var received: [UInt8] = []
        while true {
            let more: [UInt8]?
            do throws(HTTPClientError) { more = try readSome(fd) } catch { break }
            guard let more else { break }
            received += more
        }
        var status: Int?
        if received.count >= 12, received.starts(with: Array("HTTP/1.".utf8)) {
            status = Int(String(decoding: received[9..<12], as: UTF8.self))
        }
        return (status, received)
    }
}
