// The memtable: recent writes, ordered by internal key, in memory. A skip list whose nodes live
// in flat arrays — keys and values in one byte arena, node records in one array, links as 32-bit
// node numbers — so an insert allocates nothing but amortised array growth, and nodes are never
// moved or removed: a node number stays valid for the memtable's life, which is what iterators
// hold.
//
// Each node record carries the first 8 bytes of its user key as a big-endian integer, so most
// comparisons during a search are one integer comparison on the record already in cache, without
// touching the arena.
//
// One writer at a time (the engine's write lock) and any number of readers, under a
// readers–writer lock. Once switched out (immutable) it is only read.

import Basics
import StorageFormat

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class MemTable: @unchecked Sendable {
    static let heightMax = 12
    let lock = ReadWriteLock()

    struct Node {
        /// The first 8 bytes of the user key, big-endian, zero-padded.
        var prefix: UInt64
        var keyStart: Int
        var keyLength: Int32
        var valueLength: Int32
        /// Where this node's links start in `links`.
        var tower: Int32
    }

    // Node 0 is the head; its key is empty.
    private var arena: [UInt8] = []
    private var nodes: [Node] = [Node(prefix: 0, keyStart: 0, keyLength: 0, valueLength: 0, tower: 0)]
    private var links: [Int32] = Array(repeating: 0, count: MemTable.heightMax)  // 0 = end
    private var height = 1
    private var random: SeededRandom
    /// Scratch for `insert`: the node before the new one at each level.
    private var previous = [Int32](repeating: 0, count: MemTable.heightMax)
    /// The last node at each level (0, the head, for an empty level): a key above every key
    /// (sequential inserts) goes after these without a search.
    private var tails = [Int32](repeating: 0, count: MemTable.heightMax)

    /// Approximate memory held (what `memtableBytes` bounds).
    private(set) var bytes = 0
    private(set) var entryCount = 0
    /// Sequence range of the entries.
    private(set) var smallestSequence = UInt64.max
    private(set) var largestSequence: UInt64 = 0
    /// Highest write-ahead-log LSN whose batch is in this memtable.
    var lastLogLSN: UInt64 = 0
    /// Per stream, the highest caller applied index of the batches in this memtable.
    var appliedIndexes: [UInt64: UInt64] = [:]
    /// Number of the memtable (increasing), for logs and tests.
    let number: UInt64

    /// `capacity`: the bytes the memtable will hold before it is switched out. The arena is
    /// reserved up front (pages are only touched as it fills), so it never grows by copying.
    /// `arena`: an emptied arena to reuse (see `takeArena`).
    init(number: UInt64, capacity: Int = 1 << 16, arena reused: [UInt8]? = nil) {
        self.number = number
        random = SeededRandom(seed: number &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        if let reused { arena = reused }
        arena.reserveCapacity(capacity)
    }

    /// Empties the memtable's arena and hands it over, keeping its capacity (and its pages
    /// mapped). Only for a memtable nobody reads any more: it is empty afterwards.
    func takeArena() -> [UInt8] {
        lock.lockExclusive()
        defer { lock.unlock() }
        var taken: [UInt8] = []
        swap(&taken, &arena)
        taken.removeAll(keepingCapacity: true)
        nodes.removeSubrange(1...)
        links.removeSubrange(MemTable.heightMax...)
        for index in links.indices { links[index] = 0 }
        for index in tails.indices { tails[index] = 0 }
        height = 1
        bytes = 0
        entryCount = 0
        return taken
    }

    var isEmpty: Bool { entryCount == 0 }

    /// The first 8 bytes of an internal key's user part as a big-endian integer.
    @inline(__always)
    static func prefix(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        let userLength = key.count - 8
        if userLength >= 8 {
            return UInt64(bigEndian: UnsafeRawPointer(key.baseAddress!).loadUnaligned(as: UInt64.self))
        }
        var value: UInt64 = 0
        for index in 0..<8 { value = value << 8 | (index < userLength ? UInt64(key[index]) : 0) }
        return value
    }

    // MARK: Writing (engine write lock held)

    /// Inserts an entry (its internal key is unique).
    func insert(userKey: [UInt8], sequence: UInt64, kind: ValueKind, value: [UInt8]) {
        lock.lockExclusive()
        defer { lock.unlock() }
        // The key is built in place at the end of the arena and searched for from there.
        let keyStart = arena.count
        arena.append(contentsOf: userKey)
        InternalKey.appendTrailer(sequence: sequence, kindByte: kind.rawValue, to: &arena)
        let keyLength = arena.count - keyStart
        let prefix = arena.withUnsafeBufferPointer { base in
            let target = UnsafeBufferPointer(rebasing: base[keyStart..<(keyStart + keyLength)])
            let prefix = Self.prefix(target)
            nodes.withUnsafeBufferPointer { nodes in
                let tail = tails[0]
                if tail != 0 && compare(nodes[Int(tail)], target, prefix, base) < 0 {
                    for level in 0..<height { previous[level] = tails[level] }
                    return
                }
                var node: Int32 = 0
                var level = height - 1
                while level >= 0 {
                    let next = links[Int(nodes[Int(node)].tower) + level]
                    if next != 0 && compare(nodes[Int(next)], target, prefix, base) < 0 {
                        node = next
                    } else {
                        previous[level] = node
                        level -= 1
                    }
                }
            }
            return prefix
        }
        arena.append(contentsOf: value)
        var nodeHeight = 1
        while nodeHeight < Self.heightMax && random.next() & 3 == 0 { nodeHeight += 1 }
        if nodeHeight > height {
            for level in height..<nodeHeight { previous[level] = 0 }
            height = nodeHeight
        }
        let node = Int32(nodes.count)
        let tower = links.count
        nodes.append(Node(prefix: prefix, keyStart: keyStart, keyLength: Int32(keyLength), valueLength: Int32(value.count), tower: Int32(tower)))
        for level in 0..<nodeHeight {
            let before = Int(nodes[Int(previous[level])].tower) + level
            let next = links[before]
            links.append(next)
            links[before] = node
            if next == 0 { tails[level] = node }
        }
        bytes += keyLength + value.count + 40 + nodeHeight * 4
        entryCount += 1
        smallestSequence = min(smallestSequence, sequence)
        largestSequence = max(largestSequence, sequence)
    }

    // MARK: Reading (lock taken inside)

    /// Compares a node's key with `target` (internal-key order), by prefix first.
    @inline(__always)
    private func compare(_ node: Node, _ target: UnsafeBufferPointer<UInt8>, _ targetPrefix: UInt64, _ base: UnsafeBufferPointer<UInt8>) -> Int {
        if node.prefix != targetPrefix { return node.prefix < targetPrefix ? -1 : 1 }
        return compareInternalKeys(UnsafeBufferPointer(rebasing: base[node.keyStart..<(node.keyStart + Int(node.keyLength))]), target)
    }

    /// First node with key ≥ `target` (0 when none), or with `before`, the last node with key <
    /// `target` (0 when none). Caller holds the read lock.
    private func search(_ target: [UInt8], before: Bool) -> Int32 {
        arena.withUnsafeBufferPointer { base in
            nodes.withUnsafeBufferPointer { nodes in
                target.withUnsafeBufferPointer { target in
                    let prefix = Self.prefix(target)
                    var node: Int32 = 0
                    var level = height - 1
                    while level >= 0 {
                        let next = links[Int(nodes[Int(node)].tower) + level]
                        if next != 0 && compare(nodes[Int(next)], target, prefix, base) < 0 { node = next } else { level -= 1 }
                    }
                    return before ? node : links[Int(nodes[Int(node)].tower)]
                }
            }
        }
    }

    /// The last node (0 when empty). Caller holds the read lock.
    private func last() -> Int32 {
        var node: Int32 = 0
        var level = height - 1
        while level >= 0 {
            let next = links[Int(nodes[Int(node)].tower) + level]
            if next != 0 { node = next } else { level -= 1 }
        }
        return node
    }

    private func value(of node: Int32) -> [UInt8] {
        let record = nodes[Int(node)]
        let start = record.keyStart + Int(record.keyLength)
        return Array(arena[start..<(start + Int(record.valueLength))])
    }

    /// The newest version of `userKey` with sequence ≤ the seek key's: its kind and value.
    func get(userKey: [UInt8], seekKey: [UInt8]) -> (kind: ValueKind, value: [UInt8])? {
        lock.lockShared()
        defer { lock.unlock() }
        let node = search(seekKey, before: false)
        guard node != 0 else { return nil }
        let record = nodes[Int(node)]
        let start = record.keyStart
        let length = Int(record.keyLength)
        guard length == userKey.count + 8 else { return nil }
        let matches = arena.withUnsafeBufferPointer { base in
            userKey.withUnsafeBufferPointer { userKey.isEmpty || memcmp(base.baseAddress! + start, $0.baseAddress!, userKey.count) == 0 }
        }
        guard matches else { return nil }
        let kindByte = UInt8(truncatingIfNeeded: ~arena[start + length - 1])
        return (ValueKind(rawValue: kindByte) ?? .value, value(of: node))
    }

    func seek(_ target: [UInt8]) -> Int32 { lock.withReadLock { search(target, before: false) } }
    func seekBefore(_ target: [UInt8]?) -> Int32 {
        lock.withReadLock { target.map { search($0, before: true) } ?? last() }
    }
    func first() -> Int32 { lock.withReadLock { links[Int(nodes[0].tower)] } }

    /// Entries copied out of the memtable into one buffer the iterator owns (stable pointers
    /// until the next copy).
    struct Chunk {
        var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        var used = 0
        /// Per entry: key start, key length, value length (the value follows the key).
        var spans: [(start: Int, keyLength: Int, valueLength: Int)] = []
        var count: Int { spans.count }

        mutating func clear() {
            used = 0
            spans.removeAll(keepingCapacity: true)
        }

        mutating func append(_ bytes: UnsafeBufferPointer<UInt8>, keyLength: Int) {
            if used + bytes.count > storage.count {
                let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: max(4096, 2 * (used + bytes.count)), alignment: 8)
                if used > 0 { grown.baseAddress!.copyMemory(from: storage.baseAddress!, byteCount: used) }
                storage.deallocate()
                storage = grown
            }
            if !bytes.isEmpty { (storage.baseAddress! + used).copyMemory(from: UnsafeRawPointer(bytes.baseAddress!), byteCount: bytes.count) }
            spans.append((used, keyLength, bytes.count - keyLength))
            used += bytes.count
        }

        func key(_ index: Int) -> UnsafeBufferPointer<UInt8> {
            let span = spans[index]
            return UnsafeBufferPointer(start: storage.baseAddress!.assumingMemoryBound(to: UInt8.self) + span.start, count: span.keyLength)
        }

        func value(_ index: Int) -> UnsafeBufferPointer<UInt8> {
            let span = spans[index]
            return UnsafeBufferPointer(start: storage.baseAddress!.assumingMemoryBound(to: UInt8.self) + span.start + span.keyLength, count: span.valueLength)
        }

        func deallocate() { storage.deallocate() }
    }

    /// Copies up to `limit` entries from `node` on, in key order, under one lock, into `chunk`
    /// (replacing what it held); returns the node after the last one (0 at the end).
    func copyEntries(from node: Int32, limit: Int, into chunk: inout Chunk) -> Int32 {
        lock.withReadLock {
            chunk.clear()
            var current = node
            arena.withUnsafeBufferPointer { base in
                while current != 0 && chunk.count < limit {
                    let record = nodes[Int(current)]
                    let length = Int(record.keyLength) + Int(record.valueLength)
                    chunk.append(UnsafeBufferPointer(rebasing: base[record.keyStart..<(record.keyStart + length)]), keyLength: Int(record.keyLength))
                    current = links[Int(nodes[Int(current)].tower)]
                }
            }
            return current
        }
    }

}

/// Iterates a memtable in either direction over internal keys. Forward, it copies entries out
/// a chunk at a time (one lock and one buffer per chunk).
final class MemTableIterator: InternalIterator {
    let table: MemTable
    var chunk = MemTable.Chunk()
    var position = 0
    /// The node after the buffered chunk (forward), 0 at the end.
    var nextNode: Int32 = 0
    static let chunkEntries = 64

    init(_ table: MemTable) { self.table = table }

    deinit { chunk.deallocate() }

    var isValid: Bool { position < chunk.count }
    var keyBuffer: UnsafeBufferPointer<UInt8> { chunk.key(position) }
    var valueBuffer: UnsafeBufferPointer<UInt8> { chunk.value(position) }

    private func fill(from start: Int32) {
        nextNode = table.copyEntries(from: start, limit: Self.chunkEntries, into: &chunk)
        position = 0
    }

    private func loadBackward(_ node: Int32) {
        position = 0
        if node == 0 { chunk.clear() } else { _ = table.copyEntries(from: node, limit: 1, into: &chunk) }
        nextNode = 0
    }

    func seek(_ target: [UInt8]) throws(StorageError) { fill(from: table.seek(target)) }
    func seekToFirst() throws(StorageError) { fill(from: table.first()) }
    func seekBefore(_ target: [UInt8]) throws(StorageError) { loadBackward(table.seekBefore(target)) }
    func seekToLast() throws(StorageError) { loadBackward(table.seekBefore(nil)) }

    func next() throws(StorageError) {
        position += 1
        if position == chunk.count && nextNode != 0 { fill(from: nextNode) }
    }

    func previous() throws(StorageError) {
        loadBackward(table.seekBefore(Array(chunk.key(position))))
    }
}
