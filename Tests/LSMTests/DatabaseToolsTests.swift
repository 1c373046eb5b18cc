// Offline check and repair of a whole database directory (what `vectron-tool verify` and
// `repair` run on a database).

import Basics
import FileIO
import FileIOSim
import LSM
import StorageFormat
import Testing

@Suite struct DatabaseToolsTests {
    /// A closed database with segments on several levels and some unflushed writes in the WAL.
    func buildDatabase(_ fs: MemoryFileSystem) throws -> [[UInt8]: [UInt8]] {
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions())
        var model: [[UInt8]: [UInt8]] = [:]
        for index in 0..<3000 {
            try engine.put(key(index % 1200), value(index))
            model[key(index % 1200)] = value(index)
        }
        for index in stride(from: 0, to: 1200, by: 7) {
            try engine.delete(key(index))
            model[key(index)] = nil
        }
        engine.close()
        return model
    }

    func contents(_ fs: MemoryFileSystem) throws -> [[UInt8]: [UInt8]] {
        let engine = try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions())
        defer { engine.close() }
        var out: [[UInt8]: [UInt8]] = [:]
        for (key, value) in try engine.scan() { out[key] = value }
        return out
    }

    @Test func intactDatabaseChecksCleanAndRepairChangesNothing() throws {
        let fs = MemoryFileSystem()
        let model = try buildDatabase(fs)
        let check = DatabaseTools.check(directory: "/db", fileSystem: fs)
        #expect(check.isIntact, "\(check.problems) \(check.segments.flatMap(\.problems))")
        #expect(check.segments.count > 2)
        #expect(check.orphans.isEmpty)
        let report = try DatabaseTools.repair(directory: "/db", fileSystem: fs, options: smallOptions())
        #expect(!report.changed)
        #expect(try contents(fs) == model)
    }

    @Test func checkFindsAFlippedByteInEverySegment() throws {
        let fs = MemoryFileSystem()
        _ = try buildDatabase(fs)
        let check = DatabaseTools.check(directory: "/db", fileSystem: fs)
        var random = SeededRandom(seed: 11)
        for segment in check.segments {
            var bytes = fs.contents(of: segment.path)!
            let position = Int.random(in: 0..<bytes.count, using: &random)
            bytes[position] ^= UInt8(1) << UInt8(Int.random(in: 0..<8, using: &random))
            let original = fs.contents(of: segment.path)!
            fs.setContents(of: segment.path, bytes)
            let after = DatabaseTools.check(directory: "/db", fileSystem: fs)
            let problems = after.segments.first { $0.path == segment.path }?.problems ?? []
            #expect(!problems.isEmpty, "flip at \(position) of \(segment.path) not reported")
            fs.setContents(of: segment.path, original)
        }
        #expect(DatabaseTools.check(directory: "/db", fileSystem: fs).isIntact)
    }

    @Test func repairQuarantinesACorruptSegmentAndTheRestOpens() throws {
        let fs = MemoryFileSystem()
        let model = try buildDatabase(fs)
        let check = DatabaseTools.check(directory: "/db", fileSystem: fs)
        let victim = check.segments[check.segments.count / 2]
        var bytes = fs.contents(of: victim.path)!
        bytes[bytes.count / 3] ^= 0x40
        fs.setContents(of: victim.path, bytes)
        let report = try DatabaseTools.repair(directory: "/db", fileSystem: fs, options: smallOptions())
        #expect(report.changed)
        #expect(report.lost.count == 1, "\(report.lost)")
        #expect(fs.fileExists("/db/quarantine/" + fileName(of: victim.path)))
        #expect(DatabaseTools.check(directory: "/db", fileSystem: fs).isIntact)
        // Outside the lost segment's key range everything is exact. Inside it a key may be
        // missing or show an older value it really had — never anything else.
        let recovered = try contents(fs)
        let lower = Array(victim.descriptor!.smallestKey.dropLast(8)), upper = Array(victim.descriptor!.largestKey.dropLast(8))
        var history: [[UInt8]: Set<[UInt8]>] = [:]
        for index in 0..<3000 { history[key(index % 1200), default: []].insert(value(index)) }
        for index in 0..<1200 {
            let k = key(index)
            let inLostRange = compareBytes(k, lower) >= 0 && compareBytes(k, upper) <= 0
            if inLostRange {
                if let got = recovered[k] { #expect(history[k]!.contains(got), "key \(index) has a value it never had") }
            } else {
                #expect(recovered[k] == model[k], "key \(index) outside the lost range changed")
            }
        }
        #expect(recovered.count > model.count / 2)
    }

    @Test func repairRebuildsAMissingManifest() throws {
        let fs = MemoryFileSystem()
        let model = try buildDatabase(fs)
        // Lose CURRENT and the manifest directory entirely.
        for name in try fs.list("/db") where name.hasPrefix("manifest-") {
            for file in try fs.list("/db/" + name) { try fs.remove("/db/\(name)/\(file)") }
            try fs.remove("/db/" + name)
        }
        try fs.remove("/db/CURRENT")
        // The engine refuses to treat it as a new database.
        let refused = Result { () throws(StorageError) in try StorageEngine.open(directory: "/db", fileSystem: fs, options: smallOptions()) }
        guard case .failure(.inconsistent) = refused else {
            Issue.record("expected .inconsistent, got \(refused)")
            return
        }
        _ = try DatabaseTools.repair(directory: "/db", fileSystem: fs, options: smallOptions())
        #expect(try contents(fs) == model)
    }
}
