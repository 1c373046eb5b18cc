// Seeded random histories. Histories linearizable by construction are accepted, and rejected once
// one read is corrupted to a value nobody wrote; small random histories with up to two outputs
// corrupted get the same verdict from the checker as from the brute-force oracle; and a history
// of a few thousand heavily overlapping operations is checked quickly. Every failure message
// names its seed; rerun one with that seed to reproduce it exactly.

import Basics
import Linearizability
import Testing

@Suite struct RandomHistoryTests {
    @Test func constructedHistoriesAreAcceptedAndRejectedOnceAReadIsCorrupted() throws {
        for seed in UInt64(1)...300 {
            var random = SeededRandom(seed: seed)
            var history = RandomKVHistory.generate(&random, operationCount: 60, keys: ["k0", "k1", "k2"],
                                                   valuesPerKey: 3, widening: 25, unknownChance: 0.15)
            let result = kvChecker.check(history)
            #expect(result.isLinearizable, "seed \(seed): \(result.failure?.explanation ?? "unknown")")

            let reads = history.indices.filter {
                if case .get = history[$0].input { return true }
                return false
            }
            guard !reads.isEmpty else { continue }
            let corrupted = reads[Int.random(in: 0..<reads.count, using: &random)]
            history[corrupted].outcome = .completed(.value("never written"), responseTime: history[corrupted].responseTime!)
            let failure = try #require(kvChecker.check(history).failure, "seed \(seed): corrupted read #\(corrupted) accepted")
            #expect(failure.partitionKey == history[corrupted].input.key, "seed \(seed)")
            // Every cut before the corrupted read returns passes, so the report ends with it.
            #expect(failure.historyIndices.contains(corrupted) && failure.cutTime == history[corrupted].responseTime,
                    "seed \(seed): the corrupted read #\(corrupted) is missing from\n\(failure.explanation)")
            #expect(kvChecker.check(failure.operations).failure != nil, "seed \(seed): the reported sub-history passes")
        }
    }

    @Test func smallHistoriesGetTheOraclesVerdict() {
        var verdicts = (linearizable: 0, notLinearizable: 0)
        for seed in UInt64(1)...1_000 {
            var random = SeededRandom(seed: seed)
            // One or two keys, one to three values: identical operations (and identical timed-out
            // ones) are common, and so are reads that match several writes.
            var history = RandomKVHistory.generate(
                &random, operationCount: Int.random(in: 1...9, using: &random),
                keys: random.chance(0.5) ? ["x"] : ["x", "y"], valuesPerKey: Int.random(in: 1...3, using: &random),
                widening: Int.random(in: 0...50, using: &random), unknownChance: random.chance(0.5) ? 0.5 : 0.2)
            // Corrupt up to two outputs; a corrupted output may still be a possible one.
            for _ in 0..<Int.random(in: 0...2, using: &random) {
                let index = Int.random(in: 0..<history.count, using: &random)
                guard let responseTime = history[index].responseTime else { continue }
                let value = random.chance(0.3) ? nil : "v\(Int.random(in: 0..<2, using: &random))"
                let output: KVModel.Output = switch history[index].input {
                case .get: .value(value)
                case .put: random.chance(0.8) ? .ok : .casResult(true)
                case .cas: .casResult(random.chance(0.5))
                }
                history[index].outcome = .completed(output, responseTime: responseTime)
            }
            let expected = BruteForceOracle.isLinearizable(history)
            let result = kvChecker.check(history)
            #expect(result.isLinearizable == expected, "seed \(seed): \(result.failure?.explanation ?? "accepted")")
            if !expected, let failure = result.failure {
                #expect(!BruteForceOracle.isLinearizable(failure.operations), "seed \(seed): the reported sub-history passes")
            }
            if expected { verdicts.linearizable += 1 } else { verdicts.notLinearizable += 1 }
        }
        // Both verdicts must be well represented, or the comparison proves little.
        #expect(verdicts.linearizable > 200 && verdicts.notLinearizable > 150, "\(verdicts)")
    }

    /// 2,400 operations over 20 keys, each interval widened by up to ±1,000 ticks around its
    /// instant (operations are 10 ticks apart: about 10 in flight per key, plus the timed-out
    /// ones, which stay pending for ever), four values per key (many equal states). The
    /// linearizable history and the corrupted one, whose search must exhaust every ordering up to
    /// the corrupted read, take a fraction of a second together in a debug build; the timing is
    /// not asserted.
    @Test func thousandsOfOverlappingOperationsAreCheckedQuickly() throws {
        let seed: UInt64 = 20_240_601
        var random = SeededRandom(seed: seed)
        var history = RandomKVHistory.generate(&random, operationCount: 2_400, keys: (0..<20).map { "key\($0)" },
                                               valuesPerKey: 4, widening: 1_000, unknownChance: 0.1)
        let result = kvChecker.check(history)
        #expect(result.isLinearizable, "seed \(seed): \(result.failure?.explanation ?? "unknown")")

        // Corrupt a read half-way through: the failing key is found and the report is cut just
        // after that read.
        let read = try #require(history.indices.dropFirst(history.count / 2).first {
            if case .get = history[$0].input { return true } else { return false }
        })
        history[read].outcome = .completed(.value("never written"), responseTime: history[read].responseTime!)
        let failure = try #require(kvChecker.check(history).failure, "seed \(seed)")
        #expect(failure.partitionKey == history[read].input.key)
        #expect(failure.cutTime == history[read].responseTime)
        #expect(failure.operations.count < failure.partitionOperationCount * 3 / 4)
    }
}
