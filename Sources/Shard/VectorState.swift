// A shard's vector side: its HNSW index and the map between point keys and the index's ids.
//
// The index names points by 64-bit numbers; a shard's points are named by keys (encoded point
// ids, UUIDs among them). Each key gets a number the first time it is written, from a counter
// that is part of this state; an update keeps the number. The map, the counter and the index
// are checkpointed together at one applied index (Format/shard.md §4) and replayed together
// from the log, independently of the storage engine's side: after a crash the two sides may
// stand at different indexes, and each replays from its own.

import Basics
import Checksum
import FileIO
import VectorIndex
import Wire

public final class VectorState: @unchecked Sendable {
    public let index: HNSWIndex
    /// Guards the maps and the counters. The index has its own locks.
    private let lock = ReadWriteLock()
    private var numbers: [[UInt8]: UInt64] = [:]
    private var keys: [UInt64: [UInt8]] = [:]
    private var nextNumber: UInt64 = 1
    /// The last log index this state reflects.
    public private(set) var appliedIndex: UInt64 = 0

    public init(configuration: HNSWConfiguration) throws(VectorIndexError) {
        index = try HNSWIndex(configuration: configuration)
    }

    init(index: HNSWIndex, keys: [UInt64: [UInt8]], nextNumber: UInt64, appliedIndex: UInt64) {
        self.index = index
        self.keys = keys
        self.numbers = Dictionary(uniqueKeysWithValues: keys.map { ($0.value, $0.key) })
        self.nextNumber = nextNumber
        self.appliedIndex = appliedIndex
    }

    public var count: Int { lock.withReadLock { keys.count } }

    public func key(ofNumber number: UInt64) -> [UInt8]? { lock.withReadLock { keys[number] } }
    public func contains(key: [UInt8]) -> Bool { lock.withReadLock { numbers[key] != nil } }

    /// Applies the vector part of one command at `logIndex` (the caller skips commands at or
    /// below `appliedIndex`).
    public func apply(_ command: ShardCommand, at logIndex: UInt64, threads: Int = 1) throws(VectorIndexError) {
        switch command {
        case .upsert(let points):
            // The last write of a key in the command wins; new keys get numbers in order.
            var last: [[UInt8]: Int] = [:]
            for (position, point) in points.enumerated() { last[point.key] = position }
            var ids: [UInt64] = []
            var vectors: [Float] = []
            ids.reserveCapacity(last.count)
            let dimension = index.dimension
            for (position, point) in points.enumerated() where last[point.key] == position {
                guard point.vector.count == dimension else {
                    throw .dimensionMismatch(expected: dimension, actual: point.vector.count)
                }
                ids.append(number(for: point.key))
                vectors.append(contentsOf: point.vector)
            }
            if ids.count == 1 || threads <= 1 {
                for (offset, id) in ids.enumerated() {
                    try index.insert(id: id, vector: Array(vectors[offset * dimension ..< (offset + 1) * dimension]))
                }
            } else {
                try vectors.withUnsafeBufferPointer { buffer throws(VectorIndexError) in
                    try index.insert(ids: ids, vectors: buffer.baseAddress!, threads: threads)
                }
            }
        case .delete(let deleted):
            for key in deleted {
                let number: UInt64? = lock.withWriteLock {
                    guard let number = numbers.removeValue(forKey: key) else { return nil }
                    keys[number] = nil
                    return number
                }
                if let number { try index.delete(id: number) }
            }
        case .setPayload, .overwritePayload, .deletePayloadKeys, .clearPayload:
            break
        }
        appliedIndex = logIndex
    }

    /// Marks `logIndex` applied without a change (entries that carry no command).
    public func skip(to logIndex: UInt64) { appliedIndex = max(appliedIndex, logIndex) }

    private func number(for key: [UInt8]) -> UInt64 {
        lock.withWriteLock {
            if let number = numbers[key] { return number }
            let number = nextNumber
            nextNumber += 1
            numbers[key] = number
            keys[number] = key
            return number
        }
    }

    // MARK: Checkpoints (Format/shard.md §4)

    public static let keysMagic: [UInt8] = Array("VXKEYS01".utf8)
    static let keysVersion: UInt32 = 1
    static let keysHeaderBytes = 8 + 4 + 4 + 8 + 8 + 8

    public static func indexFileName(_ applied: UInt64) -> String { "index-\(zeroPadded(applied)).hnsw" }
    public static func keysFileName(_ applied: UInt64) -> String { "keys-\(zeroPadded(applied)).bin" }

    /// The keys file's bytes: header, one record per point, XXH3-64 of everything before it.
    func encodeKeys() -> [UInt8] {
        lock.withReadLock {
            var writer = ByteWriter(capacity: Self.keysHeaderBytes + keys.count * 24 + 8)
            writer.write(bytes: Self.keysMagic)
            writer.write(Self.keysVersion)
            writer.write(UInt32(0))
            writer.write(appliedIndex)
            writer.write(nextNumber)
            writer.write(UInt64(keys.count))
            for (number, key) in keys.sorted(by: { $0.key < $1.key }) {
                writer.write(number)
                writer.writeLengthPrefixed(key)
            }
            writer.write(XXH3.hash(writer.bytes))
            return writer.finish()
        }
    }

    /// Decodes a keys file: (applied index, next number, number → key).
    public static func decodeKeys(_ bytes: [UInt8]) throws(DecodeError) -> (applied: UInt64, nextNumber: UInt64, keys: [UInt64: [UInt8]]) {
        var reader = ByteReader(bytes)
        let magic = try reader.readBytes(8, "keys.magic")
        guard Array(magic) == keysMagic else { throw reader.error("keys.magic", .badMagic) }
        let version = try reader.readUInt32("keys.version")
        guard version == keysVersion else { throw reader.error("keys.version", .unsupportedVersion(UInt64(version))) }
        guard bytes.count >= keysHeaderBytes + 8 else { throw reader.error("keys.checksum", .truncated(needed: keysHeaderBytes + 8, available: bytes.count)) }
        var tail = ByteReader(bytes, range: bytes.count - 8 ..< bytes.count)
        let stored = try tail.readUInt64("keys.checksum")
        let computed = XXH3.hash(bytes, range: 0 ..< bytes.count - 8)
        guard stored == computed else {
            throw DecodeError(field: "keys.checksum", offset: UInt64(bytes.count - 8), reason: .checksumMismatch(stored: stored, computed: computed))
        }
        reader = ByteReader(bytes, range: 0 ..< bytes.count - 8)
        try reader.skip(12, "keys.header")
        try reader.readReserved(UInt32.self, "keys.reserved")
        let applied = try reader.readUInt64("keys.applied index")
        let next = try reader.readUInt64("keys.next number")
        // The counter must be able to give one more number.
        guard next < UInt64.max else { throw reader.error("keys.next number", .invalid("\(next) leaves no number to give")) }
        let count = try reader.readUInt64("keys.count")
        guard count <= UInt64(reader.remaining / 10) else { throw reader.error("keys.count", .tooLarge(value: count, limit: UInt64(reader.remaining / 10))) }
        var keys: [UInt64: [UInt8]] = [:]
        keys.reserveCapacity(Int(count))
        var seen = Set<[UInt8]>()
        var previous: UInt64 = 0
        for _ in 0..<count {
            let number = try reader.readUInt64("keys.entry.number")
            guard number > previous, number < next else { throw reader.error("keys.entry.number", .invalid("\(number) is out of order or not below the next number \(next)")) }
            previous = number
            let key = Array(try reader.readLengthPrefixed("keys.entry.key", limit: ShardCommand.keyBytesMax))
            guard !key.isEmpty, seen.insert(key).inserted else { throw reader.error("keys.entry.key", .invalid("an empty or repeated key")) }
            keys[number] = key
        }
        guard reader.isAtEnd else { throw reader.error("keys", .invalid("\(reader.remaining) bytes after the entries")) }
        return (applied, next, keys)
    }

    /// Writes a checkpoint into `directory` (index file, then keys file, each atomic and
    /// durable). The caller holds off applies while it runs.
    public func saveCheckpoint(directory: String, fileSystem: any FileSystem) throws(ShardError) {
        let applied = appliedIndex
        do throws(CheckpointError) {
            try index.save(to: joinPath(directory, Self.indexFileName(applied)), appliedIndex: applied, fileSystem: fileSystem)
        } catch {
            throw .checkpoint("\(error)")
        }
        do throws(FileIOError) { try fileSystem.writeAtomically(joinPath(directory, Self.keysFileName(applied)), encodeKeys()) } catch {
            throw .io(error)
        }
    }

    /// The applied indexes of the complete checkpoints in `directory` (both files present),
    /// newest first.
    public static func checkpoints(in directory: String, fileSystem: any FileSystem) throws(ShardError) -> [UInt64] {
        let names: [String]
        do throws(FileIOError) { names = try fileSystem.list(directory) } catch { throw .io(error) }
        let set = Set(names)
        return names.compactMap { name -> UInt64? in
            guard name.hasPrefix("index-"), name.hasSuffix(".hnsw"),
                  let applied = UInt64(name.dropFirst(6).dropLast(5)), set.contains(keysFileName(applied)) else { return nil }
            return applied
        }.sorted(by: >)
    }

    /// Loads the checkpoint at `applied` from `directory`.
    public static func loadCheckpoint(directory: String, applied: UInt64, fileSystem: any FileSystem) throws(ShardError) -> VectorState {
        try loadCheckpoint(indexPath: joinPath(directory, indexFileName(applied)), keysPath: joinPath(directory, keysFileName(applied)),
                           applied: applied, fileSystem: fileSystem)
    }

    /// Loads the checkpoint at `applied` from its two files (wherever they are: a snapshot's
    /// are checked before they get their names in a shard's directory).
    public static func loadCheckpoint(indexPath: String, keysPath path: String, applied: UInt64, fileSystem: any FileSystem) throws(ShardError) -> VectorState {
        let loaded: (index: HNSWIndex, appliedIndex: UInt64)
        do throws(CheckpointError) {
            loaded = try HNSWIndex.load(from: indexPath, fileSystem: fileSystem)
        } catch {
            throw .checkpoint("\(error)")
        }
        let bytes: [UInt8]
        do throws(FileIOError) {
            let handle = try fileSystem.open(path, options: .read)
            defer { handle.close() }
            bytes = try handle.readAll()
        } catch {
            throw .io(error)
        }
        let decoded: (applied: UInt64, nextNumber: UInt64, keys: [UInt64: [UInt8]])
        do throws(DecodeError) { decoded = try decodeKeys(bytes) } catch { throw .corrupt(path: path, "\(error)") }
        guard decoded.applied == applied, loaded.appliedIndex == applied else {
            throw .corrupt(path: path, "the checkpoint's files say applied indexes \(loaded.appliedIndex) and \(decoded.applied), its name \(applied)")
        }
        guard decoded.keys.count == loaded.index.count, decoded.keys.keys.allSatisfy({ loaded.index.contains($0) }) else {
            throw .corrupt(path: path, "the keys file names \(decoded.keys.count) points, the index holds \(loaded.index.count) others")
        }
        return VectorState(index: loaded.index, keys: decoded.keys, nextNumber: decoded.nextNumber, appliedIndex: applied)
    }
}

func zeroPadded(_ value: UInt64) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
}
