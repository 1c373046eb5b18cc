// Crash recovery of a shard on a MemoryFileSystem. The test keeps the entries as the "Raft
// log": after a crash (unsynced writes kept, dropped or torn at random) it reopens the storage
// engine (external WAL mode) and the shard, replays the log after `replayFrom`, and checks the
// shard against the model at the last entry. The log could have been compacted through the
// `compactableIndex` reported before the crash, so the replay must never need those entries —
// also when a checkpoint is damaged and the shard falls back to the one before it.

import Basics
import FileIOSim
import LSM
import Payload
import Shard
import TestSupport
import Testing
import VectorIndex

@Suite(.ownThread) struct ShardCrashTests {
    /// A running node: file system, engine and shard, reopened after each crash.
    final class Node {
        var fileSystem = MemoryFileSystem()
        var engine: StorageEngine
        var shard: Shard
        let configuration: HNSWConfiguration
        var log: [(index: UInt64, data: [UInt8])] = []
        var model = ShardModel()
        var generator: CommandGenerator

        init(seed: UInt64, metric: Metric = .cosine) throws {
            configuration = ShardFixture.configuration(metric)
            engine = try ShardFixture.openEngine(fileSystem)
            shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: configuration)
            generator = CommandGenerator(seed: seed, dimension: configuration.dimension)
        }

        /// Appends `count` entries to the log and applies them.
        func applyNew(_ count: Int) throws {
            var entries: [(index: UInt64, data: [UInt8])] = []
            for _ in 0..<count {
                let entry = (index: UInt64(log.count + 1), data: generator.entryData())
                log.append(entry)
                model.apply(entry.data)
                entries.append(entry)
            }
            try shard.apply(entries)
        }

        /// Power loss now; reopens engine and shard on what the crash left (nothing replayed).
        func crash(seed: UInt64, keep: Double, damage: (MemoryFileSystem) -> Void = { _ in }) throws {
            let clone = fileSystem.crashClone(seed: seed, options: CrashOptions(keepWriteProbability: keep))
            damage(clone)
            engine.close()
            fileSystem = clone
            engine = try ShardFixture.openEngine(fileSystem)
            shard = try ShardFixture.openShard(engine: engine, fileSystem: fileSystem, configuration: configuration)
        }

        /// Replays the log from `first` (1-based; entries before it are "compacted") in chunks.
        func replay(from first: UInt64, random: inout SeededRandom) throws {
            var position = Int(first) - 1
            while position < log.count {
                let end = min(log.count, position + Int.random(in: 1...8, using: &random))
                try shard.apply(Array(log[position..<end]))
                position = end
            }
        }

        func checkpointPath(_ applied: UInt64, keys: Bool) -> String {
            "\(ShardFixture.shardsDirectory)/1024/" + (keys ? VectorState.keysFileName(applied) : VectorState.indexFileName(applied))
        }
    }

    @Test(arguments: 1...8)
    func recoversTheModelAfterCrashesAtRandomPoints(seed: Int) throws {
        let seed = UInt64(seed)
        let node = try Node(seed: 9000 + seed, metric: [.cosine, .euclid][Int(seed % 2)])
        var random = SeededRandom(seed: seed)
        var crashes = 0
        var checkpoints = 0
        var replayed = 0
        var storageAhead = 0
        for step in 0..<45 {
            try node.applyNew(Int.random(in: 1...5, using: &random))
            if random.chance(0.2) {
                try node.shard.checkpoint()
                checkpoints += 1
            }
            guard random.chance(0.2) || step == 44 else { continue }
            let compactable = node.shard.compactableIndex
            #expect(compactable <= node.shard.appliedIndex)
            let keep = [0, 0.5, 1][Int.random(in: 0..<3, using: &random)]
            try node.crash(seed: random.next(), keep: keep)
            crashes += 1
            let context = "seed \(seed) step \(step) (crash keeping \(keep), compactable \(compactable))"
            let shard = node.shard
            #expect(shard.loadFailures.isEmpty, "\(context): \(shard.loadFailures)")
            let from = shard.replayFrom
            if (node.engine.durableAppliedIndexes[1024] ?? 0) > shard.vectors.appliedIndex { storageAhead += 1 }
            #expect(from >= compactable, "\(context): replay from \(from) needs entries the log may have dropped")
            #expect(from <= UInt64(node.log.count))
            #expect(throws: Never.self, "\(context)") { try shard.ensureCovered(firstIndex: compactable + 1) }
            // Raft hands over entries from its first index: anywhere from the compaction point on.
            let first = UInt64.random(in: (compactable + 1)...(from + 1), using: &random)
            try node.replay(from: first, random: &random)
            replayed += node.log.count - Int(from)
            #expect(shard.appliedIndex == UInt64(node.log.count), "\(context)")
            try ShardCheck.check(shard, node.model, metric: node.configuration.metric, random: &random, context: context)
        }
        print("ShardCrashTests seed \(seed): \(node.log.count) entries, \(crashes) crashes, \(checkpoints) checkpoints, "
            + "\(replayed) entries replayed, storage side ahead of the vector side after \(storageAhead) crashes")
        #expect(crashes >= 2)
        #expect(checkpoints >= 2)
        #expect(replayed > 0)
    }

    /// Two checkpoints, the newest damaged (its keys file or its index file): the shard opens
    /// from the older one and the log from there gives the right state.
    @Test(arguments: [true, false])
    func aDamagedNewestCheckpointFallsBackToTheOlderOne(damageKeys: Bool) throws {
        let node = try Node(seed: 77)
        var random = SeededRandom(seed: 78)
        try node.applyNew(15)
        try node.shard.checkpoint()
        try node.applyNew(15)
        try node.shard.checkpoint()
        try node.applyNew(10)
        let compactable = node.shard.compactableIndex
        #expect(compactable == 15, "the older checkpoint bounds compaction")
        let path = node.checkpointPath(30, keys: damageKeys)
        try node.crash(seed: 5, keep: 0) { fileSystem in
            guard var bytes = fileSystem.contents(of: path) else { Issue.record("no \(path)"); return }
            bytes[bytes.count / 2] ^= 0x10
            fileSystem.setContents(of: path, bytes)
        }
        let shard = node.shard
        #expect(shard.loadFailures.count == 1, "\(shard.loadFailures)")
        #expect(shard.vectors.appliedIndex == 15)
        #expect(shard.replayFrom == 15)
        // The damaged checkpoint is set aside: not tried again, kept for a post-mortem.
        #expect(!node.fileSystem.fileExists(path) && node.fileSystem.fileExists(path + ".damaged"))
        #expect(throws: Never.self) { try shard.ensureCovered(firstIndex: compactable + 1) }
        try node.replay(from: compactable + 1, random: &random)
        try ShardCheck.check(shard, node.model, metric: .cosine, random: &random, context: "after falling back")
        // The shard goes on: a new checkpoint, a clean crash, back again.
        try node.applyNew(5)
        try node.shard.checkpoint()
        try node.crash(seed: 6, keep: 0)
        #expect(node.shard.loadFailures.isEmpty)
        try node.replay(from: node.shard.replayFrom + 1, random: &random)
        try ShardCheck.check(node.shard, node.model, metric: .cosine, random: &random, context: "after the next checkpoint")
    }

    /// Every checkpoint damaged: the vector side is rebuilt from the storage side's points (as of
    /// its durable index), so replay needs only what compaction kept; with storage empty too, it
    /// would need the whole log, and `ensureCovered` reports a gap.
    @Test func everyCheckpointDamagedRebuildsTheIndexFromStorage() throws {
        let node = try Node(seed: 88)
        var random = SeededRandom(seed: 89)
        try node.applyNew(12)
        try node.shard.checkpoint()
        try node.applyNew(12)
        try node.shard.checkpoint()
        try node.applyNew(6)
        let compactable = node.shard.compactableIndex
        #expect(compactable == 12)
        let paths = [node.checkpointPath(24, keys: true), node.checkpointPath(12, keys: false)]
        try node.crash(seed: 7, keep: 0.5) { fileSystem in
            for path in paths {
                guard var bytes = fileSystem.contents(of: path) else { Issue.record("no \(path)"); return }
                bytes[40] ^= 0x01
                fileSystem.setContents(of: path, bytes)
            }
        }
        let shard = node.shard
        #expect(shard.loadFailures.count == 2, "\(shard.loadFailures)")
        #expect(shard.vectors.appliedIndex == 24)
        #expect(shard.replayFrom == 24)
        #expect(shard.rebuiltPoints == shard.count && shard.count > 0)
        #expect(throws: Never.self) { try shard.ensureCovered(firstIndex: compactable + 1) }
        let error = thrownError(ShardError.self) { try shard.ensureCovered(firstIndex: 26) }
        #expect(error == .gap(needed: 25, first: 26))
        try node.replay(from: compactable + 1, random: &random)
        try ShardCheck.check(shard, node.model, metric: .cosine, random: &random, context: "after a rebuild and a replay")
    }

    /// The shard's directory lost whole (every checkpoint gone): the same rebuild from storage.
    @Test func aLostShardDirectoryRebuildsTheIndexFromStorage() throws {
        let node = try Node(seed: 90)
        var random = SeededRandom(seed: 91)
        try node.applyNew(15)
        try node.shard.checkpoint()
        try node.applyNew(15)
        try node.shard.checkpoint()
        try node.applyNew(5)
        let compactable = node.shard.compactableIndex
        let directory = "\(ShardFixture.shardsDirectory)/1024"
        try node.crash(seed: 9, keep: 1) { fileSystem in
            for name in (try? fileSystem.list(directory)) ?? [] { try? fileSystem.remove(directory + "/" + name) }
        }
        let shard = node.shard
        #expect(shard.loadFailures.isEmpty)
        #expect(shard.rebuiltPoints > 0 && shard.replayFrom == 30)
        #expect(throws: Never.self) { try shard.ensureCovered(firstIndex: compactable + 1) }
        try node.replay(from: compactable + 1, random: &random)
        try ShardCheck.check(shard, node.model, metric: .cosine, random: &random, context: "after a lost directory")
    }

    /// With a single checkpoint there is no older one to fall back to (Format/shard.md §1: the
    /// log is kept back to the vector side's second-newest checkpoint), so nothing may be
    /// compacted on the vector side's account: if that checkpoint is damaged, the whole log is
    /// needed.
    @Test func aSingleCheckpointAllowsNoCompaction() throws {
        let node = try Node(seed: 99)
        var random = SeededRandom(seed: 100)
        try node.applyNew(20)
        try node.shard.checkpoint()
        try node.applyNew(20)
        let compactable = node.shard.compactableIndex
        #expect(compactable == 0)
        let path = node.checkpointPath(20, keys: true)
        try node.crash(seed: 8, keep: 1) { fileSystem in
            guard var bytes = fileSystem.contents(of: path) else { Issue.record("no \(path)"); return }
            bytes[bytes.count - 1] ^= 0xFF
            fileSystem.setContents(of: path, bytes)
        }
        let shard = node.shard
        #expect(shard.loadFailures.count == 1)
        // Rebuilt from the storage side, which holds more than the damaged checkpoint did.
        #expect(shard.rebuiltPoints > 0 && shard.replayFrom >= 20)
        #expect(throws: Never.self) { try shard.ensureCovered(firstIndex: compactable + 1) }
        try node.replay(from: compactable + 1, random: &random)
        try ShardCheck.check(shard, node.model, metric: .cosine, random: &random, context: "after a full replay")
    }
}
