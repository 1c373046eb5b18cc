// Whole simulated clusters through every fault kind, many seeds. A failing seed reproduces with
// `swift run vectron-sim --seed N --steps M --nodes K --faults all`.

import Testing
@testable import RaftSim

@Suite struct SimulationTests {
    @Test(arguments: [3, 5])
    func seedsRunClean(nodes: Int) {
        let seeds = UInt64(1)...200
        for seed in seeds {
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
