// Shared test helpers. Lives under Tests/ as a library target that only test targets depend on.

import Testing

/// The error of type `E` a body throws, or nil if it succeeds; any other error is recorded as
/// an issue at the caller's location. (Untyped bodies, so closures inside `#expect` need no
/// annotation.)
public func thrownError<E: Error, T>(
    _ type: E.Type, _ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation
) -> E? {
    do {
        _ = try body()
        return nil
    } catch let error as E {
        return error
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
