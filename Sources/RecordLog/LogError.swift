// Every failure the record log reports.

import FileIO
import Wire

public enum LogError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file operation failed. The log has stopped accepting writes (see `failed`).
    case io(FileIOError)
    /// A checksum or structural rule failed for bytes that had been durable: real corruption,
    /// never a torn tail. Names the segment file and the byte offset.
    case corruption(segment: String, DecodeError)
    /// An earlier I/O error stopped the log; reopen it to recover. After a failed sync the
    /// state of unsynced bytes is unknown, so the log never retries on the same files.
    case failed(FileIOError)
    /// The log was closed.
    case closed
    /// The caller passed something the log cannot store (a kind outside 1...127, a payload over
    /// the limit, an LSN that does not exist).
    case invalidArgument(String)
    /// Another process holds the log directory.
    case locked(String)

    public var description: String {
        switch self {
        case let .io(error): return "record log I/O error: \(error)"
        case let .corruption(segment, error): return "record log corruption in \(segment): \(error)"
        case let .failed(error): return "record log stopped after an earlier I/O error (\(error)); reopen it"
        case .closed: return "record log is closed"
        case let .invalidArgument(text): return "invalid argument: \(text)"
        case let .locked(path): return "record log directory is in use by another process (\(path))"
        }
    }
}
