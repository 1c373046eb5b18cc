// Fault and corruption tests of the storage engine.
//
// `LSMFaultTests`: a seeded workload runs on a `FaultInjectingFileSystem` over a
// `MemoryFileSystem`, and at a random moment an EIO or ENOSPC is armed on writes and/or syncs of
// segment files, manifest record-log files or CURRENT (its `.tmp`), so that it hits a flush, a
// compaction or a manifest rewrite. Checked, per seed:
// - the failing call throws the injected I/O error as a typed `StorageError`;
// - the engine, still open, reads every key correctly (all acknowledged writes; the write whose
//   call failed may or may not be visible: it was never acknowledged), and refuses writes,
//   flushes and compactions with `.failed`;
// - after a clean close, the database reopens (faults removed) with exactly the state the open
//   engine showed, also after a power loss right after the close; after a power loss at the
//   moment of the failure, it reopens with the model state after some write from the last
//   durable point (synced write, successful flush or compaction) to the newest;
// - each recovered database has exactly the segment files its statistics count, one manifest,
//   a CURRENT naming it, accepts new writes, and survives a second reopen.
// Expectations that do not end a seed (the error kind, `.failed` refusals) are tallied and
// reported once per kind with example seeds. Replay one seed with
//     VECTRON_FAULT_SEED=<seed> swift test --filter LSMFaultTests
//
// `LSMCorruptionTests`: a small database (several segments on several levels, LZ4 and plain
// blocks) is built and closed; then one byte at a time is flipped in a copy of it and the copy
// is opened and read back (every key with `get`, full forward and reverse scans through
// iterators). Segments are opened eagerly at engine open, which verifies the footer and the
// filter, properties and index blocks (and their trailers); data blocks are verified when read.
// So: a flip in the footer or a meta block must fail the open with `.corruption`; a flip in a data
// block or its trailer must let the open succeed and fail a read with `.corruption` naming the
// file. No read may ever return wrong data. Flips in the manifest's record-log segment and in
// CURRENT must fail the open with a typed error — except in the newest manifest record, which
// record-log recovery cannot tell from a torn tail (see `manifestFlipsAreDetected`).

import TestSupport
import Basics
import FileIO
import FileIOSim
import LSM
import RecordLog
import StorageFormat
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Shared helpers

/// A durable copy of every file and directory under `root` (locks are not copied).
func copyDatabase(_ source: MemoryFileSystem, root: String) -> MemoryFileSystem {
    let copy = MemoryFileSystem()
    func walk(_ directory: String) {
        try? copy.createDirectory(directory)
        for name in (try? source.list(directory)) ?? [] {
            let path = joinPath(directory, name)
            if source.isDirectory(path) {
                walk(path)
            } else if let bytes = source.contents(of: path) {
                copy.setContents(of: path, bytes)
            }
        }
    }
    walk(root)
    return copy
}

/// A short name for an error's case (for tallies).
func errorCase(_ error: StorageError) -> String {
    switch error {
    case .invalidArgument: return "invalidArgument"
    case let .io(io): return "io(\(io.kind))"
    case .corruption: return "corruption"
    case .inconsistent: return "inconsistent"
    case .locked: return "locked"
    case .closed: return "closed"
    case .failed: return "failed"
    case let .log(log):
        switch log {
        case let .io(io): return "log.io(\(io.kind))"
        case .corruption: return "log.corruption"
        case let .failed(io): return "log.failed(\(io.kind))"
        case .closed: return "log.closed"
        case .invalidArgument: return "log.invalidArgument"
        case .locked: return "log.locked"
        }
    }
}

// MARK: - Injected I/O errors

@Suite("Injected EIO/ENOSPC during flush or compaction leave the database readable and consistent after reopen", .ownThread)
struct LSMFaultTests {
    static let seedCount: UInt64 = 80

    typealias State = MetamorphicTests.State
    typealias Mutation = MetamorphicTests.Mutation
    typealias Model = MetamorphicTests.Model
    typealias History = MetamorphicTests.History

    @Test func faultsDuringFlushAndCompaction() {
        let seeds: [UInt64]
        if let raw = getenv("VECTRON_FAULT_SEED"), let seed = UInt64(String(cString: raw)) { seeds = [seed] } else { seeds = Array(1...Self.seedCount) }
        var totals = Totals()
        for seed in seeds {
            let run = FaultRun(seed: seed)
            do {
                try run.run()
            } catch {
                if !(error is FaultRun.Abort) { Issue.record("\(run.context): unexpected error: \(error)") }
                run.abandon()
                totals.failures += 1
            }
            totals.add(run)
            if totals.failures >= 5 {
                Issue.record("stopping after \(totals.failures) failing seeds")
                break
            }
        }
        print("LSMFaultTests: \(totals)")
        // Expectations that do not stop a seed, reported once per kind with example seeds.
        for (finding, examples) in totals.findings.sorted(by: { $0.key < $1.key }) {
            Issue.record("\(finding): \(examples.count) of \(totals.seeds) seeds, e.g. \(examples.prefix(3).joined(separator: " | "))")
        }
        guard seeds.count > 1, totals.failures == 0 else { return }
        // The seeds must exercise what they claim to.
        #expect(totals.faultsHit * 10 >= totals.seeds * 8, "too few seeds hit their fault: \(totals.faultsHit) of \(totals.seeds)")
        for target in FaultRun.targets.map(\.name) {
            #expect((totals.failingCallsByTarget[target] ?? 0) > 0, "no fault on \(target) ever failed a call")
        }
        for call in ["write", "flush", "compact"] {
            #expect((totals.failingCallsByOperation[call] ?? 0) > 0, "no \(call) call ever failed")
        }
        #expect(totals.lostWrites > 0, "no power loss ever lost an unsynced write")
    }

    struct Totals: CustomStringConvertible {
        var seeds = 0
        var failures = 0
        var faultsHit = 0
        var failingCallsByTarget: [String: Int] = [:]
        var failingCallsByOperation: [String: Int] = [:]
        var errors: [String: Int] = [:]
        var lostWrites: UInt64 = 0
        var recoveries = 0
        var flushes: UInt64 = 0
        var compactions: UInt64 = 0
        var findings: [String: [String]] = [:]

        mutating func add(_ run: FaultRun) {
            seeds += 1
            if run.firstError != nil {
                faultsHit += 1
                failingCallsByTarget[run.target.name, default: 0] += 1
                failingCallsByOperation[run.failedCall, default: 0] += 1
            }
            if let error = run.firstError { errors[errorCase(error), default: 0] += 1 }
            lostWrites += run.lostWrites
            recoveries += run.recoveries
            flushes += run.flushes
            compactions += run.compactions
            for (finding, detail) in run.findings { findings[finding, default: []].append("seed \(run.seed): \(detail)") }
        }

        var description: String {
            "\(seeds) seeds, \(faultsHit) hit their fault (by target \(failingCallsByTarget.sorted { $0.key < $1.key }), "
                + "by call \(failingCallsByOperation.sorted { $0.key < $1.key }), errors \(errors.sorted { $0.key < $1.key })), "
                + "\(recoveries) recoveries, \(lostWrites) unsynced writes lost to power loss, \(flushes) flushes, "
                + "\(compactions) compactions, \(failures) failing seeds"
        }
    }
}

extension LSMFaultTests {
    struct Target {
        let name: String
        let pathContains: String
        let operations: [Set<FileOperation>]
    }

    final class FaultRun {
        /// Thrown after a failure has been recorded, to end the seed.
        struct Abort: Error {}

        static let directory = "/db"
        static let keySpace = 160
        /// Segment files (flush and compaction output), the manifest's record log (its segment
        /// files are written and fdatasynced on every edit, and created on every manifest rewrite)
        /// and CURRENT (written as CURRENT.tmp, synced and renamed on every manifest rewrite).
        static let targets: [Target] = [
            Target(name: "segment", pathContains: ".vseg", operations: [[.write], [.sync], [.write, .sync]]),
            Target(name: "manifest", pathContains: "/manifest-", operations: [[.write], [.dataSync], [.write, .dataSync]]),
            Target(name: "CURRENT", pathContains: "CURRENT", operations: [[.write], [.sync], [.write, .sync]]),
        ]

        let seed: UInt64
        var random: SeededRandom
        let base = MemoryFileSystem()
        let faulty: FaultInjectingFileSystem
        let options: StorageOptions
        var engine: StorageEngine!
        /// Base: the last durable point (acknowledged synced write, successful flush or compact).
        var history = History()
        /// Every write up to this one was acknowledged (so is visible until a power loss).
        var acknowledgedIndex: UInt64 = 0
        var step = 0
        var operation = "open"
        let target: Target
        var armed = "not armed"
        var injectedKind: FileIOError.Kind = .io
        var firstError: StorageError?
        var failedCall = ""
        var findings: [String: String] = [:]
        var lostWrites: UInt64 = 0
        var recoveries = 0
        var flushes: UInt64 = 0
        var compactions: UInt64 = 0

        init(seed: UInt64) {
            self.seed = seed
            var random = SeededRandom(seed: seed)
            var options = StorageOptions()
            options.background = .inline
            options.memtableBytes = 1536
            options.blockBytes = 128
            options.restartInterval = 4
            options.segmentBytesTarget = 1024
            options.levelBaseBytes = 4096
            options.levelSizeRatio = 2
            options.levelCount = 4
            options.level0CompactionTrigger = 2
            options.blockCacheBytes = 4096
            options.walSegmentBytes = 8192
            // Frequent manifest rewrites, so that CURRENT is written often.
            options.manifestEditsMax = Int.random(in: 3...12, using: &random)
            options.compression = random.chance(0.3) ? .plain : .lz4
            self.options = options
            target = Self.targets[Int(seed % UInt64(Self.targets.count))]
            self.random = random
            faulty = FaultInjectingFileSystem(wrapping: base, seed: seed)
        }

        var context: String {
            "[seed \(seed) step \(step): \(operation); fault \(armed)] (replay: VECTRON_FAULT_SEED=\(seed) swift test --filter LSMFaultTests)"
        }

        func fail(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Never {
            Issue.record("\(context) \(message)", sourceLocation: sourceLocation)
            throw Abort()
        }

        func check(_ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            if !condition { try fail(message(), sourceLocation: sourceLocation) }
        }

        /// An expectation whose failure is tallied across seeds instead of ending this one.
        func note(_ finding: String, _ detail: String) {
            if findings[finding] == nil { findings[finding] = "\(detail) [step \(step), fault \(armed)]" }
        }

        func abandon() {
            engine?.close()
            engine = nil
        }

        // MARK: Driver

        func run() throws {
            try base.createDirectory(Self.directory)
            switch Result(catching: { () throws(StorageError) in try StorageEngine.open(directory: Self.directory, fileSystem: faulty, options: options) }) {
            case let .success(opened): engine = opened
            case let .failure(error): try fail("open failed: \(error)")
            }
            let steps = Int.random(in: 120...260, using: &random)
            let armAt = Int.random(in: 10..<(steps - 30), using: &random)
            var failure: StorageError?
            for index in 0..<steps where failure == nil {
                step = index
                if index == armAt {
                    arm()
                    // Sometimes fail straight into an explicit flush or compaction.
                    switch Int.random(in: 0..<10, using: &random) {
                    case 0..<2: failure = flushOrCompact(compact: false)
                    case 2..<4: failure = flushOrCompact(compact: true)
                    default: break
                    }
                    if failure != nil { break }
                }
                failure = try randomStep()
            }
            // The fault has not fired yet (its nth call never came): write on, flush, compact.
            var extra = 0
            while failure == nil && extra < 200 {
                step += 1
                extra += 1
                if extra % 50 == 0 {
                    failure = flushOrCompact(compact: extra % 100 == 0)
                } else {
                    failure = write([.put(randomKey(), randomValue())])
                }
            }
            if let failure {
                try checkFailure(failure)
            } else if faulty.injectedCount > 0 {
                note("a fault was injected but no call failed", "\(faulty.injectedCount) faults")
            }
            try recoverEverywhere()
        }

        func arm() {
            injectedKind = random.chance(0.5) ? .io : .noSpace
            let operations = target.operations[Int.random(in: 0..<target.operations.count, using: &random)]
            let nth: Int? = random.chance(0.4) ? nil : Int.random(in: 1...4, using: &random)
            // A single fault, or a persistent one (a disk that stays full or broken).
            let limit: Int? = random.chance(0.5) ? 1 : nil
            faulty.setRules([FaultRule(operations, pathContains: target.pathContains, nthCall: nth, limit: limit, fault: .error(injectedKind))])
            armed = "\(injectedKind) on \(operations.map(\.rawValue).sorted()) of \(target.name) files, call \(nth.map(String.init) ?? "every")"
                + ", \(limit == nil ? "persistent" : "once") (armed at step \(step))"
        }

        // MARK: Workload

        func randomKey() -> [UInt8] { key(Int.random(in: 0..<Self.keySpace, using: &random)) }

        /// 8–60 bytes, often one repeated byte (compressible).
        func randomValue() -> [UInt8] {
            let count = Int.random(in: 8...60, using: &random)
            if random.chance(0.4) { return [UInt8](repeating: UInt8(truncatingIfNeeded: random.next()), count: count) }
            return random.bytes(count)
        }

        func randomStep() throws -> StorageError? {
            switch Int.random(in: 0..<100, using: &random) {
            case ..<55: return write([.put(randomKey(), randomValue())])
            case ..<67: return write([.delete(randomKey())])
            case ..<77:
                let batch: [Mutation] = (0..<Int.random(in: 2...5, using: &random)).map { _ in
                    random.chance(0.8) ? .put(randomKey(), randomValue()) : .delete(randomKey())
                }
                return write(batch)
            case ..<80:
                let lower = Int.random(in: 0..<Self.keySpace, using: &random)
                return write([.deleteRange(key(lower), key(lower + Int.random(in: 1...8, using: &random)))])
            case ..<84: return flushOrCompact(compact: false)
            case ..<86: return flushOrCompact(compact: true)
            default:
                let key = randomKey()
                operation = "get \(Model.hex(key))"
                switch Result(catching: { () throws(StorageError) in try engine.get(key) }) {
                case let .success(value):
                    try check(value == history.current[key], "engine \(Model.show(value)), model \(Model.show(history.current[key]))")
                case let .failure(error):
                    try fail("a read failed before any fault: \(error)")
                }
                return nil
            }
        }

        static func batch(_ mutations: [Mutation]) -> WriteBatch {
            var batch = WriteBatch()
            for mutation in mutations {
                switch mutation {
                case let .put(key, value): batch.put(key, value)
                case let .delete(key): batch.delete(key)
                case let .deleteRange(lower, upper): batch.deleteRange(from: lower, to: upper)
                }
            }
            return batch
        }

        /// One write (a single operation or a batch); some are synced. A write whose call fails
        /// is still recorded in the history, as the newest write and not acknowledged: it may
        /// or may not have been applied (inline mode applies it before running the flush or
        /// compaction that fails).
        func write(_ mutations: [Mutation]) -> StorageError? {
            let sync = random.chance(0.1)
            operation = (mutations.count == 1 ? mutations[0].description : "batch of \(mutations.count)") + (sync ? " (sync)" : "")
            let engine = self.engine!
            let result = Result(catching: { () throws(StorageError) in
                if mutations.count != 1 { return try engine.write(Self.batch(mutations), sync: sync) }
                switch mutations[0] {
                case let .put(key, value): try engine.put(key, value, sync: sync)
                case let .delete(key): try engine.delete(key, sync: sync)
                case let .deleteRange(lower, upper): try engine.deleteRange(from: lower, to: upper, sync: sync)
                }
            })
            history.record(mutations)
            switch result {
            case .success:
                acknowledgedIndex = history.latestIndex
                if sync { history.markDurable() }
                return nil
            case let .failure(error):
                failedCall = "write"
                return error
            }
        }

        func flushOrCompact(compact: Bool) -> StorageError? {
            operation = compact ? "compact" : "flush"
            let engine = self.engine!
            switch Result(catching: { () throws(StorageError) in if compact { try engine.compact() } else { try engine.flush() } }) {
            case .success:
                history.markDurable()
                return nil
            case let .failure(error):
                failedCall = operation
                return error
            }
        }

        // MARK: After the failure

        func isInjected(_ error: StorageError) -> Bool {
            switch error {
            case let .io(io): return io.kind == injectedKind
            case let .log(.io(io)), let .log(.failed(io)): return io.kind == injectedKind
            default: return false
            }
        }

        func checkFailure(_ error: StorageError) throws {
            firstError = error
            try check(faulty.injectedCount > 0, "\(failedCall) failed, but no fault was injected: \(error)")
            if !isInjected(error) { note("the failing call did not report the injected error", "\(failedCall): \(error)") }
            operation = "reads after the failure"
            _ = try checkOpenEngine(lowerBound: acknowledgedIndex)

            // The engine stops accepting writes (reads go on).
            let probeKey = randomKey(), probeValue = randomValue()
            operation = "write after the failure"
            let engine = self.engine!
            switch Result(catching: { () throws(StorageError) in try engine.put(probeKey, probeValue) }) {
            case .failure(.failed): break
            case .success:
                note("a write after a failed \(failedCall) was accepted (expected .failed)", "\(errorCase(error))")
                history.record([.put(probeKey, probeValue)])
                acknowledgedIndex = history.latestIndex
            case let .failure(other):
                note("a write after a failed \(failedCall) failed with something other than .failed", "\(other)")
                history.record([.put(probeKey, probeValue)])
            }
            for compact in [false, true] {
                operation = "\(compact ? "compact" : "flush") after the failure"
                switch Result(catching: { () throws(StorageError) in if compact { try engine.compact() } else { try engine.flush() } }) {
                case .failure(.failed): break
                case .success:
                    note("\(compact ? "compact" : "flush") after a failed \(failedCall) succeeded (expected .failed)", "\(errorCase(error))")
                    history.markDurable()
                case let .failure(other):
                    note("\(compact ? "compact" : "flush") after a failed \(failedCall) failed with something other than .failed", "\(other)")
                }
            }
            operation = "reads after the refused writes"
            _ = try checkOpenEngine(lowerBound: acknowledgedIndex)
        }

        /// The engine's whole state by a full scan (strictly ascending), or a failure.
        func state(of engine: StorageEngine) throws -> State {
            let entries: [(key: [UInt8], value: [UInt8])]
            switch Result(catching: { () throws(StorageError) in try engine.scan() }) {
            case let .success(scanned): entries = scanned
            case let .failure(error): try fail("full scan failed: \(error)")
            }
            switch Model.state(ofScan: entries) {
            case let .success(state): return state
            case let .failure(problem): try fail(problem.text)
            }
        }

        /// Gets and a reverse scan agree with the full scan. No read fault is ever injected, so
        /// every read must succeed.
        func checkReads(_ engine: StorageEngine, _ state: State) throws {
            for index in 0..<(Self.keySpace + 8) {
                let probe = key(index)
                switch Result(catching: { () throws(StorageError) in try engine.get(probe) }) {
                case let .success(value):
                    try check(value == state[probe], "get \(Model.hex(probe)): \(Model.show(value)), the full scan says \(Model.show(state[probe]))")
                case let .failure(error): try fail("get \(Model.hex(probe)) failed: \(error)")
                }
            }
            switch Result(catching: { () throws(StorageError) in try engine.scan(reverse: true) }) {
            case let .success(entries):
                let expected = Model.scan(state, lower: nil, upper: nil, reverse: true, limit: .max)
                if let problem = Model.difference(entries, expected) { try fail("reverse scan: \(problem)") }
            case let .failure(error): try fail("reverse scan failed: \(error)")
            }
        }

        /// The open engine shows the model state after some write from `lowerBound` on, and
        /// reads agree; returns the state.
        func checkOpenEngine(lowerBound: UInt64) throws -> State {
            let actual = try state(of: engine)
            guard let match = history.newestMatch(actual), match >= lowerBound else {
                try fail("the open engine's state is not the state after any write from \(lowerBound) (the last acknowledged) "
                    + "to \(history.latestIndex): against the newest: \(Model.difference(actual, history.current))")
            }
            try checkReads(engine, actual)
            _ = engine.statistics
            return actual
        }

        // MARK: Recovery

        enum Expectation {
            /// Exactly this state.
            case exactly(State)
            /// The model state after some write from the durable point on.
            case durablePrefix
        }

        func recoverEverywhere() throws {
            let engineState: State
            if firstError == nil {
                operation = "final check (the fault never fired)"
                engineState = try checkOpenEngine(lowerBound: history.latestIndex)
            } else {
                engineState = try state(of: engine)
            }
            let statistics = engine.statistics
            flushes = statistics.flushes
            compactions = statistics.compactions
            // Power loss now, with the failed engine still open.
            let crashedNow = base.crashClone(seed: random.next())
            engine.close()
            engine = nil
            // Power loss right after the clean close, keeping no unsynced byte: the close must
            // have made everything durable.
            let crashedAfterClose = base.crashClone(seed: random.next(), options: CrashOptions(keepWriteProbability: 0))
            try recover(on: base, name: "reopen after the close", .exactly(engineState))
            try recover(on: crashedAfterClose, name: "power loss after the close", .exactly(engineState))
            try recover(on: crashedNow, name: "power loss at the failure", .durablePrefix)
        }

        func open(_ fileSystem: MemoryFileSystem) throws -> StorageEngine {
            switch Result(catching: { () throws(StorageError) in
                try StorageEngine.open(directory: Self.directory, fileSystem: fileSystem, options: options)
            }) {
            case let .success(engine): return engine
            case let .failure(error): try fail("open failed: \(error)")
            }
        }

        /// Opens `fileSystem` (no faults), checks the state and the files, writes on, and
        /// reopens once more.
        func recover(on fileSystem: MemoryFileSystem, name: String, _ expectation: Expectation) throws {
            operation = name
            let engine = try open(fileSystem)
            defer { engine.close() }
            recoveries += 1
            let actual = try state(of: engine)
            switch expectation {
            case let .exactly(expected):
                try check(actual == expected, "recovered state differs from the engine's before the close: \(Model.difference(actual, expected))")
            case .durablePrefix:
                guard let match = history.newestMatch(actual) else {
                    try fail("recovered state is not the state after any write from the durable point (write \(history.baseIndex)) "
                        + "to the newest (write \(history.latestIndex)); against the durable point: \(Model.difference(actual, history.base)); "
                        + "against the newest: \(Model.difference(actual, history.current))")
                }
                lostWrites += history.latestIndex - match
            }
            try checkReads(engine, actual)
            try checkFiles(engine, fileSystem)

            // The recovered database takes writes, flushes, compacts, and reopens cleanly.
            operation = "\(name): writes after recovery"
            var model = actual
            for index in 0..<25 {
                let key = randomKey(), value = randomValue()
                switch Result(catching: { () throws(StorageError) in try engine.put(key, value, sync: index == 24) }) {
                case .success: model[key] = value
                case let .failure(error): try fail("write failed: \(error)")
                }
            }
            switch Result(catching: { () throws(StorageError) in try engine.compact() }) {
            case .success: break
            case let .failure(error): try fail("compact failed: \(error)")
            }
            let written = try state(of: engine)
            try check(written == model, "after writes and a compaction: \(Model.difference(written, model))")
            engine.close()
            operation = "\(name): second reopen"
            let again = try open(fileSystem)
            defer { again.close() }
            let reopened = try state(of: again)
            try check(reopened == model, "second reopen: \(Model.difference(reopened, model))")
            try checkReads(again, reopened)
            try checkFiles(again, fileSystem)
        }

        /// Right after an open: no leftover segment (every `.vseg` is counted by the statistics,
        /// with its size), one manifest, named by CURRENT.
        func checkFiles(_ engine: StorageEngine, _ fileSystem: MemoryFileSystem) throws {
            let statistics = engine.statistics
            try check(statistics.levels.count == options.levelCount, "statistics list \(statistics.levels.count) levels")
            try check(statistics.immutableMemtables == 0, "\(statistics.immutableMemtables) immutable memtables right after open")
            let names = (try? fileSystem.list(Self.directory)) ?? []
            let segments = names.filter { $0.hasSuffix(".vseg") }
            let counted = statistics.levels.reduce(0) { $0 + $1.segments }
            try check(segments.count == counted, "\(segments.count) segment files \(segments), the statistics count \(counted)")
            let bytes = segments.reduce(UInt64(0)) { $0 + UInt64(fileSystem.contents(of: joinPath(Self.directory, $1))?.count ?? 0) }
            try check(bytes == statistics.totalSegmentBytes, "segment files hold \(bytes) bytes, the statistics say \(statistics.totalSegmentBytes)")
            try check(!names.contains { $0.hasSuffix(".vseg.tmp") }, "leftover temporary segment: \(names)")
            let manifests = names.filter { $0.hasPrefix("manifest-") }
            try check(manifests.count == 1, "manifest directories: \(manifests)")
            let current = fileSystem.contents(of: joinPath(Self.directory, ManifestFormat.currentFileName)) ?? []
            switch Result(catching: { () throws(DecodeError) in try ManifestFormat.decodeCurrent(current) }) {
            case let .success(named): try check(named == manifests.first, "CURRENT names \(named), the manifest is \(manifests)")
            case let .failure(error): try fail("CURRENT does not decode: \(error)")
            }
        }
    }
}

// MARK: - Flipped bytes

@Suite("A flipped byte in any block, index, filter, footer or manifest record is reported as corruption by reads — never returned as data", .ownThread)
struct LSMCorruptionTests {
    typealias State = MetamorphicTests.State
    typealias Model = MetamorphicTests.Model

    static let directory = "/db"
    /// Flipped positions per segment file (all of them in a smaller file).
    static let positionsPerSegment = 200
    /// Keys 0..<keyCount are written, overwritten and deleted in three rounds.
    static let keyCount = 80

    struct Database {
        let fileSystem: MemoryFileSystem
        let options: StorageOptions
        let expected: State
        /// Every key ever written, and a few never written.
        let keys: [[UInt8]]
    }

    static func options(_ compression: BlockCompression) -> StorageOptions {
        var options = StorageOptions()
        options.background = .inline
        options.compression = compression
        options.memtableBytes = 2048
        options.blockBytes = 160
        options.restartInterval = 4
        options.segmentBytesTarget = 1200
        options.levelBaseBytes = 2048
        options.levelSizeRatio = 2
        options.levelCount = 4
        options.level0CompactionTrigger = 3
        options.blockCacheBytes = 16 << 10
        options.walSegmentBytes = 16 << 10
        options.manifestEditsMax = 1000  // one manifest, holding every edit
        return options
    }

    /// A database with segments on level 0 and deeper levels, overwritten and deleted keys, and
    /// nothing live in the WAL: the last operation is a flush of a few new keys, so the
    /// manifest's newest edit adds a level-0 segment (and the WAL was truncated after it).
    static func build(compression: BlockCompression, seed: UInt64) throws -> Database {
        let fileSystem = MemoryFileSystem()
        let options = options(compression)
        var random = SeededRandom(seed: seed)
        let engine = try StorageEngine.open(directory: directory, fileSystem: fileSystem, options: options)
        var model: State = [:]
        for _ in 0..<3 {
            for index in 0..<keyCount where random.chance(0.7) {
                let count = Int.random(in: 8...48, using: &random)
                let value = random.chance(0.5) ? [UInt8](repeating: UInt8(truncatingIfNeeded: random.next()), count: count) : random.bytes(count)
                try engine.put(key(index), value)
                model[key(index)] = value
            }
            for _ in 0..<10 {
                let index = Int.random(in: 0..<keyCount, using: &random)
                try engine.delete(key(index))
                model[key(index)] = nil
            }
            try engine.flush()
        }
        for index in 200..<206 {
            try engine.put(key(index), value(index))
            model[key(index)] = value(index)
        }
        try engine.flush()
        let levels = engine.statistics.levels
        #expect(levels[0].segments > 0 && levels.dropFirst().contains { $0.segments > 0 },
                "the database should have segments on level 0 and deeper: \(levels.map(\.segments))")
        #expect(try engine.scan().count == model.count)
        engine.close()
        let keys = (0..<keyCount).map { key($0) } + (200..<206).map { key($0) } + [key(500), [], Array("zzz".utf8)]
        return Database(fileSystem: fileSystem, options: options, expected: model, keys: keys)
    }

    /// What opening and reading back a damaged copy gave.
    struct ReadBack {
        var openError: StorageError?
        var readErrors: [StorageError] = []
        /// Reads that returned data other than the truth.
        var wrong: [String] = []
    }

    /// Opens the database and reads everything: `get` of every key, full forward and reverse
    /// scans through iterators (each entry checked as it comes, so nothing returned before an
    /// error goes unchecked).
    static func readBack(_ fileSystem: MemoryFileSystem, _ database: Database) -> ReadBack {
        var out = ReadBack()
        let engine: StorageEngine
        switch Result(catching: { () throws(StorageError) in
            try StorageEngine.open(directory: directory, fileSystem: fileSystem, options: database.options)
        }) {
        case let .success(opened): engine = opened
        case let .failure(error):
            out.openError = error
            return out
        }
        defer { engine.close() }
        for key in database.keys {
            switch Result(catching: { () throws(StorageError) in try engine.get(key) }) {
            case let .success(value):
                if value != database.expected[key] {
                    out.wrong.append("get \(Model.hex(key)) = \(Model.show(value)), should be \(Model.show(database.expected[key]))")
                }
            case let .failure(error): out.readErrors.append(error)
            }
        }
        for reverse in [false, true] {
            let expected = Model.scan(database.expected, lower: nil, upper: nil, reverse: reverse, limit: .max)
            var count = 0
            let result = Result(catching: { () throws(StorageError) in
                let iterator = try engine.makeIterator(reverse: reverse)
                while let entry = try iterator.next() {
                    if count >= expected.count || entry.key != expected[count].key || entry.value != expected[count].value {
                        out.wrong.append("\(reverse ? "reverse " : "")scan entry \(count): \(Model.hex(entry.key)) = \(Model.hex(entry.value)), "
                            + (count < expected.count ? "should be \(Model.hex(expected[count].key)) = \(Model.hex(expected[count].value))" : "should not exist"))
                        return
                    }
                    count += 1
                }
                if count != expected.count {
                    out.wrong.append("\(reverse ? "reverse " : "")scan ended after \(count) entries, should return \(expected.count)")
                }
            })
            if case let .failure(error) = result { out.readErrors.append(error) }
        }
        return out
    }

    static func flipped(_ database: Database, path: String, at position: Int, mask: UInt8) -> MemoryFileSystem {
        let copy = copyDatabase(database.fileSystem, root: directory)
        var bytes = copy.contents(of: path)!
        bytes[position] ^= mask
        copy.setContents(of: path, bytes)
        return copy
    }

    /// Records at most `limit` failures individually, then a count.
    struct Failures {
        var messages: [String] = []
        mutating func add(_ message: String) { messages.append(message) }
        func report(_ what: String, limit: Int = 8, sourceLocation: SourceLocation = #_sourceLocation) {
            for message in messages.prefix(limit) { Issue.record("\(what): \(message)", sourceLocation: sourceLocation) }
            if messages.count > limit { Issue.record("\(what): \(messages.count - limit) more failures", sourceLocation: sourceLocation) }
        }
    }

    // MARK: Segments

    struct Region {
        let name: String
        let range: Range<Int>
        /// A data block or its trailer: verified when read, not at open.
        let isData: Bool
    }

    /// Every byte of the segment file, labelled: data blocks, their trailers, the filter,
    /// properties and index blocks and their trailers, the footer. The regions tile the file.
    static func regions(of path: String, in fileSystem: MemoryFileSystem) throws -> (regions: [Region], lz4Blocks: Int) {
        let handle = try fileSystem.open(path, options: .read)
        defer { handle.close() }
        let reader = try SegmentReader(handle: handle)
        let trailer = SegmentFormat.trailerBytes
        var regions: [Region] = []
        var lz4Blocks = 0
        for (position, summary) in reader.dataBlockSummaries().enumerated() {
            let block = try summary.get()
            if block.compression == .lz4 { lz4Blocks += 1 }
            let start = Int(block.handle.offset), end = start + Int(block.handle.size)
            regions.append(Region(name: "data block \(position) (\(block.compression))", range: start..<end, isData: true))
            regions.append(Region(name: "data block \(position) trailer", range: end..<(end + trailer), isData: true))
        }
        for (name, block) in [("filter", reader.footer.filter), ("properties", reader.footer.properties), ("index", reader.footer.index)] {
            let start = Int(block.offset), end = start + Int(block.size)
            regions.append(Region(name: "\(name) block", range: start..<end, isData: false))
            regions.append(Region(name: "\(name) trailer", range: end..<(end + trailer), isData: false))
        }
        let size = Int(reader.size)
        regions.append(Region(name: "footer", range: (size - SegmentFormat.footerBytes)..<size, isData: false))
        return (regions, lz4Blocks)
    }

    /// Positions to flip: every position of a small file; else the first, last and a random
    /// byte of every region, then random positions up to `count`.
    static func positions(size: Int, regions: [Region], count: Int, random: inout SeededRandom) -> [Int] {
        if size <= count { return Array(0..<size) }
        var chosen = Set<Int>()
        for region in regions where !region.range.isEmpty {
            chosen.insert(region.range.lowerBound)
            chosen.insert(region.range.upperBound - 1)
            chosen.insert(Int.random(in: region.range, using: &random))
        }
        while chosen.count < count { chosen.insert(Int.random(in: 0..<size, using: &random)) }
        return chosen.sorted()
    }

    /// `.corruption` naming the file `name`.
    static func isCorruption(_ error: StorageError, in name: String) -> Bool {
        if case let .corruption(path, _) = error { return path.hasSuffix("/" + name) }
        return false
    }

    static func randomMask(_ random: inout SeededRandom) -> UInt8 {
        random.chance(0.5) ? UInt8(1) << UInt8(random.next() % 8) : UInt8.random(in: 1...255, using: &random)
    }

    @Test(arguments: [BlockCompression.lz4, BlockCompression.plain])
    func everySegmentFlipIsDetected(compression: BlockCompression) throws {
        let database = try Self.build(compression: compression, seed: 7)
        // The undamaged database reads back exactly.
        let clean = Self.readBack(copyDatabase(database.fileSystem, root: Self.directory), database)
        #expect(clean.openError == nil && clean.readErrors.isEmpty && clean.wrong.isEmpty, "undamaged database: \(clean)")
        let names = try database.fileSystem.list(Self.directory).filter { $0.hasSuffix(".vseg") }
        #expect(names.count >= 4, "segments: \(names)")
        var random = SeededRandom(seed: 1234)
        var failures = Failures()
        var flips = 0, detectedAtOpen = 0, detectedByReads = 0, lz4Blocks = 0
        var regionsSeen = Set<String>()
        for name in names {
            let path = joinPath(Self.directory, name)
            let size = database.fileSystem.contents(of: path)!.count
            let (regions, lz4) = try Self.regions(of: path, in: database.fileSystem)
            lz4Blocks += lz4
            // The regions tile the file: every byte is in exactly one.
            var covered = 0
            for region in regions {
                #expect(region.range.lowerBound == covered, "\(name): \(region.name) starts at \(region.range.lowerBound), not \(covered)")
                covered = region.range.upperBound
            }
            #expect(covered == size, "\(name): regions end at \(covered), the file has \(size) bytes")
            for position in Self.positions(size: size, regions: regions, count: Self.positionsPerSegment, random: &random) {
                let mask = Self.randomMask(&random)
                let region = regions.first { $0.range.contains(position) }!
                regionsSeen.insert(region.isData ? (region.name.hasSuffix("trailer") ? "data trailer" : "data block") : region.name)
                let place = "\(name) byte \(position) of \(size) (\(region.name)) ^ 0x\(String(mask, radix: 16))"
                let result = Self.readBack(Self.flipped(database, path: path, at: position, mask: mask), database)
                flips += 1
                for wrong in result.wrong.prefix(2) { failures.add("\(place): WRONG DATA: \(wrong)") }
                if let error = result.openError {
                    detectedAtOpen += 1
                    if region.isData { failures.add("\(place): the open failed (\(error)); data blocks are verified when read") }
                    if !Self.isCorruption(error, in: name) { failures.add("\(place): the open failed with \(error), expected .corruption in \(name)") }
                    continue
                }
                if !region.isData { failures.add("\(place): the open succeeded; it verifies the footer and the meta blocks") }
                if let other = result.readErrors.first(where: { !Self.isCorruption($0, in: name) }) {
                    failures.add("\(place): a read failed with \(other), expected .corruption in \(name)")
                }
                if result.readErrors.isEmpty {
                    failures.add("\(place): not detected: the open and every read succeeded")
                } else {
                    detectedByReads += 1
                }
            }
        }
        print("LSMCorruptionTests [\(compression)]: \(names.count) segments, \(flips) flips, \(detectedAtOpen) detected at open, "
            + "\(detectedByReads) by reads, \(lz4Blocks) LZ4 data blocks, regions \(regionsSeen.sorted())")
        failures.report("[\(compression)] segment flip")
        if compression == .lz4 { #expect(lz4Blocks > 0, "no data block is LZ4-compressed") } else { #expect(lz4Blocks == 0) }
        for region in ["data block", "data trailer", "filter block", "filter trailer", "properties block", "properties trailer",
                       "index block", "index trailer", "footer"] {
            #expect(regionsSeen.contains(region), "no flip in a \(region)")
        }
    }

    // MARK: Manifest and CURRENT

    enum ManifestHistory: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// As left by the build: a snapshot edit, then one edit per flush and compaction; the
        /// newest edit is the final flush's.
        case editLog
        /// After one more clean open and close: a fresh manifest holding only a snapshot edit.
        case snapshotOnly
        var testDescription: String { rawValue }
    }

    /// The error an open with a damaged manifest or CURRENT may fail with.
    static func isTypedOpenFailure(_ error: StorageError) -> Bool {
        switch error {
        case .corruption, .inconsistent, .log: return true
        default: return false
        }
    }

    /// Flips bytes of the manifest's record-log segment file(s).
    ///
    /// What is allowed: every manifest edit is appended and fdatasynced alone, and each record
    /// stores how far its segment had been synced when it was written. A bad record followed by
    /// a valid record whose synced offset lies beyond it is corruption (the open fails:
    /// `.log(.corruption)`). A bad *last* record of the newest segment has no such witness:
    /// recovery cannot tell it from a write torn by a crash, which was never acknowledged, and
    /// cuts it off. So a flip in the newest record may let the open succeed — and then the data
    /// must still be exactly right, because that edit was acknowledged (its flush returned) —
    /// or fail it with a typed error (for `.snapshotOnly`, cutting the only edit leaves an empty
    /// manifest: `.inconsistent`). A flip anywhere else must fail the open.
    @Test(arguments: ManifestHistory.allCases)
    func manifestFlipsAreDetected(history: ManifestHistory) throws {
        let database = try Self.build(compression: .lz4, seed: 11)
        if history == .snapshotOnly {
            let engine = try StorageEngine.open(directory: Self.directory, fileSystem: database.fileSystem, options: database.options)
            engine.close()
        }
        let current = database.fileSystem.contents(of: joinPath(Self.directory, ManifestFormat.currentFileName))!
        let manifest = joinPath(Self.directory, try ManifestFormat.decodeCurrent(current))
        let logFiles = try database.fileSystem.list(manifest).filter { $0.hasSuffix(LogFormat.segmentFileSuffix) }.sorted()
        #expect(!logFiles.isEmpty, "no record-log segment in \(manifest)")
        var random = SeededRandom(seed: 99)
        var failures = Failures()
        var flips = 0, openFailures: [String: Int] = [:], tornTailOpens = 0
        /// Flips in the newest record after which the open succeeded and reads were wrong.
        var silentLosses: [String] = []
        for (fileIndex, name) in logFiles.enumerated() {
            let path = joinPath(manifest, name)
            let bytes = database.fileSystem.contents(of: path)!
            let isNewest = fileIndex == logFiles.count - 1
            let scan = SegmentScanner.scan(bytes, isLast: isNewest)
            #expect(scan.end == .clean && !scan.records.isEmpty, "\(name) does not scan clean: \(scan.end)")
            let lastRecord = scan.records.last.map(\.offset) ?? bytes.count
            if history == .editLog { #expect(scan.records.count > 5, "\(name) holds \(scan.records.count) records") }
            // Every position of a small file; else every byte of the segment header, the first
            // and the last record, the first and last byte of every record, and random others.
            var positions = Set<Int>()
            if bytes.count <= 800 {
                positions = Set(0..<bytes.count)
            } else {
                positions.formUnion(0..<LogFormat.segmentHeaderBytes)
                if let first = scan.records.first { positions.formUnion(first.offset..<(first.offset + first.header.totalLength)) }
                positions.formUnion(lastRecord..<bytes.count)
                for record in scan.records {
                    positions.insert(record.offset)
                    positions.insert(record.offset + record.header.totalLength - 1)
                }
                while positions.count < 400 { positions.insert(Int.random(in: 0..<bytes.count, using: &random)) }
            }
            for position in positions.sorted() {
                let mask = Self.randomMask(&random)
                let inNewestRecord = isNewest && position >= lastRecord
                let place = "\(name) byte \(position) of \(bytes.count)\(inNewestRecord ? " (newest record)" : "") ^ 0x\(String(mask, radix: 16))"
                let result = Self.readBack(Self.flipped(database, path: path, at: position, mask: mask), database)
                flips += 1
                if let error = result.openError {
                    openFailures[errorCase(error), default: 0] += 1
                    if !Self.isTypedOpenFailure(error) { failures.add("\(place): the open failed with \(error)") }
                    continue
                }
                if !inNewestRecord {
                    failures.add("\(place): the open succeeded (a valid later record proves the damaged one had been synced)")
                } else {
                    tornTailOpens += 1
                }
                // An open that succeeded must give exactly the right data.
                if !result.wrong.isEmpty || !result.readErrors.isEmpty {
                    let problem = "\(place): the open succeeded, then \(result.wrong.count) reads returned wrong data "
                        + "(\(result.wrong.prefix(2).joined(separator: "; "))) and \(result.readErrors.count) failed"
                    if inNewestRecord { silentLosses.append(problem) } else { failures.add(problem) }
                }
            }
        }
        print("LSMCorruptionTests [manifest, \(history)]: \(flips) flips, open failures \(openFailures.sorted { $0.key < $1.key }), "
            + "\(tornTailOpens) opens after cutting the newest record as a torn tail")
        failures.report("[manifest, \(history)] flip")
        if let example = silentLosses.first {
            let message = "[manifest, \(history)] \(silentLosses.count) flips in the newest manifest record let the open succeed "
                + "(recovery cut the record as a torn tail) and lost the acknowledged edit it held: the final flush's segment "
                + "was deleted as a leftover and its keys are gone (the WAL had been truncated past them). E.g. \(example)"
            Issue.record("\(message)")
        }
    }

    /// CURRENT is magic, a length-prefixed manifest name and a checksum over both: any flipped
    /// byte fails the open (`.corruption`).
    @Test func currentFlipsFailTheOpen() throws {
        let database = try Self.build(compression: .lz4, seed: 13)
        let path = joinPath(Self.directory, ManifestFormat.currentFileName)
        let size = database.fileSystem.contents(of: path)!.count
        var random = SeededRandom(seed: 5)
        var failures = Failures()
        for position in 0..<size {
            for mask in [UInt8(1) << UInt8(random.next() % 8), UInt8.random(in: 1...255, using: &random)] {
                let result = Self.readBack(Self.flipped(database, path: path, at: position, mask: mask), database)
                let place = "CURRENT byte \(position) of \(size) ^ 0x\(String(mask, radix: 16))"
                guard let error = result.openError else {
                    failures.add("\(place): the open succeeded (\(result.wrong.count) wrong reads)")
                    continue
                }
                if !Self.isTypedOpenFailure(error) { failures.add("\(place): the open failed with \(error)") }
            }
        }
        failures.report("CURRENT flip")
    }
}
