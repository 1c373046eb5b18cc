// `MemoryFileSystem.crashClone` against the durability contract of `FileSystem`, over many
// fixed seeds: synced bytes always survive; unsynced writes all survive with
// `keepWriteProbability` 1 and all vanish with 0; a file whose directory was never synced can
// vanish and always survives once it is; a rename is either undone or done (never both lost)
// until its directory is synced; the same seed gives the same clone, even for two file systems
// built separately; a torn write keeps only a prefix of its bytes, possibly followed by zeros;
// a clone is fully durable and cloning leaves the original untouched. Also the in-memory
// specifics: pending-change counting, typed errors for directories, and `setContents`.

import Basics
import FileIO
import FileIOSim
import Testing

@Suite struct MemoryFileSystemCrashTests {
    static let keepAll = CrashOptions(keepWriteProbability: 1, tearProbability: 0, zeroFillTornProbability: 0)
    static let keepNone = CrashOptions(keepWriteProbability: 0, tearProbability: 0, zeroFillTornProbability: 0)

    /// A file at `/db/<name>` whose name is durable and whose contents are `synced`, durably.
    static func durableFile(_ fs: MemoryFileSystem, _ name: String, _ synced: [UInt8]) throws -> any FileIO.FileHandle {
        try fs.createDirectory("/db")
        let handle = try fs.open("/db/" + name, options: .createNew)
        try handle.write(at: 0, synced)
        try handle.sync()
        try fs.syncDirectory("/db")
        return handle
    }

    @Test func syncedBytesAlwaysSurvive() throws {
        for seed in UInt64(0)..<200 {
            var random = SeededRandom(seed: seed)
            let fs = MemoryFileSystem()
            var synced: [String: [UInt8]] = [:]
            var handles: [String: any FileIO.FileHandle] = [:]
            for name in ["a", "b", "c"] {
                let content = random.bytes(Int(random.next() % 200))
                handles[name] = try Self.durableFile(fs, name, content)
                synced[name] = content
            }
            // Unsynced appends (never overwriting synced bytes), on random files.
            for _ in 0..<Int(random.next() % 6) {
                let name = ["a", "b", "c"][Int(random.next() % 3)]
                let handle = handles[name]!
                try handle.write(at: try handle.size() + random.next() % 20, random.bytes(1 + Int(random.next() % 100)))
            }
            let options = CrashOptions(keepWriteProbability: Double(seed % 5) / 4, tearProbability: 0.5, zeroFillTornProbability: 0.5)
            let clone = fs.crashClone(seed: seed, options: options)
            for (name, content) in synced {
                let survived = try #require(clone.contents(of: "/db/" + name), "seed \(seed): /db/\(name) vanished")
                #expect(survived.count >= content.count, "seed \(seed): /db/\(name) lost synced bytes")
                #expect(Array(survived.prefix(content.count)) == content, "seed \(seed): /db/\(name) synced bytes changed")
            }
        }
    }

    @Test func unsyncedWritesSurviveWithKeepOneAndVanishWithKeepZero() throws {
        for seed in UInt64(0)..<50 {
            var random = SeededRandom(seed: seed)
            let fs = MemoryFileSystem()
            let synced = random.bytes(64)
            let handle = try Self.durableFile(fs, "log", synced)
            // Overwrites, appends past a hole, and a truncation, none synced.
            try handle.write(at: 10, random.bytes(20))
            try handle.write(at: 100, random.bytes(30))
            try handle.truncate(to: 120)
            try handle.write(at: 120, random.bytes(Int(random.next() % 50) + 1))
            let current = try #require(fs.contents(of: "/db/log"))

            #expect(fs.crashClone(seed: seed, options: Self.keepAll).contents(of: "/db/log") == current, "seed \(seed)")
            #expect(fs.crashClone(seed: seed, options: Self.keepNone).contents(of: "/db/log") == synced, "seed \(seed)")

            // Once synced, nothing is lost even when every pending write would be.
            try handle.sync()
            #expect(fs.crashClone(seed: seed, options: Self.keepNone).contents(of: "/db/log") == current, "seed \(seed)")
        }

        // A truncation is a write: undone by a crash until the file is synced.
        let fs = MemoryFileSystem()
        let handle = try Self.durableFile(fs, "t", [1, 2, 3, 4, 5])
        try handle.truncate(to: 2)
        #expect(fs.crashClone(seed: 1, options: Self.keepNone).contents(of: "/db/t") == [1, 2, 3, 4, 5])
        #expect(fs.crashClone(seed: 1, options: Self.keepAll).contents(of: "/db/t") == [1, 2])
        try handle.sync()
        #expect(fs.crashClone(seed: 1, options: Self.keepNone).contents(of: "/db/t") == [1, 2])
    }

    @Test func aNewFileNeedsItsDirectorySynced() throws {
        let fs = MemoryFileSystem()
        try fs.createDirectory("/db")
        let handle = try fs.open("/db/new", options: .createNew)
        try handle.write(at: 0, bytes("synced data, unsynced name"))
        try handle.sync()
        var vanished = 0
        for seed in UInt64(0)..<64 {
            let clone = fs.crashClone(seed: seed, options: Self.keepNone)
            if let contents = clone.contents(of: "/db/new") {
                #expect(contents == bytes("synced data, unsynced name"), "seed \(seed)")
                #expect(try clone.list("/db") == ["new"])
            } else {
                vanished += 1
                #expect(try clone.list("/db") == [])
            }
        }
        #expect(vanished > 0, "a name whose directory was never synced must be able to vanish")
        #expect(vanished < 64, "…and must be able to survive")

        try fs.syncDirectory("/db")
        for seed in UInt64(0)..<64 {
            #expect(fs.crashClone(seed: seed, options: Self.keepNone).contents(of: "/db/new") == bytes("synced data, unsynced name"),
                    "seed \(seed)")
        }
        // Removal is a directory change too: undone by a crash until the directory is synced.
        try fs.remove("/db/new")
        #expect((UInt64(0)..<64).contains { fs.crashClone(seed: $0, options: Self.keepNone).fileExists("/db/new") })
        try fs.syncDirectory("/db")
        #expect(!(UInt64(0)..<64).contains { fs.crashClone(seed: $0, options: Self.keepNone).fileExists("/db/new") })
    }

    @Test func renamesAreDurableOnlyAfterADirectorySync() throws {
        let fs = MemoryFileSystem()
        _ = try Self.durableFile(fs, "a", bytes("payload"))
        try fs.rename("/db/a", to: "/db/b")
        var lost = 0
        var done = 0
        for seed in UInt64(0)..<64 {
            let clone = fs.crashClone(seed: seed, options: Self.keepNone)
            let old = clone.contents(of: "/db/a")
            let new = clone.contents(of: "/db/b")
            #expect(old != nil || new != nil, "seed \(seed): both names lost")
            for contents in [old, new] where contents != nil {
                #expect(contents == bytes("payload"), "seed \(seed)")
            }
            if new == nil { lost += 1 } else { done += 1 }
        }
        #expect(lost > 0, "an unsynced rename must be able to be undone")
        #expect(done > 0, "…and to be kept")

        try fs.syncDirectory("/db")
        for seed in UInt64(0)..<64 {
            let clone = fs.crashClone(seed: seed, options: Self.keepNone)
            #expect(clone.contents(of: "/db/b") == bytes("payload"), "seed \(seed)")
            #expect(!clone.fileExists("/db/a"), "seed \(seed)")
        }
    }

    @Test func aRenameOntoAnExistingFileLeavesOldOrNewNeverNothing() throws {
        let fs = MemoryFileSystem()
        _ = try Self.durableFile(fs, "CURRENT", bytes("old"))
        let temporary = try fs.open("/db/CURRENT.tmp", options: .createNew)
        try temporary.write(at: 0, bytes("new"))
        try temporary.sync()
        try fs.rename("/db/CURRENT.tmp", to: "/db/CURRENT")
        var seen: Set<[UInt8]> = []
        for seed in UInt64(0)..<64 {
            let contents = fs.crashClone(seed: seed, options: Self.keepNone).contents(of: "/db/CURRENT")
            #expect(contents == bytes("old") || contents == bytes("new"), "seed \(seed): \(String(describing: contents))")
            if let contents { seen.insert(contents) }
        }
        #expect(seen == [bytes("old"), bytes("new")])
        try fs.syncDirectory("/db")
        for seed in UInt64(0)..<64 {
            #expect(fs.crashClone(seed: seed, options: Self.keepNone).contents(of: "/db/CURRENT") == bytes("new"))
        }
    }

    @Test func writeAtomicallyIsDurableWhenItReturns() throws {
        let fs = MemoryFileSystem()
        try fs.createDirectory("/db")
        try fs.writeAtomically("/db/MANIFEST", bytes("v1"))
        try fs.writeAtomically("/db/MANIFEST", bytes("version 2"))
        for seed in UInt64(0)..<64 {
            let clone = fs.crashClone(seed: seed, options: CrashOptions(keepWriteProbability: 0, tearProbability: 1))
            #expect(clone.contents(of: "/db/MANIFEST") == bytes("version 2"), "seed \(seed)")
            #expect(try clone.list("/db") == ["MANIFEST"], "seed \(seed)")
        }
    }

    /// A file system with pending changes of every kind, built the same way every time.
    static func busyFileSystem() throws -> MemoryFileSystem {
        let fs = MemoryFileSystem()
        var random = SeededRandom(seed: 99)
        for directory in ["/db", "/db/wal", "/db/segments"] { try fs.createDirectory(directory) }
        for index in 0..<12 {
            let directory = ["/db", "/db/wal", "/db/segments"][index % 3]
            let handle = try fs.open(joinPath(directory, "file-\(index)"), options: .createNew)
            try handle.write(at: 0, random.bytes(50 + index))
            if index % 2 == 0 { try handle.sync() }
            try handle.write(at: UInt64(40 + index), random.bytes(30))
            if index % 4 == 1 { try handle.truncate(to: 20) }
            if index % 3 == 0 { try fs.syncDirectory(directory) }
        }
        try fs.rename("/db/file-0", to: "/db/renamed")
        try fs.rename("/db/wal/file-1", to: "/db/file-1-moved")
        try fs.remove("/db/segments/file-2")
        return fs
    }

    @Test func theSameSeedGivesTheSameClone() throws {
        let directories = ["/db", "/db/wal", "/db/segments"]
        let first = try Self.busyFileSystem()
        let second = try Self.busyFileSystem()
        var distinct: Set<[String: [UInt8]]> = []
        for seed in UInt64(0)..<30 {
            let a = try snapshot(first.crashClone(seed: seed), directories)
            let b = try snapshot(first.crashClone(seed: seed), directories)
            let c = try snapshot(second.crashClone(seed: seed), directories)
            #expect(differingPaths(a, b) == [], "seed \(seed): two clones of one file system differ")
            #expect(differingPaths(a, c) == [], "seed \(seed): clones of two identically built file systems differ")
            distinct.insert(a)
        }
        #expect(distinct.count > 10, "different seeds must give different crashes")
    }

    @Test func aCloneIsDurableAndTheOriginalIsUntouched() throws {
        let directories = ["/db", "/db/wal", "/db/segments"]
        let fs = try Self.busyFileSystem()
        let before = try snapshot(fs, directories)
        let pending = fs.pendingChangeCount
        #expect(pending > 0)
        for seed in UInt64(0)..<20 {
            let clone = fs.crashClone(seed: seed)
            #expect(clone.pendingChangeCount == 0)
            // Everything in a clone is durable: crashing it again changes nothing.
            let cloned = try snapshot(clone, directories)
            let recloned = try snapshot(clone.crashClone(seed: seed &+ 1000, options: Self.keepNone), directories)
            #expect(differingPaths(recloned, cloned) == [], "seed \(seed)")
        }
        #expect(differingPaths(try snapshot(fs, directories), before) == [])
        #expect(fs.pendingChangeCount == pending)
    }

    @Test func tornWritesKeepOnlyAPrefixPossiblyFollowedByZeros() throws {
        let synced = [UInt8](repeating: 0x11, count: 16)
        var random = SeededRandom(seed: 0x70A2)
        for (options, label) in [(CrashOptions(keepWriteProbability: 1, tearProbability: 1, zeroFillTornProbability: 0.5), "always torn"),
                                 (CrashOptions(), "default")] {
            var keptLengths: Set<Int> = []
            var zeroFilled = 0
            var whole = 0
            for seed in UInt64(0)..<400 {
                let fs = MemoryFileSystem()
                let handle = try Self.durableFile(fs, "wal", synced)
                // Non-zero bytes, so a kept prefix cannot be confused with zero fill.
                let written = random.bytes(64).map { $0 | 1 }
                try handle.write(at: 16, written)
                let survived = try #require(fs.crashClone(seed: seed, options: options).contents(of: "/db/wal"))
                #expect(Array(survived.prefix(16)) == synced, "\(label) seed \(seed)")
                let tail = Array(survived.dropFirst(16))
                #expect(tail.count <= written.count, "\(label) seed \(seed)")
                let kept = zip(tail, written).prefix { $0 == $1 }.count
                #expect(tail[kept...].allSatisfy { $0 == 0 }, "\(label) seed \(seed): \(tail) is not a prefix of \(written) then zeros")
                if kept == written.count { whole += 1 } else { keptLengths.insert(kept) }
                if kept < tail.count { zeroFilled += 1 }
                if label == "always torn" {
                    #expect(kept < written.count, "seed \(seed): a torn write kept every byte")
                    #expect(tail.count == kept || tail.count == written.count, "seed \(seed): zero fill reaches the write's end")
                }
            }
            #expect(keptLengths.count > 20, "\(label): torn prefixes of many lengths")
            #expect(zeroFilled > 0, "\(label): some torn writes are zero-filled")
            if label == "default" { #expect(whole > 0, "\(label): some writes survive whole") }
        }
    }

    @Test func pendingChangesAreCountedUntilSynced() throws {
        let fs = MemoryFileSystem()
        #expect(fs.pendingChangeCount == 0)
        try fs.createDirectory("/db")
        let handle = try fs.open("/db/f", options: .createNew)
        #expect(fs.pendingChangeCount == 1, "the new name")
        try handle.write(at: 0, [1])
        #expect(fs.pendingChangeCount == 2, "the new name and the write")
        try handle.dataSync()
        #expect(fs.pendingChangeCount == 1)
        try fs.syncDirectory("/db")
        #expect(fs.pendingChangeCount == 0)
    }

    @Test func inMemorySpecifics() throws {
        let fs = MemoryFileSystem()
        try fs.createDirectory("/db/sub")
        #expect(fileError { try fs.open("/db/sub", options: .read) }?.kind == .isDirectory)
        fs.setContents(of: "/db/sub/f", [7, 7])
        #expect(fs.contents(of: "/db/sub/f") == [7, 7])
        #expect(fs.crashClone(seed: 3, options: Self.keepNone).contents(of: "/db/sub/f") == [7, 7], "setContents is durable")
        #expect(fileError { try fs.remove("/db/sub") }?.kind == .notEmpty)
        let handle = try fs.open("/db/sub/f", options: .read)
        #expect(fileError { try handle.write(at: 0, [1]) }?.kind == .permissionDenied)
        #expect(fileError { try handle.truncate(to: 0) }?.kind == .permissionDenied)
        try fs.remove("/db/sub/f")
        try fs.remove("/db/sub")
        #expect(!fs.isDirectory("/db/sub"))
        #expect(fs.contents(of: "/db/sub/f") == nil)
        // A lock dropped without `unlock` is released.
        _ = try fs.lock("/db/LOCK")
        try fs.lock("/db/LOCK").unlock()
    }

    @Test func readingIntoAnEmptyBufferDoesNotTrap() async {
        // An empty buffer may have no base address; a read into it must return 0, as the POSIX
        // implementation does, instead of force-unwrapping it.
        await #expect(processExitsWith: .success) {
            let fs = MemoryFileSystem()
            fs.setContents(of: "/f", [1, 2, 3])
            let handle = try? fs.open("/f", options: .read)
            let count = try? handle?.read(at: 0, into: UnsafeMutableRawBufferPointer(start: nil, count: 0))
            if count != 0 { fatalError("read \(String(describing: count)) bytes into an empty buffer") }
        }
    }
}

/// The in-memory file system keeps undo records instead of a second copy of synced bytes; these
/// check that overwrites, truncations and allocations are undone exactly by a crash.
@Suite struct MemoryFileSystemUndoTests {
    @Test func unsyncedOverwritesTruncationsAndAllocationsAreUndoneByACrash() throws {
        for seed in UInt64(0)..<100 {
            var random = SeededRandom(seed: seed)
            let fs = MemoryFileSystem()
            let original = random.bytes(64 + Int(random.next() % 200))
            let handle = try MemoryFileSystemCrashTests.durableFile(fs, "f", original)
            var expected = original
            for _ in 0..<(1 + Int(random.next() % 6)) {
                switch random.next() % 3 {
                case 0:
                    let offset = Int(random.next() % UInt64(expected.count + 20))
                    let bytes = random.bytes(1 + Int(random.next() % 40))
                    try handle.write(at: UInt64(offset), bytes)
                    if expected.count < offset + bytes.count { expected += [UInt8](repeating: 0, count: offset + bytes.count - expected.count) }
                    expected.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
                case 1:
                    let size = Int(random.next() % UInt64(expected.count + 30))
                    try handle.truncate(to: UInt64(size))
                    if size < expected.count { expected.removeSubrange(size...) } else { expected += [UInt8](repeating: 0, count: size - expected.count) }
                default:
                    let size = expected.count + Int(random.next() % 50)
                    try handle.allocate(size: UInt64(size))
                    expected += [UInt8](repeating: 0, count: size - expected.count)
                }
            }
            #expect(fs.contents(of: "/db/f") == expected, "seed \(seed): visible contents")
            let crashed = fs.crashClone(seed: seed, options: MemoryFileSystemCrashTests.keepNone)
            #expect(crashed.contents(of: "/db/f") == original, "seed \(seed): a crash must restore the synced bytes exactly")
            try handle.sync()
            #expect(fs.crashClone(seed: seed, options: MemoryFileSystemCrashTests.keepNone).contents(of: "/db/f") == expected, "seed \(seed): synced")
        }
    }
}
