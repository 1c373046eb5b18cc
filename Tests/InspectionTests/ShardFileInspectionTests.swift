// vectron-tool on a shard's files: a snapshot dumps as its header and chunk list and verifies
// whole (embedded checkpoint included); a damaged one is reported at the chunk that fails; a
// shard directory's keys files verify too.

import FileIO
import FileIOSim
import Inspection
import LSM
import Payload
import Shard
import Testing
import VectorIndex

@Suite struct ShardFileInspectionTests {
    /// A shard of group 7 with 300 points, checkpointed, and its snapshot at /node/7.vxsnap.
    func exported() throws -> MemoryFileSystem {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/node")
        var options = StorageOptions()
        options.walMode = .external
        options.background = .inline
        let engine = try StorageEngine.open(directory: "/node/db", fileSystem: fileSystem, options: options)
        defer { engine.close() }
        let shard = try Shard(group: 7, directory: "/node/7", engine: engine, fileSystem: fileSystem,
                              configuration: HNSWConfiguration(dimension: 3, metric: .dot, m: 4, efConstruct: 16, ef: 16, seed: 3))
        var entries: [(index: UInt64, data: [UInt8])] = []
        for batch in 0..<3 {
            let points = (0..<100).map { offset -> ShardCommand.Point in
                let id = batch * 100 + offset
                // A payload of ~4 KiB: the points fill several chunks.
                return ShardCommand.Point(key: PointID.number(UInt64(id)).encodedKey, vector: [Float(id), 1, -Float(id % 7)],
                                          payload: Array("{\"pad\":\"\(String(repeating: "x", count: 4_000))\"}".utf8))
            }
            entries.append((UInt64(batch + 1), ShardCommand.upsert(points).encode()))
        }
        try shard.apply(entries)
        try shard.exportSnapshot(to: "/node/7.vxsnap")
        return fileSystem
    }

    @Test func dumpListsTheChunksAndVerifyChecksTheWhole() throws {
        let fileSystem = try exported()
        let (text, json) = try Inspector.dump(path: "/node/7.vxsnap", fileSystem: fileSystem)
        #expect(text.contains("group            7"))
        #expect(text.contains("applied index    3"))
        #expect(text.contains("points, keys"))
        #expect(text.contains("300 points, keys file"))
        #expect(!text.contains("CORRUPT"))
        #expect(json.rendered().contains("\"format\":\"shard-snapshot\""))

        let findings = try Inspector.verify(path: "/node", fileSystem: fileSystem)
        let snapshot = findings.filter { $0.format == ShardFileInspector.snapshotFormat }
        #expect(snapshot.count == 1 && snapshot[0].status == .ok, "\(findings.map(\.line))")
        #expect(snapshot.first?.summary.contains("group 7, applied index 3, 300 points, dimension 3") == true, "\(snapshot.map(\.line))")
        let keys = findings.filter { $0.format == ShardFileInspector.keysFormat }
        #expect(keys.count == 1 && keys[0].status == .ok && keys[0].summary.contains("300 keys"), "\(findings.map(\.line))")
        #expect(findings.allSatisfy { $0.status == .ok }, "\(findings.map(\.line))")
    }

    @Test func aDamagedSnapshotIsReportedWhereItFails() throws {
        let fileSystem = try exported()
        var bytes = try #require(fileSystem.contents(of: "/node/7.vxsnap"))
        // A byte in the middle of the points: the chunk holding it fails its checksum.
        let position = bytes.count / 3
        bytes[position] ^= 0x01
        try fileSystem.writeAtomically("/node/7.vxsnap", bytes)
        let findings = try Inspector.verify(path: "/node/7.vxsnap", fileSystem: fileSystem)
        #expect(findings.count == 1 && findings[0].status == .corrupt, "\(findings.map(\.line))")
        #expect(findings.first?.problems.first?.contains("snapshot.chunk.checksum") == true, "\(findings.map(\.line))")
        let (text, _) = try Inspector.dump(path: "/node/7.vxsnap", fileSystem: fileSystem)
        #expect(text.contains("CORRUPT at"))
        // Cut short at a chunk boundary: only the end chunk's absence tells.
        bytes[position] ^= 0x01
        try fileSystem.writeAtomically("/node/7.vxsnap", bytes)
        let reader = try ShardSnapshot.Reader(path: "/node/7.vxsnap", fileSystem: fileSystem)
        let first = try #require(try reader.next())
        let cut = Array(bytes[..<(Int(first.offset) + 5 + first.payload.count + 8)])
        try fileSystem.writeAtomically("/node/7.vxsnap", cut)
        let truncated = try Inspector.verify(path: "/node/7.vxsnap", fileSystem: fileSystem)
        #expect(truncated.count == 1 && truncated[0].status == .corrupt, "\(truncated.map(\.line))")
    }

    @Test func aDamagedKeysFileIsReported() throws {
        let fileSystem = try exported()
        let name = try #require(try fileSystem.list("/node/7").first { $0.hasPrefix("keys-") })
        var bytes = try #require(fileSystem.contents(of: "/node/7/\(name)"))
        bytes[20] ^= 0x40
        try fileSystem.writeAtomically("/node/7/\(name)", bytes)
        let findings = try Inspector.verify(path: "/node/7/\(name)", fileSystem: fileSystem)
        #expect(findings.count == 1 && findings[0].status == .corrupt && findings[0].format == ShardFileInspector.keysFormat, "\(findings.map(\.line))")
        let (text, _) = try Inspector.dump(path: "/node/7/\(name)", fileSystem: fileSystem)
        #expect(text.contains("CORRUPT: "))
    }
}
