// Direct tests of the storage engine: each behaviour once, readably. The metamorphic tests
// cover the combinations.

import Basics
import FileIO
import FileIOSim
import LSM
import StorageFormat
import Testing

func key(_ index: Int) -> [UInt8] { Array("key\(1_000_000 + index)".utf8) }
func value(_ index: Int, size: Int = 20) -> [UInt8] {
    var random = SeededRandom(seed: UInt64(index))
    return random.bytes(size)
}

func smallOptions(_ background: StorageOptions.BackgroundMode = .inline) -> StorageOptions {
    var options = StorageOptions()
    options.background = background
    options.memtableBytes = 8 << 10
    options.blockBytes = 512
    options.segmentBytesTarget = 16 << 10
    options.levelBaseBytes = 64 << 10
    options.levelSizeRatio = 4
    options.level0CompactionTrigger = 3
    options.blockCacheBytes = 64 << 10
    options.walSegmentBytes = 64 << 10
    options.manifestEditsMax = 20
    return options
}

@Suite struct StorageEngineTests {
    @Test func putGetDeleteAcrossFlushAndReopen() throws {
        let fs = MemoryFileSystem()
        var engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions())
        for index in 0..<2000 { try engine.put(key(index), value(index)) }
        for index in stride(from: 0, to: 2000, by: 3) { try engine.delete(key(index)) }
        let stats = engine.statistics
        #expect(stats.flushes > 0)
        #expect(stats.compactions + stats.trivialMoves > 0)
        func check(_ engine: StorageEngine) throws {
            for index in 0..<2000 {
                #expect(try engine.get(key(index)) == (index % 3 == 0 ? nil : value(index)), "key \(index)")
            }
            #expect(try engine.get(Array("absent".utf8)) == nil)
        }
        try check(engine)
        engine.close()
        engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions())
        try check(engine)
        try engine.compact()
        try check(engine)
        #expect(engine.statistics.levels[0].segments == 0)
        engine.close()
    }

    @Test func iteratorsForwardReverseAndBounds() throws {
        let fs = MemoryFileSystem()
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions())
        for index in 0..<500 { try engine.put(key(index), value(index)) }
        try engine.flush()
        for index in 500..<1000 { try engine.put(key(index), value(index)) }
        for index in stride(from: 1, to: 1000, by: 2) { try engine.delete(key(index)) }
        let all = try engine.scan()
        #expect(all.map(\.key) == stride(from: 0, to: 1000, by: 2).map { key($0) })
        let reversed = try engine.scan(reverse: true)
        #expect(reversed.map(\.key) == all.map(\.key).reversed())
        let bounded = try engine.scan(lower: key(100), upper: key(200))
        #expect(bounded.map(\.key) == stride(from: 100, to: 200, by: 2).map { key($0) })
        let boundedReverse = try engine.scan(lower: key(101), upper: key(199), reverse: true, limit: 3)
        #expect(boundedReverse.map(\.key) == [key(198), key(196), key(194)])
        engine.close()
    }

    @Test func snapshotsSeeOldVersionsThroughFlushAndCompaction() throws {
        let fs = MemoryFileSystem()
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions())
        for index in 0..<300 { try engine.put(key(index), [1]) }
        let snapshot = engine.snapshot()
        for index in 0..<300 { try engine.put(key(index), [2]) }
        try engine.deleteRange(from: key(0), to: key(100))
        try engine.compact()
        #expect(try engine.get(key(5), snapshot: snapshot) == [1])
        #expect(try engine.get(key(5)) == nil)
        #expect(try engine.get(key(150)) == [2])
        #expect(try engine.scan(snapshot: snapshot).count == 300)
        #expect(try engine.scan().count == 200)
        snapshot.release()
        try engine.compact()
        #expect(try engine.scan().count == 200)
        engine.close()
    }

    @Test func backgroundThreadsFlushAndCompact() throws {
        let fs = MemoryFileSystem()
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions(.threads))
        for index in 0..<5000 { try engine.put(key(index % 1500), value(index)) }
        try engine.flush()
        for index in 3500..<5000 { #expect(try engine.get(key(index % 1500)) == value(index)) }
        try engine.compact()
        for index in 3500..<5000 { #expect(try engine.get(key(index % 1500)) == value(index)) }
        #expect(try engine.scan().count == 1500)
        engine.close()
    }

    @Test func syncedWritesSurviveACrash() throws {
        let fs = MemoryFileSystem()
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions())
        for index in 0..<700 { try engine.put(key(index), value(index), sync: index % 100 == 99) }
        let crashed = fs.crashClone(seed: 7)
        engine.close()
        let recovered = try StorageEngine.open(directory: "/db", fileSystem: crashed, options: smallOptions())
        for index in 0..<700 { #expect(try recovered.get(key(index)) == value(index)) }
        recovered.close()
    }

    @Test func externalModeReportsDurableAppliedIndex() throws {
        let fs = MemoryFileSystem()
        var options = smallOptions()
        options.walMode = .external
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: options)
        for index in 0..<100 {
            var batch = WriteBatch()
            batch.put(key(index), value(index))
            batch.setAppliedIndex(stream: 9, index: UInt64(index + 1))
            try engine.write(batch)
        }
        try engine.flush()
        #expect(engine.durableAppliedIndexes[9] == 100)
        var batch = WriteBatch()
        batch.put(key(500), value(500))
        batch.setAppliedIndex(stream: 9, index: 101)
        try engine.write(batch)
        let crashed = fs.crashClone(seed: 1)
        engine.close()
        let recovered = try StorageEngine.open(directory: "/db", fileSystem: crashed, options: options)
        #expect(recovered.durableAppliedIndexes[9] == 100)
        #expect(try recovered.get(key(99)) == value(99))
        #expect(try recovered.get(key(500)) == nil)
        recovered.close()
    }

    @Test func invalidInputIsATypedError() throws {
        let engine = try StorageEngine.open(directory: "/db", fileSystem: MemoryFileSystem(), options: smallOptions())
        let tooLong = [UInt8](repeating: 1, count: StorageEngine.keyBytesLimit + 1)
        let result = Result { () throws(StorageError) in try engine.put(tooLong, []) }
        guard case .failure(.invalidArgument) = result else {
            Issue.record("expected invalidArgument, got \(result)")
            return
        }
        engine.close()
        #expect(throws: StorageError.closed) { try engine.get([1]) }
    }

    @Test func closeFlushesAndReleasesTheWAL() throws {
        let fs = MemoryFileSystem()
        var options = smallOptions()
        options.memtableBytes = 1 << 20
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: options)
        for index in 0..<3000 { try engine.put(key(index), value(index, size: 200)) }
        #expect(engine.statistics.flushes == 0)
        engine.close()
        let walBytes = try fs.list("/db/wal").compactMap { fs.contents(of: "/db/wal/" + $0)?.count }.reduce(0, +)
        #expect(walBytes < 4096, "WAL holds \(walBytes) bytes after a clean close")
        let reopened = try StorageEngine.open(directory: "/db", fileSystem: fs, options: options)
        #expect(reopened.statistics.memtableBytes == 0, "nothing replayed")
        for index in stride(from: 0, to: 3000, by: 97) { #expect(try reopened.get(key(index)) == value(index, size: 200)) }
        reopened.close()
    }

    @Test func secondOpenIsLocked() throws {
        let fs = MemoryFileSystem()
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs)
        #expect(throws: StorageError.locked("/db")) { try StorageEngine.open(directory: "/db", fileSystem: fs) }
        engine.close()
    }
}
