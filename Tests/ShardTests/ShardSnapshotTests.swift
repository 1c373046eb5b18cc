// Shard snapshots (Format/shard.md §6): a source shard exports its state at its applied index, a
// replica on another node (another MemoryFileSystem and engine) installs it, and the two then
// agree on every read — and keep agreeing as the log goes on. Damaged, truncated or unfitting
// snapshots are refused with typed errors and change nothing; an install that dies part way
// (every file operation failing from the nth on, then a power loss) is finished or undone at
// the next open, never left half done.

import Basics
import FileIO
import FileIOSim
import Foundation
import LSM
import Payload
@testable import Shard
import TestSupport
import Testing
import VectorIndex

@Suite(.ownThread) struct ShardSnapshotTests {
    static let group: UInt64 = 1024
    static let otherGroup: UInt64 = 2048
    static let directory = "\(ShardFixture.shardsDirectory)/1024"
    static let snapshotPath = "/node/1024.vxsnap"

    /// One node: its file system, engine, the shard under test and a neighbour group sharing the
    /// engine (whose keys an install must not touch).
    final class Node {
        var fileSystem: MemoryFileSystem
        var engine: StorageEngine
        var shard: Shard
        var neighbour: Shard
        let configuration: HNSWConfiguration
        var log: [(index: UInt64, data: [UInt8])] = []
        var model = ShardModel()
        var neighbourModel = ShardModel()
        var generator: CommandGenerator

        init(seed: UInt64, metric: Metric, fileSystem: MemoryFileSystem = MemoryFileSystem()) throws {
            self.fileSystem = fileSystem
            configuration = ShardFixture.configuration(metric)
            engine = try ShardFixture.openEngine(fileSystem)
            shard = try ShardFixture.openShard(group: ShardSnapshotTests.group, engine: engine, fileSystem: fileSystem, configuration: configuration)
            neighbour = try ShardFixture.openShard(group: ShardSnapshotTests.otherGroup, engine: engine, fileSystem: fileSystem, configuration: configuration)
            generator = CommandGenerator(seed: seed, dimension: configuration.dimension)
            // The neighbour gets points of its own, under the same keys the shard uses.
            var neighbourEntries: [(index: UInt64, data: [UInt8])] = []
            for index in 1...20 {
                let data = generator.command(kind: 1).encode()
                neighbourModel.apply(data)
                neighbourEntries.append((UInt64(index), data))
            }
            try neighbour.apply(neighbourEntries)
        }

        /// Appends `count` entries to the shard's log and applies them in small batches.
        func applyNew(_ count: Int, random: inout SeededRandom) throws {
            var pending: [(index: UInt64, data: [UInt8])] = []
            for _ in 0..<count {
                let entry = (index: UInt64(log.count + 1), data: generator.entryData())
                log.append(entry)
                model.apply(entry.data)
                pending.append(entry)
                if pending.count >= Int.random(in: 1...6, using: &random) {
                    try shard.apply(pending)
                    pending = []
                }
                if random.chance(0.03) { try shard.checkpoint() }
            }
            try shard.apply(pending)
        }

        /// Installs the snapshot at `path` (on this node's file system) in place of the shard.
        func install(_ path: String = ShardSnapshotTests.snapshotPath) throws {
            shard = try Shard.installSnapshot(from: path, group: ShardSnapshotTests.group, directory: ShardSnapshotTests.directory,
                                              engine: engine, fileSystem: fileSystem, configuration: configuration)
        }
    }

    static func copy(_ path: String, from source: MemoryFileSystem, to destination: MemoryFileSystem, as target: String = snapshotPath) throws {
        let handle = try source.open(path, options: .read)
        defer { handle.close() }
        try destination.writeAtomically(target, try handle.readAll())
    }

    static func read(_ path: String, _ fileSystem: MemoryFileSystem) throws -> [UInt8] {
        let handle = try fileSystem.open(path, options: .read)
        defer { handle.close() }
        return try handle.readAll()
    }

    static func shardError(_ body: () throws -> Void) -> ShardError? {
        do {
            try body()
            return nil
        } catch let error as ShardError {
            return error
        } catch {
            Issue.record("not a ShardError: \(error)")
            return nil
        }
    }

    /// Both shards answer every read alike: every point, and approximate searches (the same
    /// graph gives the same answers).
    static func expectSameReads(_ a: Shard, _ b: Shard, dimension: Int, random: inout SeededRandom,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let left = try ShardCheck.scrollAll(a, limit: 50), right = try ShardCheck.scrollAll(b, limit: 50)
        #expect(left == right, "the two shards' points differ", sourceLocation: sourceLocation)
        #expect(a.count == b.count, sourceLocation: sourceLocation)
        for _ in 0..<10 {
            let query = (0..<dimension).map { _ in Float(Int.random(in: -100...100, using: &random)) / 10 }
            let k = Int.random(in: 1...10, using: &random)
            #expect(try a.search(query, k: k, ef: 16) == b.search(query, k: k, ef: 16), "approximate searches differ", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: 1...4)
    func aReplicaInstallsTheSnapshotAndThenFollowsTheLog(seed: Int) throws {
        let seed = UInt64(seed)
        let metric: Metric = seed % 2 == 0 ? .euclid : .cosine
        var random = SeededRandom(seed: seed)
        let source = try Node(seed: 100 + seed, metric: metric)
        try source.applyNew(150 + Int(seed) * 20, random: &random)
        let info = try source.shard.exportSnapshot(to: Self.snapshotPath)
        #expect(info.group == Self.group)
        #expect(info.appliedIndex == UInt64(source.log.count))
        #expect(info.points == UInt64(source.model.points.count))
        #expect(info.chunks >= 3)

        // A replica on another node with a neighbour group of its own.
        let replica = try Node(seed: 200 + seed, metric: metric)
        try Self.copy(Self.snapshotPath, from: source.fileSystem, to: replica.fileSystem)
        try replica.install()
        #expect(!replica.shard.needsSnapshot)
        #expect(replica.shard.appliedIndex == info.appliedIndex)
        #expect(replica.shard.rebuiltPoints == 0, "the replica loads the snapshot's index; it does not rebuild it")
        try ShardCheck.check(replica.shard, source.model, metric: metric, random: &random, context: "installed")
        try ShardCheck.check(replica.neighbour, replica.neighbourModel, metric: metric, random: &random, context: "replica's neighbour")
        try Self.expectSameReads(source.shard, replica.shard, dimension: source.configuration.dimension, random: &random)
        // Nothing staged is left, and only the snapshot's checkpoint.
        let names = try replica.fileSystem.list(Self.directory).sorted()
        #expect(names == [VectorState.indexFileName(info.appliedIndex), VectorState.keysFileName(info.appliedIndex)])

        // Power loss right after the install: everything it did is durable.
        let clone = replica.fileSystem.crashClone(seed: seed, options: CrashOptions(keepWriteProbability: 0))
        replica.engine.close()
        replica.fileSystem = clone
        replica.engine = try ShardFixture.openEngine(clone)
        replica.shard = try ShardFixture.openShard(group: Self.group, engine: replica.engine, fileSystem: clone, configuration: replica.configuration)
        #expect(replica.shard.appliedIndex == info.appliedIndex)
        #expect(replica.shard.replayFrom == info.appliedIndex)

        // The log goes on: both apply the next entries and still agree with the model.
        let before = source.log.count
        try source.applyNew(60, random: &random)
        try replica.shard.apply(Array(source.log[before...]))
        try ShardCheck.check(replica.shard, source.model, metric: metric, random: &random, context: "after more entries")
        try Self.expectSameReads(source.shard, replica.shard, dimension: source.configuration.dimension, random: &random)
    }

    @Test func anInstallReplacesAnOlderDivergentStateAndKeepsTheNeighbours() throws {
        var random = SeededRandom(seed: 5)
        let source = try Node(seed: 300, metric: .cosine)
        try source.applyNew(200, random: &random)
        try source.shard.exportSnapshot(to: Self.snapshotPath)
        // The replica's shard holds other points at a lower index (and checkpoints of them).
        let replica = try Node(seed: 301, metric: .cosine)
        try replica.applyNew(80, random: &random)
        try replica.shard.checkpoint()
        try replica.applyNew(10, random: &random)
        try replica.shard.checkpoint()
        try Self.copy(Self.snapshotPath, from: source.fileSystem, to: replica.fileSystem)
        try replica.install()
        try ShardCheck.check(replica.shard, source.model, metric: .cosine, random: &random, context: "replaced")
        try ShardCheck.check(replica.neighbour, replica.neighbourModel, metric: .cosine, random: &random, context: "neighbour")
        #expect(try replica.fileSystem.list(Self.directory).sorted() == [VectorState.indexFileName(200), VectorState.keysFileName(200)])
    }

    @Test func anEmptyShardHasASnapshotToo() throws {
        var random = SeededRandom(seed: 6)
        let source = try Node(seed: 400, metric: .euclid)
        // Upserts, then deletes of everything: applied index 2, no points.
        let keys = (0..<5).map { PointID.number(UInt64($0)).encodedKey }
        let upsert = ShardCommand.upsert(keys.map { ShardCommand.Point(key: $0, vector: [1, 2, 3, 4], payload: Array("{}".utf8)) })
        try source.shard.apply([(1, upsert.encode()), (2, ShardCommand.delete(keys: keys).encode())])
        let info = try source.shard.exportSnapshot(to: Self.snapshotPath)
        #expect(info.points == 0 && info.appliedIndex == 2)
        let replica = try Node(seed: 401, metric: .euclid)
        try replica.applyNew(1, random: &random)
        try Self.copy(Self.snapshotPath, from: source.fileSystem, to: replica.fileSystem)
        try replica.install()
        #expect(replica.shard.count == 0)
        #expect(try replica.shard.scroll(after: nil, limit: 10).points.isEmpty)
        #expect(replica.shard.appliedIndex == 2)
    }

    @Test func snapshotsThatDoNotFitAreRefusedAndChangeNothing() throws {
        var random = SeededRandom(seed: 7)
        let source = try Node(seed: 500, metric: .cosine)
        try source.applyNew(40, random: &random)
        try source.shard.exportSnapshot(to: Self.snapshotPath)
        let replica = try Node(seed: 501, metric: .cosine)
        try replica.applyNew(50, random: &random)
        try replica.shard.checkpoint()
        try Self.copy(Self.snapshotPath, from: source.fileSystem, to: replica.fileSystem)
        let files = try replica.fileSystem.list(Self.directory).sorted()

        func expectRefused(_ context: String, group: UInt64 = Self.group, configuration: HNSWConfiguration? = nil,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
            let error = Self.shardError {
                _ = try Shard.installSnapshot(from: Self.snapshotPath, group: group, directory: Self.directory, engine: replica.engine,
                                              fileSystem: replica.fileSystem, configuration: configuration ?? replica.configuration)
            }
            guard case .snapshot? = error else {
                Issue.record("\(context): \(String(describing: error)), expected a snapshot error", sourceLocation: sourceLocation)
                return
            }
            #expect(try replica.fileSystem.list(Self.directory).sorted() == files, "\(context): the shard's files changed", sourceLocation: sourceLocation)
        }
        // The snapshot (index 40) is older than what the replica's storage holds (50).
        try expectRefused("older")
        // Another group's snapshot.
        try expectRefused("another group", group: 4096)
        // Make the replica's shard older than the snapshot, then try other shapes.
        let fresh = try Node(seed: 502, metric: .cosine)
        try Self.copy(Self.snapshotPath, from: source.fileSystem, to: fresh.fileSystem)
        let freshFiles = try fresh.fileSystem.list(Self.directory).sorted()
        for configuration in [ShardFixture.configuration(.cosine, dimension: 8), ShardFixture.configuration(.euclid)] {
            let error = Self.shardError {
                _ = try Shard.installSnapshot(from: Self.snapshotPath, group: Self.group, directory: Self.directory, engine: fresh.engine,
                                              fileSystem: fresh.fileSystem, configuration: configuration)
            }
            guard case .snapshot? = error else {
                Issue.record("\(configuration): \(String(describing: error)), expected a snapshot error")
                continue
            }
            #expect(try fresh.fileSystem.list(Self.directory).sorted() == freshFiles, "\(configuration): the shard's files changed")
            #expect(fresh.engine.durableAppliedIndexes[Self.group] == nil, "\(configuration): the storage side changed")
        }
        // The refusals changed nothing: the replica still reads its own state and applies on.
        try ShardCheck.check(replica.shard, replica.model, metric: .cosine, random: &random, context: "after refusals")
        try replica.applyNew(5, random: &random)
        try ShardCheck.check(replica.shard, replica.model, metric: .cosine, random: &random, context: "applying on")
    }

    @Test func exportNeedsBothSidesAtOneIndex() throws {
        // After a crash the storage side may stand past the vector side until the log is replayed.
        var random = SeededRandom(seed: 8)
        let node = try Node(seed: 600, metric: .euclid)
        try node.applyNew(30, random: &random)
        try node.shard.checkpoint()
        try node.applyNew(30, random: &random)
        try node.engine.flush()
        let clone = node.fileSystem.crashClone(seed: 1, options: CrashOptions(keepWriteProbability: 0))
        node.engine.close()
        let engine = try ShardFixture.openEngine(clone)
        let shard = try ShardFixture.openShard(group: Self.group, engine: engine, fileSystem: clone, configuration: node.configuration)
        #expect(shard.appliedIndex == 60 && shard.replayFrom == 30)
        guard case .snapshot? = Self.shardError({ try shard.exportSnapshot(to: Self.snapshotPath) }) else {
            Issue.record("an export with the sides apart is not refused")
            return
        }
        try shard.apply(Array(node.log[30...]))
        let info = try shard.exportSnapshot(to: Self.snapshotPath)
        #expect(info.appliedIndex == 60)
    }

    @Test func everyDamagedOrTruncatedSnapshotIsRefusedAndChangesNothing() throws {
        var random = SeededRandom(seed: 9)
        let source = try Node(seed: 700, metric: .cosine)
        try source.applyNew(120, random: &random)
        try source.shard.exportSnapshot(to: Self.snapshotPath)
        let good = try Self.read(Self.snapshotPath, source.fileSystem)
        let replica = try Node(seed: 701, metric: .cosine)
        try replica.applyNew(40, random: &random)
        try replica.shard.checkpoint()
        let files = try replica.fileSystem.list(Self.directory).sorted()

        // Chunk boundaries, to cut there too.
        let reader = try ShardSnapshot.Reader(path: Self.snapshotPath, fileSystem: source.fileSystem)
        var boundaries: [Int] = [ShardSnapshot.headerBytes]
        while let chunk = try reader.next() { boundaries.append(Int(chunk.offset) + ShardSnapshot.chunkHeaderBytes + chunk.payload.count + 8) }
        #expect(boundaries.last == good.count)

        var damaged: [(String, [UInt8])] = []
        for (position, mask) in Mutation.flips(count: good.count, samples: 150, random: &random) {
            damaged.append(("flip \(mask) at \(position)", Mutation.flipped(good, at: position, mask: mask)))
        }
        for position in [0, 8, 16, 24, 32, 39, 40, 41, 44, good.count - 1] {
            damaged.append(("flip at \(position)", Mutation.flipped(good, at: position, mask: 0x10)))
        }
        for length in boundaries.dropLast() + (0..<40).map({ _ in Int.random(in: 0..<good.count, using: &random) }) {
            damaged.append(("cut to \(length)", Array(good[..<length])))
        }
        damaged.append(("a byte added", good + [0]))
        damaged.append(("an end chunk repeated", good + good[boundaries[boundaries.count - 2]...]))

        for (context, bytes) in damaged {
            try replica.fileSystem.writeAtomically(Self.snapshotPath, bytes)
            let error = Self.shardError {
                _ = try Shard.installSnapshot(from: Self.snapshotPath, group: Self.group, directory: Self.directory, engine: replica.engine,
                                              fileSystem: replica.fileSystem, configuration: replica.configuration)
            }
            guard case .corrupt(let path, _)? = error else {
                Issue.record("\(context): \(String(describing: error)), expected corrupt")
                continue
            }
            #expect(path == Self.snapshotPath, "\(context)")
            #expect(try replica.fileSystem.list(Self.directory).sorted() == files, "\(context): the shard's files changed")
        }
        try ShardCheck.check(replica.shard, replica.model, metric: .cosine, random: &random, context: "after every refusal")
        // The good one still installs.
        try replica.fileSystem.writeAtomically(Self.snapshotPath, good)
        try replica.install()
        try ShardCheck.check(replica.shard, source.model, metric: .cosine, random: &random, context: "installed")
    }

    /// The install dies at its nth file operation (that one and every later one fails), then the
    /// power goes. The next open finishes it (the storage side was complete), undoes it (the
    /// shard needs a snapshot, and a new install works), or finds the old state — never a mix.
    @Test func anInstallThatDiesAtAnyStepIsFinishedOrUndone() throws {
        var random = SeededRandom(seed: 10)
        let source = try Node(seed: 800, metric: .euclid)
        try source.applyNew(60, random: &random)
        let info = try source.shard.exportSnapshot(to: Self.snapshotPath)
        // The replica's state before the install, durable on a base file system.
        let base = try Node(seed: 801, metric: .euclid)
        try base.applyNew(25, random: &random)
        try base.shard.checkpoint()
        try base.engine.flush()
        try Self.copy(Self.snapshotPath, from: source.fileSystem, to: base.fileSystem)
        let durableBase = base.fileSystem.crashClone(seed: 0, options: CrashOptions(keepWriteProbability: 1))

        var outcomes: [String: Int] = [:]
        var step = 1
        while step < 2000 {
            defer { step += 1 }
            let memory = durableBase.crashClone(seed: 0, options: CrashOptions(keepWriteProbability: 1))
            let faulty = FaultInjectingFileSystem(wrapping: memory, seed: UInt64(step))
            let engine = try StorageEngine.open(directory: ShardFixture.engineDirectory, fileSystem: faulty, options: ShardFixture.storageOptions())
            faulty.setRules([FaultRule(Set(FileOperation.allCases), nthCall: step, andAfter: true, fault: .error(.io))])
            let installed = try? Shard.installSnapshot(from: Self.snapshotPath, group: Self.group, directory: Self.directory, engine: engine,
                                                       fileSystem: faulty, configuration: base.configuration)
            let died = faulty.injectedCount > 0
            engine.close()
            if !died {
                #expect(installed != nil, "step \(step): nothing failed, but the install did not finish")
                break
            }
            // Power loss, then a restart on what survived.
            let clone = memory.crashClone(seed: UInt64(step), options: CrashOptions(keepWriteProbability: 0.5))
            let reopened = try StorageEngine.open(directory: ShardFixture.engineDirectory, fileSystem: clone, options: ShardFixture.storageOptions())
            defer { reopened.close() }
            var shard = try ShardFixture.openShard(group: Self.group, engine: reopened, fileSystem: clone, configuration: base.configuration)
            let context = "died at step \(step)"
            if shard.needsSnapshot {
                outcomes["undone", default: 0] += 1
                #expect(shard.count == 0 && shard.appliedIndex == 0, "\(context): a shard that needs a snapshot holds points")
                #expect(throws: ShardError.needsSnapshot) { try shard.apply([(1000, [])]) }
                #expect(throws: ShardError.needsSnapshot) { try shard.get(PointID.number(1).encodedKey) }
                #expect(throws: ShardError.needsSnapshot) { try shard.scroll(after: nil, limit: 5) }
                #expect(throws: ShardError.needsSnapshot) { try shard.search([1, 2, 3, 4], k: 3) }
                shard = try Shard.installSnapshot(from: Self.snapshotPath, group: Self.group, directory: Self.directory, engine: reopened,
                                                  fileSystem: clone, configuration: base.configuration)
                try ShardCheck.check(shard, source.model, metric: .euclid, random: &random, context: "\(context), installed again")
            } else if (reopened.durableAppliedIndexes[Self.group] ?? 0) >= info.appliedIndex {
                outcomes["finished", default: 0] += 1
                #expect(shard.appliedIndex == info.appliedIndex && shard.replayFrom == info.appliedIndex, "\(context)")
                try ShardCheck.check(shard, source.model, metric: .euclid, random: &random, context: "\(context), finished")
            } else {
                outcomes["old state", default: 0] += 1
                #expect(shard.appliedIndex <= UInt64(base.log.count), "\(context)")
                try shard.apply(Array(base.log[Int(shard.replayFrom)...]))
                try ShardCheck.check(shard, base.model, metric: .euclid, random: &random, context: "\(context), old state")
            }
            try ShardCheck.check(try ShardFixture.openShard(group: Self.otherGroup, engine: reopened, fileSystem: clone, configuration: base.configuration),
                                 base.neighbourModel, metric: .euclid, random: &random, context: "\(context), neighbour")
        }
        #expect(step > 20, "the install took only \(step) file operations")
        // Every kind of outcome happened somewhere along the way.
        #expect(outcomes["undone", default: 0] > 0 && outcomes["finished", default: 0] > 0 && outcomes["old state", default: 0] > 0, "\(outcomes)")
    }

    /// A record the storage engine would not take is refused by the check, before the install
    /// changes anything (else it would fail half way and leave the shard needing a snapshot).
    @Test func aRecordTooLargeForTheEngineIsRefusedBeforeAnythingChanges() throws {
        var random = SeededRandom(seed: 11)
        let source = try Node(seed: 900, metric: .euclid)
        let key = PointID.number(1).encodedKey
        try source.shard.apply([(1, ShardCommand.upsert([.init(key: key, vector: [1, 2, 3, 4], payload: Array("{}".utf8))]).encode())])
        try source.shard.exportSnapshot(to: Self.snapshotPath)
        // The same snapshot with the point's payload grown past the engine's value limit.
        let big = PointRecord(vector: [1, 2, 3, 4], payload: Array("{\"p\":\"".utf8) + [UInt8](repeating: 0x61, count: StorageEngine.valueBytesLimit - 16) + Array("\"}".utf8))
        #expect(big.encode().count > StorageEngine.valueBytesLimit)
        let handle = try source.fileSystem.open("/node/big.vxsnap", options: [.read, .write, .create, .truncate])
        let writer = try ShardSnapshot.Writer(handle: handle, group: Self.group, applied: 1)
        #expect(try writer.addPoint(key: key, record: big.encode()))
        for (kind, name) in [(ShardSnapshot.ChunkKind.keysFile, VectorState.keysFileName(1)), (.indexFile, VectorState.indexFileName(1))] {
            let file = try source.fileSystem.open("\(Self.directory)/\(name)", options: .read)
            try writer.addFile(kind, from: file)
            file.close()
        }
        try writer.finish()
        handle.close()

        let replica = try Node(seed: 901, metric: .euclid)
        try Self.copy("/node/big.vxsnap", from: source.fileSystem, to: replica.fileSystem)
        let files = try replica.fileSystem.list(Self.directory).sorted()
        guard case .corrupt? = Self.shardError({ try replica.install() }) else {
            Issue.record("a snapshot with a record over the engine's limit is not refused as corrupt")
            return
        }
        #expect(try replica.fileSystem.list(Self.directory).sorted() == files)
        #expect(!replica.shard.needsSnapshot)
        try ShardCheck.check(replica.shard, replica.model, metric: .euclid, random: &random, context: "after the refusal")
    }

    /// Exports taken while another thread applies entries and checkpoints: each snapshot holds
    /// exactly the state at the index it names.
    @Test func exportsDuringAppliesAndCheckpointsHoldTheStateAtTheirIndex() throws {
        var random = SeededRandom(seed: 12)
        let source = try Node(seed: 1000, metric: .cosine)
        try source.applyNew(40, random: &random)
        // The log to come, generated up front; applied by another thread.
        var entries: [(index: UInt64, data: [UInt8])] = []
        for index in 41...400 { entries.append((UInt64(index), source.generator.entryData())) }
        let shard = source.shard
        let batches = stride(from: 0, to: entries.count, by: 4).map { Array(entries[$0..<min($0 + 4, entries.count)]) }
        let done = DispatchSemaphore(value: 0)
        let applier = Thread {
            defer { done.signal() }
            for (number, batch) in batches.enumerated() {
                do {
                    try shard.apply(batch)
                    if number % 7 == 0 { try shard.checkpoint() }
                } catch {
                    Issue.record("apply: \(error)")
                    return
                }
            }
        }
        applier.start()
        // Exports while the applier runs (whatever the interleaving, each must hold its index's
        // state), then one after it finished.
        var exported: [(path: String, info: ShardSnapshotInfo)] = []
        while !applier.isFinished && exported.count < 8 {
            let path = "/node/\(exported.count).vxsnap"
            exported.append((path, try shard.exportSnapshot(to: path)))
        }
        done.wait()
        exported.append(("/node/last.vxsnap", try shard.exportSnapshot(to: "/node/last.vxsnap")))
        #expect(exported.last?.info.appliedIndex == 400)
        let log = source.log + entries
        for (path, info) in exported {
            var model = ShardModel()
            for entry in log.prefix(Int(info.appliedIndex)) { model.apply(entry.data) }
            let replica = try Node(seed: 1001, metric: .cosine)
            try Self.copy(path, from: source.fileSystem, to: replica.fileSystem)
            try replica.install()
            #expect(replica.shard.appliedIndex == info.appliedIndex)
            try ShardCheck.check(replica.shard, model, metric: .cosine, random: &random, context: "snapshot at \(info.appliedIndex)")
        }
    }
}
