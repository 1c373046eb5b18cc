// Starting a plain OS thread without Foundation, for the few long-lived service threads
// (the record log's writer for async appenders).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a detached thread running `body`.
public func startDetachedThread(_ body: @escaping @Sendable () -> Void) {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    #if canImport(Glibc)
    var thread = pthread_t()
    #else
    var thread: pthread_t?
    #endif
    let status = pthread_create(&thread, nil, { argument in
        let body = Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue()
        body.run()
        return nil
    }, box)
    precondition(status == 0, "pthread_create failed: \(status)")
    #if canImport(Glibc)
    pthread_detach(thread)
    #else
    pthread_detach(thread!)
    #endif
}


/// Runs `body(0) … body(threads − 1)`, each on a thread of its own (`body(0)` on the caller's),
/// and returns when all have finished.
public func runConcurrently(threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    guard threads > 1 else {
        if threads == 1 { body(0) }
        return
    }
    let done = ConditionLock()
    nonisolated(unsafe) var remaining = threads - 1
    for index in 1..<threads {
        startDetachedThread {
            body(index)
            done.withLock {
                remaining -= 1
                done.broadcast()
            }
        }
    }
    body(0)
    done.withLock {
        while remaining > 0 { done.wait() }
    }
}
