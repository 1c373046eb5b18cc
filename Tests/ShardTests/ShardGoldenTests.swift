// Golden files of the shard formats (Format/shard.md), in Format/golden/shard/:
//   commands.bin  one command of each kind, as a sequence of `bytes` (varint length, command)
//   point.bin     one point record
//   keys.bin      a keys file (§4.1) of a vector state that saw upserts and a delete
//   snapshot.vxsnap  a shard snapshot (§6) of group 9 at applied index 3
// The tests decode the committed bytes, compare them with the values below and re-encode them
// byte for byte, so a codec change that breaks old logs or checkpoints fails here.
//
// Regenerate (only for a new format version, never to paper over a change):
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter ShardGoldenTests

import FileIO
import FileIOSim
import Foundation
import LSM
import Payload
@testable import Shard
import Testing
import VectorIndex
import Wire

let shardGoldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path + "/Format/golden/shard"

enum ShardGolden {
    static let one = PointID.number(1).encodedKey
    static let two = PointID.number(2).encodedKey
    static let uuid = PointID.uuid(UUIDBytes(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210)).encodedKey

    static let commands: [ShardCommand] = [
        .upsert([
            .init(key: one, vector: [0.5, -1.25, 3], payload: Array(#"{"color":"red","n":1}"#.utf8)),
            .init(key: uuid, vector: [0, 1, 0], payload: Array("{}".utf8)),
        ]),
        .delete(keys: [two, uuid]),
        .setPayload(keys: [one], payload: Array(#"{"x":{"y":true}}"#.utf8), path: "deep.inner"),
        .overwritePayload(keys: [one, two], payload: Array(#"{"tags":["a","b"]}"#.utf8)),
        .deletePayloadKeys(keys: [one], paths: ["color", "deep.inner.x"]),
        .clearPayload(keys: [uuid]),
    ]

    static let point = PointRecord(vector: [1, -0.5, 0.25, 1e-3], payload: Array(#"{"city":"Zürich","n":[1,2]}"#.utf8))

    /// Numbers 1 (key one), 2 (uuid, deleted), 3 (two), then one's update keeps 1: next number 4.
    static func keysState() throws -> VectorState {
        let state = try VectorState(configuration: HNSWConfiguration(dimension: 3, metric: .euclid, m: 4, efConstruct: 8, ef: 8, seed: 1))
        try state.apply(.upsert([.init(key: one, vector: [1, 2, 3], payload: []), .init(key: uuid, vector: [3, 2, 1], payload: [])]), at: 5)
        try state.apply(.upsert([.init(key: two, vector: [0, 0, 1], payload: []), .init(key: one, vector: [1, 1, 1], payload: [])]), at: 6)
        try state.apply(.delete(keys: [uuid]), at: 7)
        return state
    }

    static let snapshotConfiguration = HNSWConfiguration(dimension: 3, metric: .euclid, m: 4, efConstruct: 8, ef: 8, seed: 1)
    static let three = PointID.number(3).encodedKey

    /// Group 9: points 1 and 2 upserted at index 1, 3 at index 2, 2 deleted at index 3.
    static let snapshotEntries: [(index: UInt64, data: [UInt8])] = [
        (1, ShardCommand.upsert([.init(key: one, vector: [1, 2, 3], payload: Array(#"{"a":1}"#.utf8)),
                                 .init(key: two, vector: [3, 2, 1], payload: Array("{}".utf8))]).encode()),
        (2, ShardCommand.upsert([.init(key: three, vector: [0, 0.5, -1], payload: Array(#"{"b":[true,null]}"#.utf8))]).encode()),
        (3, ShardCommand.delete(keys: [two]).encode()),
    ]

    static func snapshotStorageOptions() -> StorageOptions {
        var options = StorageOptions()
        options.walMode = .external
        options.background = .inline
        return options
    }

    /// The snapshot file the steps above give.
    static func snapshotFile() throws -> [UInt8] {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/n")
        let engine = try StorageEngine.open(directory: "/n/db", fileSystem: fileSystem, options: snapshotStorageOptions())
        defer { engine.close() }
        let shard = try Shard(group: 9, directory: "/n/9", engine: engine, fileSystem: fileSystem, configuration: snapshotConfiguration)
        try shard.apply(snapshotEntries)
        try shard.exportSnapshot(to: "/n/9.vxsnap")
        let handle = try fileSystem.open("/n/9.vxsnap", options: .read)
        defer { handle.close() }
        return try handle.readAll()
    }

    static func commandsFile() -> [UInt8] {
        var writer = ByteWriter()
        for command in commands { writer.writeLengthPrefixed(command.encode()) }
        return writer.finish()
    }

    static func read(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: shardGoldenDirectory + "/" + name)))
    }
}

@Suite(.serialized) struct ShardGoldenTests {
    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try FileManager.default.createDirectory(atPath: shardGoldenDirectory, withIntermediateDirectories: true)
        let files: [(String, [UInt8])] = [
            ("commands.bin", ShardGolden.commandsFile()),
            ("point.bin", ShardGolden.point.encode()),
            ("keys.bin", try ShardGolden.keysState().encodeKeys()),
            ("snapshot.vxsnap", try ShardGolden.snapshotFile()),
        ]
        for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: shardGoldenDirectory + "/" + name)) }
    }

    @Test func goldenCommandsDecodeAndReencode() throws {
        let bytes = try ShardGolden.read("commands.bin")
        var reader = ByteReader(bytes)
        var decoded: [ShardCommand] = []
        while !reader.isAtEnd {
            let record = Array(try reader.readLengthPrefixed("golden.command", limit: 1 << 20))
            let command = try ShardCommand.decode(record)
            #expect(command.encode() == record)
            decoded.append(command)
        }
        #expect(decoded == ShardGolden.commands)
        #expect(Set(decoded.map { $0.encode()[1] }) == Set(1...6), "one command of each kind")
        #expect(ShardGolden.commandsFile() == bytes)
    }

    @Test func goldenPointDecodesAndReencodes() throws {
        let bytes = try ShardGolden.read("point.bin")
        let record = try PointRecord.decode(bytes)
        #expect(record == ShardGolden.point)
        #expect(record.encode() == bytes)
    }

    @Test func goldenKeysFileDecodesAndReencodes() throws {
        let bytes = try ShardGolden.read("keys.bin")
        let decoded = try VectorState.decodeKeys(bytes)
        #expect(decoded.applied == 7)
        #expect(decoded.nextNumber == 4)
        #expect(decoded.keys == [1: ShardGolden.one, 3: ShardGolden.two])
        let state = VectorState(index: try HNSWIndex(configuration: HNSWConfiguration(dimension: 3, metric: .euclid)),
                                keys: decoded.keys, nextNumber: decoded.nextNumber, appliedIndex: decoded.applied)
        #expect(state.encodeKeys() == bytes)
        #expect(try ShardGolden.keysState().encodeKeys() == bytes, "the same steps give the same file")
    }

    @Test func goldenSnapshotChecksInstallsAndIsReproduced() throws {
        let bytes = try ShardGolden.read("snapshot.vxsnap")
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/r")
        try fileSystem.writeAtomically("/r/9.vxsnap", bytes)
        let (info, state) = try ShardSnapshot.check(path: "/r/9.vxsnap", fileSystem: fileSystem, configuration: ShardGolden.snapshotConfiguration,
                                                    staging: fileSystem, indexPath: "/r/i", keysPath: "/r/k")
        #expect(info == ShardSnapshotInfo(group: 9, appliedIndex: 3, points: 2, keysFileBytes: info.keysFileBytes,
                                          indexFileBytes: info.indexFileBytes, chunks: 4, bytes: UInt64(bytes.count)))
        #expect(state.count == 2 && state.contains(key: ShardGolden.one) && state.contains(key: ShardGolden.three))
        let engine = try StorageEngine.open(directory: "/r/db", fileSystem: fileSystem, options: ShardGolden.snapshotStorageOptions())
        defer { engine.close() }
        let shard = try Shard.installSnapshot(from: "/r/9.vxsnap", group: 9, directory: "/r/9", engine: engine, fileSystem: fileSystem,
                                              configuration: ShardGolden.snapshotConfiguration)
        #expect(shard.appliedIndex == 3)
        #expect(try shard.scroll(after: nil, limit: 10).points == [
            ShardPoint(key: ShardGolden.one, record: PointRecord(vector: [1, 2, 3], payload: Array(#"{"a":1}"#.utf8))),
            ShardPoint(key: ShardGolden.three, record: PointRecord(vector: [0, 0.5, -1], payload: Array(#"{"b":[true,null]}"#.utf8))),
        ])
        #expect(try ShardGolden.snapshotFile() == bytes, "the same steps give the same file")
    }
}
