// A group's term and vote in a small file of their own, next to the log (Format/raft.md §7):
// if a damaged log must be set aside, the node still knows the last term it saw and whom it
// voted for, so it never votes twice in a term. The file also carries the *recovering* flag
// (the node lost its log and has not caught up yet), so that a crash during the catch-up does
// not bring the node back as a voter with a partial log. Written atomically (temporary file,
// fsync, rename, directory fsync) whenever one of them changes — before any message that
// depends on them leaves.

import Checksum
import FileIO
import Raft
import Wire

public struct DurableVote: Sendable, Equatable {
    public var term: UInt64
    public var vote: NodeID
    public var recovering: Bool

    public init(term: UInt64 = 0, vote: NodeID = 0, recovering: Bool = false) {
        self.term = term
        self.vote = vote
        self.recovering = recovering
    }
}

public enum HardStateFile {
    public static let magic: [UInt8] = Array("VRHS".utf8)
    public static let version: UInt16 = 1
    public static let bytes = 32

    public static func encode(_ state: DurableVote) -> [UInt8] {
        var writer = ByteWriter(capacity: bytes)
        writer.write(bytes: magic)
        writer.write(version)
        writer.write(UInt16(state.recovering ? 1 : 0))
        writer.write(state.term)
        writer.write(state.vote)
        writer.write(XXH3.hash(writer.bytes))
        return writer.bytes
    }

    public static func decode(_ data: [UInt8]) throws(DecodeError) -> DurableVote {
        var reader = ByteReader(data)
        guard data.count == bytes else { throw DecodeError(field: "hard state file", offset: 0, reason: .truncated(needed: bytes, available: data.count)) }
        guard Array(try reader.readBytes(4, "magic")) == magic else { throw reader.error("magic", .invalid("not a hard state file")) }
        let version = try reader.readUInt16("version")
        guard version == Self.version else { throw reader.error("version", .invalid("unknown version \(version)")) }
        let flags = try reader.readUInt16("flags")
        guard flags <= 1 else { throw reader.error("flags", .invalid("unknown flags \(flags)")) }
        let term = try reader.readUInt64("term")
        let vote = try reader.readUInt64("vote")
        let stored = try reader.readUInt64("checksum")
        let computed = XXH3.hash(data, range: 0..<24)
        guard stored == computed else {
            throw DecodeError(field: "checksum", offset: 24, reason: .checksumMismatch(stored: stored, computed: computed))
        }
        return DurableVote(term: term, vote: vote, recovering: flags & 1 != 0)
    }

    public static func write(_ path: String, _ state: DurableVote, fileSystem: any FileSystem) throws(FileIOError) {
        try fileSystem.writeAtomically(path, encode(state))
    }

    /// nil when the file does not exist (a node that never voted).
    public static func read(_ path: String, fileSystem: any FileSystem) throws(RaftStorageError) -> DurableVote? {
        guard fileSystem.fileExists(path) else { return nil }
        let data: [UInt8]
        do throws(FileIOError) {
            let handle = try fileSystem.open(path, options: .read)
            defer { handle.close() }
            data = try handle.readAll()
        } catch {
            throw .log(.io(error))
        }
        do throws(DecodeError) { return try decode(data) } catch { throw .corrupt(group: 0, lsn: 0, "hard state file \(path): \(error)") }
    }
}

extension RecoveredGroup {
    /// The state a group restarts from, given what its log held and what its hard-state file
    /// says: term and vote are the newer of the two (the file is written before the log, so a
    /// crash between them leaves the file ahead), and a recovery the file records goes on.
    public func restartState(vote: DurableVote?, membership: Membership) -> PersistedState {
        var hard = hardState
        if let vote, vote.term > hard.term || (vote.term == hard.term && hard.vote == 0) {
            hard.term = vote.term
            hard.vote = vote.vote
        }
        return PersistedState(hardState: hard, snapshot: snapshot, entries: entries,
                              membership: snapshot?.metadata.membership ?? membership,
                              applied: snapshot?.metadata.index ?? 0, lostLog: vote?.recovering ?? false)
    }
}

extension PersistedState {
    /// The state of a group whose log was set aside: empty, with the term and vote of its
    /// hard-state file (which the caller has marked recovering), and not voting until caught up.
    public static func lostLog(vote: DurableVote, membership: Membership) -> PersistedState {
        PersistedState(hardState: HardState(term: vote.term, vote: vote.vote, commit: 0), membership: membership, lostLog: true)
    }
}
