// Whole simulated clusters through every fault kind, many seeds. A failing seed reproduces with
// `swift run vectron-sim --seed N --steps M --nodes K --faults all`.

import TestSupport
import Testing
@testable import RaftSim

@Suite(.ownThread) struct SimulationTests {
    /// 200 seeds × 5,000 steps for each cluster size, in chunks that run in parallel.
    @Test(arguments: [3, 5], [UInt64(1), 51, 101, 151])
    func seedsRunClean(nodes: Int, firstSeed: UInt64) {
        for seed in firstSeed..<(firstSeed + 50) {
            let result = Simulation(options: SimulationOptions(seed: seed, steps: 5_000, nodes: nodes, faults: .all)).run()
            #expect(result.ok, "\(result.summary)\n\(result.violations.joined(separator: "\n"))")
        }
    }

    /// Every seed that ever failed, with what it caught. They stay green from now on.
    static let regressions: [(seed: UInt64, nodes: Int, steps: Int, caught: String)] = [
        // Clients refused by a follower waited for a timeout and then picked a random node,
        // so the liveness probe could miss the leader for 200 ticks (simulator bug).
        (8, 3, 5_000, "client retry ignored the leader hint"),
        (10, 3, 5_000, "client retry ignored the leader hint"),
        (14, 3, 5_000, "client retry ignored the leader hint"),
        (33, 3, 5_000, "client retry ignored the leader hint"),
    ]

    @Test(arguments: 0..<SimulationTests.regressions.count)
    func regressionSeeds(_ number: Int) {
        let regression = Self.regressions[number]
        let result = Simulation(options: SimulationOptions(seed: regression.seed, steps: regression.steps, nodes: regression.nodes, faults: .all)).run()
        #expect(result.ok, "regression (\(regression.caught)): \(result.summary)\n\(result.violations.joined(separator: "\n"))")
    }

    /// The end-of-run linearizability check is wired to the real history: a read that returns
    /// a value nobody wrote makes it fail.
    @Test func aTamperedReadFailsTheLinearizabilityCheck() throws {
        let simulation = Simulation(options: SimulationOptions(seed: 7, steps: 3_000, nodes: 3, faults: .all))
        let clean = simulation.run()
        #expect(clean.ok, "\(clean.violations)")
        let read = try #require(simulation.result.history.firstIndex {
            if case .get = $0.operation, $0.returnedAt != nil { true } else { false }
        })
        simulation.result.history[read].result = .value("never written")
        simulation.checkLinearizability()
        #expect(simulation.result.violations.contains { $0.contains("linearizability") })
    }

    @Test func aRunIsAFunctionOfItsSeed() {
        let options = SimulationOptions(seed: 42, steps: 3_000, nodes: 3, faults: .all)
        let first = Simulation(options: options).run(), second = Simulation(options: options).run()
        #expect(first.history == second.history)
        #expect(first.summary == second.summary)
    }
}
