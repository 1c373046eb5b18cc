// The memtable: recent writes, ordered by internal key, in memory. A skip list whose nodes live
// in flat arrays (keys and values in one byte arena, links as 32-bit node numbers), so an insert
// allocates nothing but amortised array growth, and nodes are never moved or removed: a node
// number stays valid for the memtable's life, which is what iterators hold.
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

    // Node 0 is the head; its key is empty.
    private var arena: [UInt8] = []
    private var keyStarts: [Int] = [0]
    private var keyLengths: [Int32] = [0]
    private var valueLengths: [Int32] = [0]
    private var towers: [Int32] = [0]
    private var links: [Int32] = Array(repeating: 0, count: MemTable.heightMax)  // 0 = end
    private var height = 1
    private var random: SeededRandom
    /// Scratch for `insert`: the node before the new one at each level.
    private var previous = [Int32](repeating: 0, count: MemTable.heightMax)

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

    init(number: UInt64) {
        self.number = number
        random = SeededRandom(seed: number &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        arena.reserveCapacity(1 << 16)
    }

    var isEmpty: Bool { entryCount == 0 }

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
        arena.withUnsafeBufferPointer { base in
            let target = UnsafeBufferPointer(rebasing: base[keyStart..<(keyStart + keyLength)])
            var node: Int32 = 0
            var level = height - 1
            while level >= 0 {
                let next = links[Int(towers[Int(node)]) + level]
                if next != 0 && compareNode(next, target, base) < 0 {
                    node = next
                } else {
                    previous[level] = node
                    level -= 1
                }
            }
        }
        arena.append(contentsOf: value)
        var nodeHeight = 1
        while nodeHeight < Self.heightMax && random.next() & 3 == 0 { nodeHeight += 1 }
        if nodeHeight > height {
            for level in height..<nodeHeight { previous[level] = 0 }
            height = nodeHeight
        }
        let node = Int32(keyStarts.count)
        keyStarts.append(keyStart)
        keyLengths.append(Int32(keyLength))
        valueLengths.append(Int32(value.count))
        let tower = links.count
        towers.append(Int32(tower))
        for level in 0..<nodeHeight {
            let before = Int(towers[Int(previous[level])]) + level
            links.append(links[before])
            links[before] = node
        }
        bytes += keyLength + value.count + 40 + nodeHeight * 4
        entryCount += 1
        smallestSequence = min(smallestSequence, sequence)
        largestSequence = max(largestSequence, sequence)
    }

    // MARK: Reading (lock taken inside)

    @inline(__always)
    private func compareNode(_ node: Int32, _ target: UnsafeBufferPointer<UInt8>, _ base: UnsafeBufferPointer<UInt8>) -> Int {
        let start = keyStarts[Int(node)]
        let length = Int(keyLengths[Int(node)])
        return compareInternalKeys(UnsafeBufferPointer(rebasing: base[start..<(start + length)]), target)
    }

    /// First node with key ≥ `target` (0 when none). Caller holds the read lock.
    private func lowerBound(_ target: [UInt8]) -> Int32 {
        arena.withUnsafeBufferPointer { base in
            target.withUnsafeBufferPointer { target in
                var node: Int32 = 0
                var level = height - 1
                while level >= 0 {
                    let next = links[Int(towers[Int(node)]) + level]
                    if next != 0 && compareNode(next, target, base) < 0 { node = next } else { level -= 1 }
                }
                return links[Int(towers[Int(node)])]
            }
        }
    }

    /// Last node with key < `target` (0 when none). Caller holds the read lock.
    private func lastBefore(_ target: [UInt8]?) -> Int32 {
        guard let target else {
            var node: Int32 = 0
            var level = height - 1
            while level >= 0 {
                let next = links[Int(towers[Int(node)]) + level]
                if next != 0 { node = next } else { level -= 1 }
            }
            return node
        }
        return arena.withUnsafeBufferPointer { base in
            target.withUnsafeBufferPointer { target in
                var node: Int32 = 0
                var level = height - 1
                while level >= 0 {
                    let next = links[Int(towers[Int(node)]) + level]
                    if next != 0 && compareNode(next, target, base) < 0 { node = next } else { level -= 1 }
                }
                return node
            }
        }
    }

    private func key(of node: Int32) -> [UInt8] {
        let start = keyStarts[Int(node)]
        return Array(arena[start..<(start + Int(keyLengths[Int(node)]))])
    }

    private func value(of node: Int32) -> [UInt8] {
        let start = keyStarts[Int(node)] + Int(keyLengths[Int(node)])
        return Array(arena[start..<(start + Int(valueLengths[Int(node)]))])
    }

    /// The newest version of `userKey` with sequence ≤ `sequence`: its kind and value.
    func get(userKey: [UInt8], seekKey: [UInt8]) -> (kind: ValueKind, value: [UInt8])? {
        lock.lockShared()
        defer { lock.unlock() }
        let node = lowerBound(seekKey)
        guard node != 0 else { return nil }
        let start = keyStarts[Int(node)]
        let length = Int(keyLengths[Int(node)])
        guard length == userKey.count + 8 else { return nil }
        let matches = arena.withUnsafeBufferPointer { base in
            userKey.withUnsafeBufferPointer { userKey.isEmpty || memcmp(base.baseAddress! + start, $0.baseAddress!, userKey.count) == 0 }
        }
        guard matches else { return nil }
        let kindByte = UInt8(truncatingIfNeeded: ~arena[start + length - 1])
        return (ValueKind(rawValue: kindByte) ?? .value, value(of: node))
    }

    /// Node number after `node` in key order (0 at the end).
    func successor(_ node: Int32) -> Int32 {
        lock.withReadLock { links[Int(towers[Int(node)])] }
    }

    func entry(_ node: Int32) -> (key: [UInt8], value: [UInt8]) {
        lock.withReadLock { (key(of: node), value(of: node)) }
    }

    func seek(_ target: [UInt8]) -> Int32 { lock.withReadLock { lowerBound(target) } }
    func seekBefore(_ target: [UInt8]?) -> Int32 { lock.withReadLock { lastBefore(target) } }
    func first() -> Int32 { successor(0) }

    /// Every entry in order (for flush: the memtable is immutable by then).
    func forEach(_ body: (_ key: [UInt8], _ value: [UInt8]) throws(StorageError) -> Void) throws(StorageError) {
        var node = first()
        while node != 0 {
            let (key, value) = entry(node)
            try body(key, value)
            node = successor(node)
        }
    }
}

/// Iterates a memtable in either direction over internal keys.
final class MemTableIterator: InternalIterator {
    let table: MemTable
    var node: Int32 = 0
    var current: (key: [UInt8], value: [UInt8]) = ([], [])

    init(_ table: MemTable) { self.table = table }

    var isValid: Bool { node != 0 }
    var key: [UInt8] { current.key }
    var value: ArraySlice<UInt8> { current.value[...] }

    private func load() { if node != 0 { current = table.entry(node) } }

    func seek(_ target: [UInt8]) throws(StorageError) { node = table.seek(target); load() }
    func seekBefore(_ target: [UInt8]) throws(StorageError) { node = table.seekBefore(target); load() }
    func seekToFirst() throws(StorageError) { node = table.first(); load() }
    func seekToLast() throws(StorageError) { node = table.seekBefore(nil); load() }
    func next() throws(StorageError) { node = table.successor(node); load() }
    func previous() throws(StorageError) { node = table.seekBefore(current.key); load() }
}
