// vectron-tool on HNSW checkpoints: dump shows the header, level histogram and degrees; verify
// passes a healthy checkpoint and reports a damaged one.

import FileIO
import FileIOSim
import Inspection
import Testing
import VectorIndex

@Suite struct CheckpointInspectionTests {
    func savedCheckpoint() throws -> MemoryFileSystem {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/idx")
        let index = try HNSWIndex(configuration: HNSWConfiguration(dimension: 4, metric: .euclid, m: 4, efConstruct: 16, ef: 16))
        for id in 0..<200 {
            let x = Float(id % 17), y = Float(id / 17)
            try index.insert(id: UInt64(id), vector: [x, y, x * y, x - y])
        }
        try index.delete(id: 5)
        try index.save(to: "/idx/hnsw.ckpt", appliedIndex: 42, fileSystem: fileSystem)
        return fileSystem
    }

    @Test func dumpShowsHeaderHistogramAndDegrees() throws {
        let fileSystem = try savedCheckpoint()
        let (text, json) = try Inspector.dump(path: "/idx/hnsw.ckpt", fileSystem: fileSystem)
        #expect(text.contains("metric           euclid"))
        #expect(text.contains("applied index    42"))
        #expect(text.contains("level histogram  L0="))
        #expect(text.contains("degree L0"))
        #expect(text.contains("tombstones       1"))
        #expect(json.rendered().contains("\"live\":199"))
    }

    @Test func verifyPassesAHealthyCheckpointAndReportsADamagedOne() throws {
        let fileSystem = try savedCheckpoint()
        let findings = try Inspector.verify(path: "/idx", fileSystem: fileSystem)
        #expect(findings.count == 1 && findings[0].status == .ok, "\(findings.map(\.line))")
        #expect(findings.first?.summary.contains("199 live, 1 deleted") == true)
        var bytes = try #require(fileSystem.contents(of: "/idx/hnsw.ckpt"))
        bytes[bytes.count - 150] ^= 0x20
        let handle = try fileSystem.open("/idx/hnsw.ckpt", options: [.read, .write, .truncate])
        try handle.write(at: 0, bytes)
        handle.close()
        let damaged = try Inspector.verify(path: "/idx/hnsw.ckpt", fileSystem: fileSystem)
        #expect(damaged.count == 1 && damaged[0].status == .corrupt)
    }
}
