// A mutex with one condition variable, for the few places (group commit, bounded queues) where
// threads must block until another thread changes shared state. `Synchronization.Mutex` has no
// condition variable, so this wraps pthreads directly. Allocated once, never moved.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        let mutexStatus = pthread_mutex_init(mutex, nil)
        precondition(mutexStatus == 0, "pthread_mutex_init failed: \(mutexStatus)")
        // Timed waits measure against the monotonic clock, not the wall clock.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        let conditionStatus = pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
        precondition(conditionStatus == 0, "pthread_cond_init failed: \(conditionStatus)")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    /// Waits for a broadcast or signal; the lock must be held and is held again on return.
    public func wait() { pthread_cond_wait(condition, mutex) }
    /// Waits for a broadcast or signal, or until `timeout` has passed (the lock held, as in
    /// `wait()`). Spurious wake-ups happen: callers loop on their condition.
    public func wait(timeout: Duration) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = max(timeout, .zero).components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var deadline = timespec(tv_sec: now.tv_sec + Int(clamping: seconds) + nanoseconds / 1_000_000_000, tv_nsec: 0)
        nanoseconds %= 1_000_000_000
        deadline.tv_nsec = nanoseconds
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }

    @inlinable
    public func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A one-shot event that one thread waits on and another sets: a parked appender in the group
/// commit queue. Cheaper to reason about than a semaphore because it can only be set once.
public final class Event: @unchecked Sendable {
    private let lock = ConditionLock()
    private var isSet = false

    public init() {}

    public func set() {
        lock.lock()
        isSet = true
        lock.signal()
        lock.unlock()
    }

    public func wait() {
        lock.lock()
        while !isSet { lock.wait() }
        isSet = false
        lock.unlock()
    }
}

/// A readers–writer lock (pthreads): many readers at once, or one writer.
public final class ReadWriteLock: @unchecked Sendable {
    private let rwlock: UnsafeMutablePointer<pthread_rwlock_t>

    public init() {
        rwlock = .allocate(capacity: 1)
        let status = pthread_rwlock_init(rwlock, nil)
        precondition(status == 0, "pthread_rwlock_init failed: \(status)")
    }

    deinit {
        pthread_rwlock_destroy(rwlock)
        rwlock.deallocate()
    }

    @inlinable
    public func withReadLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lockShared()
        defer { unlock() }
        return try body()
    }

    @inlinable
    public func withWriteLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lockExclusive()
        defer { unlock() }
        return try body()
    }

    public func lockShared() { pthread_rwlock_rdlock(rwlock) }
    public func lockExclusive() { pthread_rwlock_wrlock(rwlock) }
    public func unlock() { pthread_rwlock_unlock(rwlock) }
}

/// A fixed array of mutexes for fine-grained locking of many small objects (an object with
/// number `n` uses mutex `n % count`). Allocated once, never moved.
public final class StripedLocks: @unchecked Sendable {
    private let mutexes: UnsafeMutablePointer<pthread_mutex_t>
    public let count: Int

    public init(count: Int) {
        precondition(count > 0)
        self.count = count
        mutexes = .allocate(capacity: count)
        for index in 0..<count {
            let status = pthread_mutex_init(mutexes + index, nil)
            precondition(status == 0, "pthread_mutex_init failed: \(status)")
        }
    }

    deinit {
        for index in 0..<count { pthread_mutex_destroy(mutexes + index) }
        mutexes.deallocate()
    }

    @inline(__always) public func lock(_ number: Int) { pthread_mutex_lock(mutexes + number % count) }
    @inline(__always) public func unlock(_ number: Int) { pthread_mutex_unlock(mutexes + number % count) }

    @inline(__always)
    public func withLock<T, E: Error>(_ number: Int, _ body: () throws(E) -> T) throws(E) -> T {
        lock(number)
        defer { unlock(number) }
        return try body()
    }
}
