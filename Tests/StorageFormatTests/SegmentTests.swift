// Storage segments: round trips against a sorted-dictionary model, Bloom filter accuracy,
// compression, and corruption — every flipped byte or truncation of a segment is reported as
// corruption (at open or on read), never returned as data.

import TestSupport
import Basics
import FileIO
import FileIOSim
import StorageFormat
import Testing
import Wire

func makeEntries(seed: UInt64, count: Int, valueBytes: ClosedRange<Int>) -> [(key: [UInt8], value: [UInt8])] {
    var random = SeededRandom(seed: seed)
    var keys = Set<[UInt8]>()
    while keys.count < count {
        // Keys share prefixes (like "collection/shard/point") so prefix compression matters.
        let prefix = Array("c\(random.next() % 4)/p".utf8)
        keys.insert(prefix + random.bytes(1 + Int(random.next() % 12)))
    }
    return keys.sorted { compareBytes($0, $1) < 0 }.map { key in
        let length = valueBytes.lowerBound + Int(random.next() % UInt64(valueBytes.count))
        let value = random.chance(0.5) ? random.bytes(length) : [UInt8](repeating: UInt8(length % 251), count: length)
        return (key, value)
    }
}

func writeSegment(_ entries: [(key: [UInt8], value: [UInt8])], to fs: MemoryFileSystem, path: String,
                  options: SegmentWriterOptions = SegmentWriterOptions()) throws -> SegmentProperties {
    let handle = try fs.open(path, options: .createNew)
    let writer = SegmentWriter(handle: handle, options: options)
    for entry in entries { try writer.add(key: entry.key, value: entry.value) }
    let (_, properties) = try writer.finish { $0.appliedIndexes = [7: 42]; $0.largestSequence = 9 }
    try handle.sync()
    return properties
}

@Suite(.ownThread) struct SegmentTests {
    @Test(arguments: [(1, 4096, BlockCompression.lz4), (2, 256, .plain), (3, 64, .lz4)])
    func roundTripsAgainstAModel(seed: Int, blockBytes: Int, compression: BlockCompression) throws {
        let entries = makeEntries(seed: UInt64(seed), count: 2_000, valueBytes: 0...1536)
        let fs = MemoryFileSystem()
        var options = SegmentWriterOptions()
        options.blockBytes = blockBytes
        options.compression = compression
        let written = try writeSegment(entries, to: fs, path: "/s", options: options)
        let reader = try SegmentReader(handle: try fs.open("/s", options: .read))
        #expect(reader.properties == written)
        #expect(reader.properties.entryCount == UInt64(entries.count))
        #expect(reader.properties.smallestKey == entries.first!.key)
        #expect(reader.properties.largestKey == entries.last!.key)
        #expect(reader.properties.appliedIndexes == [7: 42])
        for entry in entries { #expect(try reader.get(entry.key) == entry.value) }
        var random = SeededRandom(seed: 99)
        for _ in 0..<500 {
            let probe = Array("c\(random.next() % 5)/q".utf8) + random.bytes(3)
            let expected = entries.first { $0.key == probe }?.value
            #expect(try reader.get(probe) == expected)
        }
        let all = try reader.scan()
        #expect(all.map(\.key) == entries.map(\.key))
        #expect(all.map(\.value) == entries.map(\.value))
        let lower = entries[500].key, upper = entries[1500].key
        #expect(try reader.scan(from: lower, to: upper).map(\.key) == entries[500..<1500].map(\.key))
        #expect(try reader.scan(from: lower, to: upper, reverse: true).map(\.key) == entries[500..<1500].reversed().map(\.key))
        #expect(try reader.scan(from: [0xFF]).isEmpty)
    }

    @Test func bloomFilterSkipsMostAbsentKeys() throws {
        let hashes = (0..<10_000).map { BloomFilter.hash(Array("key-\($0)".utf8)) }
        let filter = BloomFilter(hashes: hashes, bitsPerKey: 10)
        #expect(hashes.allSatisfy { filter.mayContain(hash: $0) }, "no false negatives")
        let falsePositives = (0..<10_000).filter { filter.mayContain(hash: BloomFilter.hash(Array("absent-\($0)".utf8))) }.count
        #expect(falsePositives < 200, "false-positive rate \(Double(falsePositives) / 100)% is above 2%")
    }

    @Test func compressibleBlocksAreCompressed() throws {
        let entries = (0..<500).map { (key: Array("key-\(10_000 + $0)".utf8), value: [UInt8](repeating: 7, count: 200)) }
        let fs = MemoryFileSystem()
        _ = try writeSegment(entries, to: fs, path: "/lz4")
        var plain = SegmentWriterOptions()
        plain.compression = .plain
        _ = try writeSegment(entries, to: fs, path: "/plain", options: plain)
        #expect(fs.contents(of: "/lz4")!.count * 4 < fs.contents(of: "/plain")!.count)
        let reader = try SegmentReader(handle: try fs.open("/lz4", options: .read))
        #expect(try reader.scan().map(\.value) == entries.map(\.value))
    }

    /// Every flipped byte and every truncation is reported as corruption, never served.
    @Test func everyFlippedByteIsDetected() throws {
        let entries = makeEntries(seed: 5, count: 60, valueBytes: 0...40)
        let fs = MemoryFileSystem()
        var options = SegmentWriterOptions()
        options.blockBytes = 256
        _ = try writeSegment(entries, to: fs, path: "/s", options: options)
        let original = fs.contents(of: "/s")!
        var detected = 0
        for offset in 0..<original.count {
            var damaged = original
            damaged[offset] ^= 0x41
            fs.setContents(of: "/s", damaged)
            if try servesOnlyTruthOrFails(fs, entries) { detected += 1 }
        }
        #expect(detected == original.count, "\(original.count - detected) flips went unnoticed")
        for length in stride(from: 0, to: original.count, by: 7) {
            fs.setContents(of: "/s", Array(original[..<length]))
            #expect(try servesOnlyTruthOrFails(fs, entries), "truncation to \(length) bytes went unnoticed")
        }
    }

    /// True if opening or reading fails with a corruption error; records an issue if wrong data
    /// is ever returned; false if everything read back fine (the damage went unnoticed).
    func servesOnlyTruthOrFails(_ fs: MemoryFileSystem, _ entries: [(key: [UInt8], value: [UInt8])]) throws -> Bool {
        let opened = Result { () throws(SegmentError) in try SegmentReader(handle: try! fs.open("/s", options: .read)) }
        guard case let .success(reader) = opened else {
            if case .failure(.corruption) = opened { return true }
            Issue.record("unexpected \(opened)")
            return true
        }
        let scanned = Result { () throws(SegmentError) in try reader.scan() }
        guard case let .success(all) = scanned else { return true }
        if all.map(\.key) != entries.map(\.key) || all.map(\.value) != entries.map(\.value) {
            Issue.record("damaged segment served wrong data")
            return true
        }
        return false
    }

    @Test func hostileBlocksNeverTrap() throws {
        var random = SeededRandom(seed: 11)
        var builder = BlockBuilder(restartInterval: 4)
        for i in 0..<40 { builder.add(key: Array("k\(1000 + i)".utf8), value: random.bytes(Int(random.next() % 20))[...]) }
        let valid = builder.finish()
        #expect(try Block(valid).entries().count == 40)
        for _ in 0..<5_000 {
            var bytes = valid
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let i = Int(random.next() % UInt64(bytes.count))
                bytes[i] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.chance(0.2) { bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count)))) }
            if let block = try? Block(bytes) {
                _ = try? block.entries()
                _ = try? block.seek(Array("k1020".utf8))
            }
        }
    }
}

/// Crafted inputs from the format review (Format/segment.md §16): each once misbehaved.
@Suite(.ownThread) struct SegmentHostileInputTests {
    @Test func anEmptySegmentReadsBack() throws {
        let fs = MemoryFileSystem()
        _ = try writeSegment([], to: fs, path: "/empty")
        let reader = try SegmentReader(handle: try fs.open("/empty", options: .read))
        #expect(reader.properties.entryCount == 0)
        #expect(try reader.scan().isEmpty)
        #expect(try reader.get([1, 2, 3]) == nil)
    }

    @Test func seekNeverReadsAValueAsEntries() throws {
        // Entry "a" whose 13-byte value holds two fake entries; restart [0, 4] points inside it.
        let bytes: [UInt8] = [0x00, 0x01, 0x0d, 0x61, 0x00, 0x01, 0x00, 0x7a, 0x00, 0x02, 0x04, 0x7a, 0x7a, 0x45, 0x56, 0x49, 0x4c,
                              0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]
        #expect(throws: DecodeError.self) { _ = try Block(bytes) }
    }

    @Test func prefixCompressionCannotDemandUnboundedMemory() throws {
        // A first key of 60 KiB, then entries each extending the previous key by one byte.
        var builder = ByteWriter()
        builder.writeVarint(0); builder.writeVarint(60_000); builder.writeVarint(0)
        builder.write(bytes: [UInt8](repeating: 0x41, count: 60_000))
        var length = 60_000
        for _ in 0..<20_000 {
            builder.writeVarint(UInt64(length)); builder.writeVarint(1); builder.writeVarint(0); builder.write(UInt8(0x42))
            length += 1
            if length >= Block.keyBytesLimit { break }
        }
        builder.write(UInt32(0)); builder.write(UInt32(1))
        #expect(throws: DecodeError.self) { _ = try Block(builder.bytes) }
    }

    @Test func aWriterStaysWithinTheDecodeBudgetForLongSharedKeys() throws {
        // Legitimate long keys that share almost everything must still read back.
        let prefix = [UInt8](repeating: 0x61, count: 20_000)
        let entries = (0..<80).map { i in (key: prefix + Array("\(100_000 + i)".utf8), value: [UInt8(i % 256)]) }
        let fs = MemoryFileSystem()
        _ = try writeSegment(entries, to: fs, path: "/long")
        let reader = try SegmentReader(handle: try fs.open("/long", options: .read))
        #expect(try reader.scan().map(\.key) == entries.map(\.key))
        #expect(try reader.get(entries[50].key) == entries[50].value)
        #expect(reader.properties.dataBlockCount >= 2)
    }

    @Test func valuesOverTheLimitAreRefusedTyped() throws {
        let fs = MemoryFileSystem()
        let writer = SegmentWriter(handle: try fs.open("/big", options: .createNew))
        #expect(throws: SegmentError.self) {
            try writer.add(key: [1], value: [UInt8](repeating: 0, count: SegmentWriter.valueBytesLimit + 1))
        }
    }
}

@Suite struct BlockDecoderRegressionTests {
    /// Found by FuzzBlockDecoder: an entry whose unshared length is near 2⁶⁴ overflowed while the
    /// error describing it was built. Both decoders must reject it with a typed error.
    @Test func hugeUnsharedLengthIsATypedError() {
        // entry: shared 0, unshared 2⁶⁴−1, value length 0; one restart at 0.
        var bytes: [UInt8] = [0x00] + [UInt8](repeating: 0xFF, count: 9) + [0x01] + [0x00]
        bytes += [0, 0, 0, 0] + [1, 0, 0, 0]
        for order in [KeyOrder.bytewise, .internalKey] {
            let block = Result { () throws(DecodeError) in try Block(bytes, order: order) }
            guard case let .failure(error) = block else { Issue.record("Block accepted it (\(order))"); continue }
            #expect(error.field == "block.entry.unshared")
            let decoded = Result { () throws(DecodeError) in try DecodedBlock.decode(bytes, baseOffset: 0, order: order) }
            guard case .failure = decoded else { Issue.record("DecodedBlock accepted it (\(order))"); continue }
        }
    }
}
