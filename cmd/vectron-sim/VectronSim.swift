// vectron-sim: runs deterministic simulated Raft clusters. Any run is reproduced exactly by its
// seed and options. Prints one summary line per seed and exits non-zero on a violation.

import ArgumentParser
import RaftSim

@main
struct VectronSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectron-sim",
        abstract: "Deterministic Raft cluster simulation with faults and checkers (one summary line per seed).")

    @Option(help: "First seed.") var seed: UInt64 = 1
    @Option(help: "How many consecutive seeds to run.") var seeds: Int = 1
    @Option(help: "Steps per run.") var steps: Int = 5_000
    @Option(help: "Cluster size (3 or 5).") var nodes: Int = 3
    @Option(help: "Faults: all, none, or a comma-separated list of network, partitions, crashes, clock-skew, bit-flips, transfers, membership.")
    var faults: String = "all"
    @Flag(help: "Leaders answer reads from their lease (sound only without clock-skew).") var leaseReads = false
    @Flag(help: "Print the client history of a failing run.") var history = false

    func validate() throws {
        guard [3, 5].contains(nodes) else { throw ValidationError("--nodes must be 3 or 5") }
        guard steps >= 100 else { throw ValidationError("--steps must be at least 100") }
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1") }
        guard Faults.parse(faults) != nil else { throw ValidationError("unknown fault in --faults \(faults)") }
    }

    func run() throws {
        var failed = 0
        for offset in 0..<seeds {
            var options = SimulationOptions(seed: seed &+ UInt64(offset), steps: steps, nodes: nodes, faults: Faults.parse(faults)!)
            options.leaseReads = leaseReads
            let result = Simulation(options: options).run()
            print(result.summary)
            if !result.ok {
                failed += 1
                for violation in result.violations { print("  \(violation)") }
                // A linearizability failure names its minimal failing history itself; the others
                // come with the events that led up to them.
                if !result.violations.allSatisfy({ $0.contains("linearizability") }) {
                    print("  the last \(result.trace.count) events before the first violation:")
                    for event in result.trace { print("    \(event)") }
                }
                if history { for operation in result.history { print("    \(operation)") } }
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
