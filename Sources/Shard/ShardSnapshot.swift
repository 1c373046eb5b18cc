// A shard snapshot (Format/shard.md §6): the whole state of one shard at one applied index, in
// one file — its points as the storage engine holds them, then the two files of a vector
// checkpoint (keys file and HNSW index) taken at the same index. A replica that installs it
// stands where the source stood and replays the log from the index after.
//
// The file is a header and a chain of chunks. Each chunk's checksum is seeded with the one
// before it (the header's for the first), so a chunk that is damaged, dropped, repeated or moved
// breaks the chain at that chunk; the end chunk's totals catch a file cut short at a chunk
// boundary. Chunks are bounded, so the file can be sent over the binary RPC as a stream.
//
// `Shard.exportSnapshot` writes one and `Shard.installSnapshot` installs one (Shard.swift);
// here are the format, the writer, the reader and the check that both the installer and
// `vectron-tool verify` run before trusting a byte of it.

import Basics
import Checksum
import FileIO
import LSM
import VectorIndex
import Wire

/// What a snapshot holds, as its header and end chunk say.
public struct ShardSnapshotInfo: Sendable, Equatable {
    public var group: UInt64
    public var appliedIndex: UInt64
    public var points: UInt64 = 0
    public var keysFileBytes: UInt64 = 0
    public var indexFileBytes: UInt64 = 0
    public var chunks = 0
    public var bytes: UInt64 = 0
}

public enum ShardSnapshot {
    public static let magic: [UInt8] = Array("VXSNAP01".utf8)
    public static let version: UInt32 = 1
    public static let headerBytes = 40
    /// kind u8, length u32.
    public static let chunkHeaderBytes = 5
    public static let chunkChecksumBytes = 8
    /// The largest chunk payload a reader accepts: one point (a 64-byte key, 65,536 floats and an
    /// 8 MiB payload) always fits.
    public static let chunkBytesMax = 16 << 20
    /// The payload size a writer aims at.
    public static let chunkBytesTarget = 1 << 20
    /// The end chunk's payload: points u64, keys-file bytes u64, index-file bytes u64.
    public static let endBytes = 24

    public enum ChunkKind: UInt8, Sendable, CaseIterable {
        case points = 1, keysFile = 2, indexFile = 3, end = 4
        public var name: String {
            switch self {
            case .points: "points"
            case .keysFile: "keys file"
            case .indexFile: "index file"
            case .end: "end"
            }
        }
    }

    public struct Chunk: Sendable {
        /// Where the chunk starts in the file.
        public var offset: UInt64
        public var kind: ChunkKind
        public var payload: [UInt8]
        public var checksum: UInt64
    }

    /// Names inside a shard's directory while a snapshot is installed (§6.4).
    static let markerName = "snapshot-install"
    static let markerMagic: [UInt8] = Array("VXINST01".utf8)
    static let markerBytes = 24
    static func stagedIndexName(_ applied: UInt64) -> String { "snapshot-\(zeroPadded(applied)).hnsw" }
    static func stagedKeysName(_ applied: UInt64) -> String { "snapshot-\(zeroPadded(applied)).keys" }

    // MARK: Header

    static func encodeHeader(group: UInt64, applied: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: headerBytes)
        writer.write(bytes: magic)
        writer.write(version)
        writer.write(UInt32(0))
        writer.write(group)
        writer.write(applied)
        writer.write(XXH3.hash(writer.bytes))
        return writer.finish()
    }

    /// Decodes a header: (group, applied index, checksum — the seed of the first chunk's).
    public static func decodeHeader(_ bytes: [UInt8]) throws(DecodeError) -> (group: UInt64, applied: UInt64, checksum: UInt64) {
        var reader = ByteReader(bytes)
        let found = try reader.readBytes(8, "snapshot.magic")
        guard Array(found) == magic else { throw reader.error("snapshot.magic", .badMagic) }
        let version = try reader.readUInt32("snapshot.version")
        guard version == Self.version else { throw reader.error("snapshot.version", .unsupportedVersion(UInt64(version))) }
        try reader.readReserved(UInt32.self, "snapshot.reserved")
        let group = try reader.readUInt64("snapshot.group")
        let applied = try reader.readUInt64("snapshot.applied index")
        let stored = try reader.readUInt64("snapshot.header checksum")
        let computed = XXH3.hash(bytes, range: 0 ..< headerBytes - 8)
        guard stored == computed else {
            throw DecodeError(field: "snapshot.header checksum", offset: UInt64(headerBytes - 8), reason: .checksumMismatch(stored: stored, computed: computed))
        }
        return (group, applied, stored)
    }

    /// A chunk's checksum: XXH3-64 of its kind, length and payload, seeded with the previous one.
    static func chunkChecksum(_ framed: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 { XXH3.hash(framed, seed: seed) }

    /// A point of a points chunk: its key, its record's bytes and the record's vector dimension.
    public typealias Point = (key: [UInt8], record: [UInt8], dimension: Int)

    /// Decodes a points chunk's payload, each record checked to decode (once: its dimension is
    /// returned with it). `baseOffset` is where the payload sits in the file, for error offsets.
    public static func decodePoints(_ payload: [UInt8], baseOffset: UInt64) throws(DecodeError) -> [Point] {
        var reader = ByteReader(payload, baseOffset: baseOffset)
        let count = try reader.readVarint("snapshot.points.count")
        // Each point takes at least 2 + 1 + 1 + 1 bytes (key, record version, dimension, payload length).
        guard count >= 1, count <= UInt64(reader.remaining / 5) else {
            throw reader.error("snapshot.points.count", .invalid("\(count) points in \(reader.remaining) bytes"))
        }
        var out: [Point] = []
        out.reserveCapacity(Int(count))
        for _ in 0..<count {
            let keyAt = reader.absoluteOffset
            let key = Array(try reader.readLengthPrefixed("snapshot.points.key", limit: ShardCommand.keyBytesMax))
            guard !key.isEmpty else { throw DecodeError(field: "snapshot.points.key", offset: keyAt, reason: .invalid("an empty key")) }
            let recordAt = reader.absoluteOffset
            // No larger than the storage engine takes, so that a checked snapshot always installs.
            let record = Array(try reader.readLengthPrefixed("snapshot.points.record", limit: StorageEngine.valueBytesLimit))
            let dimension: Int
            do throws(DecodeError) { dimension = try PointRecord.decode(record).vector.count } catch {
                throw DecodeError(field: "snapshot.points.record", offset: recordAt, reason: .invalid("\(error)"))
            }
            out.append((key, record, dimension))
        }
        guard reader.isAtEnd else { throw reader.error("snapshot.points", .invalid("\(reader.remaining) bytes after the points")) }
        return out
    }

    public static func decodeEnd(_ payload: [UInt8], baseOffset: UInt64) throws(DecodeError) -> (points: UInt64, keysFileBytes: UInt64, indexFileBytes: UInt64) {
        var reader = ByteReader(payload, baseOffset: baseOffset)
        let points = try reader.readUInt64("snapshot.end.points")
        let keys = try reader.readUInt64("snapshot.end.keys file bytes")
        let index = try reader.readUInt64("snapshot.end.index file bytes")
        guard reader.isAtEnd else { throw reader.error("snapshot.end", .invalid("\(reader.remaining) bytes after the totals")) }
        return (points, keys, index)
    }

    // MARK: Install marker

    static func encodeMarker(applied: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: markerBytes)
        writer.write(bytes: markerMagic)
        writer.write(applied)
        writer.write(XXH3.hash(writer.bytes))
        return writer.finish()
    }

    /// The applied index an install marker names, or nil if it does not decode.
    static func decodeMarker(_ bytes: [UInt8]) -> UInt64? {
        guard bytes.count == markerBytes, Array(bytes[0..<8]) == markerMagic,
              XXH3.hash(bytes, range: 0..<16) == bytes.withUnsafeBytes({ UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt64.self)) })
        else { return nil }
        return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
    }

    // MARK: Writing

    /// Writes a snapshot file front to back, chunk by chunk.
    final class Writer {
        let handle: any FileHandle
        private(set) var info: ShardSnapshotInfo
        private var previous: UInt64
        private var pending: [UInt8] = []
        private var pendingCount = 0
        private var lastKey: [UInt8]?

        init(handle: any FileHandle, group: UInt64, applied: UInt64) throws(FileIOError) {
            self.handle = handle
            info = ShardSnapshotInfo(group: group, appliedIndex: applied)
            let header = ShardSnapshot.encodeHeader(group: group, applied: applied)
            try handle.write(at: 0, header)
            info.bytes = UInt64(header.count)
            previous = XXH3.hash(header, range: 0 ..< ShardSnapshot.headerBytes - 8)
        }

        private func emit(_ kind: ChunkKind, _ payload: [UInt8]) throws(FileIOError) {
            var framed = [UInt8]()
            framed.reserveCapacity(ShardSnapshot.chunkHeaderBytes + payload.count + ShardSnapshot.chunkChecksumBytes)
            framed.append(kind.rawValue)
            withUnsafeBytes(of: UInt32(payload.count).littleEndian) { framed.append(contentsOf: $0) }
            framed.append(contentsOf: payload)
            let checksum = framed.withUnsafeBytes { ShardSnapshot.chunkChecksum($0, seed: previous) }
            withUnsafeBytes(of: checksum.littleEndian) { framed.append(contentsOf: $0) }
            try handle.write(at: info.bytes, framed)
            info.bytes += UInt64(framed.count)
            info.chunks += 1
            previous = checksum
        }

        /// Adds a point; points come in strictly ascending key order (false if this one does not).
        func addPoint(key: [UInt8], record: [UInt8]) throws(FileIOError) -> Bool {
            guard lastKey.map({ $0.lexicographicallyPrecedes(key) }) ?? true else { return false }
            lastKey = key
            let size = varintSize(UInt64(key.count)) + key.count + varintSize(UInt64(record.count)) + record.count
            if pendingCount > 0 && pending.count + size > ShardSnapshot.chunkBytesTarget { try flushPoints() }
            appendVarint(UInt64(key.count), to: &pending)
            pending.append(contentsOf: key)
            appendVarint(UInt64(record.count), to: &pending)
            pending.append(contentsOf: record)
            pendingCount += 1
            info.points += 1
            return true
        }

        private func flushPoints() throws(FileIOError) {
            guard pendingCount > 0 else { return }
            var payload: [UInt8] = []
            payload.reserveCapacity(pending.count + 10)
            appendVarint(UInt64(pendingCount), to: &payload)
            payload.append(contentsOf: pending)
            try emit(.points, payload)
            pending.removeAll(keepingCapacity: true)
            pendingCount = 0
        }

        /// Copies a whole file into chunks of `kind`.
        func addFile(_ kind: ChunkKind, from source: any FileHandle) throws(FileIOError) {
            try flushPoints()
            let size = try source.size()
            var offset: UInt64 = 0
            while offset < size {
                let count = Int(min(UInt64(ShardSnapshot.chunkBytesTarget), size - offset))
                let bytes = try source.read(at: offset, count: count)
                guard bytes.count == count else {
                    throw FileIOError(.io, operation: "read", path: source.path)
                }
                try emit(kind, bytes)
                offset += UInt64(count)
            }
            if kind == .keysFile { info.keysFileBytes = size } else { info.indexFileBytes = size }
        }

        func finish() throws(FileIOError) {
            try flushPoints()
            var end = ByteWriter(capacity: ShardSnapshot.endBytes)
            end.write(info.points)
            end.write(info.keysFileBytes)
            end.write(info.indexFileBytes)
            try emit(.end, end.finish())
        }
    }

    // MARK: Reading

    /// Reads a snapshot file chunk by chunk, checking each chunk's checksum and the order of
    /// kinds as it goes (Format/shard.md §6.2). Every problem is `ShardError.corrupt`.
    public final class Reader {
        public let path: String
        public let group: UInt64
        public let appliedIndex: UInt64
        public let size: UInt64
        public private(set) var offset: UInt64
        private let handle: any FileHandle
        private let ownsHandle: Bool
        private var previous: UInt64
        private var lastKind: ChunkKind?
        public private(set) var ended = false

        public convenience init(path: String, fileSystem: any FileSystem) throws(ShardError) {
            let handle: any FileHandle
            do throws(FileIOError) { handle = try fileSystem.open(path, options: .read) } catch { throw .io(error) }
            do throws(ShardError) { try self.init(handle: handle, path: path, owning: true) } catch {
                handle.close()
                throw error
            }
        }

        /// Reads from an open handle (from the start); closes it at the end only if `owning`.
        public init(handle: any FileHandle, path: String, owning: Bool = false) throws(ShardError) {
            self.path = path
            self.handle = handle
            ownsHandle = owning
            let bytes: [UInt8]
            do throws(FileIOError) {
                size = try handle.size()
                bytes = try handle.read(at: 0, count: Int(min(size, UInt64(ShardSnapshot.headerBytes))))
            } catch {
                throw .io(error)
            }
            do throws(DecodeError) {
                guard bytes.count == ShardSnapshot.headerBytes else {
                    throw DecodeError(field: "snapshot.header", offset: 0, reason: .truncated(needed: ShardSnapshot.headerBytes, available: bytes.count))
                }
                (group, appliedIndex, previous) = try ShardSnapshot.decodeHeader(bytes)
            } catch {
                throw .corrupt(path: path, "\(error)")
            }
            offset = UInt64(ShardSnapshot.headerBytes)
        }

        deinit { if ownsHandle { handle.close() } }

        private func corrupt(_ field: String, at offset: UInt64, _ reason: DecodeError.Reason) -> ShardError {
            .corrupt(path: path, "\(DecodeError(field: field, offset: offset, reason: reason))")
        }

        /// The next chunk, or nil after the end chunk (when the file must end too).
        public func next() throws(ShardError) -> Chunk? {
            if ended { return nil }
            let start = offset
            guard size - start >= UInt64(ShardSnapshot.chunkHeaderBytes) else {
                throw corrupt("snapshot.chunk", at: start, .truncated(needed: ShardSnapshot.chunkHeaderBytes, available: Int(size - start)))
            }
            let head: [UInt8]
            do throws(FileIOError) { head = try handle.read(at: start, count: ShardSnapshot.chunkHeaderBytes) } catch { throw .io(error) }
            guard let kind = ChunkKind(rawValue: head[0]) else { throw corrupt("snapshot.chunk.kind", at: start, .invalidValue(UInt64(head[0]))) }
            let length = head.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 1, as: UInt32.self)) }
            guard length <= UInt32(ShardSnapshot.chunkBytesMax) else {
                throw corrupt("snapshot.chunk.length", at: start + 1, .tooLarge(value: UInt64(length), limit: UInt64(ShardSnapshot.chunkBytesMax)))
            }
            let framedBytes = ShardSnapshot.chunkHeaderBytes + Int(length) + ShardSnapshot.chunkChecksumBytes
            guard size - start >= UInt64(framedBytes) else {
                throw corrupt("snapshot.chunk", at: start, .truncated(needed: framedBytes, available: Int(size - start)))
            }
            let framed: [UInt8]
            do throws(FileIOError) { framed = try handle.read(at: start, count: framedBytes) } catch { throw .io(error) }
            let payloadEnd = ShardSnapshot.chunkHeaderBytes + Int(length)
            let stored = framed.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: payloadEnd, as: UInt64.self)) }
            let computed = framed.withUnsafeBytes { ShardSnapshot.chunkChecksum(UnsafeRawBufferPointer(rebasing: $0[0..<payloadEnd]), seed: previous) }
            guard stored == computed else {
                throw corrupt("snapshot.chunk.checksum", at: start + UInt64(payloadEnd), .checksumMismatch(stored: stored, computed: computed))
            }
            // Order: points*, keys file+, index file+, end.
            let allowed: Bool
            switch (lastKind, kind) {
            case (nil, .points), (nil, .keysFile): allowed = true
            case let (last?, next): allowed = next == last || next.rawValue == last.rawValue + 1
            default: allowed = false
            }
            guard allowed else {
                throw corrupt("snapshot.chunk.kind", at: start, .invalid("a \(kind.name) chunk after \(lastKind.map { "a \($0.name) chunk" } ?? "the header")"))
            }
            if kind == .end {
                guard length == UInt32(ShardSnapshot.endBytes) else {
                    throw corrupt("snapshot.end", at: start + 1, .invalid("the end chunk holds \(length) bytes, not \(ShardSnapshot.endBytes)"))
                }
                guard start + UInt64(framedBytes) == size else {
                    throw corrupt("snapshot", at: start + UInt64(framedBytes), .invalid("\(size - start - UInt64(framedBytes)) bytes after the end chunk"))
                }
                ended = true
            }
            previous = stored
            lastKind = kind
            offset = start + UInt64(framedBytes)
            return Chunk(offset: start, kind: kind, payload: Array(framed[ShardSnapshot.chunkHeaderBytes..<payloadEnd]), checksum: stored)
        }
    }

    // MARK: Checking a whole snapshot

    /// Reads the snapshot at `path` through and checks every rule of Format/shard.md §6: the
    /// chunk chain, each point (key order, record decodes, dimension), the totals, and the
    /// embedded checkpoint — written to `indexPath` and `keysPath` on `staging` (synced) and
    /// loaded from there, its applied index, metric and dimension agreeing with the snapshot
    /// and `configuration` (when given), its keys the points' keys. Returns what it holds and
    /// the loaded vector state.
    public static func check(path: String, fileSystem: any FileSystem, configuration: HNSWConfiguration?,
                             staging: any FileSystem, indexPath: String, keysPath: String) throws(ShardError) -> (ShardSnapshotInfo, VectorState) {
        try check(Reader(path: path, fileSystem: fileSystem), configuration: configuration, staging: staging, indexPath: indexPath, keysPath: keysPath)
    }

    /// `check(path:…)` from a reader at the start of the file.
    public static func check(_ reader: Reader, configuration: HNSWConfiguration?,
                             staging: any FileSystem, indexPath: String, keysPath: String) throws(ShardError) -> (ShardSnapshotInfo, VectorState) {
        let path = reader.path
        var info = ShardSnapshotInfo(group: reader.group, appliedIndex: reader.appliedIndex)
        var keys: [[UInt8]] = []
        var dimension: Int?
        let indexFile: any FileHandle
        let keysFile: any FileHandle
        do throws(FileIOError) {
            indexFile = try staging.open(indexPath, options: [.read, .write, .create, .truncate])
            do throws(FileIOError) { keysFile = try staging.open(keysPath, options: [.read, .write, .create, .truncate]) } catch {
                indexFile.close()
                throw error
            }
        } catch {
            throw .io(error)
        }
        defer {
            indexFile.close()
            keysFile.close()
        }
        func fail(_ offset: UInt64, _ field: String, _ reason: DecodeError.Reason) -> ShardError {
            .corrupt(path: path, "\(DecodeError(field: field, offset: offset, reason: reason))")
        }
        while let chunk = try reader.next() {
            info.chunks += 1
            let payloadAt = chunk.offset + UInt64(chunkHeaderBytes)
            switch chunk.kind {
            case .points:
                let points: [Point]
                do throws(DecodeError) { points = try decodePoints(chunk.payload, baseOffset: payloadAt) } catch {
                    throw .corrupt(path: path, "\(error)")
                }
                for point in points {
                    if let last = keys.last, !last.lexicographicallyPrecedes(point.key) {
                        throw fail(payloadAt, "snapshot.points.key", .invalid("keys out of order in the chunk at \(chunk.offset)"))
                    }
                    // All records have one dimension, the shard's.
                    let count = point.dimension
                    if let configuration, count != configuration.dimension {
                        throw .snapshot("the snapshot holds \(count)-dimensional vectors; the shard is \(configuration.dimension)-dimensional")
                    }
                    if let dimension, count != dimension {
                        throw fail(payloadAt, "snapshot.points.record", .invalid("a \(count)-dimensional vector among \(dimension)-dimensional ones"))
                    }
                    dimension = count
                    keys.append(point.key)
                }
                info.points += UInt64(points.count)
            case .keysFile, .indexFile:
                let file = chunk.kind == .keysFile ? keysFile : indexFile
                let written = chunk.kind == .keysFile ? info.keysFileBytes : info.indexFileBytes
                do throws(FileIOError) { try file.write(at: written, chunk.payload) } catch { throw .io(error) }
                if chunk.kind == .keysFile { info.keysFileBytes += UInt64(chunk.payload.count) } else { info.indexFileBytes += UInt64(chunk.payload.count) }
            case .end:
                let totals: (points: UInt64, keysFileBytes: UInt64, indexFileBytes: UInt64)
                do throws(DecodeError) { totals = try decodeEnd(chunk.payload, baseOffset: payloadAt) } catch { throw .corrupt(path: path, "\(error)") }
                guard totals == (info.points, info.keysFileBytes, info.indexFileBytes) else {
                    throw fail(payloadAt, "snapshot.end", .invalid("the end chunk counts \(totals.points) points, \(totals.keysFileBytes) + \(totals.indexFileBytes) file bytes; the chunks hold \(info.points), \(info.keysFileBytes) + \(info.indexFileBytes)"))
                }
            }
        }
        info.bytes = reader.size
        do throws(FileIOError) {
            try keysFile.sync()
            try indexFile.sync()
        } catch {
            throw .io(error)
        }
        let state: VectorState
        do throws(ShardError) {
            state = try VectorState.loadCheckpoint(indexPath: indexPath, keysPath: keysPath, applied: info.appliedIndex, fileSystem: staging)
        } catch {
            throw .corrupt(path: path, "its vector checkpoint does not load: \(error)")
        }
        let loaded = state.index.configuration
        if let configuration {
            guard loaded.dimension == configuration.dimension, loaded.metric == configuration.metric else {
                throw .snapshot("the snapshot's index is \(loaded.dimension)-dimensional \(loaded.metric); the shard is \(configuration.dimension)-dimensional \(configuration.metric)")
            }
        }
        if let dimension, dimension != loaded.dimension {
            throw .corrupt(path: path, "its points are \(dimension)-dimensional, its vector checkpoint \(loaded.dimension)-dimensional")
        }
        guard state.count == keys.count, keys.allSatisfy({ state.contains(key: $0) }) else {
            throw .corrupt(path: path, "its vector checkpoint holds \(state.count) keys, not the \(keys.count) points of its storage view")
        }
        return (info, state)
    }
}
