// Entry points of `vectron-tool`: recognise a file by its magic and hand it to the inspector of
// its format. Each new format (storage segments, manifests, HNSW checkpoints) adds a case here.

import FileIO
import LSM
import RecordLog
import Shard
import StorageFormat
import VectorIndex

public struct Finding: Sendable {
    public enum Status: String, Sendable { case ok, torn, corrupt, unknown }
    public var path: String
    public var format: String
    public var status: Status
    public var summary: String
    public var problems: [String]

    public var line: String {
        "\(status.rawValue.uppercased().padding(7)) \(path): \(format), \(summary)"
            + problems.map { "\n        - \($0)" }.joined()
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

public enum FileFormat: String, Sendable {
    case recordLogSegment = "record-log-segment"
    case storageSegment = "storage-segment"
    case hnswCheckpoint = "hnsw-checkpoint"
    case shardSnapshot = "shard-snapshot"
    case shardKeys = "shard-keys"
    case unknown

    /// Record-log segments carry their magic at the start; storage segments in their footer.
    public static func detect(prefix: [UInt8], suffix: [UInt8]) -> FileFormat {
        if prefix.count >= 8 && prefix[0..<8].elementsEqual(LogFormat.magic) { return .recordLogSegment }
        if prefix.count >= 8 && prefix[0..<8].elementsEqual(CheckpointHeader.magic) { return .hnswCheckpoint }
        if prefix.count >= 8 && prefix[0..<8].elementsEqual(ShardSnapshot.magic) { return .shardSnapshot }
        if prefix.count >= 8 && prefix[0..<8].elementsEqual(VectorState.keysMagic) { return .shardKeys }
        let magicAt = SegmentFormat.FooterField.magic
        if suffix.count == SegmentFormat.footerBytes && suffix[magicAt..<(magicAt + 8)].elementsEqual(SegmentFormat.magic) {
            return .storageSegment
        }
        return .unknown
    }

    static func detect(path: String, fileSystem: any FileSystem) throws(FileIOError) -> FileFormat {
        let handle = try fileSystem.open(path, options: .read)
        defer { handle.close() }
        let size = try handle.size()
        let prefix = try handle.read(at: 0, count: 16)
        let suffix = size >= UInt64(SegmentFormat.footerBytes)
            ? try handle.read(at: size - UInt64(SegmentFormat.footerBytes), count: SegmentFormat.footerBytes) : []
        return detect(prefix: prefix, suffix: suffix)
    }
}

public enum InspectionError: Error, CustomStringConvertible {
    case unknownFormat(String)
    case io(FileIOError)
    case storage(StorageError)
    public var description: String {
        switch self {
        case let .storage(error): return error.description
        case let .unknownFormat(path): return "\(path): not a file format vectron-tool knows (unrecognised magic)"
        case let .io(error): return error.description
        }
    }
}

public enum Inspector {
    public static func dump(path: String, fileSystem: any FileSystem) throws(InspectionError) -> (text: String, json: JSONValue) {
        do throws(FileIOError) {
            switch try FileFormat.detect(path: path, fileSystem: fileSystem) {
            case .recordLogSegment:
                let handle = try fileSystem.open(path, options: .read)
                let bytes = try handle.readAll()
                handle.close()
                // A lone file is dumped as if it were the newest segment, so a torn tail shows as such.
                return LogInspector.dump(bytes: bytes, name: path)
            case .storageSegment:
                return try StorageSegmentInspector.dump(path: path, fileSystem: fileSystem)
            case .hnswCheckpoint:
                return try CheckpointInspector.dump(path: path, fileSystem: fileSystem)
            case .shardSnapshot:
                return try ShardFileInspector.dumpSnapshot(path: path, fileSystem: fileSystem)
            case .shardKeys:
                return try ShardFileInspector.dumpKeys(path: path, fileSystem: fileSystem)
            case .unknown:
                break
            }
        } catch { throw .io(error) }
        throw .unknownFormat(path)
    }

    /// Verifies a file, or every file Vectron knows below a directory. A log directory (one
    /// holding `.vlog` segments) is verified as a whole, so that only its newest segment may
    /// end without a seal.
    public static func verify(path: String, fileSystem: any FileSystem,
                              progress: ((Int, Int, Int) -> Void)? = nil) throws(InspectionError) -> [Finding] {
        do throws(FileIOError) {
            return try verifyPath(path, fileSystem: fileSystem, progress: progress)
        } catch {
            throw .io(error)
        }
    }

    static func verifyPath(_ path: String, fileSystem: any FileSystem,
                           progress: ((Int, Int, Int) -> Void)?) throws(FileIOError) -> [Finding] {
        if fileSystem.isDirectory(path) && DatabaseTools.isDatabase(path, fileSystem: fileSystem) {
            return try verifyDatabase(path, fileSystem: fileSystem, progress: progress)
        }
        if fileSystem.isDirectory(path) {
            var findings: [Finding] = []
            let names = try fileSystem.list(path)
            if names.contains(where: { LogFormat.segmentNumber(fromFileName: $0) != nil }) {
                findings += try LogInspector.verify(directory: path, fileSystem: fileSystem, progress: progress)
            }
            for name in names where name != LogInspector.quarantineDirectory {
                let child = joinPath(path, name)
                if fileSystem.isDirectory(child) {
                    findings += try verifyPath(child, fileSystem: fileSystem, progress: progress)
                } else if name.hasSuffix(StorageSegmentInspector.fileSuffix) {
                    findings.append(try StorageSegmentInspector.verify(path: child, fileSystem: fileSystem))
                } else {
                    switch try FileFormat.detect(path: child, fileSystem: fileSystem) {
                    case .hnswCheckpoint: findings.append(try CheckpointInspector.verify(path: child, fileSystem: fileSystem))
                    case .shardSnapshot: findings.append(try ShardFileInspector.verifySnapshot(path: child, fileSystem: fileSystem))
                    case .shardKeys: findings.append(try ShardFileInspector.verifyKeys(path: child, fileSystem: fileSystem))
                    case .recordLogSegment, .storageSegment, .unknown: break
                    }
                }
            }
            return findings
        }
        switch try FileFormat.detect(path: path, fileSystem: fileSystem) {
        case .storageSegment:
            return [try StorageSegmentInspector.verify(path: path, fileSystem: fileSystem)]
        case .hnswCheckpoint:
            return [try CheckpointInspector.verify(path: path, fileSystem: fileSystem)]
        case .shardSnapshot:
            return [try ShardFileInspector.verifySnapshot(path: path, fileSystem: fileSystem)]
        case .shardKeys:
            return [try ShardFileInspector.verifyKeys(path: path, fileSystem: fileSystem)]
        case .recordLogSegment:
            // A single segment out of its directory: checked as the newest of its log.
            let handle = try fileSystem.open(path, options: .read)
            let bytes = try handle.readAll()
            handle.close()
            var check = LogInspector.SegmentCheck(name: fileName(of: path), path: path, scan: SegmentScanner.scan(bytes, isLast: true))
            LogInspector.checkPayloads(bytes, &check)
            var problems = check.problems
            var status: Finding.Status = problems.isEmpty ? .ok : .corrupt
            switch check.scan.end {
            case .clean: break
            case let .tornTail(offset):
                if status == .ok { status = .torn }
                problems.insert("torn tail at \(offsetString(offset)): \(bytes.count - offset) bytes", at: 0)
            case let .corrupt(error):
                status = .corrupt
                problems.insert("corruption: \(error)", at: 0)
            }
            return [Finding(path: path, format: FileFormat.recordLogSegment.rawValue, status: status,
                            summary: "\(check.scan.records.count) records, \(bytes.count) bytes", problems: problems)]
        case .unknown:
            return [Finding(path: path, format: "unknown", status: .unknown, summary: "unrecognised magic", problems: ["not a Vectron file"])]
        }
    }

    public static func repair(directory: String, fileSystem: any FileSystem,
                              progress: ((Int, Int, Int) -> Void)? = nil) throws(InspectionError) -> LogInspector.RepairReport {
        do throws(FileIOError) {
            return try LogInspector.repair(directory: directory, fileSystem: fileSystem, progress: progress)
        } catch { throw .io(error) }
    }

    /// A storage database: its manifest and every segment against it, plus its record logs
    /// (manifest and WAL) as logs.
    static func verifyDatabase(_ path: String, fileSystem: any FileSystem,
                               progress: ((Int, Int, Int) -> Void)?) throws(FileIOError) -> [Finding] {
        let check = DatabaseTools.check(directory: path, fileSystem: fileSystem)
        let segmentBytes = check.segments.reduce(UInt64(0)) { $0 + ($1.descriptor?.fileBytes ?? 0) }
        var findings = [Finding(path: path, format: "storage-database", status: check.problems.isEmpty ? .ok : .corrupt,
                                summary: "manifest \(check.manifestName ?? "unreadable"), \(check.segments.count) segments, \(segmentBytes) bytes, last sequence \(check.lastSequence)",
                                problems: check.problems + check.orphans.map { "\(fileName(of: $0)) is not named by the manifest (leftover; repair removes it)" })]
        for segment in check.segments {
            let summary = segment.descriptor.map { "level \($0.level), \($0.entryCount) entries, \($0.fileBytes) bytes" } ?? ""
            findings.append(Finding(path: segment.path, format: FileFormat.storageSegment.rawValue,
                                    status: segment.problems.isEmpty ? .ok : .corrupt, summary: summary, problems: segment.problems))
        }
        for name in try fileSystem.list(path) where name != DatabaseTools.quarantineDirectory {
            let child = joinPath(path, name)
            if fileSystem.isDirectory(child) { findings += try verifyPath(child, fileSystem: fileSystem, progress: progress) }
        }
        return findings
    }

    /// Repairs a storage database: its WAL as a record log first, then its segments and
    /// manifest (Sources/LSM/DatabaseTools.swift).
    public static func repairDatabase(directory: String, fileSystem: any FileSystem) throws(InspectionError) -> (log: LogInspector.RepairReport?, database: DatabaseRepairReport) {
        var logReport: LogInspector.RepairReport?
        let wal = joinPath(directory, "wal")
        if fileSystem.isDirectory(wal) {
            do throws(FileIOError) { logReport = try LogInspector.repair(directory: wal, fileSystem: fileSystem) } catch { throw .io(error) }
        }
        do throws(StorageError) {
            return (logReport, try DatabaseTools.repair(directory: directory, fileSystem: fileSystem))
        } catch {
            throw .storage(error)
        }
    }

    /// A storage database's manifest, level by level.
    public static func dumpDatabase(directory: String, fileSystem: any FileSystem) -> String {
        let check = DatabaseTools.check(directory: directory, fileSystem: fileSystem)
        var lines = ["\(directory): storage database, manifest \(check.manifestName ?? "unreadable"), last sequence \(check.lastSequence)"]
        let byLevel = Dictionary(grouping: check.segments.compactMap(\.descriptor), by: \.level)
        for level in byLevel.keys.sorted() {
            let descriptors = byLevel[level]!.sorted { compareInternalKeys($0.smallestKey, $1.smallestKey) < 0 }
            lines.append("level \(level): \(descriptors.count) segments, \(descriptors.reduce(0) { $0 + $1.fileBytes }) bytes")
            for d in descriptors {
                lines.append("  \(StorageEngine.segmentFileName(d.number)) \(d.fileBytes) B, \(d.entryCount) entries, sequences \(d.smallestSequence)…\(d.largestSequence), "
                             + "keys \(hexBytes(Array(d.smallestKey.dropLast(8)), limit: 16)) … \(hexBytes(Array(d.largestKey.dropLast(8)), limit: 16))")
            }
        }
        for problem in check.problems { lines.append("PROBLEM: \(problem)") }
        for orphan in check.orphans { lines.append("leftover (not in the manifest): \(fileName(of: orphan))") }
        return lines.joined(separator: "\n")
    }
}
