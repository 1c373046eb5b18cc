// `FaultInjectingFileSystem` over a `MemoryFileSystem`: a rule fails exactly the calls it
// selects — by operation, by path substring, on the nth matching call only, with a probability
// (0 never fires; the same seed fires on the same calls), up to a limit — with the chosen error
// kind and errno, and a failed operation has no effect on the wrapped file system. A torn write
// stores a strict prefix and throws EIO; a bit flip changes exactly one bit of what is read or
// written; `injectedCount` counts every fault; `setRules([])` turns faults off. Every operation
// of the protocol can be failed.

import Basics
import FileIO
import FileIOSim
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct FaultInjectingFileSystemTests {
    /// A memory file system with `/db/f` holding `contents`, wrapped with no rules yet.
    static func setUp(seed: UInt64 = 1, contents: [UInt8] = [1, 2, 3, 4]) throws
        -> (base: MemoryFileSystem, faulty: FaultInjectingFileSystem, handle: any FileIO.FileHandle) {
        let base = MemoryFileSystem()
        try base.createDirectory("/db")
        base.setContents(of: "/db/f", contents)
        let faulty = FaultInjectingFileSystem(wrapping: base, seed: seed)
        let handle = try faulty.open("/db/f", options: .readWrite)
        return (base, faulty, handle)
    }

    @Test func nthCallOnlyFailsWithTheChosenErrorAndHasNoEffect() throws {
        let (base, faulty, handle) = try Self.setUp()
        faulty.setRules([FaultRule([.write], nthCall: 3, fault: .error(.io))])
        try handle.write(at: 0, [10])
        try handle.write(at: 1, [11])
        let failure = fileError { try handle.write(at: 2, [12]) }
        #expect(failure == FileIOError(.io, operation: "pwrite", path: "/db/f", errno: EIO))
        #expect(base.contents(of: "/db/f") == [10, 11, 3, 4], "the failed write stored nothing")
        try handle.write(at: 3, [13])
        try handle.write(at: 2, [12])
        #expect(base.contents(of: "/db/f") == [10, 11, 12, 13])
        #expect(faulty.injectedCount == 1)

        // ENOSPC on the second open only; the file is not created by the failed open.
        faulty.setRules([FaultRule([.open], nthCall: 2, fault: .error(.noSpace))])
        _ = try faulty.open("/db/f", options: .read)
        let noSpace = fileError { try faulty.open("/db/g", options: .createNew) }
        #expect(noSpace == FileIOError(.noSpace, operation: "open", path: "/db/g", errno: ENOSPC))
        #expect(!base.fileExists("/db/g"))
        _ = try faulty.open("/db/g", options: .createNew)
        #expect(faulty.injectedCount == 2)
    }

    @Test func probabilityZeroNeverFiresAndTheSameSeedFiresTheSameCalls() throws {
        let (_, faulty, handle) = try Self.setUp()
        faulty.setRules([FaultRule(Set(FileOperation.allCases), probability: 0, fault: .error(.io))])
        for index in 0..<500 {
            try handle.write(at: UInt64(index % 7), [UInt8(truncatingIfNeeded: index)])
            _ = try handle.read(at: 0, count: 4)
            try handle.sync()
        }
        #expect(faulty.injectedCount == 0)

        func pattern(seed: UInt64) throws -> [Bool] {
            let (_, faulty, handle) = try Self.setUp(seed: seed)
            faulty.setRules([FaultRule([.read], probability: 0.3, fault: .error(.io))])
            return (0..<300).map { _ in fileError { try handle.read(at: 0, count: 1) } != nil }
        }
        let first = try pattern(seed: 42)
        #expect(try pattern(seed: 42) == first, "the same seed fails the same calls")
        #expect(try pattern(seed: 43) != first, "another seed fails other calls")
        let failures = first.filter { $0 }.count
        #expect(failures > 50 && failures < 130, "about 30% of 300 calls fail, got \(failures)")
    }

    @Test func limitCapsTheNumberOfFaults() throws {
        let (_, faulty, handle) = try Self.setUp()
        faulty.setRules([FaultRule([.sync, .dataSync], limit: 3, fault: .error(.io))])
        #expect(fileError { try handle.sync() }?.kind == .io)
        #expect(fileError { try handle.dataSync() }?.kind == .io)
        #expect(fileError { try handle.sync() }?.kind == .io)
        for _ in 0..<20 { try handle.sync(); try handle.dataSync() }
        #expect(faulty.injectedCount == 3)
    }

    @Test func pathContainsSelectsFilesAndNthCountsOnlyMatchingCalls() throws {
        let (base, faulty, _) = try Self.setUp()
        let wal = try faulty.open("/db/wal-0001", options: .createNew)
        let data = try faulty.open("/db/data", options: .createNew)
        faulty.setRules([FaultRule([.write], pathContains: "wal", nthCall: 2, fault: .error(.io))])
        try data.write(at: 0, [1])
        try wal.write(at: 0, [1])  // first matching call
        try data.write(at: 1, [2])
        try data.write(at: 2, [3])
        #expect(fileError { try wal.write(at: 1, [2]) }?.kind == .io, "second matching call")
        try wal.write(at: 1, [2])
        #expect(base.contents(of: "/db/data") == [1, 2, 3])
        #expect(base.contents(of: "/db/wal-0001") == [1, 2])

        faulty.setRules([FaultRule([.remove, .rename], pathContains: "wal", fault: .error(.permissionDenied))])
        try faulty.rename("/db/data", to: "/db/data2")
        let renameFailure = fileError { try faulty.rename("/db/wal-0001", to: "/db/old") }
        #expect(renameFailure?.kind == .permissionDenied)
        #expect(renameFailure?.errno == EACCES)
        #expect(base.fileExists("/db/wal-0001") && !base.fileExists("/db/old"), "the failed rename did nothing")
        #expect(fileError { try faulty.remove("/db/wal-0001") }?.kind == .permissionDenied)
        #expect(base.fileExists("/db/wal-0001"))
        try faulty.remove("/db/data2")
        #expect(faulty.injectedCount == 3)
    }

    @Test func tornWritesStoreAStrictPrefixAndThrow() throws {
        var lengths: Set<Int> = []
        for seed in UInt64(0)..<200 {
            let (base, faulty, handle) = try Self.setUp(seed: seed, contents: [])
            faulty.setRules([FaultRule([.write], limit: 1, fault: .tornWrite)])
            let written = (0..<100).map { UInt8($0 + 1) }
            let failure = fileError { try handle.write(at: 0, written) }
            #expect(failure?.kind == .io, "seed \(seed)")
            #expect(failure?.errno == EIO)
            let stored = try #require(base.contents(of: "/db/f"))
            #expect(stored.count < written.count, "seed \(seed): a torn write stored every byte")
            #expect(stored == Array(written.prefix(stored.count)), "seed \(seed): not a prefix")
            lengths.insert(stored.count)
            // The limit is spent: the retry goes through whole.
            try handle.write(at: 0, written)
            #expect(base.contents(of: "/db/f") == written)
        }
        #expect(lengths.count > 50, "prefixes of many lengths")
    }

    @Test func bitFlipsChangeExactlyOneBit() throws {
        var random = SeededRandom(seed: 0xB17)
        var flippedBits: Set<Int> = []
        for seed in UInt64(0)..<100 {
            let original = random.bytes(64)
            let (base, faulty, handle) = try Self.setUp(seed: seed, contents: original)

            faulty.setRules([FaultRule([.read], limit: 1, fault: .bitFlip)])
            let read = try handle.read(at: 0, count: 64)
            let difference = zip(read, original).map { ($0 ^ $1).nonzeroBitCount }
            #expect(difference.reduce(0, +) == 1, "seed \(seed): a read bit flip changed \(difference.reduce(0, +)) bits")
            if let byte = difference.firstIndex(of: 1) {
                flippedBits.insert(byte * 8 + (read[byte] ^ original[byte]).trailingZeroBitCount)
            }
            #expect(try handle.read(at: 0, count: 64) == original, "seed \(seed): the stored bytes are intact")

            faulty.setRules([FaultRule([.write], limit: 1, fault: .bitFlip)])
            try handle.write(at: 0, original)  // silently corrupted
            let stored = try #require(base.contents(of: "/db/f"))
            #expect(zip(stored, original).map { ($0 ^ $1).nonzeroBitCount }.reduce(0, +) == 1, "seed \(seed)")
            #expect(faulty.injectedCount == 2)
        }
        #expect(flippedBits.count > 60, "the flipped bit varies")
    }

    @Test func setRulesWithNoRulesTurnsFaultsOff() throws {
        let (_, faulty, handle) = try Self.setUp()
        faulty.setRules([FaultRule([.read, .write, .size], fault: .error(.io))])
        #expect(fileError { try handle.size() } != nil)
        #expect(fileError { try handle.read(at: 0, count: 1) } != nil)
        #expect(faulty.injectedCount == 2)
        faulty.setRules([])
        for _ in 0..<10 {
            _ = try handle.size()
            _ = try handle.read(at: 0, count: 1)
            try handle.write(at: 0, [9])
        }
        #expect(faulty.injectedCount == 2, "the count is kept, nothing more is injected")
        // A zero-length delay is injected (and counted) but the call succeeds.
        faulty.setRules([FaultRule([.size], limit: 1, fault: .slow(microseconds: 0))])
        #expect(try handle.size() == 4)
        #expect(faulty.injectedCount == 3)
    }

    @Test(arguments: FileOperation.allCases)
    func everyOperationCanBeFailedWithoutEffect(_ operation: FileOperation) throws {
        let (base, faulty, handle) = try Self.setUp()
        let lock = base.fileExists("/db/LOCK")
        faulty.setRules([FaultRule([operation], fault: .error(.io))])
        let failure: FileIOError?
        switch operation {
        case .open: failure = fileError { try faulty.open("/db/f", options: .read) }
        case .read: failure = fileError { try handle.read(at: 0, count: 4) }
        case .write: failure = fileError { try handle.write(at: 0, [9]) }
        case .sync: failure = fileError { try handle.sync() }
        case .dataSync: failure = fileError { try handle.dataSync() }
        case .truncate: failure = fileError { try handle.truncate(to: 1) }
        case .allocate: failure = fileError { try handle.allocate(size: 64) }
        case .size: failure = fileError { try handle.size() }
        case .remove: failure = fileError { try faulty.remove("/db/f") }
        case .rename: failure = fileError { try faulty.rename("/db/f", to: "/db/g") }
        case .list: failure = fileError { try faulty.list("/db") }
        case .createDirectory: failure = fileError { try faulty.createDirectory("/db/sub") }
        case .syncDirectory: failure = fileError { try faulty.syncDirectory("/db") }
        case .lock: failure = fileError { try faulty.lock("/db/LOCK") }
        }
        #expect(failure?.kind == .io)
        #expect(failure?.errno == EIO)
        #expect(failure?.path.hasPrefix("/db") == true)
        #expect(faulty.injectedCount == 1)
        // Nothing happened underneath.
        #expect(base.contents(of: "/db/f") == [1, 2, 3, 4])
        #expect(!base.fileExists("/db/g"))
        #expect(!base.isDirectory("/db/sub"))
        #expect(base.fileExists("/db/LOCK") == lock)
        try base.lock("/db/LOCK").unlock()  // not left held

        // Other operations are untouched.
        faulty.setRules([FaultRule(Set(FileOperation.allCases).subtracting([operation]), probability: 0, fault: .error(.io))])
        #expect(try faulty.list("/db").contains("f"))
    }
}
