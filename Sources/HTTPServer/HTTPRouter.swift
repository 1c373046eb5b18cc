// Maps (method, path segments) to a handler value. Patterns are "/"-separated; a segment
// "{name}" captures any one segment as parameter `name`, anything else must match exactly.
// A literal segment wins over a parameter at the same position (with backtracking, so
// "/a/{x}/c" still matches "/a/b/c" when "/a/b/d" exists). A path that matches a pattern but not
// its methods is `.methodNotAllowed` with the allowed methods (for the Allow header). HEAD falls
// back to the GET handler (the server sends no body for HEAD).
//
// Match on `HTTPRequest.pathSegments`: they are split before percent-decoding, so an encoded
// "/" stays inside its segment.

public enum RouteMatch<Context> {
    case found(Context, params: [String: String])
    case notFound
    case methodNotAllowed(allowed: [HTTPMethod])
}

extension RouteMatch: Sendable where Context: Sendable {}

public struct HTTPRouter<Context> {
    struct Node {
        var literals: [String: Int] = [:]
        var parameter: (name: String, node: Int)?
        var handlers: [(HTTPMethod, Context)] = []
    }

    /// Nodes of the pattern tree; 0 is the root.
    var nodes: [Node] = [Node()]

    public init() {}

    /// Adds a route. Adding the same method and pattern twice, or two parameter names at one
    /// position, is a programmer error.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, _ handler: Context) {
        var node = 0
        for segment in pattern.split(separator: "/", omittingEmptySubsequences: true) {
            if segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count > 2 {
                let name = String(segment.dropFirst().dropLast())
                if let existing = nodes[node].parameter {
                    precondition(existing.name == name, "route \(pattern): parameter {\(name)} clashes with {\(existing.name)}")
                    node = existing.node
                } else {
                    nodes.append(Node())
                    nodes[node].parameter = (name, nodes.count - 1)
                    node = nodes.count - 1
                }
            } else if let next = nodes[node].literals[String(segment)] {
                node = next
            } else {
                nodes.append(Node())
                nodes[node].literals[String(segment)] = nodes.count - 1
                node = nodes.count - 1
            }
        }
        precondition(!nodes[node].handlers.contains { $0.0 == method }, "route \(method) \(pattern) added twice")
        nodes[node].handlers.append((method, handler))
    }

    /// The route for `method` and already-split path `segments`.
    public func match(method: HTTPMethod, segments: [String]) -> RouteMatch<Context> {
        var values: [String] = []
        var names: [String] = []
        guard let node = find(0, segments[...], &names, &values) else { return .notFound }
        let handlers = nodes[node].handlers
        let chosen = handlers.first { $0.0 == method } ?? (method == .head ? handlers.first { $0.0 == .get } : nil)
        guard let chosen else {
            var allowed = handlers.map(\.0)
            if allowed.contains(.get) && !allowed.contains(.head) { allowed.append(.head) }
            return .methodNotAllowed(allowed: allowed)
        }
        var params: [String: String] = [:]
        for (name, value) in zip(names, values) { params[name] = value }
        return .found(chosen.1, params: params)
    }

    /// The route for `request` (its method and `pathSegments`).
    public func match(_ request: HTTPRequest) -> RouteMatch<Context> {
        match(method: request.method, segments: request.pathSegments)
    }

    /// The route for a decoded `path`, split on "/". It cannot tell an encoded "/" from a
    /// separator: prefer `match(_:)` or `match(method:segments:)` for requests.
    public func match(method: HTTPMethod, path: String) -> RouteMatch<Context> {
        match(method: method, segments: path.split(separator: "/", omittingEmptySubsequences: true).map(String.init))
    }

    /// The node that `segments` lead to from `node` that has handlers; literal first.
    func find(_ node: Int, _ segments: ArraySlice<String>, _ names: inout [String], _ values: inout [String]) -> Int? {
        guard let segment = segments.first else {
            return nodes[node].handlers.isEmpty ? nil : node
        }
        let rest = segments.dropFirst()
        if let next = nodes[node].literals[segment], let found = find(next, rest, &names, &values) {
            return found
        }
        if let parameter = nodes[node].parameter, !segment.isEmpty {
            names.append(parameter.name)
            values.append(segment)
            if let found = find(parameter.node, rest, &names, &values) { return found }
            names.removeLast()
            values.removeLast()
        }
        return nil
    }
}

extension HTTPRouter: Sendable where Context: Sendable {}
extension HTTPRouter.Node: Sendable where Context: Sendable {}
