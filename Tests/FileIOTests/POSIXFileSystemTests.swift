// What only the real file system can show, in a unique temporary directory removed afterwards:
// errors carry the operation, the path and the real errno (ENOENT, EEXIST, EWOULDBLOCK,
// ENOTDIR); a lock is exclusive between two `lock` calls of one process (flock is per open file
// description) and free again after `unlock`; files written through one handle are visible
// through a handle opened later, after syncs of the file and its directory; and a large write
// and read move every byte (the syscall loops handle partial transfers).

import FileIO
import Foundation
import Testing

@Suite struct POSIXFileSystemTests {
    @Test func errorsCarryOperationPathAndErrno() throws {
        try withTemporaryDirectory { root in
            let fs = POSIXFileSystem()
            let missing = joinPath(root, "missing")
            let notFound = fileError { try fs.open(missing, options: .read) }
            #expect(notFound == FileIOError(.notFound, operation: "open", path: missing, errno: ENOENT))

            let existing = joinPath(root, "existing")
            _ = try fs.open(existing, options: .createNew)
            #expect(fileError { try fs.open(existing, options: .createNew) }
                    == FileIOError(.alreadyExists, operation: "open", path: existing, errno: EEXIST))

            #expect(fileError { try fs.remove(missing) }?.errno == ENOENT)
            let listFile = fileError { try fs.list(existing) }
            #expect(listFile?.kind == .notDirectory)
            #expect(listFile?.errno == ENOTDIR)
            #expect(fileError { try fs.syncDirectory(missing) }?.kind == .notFound)

            let lockPath = joinPath(root, "LOCK")
            let held = try fs.lock(lockPath)
            #expect(fileError { try fs.lock(lockPath) }
                    == FileIOError(.locked, operation: "flock", path: lockPath, errno: EWOULDBLOCK))
            held.unlock()
            #expect(fileError { try fs.lock(joinPath(root, "no-dir/LOCK")) }?.kind == .notFound)
        }
    }

    @Test func largeWritesAndReadsMoveEveryByteAndSurviveReopening() throws {
        try withTemporaryDirectory { root in
            let fs = POSIXFileSystem()
            try fs.createDirectory(joinPath(root, "segments/0001"))
            let path = joinPath(root, "segments/0001/data")
            let bytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
            do {
                let handle = try fs.open(path, options: .createNew)
                try handle.write(at: 0, bytes)
                try handle.write(at: UInt64(bytes.count), bytes[0..<1000])
                try handle.dataSync()
                try handle.sync()
                handle.close()
            }
            try fs.syncDirectory(joinPath(root, "segments/0001"))
            try fs.syncDirectory(joinPath(root, "segments"))
            try fs.syncDirectory(root)

            let reopened = try fs.open(path, options: .read)
            #expect(try reopened.size() == UInt64(bytes.count + 1000))
            let all = try reopened.readAll()
            #expect(all.count == bytes.count + 1000)
            #expect(Array(all[..<bytes.count]) == bytes)
            #expect(Array(all[bytes.count...]) == Array(bytes[0..<1000]))
            #expect(try reopened.read(at: 1 << 20, count: 5) == Array(bytes[(1 << 20)..<((1 << 20) + 5)]))
            #expect(try fs.list(joinPath(root, "segments")) == ["0001"])
            // Foundation agrees on what is on disk.
            #expect(FileManager.default.contents(atPath: path)?.count == bytes.count + 1000)
        }
    }

    @Test func theTemporaryDirectoryIsRemovedAfterwards() throws {
        let used = try withTemporaryDirectory { root in
            try POSIXFileSystem().writeAtomically(joinPath(root, "f"), [1])
            return root
        }
        #expect(!POSIXFileSystem().fileExists(used))
    }
}
