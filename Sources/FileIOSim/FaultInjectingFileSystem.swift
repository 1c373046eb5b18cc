// Wraps any `FileSystem` and fails chosen operations: EIO, ENOSPC, torn writes, bit flips and
// slow I/O, chosen by seeded predicates (operation kind, path, the nth matching call,
// probability). Rules can be changed while the wrapped system is in use, so a test can let a
// component start cleanly and then turn faults on.

import Basics
import FileIO
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public enum FileOperation: String, Sendable, CaseIterable {
    case open, read, write, sync, dataSync, truncate, allocate, size, remove, rename, list, createDirectory, syncDirectory, lock
}

public enum Fault: Sendable, Equatable {
    /// The operation fails with this error kind and has no effect.
    case error(FileIOError.Kind)
    /// A write stores a random prefix of its bytes, then fails with EIO.
    case tornWrite
    /// A read returns its data with one random bit flipped; a write silently stores its bytes
    /// with one random bit flipped.
    case bitFlip
    /// The operation succeeds after this many microseconds.
    case slow(microseconds: UInt32)
}

public struct FaultRule: Sendable {
    public var operations: Set<FileOperation>
    /// Only paths containing this string (nil: any path).
    public var pathContains: String?
    /// Only the nth matching call (1-based), counted per rule (nil: every matching call).
    public var nthCall: Int?
    /// With `nthCall`: the nth matching call and every one after it — a process that died there
    /// and never writes again.
    public var andAfter = false
    /// Probability that a matching call is failed.
    public var probability: Double
    /// Stop after injecting this many faults (nil: no limit).
    public var limit: Int?
    public var fault: Fault

    public init(_ operations: Set<FileOperation>, pathContains: String? = nil, nthCall: Int? = nil, andAfter: Bool = false,
                probability: Double = 1, limit: Int? = nil, fault: Fault) {
        self.operations = operations
        self.pathContains = pathContains
        self.nthCall = nthCall
        self.andAfter = andAfter
        self.probability = probability
        self.limit = limit
        self.fault = fault
    }
}

public final class FaultInjectingFileSystem: FileSystem, @unchecked Sendable {
    public let base: any FileSystem

    struct State {
        var rules: [FaultRule] = []
        var matchedCalls: [Int] = []
        var injectedPerRule: [Int] = []
        var injected: Int = 0
        var random: SeededRandom
    }
    let state: Mutex<State>

    public init(wrapping base: any FileSystem, seed: UInt64, rules: [FaultRule] = []) {
        self.base = base
        state = Mutex(State(random: SeededRandom(seed: seed)))
        setRules(rules)
    }

    public func setRules(_ rules: [FaultRule]) {
        state.withLock { s in
            s.rules = rules
            s.matchedCalls = Array(repeating: 0, count: rules.count)
            s.injectedPerRule = Array(repeating: 0, count: rules.count)
        }
    }

    /// Number of faults injected so far.
    public var injectedCount: Int { state.withLock { $0.injected } }

    /// Decides whether this call fails, and how; also draws the random numbers a fault needs.
    func decide(_ operation: FileOperation, _ path: String) -> (Fault, UInt64)? {
        state.withLock { s in
            for index in s.rules.indices {
                let rule = s.rules[index]
                guard rule.operations.contains(operation) else { continue }
                if let needle = rule.pathContains, !path.contains(needle) { continue }
                if let limit = rule.limit, s.injectedPerRule[index] >= limit { continue }
                s.matchedCalls[index] += 1
                if let nth = rule.nthCall, rule.andAfter ? s.matchedCalls[index] < nth : s.matchedCalls[index] != nth { continue }
                guard s.random.chance(rule.probability) else { continue }
                s.injectedPerRule[index] += 1
                s.injected += 1
                return (rule.fault, s.random.next())
            }
            return nil
        }
    }

    /// Applies a fault that is not specific to reads or writes; returns true if handled.
    func injectSimple(_ operation: FileOperation, _ path: String) throws(FileIOError) {
        guard let (fault, _) = decide(operation, path) else { return }
        switch fault {
        case let .error(kind): throw FileIOError(kind, operation: operation.rawValue, path: path, errno: errnoFor(kind))
        case .tornWrite: throw FileIOError(.io, operation: operation.rawValue, path: path, errno: EIO)
        case .bitFlip: return
        case let .slow(microseconds): usleep(microseconds)
        }
    }

    public func open(_ path: String, options: OpenOptions) throws(FileIOError) -> any FileHandle {
        try injectSimple(.open, path)
        return FaultInjectingFileHandle(base: try base.open(path, options: options), owner: self)
    }

    public func remove(_ path: String) throws(FileIOError) {
        try injectSimple(.remove, path)
        try base.remove(path)
    }

    public func rename(_ source: String, to destination: String) throws(FileIOError) {
        try injectSimple(.rename, source)
        try base.rename(source, to: destination)
    }

    public func list(_ directory: String) throws(FileIOError) -> [String] {
        try injectSimple(.list, directory)
        return try base.list(directory)
    }

    public func createDirectory(_ path: String) throws(FileIOError) {
        try injectSimple(.createDirectory, path)
        try base.createDirectory(path)
    }

    public func syncDirectory(_ path: String) throws(FileIOError) {
        try injectSimple(.syncDirectory, path)
        try base.syncDirectory(path)
    }

    public func fileExists(_ path: String) -> Bool { base.fileExists(path) }
    public func isDirectory(_ path: String) -> Bool { base.isDirectory(path) }

    public func lock(_ path: String) throws(FileIOError) -> any FileLock {
        try injectSimple(.lock, path)
        return try base.lock(path)
    }
}

final class FaultInjectingFileHandle: FileHandle, @unchecked Sendable {
    let base: any FileHandle
    let owner: FaultInjectingFileSystem
    var path: String { base.path }

    init(base: any FileHandle, owner: FaultInjectingFileSystem) {
        self.base = base
        self.owner = owner
    }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileIOError) -> Int {
        guard let (fault, random) = owner.decide(.read, path) else { return try base.read(at: offset, into: buffer) }
        switch fault {
        case let .error(kind): throw FileIOError(kind, operation: "pread", path: path, errno: errnoFor(kind))
        case .tornWrite: throw FileIOError(.io, operation: "pread", path: path, errno: EIO)
        case .bitFlip:
            let n = try base.read(at: offset, into: buffer)
            if n > 0 {
                let bit = Int(random % UInt64(n * 8))
                buffer[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            }
            return n
        case let .slow(microseconds):
            usleep(microseconds)
            return try base.read(at: offset, into: buffer)
        }
    }

    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws(FileIOError) {
        guard let (fault, random) = owner.decide(.write, path) else { return try base.write(at: offset, bytes) }
        switch fault {
        case let .error(kind): throw FileIOError(kind, operation: "pwrite", path: path, errno: errnoFor(kind))
        case .tornWrite:
            let kept = bytes.isEmpty ? 0 : Int(random % UInt64(bytes.count))
            try base.write(at: offset, UnsafeRawBufferPointer(rebasing: bytes[..<kept]))
            throw FileIOError(.io, operation: "pwrite", path: path, errno: EIO)
        case .bitFlip:
            var copy = [UInt8](bytes)
            if !copy.isEmpty {
                let bit = Int(random % UInt64(copy.count * 8))
                copy[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
            }
            try base.write(at: offset, copy)
        case let .slow(microseconds):
            usleep(microseconds)
            try base.write(at: offset, bytes)
        }
    }

    func sync() throws(FileIOError) {
        try owner.injectSimple(.sync, path)
        try base.sync()
    }

    func dataSync() throws(FileIOError) {
        try owner.injectSimple(.dataSync, path)
        try base.dataSync()
    }

    func truncate(to size: UInt64) throws(FileIOError) {
        try owner.injectSimple(.truncate, path)
        try base.truncate(to: size)
    }

    func allocate(size: UInt64) throws(FileIOError) {
        try owner.injectSimple(.allocate, path)
        try base.allocate(size: size)
    }

    func size() throws(FileIOError) -> UInt64 {
        try owner.injectSimple(.size, path)
        return try base.size()
    }

    func close() { base.close() }
}

func errnoFor(_ kind: FileIOError.Kind) -> Int32 {
    switch kind {
    case .noSpace: return ENOSPC
    case .io: return EIO
    case .notFound: return ENOENT
    case .permissionDenied: return EACCES
    default: return EIO
    }
}
