import FileIO
import RecordLog
import StorageFormat
import Wire

public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidArgument(String)
    case io(FileIOError)
    /// Stored bytes failed a checksum or structural check; `path` names the file.
    case corruption(path: String, DecodeError)
    /// Files disagree with the manifest (a segment missing, a size or checksum differs).
    case inconsistent(String)
    /// Another process has the database open.
    case locked(String)
    case closed
    /// A background flush or compaction failed with an I/O error; the engine accepts no more
    /// writes until it is reopened (reads still work).
    case failed(String)
    case log(LogError)

    public var description: String {
        switch self {
        case let .invalidArgument(text): return "invalid argument: \(text)"
        case let .io(error): return "storage I/O error: \(error)"
        case let .corruption(path, error): return "corruption in \(path): \(error)"
        case let .inconsistent(text): return "database files inconsistent: \(text)"
        case let .locked(path): return "database \(path) is locked by another process"
        case .closed: return "storage engine is closed"
        case let .failed(text): return "storage engine stopped after a background error: \(text)"
        case let .log(error): return "write-ahead log: \(error)"
        }
    }

    init(_ error: SegmentError) {
        switch error {
        case let .io(io): self = .io(io)
        case let .invalidArgument(text): self = .invalidArgument(text)
        case let .corruption(path, decode): self = .corruption(path: path, decode)
        }
    }
}
