// Graph statistics and invariant checks, for `vectron-tool dump / verify` and tests.

extension HNSWIndex {
    public struct LevelDegrees: Sendable, Equatable {
        public var level: Int
        public var nodes: Int
        public var minimum: Int
        public var maximum: Int
        public var mean: Double
    }

    public struct GraphReport: Sendable {
        public var slots = 0
        public var live = 0
        public var tombstones = 0
        public var free = 0
        public var entryPoint: UInt32?
        public var maxLevel = -1
        /// Non-free nodes whose top level is the index.
        public var levelHistogram: [Int] = []
        public var degrees: [LevelDegrees] = []
        /// Live nodes a walk from the entry point (through any non-free node) does not reach: a
        /// loss of recall, not of integrity (`consolidate()` reconnects them).
        public var unreachable = 0
        /// Broken structural invariants, in words (none for a sound graph).
        public var problems: [String] = []
    }

    /// Walks the whole graph (exclusive: nothing else runs meanwhile): level histogram, degree
    /// statistics per level, and the invariants — ids in bounds and not free, no self-links, no
    /// duplicate neighbours, every live node reachable from the entry point.
    public func inspect() -> GraphReport {
        structureLock.lockExclusive()
        defer { structureLock.unlock() }
        return metaLock.withLock {
            var report = GraphReport()
            report.slots = nodeCount
            report.maxLevel = maxLevel
            report.entryPoint = maxLevel >= 0 ? entryPoint : nil
            var sums: [(nodes: Int, minimum: Int, maximum: Int, total: Int)] = []
            for index in 0..<nodeCount {
                switch flags[index] {
                case 0: report.live += 1
                case Self.deletedFlag: report.tombstones += 1
                default:
                    report.free += 1
                    continue
                }
                let level = Int(levels[index])
                while report.levelHistogram.count <= level { report.levelHistogram.append(0) }
                report.levelHistogram[level] += 1
                for layer in 0...level {
                    let list = linkList(UInt32(index), level: layer)
                    let count = Int(list.pointee)
                    while sums.count <= layer { sums.append((0, Int.max, 0, 0)) }
                    sums[layer].nodes += 1
                    sums[layer].minimum = min(sums[layer].minimum, count)
                    sums[layer].maximum = max(sums[layer].maximum, count)
                    sums[layer].total += count
                    var seen = Set<UInt32>()
                    for position in 0..<min(count, capacity(ofLevel: layer)) {
                        let neighbor = list[1 + position]
                        if Int(neighbor) >= nodeCount || flags[Int(neighbor)] == Self.freeFlag || Int(levels[Int(neighbor)]) < layer {
                            report.problems.append("node \(index) links to \(neighbor) at level \(layer), which is not a node there")
                        } else if Int(neighbor) == index {
                            report.problems.append("node \(index) links to itself at level \(layer)")
                        } else if !seen.insert(neighbor).inserted {
                            report.problems.append("node \(index) lists \(neighbor) twice at level \(layer)")
                        }
                    }
                }
            }
            report.degrees = sums.enumerated().map { level, sum in
                LevelDegrees(level: level, nodes: sum.nodes, minimum: sum.nodes == 0 ? 0 : sum.minimum, maximum: sum.maximum,
                             mean: sum.nodes == 0 ? 0 : Double(sum.total) / Double(sum.nodes))
            }
            // Reachability over level 0 (every node is there), from the entry point.
            if report.problems.isEmpty { report.unreachable = unreachableNodes().count }
            if report.problems.count > 20 {
                let more = report.problems.count - 20
                report.problems = Array(report.problems.prefix(20)) + ["… and \(more) more"]
            }
            return report
        }
    }
}
