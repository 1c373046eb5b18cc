// Sorted key/value blocks with key prefix compression and restart points (data and index
// blocks share the format).
//
//   entry    = varint shared, varint unshared, varint value length, key[shared...], value
//   restarts = u32 offset × count, u32 count        (little-endian, at the end of the block)
//
// An entry at a restart point stores its whole key (shared = 0), so a reader can binary-search
// the restart points and then scan at most `restartInterval` entries.

import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct BlockBuilder: Sendable {
    public let restartInterval: Int
    var buffer: [UInt8] = []
    var restarts: [UInt32] = [0]
    var lastKey: [UInt8] = []
    var sinceRestart = 0
    public private(set) var entryCount = 0
    public let order: KeyOrder

    public init(restartInterval: Int = 16, order: KeyOrder = .bytewise) {
        precondition(restartInterval >= 1, "restartInterval must be positive")
        self.restartInterval = restartInterval
        self.order = order
    }

    public var isEmpty: Bool { entryCount == 0 }
    /// Size of the block if finished now.
    public var estimatedBytes: Int { buffer.count + restarts.count * 4 + 4 }
    public var lastAddedKey: [UInt8] { lastKey }

    /// Adds an entry; keys must be strictly increasing (in the builder's order).
    public mutating func add(key: [UInt8], value: ArraySlice<UInt8>) {
        key.withUnsafeBufferPointer { key in value.withUnsafeBufferPointer { add(key: key, value: $0) } }
    }

    /// Adds an entry from borrowed bytes (nothing is kept but copies).
    public mutating func add(key: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        var shared = 0
        lastKey.withUnsafeBufferPointer { last in
            precondition(entryCount == 0 || order.compare(last, key) < 0, "block keys must be strictly increasing")
            if sinceRestart != restartInterval {
                let limit = min(last.count, key.count)
                while shared < limit && last[shared] == key[shared] { shared += 1 }
            }
        }
        if sinceRestart == restartInterval {
            restarts.append(UInt32(buffer.count))
            sinceRestart = 0
        }
        appendVarint(UInt64(shared), to: &buffer)
        appendVarint(UInt64(key.count - shared), to: &buffer)
        appendVarint(UInt64(value.count), to: &buffer)
        buffer.append(contentsOf: UnsafeBufferPointer(rebasing: key[shared...]))
        buffer.append(contentsOf: value)
        lastKey.removeAll(keepingCapacity: true)
        lastKey.append(contentsOf: key)
        sinceRestart += 1
        entryCount += 1
    }


    public mutating func finish() -> [UInt8] {
        var out = buffer
        out.reserveCapacity(buffer.count + restarts.count * 4 + 4)
        for restart in restarts { withUnsafeBytes(of: restart.littleEndian) { out.append(contentsOf: $0) } }
        withUnsafeBytes(of: UInt32(restarts.count).littleEndian) { out.append(contentsOf: $0) }
        reset()
        return out
    }

    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        restarts = [0]
        lastKey = []
        sinceRestart = 0
        entryCount = 0
    }
}

/// Bytewise three-way comparison of two buffers (memcmp, then length).
@inlinable
public func compareBytes(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
    let common = min(a.count, b.count)
    if common > 0 {
        let result = memcmp(a.baseAddress!, b.baseAddress!, common)
        if result != 0 { return Int(result) }
    }
    return a.count - b.count
}

@inlinable
public func compareBytes(_ a: [UInt8], _ b: [UInt8]) -> Int {
    a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in compareBytes(a, b) } }
}

@inlinable
public func compareBytes(_ a: ArraySlice<UInt8>, _ b: [UInt8]) -> Int {
    a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in compareBytes(a, b) } }
}

@inlinable
public func compareBytes(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Int {
    a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in compareBytes(a, b) } }
}

@inlinable
public func compareBytes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Int {
    a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in compareBytes(a, b) } }
}

/// Bytewise three-way comparison: negative, zero or positive.
@inlinable
public func compareBytes<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Int {
    var i = a.startIndex, j = b.startIndex
    while i != a.endIndex && j != b.endIndex {
        let x = a[i], y = b[j]
        if x != y { return x < y ? -1 : 1 }
        a.formIndex(after: &i)
        b.formIndex(after: &j)
    }
    if i == a.endIndex { return j == b.endIndex ? 0 : -1 }
    return 1
}

/// A decoded (uncompressed, verified) block. Construction validates the whole block — the
/// restart array, every entry's lengths, strictly increasing keys, restart points on entry
/// boundaries, the decoded-key budget — so a `Block` value is always well-formed and hostile
/// bytes give `DecodeError`, never a trap or a value read as entries.
public struct Block: Sendable {
    /// Longest key a block may hold.
    public static let keyBytesLimit = 64 << 10

    /// Prefix compression lets a few stored bytes stand for a long key; decoding a block may
    /// produce at most this many key bytes, so hostile blocks cannot demand unbounded memory or
    /// time. Writers cut blocks early to stay within it (`SegmentWriter`).
    public static func decodedKeyBytesLimit(blockBytes: Int) -> Int { 32 * blockBytes + 2 * keyBytesLimit }

    public let bytes: [UInt8]
    let restarts: [Int]
    /// Entries end here (the restart array starts).
    let entriesEnd: Int
    /// Absolute file offset of `bytes[0]`, for error messages.
    public let baseOffset: UInt64
    /// The order keys must follow.
    public let order: KeyOrder

    public init(_ bytes: [UInt8], baseOffset: UInt64 = 0, order: KeyOrder = .bytewise) throws(DecodeError) {
        self.bytes = bytes
        self.baseOffset = baseOffset
        self.order = order
        guard bytes.count >= 4 else {
            throw DecodeError(field: "block.restart count", offset: baseOffset, reason: .truncated(needed: 4, available: bytes.count))
        }
        let count = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self))) }
        guard count >= 1 else {
            throw DecodeError(field: "block.restart count", offset: baseOffset + UInt64(bytes.count - 4), reason: .invalidValue(0))
        }
        guard count <= (bytes.count - 4) / 4 else {
            throw DecodeError(field: "block.restart count", offset: baseOffset + UInt64(bytes.count - 4),
                              reason: .tooLarge(value: UInt64(count), limit: UInt64((bytes.count - 4) / 4)))
        }
        entriesEnd = bytes.count - 4 - count * 4
        var restarts: [Int] = []
        restarts.reserveCapacity(count)
        var previous = -1
        for i in 0..<count {
            let at = entriesEnd + i * 4
            let restart = bytes.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
            guard restart > previous, restart <= entriesEnd, (i > 0 || restart == 0) else {
                throw DecodeError(field: "block.restart", offset: baseOffset + UInt64(at), reason: .invalid("restart \(restart) out of order or past the entries"))
            }
            previous = restart
            restarts.append(restart)
        }
        self.restarts = restarts
        try validate()
    }

    /// Walks every entry once, keeping only the previous key.
    func validate() throws(DecodeError) {
        if entriesEnd == 0 { return }
        var offset = 0
        var previous: [UInt8] = []
        var restartIndex = 0
        var budget = Block.decodedKeyBytesLimit(blockBytes: bytes.count)
        var count = 0
        while offset < entriesEnd {
            let isRestart = restartIndex < restarts.count && restarts[restartIndex] == offset
            if isRestart { restartIndex += 1 }
            let (entry, next) = try entry(at: offset, previousKey: isRestart ? [] : previous)
            budget -= entry.key.count
            if budget < 0 {
                throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(offset), reason: .invalid("decoded keys exceed the block's budget"))
            }
            guard order.allowsKeyLength(entry.key.count) else {
                throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(offset), reason: .invalid("key of \(entry.key.count) bytes is too short for its key order"))
            }
            if count > 0 && order.compare(previous, entry.key) >= 0 {
                throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(offset), reason: .invalid("keys not strictly increasing"))
            }
            previous = entry.key
            offset = next
            count += 1
        }
        if restartIndex != restarts.count {
            throw DecodeError(field: "block.restart", offset: baseOffset + UInt64(entriesEnd), reason: .invalid("a restart point is not at an entry boundary"))
        }
    }

    public struct Entry: Equatable, Sendable {
        public var key: [UInt8]
        public var value: ArraySlice<UInt8>
    }

    /// Decodes the entry at `offset` given the previous entry's key; returns it and the next offset.
    func entry(at offset: Int, previousKey: [UInt8]) throws(DecodeError) -> (Entry, Int) {
        var reader = ByteReader(bytes, range: offset..<entriesEnd, baseOffset: baseOffset)
        let shared = try reader.readVarint("block.entry.shared")
        let unshared = try reader.readVarint("block.entry.unshared")
        let valueLength = try reader.readVarint("block.entry.value length")
        guard shared <= UInt64(previousKey.count) else {
            throw DecodeError(field: "block.entry.shared", offset: baseOffset + UInt64(offset),
                              reason: .tooLarge(value: shared, limit: UInt64(previousKey.count)))
        }
        guard unshared <= UInt64(Block.keyBytesLimit) - shared else {
            throw DecodeError(field: "block.entry.unshared", offset: baseOffset + UInt64(offset),
                              reason: .tooLarge(value: unshared > UInt64.max - shared ? UInt64.max : shared + unshared, limit: UInt64(Block.keyBytesLimit)))
        }
        guard unshared <= UInt64(reader.remaining), valueLength <= UInt64(reader.remaining) - unshared else {
            throw reader.error("block.entry", .truncated(needed: Int(clamping: unshared &+ valueLength), available: reader.remaining))
        }
        let suffix = try reader.readBytes(Int(unshared), "block.entry.key")
        let value = try reader.readBytes(Int(valueLength), "block.entry.value")
        var key = Array(previousKey[..<Int(shared)])
        key.append(contentsOf: suffix)
        return (Entry(key: key, value: value), reader.position)
    }

    /// Every entry in order (validating that keys strictly increase).
    public func entries() throws(DecodeError) -> [Entry] {
        var out: [Entry] = []
        var offset = 0
        var previous: [UInt8] = []
        var restartIndex = 0
        var budget = Block.decodedKeyBytesLimit(blockBytes: bytes.count)
        if entriesEnd == 0 { return [] }  // an empty block: one restart at 0, no entries
        while offset < entriesEnd {
            let isRestart = restartIndex < restarts.count && restarts[restartIndex] == offset
            if isRestart { restartIndex += 1 }
            let (entry, next) = try self.entry(at: offset, previousKey: isRestart ? [] : previous)
            budget -= entry.key.count
            if budget < 0 {
                throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(offset),
                                  reason: .tooLarge(value: UInt64(Block.decodedKeyBytesLimit(blockBytes: bytes.count)), limit: UInt64(Block.decodedKeyBytesLimit(blockBytes: bytes.count))))
            }
            if !out.isEmpty && order.compare(previous, entry.key) >= 0 {
                throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(offset), reason: .invalid("keys not strictly increasing"))
            }
            out.append(entry)
            previous = entry.key
            offset = next
        }
        if restartIndex != restarts.count {
            throw DecodeError(field: "block.restart", offset: baseOffset + UInt64(entriesEnd), reason: .invalid("a restart point is not at an entry boundary"))
        }
        return out
    }

    /// The first entry with key ≥ `target`, or nil. Binary search over restart points, then a
    /// scan that checks what it crosses: keys strictly increase, and each restart interval ends
    /// exactly where the next restart point says (so a value cannot be read as entries).
    public func seek(_ target: [UInt8]) throws(DecodeError) -> Entry? {
        if entriesEnd == 0 { return nil }
        var low = 0, high = restarts.count - 1
        // Find the last restart whose key is < target.
        while low < high {
            let mid = (low + high + 1) / 2
            let (entry, _) = try entry(at: restarts[mid], previousKey: [])
            if order.compare(entry.key, target) < 0 { low = mid } else { high = mid - 1 }
        }
        var budget = Block.decodedKeyBytesLimit(blockBytes: bytes.count)
        var interval = low
        var previous: [UInt8]?
        while interval < restarts.count {
            var offset = restarts[interval]
            let end = interval + 1 < restarts.count ? restarts[interval + 1] : entriesEnd
            var first = true
            while offset < end {
                let (entry, next) = try entry(at: offset, previousKey: first ? [] : (previous ?? []))
                budget -= entry.key.count
                guard budget >= 0 else {
                    throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(offset), reason: .invalid("decoded keys exceed the block's budget"))
                }
                if let previous, order.compare(previous, entry.key) >= 0 {
                    throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(offset), reason: .invalid("keys not strictly increasing"))
                }
                if order.compare(entry.key, target) >= 0 { return entry }
                previous = entry.key
                offset = next
                first = false
            }
            guard offset == end else {
                throw DecodeError(field: "block.restart", offset: baseOffset + UInt64(end), reason: .invalid("a restart point is not at an entry boundary"))
            }
            interval += 1
        }
        return nil
    }
}
