// The typed error of every file operation: what kind of failure, which operation, which path,
// and the errno behind it when there is one.

public struct FileIOError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case notFound
        case alreadyExists
        case noSpace
        case io
        case permissionDenied
        case locked
        case isDirectory
        case notDirectory
        case notEmpty
        case tooManyOpenFiles
        case invalidArgument
        case closed
        case other
    }

    public var kind: Kind
    public var operation: String
    public var path: String
    public var errno: Int32

    public init(_ kind: Kind, operation: String, path: String, errno: Int32 = 0) {
        self.kind = kind
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String {
        "\(operation) \(path): \(kind)" + (errno != 0 ? " (errno \(errno))" : "")
    }
}
