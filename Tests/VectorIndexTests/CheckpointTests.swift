// Checkpoints (Format/hnsw.md): save → load answers every query identically and carries the
// index's whole state (tombstones, free slots, the level generator's position); every flipped
// byte and every truncation of a small checkpoint is a typed error, never a crash.

import TestSupport
import Basics
import Checksum
import FileIO
import FileIOSim
import Testing
@testable import VectorIndex

@Suite(.ownThread) struct CheckpointTests {
    static func smallIndex(count: Int = 300, dimension: Int = 8, seed: UInt64 = 61) throws -> HNSWIndex {
        let index = try HNSWIndex(configuration: HNSWConfiguration(dimension: dimension, metric: .cosine, m: 4, efConstruct: 24, ef: 16))
        for (id, vector) in clusteredVectors(count: count, dimension: dimension, seed: seed).enumerated() {
            try index.insert(id: UInt64(id) * 3 + 1, vector: vector)
        }
        return index
    }

    @Test func saveThenLoadAnswersIdentically() throws {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/idx")
        let index = try Self.smallIndex(count: 1500, dimension: 12)
        // Tombstones, a consolidation (free slots) and reuse, so all state is exercised.
        for id in stride(from: UInt64(1), to: 700, by: 9) { try index.delete(id: id) }
        for offset in 0..<40 { try index.insert(id: 10_000 + UInt64(offset), vector: clusteredVectors(count: 1, dimension: 12, seed: 900 + UInt64(offset))[0]) }
        try index.save(to: "/idx/hnsw.ckpt", appliedIndex: 77, fileSystem: fileSystem)
        let (loaded, applied) = try HNSWIndex.load(from: "/idx/hnsw.ckpt", fileSystem: fileSystem)
        #expect(applied == 77)
        #expect(loaded.count == index.count && loaded.tombstoneCount == index.tombstoneCount && loaded.nodeSlots == index.nodeSlots)
        for query in clusteredVectors(count: 50, dimension: 12, seed: 62) {
            #expect(try loaded.search(query, k: 10) == index.search(query, k: 10))
            #expect(try loaded.exactSearch(query, k: 5) == index.exactSearch(query, k: 5))
        }
        // Both continue identically: the next inserts draw the same levels.
        for offset in 0..<30 {
            let vector = clusteredVectors(count: 1, dimension: 12, seed: 5000 + UInt64(offset))[0]
            try index.insert(id: 20_000 + UInt64(offset), vector: vector)
            try loaded.insert(id: 20_000 + UInt64(offset), vector: vector)
        }
        try index.save(to: "/idx/a.ckpt", appliedIndex: 1, fileSystem: fileSystem)
        try loaded.save(to: "/idx/b.ckpt", appliedIndex: 1, fileSystem: fileSystem)
        #expect(fileSystem.contents(of: "/idx/a.ckpt") == fileSystem.contents(of: "/idx/b.ckpt"))
    }

    @Test func anEmptyIndexRoundTrips() throws {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/idx")
        let index = try HNSWIndex(configuration: HNSWConfiguration(dimension: 5, metric: .euclid))
        try index.save(to: "/idx/empty", appliedIndex: 0, fileSystem: fileSystem)
        let loaded = try HNSWIndex.load(from: "/idx/empty", fileSystem: fileSystem).index
        #expect(loaded.count == 0 && loaded.dimension == 5 && loaded.metric == .euclid)
        try loaded.insert(id: 1, vector: [1, 2, 3, 4, 5])
        #expect(try loaded.search([1, 2, 3, 4, 5], k: 1).first?.id == 1)
    }

    /// Every single-byte flip (to each of two values) and every truncation: a typed error.
    @Test func everyFlippedByteAndTruncationIsATypedError() throws {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/idx")
        let index = try Self.smallIndex(count: 40, dimension: 4)
        try index.delete(id: 4)
        try index.save(to: "/idx/c", appliedIndex: 5, fileSystem: fileSystem)
        let original = try #require(fileSystem.contents(of: "/idx/c"))
        var undetected: [Int] = []
        func loads(_ bytes: [UInt8]) -> Bool {
            let handle = try! fileSystem.open("/idx/d", options: [.read, .write, .create, .truncate])
            try! handle.write(at: 0, bytes)
            handle.close()
            switch Result(catching: { () throws(CheckpointError) in try HNSWIndex.load(from: "/idx/d", fileSystem: fileSystem) }) {
            case .success: return true
            case .failure(.corrupt): return false
            case let .failure(error): Issue.record("unexpected error \(error)"); return false
            }
        }
        for position in original.indices {
            for mask: UInt8 in [0x01, 0x80] {
                var damaged = original
                damaged[position] ^= mask
                // Bytes no checksum covers: inter-section padding only.
                if loads(damaged) { undetected.append(position) }
            }
        }
        let padding = Set(paddingPositions(original))
        #expect(undetected.allSatisfy { padding.contains($0) }, "flips at \(undetected.filter { !padding.contains($0) }.prefix(10)) loaded")
        for length in stride(from: 0, to: original.count, by: 7) {
            #expect(!loads(Array(original.prefix(length))), "a checkpoint cut to \(length) bytes loaded")
        }
        #expect(loads(original))
    }

    /// Offsets of the zero padding between sections (never read, so flips there are harmless).
    func paddingPositions(_ bytes: [UInt8]) -> [Int] {
        guard let header = try? CheckpointHeader.decode(Array(bytes.prefix(CheckpointHeader.bytes)), fileSize: UInt64(bytes.count)) else { return [] }
        var positions: [Int] = []
        var end = CheckpointHeader.bytes
        for section in header.sections {
            positions += Array(end..<Int(section.offset))
            end = Int(section.offset + section.length)
        }
        return positions
    }

    /// Structurally wrong files with valid checksums (what the fuzzer's checksum fixing reaches):
    /// a neighbour id out of range is refused by the graph checks.
    @Test func aLinkOutOfRangeWithValidChecksumsIsRefused() throws {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/idx")
        let index = try Self.smallIndex(count: 30, dimension: 4)
        try index.save(to: "/idx/e", appliedIndex: 0, fileSystem: fileSystem)
        var bytes = try #require(fileSystem.contents(of: "/idx/e"))
        var header = try CheckpointHeader.decode(Array(bytes.prefix(CheckpointHeader.bytes)), fileSize: UInt64(bytes.count))
        let links = header.sections[1]
        // Node 0's first neighbour := 30 (one past the last node).
        let at = Int(links.offset) + 4
        withUnsafeBytes(of: UInt32(30).littleEndian) { bytes.replaceSubrange(at..<(at + 4), with: $0) }
        header.sections[1].checksum = XXH3.hash(Array(bytes[Int(links.offset)..<Int(links.offset + links.length)]))
        bytes.replaceSubrange(0..<CheckpointHeader.bytes, with: header.encode())
        let handle = try fileSystem.open("/idx/e", options: [.read, .write, .truncate])
        try handle.write(at: 0, bytes)
        handle.close()
        let result = Result { () throws(CheckpointError) in try HNSWIndex.load(from: "/idx/e", fileSystem: fileSystem) }
        guard case let .failure(.corrupt(_, error)) = result else { Issue.record("an out-of-range link loaded"); return }
        #expect(error.field == "level0Links")
    }

    @Test func aCrashDuringSaveLeavesTheOldCheckpoint() throws {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/idx")
        let index = try Self.smallIndex(count: 50, dimension: 4)
        try index.save(to: "/idx/f", appliedIndex: 1, fileSystem: fileSystem)
        try index.insert(id: 999, vector: [1, 0, 0, 0])
        // The second save is cut short by a crash before its rename is durable.
        let faulty = FaultInjectingFileSystem(wrapping: fileSystem, seed: 3, rules: [FaultRule([.rename], fault: .error(.io))])
        #expect(throws: CheckpointError.self) { try index.save(to: "/idx/f", appliedIndex: 2, fileSystem: faulty) }
        let crashed = fileSystem.crashClone(seed: 4)
        let (loaded, applied) = try HNSWIndex.load(from: "/idx/f", fileSystem: crashed)
        #expect(applied == 1 && !loaded.contains(999) && loaded.count == 50)
    }

    /// A checkpoint holds changes off (`mutationGate` exclusive) but reads under a shared
    /// `structureLock`, so a search runs while one is being written. (Before, `save` took the
    /// structure lock exclusively for the whole write and sync, and searches stalled for
    /// seconds on a large index.)
    @Test func searchesRunWhileACheckpointHoldsTheIndex() throws {
        let index = try HNSWIndex(configuration: HNSWConfiguration(dimension: 4, metric: .euclid, m: 4, efConstruct: 16, ef: 16))
        for id in 0..<64 { try index.insert(id: UInt64(id), vector: [Float(id), 1, 2, 3]) }
        // The locks `save` holds while it writes.
        index.mutationGate.lockExclusive()
        index.structureLock.lockShared()
        let done = Event()
        nonisolated(unsafe) var found: [UInt64] = []
        startDetachedThread {
            found = (try? index.search([5, 1, 2, 3], k: 1).map(\.id)) ?? []
            done.set()
        }
        done.wait()
        index.structureLock.unlock()
        index.mutationGate.unlock()
        #expect(found == [5])
    }
}
