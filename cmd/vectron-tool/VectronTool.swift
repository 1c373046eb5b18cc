// vectron-tool: offline dump / verify / repair of every Vectron file format.
// Thin: parses flags, then calls the Inspection module.

import ArgumentParser
import FileIO
import Foundation
import Inspection
import LSM

@main
struct VectronTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vectron-tool",
        abstract: "Inspect, verify and repair Vectron data files offline (the server must not be running).",
        subcommands: [Dump.self, Verify.self, Repair.self])
}

/// Prints "verb: n/total files, MiB" to stderr at most once a second, only on long runs.
final class ProgressLine: @unchecked Sendable {
    let verb: String
    var last = Date()
    var printed = false
    init(_ verb: String) { self.verb = verb }
    func update(done: Int, total: Int, bytes: Int) {
        let now = Date()
        guard now.timeIntervalSince(last) >= 1 || (printed && done == total) else { return }
        last = now
        printed = true
        FileHandle.standardError.write(Data("\r\(verb): \(done)/\(total) files, \(bytes >> 20) MiB".utf8))
        if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a file's structure: offsets, field names, values, checksums.")
    @Argument(help: "The file to dump, or a storage database directory (its manifest, level by level).") var file: String
    @Flag(help: "Print one JSON object instead of annotated text.") var json = false

    func run() throws {
        let fileSystem = POSIXFileSystem()
        if fileSystem.isDirectory(file) {
            print(Inspector.dumpDatabase(directory: file, fileSystem: fileSystem))
            return
        }
        do {
            let output = try Inspector.dump(path: file, fileSystem: fileSystem)
            print(json ? output.json.rendered() : output.text)
        } catch {
            FileHandle.standardError.write(Data("vectron-tool dump: \(error)\n".utf8))
            throw ExitCode(2)
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every checksum and structural rule of a file or of every file below a directory.",
        discussion: "Exit status 0 when everything is intact, 1 when any problem is found, 2 when the path cannot be read.")
    @Argument(help: "A file or a data directory.") var path: String

    func run() throws {
        let progress = ProgressLine("verify")
        let findings: [Finding]
        do {
            findings = try Inspector.verify(path: path, fileSystem: POSIXFileSystem(), progress: progress.update)
        } catch {
            FileHandle.standardError.write(Data("vectron-tool verify: \(error)\n".utf8))
            throw ExitCode(2)
        }
        for finding in findings { print(finding.line) }
        let bad = findings.filter { $0.status != .ok }.count
        print("\(findings.count) files checked, \(findings.count - bad) ok, \(bad) with problems")
        if bad > 0 || findings.isEmpty { throw ExitCode(1) }
    }
}

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a record-log directory or a storage database openable: cut torn tails, move corrupt files to quarantine/ (never delete), rebuild a database's manifest from its surviving segments, report what was lost.")
    @Argument(help: "The record-log directory, or the storage database directory.") var directory: String

    func run() throws {
        let progress = ProgressLine("repair")
        let fileSystem = POSIXFileSystem()
        if fileSystem.fileExists(directory + "/CURRENT") {
            let reports: (log: LogInspector.RepairReport?, database: DatabaseRepairReport)
            do { reports = try Inspector.repairDatabase(directory: directory, fileSystem: fileSystem) } catch {
                FileHandle.standardError.write(Data("vectron-tool repair: \(error)\n".utf8))
                throw ExitCode(2)
            }
            if let log = reports.log, log.changed {
                for action in log.actions { print("wal: \(action)") }
                print("wal: lost records: \(log.lostRecords.count)")
            }
            for action in reports.database.actions { print(action) }
            for lost in reports.database.lost { print("lost: \(lost)") }
            if !(reports.log?.changed ?? false) && !reports.database.changed { print("nothing to repair") }
            return
        }
        let report: LogInspector.RepairReport
        do {
            report = try Inspector.repair(directory: directory, fileSystem: POSIXFileSystem(), progress: progress.update)
        } catch {
            FileHandle.standardError.write(Data("vectron-tool repair: \(error)\n".utf8))
            throw ExitCode(2)
        }
        if !report.changed {
            print("nothing to repair")
            return
        }
        for action in report.actions { print(action) }
        print("unreadable bytes: \(report.unreadableBytes)")
        if report.lostRecords.isEmpty {
            print("lost records: none")
        } else {
            print("lost records: \(report.lostRecords.count)")
            for record in report.lostRecords { print("  stream \(record.stream) LSN \(record.lsn) kind \(record.kind)") }
        }
    }
}
