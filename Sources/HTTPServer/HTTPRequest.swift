// One complete request as a handler sees it: the target already split and percent-decoded, the
// whole body in memory (at most `HTTPServerConfiguration.maxBodyBytes`).

public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The percent-decoded path without the query, e.g. "/collections/a b". `%2F` decodes to "/"
    /// here, so route on `pathSegments`, which keep it inside its segment.
    public var path: String
    /// The path split on the raw "/" separators, each segment decoded: "/a%2Fb/c" → ["a/b", "c"];
    /// "/" → [].
    public var pathSegments: [String]
    /// The request target exactly as received (path and query, still encoded).
    public var rawPath: String
    /// Decoded query parameters in order (`+` is a space); a name without "=" has value "".
    public var query: [(String, String)]
    /// Header fields in order, names as the client spelled them.
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// The client's "address:port", when known.
    public var remoteAddress: String?

    public init(
        method: HTTPMethod, path: String, pathSegments: [String], rawPath: String, query: [(String, String)] = [],
        headers: [(String, String)] = [], body: [UInt8] = [], remoteAddress: String? = nil
    ) {
        self.method = method
        self.path = path
        self.pathSegments = pathSegments
        self.rawPath = rawPath
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// A request for `target` (a raw path with an optional query), decoded as the server decodes
    /// it; nil when its percent-encoding is invalid.
    public init?(method: HTTPMethod, target: String, headers: [(String, String)] = [], body: [UInt8] = [], remoteAddress: String? = nil) {
        guard let parsed = RequestTarget(target) else { return nil }
        self.init(
            method: method, path: parsed.path, pathSegments: parsed.segments, rawPath: target, query: parsed.query,
            headers: headers, body: body, remoteAddress: remoteAddress)
    }

    /// The first value of header `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        for (field, value) in headers where Self.equalIgnoringASCIICase(field, name) {
            return value
        }
        return nil
    }

    /// The first value of query parameter `name`.
    public func queryValue(_ name: String) -> String? {
        for (field, value) in query where field == name {
            return value
        }
        return nil
    }

    static func equalIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        let a = a.utf8, b = b.utf8
        guard a.count == b.count else { return false }
        for (x, y) in zip(a, b) where x != y {
            // Only letters may differ, and only by the case bit.
            guard x | 0x20 == y | 0x20, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(x | 0x20) else { return false }
        }
        return true
    }
}

/// A request target split into decoded path, segments and query.
struct RequestTarget {
    var path: String
    var segments: [String]
    var query: [(String, String)]

    /// Accepts origin-form ("/a/b?x=1"), absolute-form ("http://host/a") and "*".
    init?(_ target: String) {
        var rest = Substring(target)
        if rest == "*" {
            path = "*"
            segments = []
            query = []
            return
        }
        if !rest.hasPrefix("/") {
            // absolute-form: drop "scheme://authority".
            guard let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") else { return nil }
            let afterScheme = rest[rest.index(colon, offsetBy: 3)...]
            rest = afterScheme.firstIndex(of: "/").map { afterScheme[$0...] } ?? "/"
        }
        let rawQuery: Substring?
        if let mark = rest.firstIndex(of: "?") {
            rawQuery = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        } else {
            rawQuery = nil
        }
        // Strip the leading "/" and split on the raw separators before decoding.
        let rawSegments = rest.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        var segments: [String] = []
        segments.reserveCapacity(rawSegments.count)
        if !(rawSegments.count == 1 && rawSegments[0].isEmpty) {
            for raw in rawSegments {
                guard let decoded = PercentDecoding.decode(raw) else { return nil }
                segments.append(decoded)
            }
        }
        self.segments = segments
        self.path = "/" + segments.joined(separator: "/")
        var query: [(String, String)] = []
        if let rawQuery, !rawQuery.isEmpty {
            for pair in rawQuery.split(separator: "&", omittingEmptySubsequences: true) {
                let name: Substring, value: Substring
                if let equals = pair.firstIndex(of: "=") {
                    name = pair[..<equals]
                    value = pair[pair.index(after: equals)...]
                } else {
                    name = pair
                    value = ""
                }
                guard let decodedName = PercentDecoding.decode(name, plusIsSpace: true),
                    let decodedValue = PercentDecoding.decode(value, plusIsSpace: true)
                else { return nil }
                query.append((decodedName, decodedValue))
            }
        }
        self.query = query
    }
}
