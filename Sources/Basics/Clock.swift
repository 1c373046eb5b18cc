// Monotonic and wall-clock readings, taken in one place so that simulated code can avoid them.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum MonotonicClock {
    /// Nanoseconds from an arbitrary fixed point; never goes backwards.
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

public enum WallClock {
    /// Nanoseconds since the Unix epoch. Informational only (for example a segment's creation
    /// time): nothing correct may depend on it.
    public static func unixNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
