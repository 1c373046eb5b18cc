// Helpers shared by the file I/O tests: capturing a typed `FileIOError`, a unique temporary
// directory for the POSIX tests (removed afterwards, so parallel tests never share files), the
// two back ends the contract tests run against, and a snapshot of a `MemoryFileSystem` for
// comparing crash clones.

import FileIO
import FileIOSim
import Foundation
import Testing
import TestSupport

/// The `FileIOError` a body throws, or nil if it succeeds.
/// (Untyped so that closures inside `#expect` need no annotation; the APIs under test throw
/// only `FileIOError`, anything else is recorded as an issue.)
func fileError<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> FileIOError? {
    thrownError(FileIOError.self, body, sourceLocation: sourceLocation)
}

/// Runs `body` with the path of a fresh directory under `NSTemporaryDirectory()`, then removes it.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    var base = NSTemporaryDirectory()
    if !base.hasSuffix("/") { base += "/" }
    let path = base + "vectron-fileio-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// The file systems the shared contract must hold for.
enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case posix, memory
    var description: String { rawValue }
}

/// Runs `body` with a file system of the given kind and an existing, empty root directory.
func withFileSystem(_ backend: Backend, _ body: (any FileSystem, String) throws -> Void) throws {
    switch backend {
    case .posix:
        try withTemporaryDirectory { root in try body(POSIXFileSystem(), root) }
    case .memory:
        let fs = MemoryFileSystem()
        try fs.createDirectory("/vectron")
        try body(fs, "/vectron")
    }
}

/// Path -> contents of every regular file in `directories`.
func snapshot(_ fs: MemoryFileSystem, _ directories: [String]) throws -> [String: [UInt8]] {
    var files: [String: [UInt8]] = [:]
    for directory in directories {
        for name in try fs.list(directory) {
            let path = joinPath(directory, name)
            if fs.isDirectory(path) { continue }
            files[path] = try fs.open(path, options: .read).readAll()
        }
    }
    return files
}

/// Paths present in only one snapshot or with different contents, sorted (a short failure message).
func differingPaths(_ a: [String: [UInt8]], _ b: [String: [UInt8]]) -> [String] {
    Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted()
}

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
