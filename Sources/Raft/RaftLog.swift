// A Raft node's view of its log: the snapshot it starts from, the entries after it, which of
// them are durable (`stable`), committed and applied. The host persists what `Ready` hands it;
// this type only remembers how far that has got.

struct RaftLog: Sendable {
    /// The last compacted index and its term (index 0, term 0 before any compaction).
    private(set) var snapshotIndex: UInt64 = 0
    private(set) var snapshotTerm: UInt64 = 0
    /// Entries `snapshotIndex + 1 … lastIndex`.
    private(set) var entries: [Entry] = []
    /// Entries through `stable` are durable on this node.
    private(set) var stable: UInt64 = 0
    /// Entries through `handed` have been handed out to be written (durable or not yet): a
    /// host that writes in the background gets each entry once.
    private(set) var handed: UInt64 = 0
    /// The pending snapshot has been handed out to be written.
    private(set) var snapshotHanded = false
    /// Counts truncations and restores: a write handed out before one may hold entries that
    /// are no longer the log's (see `RaftNode.persisted`).
    private(set) var truncations: UInt64 = 0
    /// A snapshot received from the leader that the host has not yet persisted and installed.
    private(set) var pendingSnapshot: Snapshot?
    var committed: UInt64 = 0
    var applied: UInt64 = 0
    /// Entries through `applying` have been handed out in a `Ready` (applied once advanced).
    var applying: UInt64 = 0

    init() {}

    /// A log restored from storage: everything in it is durable.
    init(snapshot: SnapshotMetadata, entries: [Entry], commit: UInt64, applied: UInt64) {
        snapshotIndex = snapshot.index
        snapshotTerm = snapshot.term
        self.entries = entries
        stable = snapshot.index + UInt64(entries.count)
        handed = stable
        committed = max(commit, snapshot.index)
        self.applied = max(applied, snapshot.index)
        applying = self.applied
    }

    var firstIndex: UInt64 { snapshotIndex + 1 }
    var lastIndex: UInt64 { snapshotIndex + UInt64(entries.count) }
    var lastTerm: UInt64 { entries.last?.term ?? snapshotTerm }

    /// The term of the entry at `index`; nil when compacted away or past the end.
    func term(at index: UInt64) -> UInt64? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    func matchTerm(_ index: UInt64, _ term: UInt64) -> Bool { self.term(at: index) == term }

    func entry(at index: UInt64) -> Entry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)]
    }

    /// Entries `from…` (at least one if any exist, then up to `maxBytes`); nil if `from` was
    /// compacted.
    func entries(from index: UInt64, maxBytes: Int) -> [Entry]? {
        guard index > snapshotIndex else { return nil }
        guard index <= lastIndex else { return [] }
        var result: [Entry] = []
        var bytes = 0
        for position in Int(index - snapshotIndex - 1)..<entries.count {
            let entry = entries[position]
            if !result.isEmpty && bytes + entry.size > maxBytes { break }
            bytes += entry.size
            result.append(entry)
        }
        return result
    }

    /// Whether a candidate whose log ends at (`term`, `index`) is at least as up to date.
    func isUpToDate(index: UInt64, term: UInt64) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// Appends new entries as the leader.
    mutating func append(_ new: [Entry]) {
        guard let first = new.first else { return }
        precondition(first.index == lastIndex + 1, "append at \(first.index) after \(lastIndex)")
        entries.append(contentsOf: new)
    }

    /// The follower's append: if the entry before `new` matches, resolves conflicts (truncating
    /// the suffix from the first conflicting entry), appends, and advances the commit index.
    /// Returns the last index this append vouches for, or nil when the previous entry does not
    /// match.
    mutating func maybeAppend(index: UInt64, logTerm: UInt64, commit: UInt64, entries new: [Entry]) -> UInt64? {
        guard matchTerm(index, logTerm) else { return nil }
        let lastNew = index + UInt64(new.count)
        var start = 0
        while start < new.count {
            let entry = new[start]
            if entry.index <= snapshotIndex { start += 1; continue }  // already compacted: committed, so equal
            guard let existing = term(at: entry.index) else { break }
            if existing != entry.term {
                precondition(entry.index > committed, "conflict at committed index \(entry.index)")
                truncate(after: entry.index - 1)
                break
            }
            start += 1
        }
        if start < new.count { append(Array(new[start...])) }
        commitTo(min(commit, lastNew))
        return lastNew
    }

    /// Drops every entry after `index` (a conflict with the leader's log).
    private mutating func truncate(after index: UInt64) {
        entries.removeLast(Int(lastIndex - index))
        stable = min(stable, index)
        handed = min(handed, index)
        truncations += 1
    }

    /// The index of the last entry at or before `index` whose term is at most `term`: where a
    /// leader's log ending in `term` can still match this one (a rejected append's hint).
    func conflictHint(index: UInt64, term: UInt64) -> (index: UInt64, term: UInt64) {
        var at = min(index, lastIndex)
        while at > snapshotIndex, let here = self.term(at: at), here > term { at -= 1 }
        return (at, self.term(at: at) ?? 0)
    }

    mutating func commitTo(_ index: UInt64) {
        if index > committed {
            precondition(index <= lastIndex, "commit \(index) past the last index \(lastIndex)")
            committed = index
        }
    }

    /// Entries the host has persisted (if the entry at `index` still has `term`).
    mutating func stableTo(index: UInt64, term: UInt64) {
        if index > stable && matchTerm(index, term) { stable = index }
    }

    /// Entries not yet handed out to be written.
    var unhandedEntries: [Entry] {
        let from = max(stable, handed)
        guard from < lastIndex else { return [] }
        return Array(entries[Int(from - snapshotIndex)...])
    }

    var hasUnhanded: Bool { max(stable, handed) < lastIndex || (pendingSnapshot != nil && !snapshotHanded) }

    /// Records that entries through `index` (and the pending snapshot, if `snapshot`) were
    /// handed out to be written.
    mutating func handOut(through index: UInt64, snapshot: Bool) {
        handed = max(handed, index)
        if snapshot { snapshotHanded = true }
    }

    /// Committed, durable entries not yet handed out for applying.
    func nextCommitted(maxBytes: Int) -> [Entry] {
        guard pendingSnapshot == nil else { return [] }
        let through = min(committed, stable)
        guard through > applying else { return [] }
        var result: [Entry] = []
        var bytes = 0
        for index in (applying + 1)...through {
            let entry = entries[Int(index - snapshotIndex - 1)]
            if !result.isEmpty && bytes + entry.size > maxBytes { break }
            bytes += entry.size
            result.append(entry)
        }
        return result
    }

    /// Replaces the whole log with a snapshot from the leader (the host persists and installs it).
    mutating func restore(_ snapshot: Snapshot) {
        snapshotIndex = snapshot.metadata.index
        snapshotTerm = snapshot.metadata.term
        entries = []
        stable = snapshotIndex
        handed = snapshotIndex
        committed = snapshotIndex
        pendingSnapshot = snapshot
        snapshotHanded = false
        truncations += 1
    }

    /// The host persisted and installed the pending snapshot.
    mutating func snapshotInstalled(index: UInt64) {
        guard let pending = pendingSnapshot, pending.metadata.index == index else { return }
        pendingSnapshot = nil
        snapshotHanded = false
        applied = max(applied, index)
        applying = max(applying, index)
    }

    /// Drops entries through `index` (already in a snapshot of the state machine).
    mutating func compact(through index: UInt64) throws(RaftError) {
        guard index > snapshotIndex else { return }
        guard index <= applied else { throw .invalidArgument("cannot compact through \(index): applied is \(applied)") }
        let term = self.term(at: index)!
        entries.removeFirst(Int(index - snapshotIndex))
        snapshotIndex = index
        snapshotTerm = term
        stable = max(stable, index)
        handed = max(handed, index)
    }
}
