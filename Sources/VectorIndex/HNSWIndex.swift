// The HNSW graph (Malkov & Yashunin), laid out as hnswlib lays it out.
//
// Memory: one level-0 arena with a fixed stride per node — the vector's int8 code record
// (Quantization.swift), then the neighbour count and up to `m0 = 2·m` neighbour ids — so that
// expanding a node touches one contiguous block, a third of the bytes a float vector would
// take. The float vectors live in their own dense array, read only to re-score a search's
// final candidates, for exact search and for checkpoints. Nodes have dense `UInt32` internal ids; the map to the user's `UInt64` ids lives at the
// edge (`externalIDs`, `idMap`). Upper levels live in one side pool: a node of level L owns L
// blocks of `1 + m` `UInt32`s (count, neighbours), found through `upperOffsets`. Per-node
// levels, flags and external ids are flat arrays. No per-node heap object anywhere.
//
// Concurrency: `structureLock` is taken shared by every insert, delete and search, and
// exclusive only to grow the arrays or consolidate. `mutationGate` is taken shared by every
// change and exclusive by a checkpoint, which reads under a shared `structureLock`: searches
// run during a checkpoint, changes wait for it. Writes to a
// node's neighbour lists (all levels) are serialised by one of `linkLocks`' stripes. Walks —
// searches, and the searches inside inserts — read lists without it (hnswlib locks in the
// insert's walk; dropping that made 2-thread builds about 3 % faster at the same recall): a
// list is a count and ids written as aligned 4-byte stores, every id ever written is a node
// slot, and the count is clamped, so a walk racing a write sees old or new neighbours, maybe a
// stale one past the count, never an id outside the arrays.
// `metaLock` guards the id map, the free slots, the node count and the entry point.
//
// Determinism: a node's level is drawn from a generator seeded by (index seed, insertion
// number), and a single-threaded build of the same inputs gives the same graph, byte for byte.

import Basics
import CVectorSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public struct HNSWConfiguration: Sendable, Equatable {
    public var dimension: Int
    public var metric: Metric
    /// Neighbours per node on the upper levels; level 0 keeps up to `2·m`.
    public var m: Int = 16
    /// Candidate list size while inserting.
    public var efConstruct: Int = 100
    /// Default candidate list size for searches (at least `k` is used).
    public var ef: Int = 100
    /// Seed of the level generator.
    public var seed: UInt64 = 0x5EED
    /// Tombstones, as a share of all nodes, above which a delete runs `consolidate()`.
    public var consolidationThreshold: Double = 0.1

    public init(dimension: Int, metric: Metric, m: Int = 16, efConstruct: Int = 100, ef: Int = 100, seed: UInt64 = 0x5EED) {
        self.dimension = dimension
        self.metric = metric
        self.m = m
        self.efConstruct = efConstruct
        self.ef = ef
        self.seed = seed
    }

    public static let dimensionMax = 65_536
    public static let mMax = 128

    public func validate() throws(VectorIndexError) {
        guard (1...Self.dimensionMax).contains(dimension) else {
            throw .invalidArgument("dimension \(dimension) is outside 1...\(Self.dimensionMax)")
        }
        guard (2...Self.mMax).contains(m) else { throw .invalidArgument("m \(m) is outside 2...\(Self.mMax)") }
        guard (1...65_536).contains(efConstruct) else { throw .invalidArgument("ef_construct \(efConstruct) is outside 1...65536") }
        guard (1...65_536).contains(ef) else { throw .invalidArgument("ef \(ef) is outside 1...65536") }
        guard consolidationThreshold > 0 && consolidationThreshold <= 1 else {
            throw .invalidArgument("consolidation threshold \(consolidationThreshold) is outside (0, 1]")
        }
    }
}

public enum VectorIndexError: Error, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case dimensionMismatch(expected: Int, actual: Int)
    case notFound(UInt64)
    /// The index would exceed `HNSWIndex.nodesMax` nodes.
    case full

    public var description: String {
        switch self {
        case let .invalidArgument(text): "invalid argument: \(text)"
        case let .dimensionMismatch(expected, actual): "vector has \(actual) dimensions, the index has \(expected)"
        case let .notFound(id): "point \(id) is not in the index"
        case .full: "the index holds \(HNSWIndex.nodesMax) nodes, its limit"
        }
    }
}

/// One search hit.
public struct SearchHit: Sendable, Equatable {
    public var id: UInt64
    /// What the user sees (`Metric.score`).
    public var score: Float
    /// The internal distance (smaller is closer).
    public var distance: Float
    public var internalID: UInt32
}

public final class HNSWIndex: @unchecked Sendable {
    public let configuration: HNSWConfiguration
    public var dimension: Int { configuration.dimension }
    public var metric: Metric { configuration.metric }
    let m: Int
    let m0: Int
    let levelScale: Double

    // Level-0 arena layout (per node, `nodeStride` bytes): the code record (`codeBytes`), then
    // at `linksOffset` a UInt32 count and `m0` UInt32 neighbour ids.
    let vectorBytes: Int
    let codeBytes: Int
    let linksOffset: Int
    let nodeStride: Int
    var arena: UnsafeMutableRawPointer
    /// Float vectors, `vectorBytes` per node.
    var vectors: UnsafeMutableRawPointer
    var capacity: Int

    /// Per node: level, flags, upper-block offset (in UInt32s, valid when level > 0), user id.
    var levels: UnsafeMutablePointer<UInt8>
    var flags: UnsafeMutablePointer<UInt8>
    var upperOffsets: UnsafeMutablePointer<UInt32>
    var externalIDs: UnsafeMutablePointer<UInt64>
    /// Upper-level blocks: `1 + m` UInt32s per block.
    var upperPool: UnsafeMutablePointer<UInt32>
    var upperCapacity: Int
    var upperUsed = 0

    // Under `metaLock`.
    var nodeCount = 0
    var idMap: [UInt64: UInt32] = [:]
    var freeSlots: [UInt32] = []
    var entryPoint: UInt32 = 0
    var maxLevel = -1
    var tombstones = 0
    var insertions: UInt64 = 0

    static let deletedFlag: UInt8 = 1
    static let freeFlag: UInt8 = 2
    /// Being inserted: walked through, never returned, until `insert` publishes it.
    static let pendingFlag: UInt8 = 4
    public static let nodesMax = Int(UInt32.max) - 1
    static let levelMax = 32

    let structureLock = ReadWriteLock()
    let metaLock = ConditionLock()
    /// Taken shared by every change (insert, delete, growth, consolidation) and exclusive by a
    /// checkpoint, which then reads the index under a shared `structureLock`: searches go on
    /// while a checkpoint is written, changes wait. Always taken before `structureLock`.
    let mutationGate = ReadWriteLock()
    let linkLocks = StripedLocks(count: 4096)
    let scratchPool: ScratchPool

    public init(configuration: HNSWConfiguration, capacity: Int = 1024) throws(VectorIndexError) {
        try configuration.validate()
        self.configuration = configuration
        m = configuration.m
        m0 = 2 * configuration.m
        levelScale = 1 / log(Double(configuration.m))
        vectorBytes = configuration.dimension * 4
        codeBytes = Quantizer.recordBytes(dimension: configuration.dimension)
        linksOffset = codeBytes
        nodeStride = (linksOffset + 4 + 4 * m0 + 63) & ~63
        self.capacity = max(capacity, 16)
        arena = LargeBuffer.allocate(bytes: self.capacity * nodeStride)
        vectors = LargeBuffer.allocate(bytes: self.capacity * vectorBytes)
        levels = .allocate(capacity: self.capacity)
        flags = .allocate(capacity: self.capacity)
        upperOffsets = .allocate(capacity: self.capacity)
        externalIDs = .allocate(capacity: self.capacity)
        upperCapacity = max(64, self.capacity / max(1, configuration.m - 1) * 2) * (1 + configuration.m)
        upperPool = .allocate(capacity: upperCapacity)
        scratchPool = ScratchPool(linksCapacity: max(2 * configuration.m, 1) + 1)
    }

    deinit {
        LargeBuffer.deallocate(arena, bytes: capacity * nodeStride)
        LargeBuffer.deallocate(vectors, bytes: capacity * vectorBytes)
        levels.deallocate()
        flags.deallocate()
        upperOffsets.deallocate()
        externalIDs.deallocate()
        upperPool.deallocate()
    }

    // MARK: Layout accessors

    @inline(__always) func vector(_ node: UInt32) -> UnsafeMutablePointer<Float> {
        (vectors + Int(node) * vectorBytes).assumingMemoryBound(to: Float.self)
    }

    /// `node`'s code record (Quantization.swift).
    @inline(__always) func code(_ node: UInt32) -> UnsafeMutableRawPointer {
        arena + Int(node) * nodeStride
    }

    /// Encodes `node`'s float vector into its code record.
    func encode(_ node: UInt32) {
        Quantizer.encode(vector(node), dimension: dimension, into: code(node))
    }

    /// The neighbour list of `node` at `level`: count first, then ids.
    @inline(__always) func linkList(_ node: UInt32, level: Int) -> UnsafeMutablePointer<UInt32> {
        if level == 0 { return (arena + Int(node) * nodeStride + linksOffset).assumingMemoryBound(to: UInt32.self) }
        return upperPool + Int(upperOffsets[Int(node)]) + (level - 1) * (1 + m)
    }

    @inline(__always) func capacity(ofLevel level: Int) -> Int { level == 0 ? m0 : m }

    // MARK: Public state

    /// Live points (inserted and not deleted).
    public var count: Int { metaLock.withLock { idMap.count } }
    /// Node slots in use, live or tombstoned (not free).
    public var nodeSlots: Int { metaLock.withLock { nodeCount - freeSlots.count } }
    public var tombstoneCount: Int { metaLock.withLock { tombstones } }

    /// Bytes the index has allocated for its nodes: the level-0 arena, the float vectors, the
    /// per-node arrays and the upper-level pool (capacity, not use; the id map is not counted).
    public var allocatedBytes: Int {
        structureLock.lockShared()
        defer { structureLock.unlock() }
        let perNode = nodeStride + vectorBytes + MemoryLayout<UInt8>.size * 2 + MemoryLayout<UInt32>.size + MemoryLayout<UInt64>.size
        return capacity * perNode + upperCapacity * MemoryLayout<UInt32>.size
    }

    public func contains(_ id: UInt64) -> Bool { metaLock.withLock { idMap[id] != nil } }

    public func internalID(of id: UInt64) -> UInt32? { metaLock.withLock { idMap[id] } }

    /// The user id of a live node (for filters written against user ids).
    public func externalID(of node: UInt32) -> UInt64 { externalIDs[Int(node)] }

    /// A copy of the stored vector of `id` (normalised, for Cosine).
    public func vector(of id: UInt64) -> [Float]? {
        structureLock.lockShared()
        defer { structureLock.unlock() }
        guard let node = internalID(of: id) else { return nil }
        return Array(UnsafeBufferPointer(start: vector(node), count: dimension))
    }

    // MARK: Growth

    /// Makes room for `nodes` nodes without growing during inserts (call before a bulk build).
    public func reserve(_ nodes: Int) {
        mutationGate.lockShared()
        defer { mutationGate.unlock() }
        structureLock.lockExclusive()
        defer { structureLock.unlock() }
        growLocked(nodes: nodes, upper: nodes / max(1, m - 1) * 2 * (1 + m) + 64 * (1 + m))
    }

    /// Grows the arrays (exclusive `structureLock` held).
    func growLocked(nodes: Int, upper: Int) {
        if nodes > capacity {
            let newCapacity = max(nodes, capacity + capacity / 2)
            let newArena = LargeBuffer.allocate(bytes: newCapacity * nodeStride)
            newArena.copyMemory(from: arena, byteCount: capacity * nodeStride)
            LargeBuffer.deallocate(arena, bytes: capacity * nodeStride)
            arena = newArena
            let newVectors = LargeBuffer.allocate(bytes: newCapacity * vectorBytes)
            newVectors.copyMemory(from: vectors, byteCount: capacity * vectorBytes)
            LargeBuffer.deallocate(vectors, bytes: capacity * vectorBytes)
            vectors = newVectors
            func grow<T>(_ pointer: inout UnsafeMutablePointer<T>) {
                let grown = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
                grown.moveInitialize(from: pointer, count: capacity)
                pointer.deallocate()
                pointer = grown
            }
            grow(&levels)
            grow(&flags)
            grow(&upperOffsets)
            grow(&externalIDs)
            capacity = newCapacity
        }
        if upper > upperCapacity {
            let newCapacity = max(upper, upperCapacity * 2)
            let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: newCapacity)
            grown.moveInitialize(from: upperPool, count: upperUsed)
            upperPool.deallocate()
            upperPool = grown
            upperCapacity = newCapacity
        }
    }

    // MARK: Insert

    /// Checks a vector and returns it as stored (normalised for Cosine).
    func prepare(_ vector: [Float]) throws(VectorIndexError) -> [Float] {
        guard vector.count == dimension else { throw .dimensionMismatch(expected: dimension, actual: vector.count) }
        for value in vector where !value.isFinite {
            throw .invalidArgument("vector holds a non-finite value (\(value))")
        }
        guard metric == .cosine else { return vector }
        var normalised = vector
        let norm = vector.withUnsafeBufferPointer { Kernels.squaredNorm($0.baseAddress!, count: dimension) }.squareRoot()
        guard norm > 0, norm.isFinite else { throw .invalidArgument("a zero vector has no direction (Cosine)") }
        for index in normalised.indices { normalised[index] /= norm }
        return normalised
    }

    /// The level of the `number`-th insertion.
    func randomLevel(_ number: UInt64) -> Int {
        var random = SeededRandom(seed: configuration.seed &+ number &* 0x9E37_79B9_7F4A_7C15)
        let uniform = (Double(random.next() >> 11) + 1) / Double(1 << 53)  // (0, 1]
        return min(Int(-log(uniform) * levelScale), Self.levelMax)
    }

    /// Inserts (or replaces) the vector of `id`.
    ///
    /// The new node is linked while invisible (`pendingFlag`), then published in one step that
    /// also retires the id's old node: a search sees the old vector or the new one, never both
    /// and never neither, and concurrent inserts of one id leave exactly one live node.
    public func insert(id: UInt64, vector: [Float]) throws(VectorIndexError) {
        let stored = try prepare(vector)
        mutationGate.lockShared()
        defer { mutationGate.unlock() }
        let node = try allocateNode(id: id)
        structureLock.lockShared()
        stored.withUnsafeBufferPointer { link(node, vector: $0.baseAddress!) }
        let (replaced, consolidate) = metaLock.withLock { () -> (UInt32?, Bool) in
            flags[Int(node)] = 0
            guard let old = idMap.updateValue(node, forKey: id) else { return (nil, false) }
            flags[Int(old)] |= Self.deletedFlag
            tombstones += 1
            return (old, Double(tombstones) > configuration.consolidationThreshold * Double(nodeCount - freeSlots.count))
        }
        if let replaced { repair(around: replaced) }
        structureLock.unlock()
        if consolidate { consolidateLocked() }
    }

    /// Inserts many points on `threads` threads (a bulk build). Deterministic for one thread.
    public func insert(ids: [UInt64], vectors: UnsafePointer<Float>, threads: Int) throws(VectorIndexError) {
        reserve(nodeSlots + ids.count)
        nonisolated(unsafe) var next = 0
        let claim = ConditionLock()
        nonisolated(unsafe) var failure: VectorIndexError?
        nonisolated(unsafe) let source = vectors
        let dimension = self.dimension
        runConcurrently(threads: max(1, threads)) { [self] _ in
            while true {
                let index: Int? = claim.withLock {
                    guard failure == nil, next < ids.count else { return nil }
                    defer { next += 1 }
                    return next
                }
                guard let index else { return }
                let vector = Array(UnsafeBufferPointer(start: source + index * dimension, count: dimension))
                do throws(VectorIndexError) { try insert(id: ids[index], vector: vector) } catch {
                    claim.withLock { if failure == nil { failure = error } }
                }
            }
        }
        if let failure { throw failure }
    }

    /// Takes a node slot for `id` (a free one first), growing the arrays if needed, and draws
    /// its level. The node is not yet reachable.
    func allocateNode(id: UInt64) throws(VectorIndexError) -> UInt32 {
        while true {
            metaLock.lock()
            let number = insertions
            let level = randomLevel(number)
            let upperNeeded = level * (1 + m)
            let reused = freeSlots.last
            if reused == nil && nodeCount >= Self.nodesMax { metaLock.unlock(); throw .full }
            let needsNode = reused == nil && nodeCount >= capacity
            let needsUpper = upperUsed + upperNeeded > upperCapacity
            if needsNode || needsUpper {
                let nodes = nodeCount + 1, upper = upperUsed + upperNeeded
                metaLock.unlock()
                structureLock.lockExclusive()
                metaLock.withLock { growLocked(nodes: nodes, upper: upper) }
                structureLock.unlock()
                continue
            }
            insertions += 1
            let node: UInt32
            if let reused {
                freeSlots.removeLast()
                node = reused
            } else {
                node = UInt32(nodeCount)
                nodeCount += 1
            }
            levels[Int(node)] = UInt8(level)
            flags[Int(node)] = Self.pendingFlag
            externalIDs[Int(node)] = id
            if level > 0 {
                upperOffsets[Int(node)] = UInt32(upperUsed)
                upperPool.advanced(by: upperUsed).initialize(repeating: 0, count: upperNeeded)
                upperUsed += upperNeeded
            } else {
                upperOffsets[Int(node)] = 0
            }
            metaLock.unlock()
            return node
        }
    }

    /// Writes `node`'s vector and code record and links it into the graph (shared
    /// `structureLock` held).
    func link(_ node: UInt32, vector source: UnsafePointer<Float>) {
        let level = Int(levels[Int(node)])
        vector(node).update(from: source, count: dimension)
        encode(node)
        linkList(node, level: 0).pointee = 0

        metaLock.lock()
        if maxLevel < 0 {
            entryPoint = node
            maxLevel = level
            metaLock.unlock()
            return
        }
        // A node above the current top holds `metaLock` to the end, so that no other insert
        // sees a top level without a node on it.
        let raisesTop = level > maxLevel
        var current = entryPoint
        let top = maxLevel
        if !raisesTop { metaLock.unlock() }

        let scratch = scratchPool.take(nodes: capacity)
        defer { scratchPool.give(scratch) }
        let query = UnsafeRawPointer(code(node))
        var currentDistance = metric.estimate(query, code(current), dimension: dimension)
        if top > level {
            for layer in stride(from: top, to: level, by: -1) {
                greedy(query, from: &current, distance: &currentDistance, level: layer)
            }
        }
        for layer in stride(from: min(level, top), through: 0, by: -1) {
            scratch.begin(nodes: capacity)
            searchLayer(query, entry: current, entryDistance: currentDistance, ef: configuration.efConstruct,
                        level: layer, scratch: scratch, accept: nil)
            let selected = selectNeighbors(&scratch.results, count: m)
            // Own list first, then the reverse links.
            linkLocks.withLock(Int(node)) {
                let list = linkList(node, level: layer)
                list.pointee = UInt32(selected.count)
                for (index, neighbor) in selected.enumerated() { list[1 + index] = neighbor.id }
            }
            for neighbor in selected { connect(neighbor.id, to: node, level: layer, distance: neighbor.distance) }
            if let closest = selected.first {
                current = closest.id
                currentDistance = closest.distance
            }
        }
        if raisesTop {
            entryPoint = node
            maxLevel = level
            metaLock.unlock()
        }
    }

    /// Greedy walk to the closest node at `level` (ef = 1), by estimated distances to the code
    /// record `query`.
    func greedy(_ query: UnsafeRawPointer, from current: inout UInt32, distance: inout Float, level: Int) {
        var changed = true
        while changed {
            changed = false
            let node = current
            let list = linkList(node, level: level)
            let count = min(Int(list.pointee), capacity(ofLevel: level))
            for index in 0..<count {
                let candidate = list[1 + index]
                let candidateDistance = metric.estimate(query, code(candidate), dimension: dimension)
                if candidateDistance < distance {
                    distance = candidateDistance
                    current = candidate
                    changed = true
                }
            }
        }
    }
}
