// The real file system. This file is the only place in Vectron that makes file syscalls: every
// call goes through `retryingEINTR`, and every failure becomes a `FileIOError`.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class POSIXFileSystem: FileSystem {
    public init() {}

    public func open(_ path: String, options: OpenOptions) throws(FileIOError) -> any FileHandle {
        var flags: Int32 = O_CLOEXEC
        switch (options.contains(.read), options.contains(.write)) {
        case (_, true) where options.contains(.read): flags |= O_RDWR
        case (_, true): flags |= O_WRONLY
        default: flags |= O_RDONLY
        }
        if options.contains(.create) { flags |= O_CREAT }
        if options.contains(.exclusive) { flags |= O_EXCL }
        if options.contains(.truncate) { flags |= O_TRUNC }
        let fd = try syscall("open", path) { Glibc.open(path, flags, 0o600) }
        return POSIXFileHandle(fd: fd, path: path)
    }

    public func remove(_ path: String) throws(FileIOError) {
        // remove(3): unlink for a file, rmdir for an (empty) directory.
        _ = try syscall("remove", path) { Glibc.remove(path) }
    }

    public func rename(_ source: String, to destination: String) throws(FileIOError) {
        _ = try syscall("rename", source + " -> " + destination) { Glibc.rename(source, destination) }
    }

    public func list(_ directory: String) throws(FileIOError) -> [String] {
        guard let dir = opendir(directory) else {
            throw FileIOError(kindFor(errno), operation: "opendir", path: directory, errno: errno)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw FileIOError(kindFor(errno), operation: "readdir", path: directory, errno: errno) }
                break
            }
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func createDirectory(_ path: String) throws(FileIOError) {
        if isDirectory(path) { return }
        let parent = parentDirectory(of: path)
        if parent != path && parent != "." && parent != "/" && !isDirectory(parent) {
            try createDirectory(parent)
        }
        let result = retryingEINTR { mkdir(path, 0o700) }
        if result != 0 && !(errno == EEXIST && isDirectory(path)) {
            throw FileIOError(kindFor(errno), operation: "mkdir", path: path, errno: errno)
        }
    }

    public func syncDirectory(_ path: String) throws(FileIOError) {
        let fd = try syscall("open", path) { Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { Glibc.close(fd) }
        _ = try syscall("fsync", path) { fsync(fd) }
    }

    public func fileExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    public func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    public func lock(_ path: String) throws(FileIOError) -> any FileLock {
        let fd = try syscall("open", path) { Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        let result = retryingEINTR { flock(fd, LOCK_EX | LOCK_NB) }
        if result != 0 {
            let code = errno
            Glibc.close(fd)
            let kind: FileIOError.Kind = code == EWOULDBLOCK ? .locked : kindFor(code)
            throw FileIOError(kind, operation: "flock", path: path, errno: code)
        }
        return POSIXFileLock(fd: fd)
    }
}

final class POSIXFileLock: FileLock, @unchecked Sendable {
    private var fd: Int32
    init(fd: Int32) { self.fd = fd }
    func unlock() {
        if fd >= 0 {
            _ = flock(fd, LOCK_UN)
            Glibc.close(fd)
            fd = -1
        }
    }
    deinit { unlock() }
}

final class POSIXFileHandle: FileHandle, @unchecked Sendable {
    let fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { Glibc.close(fd) }

    func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(FileIOError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = try syscall("pread", path) {
                pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    func write(at offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws(FileIOError) {
        var done = 0
        while done < bytes.count {
            let n = try syscall("pwrite", path) {
                pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            }
            if n == 0 { throw FileIOError(.io, operation: "pwrite", path: path) }
            done += n
        }
    }

    func sync() throws(FileIOError) { _ = try syscall("fsync", path) { fsync(fd) } }

    func dataSync() throws(FileIOError) { _ = try syscall("fdatasync", path) { fdatasync(fd) } }

    func truncate(to size: UInt64) throws(FileIOError) {
        _ = try syscall("ftruncate", path) { ftruncate(fd, off_t(size)) }
    }

    func allocate(size: UInt64) throws(FileIOError) {
        // posix_fallocate returns the error instead of setting errno, and may fail with EINTR.
        while true {
            let result = posix_fallocate(fd, 0, off_t(size))
            if result == 0 { return }
            if result == EINTR { continue }
            throw FileIOError(kindFor(result), operation: "posix_fallocate", path: path, errno: result)
        }
    }

    func size() throws(FileIOError) -> UInt64 {
        var info = stat()
        _ = try syscall("fstat", path) { fstat(fd, &info) }
        return UInt64(info.st_size)
    }

    func close() {
        // The descriptor is closed in deinit so that a handle shared by readers stays valid
        // until the last reference goes away.
    }
}

/// Runs a syscall, retrying on EINTR.
@inline(__always)
func retryingEINTR<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}

/// Runs a syscall that signals failure with -1, retrying EINTR and throwing a typed error.
@inline(__always)
func syscall<T: BinaryInteger>(_ operation: String, _ path: String, _ body: () -> T) throws(FileIOError) -> T {
    let result = retryingEINTR(body)
    if result == -1 {
        let code = errno
        throw FileIOError(kindFor(code), operation: operation, path: path, errno: code)
    }
    return result
}

func kindFor(_ code: Int32) -> FileIOError.Kind {
    switch code {
    case ENOENT: return .notFound
    case EEXIST: return .alreadyExists
    case ENOSPC, EDQUOT: return .noSpace
    case EIO: return .io
    case EACCES, EPERM: return .permissionDenied
    case EISDIR: return .isDirectory
    case ENOTDIR: return .notDirectory
    case ENOTEMPTY: return .notEmpty
    case EMFILE, ENFILE: return .tooManyOpenFiles
    case EINVAL: return .invalidArgument
    case EWOULDBLOCK: return .locked
    default: return .other
    }
}
