// Deletes: a deleted node leaves the results at once (tombstone), its neighbours' lists are
// repaired right away (FreshDiskANN-style local repair), and when tombstones pass
// `consolidationThreshold` of the nodes, `consolidate()` rewrites every list that still points
// at one and frees their slots for reuse.

import Basics

extension HNSWIndex {
    /// Deletes `id`: it is never returned again, and the graph is repaired around it.
    public func delete(id: UInt64) throws(VectorIndexError) {
        mutationGate.lockShared()
        defer { mutationGate.unlock() }
        let (node, consolidate) = try metaLock.withLock { () throws(VectorIndexError) -> (UInt32, Bool) in
            guard let node = idMap.removeValue(forKey: id) else { throw .notFound(id) }
            flags[Int(node)] |= Self.deletedFlag
            tombstones += 1
            let slots = nodeCount - freeSlots.count
            return (node, Double(tombstones) > configuration.consolidationThreshold * Double(slots))
        }
        structureLock.lockShared()
        repair(around: node)
        structureLock.unlock()
        if consolidate { consolidateLocked() }
    }

    /// For each neighbour that links back to `node`: drops the link and refills the list by the
    /// heuristic over its other members and `node`'s neighbours (shared `structureLock` held).
    func repair(around node: UInt32) {
        let level = Int(levels[Int(node)])
        for layer in 0...level {
            let around: [UInt32] = linkLocks.withLock(Int(node)) {
                let list = linkList(node, level: layer)
                return (0..<min(Int(list.pointee), capacity(ofLevel: layer))).map { list[1 + $0] }
            }
            for neighbor in around where neighbor != node && flags[Int(neighbor)] == 0 {
                relink(neighbor, level: layer, dropping: [node: around])
            }
        }
    }

    /// Rewrites `node`'s list at `level` without the members in `dropping`, choosing by the
    /// heuristic among the remaining members and the dropped members' neighbours. Returns
    /// whether the list changed.
    ///
    /// With `scratch` (consolidation: exclusive `structureLock`, nothing else runs), a list left
    /// with fewer candidates than its capacity is refilled from a search of the level around the
    /// node, as an insert would find them: when many nearby nodes were deleted at once, their
    /// neighbours alone are too few to keep the region connected.
    @discardableResult
    func relink(_ node: UInt32, level: Int, dropping: [UInt32: [UInt32]], scratch: SearchScratch? = nil) -> Bool {
        linkLocks.lock(Int(node))
        defer { linkLocks.unlock(Int(node)) }
        let list = linkList(node, level: level)
        let listCapacity = capacity(ofLevel: level)
        let count = min(Int(list.pointee), listCapacity)
        let members = (0..<count).map { list[1 + $0] }
        guard members.contains(where: { dropping[$0] != nil }) else { return false }
        var pool = Set<UInt32>()
        for member in members {
            if let replacements = dropping[member] {
                for candidate in replacements where candidate != node && dropping[candidate] == nil && flags[Int(candidate)] == 0 {
                    pool.insert(candidate)
                }
            } else {
                pool.insert(member)
            }
        }
        let base = UnsafeRawPointer(code(node))
        if let scratch, pool.count < listCapacity {
            scratch.begin(nodes: capacity)
            searchLayer(base, entry: node, entryDistance: metric.estimate(base, base, dimension: dimension), ef: configuration.efConstruct, level: level,
                        scratch: scratch, accept: nil)
            while !scratch.results.isEmpty {
                let found = scratch.results.pop().id
                if found != node && dropping[found] == nil { pool.insert(found) }
            }
        }
        var candidates = pool.map { Neighbor(distance: metric.estimate(base, code($0), dimension: dimension), id: $0) }
        candidates.sort { ($0.distance, $0.id) < ($1.distance, $1.id) }
        // Keep the list's degree: the heuristic alone would cut a list that had filled up with
        // reverse links down to a few diverse members, and recall falls with the degree. So the
        // heuristic's picks come first and the nearest of the rest fill the list up.
        var kept = selectByHeuristic(candidates, count: listCapacity)
        if kept.count < listCapacity && candidates.count > kept.count {
            let chosen = Set(kept.map(\.id))
            for candidate in candidates where !chosen.contains(candidate.id) {
                if kept.count >= listCapacity { break }
                kept.append(candidate)
            }
        }
        for (index, member) in kept.enumerated() { list[1 + index] = member.id }
        list.pointee = UInt32(kept.count)
        return true
    }

    /// Rewrites every list that points at a tombstone, frees the tombstones' slots for reuse and
    /// moves the entry point off a deleted node. Blocks every other operation while it runs.
    public func consolidate() {
        mutationGate.lockShared()
        defer { mutationGate.unlock() }
        consolidateLocked()
    }

    /// `consolidate` with `mutationGate` held shared.
    func consolidateLocked() {
        structureLock.lockExclusive()
        defer { structureLock.unlock() }
        metaLock.lock()
        defer { metaLock.unlock() }
        defer { reconnectUnreachable() }
        guard tombstones > 0 else { return }
        var dead: [UInt32] = []
        for index in 0..<nodeCount where flags[index] & Self.deletedFlag != 0 && flags[index] & Self.freeFlag == 0 {
            dead.append(UInt32(index))
        }
        let deadSet = Set(dead)
        let scratch = scratchPool.take(nodes: capacity)
        defer { scratchPool.give(scratch) }
        for level in 0...max(maxLevel, 0) {
            var dropping: [UInt32: [UInt32]] = [:]
            for node in dead where Int(levels[Int(node)]) >= level {
                let list = linkList(node, level: level)
                dropping[node] = (0..<min(Int(list.pointee), capacity(ofLevel: level))).map { list[1 + $0] }
            }
            guard !dropping.isEmpty else { continue }
            for index in 0..<nodeCount where flags[index] == 0 && Int(levels[index]) >= level {
                relink(UInt32(index), level: level, dropping: dropping, scratch: scratch)
            }
        }
        for node in dead {
            flags[Int(node)] = Self.freeFlag
            linkList(node, level: 0).pointee = 0
            freeSlots.append(node)
        }
        tombstones = 0
        if deadSet.contains(entryPoint) || maxLevel < 0 {
            var best: (node: UInt32, level: Int)?
            for index in 0..<nodeCount where flags[index] == 0 && Int(levels[index]) > (best?.level ?? -1) {
                best = (UInt32(index), Int(levels[index]))
            }
            entryPoint = best?.node ?? 0
            maxLevel = best?.level ?? -1
        }
        // Free slots are reused newest-deleted last, lowest id first.
        freeSlots.sort(by: >)
    }

    /// Live nodes a level-0 walk from the entry point cannot reach (exclusive `structureLock`
    /// held). HNSW can leave a few: a node whose reverse links were all pruned away by its
    /// neighbours' heuristic, or whose only in-links came from deleted nodes.
    func unreachableNodes() -> [UInt32] {
        guard maxLevel >= 0 else { return [] }
        var reached = [Bool](repeating: false, count: nodeCount)
        var stack = [entryPoint]
        reached[Int(entryPoint)] = true
        while let node = stack.popLast() {
            let list = linkList(node, level: 0)
            for position in 0..<min(Int(list.pointee), m0) {
                let neighbor = list[1 + position]
                if !reached[Int(neighbor)] {
                    reached[Int(neighbor)] = true
                    stack.append(neighbor)
                }
            }
        }
        return (0..<nodeCount).filter { flags[$0] == 0 && !reached[$0] }.map(UInt32.init)
    }

    /// Gives every unreachable live node an in-link from its nearest reachable node (found by
    /// a search from the entry point); a full list gives up its farthest member, which the next
    /// round checks in turn. At most a few rounds (exclusive `structureLock` held).
    func reconnectUnreachable() {
        let scratch = scratchPool.take(nodes: capacity)
        defer { scratchPool.give(scratch) }
        for _ in 0..<4 {
            let lost = unreachableNodes()
            guard !lost.isEmpty else { return }
            let lostSet = Set(lost)
            for node in lost {
                let query = UnsafeRawPointer(code(node))
                var current = entryPoint
                var currentDistance = metric.estimate(query, code(current), dimension: dimension)
                if maxLevel > 0 {
                    for level in stride(from: maxLevel, to: 0, by: -1) {
                        greedy(query, from: &current, distance: &currentDistance, level: level)
                    }
                }
                scratch.begin(nodes: capacity)
                searchLayer(query, entry: current, entryDistance: currentDistance, ef: configuration.efConstruct,
                            level: 0, scratch: scratch, accept: nil)
                let found = scratch.results.drainSortedAscending()
                guard let host = found.first(where: { $0.id != node && !lostSet.contains($0.id) }) else { continue }
                let list = linkList(host.id, level: 0)
                let count = min(Int(list.pointee), m0)
                if (0..<count).contains(where: { list[1 + $0] == node }) { continue }
                if count < m0 {
                    list[1 + count] = node
                    list.pointee = UInt32(count + 1)
                } else {
                    let base = UnsafeRawPointer(code(host.id))
                    let farthest = (0..<count).max { a, b in
                        metric.estimate(base, code(list[1 + a]), dimension: dimension)
                            < metric.estimate(base, code(list[1 + b]), dimension: dimension)
                    }!
                    list[1 + farthest] = node
                }
            }
        }
    }
}
