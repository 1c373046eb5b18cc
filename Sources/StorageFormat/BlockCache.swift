// A cache of decoded data blocks, bounded in bytes, shared by every segment of an engine.
//
// Blocks are cached decoded (entries with their keys materialised), so a hit costs a binary
// search and no checksum, decompression or decoding. A block is charged its decoded size. The
// cache is split into shards by key hash, each an LRU list under its own lock, so concurrent
// readers rarely contend.

import Synchronization

public struct BlockCacheStatistics: Sendable, Equatable {
    public var hits: UInt64 = 0
    public var misses: UInt64 = 0
    public var insertions: UInt64 = 0
    public var evictions: UInt64 = 0
    public var bytes = 0
    public var capacity = 0
    public var hitRate: Double { hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses) }
    public init() {}
}

public final class BlockCache: Sendable {
    public struct Key: Hashable, Sendable {
        public var segment: UInt64
        public var offset: UInt64
        public init(segment: UInt64, offset: UInt64) {
            self.segment = segment
            self.offset = offset
        }
    }

    final class Node {
        let key: Key
        let block: DecodedBlock
        var previous: Node?
        var next: Node?
        init(key: Key, block: DecodedBlock) {
            self.key = key
            self.block = block
        }
    }

    struct Shard: ~Copyable {
        var nodes: [Key: Node] = [:]
        /// Most recently used first.
        var head: Node?
        var tail: Node?
        var bytes = 0
        var statistics = BlockCacheStatistics()

        mutating func unlink(_ node: Node) {
            if let previous = node.previous { previous.next = node.next } else { head = node.next }
            if let next = node.next { next.previous = node.previous } else { tail = node.previous }
            node.previous = nil
            node.next = nil
        }

        mutating func pushFront(_ node: Node) {
            node.next = head
            head?.previous = node
            head = node
            if tail == nil { tail = node }
        }
    }

    public let capacity: Int
    let shardCapacity: Int
    final class LockedShard: Sendable {
        let state = Mutex(Shard())
    }

    let shards: [LockedShard]
    static let shardCount = 16

    public init(capacityBytes: Int) {
        capacity = max(0, capacityBytes)
        shardCapacity = capacity / Self.shardCount
        shards = (0..<Self.shardCount).map { _ in LockedShard() }
    }

    func shard(for key: Key) -> Int {
        var h = key.segment &* 0x9E37_79B9_7F4A_7C15 ^ key.offset
        h ^= h >> 29
        h &*= 0xBF58_476D_1CE4_E5B9
        return Int(h >> 60) & (Self.shardCount - 1)
    }

    public func lookup(_ key: Key) -> DecodedBlock? {
        shards[shard(for: key)].state.withLock { shard in
            guard let node = shard.nodes[key] else {
                shard.statistics.misses += 1
                return nil
            }
            shard.statistics.hits += 1
            shard.unlink(node)
            shard.pushFront(node)
            return node.block
        }
    }

    public func insert(_ key: Key, _ block: DecodedBlock) {
        guard block.charge <= shardCapacity else { return }
        let limit = shardCapacity
        shards[shard(for: key)].state.withLock { shard in
            if let old = shard.nodes[key] {
                shard.unlink(old)
                shard.bytes -= old.block.charge
            }
            let node = Node(key: key, block: block)
            shard.nodes[key] = node
            shard.pushFront(node)
            shard.bytes += block.charge
            shard.statistics.insertions += 1
            while shard.bytes > limit, let victim = shard.tail {
                shard.unlink(victim)
                shard.nodes[victim.key] = nil
                shard.bytes -= victim.block.charge
                shard.statistics.evictions += 1
            }
        }
    }

    /// Drops every block of `segment` (its file was deleted).
    public func evict(segment: UInt64) {
        for index in shards.indices {
            shards[index].state.withLock { shard in
                for (key, node) in shard.nodes where key.segment == segment {
                    shard.unlink(node)
                    shard.nodes[key] = nil
                    shard.bytes -= node.block.charge
                }
            }
        }
    }

    public var statistics: BlockCacheStatistics {
        var total = BlockCacheStatistics()
        for index in shards.indices {
            shards[index].state.withLock { shard in
                total.hits += shard.statistics.hits
                total.misses += shard.statistics.misses
                total.insertions += shard.statistics.insertions
                total.evictions += shard.statistics.evictions
                total.bytes += shard.bytes
            }
        }
        total.capacity = capacity
        return total
    }
}
