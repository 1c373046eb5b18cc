// The handle a request handler answers through. It may be called from any thread, at any
// time; the first response is sent, later ones are ignored. A responder whose connection has
// closed drops its response.

import Synchronization

public final class HTTPResponder: Sendable {
    let answered = Atomic<Bool>(false)
    let deliver: @Sendable (HTTPResponse) -> Void

    /// A responder that hands the response to `deliver` (once). The server makes its own;
    /// this one is for calling handlers without a socket, e.g. in tests.
    public init(_ deliver: @escaping @Sendable (HTTPResponse) -> Void) {
        self.deliver = deliver
    }

    /// Sends `response` unless a response was already sent.
    public func respond(_ response: HTTPResponse) {
        guard answered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        deliver(response)
    }

    public var hasResponded: Bool {
        answered.load(ordering: .acquiring)
    }
}
