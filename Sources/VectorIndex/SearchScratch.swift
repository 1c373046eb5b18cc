// Per-search scratch memory: an epoch-tagged visited array and two binary heaps, reused from a
// pool so that a search allocates nothing (hnswlib's `VisitedListPool`).

import Basics

/// A node and its distance to the query.
public struct Neighbor: Sendable, Equatable {
    public var distance: Float
    public var id: UInt32

    @inlinable public init(distance: Float, id: UInt32) {
        self.distance = distance
        self.id = id
    }
}

/// A binary heap of `Neighbor`s over storage owned by a `SearchScratch`. `isMax` picks the order:
/// a max-heap keeps the worst result on top, a min-heap the best candidate.
struct NeighborHeap {
    var storage: UnsafeMutablePointer<Neighbor>
    var capacity: Int
    var count = 0
    let isMax: Bool

    init(isMax: Bool, capacity: Int = 256) {
        self.isMax = isMax
        self.capacity = capacity
        storage = .allocate(capacity: capacity)
    }

    func deallocate() { storage.deallocate() }

    @inline(__always) var isEmpty: Bool { count == 0 }
    @inline(__always) var top: Neighbor { storage[0] }

    @inline(__always)
    func before(_ a: Neighbor, _ b: Neighbor) -> Bool { isMax ? a.distance > b.distance : a.distance < b.distance }

    mutating func removeAll() { count = 0 }

    mutating func push(_ element: Neighbor) {
        if count == capacity {
            let grown = UnsafeMutablePointer<Neighbor>.allocate(capacity: capacity * 2)
            grown.moveInitialize(from: storage, count: count)
            storage.deallocate()
            storage = grown
            capacity *= 2
        }
        var index = count
        count += 1
        while index > 0 {
            let parent = (index - 1) / 2
            guard before(element, storage[parent]) else { break }
            storage[index] = storage[parent]
            index = parent
        }
        storage[index] = element
    }

    @discardableResult
    mutating func pop() -> Neighbor {
        let result = storage[0]
        count -= 1
        if count > 0 {
            let last = storage[count]
            var index = 0
            while true {
                let left = 2 * index + 1
                if left >= count { break }
                let right = left + 1
                let child = right < count && before(storage[right], storage[left]) ? right : left
                guard before(storage[child], last) else { break }
                storage[index] = storage[child]
                index = child
            }
            storage[index] = last
        }
        return result
    }

    /// The elements, best first (consumes the heap of a max-heap: worst pops first).
    mutating func drainSortedAscending() -> [Neighbor] {
        var result = [Neighbor](repeating: Neighbor(distance: 0, id: 0), count: count)
        if isMax {
            var index = count - 1
            while count > 0 { result[index] = pop(); index -= 1 }
        } else {
            var index = 0
            while count > 0 { result[index] = pop(); index += 1 }
        }
        return result
    }
}

/// Scratch for one search at a time.
final class SearchScratch {
    /// `tags[node] == epoch` means visited in the current search.
    var tags: UnsafeMutablePointer<UInt16>
    var tagCapacity: Int
    var epoch: UInt16 = 0
    var candidates = NeighborHeap(isMax: false)
    var results = NeighborHeap(isMax: true)
    /// The unvisited neighbours of the node being expanded.
    var batch: UnsafeMutablePointer<UInt32>
    let linksCapacity: Int
    /// The query's code record (Quantization.swift).
    private var queryCode: UnsafeMutableRawPointer?
    private var queryCodeBytes = 0

    init(nodes: Int, linksCapacity: Int) {
        tagCapacity = max(nodes, 1)
        tags = .allocate(capacity: tagCapacity)
        tags.initialize(repeating: 0, count: tagCapacity)
        self.linksCapacity = linksCapacity
        batch = .allocate(capacity: linksCapacity)
    }

    deinit {
        tags.deallocate()
        batch.deallocate()
        queryCode?.deallocate()
        candidates.deallocate()
        results.deallocate()
    }

    /// Room for the query's code record of `bytes` bytes.
    func code(bytes: Int) -> UnsafeMutableRawPointer {
        if let queryCode, queryCodeBytes >= bytes { return queryCode }
        queryCode?.deallocate()
        let grown = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        queryCode = grown
        queryCodeBytes = bytes
        return grown
    }

    /// Starts a search over `nodes` node slots: a fresh epoch (the tags are cleared when it wraps).
    func begin(nodes: Int) {
        if nodes > tagCapacity {
            tags.deallocate()
            tagCapacity = max(nodes, tagCapacity * 2)
            tags = .allocate(capacity: tagCapacity)
            tags.initialize(repeating: 0, count: tagCapacity)
            epoch = 0
        }
        epoch &+= 1
        if epoch == 0 {
            tags.update(repeating: 0, count: tagCapacity)
            epoch = 1
        }
        candidates.removeAll()
        results.removeAll()
    }
}

/// A pool of scratch objects, one per concurrent search.
final class ScratchPool: @unchecked Sendable {
    private let lock = ConditionLock()
    private var free: [SearchScratch] = []
    let linksCapacity: Int

    init(linksCapacity: Int) {
        self.linksCapacity = linksCapacity
    }

    func take(nodes: Int) -> SearchScratch {
        if let scratch = lock.withLock({ free.popLast() }) {
            scratch.begin(nodes: nodes)
            return scratch
        }
        let scratch = SearchScratch(nodes: nodes, linksCapacity: linksCapacity)
        scratch.begin(nodes: nodes)
        return scratch
    }

    func give(_ scratch: SearchScratch) {
        lock.withLock { if free.count < 64 { free.append(scratch) } }
    }
}
