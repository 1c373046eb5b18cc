// Crash tests: seeded rounds of appends from several streams, truncations and rotations, with
// an I/O fault injected at a random moment (so a write is in flight), then a crash that keeps
// every synced byte and drops or tears unsynced ones, then recovery.
//
// Checked after every crash: every acknowledged record is present and intact; the only extra
// records are a prefix of the one operation that was in flight; nothing unacknowledged is
// reported as corruption; opening again gives the same state. A failing round prints its seed;
// `VECTRON_CRASH_SEED=N swift test --filter CrashTests` replays just that round.

import TestSupport
import Basics
import FileIO
import FileIOSim
import Foundation
import RecordLog
import Testing

struct InFlight {
    enum Operation {
        case append([LogRecord])
        case truncatePrefix(stream: UInt64, bound: UInt64)
        case truncateSuffix(stream: UInt64, from: UInt64)
    }
    var operation: Operation
}

/// The acknowledged state: each stream's live records.
typealias Model = [UInt64: [StoredRecord]]

func apply(_ operation: InFlight.Operation, lsns: [UInt64], to model: inout Model) {
    switch operation {
    case let .append(records):
        for (record, lsn) in zip(records, lsns) {
            model[record.stream, default: []].append(StoredRecord(lsn: lsn, stream: record.stream, kind: record.kind, payload: record.payload))
        }
    case let .truncatePrefix(stream, bound):
        model[stream]?.removeAll { $0.lsn < bound }
        if model[stream]?.isEmpty == true { model[stream] = nil }
    case let .truncateSuffix(stream, from):
        model[stream]?.removeAll { $0.lsn >= from }
        if model[stream]?.isEmpty == true { model[stream] = nil }
    }
}

/// Is `actual` a state the crash may have produced from `model` with `inFlight` in flight?
func isAllowedOutcome(_ actual: Model, model: Model, inFlight: InFlight?) -> String? {
    if actual == model { return nil }
    guard let inFlight else { return "state differs from the acknowledged state and nothing was in flight" }
    switch inFlight.operation {
    case let .append(records):
        // Acknowledged records all present; extras are a prefix of the in-flight records.
        var extras: [StoredRecord] = []
        for (stream, recordsOfStream) in actual {
            let expected = model[stream] ?? []
            guard recordsOfStream.count >= expected.count, Array(recordsOfStream.prefix(expected.count)) == expected else {
                return "stream \(stream): acknowledged records missing or changed"
            }
            extras += recordsOfStream.dropFirst(expected.count)
        }
        for (stream, expected) in model where actual[stream] == nil && !expected.isEmpty {
            return "stream \(stream): all \(expected.count) acknowledged records missing"
        }
        extras.sort { $0.lsn < $1.lsn }
        guard extras.count <= records.count else { return "more extra records than were in flight" }
        for (extra, record) in zip(extras, records) {
            guard extra.stream == record.stream, extra.kind == record.kind, extra.payload == record.payload else {
                return "extra record LSN \(extra.lsn) is not the in-flight record at its position"
            }
        }
        let newestAcknowledged = model.values.flatMap { $0.map(\.lsn) }.max() ?? 0
        if let first = extras.first, first.lsn <= newestAcknowledged {
            return "extra record LSN \(first.lsn) is not newer than every acknowledged record"
        }
        return nil
    case .truncatePrefix, .truncateSuffix:
        var truncated = model
        apply(inFlight.operation, lsns: [], to: &truncated)
        return actual == truncated ? nil : "state is neither before nor after the in-flight truncation"
    }
}

@Suite(.ownThread) struct CrashTests {
    static let rounds = 1_000

    /// Every round runs with segments created empty and with segments prepared zero-filled
    /// (format version 2: the records end inside a zero-filled tail).
    @Test(arguments: [RecordLogOptions.SegmentPreparation.none, .inline])
    func acknowledgedAppendsSurviveCrashes(preparation: RecordLogOptions.SegmentPreparation) throws {
        let seeds: [UInt64]
        if let one = ProcessInfo.processInfo.environment["VECTRON_CRASH_SEED"].flatMap(UInt64.init) {
            seeds = [one]
        } else {
            seeds = (0..<UInt64(Self.rounds)).map { 0xC0FFEE &+ $0 }
        }
        var crashes = 0, tornTails = 0, faults = 0, relocated: UInt64 = 0
        for seed in seeds {
            let outcome = try runRound(seed: seed, preparation: preparation)
            crashes += outcome.crashes
            tornTails += outcome.tornTails
            faults += outcome.faults
            relocated += outcome.relocatedRecords
            if let failure = outcome.failure {
                Issue.record("crash round seed \(seed), preparation \(preparation) (replay: VECTRON_CRASH_SEED=\(seed)): \(failure)")
                return
            }
        }
        // The rounds must actually exercise crashes with unsynced data.
        #expect(crashes >= seeds.count)
        if seeds.count > 100 {
            #expect(tornTails > seeds.count / 20, "too few torn tails: \(tornTails)")
            #expect(faults > seeds.count / 2)
            #expect(relocated > 0, "crash rounds must exercise relocation")
        }
    }

    struct RoundOutcome {
        var crashes = 0
        var tornTails = 0
        var faults = 0
        var relocatedRecords: UInt64 = 0
        var failure: String?
    }

    func runRound(seed: UInt64, preparation: RecordLogOptions.SegmentPreparation) throws -> RoundOutcome {
        var outcome = RoundOutcome()
        var random = SeededRandom(seed: seed)
        var options = smallOptions(segmentBytes: 4096, segmentCount: 2 + Int(random.next() % 4), batchBytes: 4096)
        options.segmentPreparation = preparation
        var memory = MemoryFileSystem()
        var faulty = FaultInjectingFileSystem(wrapping: memory, seed: seed)
        var log = try RecordLog.open(directory: "/db/log", fileSystem: faulty, options: options).0
        var model: Model = [:]
        let crashCount = 1 + Int(random.next() % 3)
        for crash in 0..<crashCount {
            let steps = 5 + Int(random.next() % 40)
            for step in 0..<steps {
                let operation = randomOperation(&random, model: model, step: step)
                let lsns = try perform(operation, on: log)
                guard let lsns else { outcome.failure = "operation failed with no fault armed"; return outcome }
                apply(operation, lsns: lsns, to: &model)
            }
            // Arm a fault and run operations until one fails: that one is in flight.
            var inFlight: InFlight?
            if random.chance(0.85) {
                let rule: FaultRule
                switch random.next() % 4 {
                case 0: rule = FaultRule([.dataSync], nthCall: 1 + Int(random.next() % 3), fault: .error(.io))
                case 1: rule = FaultRule([.write], nthCall: 1 + Int(random.next() % 3), fault: .tornWrite)
                case 2: rule = FaultRule([.write], nthCall: 1 + Int(random.next() % 3), fault: .error(.noSpace))
                default: rule = FaultRule([.write, .dataSync, .syncDirectory, .remove, .open], probability: 0.3, fault: .error(.io))
                }
                faulty.setRules([rule])
                for step in 0..<30 {
                    let operation = randomOperation(&random, model: model, step: 1000 + step)
                    do {
                        let lsns = try performThrowing(operation, on: log)
                        apply(operation, lsns: lsns, to: &model)
                    } catch let error as LogError {
                        switch error {
                        case .io, .failed: break
                        default: outcome.failure = "unexpected error kind \(error)"; return outcome
                        }
                        inFlight = InFlight(operation: operation)
                        outcome.faults += 1
                        break
                    }
                    if inFlight != nil { break }
                }
                faulty.setRules([])
            }
            outcome.relocatedRecords += log.stats.relocatedRecords
            // Power loss.
            let crashOptions = CrashOptions(keepWriteProbability: [0, 0.5, 1][Int(random.next() % 3)],
                                            tearProbability: 0.6, zeroFillTornProbability: 0.3)
            memory = memory.crashClone(seed: random.next(), options: crashOptions)
            faulty = FaultInjectingFileSystem(wrapping: memory, seed: random.next())
            outcome.crashes += 1
            let reopened: RecordLog
            let report: RecoveryReport
            do {
                (reopened, report) = try RecordLog.open(directory: "/db/log", fileSystem: faulty, options: options)
            } catch {
                outcome.failure = "recovery after crash \(crash) failed: \(error)"
                return outcome
            }
            if !report.tornTails.isEmpty { outcome.tornTails += 1 }
            let actual = try snapshot(reopened)
            if let problem = isAllowedOutcome(actual, model: model, inFlight: inFlight) {
                outcome.failure = "after crash \(crash): \(problem)\nmodel: \(summary(model))\nactual: \(summary(actual))"
                return outcome
            }
            // Reopening (without a crash) must give the same state.
            reopened.close()
            let again: RecordLog
            do {
                again = try RecordLog.open(directory: "/db/log", fileSystem: faulty, options: options).0
            } catch {
                outcome.failure = "second open failed: \(error)"
                return outcome
            }
            let second = try snapshot(again)
            if second != actual {
                outcome.failure = "reopening changed the state\nfirst: \(summary(actual))\nsecond: \(summary(second))"
                return outcome
            }
            model = actual
            log = again
        }
        log.close()
        return outcome
    }

    func summary(_ model: Model) -> String {
        model.keys.sorted().map { "\($0): \(model[$0]!.map(\.lsn))" }.joined(separator: "; ")
    }

    func randomOperation(_ random: inout SeededRandom, model: Model, step: Int) -> InFlight.Operation {
        let stream = random.next() % 4
        let roll = random.next() % 100
        let lsns = model[stream]?.map(\.lsn) ?? []
        if roll < 8, let first = lsns.first, let last = lsns.last {
            return .truncatePrefix(stream: stream, bound: first + random.next() % (last - first + 2))
        }
        if roll < 14, let first = lsns.first, let last = lsns.last {
            return .truncateSuffix(stream: stream, from: first + random.next() % (last - first + 2))
        }
        let count = 1 + Int(random.next() % 4)
        return .append((0..<count).map { i in
            let s = i == 0 ? stream : random.next() % 4
            return LogRecord(stream: s, kind: UInt8(1 + random.next() % 3), payload: payload(&random, stream: s, step: step),
                             compress: random.chance(0.5))
        })
    }

    /// Runs an operation that is expected to succeed; nil on an unexpected error.
    func perform(_ operation: InFlight.Operation, on log: RecordLog) throws -> [UInt64]? {
        try? performThrowing(operation, on: log)
    }

    func performThrowing(_ operation: InFlight.Operation, on log: RecordLog) throws -> [UInt64] {
        switch operation {
        case let .append(records): return try log.append(records)
        case let .truncatePrefix(stream, bound): try log.truncatePrefix(stream: stream, below: bound); return []
        case let .truncateSuffix(stream, from): try log.truncateSuffix(stream: stream, from: from); return []
        }
    }
}
