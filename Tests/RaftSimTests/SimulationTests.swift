// Whole simulated clusters through every fault kind, many seeds. A failing seed reproduces with
// `swift run vectron-sim --seed N --steps M --nodes K --faults all`.

import Testing
@testable import RaftSim

@Suite struct SimulationTests {
    /// 200 seeds × 5,000 steps for each cluster size, in chunks that run in parallel.
    @Test(arguments: [3, 5], [UInt64(1), 51, 101, 151])
    func seedsRunClean(nodes: Int, firstSeed: UInt64) {
        for seed in firstSeed..<(firstSeed + 50) {
            let result = Simulation(options: SimulationOptions(seed: seed, steps: 5_000, nodes: nodes, faults: .all)).run()
            #expect(result.ok, "\(result.summary)\n\(result.violations.joined(separator: "\n"))")
        }
    }

    @Test func aRunIsAFunctionOfItsSeed() {
        let options = SimulationOptions(seed: 42, steps: 3_000, nodes: 3, faults: .all)
        let first = Simulation(options: options).run(), second = Simulation(options: options).run()
        #expect(first.history == second.history)
        #expect(first.summary == second.summary)
    }
}
