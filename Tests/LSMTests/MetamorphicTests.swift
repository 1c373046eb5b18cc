// Metamorphic tests: seeded random sequences of operations run against the storage engine and
// against a trivially correct model (a dictionary, sorted bytewise when scanned), which must agree
// on every read.
//
// Operations: put, delete, range delete (including empty and inverted ranges, which delete
// nothing and do not fail), atomic batches of mixed writes, synced writes, get, bounded scans
// forward and reverse with a limit (through `scan` and through `makeIterator`), snapshots (reads
// through a snapshot see the state of the moment it was taken, however much was written, flushed
// and compacted since), flush, compact, clean reopen, and crash-clone (power loss simulated by
// `MemoryFileSystem.crashClone`: synced bytes survive, unsynced writes are dropped or torn).
//
// Checked:
// - every read agrees with the model;
// - a clean reopen keeps everything (also when the machine loses power right after the close);
// - `.recordLog` mode: the state recovered after a crash is the model state after some write
//   between the last durable point (synced write, flush, compact, clean reopen, earlier
//   recovery) and the newest write — a prefix of the history, containing every synced write;
//   the sequence then continues from the recovered state;
// - `.external` mode (no WAL; the test plays the Raft log): after a crash the state is the model
//   state after the batch that carried applied index `durableAppliedIndexes[1]`, which is never
//   below what the engine reported as durable before the crash; replaying the later batches
//   brings the engine back to the newest state.
//
// Configurations (all with inline background work, so every run is deterministic): "tiny"
// (64-byte blocks, 1 KiB memtables and segments, deep levels, 4 KiB WAL segments, frequent
// manifest rewrites: writes themselves flush and compact all the time), "plain" (no block
// compression, small sizes) and "defaults".
//
// A failure names the configuration, the seed, the step and the operation. Replay one seed in
// every configuration (and in the external-WAL test) with
//     VECTRON_LSM_SEED=<seed> swift test --filter MetamorphicTests

import TestSupport
import Basics
import FileIOSim
import LSM
import StorageFormat
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite(.ownThread) struct MetamorphicTests {
    /// 170 × 3 configurations = 510 sequences in `.recordLog` mode (seeds 1…, 10001…, 20001…);
    /// 120 in `.external` mode (seeds 30001…).
    static let sequencesPerConfiguration = 170
    static let externalSequences = 120

    @Test(arguments: MetamorphicTests.EngineConfiguration.all)
    func ownWriteAheadLogMatchesModel(configuration: EngineConfiguration) {
        let first = configuration.firstSeed
        let seeds = Self.seeds(default: first...(first + UInt64(Self.sequencesPerConfiguration) - 1))
        let totals = Self.runSequences(configuration, external: false, seeds: seeds)
        print("MetamorphicTests [\(configuration.name), recordLog]: \(totals)")
        guard seeds.count > 1, totals.failures == 0 else { return }
        // The sequences must actually exercise what they claim to.
        #expect(totals.sequences == seeds.count)
        #expect(totals.crashes > seeds.count, "[\(configuration.name)] too few crashes: \(totals.crashes)")
        #expect(totals.reopens > 0, "[\(configuration.name)] no reopen")
        if configuration.name == EngineConfiguration.tiny.name {
            #expect(totals.flushes > UInt64(seeds.count), "[tiny] too few flushes: \(totals.flushes)")
            #expect(totals.compactions > UInt64(seeds.count), "[tiny] too few compactions: \(totals.compactions)")
        }
    }

    @Test func externalWriteAheadLogReplaysFromDurableAppliedIndex() {
        let seeds = Self.seeds(default: 30_001...UInt64(30_000 + Self.externalSequences))
        let configuration = EngineConfiguration.tiny
        let totals = Self.runSequences(configuration, external: true, seeds: seeds)
        print("MetamorphicTests [\(configuration.name), external]: \(totals)")
        guard seeds.count > 1, totals.failures == 0 else { return }
        #expect(totals.sequences == seeds.count)
        #expect(totals.crashes > seeds.count, "[tiny, external] too few crashes: \(totals.crashes)")
        #expect(totals.replayedWrites > 0, "[tiny, external] no crash ever needed a replay")
        #expect(totals.flushes > UInt64(seeds.count), "[tiny, external] too few flushes: \(totals.flushes)")
    }

    /// The seeds to run: just `VECTRON_LSM_SEED` when it is set, else `range`.
    static func seeds(default range: ClosedRange<UInt64>) -> [UInt64] {
        if let raw = getenv("VECTRON_LSM_SEED"), let seed = UInt64(String(cString: raw)) { return [seed] }
        return Array(range)
    }

    /// Runs one sequence per seed; stops after three failing sequences (each failure has already
    /// been recorded with its seed).
    static func runSequences(_ configuration: EngineConfiguration, external: Bool, seeds: [UInt64]) -> Counters {
        var totals = Counters()
        for seed in seeds {
            let run = SequenceRun(configuration: configuration, external: external, seed: seed)
            do {
                try run.run()
            } catch {
                if !(error is SequenceRun.Abort) { Issue.record("\(run.context): unexpected error: \(error)") }
                run.abandon()
                totals.failures += 1
            }
            totals.add(run.counters)
            if totals.failures >= 3 {
                Issue.record("[\(configuration.name)] stopping after \(totals.failures) failing sequences")
                break
            }
        }
        return totals
    }
}

// MARK: - Configurations

extension MetamorphicTests {
    struct EngineConfiguration: Sendable, CustomTestStringConvertible {
        let name: String
        let options: StorageOptions
        /// Each configuration runs its own seeds (so its own operation sequences).
        let firstSeed: UInt64
        var testDescription: String { name }

        /// Everything as small as allowed: blocks of a few entries, a flush every few dozen
        /// writes, compactions through five levels, WAL segments and manifests rotated often.
        static let tiny: EngineConfiguration = {
            var options = StorageOptions()
            options.background = .inline
            options.memtableBytes = 1024
            options.blockBytes = 64
            options.restartInterval = 2
            options.segmentBytesTarget = 1024
            options.levelBaseBytes = 4096
            options.levelSizeRatio = 2
            options.levelCount = 5
            options.level0CompactionTrigger = 2
            options.blockCacheBytes = 4096
            options.walSegmentBytes = 4096
            options.manifestEditsMax = 5
            return EngineConfiguration(name: "tiny", options: options, firstSeed: 1)
        }()

        /// No block compression, moderately small sizes.
        static let plain: EngineConfiguration = {
            var options = StorageOptions()
            options.background = .inline
            options.compression = .plain
            options.memtableBytes = 4096
            options.blockBytes = 256
            options.restartInterval = 4
            options.segmentBytesTarget = 4096
            options.levelBaseBytes = 16 << 10
            options.level0CompactionTrigger = 3
            options.blockCacheBytes = 16 << 10
            options.walSegmentBytes = 16 << 10
            options.manifestEditsMax = 20
            return EngineConfiguration(name: "plain", options: options, firstSeed: 10_001)
        }()

        /// The server's defaults (only background work inline, for determinism): everything
        /// stays in the memtable until an explicit flush or compact.
        static let defaults: EngineConfiguration = {
            var options = StorageOptions()
            options.background = .inline
            return EngineConfiguration(name: "defaults", options: options, firstSeed: 20_001)
        }()

        static let all: [EngineConfiguration] = [tiny, plain, defaults]
    }

    struct Counters: CustomStringConvertible {
        var sequences = 0
        var operations = 0
        var crashes = 0
        /// Writes (recordLog mode) lost by crashes: unsynced, so allowed to go.
        var lostWrites: UInt64 = 0
        /// Batches (external mode) replayed after crashes and reopens.
        var replayedWrites = 0
        var reopens = 0
        var flushes: UInt64 = 0
        var compactions: UInt64 = 0
        var failures = 0

        mutating func add(_ other: Counters) {
            sequences += other.sequences
            operations += other.operations
            crashes += other.crashes
            lostWrites += other.lostWrites
            replayedWrites += other.replayedWrites
            reopens += other.reopens
            flushes += other.flushes
            compactions += other.compactions
            failures += other.failures
        }

        var description: String {
            "\(sequences) sequences, \(operations) operations, \(crashes) crashes (\(lostWrites) unsynced writes lost, "
                + "\(replayedWrites) batches replayed), \(reopens) reopens, \(flushes) flushes, \(compactions) compactions, "
                + "\(failures) failures"
        }
    }
}

// MARK: - The model

extension MetamorphicTests {
    /// Key → value; the order is bytewise, applied when scanning.
    typealias State = [[UInt8]: [UInt8]]
    typealias Entry = (key: [UInt8], value: [UInt8])

    enum Mutation: CustomStringConvertible {
        case put([UInt8], [UInt8])
        case delete([UInt8])
        /// Deletes `lower ..< upper`; nothing when `lower >= upper`.
        case deleteRange([UInt8], [UInt8])

        var description: String {
            switch self {
            case let .put(key, value): return "put \(Model.hex(key)) = \(Model.hex(value))"
            case let .delete(key): return "delete \(Model.hex(key))"
            case let .deleteRange(lower, upper): return "deleteRange \(Model.hex(lower)) ..< \(Model.hex(upper))"
            }
        }
    }

    enum Model {
        static func less(_ a: [UInt8], _ b: [UInt8]) -> Bool { a.lexicographicallyPrecedes(b) }

        struct Problem: Error { var text: String }

        /// The state a full scan describes, or where the scan is not strictly ascending.
        static func state(ofScan entries: [(key: [UInt8], value: [UInt8])]) -> Result<State, Problem> {
            var state = State(minimumCapacity: entries.count)
            for (index, entry) in entries.enumerated() {
                if index > 0 && !less(entries[index - 1].key, entry.key) {
                    return .failure(Problem(text: "full scan not strictly ascending at entry \(index): \(hex(entries[index - 1].key)) then \(hex(entry.key))"))
                }
                state[entry.key] = entry.value
            }
            return .success(state)
        }

        static func contains(_ key: [UInt8], lower: [UInt8]?, upper: [UInt8]?) -> Bool {
            if let lower, less(key, lower) { return false }
            if let upper, !less(key, upper) { return false }
            return true
        }

        /// Applies one write (a single operation or a batch, in order).
        static func apply(_ write: [Mutation], to state: inout State) {
            for mutation in write {
                switch mutation {
                case let .put(key, value): state[key] = value
                case let .delete(key): state[key] = nil
                case let .deleteRange(lower, upper):
                    guard less(lower, upper) else { continue }
                    state = state.filter { !contains($0.key, lower: lower, upper: upper) }
                }
            }
        }

        /// What a scan of `state` must return.
        static func scan(_ state: State, lower: [UInt8]?, upper: [UInt8]?, reverse: Bool, limit: Int) -> [Entry] {
            var keys = state.keys.filter { contains($0, lower: lower, upper: upper) }
            keys.sort(by: less)
            if reverse { keys.reverse() }
            return keys.prefix(limit).map { (key: $0, value: state[$0]!) }
        }

        /// Why two scan results differ, or nil if they are equal.
        static func difference(_ actual: [Entry], _ expected: [Entry]) -> String? {
            let common = min(actual.count, expected.count)
            for i in 0..<common where actual[i].key != expected[i].key || actual[i].value != expected[i].value {
                return "entry \(i): engine \(hex(actual[i].key)) = \(hex(actual[i].value)), "
                    + "model \(hex(expected[i].key)) = \(hex(expected[i].value))"
            }
            if actual.count > expected.count {
                return "engine returned \(actual.count) entries, model \(expected.count); first extra: \(hex(actual[common].key))"
            }
            if actual.count < expected.count {
                return "engine returned \(actual.count) entries, model \(expected.count); first missing: \(hex(expected[common].key))"
            }
            return nil
        }

        /// A short description of how two states differ.
        static func difference(_ actual: State, _ expected: State) -> String {
            let keys = Set(actual.keys).union(expected.keys).filter { actual[$0] != expected[$0] }.sorted(by: less)
            let shown = keys.prefix(5).map { "\(hex($0)): engine \(show(actual[$0])), model \(show(expected[$0]))" }
            return "\(keys.count) keys differ (engine \(actual.count) keys, model \(expected.count))"
                + (shown.isEmpty ? "" : "; " + shown.joined(separator: "; "))
        }

        static func hex(_ bytes: [UInt8]) -> String {
            if bytes.isEmpty { return "<empty>" }
            let digits = Array("0123456789abcdef")
            var text = ""
            for byte in bytes.prefix(12) {
                text.append(digits[Int(byte >> 4)])
                text.append(digits[Int(byte & 15)])
            }
            if bytes.count > 12 { text += "…(\(bytes.count) bytes)" }
            return text
        }

        static func show(_ value: [UInt8]?) -> String { value.map(hex) ?? "nil" }
    }

    /// The model states a crash may go back to: the state after write `baseIndex` (the newest
    /// known durable point), the writes since then, and the newest state. Write numbers are the
    /// applied indexes in external mode.
    struct History {
        private(set) var base: State = [:]
        private(set) var baseIndex: UInt64 = 0
        /// Writes `baseIndex + 1 ... latestIndex`.
        private(set) var pendingWrites: [[Mutation]] = []
        private(set) var current: State = [:]

        var latestIndex: UInt64 { baseIndex + UInt64(pendingWrites.count) }

        mutating func record(_ write: [Mutation]) {
            pendingWrites.append(write)
            Model.apply(write, to: &current)
        }

        /// Everything written so far is durable.
        mutating func markDurable() { advanceBase(to: latestIndex) }

        /// Writes up to `index` are durable. Callers check `baseIndex...latestIndex` first.
        mutating func advanceBase(to index: UInt64) {
            precondition(index >= baseIndex && index <= latestIndex, "durable point outside the history")
            let count = Int(index - baseIndex)
            if count == pendingWrites.count {
                base = current
            } else {
                for write in pendingWrites.prefix(count) { Model.apply(write, to: &base) }
            }
            pendingWrites.removeFirst(count)
            baseIndex = index
        }

        /// The state after write `index` (in `baseIndex...latestIndex`).
        func state(at index: UInt64) -> State {
            let count = Int(index - baseIndex)
            if count == pendingWrites.count { return current }
            var state = base
            for write in pendingWrites.prefix(count) { Model.apply(write, to: &state) }
            return state
        }

        /// The writes after `index` (in `baseIndex...latestIndex`).
        func writes(after index: UInt64) -> ArraySlice<[Mutation]> {
            pendingWrites[Int(index - baseIndex)...]
        }

        /// The newest write number in `baseIndex...latestIndex` after which the model state
        /// equals `actual`, or nil if there is none.
        func newestMatch(_ actual: State) -> UInt64? {
            if actual == current { return latestIndex }
            var state = base
            var match: UInt64? = state == actual ? baseIndex : nil
            for (offset, write) in pendingWrites.enumerated().dropLast() {
                Model.apply(write, to: &state)
                if state == actual { match = baseIndex + UInt64(offset) + 1 }
            }
            return match
        }

        /// The writes after `index` are gone (lost by a crash).
        mutating func rollBack(to index: UInt64) {
            current = state(at: index)
            pendingWrites.removeLast(pendingWrites.count - Int(index - baseIndex))
        }
    }
}

// MARK: - One sequence

extension MetamorphicTests {
    final class SequenceRun {
        /// Thrown after a failure has been recorded, to end the sequence.
        struct Abort: Error {}

        static let directory = "/db"
        /// Key bytes: the extremes and a few in between; keys are 1–3 of them (or empty), so
        /// overwrites, deletes and range deletes keep hitting live keys.
        static let keyBytes: [UInt8] = [0x00, 0x01, 0x61, 0x62, 0xFE, 0xFF]
        static let snapshotsMax = 4

        let configuration: EngineConfiguration
        let external: Bool
        let seed: UInt64
        let options: StorageOptions
        var random: SeededRandom
        var fileSystem = MemoryFileSystem()
        var engine: StorageEngine!
        var history = History()
        /// Open snapshots with the model state at the moment each was taken.
        var snapshots: [(handle: LSM.Snapshot, state: State)] = []
        var lastSnapshotSequence: UInt64 = 0
        var step = 0
        var operation = "open"
        var counters = Counters()

        init(configuration: EngineConfiguration, external: Bool, seed: UInt64) {
            self.configuration = configuration
            self.external = external
            self.seed = seed
            var options = configuration.options
            options.walMode = external ? .external : .recordLog
            self.options = options
            random = SeededRandom(seed: seed)
        }

        /// Names the sequence, step and operation; part of every failure message.
        var context: String {
            "[\(configuration.name)\(external ? ", external WAL" : "") seed \(seed) step \(step): \(operation)] "
                + "(replay: VECTRON_LSM_SEED=\(seed) swift test --filter MetamorphicTests)"
        }

        func fail(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Never {
            Issue.record("\(context) \(message)", sourceLocation: sourceLocation)
            throw Abort()
        }

        func check(_ condition: Bool, _ message: @autoclosure () -> String,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
            if !condition { try fail(message(), sourceLocation: sourceLocation) }
        }

        // MARK: Driver

        func run() throws {
            try fileSystem.createDirectory(Self.directory)
            engine = try openEngine()
            let steps = Int.random(in: 60...200, using: &random)
            for index in 0..<steps {
                step = index
                try randomStep()
            }
            step = steps
            operation = "final check"
            try checkFullState()
            // End with a crash or a clean reopen: the final state must survive it too.
            if random.chance(0.5) { try crash() } else { try reopen() }
            operation = "final check after \(operation)"
            try checkFullState()
            collectStatistics()
            releaseSnapshots()
            engine.close()
            engine = nil
            counters.sequences += 1
            counters.operations += steps
        }

        /// After a failure: let go of the engine.
        func abandon() {
            releaseSnapshots()
            engine?.close()
            engine = nil
        }

        func randomStep() throws {
            switch Int.random(in: 0..<1000, using: &random) {
            case ..<330:
                try write([.put(randomKey(), randomValue(allowLarge: true))])
            case ..<410:
                try write([.delete(randomKey())])
            case ..<460:
                let (lower, upper) = randomRange()
                try write([.deleteRange(lower, upper)])
            case ..<560:
                try write(randomBatch(), asBatch: true)
            case ..<680:
                try checkGet(snapshot: nil)
            case ..<780:
                try checkScan(snapshot: nil)
            case ..<810:
                try takeSnapshot()
            case ..<870:
                guard !snapshots.isEmpty else { return try checkGet(snapshot: nil) }
                let which = Int.random(in: 0..<snapshots.count, using: &random)
                if random.chance(0.5) { try checkGet(snapshot: which) } else { try checkScan(snapshot: which) }
            case ..<885:
                if !snapshots.isEmpty { releaseSnapshot(at: Int.random(in: 0..<snapshots.count, using: &random)) }
            case ..<910:
                try flushOrCompact(compact: false)
            case ..<925:
                try flushOrCompact(compact: true)
            case ..<945:
                try reopen()
            case ..<975:
                try crash()
            default:
                operation = "full check"
                try checkFullState()
            }
        }

        // MARK: Random inputs

        func randomKey() -> [UInt8] {
            if random.chance(0.02) { return [] }
            let length = Int.random(in: 1...3, using: &random)
            return (0..<length).map { _ in Self.keyBytes[Int.random(in: 0..<Self.keyBytes.count, using: &random)] }
        }

        /// 0–40 bytes, now and then a few hundred; often one repeated byte (compressible).
        func randomValue(allowLarge: Bool) -> [UInt8] {
            let count = allowLarge && random.chance(0.03)
                ? Int.random(in: 100...600, using: &random)
                : Int.random(in: 0...40, using: &random)
            if random.chance(0.4) { return [UInt8](repeating: UInt8(truncatingIfNeeded: random.next()), count: count) }
            return random.bytes(count)
        }

        /// Usually `lower <= upper`; sometimes inverted, which must delete / find nothing.
        func randomRange() -> ([UInt8], [UInt8]) {
            var lower = randomKey(), upper = randomKey()
            // Put them in order, except 10% of the time when they are put out of order.
            if Model.less(upper, lower) != random.chance(0.1) { swap(&lower, &upper) }
            return (lower, upper)
        }

        func randomBatch() -> [Mutation] {
            (0..<Int.random(in: 1...6, using: &random)).map { _ in
                switch Int.random(in: 0..<10, using: &random) {
                case ..<7: return .put(randomKey(), randomValue(allowLarge: false))
                case ..<9: return .delete(randomKey())
                default:
                    let (lower, upper) = randomRange()
                    return .deleteRange(lower, upper)
                }
            }
        }

        static func batch(_ mutations: [Mutation], appliedIndex: UInt64?) -> WriteBatch {
            var batch = WriteBatch()
            for mutation in mutations {
                switch mutation {
                case let .put(key, value): batch.put(key, value)
                case let .delete(key): batch.delete(key)
                case let .deleteRange(lower, upper): batch.deleteRange(from: lower, to: upper)
                }
            }
            if let appliedIndex { batch.setAppliedIndex(stream: 1, index: appliedIndex) }
            return batch
        }

        // MARK: Writes

        /// One write: a single operation, or a batch. In external mode every write is a batch
        /// carrying the next applied index; in recordLog mode some writes are synced.
        func write(_ mutations: [Mutation], asBatch: Bool = false) throws {
            let description = mutations.count == 1 && !asBatch
                ? mutations[0].description
                : "batch [" + mutations.map(\.description).joined(separator: ", ") + "]"
            if external {
                let index = history.latestIndex + 1
                operation = "\(description) (applied index \(index))"
                try engine.write(Self.batch(mutations, appliedIndex: index))
                history.record(mutations)
                return
            }
            let sync = random.chance(0.06)
            operation = description + (sync ? " (sync)" : "")
            if asBatch || mutations.count != 1 {
                try engine.write(Self.batch(mutations, appliedIndex: nil), sync: sync)
            } else {
                switch mutations[0] {
                case let .put(key, value): try engine.put(key, value, sync: sync)
                case let .delete(key): try engine.delete(key, sync: sync)
                case let .deleteRange(lower, upper): try engine.deleteRange(from: lower, to: upper, sync: sync)
                }
            }
            history.record(mutations)
            if sync { history.markDurable() }
        }

        func flushOrCompact(compact: Bool) throws {
            operation = compact ? "compact" : "flush"
            if compact { try engine.compact() } else { try engine.flush() }
            if external {
                let durable = engine.durableAppliedIndexes[1] ?? 0
                try check(durable == history.latestIndex,
                          "after \(operation), durableAppliedIndexes[1] is \(durable), the newest batch is \(history.latestIndex)")
            }
            history.markDurable()
            if random.chance(0.3) { try checkFullState() }
        }

        // MARK: Reads

        /// The state and snapshot handle to read: the newest state, or a snapshot's.
        func readTarget(_ snapshot: Int?) -> (handle: LSM.Snapshot?, state: State, name: String) {
            guard let snapshot else { return (nil, history.current, "") }
            return (snapshots[snapshot].handle, snapshots[snapshot].state, " through snapshot \(snapshots[snapshot].handle.sequence)")
        }

        func checkGet(snapshot: Int?) throws {
            let key = randomKey()
            let target = readTarget(snapshot)
            operation = "get \(Model.hex(key))\(target.name)"
            let value = try engine.get(key, snapshot: target.handle)
            try check(value == target.state[key], "engine \(Model.show(value)), model \(Model.show(target.state[key]))")
        }

        func checkScan(snapshot: Int?) throws {
            var lower = random.chance(0.6) ? randomKey() : nil
            var upper = random.chance(0.6) ? randomKey() : nil
            if let l = lower, let u = upper, Model.less(u, l), random.chance(0.9) { (lower, upper) = (u, l) }
            let reverse = random.chance(0.5)
            let limit = random.chance(0.5) ? Int.max : Int.random(in: 1...20, using: &random)
            let useIterator = random.chance(0.4)
            let target = readTarget(snapshot)
            operation = "\(useIterator ? "iterate" : "scan") \(lower.map(Model.hex) ?? "-") ..< \(upper.map(Model.hex) ?? "-")"
                + "\(reverse ? " reverse" : "")\(limit == .max ? "" : " limit \(limit)")\(target.name)"
            var actual: [Entry] = []
            if useIterator {
                let iterator = try engine.makeIterator(lower: lower, upper: upper, reverse: reverse, snapshot: target.handle)
                while actual.count < limit, let entry = try iterator.next() { actual.append(entry) }
            } else {
                actual = try engine.scan(lower: lower, upper: upper, reverse: reverse, snapshot: target.handle, limit: limit)
            }
            let expected = Model.scan(target.state, lower: lower, upper: upper, reverse: reverse, limit: limit)
            if let problem = Model.difference(actual, expected) { try fail(problem) }
        }

        /// A full scan (forward or reverse) equals the newest model state.
        func checkFullState() throws {
            let reverse = random.chance(0.3)
            let actual = try engine.scan(reverse: reverse)
            let expected = Model.scan(history.current, lower: nil, upper: nil, reverse: reverse, limit: .max)
            if let problem = Model.difference(actual, expected) { try fail("full \(reverse ? "reverse " : "")scan: \(problem)") }
        }

        /// The engine's whole state, checking that a full scan is strictly ascending.
        func engineState() throws -> State {
            switch Model.state(ofScan: try engine.scan()) {
            case let .success(state): return state
            case let .failure(problem): try fail(problem.text)
            }
        }

        // MARK: Snapshots

        func takeSnapshot() throws {
            if snapshots.count >= Self.snapshotsMax { releaseSnapshot(at: Int.random(in: 0..<snapshots.count, using: &random)) }
            operation = "snapshot"
            let handle = engine.snapshot()
            try check(handle.sequence >= lastSnapshotSequence,
                      "snapshot sequence \(handle.sequence) below the previous snapshot's \(lastSnapshotSequence)")
            lastSnapshotSequence = handle.sequence
            snapshots.append((handle: handle, state: history.current))
        }

        func releaseSnapshot(at index: Int) {
            operation = "release snapshot \(snapshots[index].handle.sequence)"
            snapshots.remove(at: index).handle.release()
        }

        /// Before the engine closes: its snapshots die with it.
        func releaseSnapshots() {
            for snapshot in snapshots { snapshot.handle.release() }
            snapshots = []
        }

        // MARK: Reopen and crash

        func openEngine() throws -> StorageEngine {
            lastSnapshotSequence = 0
            return try StorageEngine.open(directory: Self.directory, fileSystem: fileSystem, options: options)
        }

        func collectStatistics() {
            let statistics = engine.statistics
            counters.flushes += statistics.flushes
            counters.compactions += statistics.compactions
        }

        /// Clean close and open. Sometimes the machine also loses power right after the close,
        /// keeping no unsynced byte: a clean close must have left nothing unsynced that matters.
        func reopen() throws {
            operation = "reopen"
            collectStatistics()
            releaseSnapshots()
            engine.close()
            if random.chance(0.3) {
                operation = "reopen after a power loss following the close"
                fileSystem = fileSystem.crashClone(seed: random.next(), options: CrashOptions(keepWriteProbability: 0))
            }
            engine = try openEngine()
            counters.reopens += 1
            if external {
                // Without a WAL a close need not flush: recover like after a crash.
                try recoverExternal()
            } else {
                try checkFullState()
                history.markDurable()
            }
        }

        /// Power loss now; the old engine is closed (on the old file system) and a new one opened
        /// on what the crash left.
        func crash() throws {
            let keep = [0, 0.5, 1][Int.random(in: 0..<3, using: &random)]
            let crashOptions = CrashOptions(keepWriteProbability: keep, tearProbability: 0.5, zeroFillTornProbability: 0.3)
            operation = "crash (keeping unsynced writes with probability \(keep))"
            if external {
                // What the engine reports as durable must survive: it is a lower bound.
                let durable = engine.durableAppliedIndexes[1] ?? 0
                try check(durable >= history.baseIndex && durable <= history.latestIndex,
                          "durableAppliedIndexes[1] is \(durable), outside \(history.baseIndex)...\(history.latestIndex)")
                history.advanceBase(to: durable)
            }
            let clone = fileSystem.crashClone(seed: random.next(), options: crashOptions)
            collectStatistics()
            releaseSnapshots()
            engine.close()
            fileSystem = clone
            engine = try openEngine()
            counters.crashes += 1
            if external { return try recoverExternal() }

            let recovered = try engineState()
            guard let match = history.newestMatch(recovered) else {
                try fail("recovered state is not the state after any write from the durable point (write \(history.baseIndex)) "
                    + "to the newest (write \(history.latestIndex)); against the durable point: "
                    + "\(Model.difference(recovered, history.base)); against the newest: \(Model.difference(recovered, history.current))")
            }
            counters.lostWrites += history.latestIndex - match
            // The writes after `match` are lost; what was recovered is on disk and must stay.
            history.rollBack(to: match)
            history.markDurable()
        }

        /// External mode after an open: the state is the one after the batch carrying
        /// `durableAppliedIndexes[1]`; replay the later batches (as Raft would) and check the
        /// newest state is back.
        func recoverExternal() throws {
            let recoveredIndex = engine.durableAppliedIndexes[1] ?? 0
            try check(recoveredIndex >= history.baseIndex && recoveredIndex <= history.latestIndex,
                      "recovered durableAppliedIndexes[1] is \(recoveredIndex), outside the durable point \(history.baseIndex) "
                          + "... newest batch \(history.latestIndex)")
            let recovered = try engineState()
            let expected = history.state(at: recoveredIndex)
            try check(recovered == expected,
                      "recovered state is not the state after batch \(recoveredIndex): \(Model.difference(recovered, expected))")
            let replay = Array(history.writes(after: recoveredIndex))
            for (offset, write) in replay.enumerated() {
                let index = recoveredIndex + UInt64(offset) + 1
                operation = "replay batch \(index) after recovery at \(recoveredIndex)"
                try engine.write(Self.batch(write, appliedIndex: index))
            }
            counters.replayedWrites += replay.count
            operation = "check after replaying \(replay.count) batches from \(recoveredIndex)"
            try checkFullState()
            let durable = engine.durableAppliedIndexes[1] ?? 0
            try check(durable >= recoveredIndex && durable <= history.latestIndex,
                      "after the replay durableAppliedIndexes[1] is \(durable), outside \(recoveredIndex)...\(history.latestIndex)")
            history.advanceBase(to: durable)
        }
    }
}
