// `.ownThread`: runs a test (or every test of a suite) in the "heavy lane" — a task executor
// with two threads of its own — instead of on Swift's cooperative pool.
//
// Swift Testing runs tests in parallel on the cooperative pool, which has one thread per core —
// two on CI. A synchronous test that computes for seconds holds one of them the whole time; two
// such tests at once hold both, and every async test (an RPC server's handler tasks, a client's
// continuations) waits until they finish. Under the full suite that starved an RPC test past a
// 60-second deadline on CI. Tests that compute for long carry this trait: they queue for the
// lane's two threads, and the pool stays free for the async tests. (A thread per test was tried
// first: twenty CPU-bound threads then starved the event loops at the operating-system level.)

import Basics
import Testing

/// A task executor with a fixed set of threads taking jobs from one queue.
final class ThreadLaneExecutor: TaskExecutor, @unchecked Sendable {
    private let lock = ConditionLock()
    private var jobs: [UnownedJob] = []
    private var head = 0

    init(threads: Int) {
        for _ in 0..<threads { startDetachedThread { [self] in run() } }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.withLock {
            jobs.append(job)
            lock.signal()
        }
    }

    private func run() {
        while true {
            let job: UnownedJob = lock.withLock {
                while head == jobs.count { lock.wait() }
                let job = jobs[head]
                head += 1
                if head == jobs.count {
                    jobs.removeAll(keepingCapacity: true)
                    head = 0
                }
                return job
            }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// The process's heavy lane (its threads live as long as the test process).
    static let heavyLane = ThreadLaneExecutor(threads: 2)
}

public struct OwnThreadTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        // Once per test case (a test that is not parameterised has one), never for a suite.
        testCase == nil ? nil : self
    }

    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(ThreadLaneExecutor.heavyLane) { try await function() }
    }
}

extension Trait where Self == OwnThreadTrait {
    /// Runs the test's body in the heavy lane, off the cooperative pool (see the file's
    /// comment): for tests that compute for long.
    public static var ownThread: Self { OwnThreadTrait() }
}
