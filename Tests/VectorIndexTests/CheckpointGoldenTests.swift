// The golden HNSW checkpoint (Format/hnsw.md): Format/golden/hnsw/small.ckpt is a small index
// built deterministically below — live nodes, a tombstone, free slots left by a consolidation,
// a reused slot and upper levels. The test loads it, checks it answers like a fresh build of the
// same steps, and that saving that build gives the same bytes (the format did not drift).
//
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter CheckpointGoldenTests

import FileIO
import FileIOSim
import Foundation
import Testing
@testable import VectorIndex

let hnswGoldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path + "/Format/golden/hnsw"

func goldenIndex() throws -> HNSWIndex {
    var configuration = HNSWConfiguration(dimension: 3, metric: .euclid, m: 3, efConstruct: 12, ef: 8, seed: 7)
    configuration.consolidationThreshold = 0.2
    let index = try HNSWIndex(configuration: configuration)
    for id in 0..<24 {
        let value = Float(id)
        try index.insert(id: UInt64(100 + id), vector: [value, (value * 7).truncatingRemainder(dividingBy: 5), -value / 2])
    }
    for id in [101, 104, 107, 110, 113] { try index.delete(id: UInt64(id)) }  // the 5th consolidates
    try index.delete(id: 120)  // stays a tombstone
    try index.insert(id: 999, vector: [3.5, 1, -1])  // reuses a freed slot
    return index
}

@Suite struct CheckpointGoldenTests {
    @Test func goldenCheckpointLoadsAndMatchesAFreshBuild() throws {
        let index = try goldenIndex()
        #expect(index.tombstoneCount == 1 && index.nodeSlots < 24 + 1 + 1)
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/g")
        try index.save(to: "/g/small.ckpt", appliedIndex: 12_345, fileSystem: fileSystem)
        let fresh = try #require(fileSystem.contents(of: "/g/small.ckpt"))
        let path = hnswGoldenDirectory + "/small.ckpt"
        if ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil {
            try FileManager.default.createDirectory(atPath: hnswGoldenDirectory, withIntermediateDirectories: true)
            try Data(fresh).write(to: URL(fileURLWithPath: path))
        }
        let golden = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(golden == fresh, "saving the golden index no longer gives Format/golden/hnsw/small.ckpt")
        let (loaded, applied) = try HNSWIndex.load(from: path, fileSystem: POSIXFileSystem())
        #expect(applied == 12_345 && loaded.count == index.count && loaded.tombstoneCount == 1)
        for probe in 0..<12 {
            let query: [Float] = [Float(probe) * 2, 1, -Float(probe)]
            #expect(try loaded.search(query, k: 4) == index.search(query, k: 4))
        }
        #expect(loaded.inspect().problems.isEmpty)
    }
}
