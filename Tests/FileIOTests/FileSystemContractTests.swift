// The `FileSystem` contract, run against both `POSIXFileSystem` (in a temporary directory) and
// `MemoryFileSystem`, so the simulated file system cannot drift from the real one: positional
// reads and writes, holes, short reads at end of file, truncation both ways, visibility through
// a second handle, renames that replace, removals, sorted listings that include directories,
// nested directory creation, exclusive locks (created if missing), typed errors for missing and
// existing files, `writeAtomically`, and the path helpers `joinPath`, `parentDirectory` and
// `fileName`.

import FileIO
import FileIOSim
import Testing

@Suite struct FileSystemContractTests {
    @Test(arguments: Backend.allCases)
    func positionalReadsWritesHolesAndTruncation(_ backend: Backend) throws {
        try withFileSystem(backend) { fs, root in
            let path = joinPath(root, "data")
            let handle = try fs.open(path, options: .createNew)
            #expect(handle.path == path)
            #expect(try handle.size() == 0)
            #expect(try handle.read(at: 0, count: 10) == [])

            var expected = (0..<100).map { UInt8($0) }
            try handle.write(at: 0, expected)
            #expect(try handle.size() == 100)
            #expect(try handle.read(at: 0, count: 100) == expected)
            #expect(try handle.read(at: 10, count: 5) == Array(expected[10..<15]))
            #expect(try handle.read(at: 95, count: 20) == Array(expected[95...]), "short read at end of file")
            #expect(try handle.read(at: 100, count: 10) == [])
            #expect(try handle.read(at: 10_000, count: 10) == [])

            // A write past the end leaves a hole of zeros.
            try handle.write(at: 200, [UInt8](repeating: 0xAB, count: 8))
            expected += [UInt8](repeating: 0, count: 100) + [UInt8](repeating: 0xAB, count: 8)
            #expect(try handle.size() == 208)
            #expect(try handle.readAll() == expected)

            // Overwrite in the middle, from a slice.
            let source: [UInt8] = [9, 9, 1, 2, 3, 9]
            try handle.write(at: 50, source[2..<5])
            expected.replaceSubrange(50..<53, with: [1, 2, 3])
            #expect(try handle.read(at: 48, count: 7) == Array(expected[48..<55]))

            // The raw-buffer read fills what exists and says how much.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 1)
            defer { buffer.deallocate() }
            #expect(try handle.read(at: 200, into: buffer) == 8)
            #expect(Array(buffer.prefix(8)) == [UInt8](repeating: 0xAB, count: 8))

            // Truncation shrinks and grows (with zeros).
            try handle.truncate(to: 60)
            #expect(try handle.size() == 60)
            #expect(try handle.readAll() == Array(expected[..<60]))
            try handle.truncate(to: 80)
            #expect(try handle.readAll() == Array(expected[..<60]) + [UInt8](repeating: 0, count: 20))
            try handle.sync()
            try handle.dataSync()

            // Another handle sees the same bytes; opening with `.truncate` empties the file.
            let reader = try fs.open(path, options: .read)
            #expect(try reader.readAll() == Array(expected[..<60]) + [UInt8](repeating: 0, count: 20))
            #expect(fileError { try reader.write(at: 0, [1]) } != nil, "a read-only handle refuses writes")
            let truncating = try fs.open(path, options: [.read, .write, .truncate])
            #expect(try truncating.size() == 0)
            #expect(try reader.size() == 0)
            handle.close()
            reader.close()
            truncating.close()
        }
    }

    @Test(arguments: Backend.allCases)
    func emptyWriteDoesNotChangeTheFile(_ backend: Backend) throws {
        // pwrite of zero bytes changes nothing on Linux, wherever it points.
        try withFileSystem(backend) { fs, root in
            let handle = try fs.open(joinPath(root, "empty-write"), options: .createNew)
            try handle.write(at: 4096, [UInt8]())
            #expect(try handle.size() == 0, "\(backend): an empty write past the end extended the file")
            try handle.write(at: 0, [1, 2, 3])
            try handle.write(at: 10, [UInt8]())
            #expect(try handle.size() == 3, "\(backend): an empty write past the end extended the file")
        }
    }

    @Test(arguments: Backend.allCases)
    func renamesRemovalsAndSortedListings(_ backend: Backend) throws {
        try withFileSystem(backend) { fs, root in
            for name in ["b", "a", "c10", "c2", "A"] {
                let handle = try fs.open(joinPath(root, name), options: .createNew)
                try handle.write(at: 0, bytes("contents of \(name)"))
            }
            try fs.createDirectory(joinPath(root, "d"))
            #expect(try fs.list(root) == ["A", "a", "b", "c10", "c2", "d"])
            #expect(try fs.list(joinPath(root, "d")) == [])
            #expect(fs.fileExists(joinPath(root, "a")))
            #expect(!fs.isDirectory(joinPath(root, "a")))
            #expect(fs.isDirectory(joinPath(root, "d")))
            #expect(!fs.fileExists(joinPath(root, "nothing")))

            // Rename to a new name, then onto an existing one (which it replaces).
            try fs.rename(joinPath(root, "a"), to: joinPath(root, "z"))
            #expect(!fs.fileExists(joinPath(root, "a")))
            #expect(try fs.open(joinPath(root, "z"), options: .read).readAll() == bytes("contents of a"))
            try fs.rename(joinPath(root, "b"), to: joinPath(root, "z"))
            #expect(try fs.open(joinPath(root, "z"), options: .read).readAll() == bytes("contents of b"))
            // Into a subdirectory.
            try fs.rename(joinPath(root, "c2"), to: joinPath(root, "d/c2"))
            #expect(try fs.list(joinPath(root, "d")) == ["c2"])
            #expect(try fs.list(root) == ["A", "c10", "d", "z"])

            try fs.remove(joinPath(root, "z"))
            #expect(!fs.fileExists(joinPath(root, "z")))
            #expect(fileError { try fs.remove(joinPath(root, "z")) }?.kind == .notFound)
            #expect(fileError { try fs.rename(joinPath(root, "z"), to: joinPath(root, "y")) }?.kind == .notFound)
            #expect(fileError { try fs.list(joinPath(root, "missing")) }?.kind == .notFound)
            #expect(try fs.list(root) == ["A", "c10", "d"])
        }
    }

    @Test(arguments: Backend.allCases)
    func directoriesAreCreatedWithTheirParents(_ backend: Backend) throws {
        try withFileSystem(backend) { fs, root in
            let deep = joinPath(root, "x/y/z")
            try fs.createDirectory(deep)
            for path in ["x", "x/y", "x/y/z"].map({ joinPath(root, $0) }) {
                #expect(fs.isDirectory(path), "\(path)")
                try fs.syncDirectory(path)
            }
            try fs.createDirectory(deep)  // already there: fine
            try fs.createDirectory(deep + "/")
            #expect(try fs.list(joinPath(root, "x")) == ["y"])
            let file = try fs.open(joinPath(deep, "f"), options: .createNew)
            try file.write(at: 0, [1])
            try file.sync()
            try fs.syncDirectory(deep)
            #expect(try fs.list(deep) == ["f"])

            #expect(fileError { try fs.syncDirectory(joinPath(root, "missing")) }?.kind == .notFound)
            #expect(fileError { try fs.createDirectory(joinPath(deep, "f")) } != nil, "a file is in the way")
            #expect(fileError { try fs.createDirectory(joinPath(deep, "f/g")) } != nil, "a file is in the way")
        }
    }

    @Test(arguments: Backend.allCases)
    func locksAreExclusiveUntilUnlocked(_ backend: Backend) throws {
        try withFileSystem(backend) { fs, root in
            let path = joinPath(root, "LOCK")
            let first = try fs.lock(path)
            // The protocol says the lock file is created if missing, as flock needs it to be.
            #expect(fs.fileExists(path), "\(backend): lock did not create \(path)")
            let second = fileError { try fs.lock(path) }
            #expect(second?.kind == .locked)
            #expect(second?.path == path)
            // Another path is independent.
            let other = try fs.lock(joinPath(root, "OTHER"))
            other.unlock()
            first.unlock()
            first.unlock()  // twice is harmless
            let again = try fs.lock(path)
            #expect(fileError { try fs.lock(path) }?.kind == .locked)
            again.unlock()
            try fs.lock(path).unlock()
        }
    }

    @Test(arguments: Backend.allCases)
    func missingAndExistingFilesGiveTypedErrors(_ backend: Backend) throws {
        try withFileSystem(backend) { fs, root in
            let missing = joinPath(root, "missing")
            for options: OpenOptions in [.read, .readWrite, [.write]] {
                let error = fileError { try fs.open(missing, options: options) }
                #expect(error?.kind == .notFound, "open \(options.rawValue)")
                #expect(error?.path == missing)
                #expect(error?.description.contains(missing) == true)
            }
            #expect(!fs.fileExists(missing), "a failed open must not create the file")
            #expect(fileError { try fs.open(joinPath(root, "no-dir/file"), options: .createNew) }?.kind == .notFound)

            let existing = joinPath(root, "existing")
            try fs.open(existing, options: .createNew).write(at: 0, [42])
            let exclusive = fileError { try fs.open(existing, options: .createNew) }
            #expect(exclusive?.kind == .alreadyExists)
            #expect(exclusive?.path == existing)
            // Without `exclusive`, `create` opens the existing file untouched.
            #expect(try fs.open(existing, options: [.read, .write, .create]).readAll() == [42])
        }
    }

    @Test(arguments: Backend.allCases)
    func writeAtomicallyReplacesTheWholeFile(_ backend: Backend) throws {
        try withFileSystem(backend) { fs, root in
            let path = joinPath(root, "MANIFEST")
            try fs.writeAtomically(path, bytes("first version, long"))
            #expect(try fs.open(path, options: .read).readAll() == bytes("first version, long"))
            try fs.writeAtomically(path, bytes("second"))
            #expect(try fs.open(path, options: .read).readAll() == bytes("second"))
            #expect(try fs.list(root) == ["MANIFEST"], "no temporary file is left behind")
            try fs.writeAtomically(path, [])
            #expect(try fs.open(path, options: .read).size() == 0)
        }
    }

    @Test func pathHelpers() {
        #expect(joinPath("", "a") == "a")
        #expect(joinPath("/", "a") == "/a")
        #expect(joinPath("dir", "a") == "dir/a")
        #expect(joinPath("dir/", "a") == "dir/a")
        #expect(joinPath("/var/lib/vectron", "wal-0001") == "/var/lib/vectron/wal-0001")

        #expect(parentDirectory(of: "a") == ".")
        #expect(parentDirectory(of: "/a") == "/")
        #expect(parentDirectory(of: "/") == "/")
        #expect(parentDirectory(of: "dir/a") == "dir")
        #expect(parentDirectory(of: "/var/lib/vectron/wal") == "/var/lib/vectron")

        #expect(fileName(of: "a") == "a")
        #expect(fileName(of: "/a") == "a")
        #expect(fileName(of: "/var/lib/vectron/wal") == "wal")

        for (directory, name) in [("/x", "y"), ("x/y", "z"), ("/", "root-file"), ("rel", "f.tmp")] {
            let path = joinPath(directory, name)
            #expect(parentDirectory(of: path) == directory)
            #expect(fileName(of: path) == name)
        }
    }
}
