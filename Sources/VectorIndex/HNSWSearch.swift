// Searching the graph: the layer search shared by inserts and queries, neighbour selection, the
// public top-k search with filters, and exact search.

import Basics
import CVectorSupport

extension HNSWIndex {
    /// Best-first search of one level from `entry`, leaving up to `ef` accepted nodes in
    /// `scratch.results` (a max-heap), by distances estimated from code records (`query` is
    /// one). Filtered-out and deleted nodes are walked through but not returned. Lists are read
    /// without their locks (see the type's comment on concurrency).
    @inline(__always)
    func searchLayer(_ query: UnsafeRawPointer, entry: UInt32, entryDistance: Float, ef: Int, level: Int,
                     scratch: SearchScratch, accept: ((UInt32) -> Bool)?) {
        let tags = scratch.tags
        let epoch = scratch.epoch
        let flags = self.flags
        let dimension = self.dimension
        let metric = self.metric
        let listCapacity = capacity(ofLevel: level)
        tags[Int(entry)] = epoch
        scratch.candidates.push(Neighbor(distance: entryDistance, id: entry))
        if flags[Int(entry)] == 0 && (accept?(entry) ?? true) {
            scratch.results.push(Neighbor(distance: entryDistance, id: entry))
        }
        var bound = scratch.results.isEmpty ? Float.infinity : scratch.results.top.distance
        while !scratch.candidates.isEmpty {
            let current = scratch.candidates.top
            if current.distance > bound && scratch.results.count >= ef { break }
            scratch.candidates.pop()
            let source = linkList(current.id, level: level)
            let count = min(Int(source.pointee), listCapacity)
            let list = UnsafePointer(source + 1)
            // Unvisited neighbours first, then their distances with each code record's lines
            // prefetched three ahead: several vectors stream in from memory at once instead of
            // one miss at a time (the walk is bound by memory latency, not arithmetic).
            let batch = scratch.batch
            var pending = 0
            for index in 0..<count {
                let neighbor = list[index]
                if tags[Int(neighbor)] == epoch { continue }
                tags[Int(neighbor)] = epoch
                batch[pending] = neighbor
                pending += 1
            }
            if pending > 0 { prefetchVector(batch[0]) }
            if pending > 1 { prefetchVector(batch[1]) }
            if pending > 2 { prefetchVector(batch[2]) }
            for position in 0..<pending {
                if position + 3 < pending { prefetchVector(batch[position + 3]) }
                let neighbor = batch[position]
                let distance = metric.estimate(query, code(neighbor), dimension: dimension)
                if scratch.results.count < ef || distance < bound {
                    scratch.candidates.push(Neighbor(distance: distance, id: neighbor))
                    if flags[Int(neighbor)] == 0 && (accept?(neighbor) ?? true) {
                        scratch.results.push(Neighbor(distance: distance, id: neighbor))
                        if scratch.results.count > ef { scratch.results.pop() }
                    }
                    if !scratch.results.isEmpty { bound = scratch.results.top.distance }
                }
            }
        }
    }

    /// Prefetches every cache line of `node`'s code record.
    @inline(__always)
    func prefetchVector(_ node: UInt32) { prefetchLines(UnsafeRawPointer(code(node)), bytes: codeBytes) }

    /// Prefetches every cache line of `node`'s float vector.
    @inline(__always)
    func prefetchFloats(_ node: UInt32) { prefetchLines(UnsafeRawPointer(vector(node)), bytes: vectorBytes) }

    @inline(__always)
    func prefetchLines(_ data: UnsafeRawPointer, bytes: Int) {
        var offset = 0
        while offset < bytes {
            vectron_prefetch(data + offset)
            offset += 64
        }
    }

    /// The HNSW paper's heuristic (hnswlib's `getNeighborsByHeuristic2`): closest first, a
    /// candidate is kept only if it is closer to the base than to every node kept so far, at
    /// most `count` (all distances estimated from code records). Consumes `results`.
    func selectNeighbors(_ results: inout NeighborHeap, count: Int) -> [Neighbor] {
        let sorted = results.drainSortedAscending()
        return selectByHeuristic(sorted, count: count)
    }

    /// The heuristic over candidates sorted by distance to the base, closest first.
    func selectByHeuristic(_ sorted: [Neighbor], count: Int) -> [Neighbor] {
        if sorted.count <= count { return sorted }
        var selected: [Neighbor] = []
        selected.reserveCapacity(count)
        for candidate in sorted {
            if selected.count >= count { break }
            let candidateCode = UnsafeRawPointer(code(candidate.id))
            var good = true
            for kept in selected where metric.estimate(candidateCode, code(kept.id), dimension: dimension) < candidate.distance {
                good = false
                break
            }
            if good { selected.append(candidate) }
        }
        return selected
    }

    /// Adds `node` to `neighbor`'s list at `level`; a full list is cut back to its capacity by
    /// the heuristic, over its old members and `node`.
    func connect(_ neighbor: UInt32, to node: UInt32, level: Int, distance: Float) {
        linkLocks.lock(Int(neighbor))
        defer { linkLocks.unlock(Int(neighbor)) }
        let list = linkList(neighbor, level: level)
        let listCapacity = capacity(ofLevel: level)
        let count = min(Int(list.pointee), listCapacity)
        for index in 0..<count where list[1 + index] == node { return }
        if count < listCapacity {
            list[1 + count] = node
            list.pointee = UInt32(count + 1)
            return
        }
        let base = UnsafeRawPointer(code(neighbor))
        var candidates = [Neighbor(distance: distance, id: node)]
        candidates.reserveCapacity(count + 1)
        for index in 0..<count {
            let member = list[1 + index]
            candidates.append(Neighbor(distance: metric.estimate(base, code(member), dimension: dimension), id: member))
        }
        candidates.sort { $0.distance < $1.distance }
        let kept = selectByHeuristic(candidates, count: listCapacity)
        for (index, member) in kept.enumerated() { list[1 + index] = member.id }
        list.pointee = UInt32(kept.count)
    }

    // MARK: Queries

    /// The `k` nearest live points to `query`, best first. `ef` defaults to the configured one
    /// (at least `k` is used). `filter` (on internal ids; `externalID(of:)` maps them) is
    /// evaluated during the walk: nodes it rejects are walked through but never returned. When
    /// the filter looks very selective the search switches to an exact scan of the passing
    /// nodes (`shouldSearchExactly`).
    public func search(_ query: [Float], k: Int, ef: Int? = nil, filter: ((UInt32) -> Bool)? = nil) throws(VectorIndexError) -> [SearchHit] {
        guard k >= 0 else { throw .invalidArgument("k \(k) is negative") }
        let prepared = try prepare(query)
        if k == 0 { return [] }
        structureLock.lockShared()
        defer { structureLock.unlock() }
        let (entry, top, nodes, live) = metaLock.withLock { (entryPoint, maxLevel, nodeCount, idMap.count) }
        guard top >= 0, live > 0 else { return [] }
        if let filter, shouldSearchExactly(filter: filter, nodes: nodes, live: live, ef: max(ef ?? configuration.ef, k)) {
            return exactLocked(prepared, k: k, nodes: nodes, filter: filter)
        }
        let scratch = scratchPool.take(nodes: capacity)
        defer { scratchPool.give(scratch) }
        return prepared.withUnsafeBufferPointer { buffer in
            let query = buffer.baseAddress!
            let queryCode = scratch.code(bytes: codeBytes)
            Quantizer.encode(query, dimension: dimension, into: queryCode)
            var current = entry
            var currentDistance = metric.estimate(queryCode, code(current), dimension: dimension)
            if top > 0 {
                for level in stride(from: top, to: 0, by: -1) {
                    greedy(queryCode, from: &current, distance: &currentDistance, level: level)
                }
            }
            searchLayer(queryCode, entry: current, entryDistance: currentDistance, ef: max(ef ?? configuration.ef, k),
                        level: 0, scratch: scratch, accept: filter)
            return rescore(query, &scratch.results, k: k)
        }
    }

    /// The best `k` of the walk's candidates by exact distance, best first: the walk ranked them
    /// by estimates, users see exact scores.
    func rescore(_ query: UnsafePointer<Float>, _ results: inout NeighborHeap, k: Int) -> [SearchHit] {
        var exact = results.drainSortedAscending()
        for index in exact.indices {
            let node = exact[index].id
            if index + 2 < exact.count { prefetchFloats(exact[index + 2].id) }
            exact[index].distance = metric.distance(query, vector(node), dimension: dimension)
        }
        exact.sort { $0.distance < $1.distance || ($0.distance == $1.distance && $0.id < $1.id) }
        return finalHits(exact, k: k)
    }

    /// The first `k` of `sorted` as hits, each user id once. Walks read flags without locks, so
    /// a walk racing an upsert of one id can accept the old node before the upsert publishes and
    /// the new one after it; nodes retired since are dropped, and of any id still seen twice the
    /// closer node is kept — a search sees the old vector or the new one, never both.
    func finalHits(_ sorted: [Neighbor], k: Int) -> [SearchHit] {
        var seen = Set<UInt64>()
        var hits: [SearchHit] = []
        hits.reserveCapacity(min(k, sorted.count))
        for neighbor in sorted where hits.count < k && flags[Int(neighbor.id)] == 0 {
            let found = hit(neighbor)
            if seen.insert(found.id).inserted { hits.append(found) }
        }
        return hits
    }

    func hit(_ neighbor: Neighbor) -> SearchHit {
        SearchHit(id: externalIDs[Int(neighbor.id)], score: metric.score(distance: neighbor.distance),
                  distance: neighbor.distance, internalID: neighbor.id)
    }

    /// Whether a filtered search should scan the passing nodes instead of walking the graph.
    ///
    /// The share `p` of live nodes that pass is estimated from up to 512 nodes spread evenly
    /// over the id space. A graph walk that returns `ef` passing nodes computes about
    /// `ef · m0 / p` distances (it must see `ef / p` nodes to meet `ef` passing ones, each
    /// expansion costing up to `m0`); a scan costs `p · n` distances plus `n` filter calls,
    /// counted as `n / 16` distances. The scan wins when its cost is lower — below roughly
    /// `p = √(ef · m0 / n)`: for 100 k nodes, ef 100, m 16, about 17 % — and it always has
    /// recall 1, which the walk loses when the passing nodes are too sparse to stay connected.
    public func shouldSearchExactly(filter: (UInt32) -> Bool, nodes: Int, live: Int, ef: Int) -> Bool {
        let samples = min(512, nodes)
        var tried = 0, passed = 0
        for index in 0..<samples {
            let node = UInt32(index * nodes / samples)
            guard flags[Int(node)] == 0 else { continue }
            tried += 1
            if filter(node) { passed += 1 }
        }
        guard tried > 0, passed > 0 else { return true }
        let share = Double(passed) / Double(tried)
        let walk = Double(ef * m0) / share
        let scan = share * Double(live) + Double(nodes) / 16
        return scan <= walk
    }

    /// Exact top-`k` by scanning every live node that passes `filter` (the test oracle, and
    /// `exact = true`).
    public func exactSearch(_ query: [Float], k: Int, filter: ((UInt32) -> Bool)? = nil) throws(VectorIndexError) -> [SearchHit] {
        guard k >= 0 else { throw .invalidArgument("k \(k) is negative") }
        let prepared = try prepare(query)
        if k == 0 { return [] }
        structureLock.lockShared()
        defer { structureLock.unlock() }
        let nodes = metaLock.withLock { nodeCount }
        return exactLocked(prepared, k: k, nodes: nodes, filter: filter)
    }

    func exactLocked(_ query: [Float], k: Int, nodes: Int, filter: ((UInt32) -> Bool)?) -> [SearchHit] {
        var heap = NeighborHeap(isMax: true, capacity: max(k + 1, 16))
        defer { heap.deallocate() }
        query.withUnsafeBufferPointer { buffer in
            let query = buffer.baseAddress!
            for index in 0..<nodes {
                let node = UInt32(index)
                guard flags[index] == 0, filter?(node) ?? true else { continue }
                let distance = metric.distance(query, vector(node), dimension: dimension)
                if heap.count < k {
                    heap.push(Neighbor(distance: distance, id: node))
                } else if distance < heap.top.distance {
                    heap.pop()
                    heap.push(Neighbor(distance: distance, id: node))
                }
            }
        }
        return finalHits(heap.drainSortedAscending(), k: k)
    }
}
