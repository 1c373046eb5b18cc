// A complete response. The server always sends Content-Length (it never streams a body) and a
// Content-Type (application/json when the handler set none); HEAD requests get the headers only.

public struct HTTPResponse: Sendable {
    public var status: Int
    /// Extra header fields. Content-Length and Transfer-Encoding are the server's to set and are
    /// dropped here; "Connection: close" is honoured (the connection closes after this response).
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        precondition((100...999).contains(status), "an HTTP status has three digits")
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response: `body` must already be JSON text.
    public static func json(status: Int = 200, body: [UInt8]) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: body)
    }

    public static func json(status: Int = 200, body: String) -> HTTPResponse {
        json(status: status, body: Array(body.utf8))
    }

    /// The error shape of the database's API: `{"status":{"error":"<message>"},"time":0}`.
    public static func error(status: Int, message: String, headers: [(String, String)] = []) -> HTTPResponse {
        var response = json(status: status, body: #"{"status":{"error":"# + jsonQuoted(message) + #"},"time":0}"#)
        response.headers += headers
        return response
    }

    /// `text` as a JSON string literal, quotes included.
    static func jsonQuoted(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }
}
