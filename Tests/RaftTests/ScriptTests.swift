// Text-driven protocol tests in the style of etcd raft's testdata: each file under
// Tests/RaftTests/testdata is a script of commands, each followed by `----` and the output it
// must print (every Ready: state changes, entries persisted, entries applied, messages sent).
// A behaviour change shows as a diff of these files. Regenerate after a deliberate change with
//   VECTRON_REWRITE_TESTDATA=1 swift test --filter ScriptTests
// and review the diff.
//
// Commands: cluster n=N [prevote=false] [checkquorum=false] [lease=true] · campaign ID ·
// tick ID [TIMES] · stabilize · propose ID TEXT · isolate ID · heal · drop FROM TO ·
// status · log ID · compact ID · transfer FROM TO · read-index ID CONTEXT ·
// change ID add-voter|add-learner|remove NODE · add-node ID · restart ID

import Foundation
import Testing
@testable import Raft

let testdataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testdata")

struct ScriptRunner {
    var cluster = TestCluster(size: 1)
    var blockedLinks: Set<[NodeID]> = []
    var isolated: Set<NodeID> = []

    mutating func run(_ command: String) -> [String] {
        let words = command.split(separator: " ").map(String.init)
        func id(_ position: Int) -> NodeID { NodeID(words[position])! }
        func option(_ name: String) -> String? {
            words.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }
        switch words[0] {
        case "cluster":
            let size = Int(option("n") ?? "3")!
            cluster = TestCluster(size: size, seed: 1, preVote: option("prevote") != "false",
                                  checkQuorum: option("checkquorum") != "false") { $0.leaseReads = option("lease") == "true" }
            blockedLinks = []
            isolated = []
            return status()
        case "campaign":
            cluster.nodes[id(1)]!.campaign()
            return []
        case "tick":
            cluster.tick(id(1), times: words.count > 2 ? Int(words[2])! : 1)
            return []
        case "stabilize":
            return stabilize()
        case "propose":
            return attempt { () throws(RaftError) in try cluster.nodes[id(1)]!.propose(Array(words[2...].joined(separator: " ").utf8)) }
        case "isolate":
            isolated.insert(id(1))
            return []
        case "heal":
            isolated = []
            blockedLinks = []
            return []
        case "drop":
            blockedLinks.insert([id(1), id(2)])
            return []
        case "status":
            return status()
        case "log":
            let node = cluster.node(id(1))
            var lines = ["snapshot \(node.latestSnapshot?.metadata.description ?? "none")"]
            if node.lastIndex >= node.firstIndex {
                for index in node.firstIndex...node.lastIndex { lines.append(node.entry(at: index)!.description) }
            }
            return lines
        case "compact":
            let node = cluster.node(id(1))
            let snapshot = Snapshot(metadata: SnapshotMetadata(index: node.applied, term: node.term(at: node.applied)!, membership: node.membership),
                                    data: Array(cluster.texts(id(1)).joined(separator: ",").utf8))
            return attempt { () throws(RaftError) in try cluster.nodes[id(1)]!.compact(snapshot: snapshot) }
        case "transfer":
            return attempt { () throws(RaftError) in try cluster.nodes[id(1)]!.transferLeadership(to: id(2)) }
        case "read-index":
            return attempt { () throws(RaftError) in try cluster.nodes[id(1)]!.readIndex(context: Array(words[2].utf8)) }
        case "change":
            let operation: ConfigurationChange.Operation = switch words[2] {
            case "add-voter": .addVoter
            case "add-learner": .addLearner
            default: .remove
            }
            return attempt { () throws(RaftError) in
                try cluster.nodes[id(1)]!.proposeConfigurationChange(ConfigurationChange(operation, id(3)))
            }
        case "add-node":
            let membership = cluster.nodes.values.first { $0.role == .leader }?.membership ?? cluster.node(1).membership
            cluster.addEmptyNode(id(1), membership: membership, seed: 1000 + id(1))
            return []
        case "restart":
            cluster.restart(id(1))
            return status()
        default:
            return ["unknown command \(words[0])"]
        }
    }

    func attempt(_ body: () throws(RaftError) -> Void) -> [String] {
        do throws(RaftError) {
            try body()
            return []
        } catch {
            return ["error: \(error)"]
        }
    }

    func status() -> [String] {
        cluster.nodes.keys.sorted().map { id in
            let node = cluster.node(id)
            return "\(id): \(node.role) term \(node.term) vote \(node.vote) leader \(node.leader) commit \(node.committed) applied \(node.applied) last \(node.lastIndex) \(node.membership)"
        }
    }

    mutating func stabilize() -> [String] {
        var lines: [String] = []
        while true {
            var moved = false
            for id in cluster.nodes.keys.sorted() where cluster.nodes[id]!.hasReady {
                moved = true
                let ready = cluster.process(id)
                lines.append("> \(id) ready")
                if let soft = ready.softState { lines.append("  became \(soft.role), leader \(soft.leader)") }
                if let hard = ready.hardState { lines.append("  hard state \(hard)") }
                if !ready.entries.isEmpty { lines.append("  persist " + ready.entries.map(\.description).joined(separator: ", ")) }
                if let snapshot = ready.snapshot { lines.append("  install snapshot \(snapshot.metadata)") }
                if !ready.committedEntries.isEmpty { lines.append("  apply " + ready.committedEntries.map(\.description).joined(separator: ", ")) }
                for message in ready.messages { lines.append("  send \(message)") }
                for read in ready.readStates { lines.append("  read state index \(read.index) context \(String(decoding: read.context, as: UTF8.self))") }
            }
            if !cluster.inFlight.isEmpty {
                moved = true
                let batch = cluster.inFlight
                cluster.inFlight = []
                for message in batch {
                    if isolated.contains(message.from) || isolated.contains(message.to) || blockedLinks.contains([message.from, message.to]) {
                        lines.append("> dropped \(message)")
                        continue
                    }
                    guard cluster.nodes[message.to] != nil else { continue }
                    cluster.nodes[message.to]!.step(message)
                }
            }
            if !moved { return lines }
        }
    }
}

@Suite struct ScriptTests {
    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: testdataDirectory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
    }

    @Test func thereAreScripts() {
        #expect(Self.files.count >= 8)
    }

    @Test(arguments: ScriptTests.files)
    func script(_ file: String) throws {
        let url = testdataDirectory.appendingPathComponent(file)
        let text = try String(contentsOf: url, encoding: .utf8)
        var runner = ScriptRunner()
        var output: [String] = []
        var lines = text.components(separatedBy: "\n")[...]
        var mismatches: [String] = []
        while let line = lines.popFirst() {
            if line.isEmpty || line.hasPrefix("#") {
                output.append(line)
                continue
            }
            // A command, then `----`, then its expected output up to a blank line.
            output.append(line)
            var expected: [String] = []
            if lines.first == "----" {
                lines.removeFirst()
                while let next = lines.first, !next.isEmpty {
                    expected.append(next)
                    lines.removeFirst()
                }
            }
            let actual = runner.run(line)
            output.append("----")
            output.append(contentsOf: actual.isEmpty ? ["ok"] : actual)
            let wanted = expected.isEmpty ? ["ok"] : expected
            if actual.isEmpty ? wanted != ["ok"] : actual != wanted {
                mismatches.append("\(file): `\(line)` printed:\n" + (actual.isEmpty ? ["ok"] : actual).joined(separator: "\n")
                                  + "\nexpected:\n" + wanted.joined(separator: "\n"))
            }
        }
        if ProcessInfo.processInfo.environment["VECTRON_REWRITE_TESTDATA"] != nil {
            var rewritten = output.joined(separator: "\n")
            if !rewritten.hasSuffix("\n") { rewritten += "\n" }
            try rewritten.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        #expect(mismatches.isEmpty, "\(mismatches.first ?? "")")
    }
}
