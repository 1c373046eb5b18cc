// The request method, as the router and the handlers see it. Methods NIO knows but this server
// has no case for arrive as `.other` with their upper-case name.

public enum HTTPMethod: Sendable, Hashable, CustomStringConvertible {
    case get, put, post, delete, patch, head, options
    case other(String)

    /// The method's name as it appears on the request line.
    public var description: String {
        switch self {
        case .get: "GET"
        case .put: "PUT"
        case .post: "POST"
        case .delete: "DELETE"
        case .patch: "PATCH"
        case .head: "HEAD"
        case .options: "OPTIONS"
        case .other(let name): name
        }
    }

    /// The method named `name` (case-sensitive, as RFC 9110 says).
    public init(_ name: String) {
        switch name {
        case "GET": self = .get
        case "PUT": self = .put
        case "POST": self = .post
        case "DELETE": self = .delete
        case "PATCH": self = .patch
        case "HEAD": self = .head
        case "OPTIONS": self = .options
        default: self = .other(name)
        }
    }
}
