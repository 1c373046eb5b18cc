// Raft's durable state over the node's unified record log: every group is one stream of the
// log, holding its entries, hard states and snapshots as records. Many groups' `Ready`s go into
// one append and one fdatasync (`persist`), which is what makes multi-Raft cheap.
//
// Records (kinds, payloads little-endian; Format/raft.md):
//   1 entry        term u64, index u64, entry kind u8, data (rest)
//   2 hard state   term u64, vote u64, commit u64
//   3 snapshot     a snapshot from the leader: replaces the whole log
//   4 compaction   a snapshot of this node's own state machine: entries after it stay
//   (3 and 4: index u64, term u64, voter count u32, voters u64…, learner count u32,
//    learners u64…, data (rest))
//
// Replay is a fold over the stream in LSN order: an entry at index i drops any stored entry at
// i or later first (a conflict the leader resolved), so conflicting suffixes need no marker.
// Compaction appends its record and the current hard state, then truncates the stream's prefix
// below the oldest record still needed.

import Basics
import Raft
import RecordLog
import Wire

public enum RaftRecordKind: UInt8, Sendable {
    case entry = 1
    case hardState = 2
    case snapshot = 3
    case compaction = 4
}

public enum RaftStorageError: Error, Equatable, CustomStringConvertible {
    case log(LogError)
    /// A record decoded but breaks the rules (a gap in the entries, an unknown kind).
    case corrupt(group: UInt64, lsn: UInt64, String)

    public var description: String {
        switch self {
        case let .log(error): "\(error)"
        case let .corrupt(group, lsn, text): "raft group \(group), record \(lsn): \(text)"
        }
    }
}

/// One group's durable Raft state as recovered from the log.
public struct RecoveredGroup: Sendable, Equatable {
    public var hardState = HardState()
    public var snapshot: Snapshot?
    public var entries: [Entry] = []
}

/// The LSNs of a group's stored entries, which are contiguous: `lsns[i]` is entry `first + i`'s.
struct EntryLSNs: Sendable {
    var first: UInt64 = 0
    var lsns: [UInt64] = []

    var isEmpty: Bool { lsns.isEmpty }

    /// Records entry `index` at `lsn`, dropping any stored at `index` or later.
    mutating func set(_ index: UInt64, _ lsn: UInt64) {
        if lsns.isEmpty || index < first {
            first = index
            lsns = [lsn]
            return
        }
        guard index - first <= UInt64(lsns.count) else {  // a gap cannot be tracked: start over from here
            first = index
            lsns = [lsn]
            return
        }
        let position = Int(index - first)
        if position < lsns.count { lsns.removeLast(lsns.count - position) }
        lsns.append(lsn)
    }

    /// Drops entries at or below `index`.
    mutating func drop(through index: UInt64) {
        guard !lsns.isEmpty, index >= first else { return }
        let count = Int(min(UInt64(lsns.count), index - first + 1))
        lsns.removeFirst(count)
        first = lsns.isEmpty ? 0 : first + UInt64(count)
    }

    var lowest: UInt64? { lsns.min() }
}

public final class RaftLogStore: @unchecked Sendable {
    public let log: RecordLog
    /// Per group: the LSN of each stored entry and the last hard state written.
    private var lsns: [UInt64: EntryLSNs] = [:]
    private var hardStates: [UInt64: HardState] = [:]
    private let lock = ConditionLock()

    public init(log: RecordLog) { self.log = log }

    // MARK: Writing

    /// One group's share of a persist: its `Ready` (hard state, entries, snapshot).
    public struct Write: Sendable {
        public var group: UInt64
        public var ready: Ready

        public init(group: UInt64, ready: Ready) {
            self.group = group
            self.ready = ready
        }
    }

    /// Writes every group's state in one append, synced if any `Ready` asks for it.
    public func persist(_ writes: [Write]) throws(RaftStorageError) {
        try persist(writes, syncing: true)
    }

    /// `persist`, but with `syncing: false` the records are only written: they are durable once
    /// a `syncWritten` that starts after this call returns.
    public func persist(_ writes: [Write], syncing: Bool) throws(RaftStorageError) {
        var records: [LogRecord] = []
        var sync = false
        var placed: [(group: UInt64, index: UInt64, position: Int)] = []
        for write in writes {
            let ready = write.ready
            sync = sync || ready.mustSync
            if let snapshot = ready.snapshot {
                records.append(LogRecord(stream: write.group, kind: RaftRecordKind.snapshot.rawValue, payload: Self.encode(snapshot)))
            }
            for entry in ready.entries {
                placed.append((write.group, entry.index, records.count))
                records.append(LogRecord(stream: write.group, kind: RaftRecordKind.entry.rawValue, payload: Self.encode(entry)))
            }
            if let hard = ready.hardState {
                records.append(LogRecord(stream: write.group, kind: RaftRecordKind.hardState.rawValue, payload: Self.encode(hard)))
            }
        }
        guard !records.isEmpty else { return }
        let assigned: [UInt64]
        do throws(LogError) { assigned = try log.append(records, sync: sync && syncing) } catch { throw .log(error) }
        lock.withLock {
            for write in writes {
                if write.ready.snapshot != nil { lsns[write.group] = EntryLSNs() }
                if let hard = write.ready.hardState { hardStates[write.group] = hard }
            }
            for item in placed { lsns[item.group, default: EntryLSNs()].set(item.index, assigned[item.position]) }
        }
    }

    /// Makes everything `persist` wrote before this call durable (see `RecordLog.syncWritten`;
    /// several may run at once).
    public func syncWritten() throws(RaftStorageError) {
        do throws(LogError) { try log.syncWritten() } catch { throw .log(error) }
    }

    /// Records a snapshot of the group's state machine (`RaftNode.compact` took it) and drops
    /// the entries it covers from the log.
    public func compact(group: UInt64, snapshot: Snapshot) throws(RaftStorageError) {
        let hard = lock.withLock { hardStates[group] }
        var records = [LogRecord(stream: group, kind: RaftRecordKind.compaction.rawValue, payload: Self.encode(snapshot))]
        if let hard {
            // The hard state may sit below the cut: write it again above it.
            records.append(LogRecord(stream: group, kind: RaftRecordKind.hardState.rawValue, payload: Self.encode(hard)))
        }
        let assigned: [UInt64]
        do throws(LogError) { assigned = try log.append(records, sync: true) } catch { throw .log(error) }
        let cut: UInt64 = lock.withLock {
            lsns[group, default: EntryLSNs()].drop(through: snapshot.metadata.index)
            return min(lsns[group]!.lowest ?? assigned[0], assigned[0])
        }
        do throws(LogError) { try log.truncatePrefix(stream: group, below: cut, sync: false) } catch { throw .log(error) }
    }

    // MARK: Reading

    /// Replays one group's records.
    public func recover(group: UInt64) throws(RaftStorageError) -> RecoveredGroup {
        let records: [StoredRecord]
        do throws(LogError) { records = try log.read(stream: group) } catch { throw .log(error) }
        var state = RecoveredGroup()
        var map = EntryLSNs()
        for record in records {
            func rule(_ text: String) -> DecodeError { DecodeError(field: "raft record", offset: 0, reason: .invalid(text)) }
            do throws(DecodeError) {
                switch RaftRecordKind(rawValue: record.kind) {
                case .entry:
                    let entry = try Self.decodeEntry(record.payload)
                    // Before any snapshot record, entries may start anywhere: compaction cut the
                    // prefix, and its record (later in the stream) says where the log starts.
                    let first = state.snapshot.map { $0.metadata.index + 1 } ?? (state.entries.first?.index ?? entry.index)
                    if let last = state.entries.last, entry.index <= last.index {
                        guard entry.index >= first else { throw rule("entry \(entry.index) is below the snapshot") }
                        state.entries.removeLast(Int(last.index - entry.index + 1))
                    }
                    let expected = (state.entries.last?.index ?? first - 1) + 1
                    guard entry.index == expected else { throw rule("entry \(entry.index) where \(expected) was expected") }
                    state.entries.append(entry)
                    map.set(entry.index, record.lsn)
                case .hardState:
                    state.hardState = try Self.decodeHardState(record.payload)
                case .snapshot:
                    state.snapshot = try Self.decodeSnapshot(record.payload)
                    state.entries = []
                    map = EntryLSNs()
                case .compaction:
                    let snapshot = try Self.decodeSnapshot(record.payload)
                    let index = snapshot.metadata.index
                    // Never move the log's start backwards.
                    if let current = state.snapshot, current.metadata.index >= index { break }
                    state.snapshot = snapshot
                    state.entries.removeAll { $0.index <= index }
                    map.drop(through: index)
                    // Entries may start past `index + 1` here: an older compaction's record
                    // stays when a later compaction cut only up to entries written before it.
                    // The later compaction's record follows; the check after the loop holds
                    // the final state to a log that starts right after its snapshot.
                case nil:
                    throw rule("unknown record kind \(record.kind)")
                }
            } catch {
                throw .corrupt(group: group, lsn: record.lsn, "\(error)")
            }
        }
        if let first = state.entries.first, first.index != (state.snapshot?.metadata.index ?? 0) + 1 {
            throw .corrupt(group: group, lsn: 0, "entries start at \(first.index) with no snapshot before them")
        }
        let recoveredMap = map
        let hard = state.hardState
        lock.withLock {
            lsns[group] = recoveredMap
            hardStates[group] = hard
        }
        return state
    }

    /// Groups that have records in the log.
    public var groups: [UInt64] { log.streams() }

    // MARK: Encoding (Format/raft.md §2–3; public for the fuzzer)

    public static func encode(_ entry: Entry) -> [UInt8] {
        var writer = ByteWriter(capacity: 17 + entry.data.count)
        writer.write(entry.term)
        writer.write(entry.index)
        writer.write(entry.kind.rawValue)
        writer.write(bytes: entry.data)
        return writer.bytes
    }

    public static func decodeEntry(_ bytes: [UInt8]) throws(DecodeError) -> Entry {
        var reader = ByteReader(bytes)
        let term = try reader.readUInt64("entry term")
        let index = try reader.readUInt64("entry index")
        // Index 0 is "before the log", and the last index must leave room for a successor.
        guard index >= 1 && index < UInt64.max else { throw reader.error("entry index", .invalid("index \(index) is out of range")) }
        let rawKind = try reader.readUInt8("entry kind")
        guard let kind = EntryKind(rawValue: rawKind) else { throw reader.error("entry kind", .invalid("unknown kind \(rawKind)")) }
        return Entry(term: term, index: index, kind: kind, data: Array(try reader.readBytes(reader.remaining, "entry data")))
    }

    public static func encode(_ hard: HardState) -> [UInt8] {
        var writer = ByteWriter(capacity: 24)
        writer.write(hard.term)
        writer.write(hard.vote)
        writer.write(hard.commit)
        return writer.bytes
    }

    public static func decodeHardState(_ bytes: [UInt8]) throws(DecodeError) -> HardState {
        var reader = ByteReader(bytes)
        let hard = HardState(term: try reader.readUInt64("term"), vote: try reader.readUInt64("vote"), commit: try reader.readUInt64("commit"))
        guard reader.isAtEnd else { throw reader.error("hard state", .invalid("trailing bytes")) }
        return hard
    }

    public static func encode(_ snapshot: Snapshot) -> [UInt8] {
        var writer = ByteWriter(capacity: 32 + snapshot.data.count)
        writer.write(snapshot.metadata.index)
        writer.write(snapshot.metadata.term)
        for members in [snapshot.metadata.membership.voters, snapshot.metadata.membership.learners] {
            writer.write(UInt32(members.count))
            for member in members.sorted() { writer.write(member) }
        }
        writer.write(bytes: snapshot.data)
        return writer.bytes
    }

    public static func decodeSnapshot(_ bytes: [UInt8]) throws(DecodeError) -> Snapshot {
        var reader = ByteReader(bytes)
        let index = try reader.readUInt64("snapshot index")
        guard index < UInt64.max else { throw reader.error("snapshot index", .invalid("index \(index) is out of range")) }
        let term = try reader.readUInt64("snapshot term")
        var sets: [Set<NodeID>] = []
        for field in ["voters", "learners"] {
            let count = Int(try reader.readUInt32("\(field) count"))
            guard count <= reader.remaining / 8 else { throw reader.error("\(field) count", .invalid("\(count) members cannot fit")) }
            var members = Set<NodeID>()
            var previous: NodeID?
            for _ in 0..<count {
                let member = try reader.readUInt64(field)
                // Ascending (§3): one encoding per snapshot.
                if let previous, member <= previous { throw reader.error(field, .invalid("ids are not ascending")) }
                previous = member
                members.insert(member)
            }
            sets.append(members)
        }
        let data = Array(try reader.readBytes(reader.remaining, "snapshot data"))
        return Snapshot(metadata: SnapshotMetadata(index: index, term: term, membership: Membership(voters: sets[0], learners: sets[1])), data: data)
    }
}
