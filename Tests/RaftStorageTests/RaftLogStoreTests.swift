// Raft state over the record log: round trips for several groups in one log, conflict
// overwrites, snapshots and compaction, crashes (crash-cloned in-memory disks) and corruption.

import Basics
import FileIO
import FileIOSim
import Raft
import RecordLog
import Testing
import Wire
@testable import RaftStorage

func smallLogOptions() -> RecordLogOptions {
    var options = RecordLogOptions()
    options.segmentBytesMax = 4096
    options.recordPayloadBytesMax = 2048
    options.batchBytesMax = 4096
    options.queueBytesMax = 8192
    options.segmentCountMax = 64
    options.logID = 7
    options.creationTimeOverride = 1
    return options
}

func openStore(_ fileSystem: MemoryFileSystem) throws -> RaftLogStore {
    RaftLogStore(log: try RecordLog.open(directory: "/node/log", fileSystem: fileSystem, options: smallLogOptions()).0)
}

func entries(_ range: ClosedRange<UInt64>, term: UInt64, tag: String = "") -> [Entry] {
    range.map { Entry(term: term, index: $0, data: Array("\(tag)\($0)".utf8)) }
}

func ready(hard: HardState? = nil, entries: [Entry] = [], snapshot: Snapshot? = nil) -> Ready {
    var ready = Ready()
    ready.hardState = hard
    ready.entries = entries
    ready.snapshot = snapshot
    ready.mustSync = true
    return ready
}

@Suite struct RaftLogStoreTests {
    @Test func groupsShareOneLogAndRecoverIndependently() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 1, vote: 1, commit: 0), entries: entries(1...3, term: 1))),
                           .init(group: 2, ready: ready(hard: HardState(term: 4, vote: 2, commit: 1), entries: entries(1...1, term: 4, tag: "g2-")))])
        try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 1, vote: 1, commit: 3)))])
        store.log.close()
        let reopened = try openStore(fileSystem)
        #expect(Set(reopened.groups) == [1, 2])
        let one = try reopened.recover(group: 1)
        #expect(one.hardState == HardState(term: 1, vote: 1, commit: 3))
        #expect(one.entries == entries(1...3, term: 1))
        let two = try reopened.recover(group: 2)
        #expect(two.hardState == HardState(term: 4, vote: 2, commit: 1))
        #expect(two.entries == entries(1...1, term: 4, tag: "g2-"))
        #expect(try reopened.recover(group: 3) == RecoveredGroup())
    }

    @Test func aConflictingSuffixIsReplaced() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        try store.persist([.init(group: 1, ready: ready(entries: entries(1...5, term: 1)))])
        try store.persist([.init(group: 1, ready: ready(entries: entries(3...4, term: 2, tag: "new")))])
        store.log.close()
        let recovered = try openStore(fileSystem).recover(group: 1)
        #expect(recovered.entries == entries(1...2, term: 1) + entries(3...4, term: 2, tag: "new"))
    }

    @Test func compactionKeepsLaterEntriesAndDropsTheRest() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        // Enough entries to fill several segments.
        for batch in 0..<20 {
            let first = UInt64(batch * 10 + 1)
            try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 1, vote: 1, commit: first + 9),
                                                            entries: entries(first...(first + 9), term: 1, tag: String(repeating: "x", count: 40))))])
        }
        let segmentsBefore = store.log.segmentFiles.count
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 150, term: 1, membership: Membership(voters: [1, 2, 3])), data: [1, 2, 3])
        try store.compact(group: 1, snapshot: snapshot)
        #expect(store.log.segmentFiles.count < segmentsBefore)
        store.log.close()
        let recovered = try openStore(fileSystem).recover(group: 1)
        #expect(recovered.snapshot == snapshot)
        #expect(recovered.entries.first?.index == 151)
        #expect(recovered.entries.last?.index == 200)
        #expect(recovered.hardState == HardState(term: 1, vote: 1, commit: 200))
    }

    /// A compaction record follows the entries appended while the state machine caught up, so a
    /// later compaction's cut (at its lowest kept entry) can keep an older compaction record
    /// after entries it does not reach. Replay used to refuse that stream ("entries after
    /// compaction at 12 start at 15"): the group was then treated as having lost its log and a
    /// single-voter group never elected again (found by ServerTests' durability test).
    @Test func anOlderCompactionRecordAfterKeptEntriesReplays() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        let membership = Membership(voters: [1])
        try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 1, vote: 1, commit: 16), entries: entries(1...16, term: 1)))])
        try store.compact(group: 1, snapshot: Snapshot(metadata: SnapshotMetadata(index: 12, term: 1, membership: membership), data: []))
        try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 1, vote: 1, commit: 17), entries: entries(17...17, term: 1)))])
        let latest = Snapshot(metadata: SnapshotMetadata(index: 14, term: 1, membership: membership), data: [])
        try store.compact(group: 1, snapshot: latest)
        store.log.close()
        let recovered = try openStore(fileSystem).recover(group: 1)
        #expect(recovered.snapshot == latest)
        #expect(recovered.entries == entries(15...17, term: 1))
        #expect(recovered.hardState == HardState(term: 1, vote: 1, commit: 17))
    }

    @Test func aLeadersSnapshotReplacesTheLog() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        try store.persist([.init(group: 1, ready: ready(entries: entries(1...5, term: 1)))])
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 9, term: 3, membership: Membership(voters: [1, 2])), data: Array("state".utf8))
        try store.persist([.init(group: 1, ready: ready(hard: HardState(term: 3, vote: 0, commit: 9), snapshot: snapshot))])
        try store.persist([.init(group: 1, ready: ready(entries: entries(10...11, term: 3)))])
        store.log.close()
        let recovered = try openStore(fileSystem).recover(group: 1)
        #expect(recovered.snapshot == snapshot)
        #expect(recovered.entries == entries(10...11, term: 3))
    }

    /// Everything persisted with a sync survives a crash that loses and tears unsynced writes.
    @Test func syncedStateSurvivesCrashes() throws {
        for seed in UInt64(1)...30 {
            var random = SeededRandom(seed: seed)
            var fileSystem = MemoryFileSystem()
            var store = try openStore(fileSystem)
            var model = RecoveredGroup()
            var term: UInt64 = 1
            for round in 0..<3 {
                for _ in 0..<(5 + Int(random.next() % 20)) {
                    let last = model.entries.last?.index ?? 0
                    var first = last + 1
                    if last > 2 && random.next() % 5 == 0 {
                        // Overwrite a suffix at a new term.
                        first = last - random.next() % 2
                        term += 1
                    }
                    let new = entries(first...(first + random.next() % 4), term: term, tag: "s\(seed)r\(round)-")
                    let hard = HardState(term: term, vote: 1, commit: min(first - 1, model.hardState.commit + 1))
                    try store.persist([.init(group: 1, ready: ready(hard: hard, entries: new))])
                    model.entries.removeAll { $0.index >= first }
                    model.entries.append(contentsOf: new)
                    model.hardState = hard
                }
                // Unsynced writes after the last sync may be lost: write one and then crash.
                var unsynced = ready(entries: entries((model.entries.last!.index + 1)...(model.entries.last!.index + 1), term: term))
                unsynced.mustSync = false
                try store.persist([.init(group: 1, ready: unsynced)])
                fileSystem = fileSystem.crashClone(seed: seed &* 31 &+ UInt64(round))
                store = try openStore(fileSystem)
                var recovered = try store.recover(group: 1)
                if recovered.entries.count == model.entries.count + 1 { recovered.entries.removeLast() }
                #expect(recovered == model, "seed \(seed) round \(round)")
            }
        }
    }

    @Test func aFlippedByteIsDetectedNotServed() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        for batch in 0..<10 {
            let first = UInt64(batch * 10 + 1)
            try store.persist([.init(group: 1, ready: ready(entries: entries(first...(first + 9), term: 1, tag: String(repeating: "y", count: 40))))])
        }
        let oldest = store.log.segmentFiles.first!
        store.log.close()
        var bytes = fileSystem.contents(of: "/node/log/" + oldest)!
        bytes[bytes.count / 2] ^= 0x20
        fileSystem.setContents(of: "/node/log/" + oldest, bytes)
        var detected = false
        do {
            let reopened = try openStore(fileSystem)
            _ = try reopened.recover(group: 1)
        } catch let error as LogError {
            if case .corruption = error { detected = true }
        } catch let error as RaftStorageError {
            if case .log(.corruption) = error { detected = true }
        }
        #expect(detected)
    }

    @Test func recordsThatBreakTheRulesAreTypedErrors() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        // An entry gap, written behind the store's back.
        try store.log.append([LogRecord(stream: 5, kind: RaftRecordKind.entry.rawValue, payload: RaftLogStore.encode(Entry(term: 1, index: 1))),
                              LogRecord(stream: 5, kind: RaftRecordKind.entry.rawValue, payload: RaftLogStore.encode(Entry(term: 1, index: 3)))])
        try store.log.append(LogRecord(stream: 6, kind: 99, payload: []))
        try store.log.append(LogRecord(stream: 7, kind: RaftRecordKind.hardState.rawValue, payload: [1, 2, 3]))
        for group: UInt64 in [5, 6, 7] {
            #expect(throws: RaftStorageError.self, "group \(group)") { try store.recover(group: group) }
        }
    }
}

@Suite struct RaftRecordEdgeTests {
    /// Found by FuzzRaftRecords: indexes at the ends of the range overflowed replay's
    /// arithmetic; they are now refused as invalid records.
    @Test func indexesAtTheEndsOfTheRangeAreRefused() throws {
        for index: UInt64 in [0, .max] {
            let bytes = RaftLogStore.encode(Entry(term: 1, index: index))
            #expect(throws: DecodeError.self, "index \(index)") { try RaftLogStore.decodeEntry(bytes) }
        }
        let snapshot = RaftLogStore.encode(Snapshot(metadata: SnapshotMetadata(index: .max, term: 1)))
        #expect(throws: DecodeError.self) { try RaftLogStore.decodeSnapshot(snapshot) }
        #expect(try RaftLogStore.decodeEntry(RaftLogStore.encode(Entry(term: 1, index: .max - 1))).index == .max - 1)
    }

    /// Found by FuzzRaftRecords: a compaction far past the stored entries trapped when the
    /// distance did not fit an Int.
    @Test func aCompactionFarAheadOfTheEntriesReplays() throws {
        let fileSystem = MemoryFileSystem()
        let store = try openStore(fileSystem)
        let far = Snapshot(metadata: SnapshotMetadata(index: UInt64.max - 10, term: 1, membership: Membership(voters: [1])))
        try store.log.append([LogRecord(stream: 1, kind: RaftRecordKind.entry.rawValue, payload: RaftLogStore.encode(Entry(term: 1, index: 1))),
                              LogRecord(stream: 1, kind: RaftRecordKind.compaction.rawValue, payload: RaftLogStore.encode(far))])
        let recovered = try store.recover(group: 1)
        #expect(recovered.snapshot == far)
        #expect(recovered.entries.isEmpty)
    }
}
