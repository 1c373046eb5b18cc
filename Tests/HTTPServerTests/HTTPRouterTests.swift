// The router and request-target decoding, without sockets.

import HTTPServer
import Testing

@Suite struct HTTPRouterTests {
    func router() -> HTTPRouter<String> {
        var router = HTTPRouter<String>()
        router.add(.get, "/collections", "list")
        router.add(.put, "/collections/{name}", "create")
        router.add(.get, "/collections/{name}", "info")
        router.add(.delete, "/collections/{name}", "drop")
        router.add(.put, "/collections/{name}/points", "upsert")
        router.add(.get, "/collections/{name}/points/{id}", "point")
        router.add(.post, "/collections/{name}/points/search", "search")
        router.add(.get, "/collections/special/points/{id}", "special")
        return router
    }

    func found(_ match: RouteMatch<String>) -> (String, [String: String])? {
        if case .found(let handler, let params) = match { return (handler, params) }
        return nil
    }

    @Test func matchesLiteralsAndCapturesParameters() {
        let router = router()
        #expect(found(router.match(method: .get, path: "/collections"))?.0 == "list")
        let info = found(router.match(method: .get, path: "/collections/movies"))
        #expect(info?.0 == "info" && info?.1 == ["name": "movies"])
        let point = found(router.match(method: .get, path: "/collections/movies/points/42"))
        #expect(point?.0 == "point" && point?.1 == ["name": "movies", "id": "42"])
        #expect(found(router.match(method: .post, path: "/collections/movies/points/search"))?.0 == "search")
        // A literal wins; backtracking still finds the parameter route.
        #expect(found(router.match(method: .get, path: "/collections/special/points/1"))?.0 == "special")
        let backtracked = found(router.match(method: .put, path: "/collections/special/points"))
        #expect(backtracked?.0 == "upsert" && backtracked?.1 == ["name": "special"])
    }

    @Test func unknownPathsAre404AndWrongMethods405WithAllowed() {
        let router = router()
        guard case .notFound = router.match(method: .get, path: "/nothing") else { Issue.record("expected 404"); return }
        guard case .notFound = router.match(method: .get, path: "/collections/a/b/c/d") else { Issue.record("expected 404"); return }
        guard case .methodNotAllowed(let allowed) = router.match(method: .post, path: "/collections/movies") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == [.put, .get, .delete, .head])
        // HEAD falls back to GET.
        #expect(found(router.match(method: .head, path: "/collections/movies"))?.0 == "info")
    }

    @Test func encodedSlashStaysInOneSegment() throws {
        let router = router()
        let request = try #require(HTTPRequest(method: .get, target: "/collections/a%2Fb/points/x%20y?with=%26amp"))
        #expect(request.path == "/collections/a/b/points/x y")
        #expect(request.pathSegments == ["collections", "a/b", "points", "x y"])
        #expect(request.queryValue("with") == "&amp")
        let point = found(router.match(request))
        #expect(point?.0 == "point" && point?.1 == ["name": "a/b", "id": "x y"])
        #expect(HTTPRequest(method: .get, target: "/bad%2") == nil)
        #expect(HTTPRequest(method: .get, target: "/bad%C3%28") == nil)
        #expect(HTTPRequest(method: .get, target: "/")?.pathSegments == [])
        #expect(HTTPRequest(method: .get, target: "http://host:80/a/b?c=d")?.pathSegments == ["a", "b"])
        #expect(HTTPRequest(method: .get, target: "/caf%C3%A9")?.path == "/café")
    }

    @Test func methodsRoundTripThroughTheirNames() {
        for method in [HTTPMethod.get, .put, .post, .delete, .patch, .head, .options, .other("PROPFIND")] {
            #expect(HTTPMethod(method.description) == method)
        }
    }

    @Test func errorBodiesAreEscapedJSON() {
        let response = HTTPResponse.error(status: 400, message: "bad \"x\"\n\u{01}")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"status":{"error":"bad \"x\"\n\u0001"},"time":0}"#)
        #expect(response.headers.first?.1 == "application/json")
    }
}
