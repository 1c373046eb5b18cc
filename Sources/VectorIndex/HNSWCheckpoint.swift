// HNSW checkpoint files (Format/hnsw.md): a checksummed header with a section table, then six
// sections — vectors, level-0 links, levels, upper links, ids, flags — each checksummed.
// Written atomically (temporary file, fsync, rename, directory fsync). Loading reads each
// section in bulk straight into the index's arrays (no per-node allocation) and validates every
// count, id, level and offset before the index is handed out, so a damaged file is a typed error
// and never an out-of-bounds read.

import Basics
import Checksum
import FileIO
import Wire

public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// The file's bytes break a rule of Format/hnsw.md.
    case corrupt(path: String, DecodeError)
    case io(FileIOError)

    public var description: String {
        switch self {
        case let .corrupt(path, error): "corrupt HNSW checkpoint \(path): \(error)"
        case let .io(error): "\(error)"
        }
    }
}

/// The fixed part of a checkpoint (Format/hnsw.md §2).
public struct CheckpointHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("VECTHNSW".utf8)
    public static let version: UInt16 = 1
    public static let bytes = 296
    public static let sectionCount = 6
    public static let tableOffset = 96
    public static let checksumOffset = 288
    public static let noEntryPoint = UInt32.max

    public enum Section: UInt32, CaseIterable, Sendable {
        case vectors = 1, level0Links = 2, levels = 3, upperLinks = 4, ids = 5, flags = 6
    }

    public struct SectionEntry: Equatable, Sendable {
        public var kind: Section
        public var offset: UInt64
        public var length: UInt64
        public var checksum: UInt64
    }

    public var metric: Metric
    public var dimension: Int
    public var m: Int
    public var efConstruct: Int
    public var ef: Int
    public var nodeCount: Int
    public var liveCount: Int
    public var entryPoint: UInt32
    public var maxLevel: Int
    public var upperWords: Int
    public var appliedIndex: UInt64
    public var seed: UInt64
    public var insertions: UInt64
    public var sections: [SectionEntry]

    /// Section lengths a header implies (§3).
    public func expectedLength(of section: Section) -> UInt64 {
        let nodes = UInt64(nodeCount)
        switch section {
        case .vectors: return nodes * UInt64(dimension) * 4
        case .level0Links: return nodes * UInt64(1 + 2 * m) * 4
        case .levels: return nodes * 5
        case .upperLinks: return UInt64(upperWords) * 4
        case .ids: return nodes * 8
        case .flags: return nodes
        }
    }

    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: Self.bytes)
        writer.write(bytes: Self.magic)
        writer.write(Self.version)
        writer.write(UInt16(Self.bytes))
        writer.write(UInt32(0))  // flags
        writer.write(metric.rawValue)
        writer.write(bytes: [0, 0, 0])
        writer.write(UInt32(dimension))
        writer.write(UInt32(m))
        writer.write(UInt32(efConstruct))
        writer.write(UInt32(ef))
        writer.write(UInt32(nodeCount))
        writer.write(UInt32(liveCount))
        writer.write(entryPoint)
        writer.write(UInt32(bitPattern: Int32(maxLevel)))
        writer.write(UInt64(upperWords))
        writer.write(appliedIndex)
        writer.write(seed)
        writer.write(insertions)
        writer.write(UInt32(Self.sectionCount))
        writer.write(UInt64(0))  // reserved
        precondition(writer.count == Self.tableOffset)
        for entry in sections {
            writer.write(entry.kind.rawValue)
            writer.write(UInt32(0))
            writer.write(entry.offset)
            writer.write(entry.length)
            writer.write(entry.checksum)
        }
        precondition(writer.count == Self.checksumOffset)
        let checksum = XXH3.hash(writer.bytes, range: 0..<Self.checksumOffset)
        writer.write(checksum)
        return writer.finish()
    }

    /// Decodes and checks the header of a file of `fileSize` bytes (§2, §4 steps 1–5).
    public static func decode(_ bytes: [UInt8], fileSize: UInt64) throws(DecodeError) -> CheckpointHeader {
        var reader = ByteReader(bytes)
        guard bytes.count >= Self.bytes else {
            throw DecodeError(field: "header", offset: 0, reason: .truncated(needed: Self.bytes, available: bytes.count))
        }
        guard try reader.readBytes(8, "magic").elementsEqual(Self.magic) else {
            throw DecodeError(field: "magic", offset: 0, reason: .badMagic)
        }
        let stored = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: Self.checksumOffset, as: UInt64.self)) }
        let computed = XXH3.hash(bytes, range: 0..<Self.checksumOffset)
        guard stored == computed else {
            throw DecodeError(field: "header checksum", offset: UInt64(Self.checksumOffset), reason: .checksumMismatch(stored: stored, computed: computed))
        }
        let version = try reader.readUInt16("version")
        guard version == Self.version else { throw DecodeError(field: "version", offset: 8, reason: .unsupportedVersion(UInt64(version))) }
        let headerSize = try reader.readUInt16("header size")
        guard headerSize == Self.bytes else { throw DecodeError(field: "header size", offset: 10, reason: .invalidValue(UInt64(headerSize))) }
        try reader.readReserved(UInt32.self, "flags")
        let metricCode = try reader.readUInt8("metric")
        guard let metric = Metric(rawValue: metricCode) else { throw DecodeError(field: "metric", offset: 16, reason: .invalidValue(UInt64(metricCode))) }
        for _ in 0..<3 { try reader.readReserved(UInt8.self, "reserved") }
        let dimension = Int(try reader.readUInt32("dimension"))
        guard (1...HNSWConfiguration.dimensionMax).contains(dimension) else {
            throw DecodeError(field: "dimension", offset: 20, reason: .invalidValue(UInt64(dimension)))
        }
        let m = Int(try reader.readUInt32("m"))
        guard (2...HNSWConfiguration.mMax).contains(m) else { throw DecodeError(field: "m", offset: 24, reason: .invalidValue(UInt64(m))) }
        let efConstruct = Int(try reader.readUInt32("ef construct"))
        guard (1...65_536).contains(efConstruct) else { throw DecodeError(field: "ef construct", offset: 28, reason: .invalidValue(UInt64(efConstruct))) }
        let ef = Int(try reader.readUInt32("ef"))
        guard (1...65_536).contains(ef) else { throw DecodeError(field: "ef", offset: 32, reason: .invalidValue(UInt64(ef))) }
        let nodeCount = Int(try reader.readUInt32("node count"))
        guard nodeCount <= HNSWIndex.nodesMax else { throw DecodeError(field: "node count", offset: 36, reason: .invalidValue(UInt64(nodeCount))) }
        let liveCount = Int(try reader.readUInt32("live count"))
        guard liveCount <= nodeCount else { throw DecodeError(field: "live count", offset: 40, reason: .invalidValue(UInt64(liveCount))) }
        let entryPoint = try reader.readUInt32("entry point")
        let maxLevel = Int(Int32(bitPattern: try reader.readUInt32("max level")))
        guard maxLevel >= -1 && maxLevel <= HNSWIndex.levelMax else {
            throw DecodeError(field: "max level", offset: 48, reason: .invalid("\(maxLevel) is outside -1...\(HNSWIndex.levelMax)"))
        }
        if maxLevel < 0 {
            guard entryPoint == Self.noEntryPoint, liveCount == 0 else {
                throw DecodeError(field: "entry point", offset: 44, reason: .invalid("an index without levels has an entry point or live nodes"))
            }
        } else {
            guard Int(entryPoint) < nodeCount else {
                throw DecodeError(field: "entry point", offset: 44, reason: .invalid("\(entryPoint) is not below the node count \(nodeCount)"))
            }
        }
        let upperWords = try reader.readUInt64("upper words")
        guard upperWords <= fileSize / 4 else { throw DecodeError(field: "upper words", offset: 52, reason: .tooLarge(value: upperWords, limit: fileSize / 4)) }
        let appliedIndex = try reader.readUInt64("applied index")
        let seed = try reader.readUInt64("seed")
        let insertions = try reader.readUInt64("insertions")
        let sectionCount = try reader.readUInt32("section count")
        guard sectionCount == UInt32(Self.sectionCount) else {
            throw DecodeError(field: "section count", offset: 84, reason: .invalidValue(UInt64(sectionCount)))
        }
        try reader.readReserved(UInt64.self, "reserved")
        var header = CheckpointHeader(metric: metric, dimension: dimension, m: m, efConstruct: efConstruct, ef: ef,
                                      nodeCount: nodeCount, liveCount: liveCount, entryPoint: entryPoint, maxLevel: maxLevel,
                                      upperWords: Int(upperWords), appliedIndex: appliedIndex, seed: seed, insertions: insertions,
                                      sections: [])
        var end = UInt64(Self.bytes)
        for (position, kind) in Section.allCases.enumerated() {
            let at = UInt64(Self.tableOffset + position * 32)
            let code = try reader.readUInt32("section kind")
            guard code == kind.rawValue else { throw DecodeError(field: "section kind", offset: at, reason: .invalidValue(UInt64(code))) }
            try reader.readReserved(UInt32.self, "section reserved")
            let offset = try reader.readUInt64("section offset")
            let length = try reader.readUInt64("section length")
            let checksum = try reader.readUInt64("section checksum")
            guard offset == (end + 63) & ~63 else {
                throw DecodeError(field: "section offset", offset: at + 8, reason: .invalid("\(kind) starts at \(offset), expected \((end + 63) & ~63)"))
            }
            let expected = header.expectedLength(of: kind)
            guard length == expected else {
                throw DecodeError(field: "section length", offset: at + 16, reason: .invalid("\(kind) has \(length) bytes, the header implies \(expected)"))
            }
            guard offset <= fileSize, length <= fileSize - offset else {
                throw DecodeError(field: "section length", offset: at + 16,
                                  reason: .truncated(needed: Int(clamping: offset &+ length), available: Int(clamping: fileSize)))
            }
            header.sections.append(SectionEntry(kind: kind, offset: offset, length: length, checksum: checksum))
            end = offset + length
        }
        guard end == fileSize else {
            throw DecodeError(field: "file size", offset: end, reason: .invalid("\(fileSize - end) bytes follow the last section"))
        }
        return header
    }
}

extension HNSWIndex {
    /// Writes a checkpoint of the whole index to `path`, atomically and durably. `appliedIndex`
    /// is stored for the caller (the Raft index the index reflects). Blocks other operations on
    /// the index while it runs.
    public func save(to path: String, appliedIndex: UInt64, fileSystem: any FileSystem) throws(CheckpointError) {
        // No change runs while the gate is held, so the index reads consistently under a shared
        // `structureLock` — beside searches, which go on.
        mutationGate.lockExclusive()
        defer { mutationGate.unlock() }
        structureLock.lockShared()
        defer { structureLock.unlock() }
        metaLock.lock()
        let (liveCount, entry, top) = (idMap.count, entryPoint, maxLevel)
        metaLock.unlock()
        var header = CheckpointHeader(
            metric: metric, dimension: dimension, m: m, efConstruct: configuration.efConstruct, ef: configuration.ef,
            nodeCount: nodeCount, liveCount: liveCount, entryPoint: top < 0 ? CheckpointHeader.noEntryPoint : entry,
            maxLevel: top, upperWords: upperUsed, appliedIndex: appliedIndex, seed: configuration.seed,
            insertions: insertions, sections: [])
        var offset = UInt64(CheckpointHeader.bytes)
        for kind in CheckpointHeader.Section.allCases {
            offset = (offset + 63) & ~63
            let length = header.expectedLength(of: kind)
            header.sections.append(.init(kind: kind, offset: offset, length: length, checksum: 0))
            offset += length
        }
        let temporary = path + ".tmp"
        do throws(FileIOError) {
            let handle = try fileSystem.open(temporary, options: [.read, .write, .create, .truncate])
            do throws(FileIOError) {
                for (position, entry) in header.sections.enumerated() {
                    header.sections[position].checksum = try writeSection(entry, to: handle)
                }
                // The file ends where the last section does, even when it is empty.
                try handle.truncate(to: offset)
                try handle.write(at: 0, header.encode())
                try handle.sync()
            } catch {
                handle.close()
                throw error
            }
            handle.close()
            try fileSystem.rename(temporary, to: path)
            try fileSystem.syncDirectory(parentDirectory(of: path))
        } catch {
            throw .io(error)
        }
    }

    /// Streams one section to the file in chunks; returns its XXH3-64.
    private func writeSection(_ entry: CheckpointHeader.SectionEntry, to handle: any FileHandle) throws(FileIOError) -> UInt64 {
        let stream = XXH3Stream()
        var chunk: [UInt8] = []
        let chunkBytes = 4 << 20
        chunk.reserveCapacity(chunkBytes + 65_536)
        var written = entry.offset
        func flush(_ force: Bool) throws(FileIOError) {
            guard !chunk.isEmpty, force || chunk.count >= chunkBytes else { return }
            stream.update(chunk)
            try handle.write(at: written, chunk)
            written += UInt64(chunk.count)
            chunk.removeAll(keepingCapacity: true)
        }
        func append(_ pointer: UnsafeRawPointer, _ count: Int) {
            chunk.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: count))
        }
        let listWords = 1 + m0
        switch entry.kind {
        case .vectors:
            var node = 0
            while node < nodeCount {
                let nodes = min(nodeCount - node, max(1, chunkBytes / vectorBytes))
                append(UnsafeRawPointer(vector(UInt32(node))), nodes * vectorBytes)
                try flush(true)
                node += nodes
            }
        case .level0Links:
            for node in 0..<nodeCount {
                let list = linkList(UInt32(node), level: 0)
                let count = min(Int(list.pointee), m0)
                for index in 0..<listWords {
                    // Unused slots are written as zero, so that equal graphs give equal files.
                    var word = (index == 0 ? UInt32(count) : index <= count ? list[index] : 0).littleEndian
                    withUnsafeBytes(of: &word) { chunk.append(contentsOf: $0) }
                }
                try flush(false)
            }
        case .levels:
            chunk.append(contentsOf: UnsafeBufferPointer(start: levels, count: nodeCount))
            for node in 0..<nodeCount {
                var word = (levels[node] > 0 ? upperOffsets[node] : 0).littleEndian
                withUnsafeBytes(of: &word) { chunk.append(contentsOf: $0) }
                try flush(false)
            }
        case .upperLinks:
            var at = 0
            while at < upperUsed {
                let words = min(upperUsed - at, chunkBytes / 4)
                append(UnsafeRawPointer(upperPool + at), words * 4)
                try flush(true)
                at += words
            }
        case .ids:
            append(UnsafeRawPointer(externalIDs), nodeCount * 8)
        case .flags:
            append(UnsafeRawPointer(flags), nodeCount)
        }
        try flush(true)
        return stream.digest
    }

    /// Loads a checkpoint written by `save`. Returns the index and its applied index.
    public static func load(from path: String, fileSystem: any FileSystem) throws(CheckpointError) -> (index: HNSWIndex, appliedIndex: UInt64) {
        let handle: any FileHandle
        do throws(FileIOError) { handle = try fileSystem.open(path, options: .read) } catch { throw .io(error) }
        defer { handle.close() }
        let fileSize: UInt64
        let headerBytes: [UInt8]
        do throws(FileIOError) {
            fileSize = try handle.size()
            headerBytes = try handle.read(at: 0, count: min(CheckpointHeader.bytes, Int(clamping: fileSize)))
        } catch {
            throw .io(error)
        }
        let header: CheckpointHeader
        do throws(DecodeError) { header = try CheckpointHeader.decode(headerBytes, fileSize: fileSize) } catch {
            throw .corrupt(path: path, error)
        }
        let configuration = HNSWConfiguration(dimension: header.dimension, metric: header.metric, m: header.m,
                                              efConstruct: header.efConstruct, ef: header.ef, seed: header.seed)
        let index: HNSWIndex
        do throws(VectorIndexError) { index = try HNSWIndex(configuration: configuration, capacity: max(header.nodeCount, 16)) } catch {
            throw .corrupt(path: path, DecodeError(field: "header", offset: 0, reason: .invalid("\(error)")))
        }
        index.growLocked(nodes: header.nodeCount, upper: header.upperWords)
        for entry in header.sections {
            try index.readSection(entry, nodes: header.nodeCount, from: handle, path: path)
        }
        do throws(DecodeError) { try index.adoptLoaded(header) } catch { throw .corrupt(path: path, error) }
        return (index, header.appliedIndex)
    }

    /// Reads a section into the index's arrays in chunks of whole records, checking its checksum.
    private func readSection(_ entry: CheckpointHeader.SectionEntry, nodes: Int, from handle: any FileHandle,
                             path: String) throws(CheckpointError) {
        let stream = XXH3Stream()
        let record: Int
        switch entry.kind {
        case .vectors: record = vectorBytes
        case .level0Links: record = (1 + m0) * 4
        case .levels: record = Int(entry.length)  // levels then offsets: read whole
        case .flags: record = 1
        case .upperLinks: record = 4
        case .ids: record = 8
        }
        let chunkBytes = max(record, 4 << 20)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 64)
        defer { buffer.deallocate() }
        var done: UInt64 = 0
        var recordIndex = 0
        while done < entry.length {
            let records = min(chunkBytes / record, Int((entry.length - done) / UInt64(record)))
            let bytes = records * record
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes])
            let read: Int
            do throws(FileIOError) { read = try handle.read(at: entry.offset + done, into: slice) } catch { throw .io(error) }
            guard read == bytes else {
                throw .corrupt(path: path, DecodeError(field: "\(entry.kind)", offset: entry.offset + done, reason: .truncated(needed: bytes, available: read)))
            }
            stream.update(UnsafeRawBufferPointer(slice))
            let source = UnsafeRawPointer(slice.baseAddress!)
            switch entry.kind {
            case .vectors:
                // The float vectors are dense, as in the file.
                UnsafeMutableRawPointer(vector(UInt32(recordIndex))).copyMemory(from: source, byteCount: bytes)
            case .level0Links:
                for index in 0..<records {
                    UnsafeMutableRawPointer(linkList(UInt32(recordIndex + index), level: 0)).copyMemory(from: source + index * record, byteCount: record)
                }
            case .levels:
                UnsafeMutableRawPointer(levels).copyMemory(from: source, byteCount: nodes)
                for node in 0..<nodes {
                    upperOffsets[node] = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: nodes + 4 * node, as: UInt32.self))
                }
            case .upperLinks:
                UnsafeMutableRawPointer(upperPool + recordIndex).copyMemory(from: source, byteCount: bytes)
            case .ids:
                UnsafeMutableRawPointer(externalIDs + recordIndex).copyMemory(from: source, byteCount: bytes)
            case .flags:
                UnsafeMutableRawPointer(flags + recordIndex).copyMemory(from: source, byteCount: bytes)
            }
            recordIndex += records
            done += UInt64(bytes)
        }
        let computed = stream.digest
        guard computed == entry.checksum else {
            let at = UInt64(CheckpointHeader.tableOffset + (Int(entry.kind.rawValue) - 1) * 32 + 24)
            throw .corrupt(path: path, DecodeError(field: "\(entry.kind) checksum", offset: at,
                                                   reason: .checksumMismatch(stored: entry.checksum, computed: computed)))
        }
    }

    /// Checks every rule of Format/hnsw.md §4 on the loaded arrays and sets the index's state
    /// from them. Until this returns, nothing may search the index.
    func adoptLoaded(_ header: CheckpointHeader) throws(DecodeError) {
        let nodes = header.nodeCount
        let section = { (kind: CheckpointHeader.Section) in header.sections[Int(kind.rawValue) - 1].offset }
        func fail(_ kind: CheckpointHeader.Section, _ at: UInt64, _ reason: String) -> DecodeError {
            DecodeError(field: "\(kind)", offset: section(kind) + at, reason: .invalid(reason))
        }
        // Flags and levels first: link checks depend on them.
        for node in 0..<nodes {
            guard flags[node] <= Self.freeFlag else { throw fail(.flags, UInt64(node), "node \(node) has flags \(flags[node])") }
            let level = Int(levels[node])
            guard level <= Self.levelMax else { throw fail(.levels, UInt64(node), "node \(node) has level \(level)") }
            if level > 0 {
                let end = UInt64(upperOffsets[node]) + UInt64(level * (1 + m))
                guard end <= UInt64(header.upperWords) else {
                    throw fail(.levels, UInt64(nodes + 4 * node), "node \(node)'s upper lists end at word \(end), past \(header.upperWords)")
                }
            }
        }
        var live = 0, dead = 0
        var map: [UInt64: UInt32] = [:]
        map.reserveCapacity(header.liveCount)
        var free: [UInt32] = []
        for node in 0..<nodes {
            let level = Int(levels[node])
            if flags[node] == Self.freeFlag {
                free.append(UInt32(node))
                continue
            }
            if flags[node] == 0 {
                live += 1
                guard map.updateValue(UInt32(node), forKey: externalIDs[node]) == nil else {
                    throw fail(.ids, UInt64(8 * node), "id \(externalIDs[node]) appears twice")
                }
            } else {
                dead += 1
            }
            let data = vector(UInt32(node))
            for index in 0..<dimension where !data[index].isFinite {
                throw fail(.vectors, UInt64(node * vectorBytes + 4 * index), "node \(node) holds a non-finite value")
            }
            encode(UInt32(node))
            for layer in 0...level {
                let list = linkList(UInt32(node), level: layer)
                let count = Int(list.pointee)
                let at: UInt64 = layer == 0 ? UInt64(node * (1 + m0) * 4) : UInt64(Int(upperOffsets[node]) + (layer - 1) * (1 + m)) * 4
                let kind: CheckpointHeader.Section = layer == 0 ? .level0Links : .upperLinks
                guard count <= capacity(ofLevel: layer) else {
                    throw fail(kind, at, "node \(node) has \(count) neighbours at level \(layer), more than \(capacity(ofLevel: layer))")
                }
                for index in 0..<count {
                    let neighbor = Int(list[1 + index])
                    guard neighbor < nodes, neighbor != node, flags[neighbor] != Self.freeFlag, Int(levels[neighbor]) >= layer else {
                        throw fail(kind, at + UInt64(4 * (1 + index)), "node \(node) links to \(neighbor) at level \(layer), which is not a node there")
                    }
                }
            }
        }
        guard live == header.liveCount else {
            throw DecodeError(field: "live count", offset: 40, reason: .invalid("the header says \(header.liveCount), the flags say \(live)"))
        }
        if header.maxLevel >= 0 {
            let entry = Int(header.entryPoint)
            guard flags[entry] != Self.freeFlag, Int(levels[entry]) == header.maxLevel else {
                throw DecodeError(field: "entry point", offset: 44, reason: .invalid("node \(entry) is free or not on the top level \(header.maxLevel)"))
            }
        } else if live + dead > 0 {
            throw DecodeError(field: "max level", offset: 48, reason: .invalid("nodes exist but the index has no entry point"))
        }
        metaLock.withLock {
            nodeCount = nodes
            upperUsed = header.upperWords
            idMap = map
            freeSlots = free.reversed()
            tombstones = dead
            entryPoint = header.maxLevel >= 0 ? header.entryPoint : 0
            maxLevel = header.maxLevel
            insertions = header.insertions
        }
    }
}
