// An in-memory file system that knows which bytes are durable and can crash.
//
// It follows the durability contract of `FileSystem` to the letter, and no more: every write is
// remembered as "pending" until the file is synced; every directory change (create, rename,
// remove) is pending until its directory is synced. `crashClone(seed:)` returns the file system
// a machine would find after power loss at this instant: every synced byte is kept, each
// pending write is kept or dropped at random (seeded), the last pending write of a file may be
// torn (a prefix kept, the rest missing or zero), and each directory keeps a random prefix of
// its pending changes (a journalled file system applies them in order).
//
// Directories themselves are durable as soon as they are created (simplification: Vectron
// creates its directories once, before any data, and syncs their parents).

import Basics
import FileIO
import Synchronization

public struct CrashOptions: Sendable {
    /// Probability that a pending (unsynced) write survives the crash.
    public var keepWriteProbability: Double = 0.5
    /// Probability that a surviving last pending write of a file is torn.
    public var tearProbability: Double = 0.5
    /// Probability that a torn write leaves zeros (instead of nothing) after its kept prefix,
    /// as a file system that extended the size before writing the data would.
    public var zeroFillTornProbability: Double = 0.3

    public init(keepWriteProbability: Double = 0.5, tearProbability: Double = 0.5, zeroFillTornProbability: Double = 0.3) {
        self.keepWriteProbability = keepWriteProbability
        self.tearProbability = tearProbability
        self.zeroFillTornProbability = zeroFillTornProbability
    }
}

public final class MemoryFileSystem: FileSystem, @unchecked Sendable {
    final class Inode: @unchecked Sendable {  // guarded by `state`
        var data: [UInt8] = []
        /// Changes since the last sync, in order, each with what it replaced, so that the
        /// durable content (`data` with every pending change undone) is never stored as a
        /// second copy: syncing a large file costs nothing.
        var pending: [PendingChange] = []

        /// What survives a crash for sure: `data` with the pending changes undone.
        var durable: [UInt8] {
            var content = data
            for change in pending.reversed() {
                switch change {
                case let .write(offset, bytes, replaced, previousSize):
                    content.replaceSubrange(offset..<(offset + replaced.count), with: replaced)
                    if content.count > previousSize { content.removeSubrange(previousSize...) }
                    _ = bytes
                case let .truncate(_, previousSize, removed):
                    if content.count > previousSize { content.removeSubrange(previousSize...) }
                    content.append(contentsOf: removed)
                }
            }
            return content
        }

        /// Applies a write to `data`, remembering what it replaced.
        func write(at offset: Int, _ bytes: [UInt8]) {
            let previousSize = data.count
            let end = offset + bytes.count
            let replaced = offset < data.count ? Array(data[offset..<min(end, data.count)]) : []
            if data.count < end { data.append(contentsOf: repeatElement(0, count: end - data.count)) }
            data.replaceSubrange(offset..<end, with: bytes)
            pending.append(.write(offset: offset, bytes: bytes, replaced: replaced, previousSize: previousSize))
        }

        /// Changes the size of `data` (cut, or extended with zeros), remembering what it removed.
        func resize(to size: Int) {
            let previousSize = data.count
            var removed: [UInt8] = []
            if size < data.count {
                removed = Array(data[size...])
                data.removeSubrange(size...)
            } else {
                data.append(contentsOf: repeatElement(0, count: size - data.count))
            }
            pending.append(.truncate(size: size, previousSize: previousSize, removed: removed))
        }
    }

    enum PendingChange {
        case write(offset: Int, bytes: [UInt8], replaced: [UInt8], previousSize: Int)
        case truncate(size: Int, previousSize: Int, removed: [UInt8])
    }

    enum DirectoryChange {
        case link(name: String, inode: Inode)
        case unlink(name: String)
    }

    struct State {
        var files: [String: Inode] = [:]
        var directories: Set<String> = ["/", "."]
        /// Directory path -> name -> inode, as it would be found after a crash.
        var durableFiles: [String: [String: Inode]] = [:]
        var pendingDirectoryChanges: [String: [DirectoryChange]] = [:]
        var locks: Set<String> = []
    }

    let state = Mutex(State())

    public init() {}

    // MARK: FileSystem

    public func open(_ path: String, options: OpenOptions) throws(FileIOError) -> any FileHandle {
        let path = normalize(path)
        let inode: Inode
        do {
            inode = try state.withLock { (s) throws(FileIOError) -> Inode in
                let parent = parentDirectory(of: path)
                guard s.directories.contains(parent) else { throw FileIOError(.notFound, operation: "open", path: path) }
                if s.directories.contains(path) { throw FileIOError(.isDirectory, operation: "open", path: path) }
                if let existing = s.files[path] {
                    if options.contains(.create) && options.contains(.exclusive) {
                        throw FileIOError(.alreadyExists, operation: "open", path: path)
                    }
                    if options.contains(.truncate) { existing.resize(to: 0) }
                    return existing
                }
                guard options.contains(.create) else { throw FileIOError(.notFound, operation: "open", path: path) }
                let created = Inode()
                s.files[path] = created
                s.pendingDirectoryChanges[parent, default: []].append(.link(name: fileName(of: path), inode: created))
                return created
            }
        }
        return MemoryFileHandle(fileSystem: self, inode: inode, path: path, writable: options.contains(.write))
    }

    public func remove(_ path: String) throws(FileIOError) {
        let path = normalize(path)
        try state.withLock { (s) throws(FileIOError) in
            guard s.files.removeValue(forKey: path) != nil else {
                if s.directories.contains(path) {
                    let prefix = path + "/"
                    if s.files.keys.contains(where: { $0.hasPrefix(prefix) }) || s.directories.contains(where: { $0.hasPrefix(prefix) }) {
                        throw FileIOError(.notEmpty, operation: "remove", path: path)
                    }
                    s.directories.remove(path)
                    return
                }
                throw FileIOError(.notFound, operation: "remove", path: path)
            }
            s.pendingDirectoryChanges[parentDirectory(of: path), default: []].append(.unlink(name: fileName(of: path)))
        }
    }

    public func rename(_ source: String, to destination: String) throws(FileIOError) {
        let source = normalize(source), destination = normalize(destination)
        try state.withLock { (s) throws(FileIOError) in
            guard let inode = s.files[source] else { throw FileIOError(.notFound, operation: "rename", path: source) }
            guard s.directories.contains(parentDirectory(of: destination)) else {
                throw FileIOError(.notFound, operation: "rename", path: destination)
            }
            if source == destination { return }
            s.files[source] = nil
            s.files[destination] = inode
            // Order matters for a journalled crash: the new name appears before the old goes.
            s.pendingDirectoryChanges[parentDirectory(of: destination), default: []]
                .append(.link(name: fileName(of: destination), inode: inode))
            s.pendingDirectoryChanges[parentDirectory(of: source), default: []]
                .append(.unlink(name: fileName(of: source)))
        }
    }

    public func list(_ directory: String) throws(FileIOError) -> [String] {
        let directory = normalize(directory)
        return try state.withLock { (s) throws(FileIOError) -> [String] in
            guard s.directories.contains(directory) else { throw FileIOError(.notFound, operation: "list", path: directory) }
            var names: [String] = []
            for path in s.files.keys where parentDirectory(of: path) == directory { names.append(fileName(of: path)) }
            for path in s.directories where path != directory && parentDirectory(of: path) == directory {
                names.append(fileName(of: path))
            }
            return names.sorted()
        }
    }

    public func createDirectory(_ path: String) throws(FileIOError) {
        let path = normalize(path)
        try state.withLock { (s) throws(FileIOError) in
            var current = path
            var toCreate: [String] = []
            while !s.directories.contains(current) {
                if s.files[current] != nil { throw FileIOError(.notDirectory, operation: "mkdir", path: current) }
                toCreate.append(current)
                let parent = parentDirectory(of: current)
                if parent == current { break }
                current = parent
            }
            for directory in toCreate { s.directories.insert(directory) }
        }
    }

    public func syncDirectory(_ path: String) throws(FileIOError) {
        let path = normalize(path)
        try state.withLock { (s) throws(FileIOError) in
            guard s.directories.contains(path) else { throw FileIOError(.notFound, operation: "fsync", path: path) }
            let changes = s.pendingDirectoryChanges.removeValue(forKey: path) ?? []
            for change in changes { apply(change, to: &s.durableFiles[path, default: [:]]) }
        }
    }

    public func fileExists(_ path: String) -> Bool {
        let path = normalize(path)
        return state.withLock { $0.files[path] != nil || $0.directories.contains(path) }
    }

    public func isDirectory(_ path: String) -> Bool {
        let path = normalize(path)
        return state.withLock { $0.directories.contains(path) }
    }

    public func lock(_ path: String) throws(FileIOError) -> any FileLock {
        let path = normalize(path)
        try state.withLock { (s) throws(FileIOError) in
            guard s.directories.contains(parentDirectory(of: path)) else { throw FileIOError(.notFound, operation: "open", path: path) }
            guard s.locks.insert(path).inserted else { throw FileIOError(.locked, operation: "flock", path: path) }
            // Like flock(2) on a file opened with O_CREAT: the lock file exists afterwards.
            if s.files[path] == nil {
                let inode = Inode()
                s.files[path] = inode
                s.pendingDirectoryChanges[parentDirectory(of: path), default: []].append(.link(name: fileName(of: path), inode: inode))
            }
        }
        return MemoryFileLock(fileSystem: self, path: path)
    }

    // MARK: Crash simulation

    /// The file system as it would be found after a power loss now. `self` is not changed.
    public func crashClone(seed: UInt64, options: CrashOptions = CrashOptions()) -> MemoryFileSystem {
        var random = SeededRandom(seed: seed)
        let clone = MemoryFileSystem()
        state.withLock { s in
            var cloneState = State()
            cloneState.directories = s.directories
            var copies: [ObjectIdentifier: Inode] = [:]
            // Sort for determinism: dictionary order varies between processes.
            var allDirectories = Set(s.durableFiles.keys)
            allDirectories.formUnion(s.pendingDirectoryChanges.keys)
            for directory in allDirectories.sorted() {
                var entries = s.durableFiles[directory] ?? [:]
                let pending = s.pendingDirectoryChanges[directory] ?? []
                let keep = pending.isEmpty ? 0 : Int(random.next() % UInt64(pending.count + 1))
                for change in pending.prefix(keep) { apply(change, to: &entries) }
                for name in entries.keys.sorted() {
                    let inode = entries[name]!
                    let copy: Inode
                    if let existing = copies[ObjectIdentifier(inode)] {
                        copy = existing
                    } else {
                        copy = Inode()
                        copy.data = Self.survivingContent(of: inode, random: &random, options: options)
                        copies[ObjectIdentifier(inode)] = copy
                    }
                    cloneState.files[joinPath(directory, name)] = copy
                    cloneState.durableFiles[directory, default: [:]][name] = copy
                }
            }
            clone.state.withLock { $0 = cloneState }
        }
        return clone
    }

    static func survivingContent(of inode: Inode, random: inout SeededRandom, options: CrashOptions) -> [UInt8] {
        var content = inode.durable
        for (position, change) in inode.pending.enumerated() {
            guard random.chance(options.keepWriteProbability) else { continue }
            switch change {
            case let .truncate(size, _, _):
                if size < content.count { content.removeSubrange(size...) }
                else { content.append(contentsOf: repeatElement(0, count: size - content.count)) }
            case let .write(offset, bytes, _, _):
                var kept = bytes[...]
                var zeroFill = 0
                if position == inode.pending.count - 1, !bytes.isEmpty, random.chance(options.tearProbability) {
                    let length = Int(random.next() % UInt64(bytes.count))
                    kept = bytes[..<length]
                    if random.chance(options.zeroFillTornProbability) { zeroFill = bytes.count - length }
                }
                let end = offset + kept.count + zeroFill
                if content.count < end { content.append(contentsOf: repeatElement(0, count: end - content.count)) }
                content.replaceSubrange(offset..<(offset + kept.count), with: kept)
                if zeroFill > 0 {
                    content.replaceSubrange((offset + kept.count)..<end, with: repeatElement(0, count: zeroFill))
                }
            }
        }
        return content
    }

    /// Number of files with unsynced writes, and directories with unsynced changes.
    public var pendingChangeCount: Int {
        state.withLock { s in
            s.files.values.filter { !$0.pending.isEmpty }.count + s.pendingDirectoryChanges.values.filter { !$0.isEmpty }.count
        }
    }

    // MARK: Direct access for tests and tools

    /// The current visible contents of a file (nil if it does not exist).
    public func contents(of path: String) -> [UInt8]? {
        let path = normalize(path)
        return state.withLock { $0.files[path]?.data }
    }

    /// Replaces a file's contents durably (for tests that corrupt files on purpose).
    public func setContents(of path: String, _ bytes: [UInt8]) {
        let path = normalize(path)
        state.withLock { s in
            if let inode = s.files[path] {
                inode.data = bytes
                inode.pending = []
            } else {
                let inode = Inode()
                inode.data = bytes
                s.files[path] = inode
                s.durableFiles[parentDirectory(of: path), default: [:]][fileName(of: path)] = inode
            }
        }
    }

    func unlock(_ path: String) {
        _ = state.withLock { $0.locks.remove(path) }
    }

    func apply(_ change: DirectoryChange, to entries: inout [String: Inode]) {
        switch change {
        case let .link(name, inode): entries[name] = inode
        case let .unlink(name): entries[name] = nil
        }
    }

    func normalize(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        if p.isEmpty { return "." }
        return p
    }
}

final class MemoryFileLock: FileLock, @unchecked Sendable {
    let fileSystem: MemoryFileSystem
    let path: String
    let released = Mutex(false)

    init(fileSystem: MemoryFileSystem, path: String) {
        self.fileSystem = fileSystem
        self.path = path
    }

    func unlock() {
        let wasReleased = released.withLock { (r: inout Bool) -> Bool in
            defer { r = true }
            return r
        }
        if !wasReleased { fileSystem.unlock(path) }
    }

    deinit { unlock() }
}

final class MemoryFileHandle: FileHandle, @unchecked Sendable {
    let fileSystem: MemoryFileSystem
    let inode: MemoryFileSystem.Inode
    let path: String
    let writable: Bool

    init(fileSystem: MemoryFileSystem, inode: MemoryFileSystem.Inode, path: String, writable: Bool) {
        self.fileSystem = fileSystem
        self.inode = inode
        self.path = path
        self.writable = writable
    }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileIOError) -> Int {
        guard !buffer.isEmpty else { return 0 }
        return fileSystem.state.withLock { _ in
            let data = inode.data
            guard offset < UInt64(data.count) else { return 0 }
            let start = Int(offset)
            let n = min(buffer.count, data.count - start)
            data.withUnsafeBytes { source in
                buffer.baseAddress!.copyMemory(from: source.baseAddress! + start, byteCount: n)
            }
            return n
        }
    }

    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws(FileIOError) {
        guard writable else { throw FileIOError(.permissionDenied, operation: "pwrite", path: path) }
        // As with pwrite(2), writing nothing changes nothing, not even the size.
        guard !bytes.isEmpty else { return }
        let copy = [UInt8](bytes)
        fileSystem.state.withLock { _ in inode.write(at: Int(offset), copy) }
    }

    func sync() throws(FileIOError) {
        fileSystem.state.withLock { _ in inode.pending = [] }
    }

    func dataSync() throws(FileIOError) { try sync() }

    func truncate(to size: UInt64) throws(FileIOError) {
        guard writable else { throw FileIOError(.permissionDenied, operation: "ftruncate", path: path) }
        fileSystem.state.withLock { _ in inode.resize(to: Int(size)) }
    }

    func allocate(size: UInt64) throws(FileIOError) {
        guard writable else { throw FileIOError(.permissionDenied, operation: "posix_fallocate", path: path) }
        fileSystem.state.withLock { _ in
            if Int(size) > inode.data.count { inode.resize(to: Int(size)) }
        }
    }

    func size() throws(FileIOError) -> UInt64 {
        fileSystem.state.withLock { _ in UInt64(inode.data.count) }
    }

    func close() {}
}
