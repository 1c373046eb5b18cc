// Golden files for Format/raft.md: Format/golden/raft/log/ holds a small record log written by
// `writeGoldenRaft` — two groups, a membership change, a conflicting suffix, a compaction and a
// leader's snapshot — and Format/golden/raft/*.vote two hard-state files. The tests decode the
// committed bytes (so a change that breaks old files fails here) and check that writing the same
// history again gives the same bytes.
//
// Regenerate (only for a new format version, never to paper over a change):
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter RaftGoldenTests

import FileIO
import FileIOSim
import Checksum
import Foundation
import Raft
import RecordLog
import Testing
@testable import RaftStorage

let raftGoldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Format/golden/raft").path

func raftGoldenOptions() -> RecordLogOptions {
    var options = smallLogOptions()
    options.logID = 0x4A_F7
    options.creationTimeOverride = 1_790_000_000_000_000_000
    return options
}

let goldenMembership = Membership(voters: [1, 2, 3])
let goldenCompaction = Snapshot(metadata: SnapshotMetadata(index: 3, term: 1, membership: goldenMembership), data: Array("state at 3".utf8))
let goldenLeaderSnapshot = Snapshot(metadata: SnapshotMetadata(index: 10, term: 3, membership: Membership(voters: [1, 2], learners: [4])),
                                    data: Array("state at 10".utf8))

func goldenEntries(_ range: ClosedRange<UInt64>, term: UInt64) -> [Entry] {
    range.map { index in
        index == 2 ? Entry(term: term, index: index, kind: .configurationChange, data: ConfigurationChange(.addLearner, 4).encoded)
                   : Entry(term: term, index: index, data: Array("entry \(index) of term \(term)".utf8))
    }
}

/// What replaying the golden log must give.
let goldenGroups: [UInt64: RecoveredGroup] = [
    1: RecoveredGroup(hardState: HardState(term: 2, vote: 1, commit: 4), snapshot: goldenCompaction,
                      entries: goldenEntries(4...4, term: 1) + goldenEntries(5...6, term: 2)),
    2: RecoveredGroup(hardState: HardState(term: 3, vote: 0, commit: 10), snapshot: goldenLeaderSnapshot,
                      entries: goldenEntries(11...12, term: 3)),
]
let goldenVotes: [String: DurableVote] = [
    "1.vote": DurableVote(term: 2, vote: 1, recovering: false),
    "2.vote": DurableVote(term: 3, vote: 0, recovering: true),
]

func writeGoldenRaft(directory: String, fileSystem: any FileSystem) throws {
    let log = try RecordLog.open(directory: directory + "/log", fileSystem: fileSystem, options: raftGoldenOptions()).0
    let store = RaftLogStore(log: log)
    try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 1, vote: 1, commit: 0), entries: goldenEntries(1...6, term: 1))),
                       .init(group: 2, ready: ready(entries: goldenEntries(1...3, term: 1)))])
    try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 2, vote: 1, commit: 4), entries: goldenEntries(5...6, term: 2)))])
    try store.compact(group: 1, snapshot: goldenCompaction)
    try store.persist([.init(group: 2, ready: ready(hard: HardState(term: 3, vote: 0, commit: 10), snapshot: goldenLeaderSnapshot))])
    try store.persist([.init(group: 2, ready: ready(entries: goldenEntries(11...12, term: 3)))])
    log.close()
    for (name, state) in goldenVotes { try HardStateFile.write(directory + "/" + name, state, fileSystem: fileSystem) }
}

/// A batch of messages on the wire (Format/raft.md §8): `messages.bin`.
let goldenMessages: [(group: UInt64, message: Message)] = {
    var append = Message(kind: .append, from: 1, to: 2, term: 3, logTerm: 3, index: 10, entries: goldenEntries(11...12, term: 3),
                         commit: 10, lastIndex: 12)
    append.recoveryNonce = 0
    var quiesce = Message(kind: .heartbeat, from: 1, to: 2, term: 3, commit: 12)
    quiesce.quiesce = true
    return [
        (2, append),
        (2, Message(kind: .snapshot, from: 1, to: 3, term: 3, lastIndex: 12, snapshot: goldenLeaderSnapshot)),
        (1, Message(kind: .appendResponse, from: 2, to: 1, term: 2, logTerm: 1, index: 7, reject: true, rejectHint: 4, recoveryNonce: 77)),
        (1, Message(kind: .vote, from: 3, to: 1, term: 4, logTerm: 2, index: 6, context: RaftNode.transferContext)),
        (2, quiesce),
        (0, Message(kind: .ping, from: 1, to: 3, term: 0)),
    ]
}()

/// The leader's snapshot message of `messages.bin`, sent in chunks of 64 bytes (Format/raft.md
/// §9): `chunks.bin` holds the chunks back to back.
let goldenChunks: [RaftMessageChunk] = {
    let bytes = RaftMessageCodec.encode([goldenMessages[1]])
    let checksum = XXH3.hash(bytes)
    return stride(from: 0, to: bytes.count, by: 64).map { offset in
        RaftMessageChunk(transfer: 0x5EED, total: UInt64(bytes.count), offset: UInt64(offset), checksum: checksum,
                         bytes: Array(bytes[offset..<min(bytes.count, offset + 64)]))
    }
}()

@Suite(.serialized) struct RaftGoldenTests {
    func committedFiles() throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: raftGoldenDirectory + "/log") where name.hasSuffix(".vlog") {
            files["log/" + name] = Array(try Data(contentsOf: URL(fileURLWithPath: raftGoldenDirectory + "/log/" + name)))
        }
        for name in goldenVotes.keys {
            files[name] = Array(try Data(contentsOf: URL(fileURLWithPath: raftGoldenDirectory + "/" + name)))
        }
        files["messages.bin"] = Array(try Data(contentsOf: URL(fileURLWithPath: raftGoldenDirectory + "/messages.bin")))
        files["chunks.bin"] = Array(try Data(contentsOf: URL(fileURLWithPath: raftGoldenDirectory + "/chunks.bin")))
        return files
    }

    func freshFiles() throws -> [String: [UInt8]] {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/golden")
        try writeGoldenRaft(directory: "/golden", fileSystem: fileSystem)
        var files: [String: [UInt8]] = [:]
        for name in try fileSystem.list("/golden/log") where name.hasSuffix(".vlog") { files["log/" + name] = fileSystem.contents(of: "/golden/log/" + name) }
        for name in goldenVotes.keys { files[name] = fileSystem.contents(of: "/golden/" + name) }
        files["messages.bin"] = RaftMessageCodec.encode(goldenMessages)
        files["chunks.bin"] = goldenChunks.flatMap { $0.encoded() }
        return files
    }

    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try? FileManager.default.removeItem(atPath: raftGoldenDirectory)
        try FileManager.default.createDirectory(atPath: raftGoldenDirectory + "/log", withIntermediateDirectories: true)
        for (name, bytes) in try freshFiles() { try Data(bytes).write(to: URL(fileURLWithPath: raftGoldenDirectory + "/" + name)) }
    }

    @Test func goldenFilesDecodeToTheirHistory() throws {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/golden")
        try fileSystem.createDirectory("/golden/log")
        for (name, bytes) in try committedFiles() { fileSystem.setContents(of: "/golden/" + name, bytes) }
        let store = RaftLogStore(log: try RecordLog.open(directory: "/golden/log", fileSystem: fileSystem, options: raftGoldenOptions()).0)
        for (group, expected) in goldenGroups { #expect(try store.recover(group: group) == expected, "group \(group)") }
        for (name, expected) in goldenVotes { #expect(try HardStateFile.read("/golden/" + name, fileSystem: fileSystem) == expected, "\(name)") }
        let batch = try RaftMessageCodec.decode(try committedFiles()["messages.bin"]!)
        #expect(batch.map(\.group) == goldenMessages.map(\.group))
        #expect(batch.map(\.message) == goldenMessages.map(\.message))

        // The chunks, read back to back, join into the snapshot message's batch.
        let chunkBytes = try committedFiles()["chunks.bin"]!
        var position = 0, joined: [UInt8] = [], chunks: [RaftMessageChunk] = []
        while position < chunkBytes.count {
            try #require(chunkBytes.count - position >= RaftMessageChunk.headerBytes, "chunks.bin ends inside a chunk header")
            let length = RaftMessageChunk.headerBytes + Int(UInt32(littleEndian: chunkBytes[(position + 33)..<(position + 37)]
                .withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }))
            try #require(chunkBytes.count - position >= length, "chunks.bin ends inside a chunk")
            let chunk = try RaftMessageChunk.decode(Array(chunkBytes[position..<(position + length)]))
            #expect(chunk.offset == UInt64(joined.count))
            joined += chunk.bytes
            chunks.append(chunk)
            position += length
        }
        #expect(chunks == goldenChunks)
        #expect(chunks.count == 3)
        #expect(UInt64(joined.count) == chunks[0].total && XXH3.hash(joined) == chunks[0].checksum)
        let whole = try RaftMessageCodec.decode(joined)
        #expect(whole.count == 1 && whole[0].group == 2 && whole[0].message == goldenMessages[1].message)
    }

    @Test func writingTheHistoryAgainGivesTheSameBytes() throws {
        #expect(try freshFiles() == committedFiles())
    }
}
