// The file-system interface every Vectron component uses, and its durability contract.
//
// Nothing in Vectron calls a file syscall except `POSIXFileSystem`; everything else receives a
// `FileSystem`, so tests can substitute `MemoryFileSystem` (which can crash) or
// `FaultInjectingFileSystem` (which fails chosen operations).
//
// # Durability contract
// Implementations must behave at least as weakly as Linux, and callers may rely on no more:
// 1. `write` makes bytes visible to later reads through any handle of the same file, but not
//    durable. After a crash, any subset of the writes made since the file's last `sync` /
//    `dataSync` may be missing, and the last one may be torn (a prefix of it kept).
// 2. `sync` and `dataSync` make every byte written to the file before the call durable, and the
//    file's size. `dataSync` may skip metadata that is not needed to read the data back
//    (timestamps); Vectron treats the two as equivalent for data.
// 3. Creating, renaming or removing a file changes the directory, and such a change is durable
//    only after `syncDirectory` on the parent directory. A file's own `sync` does not make its
//    name durable.
// 4. `truncate` is a write: durable after the next `sync` of that file.
// 5. After an error from `sync` or `dataSync` the state of the file's unsynced bytes is unknown
//    (they may be gone even if a later sync succeeds); callers treat the file as failed.
// 6. `lock` takes an exclusive advisory lock that another process (or another `lock` call on the
//    same file system) cannot take until it is released or the holder exits.

public struct OpenOptions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let read = OpenOptions(rawValue: 1 << 0)
    public static let write = OpenOptions(rawValue: 1 << 1)
    /// Create the file if it does not exist.
    public static let create = OpenOptions(rawValue: 1 << 2)
    /// With `create`: fail with `alreadyExists` if the file exists.
    public static let exclusive = OpenOptions(rawValue: 1 << 3)
    /// Cut the file to zero length on open.
    public static let truncate = OpenOptions(rawValue: 1 << 4)

    public static let readWrite: OpenOptions = [.read, .write]
    public static let createNew: OpenOptions = [.read, .write, .create, .exclusive]
}

public protocol FileSystem: AnyObject, Sendable {
    func open(_ path: String, options: OpenOptions) throws(FileIOError) -> any FileHandle
    /// Removes a file, or an empty directory.
    func remove(_ path: String) throws(FileIOError)
    /// Atomically replaces `destination` (if present) with `source`.
    func rename(_ source: String, to destination: String) throws(FileIOError)
    /// Names (not paths) of the entries of `directory`, sorted.
    func list(_ directory: String) throws(FileIOError) -> [String]
    /// Creates `path` and any missing parents; succeeds if it already exists as a directory.
    func createDirectory(_ path: String) throws(FileIOError)
    /// Makes the directory's entries (creations, renames, removals) durable.
    func syncDirectory(_ path: String) throws(FileIOError)
    func fileExists(_ path: String) -> Bool
    func isDirectory(_ path: String) -> Bool
    /// Takes an exclusive lock on `path` (created if missing), failing with `.locked` at once if
    /// another holder has it.
    func lock(_ path: String) throws(FileIOError) -> any FileLock
}

public protocol FileHandle: AnyObject, Sendable {
    var path: String { get }
    /// Reads up to `buffer.count` bytes at `offset`; returns fewer only at end of file.
    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileIOError) -> Int
    /// Writes all of `bytes` at `offset`, extending the file as needed.
    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws(FileIOError)
    func sync() throws(FileIOError)
    func dataSync() throws(FileIOError)
    func truncate(to size: UInt64) throws(FileIOError)
    /// Reserves disk space so the file is at least `size` bytes (new bytes read as zeros), like
    /// posix_fallocate(3). Durable after the next `sync`, like a write. Writing into reserved
    /// space later changes no file size, so a later `dataSync` has less metadata to commit.
    func allocate(size: UInt64) throws(FileIOError)
    func size() throws(FileIOError) -> UInt64
    func close()
}

public protocol FileLock: AnyObject, Sendable {
    func unlock()
}

extension FileHandle {
    /// Reads exactly `count` bytes at `offset` or fewer at end of file.
    public func read(at offset: UInt64, count: Int) throws(FileIOError) -> [UInt8] {
        precondition(count >= 0, "negative read count")
        if count == 0 { return [] }
        var failure: FileIOError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            do throws(FileIOError) {
                initialized = try read(at: offset, into: UnsafeMutableRawBufferPointer(buffer))
            } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return bytes
    }

    /// Reads the whole file.
    public func readAll() throws(FileIOError) -> [UInt8] {
        let total = try size()
        guard total <= UInt64(Int.max) else { throw FileIOError(.io, operation: "read", path: path) }
        return try read(at: 0, count: Int(total))
    }

    public func write(at offset: UInt64, _ bytes: [UInt8]) throws(FileIOError) {
        var failure: FileIOError?
        bytes.withUnsafeBytes { raw in
            do throws(FileIOError) { try write(at: offset, raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    public func write(at offset: UInt64, _ bytes: ArraySlice<UInt8>) throws(FileIOError) {
        var failure: FileIOError?
        bytes.withUnsafeBytes { raw in
            do throws(FileIOError) { try write(at: offset, raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}

extension FileSystem {
    /// Creates `directory` (and missing parents) and takes the exclusive lock on its file
    /// `lockFileName`: how a store claims its directory (`.locked` if another process has it).
    public func lockDirectory(_ directory: String, lockFileName: String) throws(FileIOError) -> any FileLock {
        try createDirectory(directory)
        return try lock(joinPath(directory, lockFileName))
    }

    /// Writes `bytes` to `path` atomically and durably: temporary file, sync, rename, directory
    /// sync. After a crash the file holds either its old contents or all of `bytes`.
    public func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(FileIOError) {
        let temporary = path + ".tmp"
        let handle = try open(temporary, options: [.read, .write, .create, .truncate])
        do {
            try handle.write(at: 0, bytes)
            try handle.sync()
        } catch {
            handle.close()
            throw error
        }
        handle.close()
        try rename(temporary, to: path)
        try syncDirectory(parentDirectory(of: path))
    }
}

/// The directory part of a path ("." for a bare name).
public func parentDirectory(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// Joins a directory and a name with one slash.
public func joinPath(_ directory: String, _ name: String) -> String {
    if directory.isEmpty { return name }
    if directory.hasSuffix("/") { return directory + name }
    return directory + "/" + name
}

/// The last component of a path.
public func fileName(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return path }
    return String(path[path.index(after: slash)...])
}
