// dump / verify / repair for the unified record log (Format/log.md).
//
// `verify` checks more than recovery does: besides every checksum and structural rule, it
// decodes every checkpoint and marker payload and decompresses every LZ4 payload. It opens
// nothing for writing. `repair` changes only what it must: it cuts a torn tail, and moves a
// corrupt segment (or one whose header never became durable) into `quarantine/` — it never
// deletes — then reports exactly which records were lost with it.

import Basics
import Compression
import FileIO
import RecordLog
import Wire

public enum LogInspector {
    /// One segment's verdict.
    public struct SegmentCheck: Sendable {
        public var name: String
        public var path: String
        public var scan: SegmentScan
        /// Problems beyond the scan's own verdict (payloads, LSN continuity, log id).
        public var problems: [String] = []
        public var truncation = TruncationState()
    }

    /// Scans every segment of a log directory in order, the way recovery would.
    public static func check(directory: String, fileSystem: any FileSystem,
                             progress: ((Int, Int, Int) -> Void)? = nil) throws(FileIOError) -> [SegmentCheck] {
        let numbers = try RecordLog.segmentNumbers(in: directory, fileSystem: fileSystem)
        var checks: [SegmentCheck] = []
        var logID: UInt64?
        var bytesRead = 0
        for (position, number) in numbers.enumerated() {
            let name = LogFormat.segmentFileName(number)
            let path = joinPath(directory, name)
            let handle = try fileSystem.open(path, options: .read)
            let bytes = try handle.readAll()
            handle.close()
            bytesRead += bytes.count
            // A segment sealed by an unsynced batch may be torn like the newest one (its
            // successor's header says so; Format/log.md §7.4).
            let isLast = position == numbers.count - 1
            let mayBeTorn: Bool
            do throws(LogError) {
                mayBeTorn = isLast ? true : try RecordLog.predecessorUnsynced(numbers[position + 1], isNewest: position + 2 == numbers.count,
                                                                             directory: directory, fileSystem: fileSystem)
            } catch {
                if case let .io(ioError) = error { throw ioError }
                mayBeTorn = false
            }
            var check = SegmentCheck(name: name, path: path, scan: SegmentScanner.scan(bytes, isLast: mayBeTorn, expectedLogID: logID))
            if logID == nil { logID = check.scan.header?.logID }
            checkPayloads(bytes, &check)
            // LSN continuity is judged only against a predecessor that scanned clean.
            let previous = checks.last.flatMap { previous -> SegmentCheck? in
                if case .clean = previous.scan.end { return previous }
                return nil
            }
            if let problem = SegmentScanner.checkSequence(
                number: number, scan: check.scan,
                previousNumber: previous.flatMap { LogFormat.segmentNumber(fromFileName: $0.name) }, previous: previous?.scan) {
                check.problems.append(problem.description)
            }
            checks.append(check)
            progress?(position + 1, numbers.count, bytesRead)
        }
        return checks
    }

    /// Decodes every checkpoint and marker payload and decompresses every LZ4 payload.
    static func checkPayloads(_ bytes: [UInt8], _ check: inout SegmentCheck) {
        for record in check.scan.records {
            let payload = Array(bytes[record.payloadRange])
            let at = UInt64(record.payloadRange.lowerBound)
            switch record.header.kind {
            case .checkpoint:
                do throws(DecodeError) {
                    check.truncation.merge(try TruncationState.decode(payload, baseOffset: at))
                } catch {
                    check.problems.append("checkpoint payload: \(error)")
                }
            default:
                if record.header.flags.contains(.lz4) {
                    do throws(CompressionError) {
                        _ = try LZ4.decompress(payload, decompressedSize: Int(record.header.payloadLength),
                                               limit: RecordLogOptions.recordPayloadBytesMaxLimit)
                    } catch {
                        check.problems.append("record at \(offsetString(record.offset)) (LSN \(record.header.lsn)): \(error)")
                    }
                }
            }
        }
    }

    // MARK: dump

    public static func dump(bytes: [UInt8], name: String) -> (text: String, json: JSONValue) {
        let scan = SegmentScanner.scan(bytes, isLast: true)
        var lines: [String] = ["\(name): unified record log segment, \(bytes.count) bytes"]
        var jsonRecords: [JSONValue] = []
        var jsonHeader: JSONValue = .null
        if let header = scan.header {
            let f = LogFormat.HeaderField.self
            lines += [
                "\(offsetString(f.magic))  magic            \"VECTRLOG\"",
                "\(offsetString(f.version))  version          \(header.version)",
                "\(offsetString(f.headerSize))  header size      \(LogFormat.segmentHeaderBytes)",
                "\(offsetString(f.flags))  flags            \(header.flags.rawValue)\(header.flags.contains(.predecessorUnsynced) ? " (predecessor-unsynced)" : "")",
                "\(offsetString(f.logID))  log id           \(hex64(header.logID))",
                "\(offsetString(f.segmentNumber))  segment number   \(header.segmentNumber)",
                "\(offsetString(f.firstLSN))  first LSN        \(header.firstLSN)",
                "\(offsetString(f.createdUnixNanos))  created          \(header.createdUnixNanos) ns since 1970",
                "\(offsetString(f.reserved))  reserved         0",
                "\(offsetString(f.checksum))  header checksum  \(hex64(bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: f.checksum, as: UInt64.self)) })) (XXH3-64 of bytes 0..<56, ok)",
            ]
            jsonHeader = .object([
                ("version", .uint(UInt64(header.version))), ("log_id", .uint(header.logID)),
                ("segment_number", .uint(header.segmentNumber)), ("first_lsn", .uint(header.firstLSN)),
                ("created_unix_nanos", .uint(header.createdUnixNanos)),
            ])
        }
        for record in scan.records {
            let h = record.header
            var flagNames: [String] = []
            if h.flags.contains(.lz4) { flagNames.append("lz4") }
            if h.flags.contains(.relocated) { flagNames.append("relocated") }
            let payload = bytes[record.payloadRange]
            var detail = ""
            var jsonDetail: [(String, JSONValue)] = []
            switch h.kind {
            case .checkpoint:
                if let state = try? TruncationState.decode(Array(payload)) {
                    let streams = state.streams.keys.sorted().map { stream -> String in
                        let s = state.streams[stream]!
                        return "stream \(stream): prefix<\(s.prefixBound)" + s.deadRanges.map { " dead[\($0.lowerBound),\($0.upperBound))" }.joined()
                    }
                    detail = streams.isEmpty ? "  (no truncations)" : "  " + streams.joined(separator: "; ")
                    jsonDetail.append(("truncation", .array(state.streams.keys.sorted().map { stream in
                        let s = state.streams[stream]!
                        return .object([("stream", .uint(stream)), ("prefix_bound", .uint(s.prefixBound)),
                                        ("dead_ranges", .array(s.deadRanges.map { .array([.uint($0.lowerBound), .uint($0.upperBound)]) }))])
                    })))
                }
            case .truncatePrefix, .truncateSuffix:
                if payload.count == 8 {
                    let bound = payload.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                    detail = h.kind == .truncatePrefix ? "  drops LSN < \(bound)" : "  drops LSN in [\(bound), \(h.lsn))"
                    jsonDetail.append(("bound", .uint(bound)))
                }
            case .seal:
                detail = "  (segment sealed)"
            default:
                detail = "  payload " + hexBytes(payload, limit: 24)
                jsonDetail.append(("payload_hex_prefix", .string(hexBytes(payload, limit: 24))))
            }
            lines.append("\(offsetString(record.offset))  record LSN \(h.lsn)  stream \(h.stream)  kind \(h.kind)  "
                         + "stored \(h.storedLength) B  payload \(h.payloadLength) B  synced@\(h.syncedOffset)"
                         + (flagNames.isEmpty ? "" : "  [\(flagNames.joined(separator: ","))]")
                         + "  checksum \(hex64(h.checksum)) ok" + detail)
            jsonRecords.append(.object([
                ("offset", .uint(UInt64(record.offset))), ("lsn", .uint(h.lsn)), ("stream", .uint(h.stream)),
                ("kind", .string(h.kind.description)), ("kind_code", .uint(UInt64(h.kind.rawValue))),
                ("flags", .array(flagNames.map { .string($0) })), ("stored_length", .uint(UInt64(h.storedLength))),
                ("payload_length", .uint(UInt64(h.payloadLength))), ("synced_offset", .uint(UInt64(h.syncedOffset))),
                ("checksum", .string(hex64(h.checksum))),
            ] + jsonDetail))
        }
        let endText: String
        let endJSON: JSONValue
        switch scan.end {
        case .clean:
            endText = "\(offsetString(scan.validEnd))  end (\(scan.isSealed ? "sealed" : "open, newest segment"))"
                + (scan.zeroFilledTailBytes > 0 ? "; zero-filled tail of \(scan.zeroFilledTailBytes) bytes (prepared, unused)" : "")
            endJSON = .object([("status", .string("clean")), ("offset", .uint(UInt64(scan.validEnd))), ("sealed", .bool(scan.isSealed)),
                               ("zero_filled_tail_bytes", .uint(UInt64(scan.zeroFilledTailBytes)))])
        case let .tornTail(offset):
            endText = "\(offsetString(offset))  torn tail: \(bytes.count - offset) bytes that are not a valid record and were never proven durable"
            endJSON = .object([("status", .string("torn_tail")), ("offset", .uint(UInt64(offset))), ("bytes", .uint(UInt64(bytes.count - offset)))])
        case let .corrupt(error):
            endText = "\(offsetString(Int(clamping: error.offset)))  CORRUPT: \(error)"
            endJSON = .object([("status", .string("corrupt")), ("offset", .uint(error.offset)), ("error", .string(error.description))])
        }
        lines.append(endText)
        let json: JSONValue = .object([("file", .string(name)), ("format", .string("record-log-segment")),
                                       ("size", .uint(UInt64(bytes.count))), ("header", jsonHeader),
                                       ("records", .array(jsonRecords)), ("end", endJSON)])
        return (lines.joined(separator: "\n"), json)
    }

    // MARK: verify

    /// Findings for a log directory: one per segment.
    public static func verify(directory: String, fileSystem: any FileSystem,
                              progress: ((Int, Int, Int) -> Void)? = nil) throws(FileIOError) -> [Finding] {
        try check(directory: directory, fileSystem: fileSystem, progress: progress).map { check in
            var problems = check.problems
            var status: Finding.Status = .ok
            switch check.scan.end {
            case .clean: break
            case let .tornTail(offset):
                status = .torn
                problems.insert("torn tail at \(offsetString(offset)): \(check.scan.fileSize - offset) bytes of writes that were never acknowledged (repair cuts them)", at: 0)
            case let .corrupt(error):
                status = .corrupt
                problems.insert("corruption: \(error)", at: 0)
            }
            if status == .ok && !problems.isEmpty { status = .corrupt }
            let liveStreams = Set(check.scan.records.filter { $0.header.kind.isUser }.map(\.header.stream)).count
            let summary = "\(check.scan.records.count) records, \(liveStreams) streams, \(check.scan.fileSize) bytes"
                + (check.scan.isSealed ? ", sealed" : ", newest")
            return Finding(path: check.path, format: "record-log-segment", status: status, summary: summary, problems: problems)
        }
    }

    // MARK: repair

    public struct LostRecord: Sendable, Equatable {
        public var stream: UInt64
        public var lsn: UInt64
        public var kind: UInt8
    }

    public struct RepairReport: Sendable {
        public var actions: [String] = []
        /// Live records that are no longer in the log after the repair (only those that were
        /// readable; bytes past a corruption point cannot be attributed to records).
        public var lostRecords: [LostRecord] = []
        /// Bytes that could not be read as records at all (torn or corrupt regions).
        public var unreadableBytes = 0
        public var changed: Bool { !actions.isEmpty }
    }

    public static let quarantineDirectory = "quarantine"

    public static func repair(directory: String, fileSystem: any FileSystem,
                              progress: ((Int, Int, Int) -> Void)? = nil) throws(FileIOError) -> RepairReport {
        var report = RepairReport()
        let checks = try check(directory: directory, fileSystem: fileSystem, progress: progress)
        let quarantine = joinPath(directory, quarantineDirectory)
        var removed: [SegmentCheck] = []
        var kept: [SegmentCheck] = []
        for (position, check) in checks.enumerated() {
            let isLast = position == checks.count - 1
            switch check.scan.end {
            case let .tornTail(offset) where isLast && check.problems.isEmpty && !check.scan.records.isEmpty:
                let handle = try fileSystem.open(check.path, options: .readWrite)
                try handle.truncate(to: UInt64(offset))
                try handle.sync()
                handle.close()
                report.unreadableBytes += check.scan.fileSize - offset
                report.actions.append("cut torn tail of \(check.name) at \(offsetString(offset)) (\(check.scan.fileSize - offset) bytes, never acknowledged)")
                kept.append(check)
            case .clean where check.problems.isEmpty:
                kept.append(check)
            default:
                try fileSystem.createDirectory(quarantine)
                var target = joinPath(quarantine, check.name)
                var n = 1
                while fileSystem.fileExists(target) { target = joinPath(quarantine, check.name + ".\(n)"); n += 1 }
                try fileSystem.rename(check.path, to: target)
                try fileSystem.syncDirectory(quarantine)
                try fileSystem.syncDirectory(directory)
                let reason: String
                switch check.scan.end {
                case let .corrupt(error): reason = "corrupt: \(error)"
                case let .tornTail(offset): reason = "header or first record never became durable (torn at \(offsetString(offset)))"
                case .clean: reason = check.problems.joined(separator: "; ")
                }
                report.unreadableBytes += check.scan.fileSize - check.scan.validEnd
                report.actions.append("moved \(check.name) to \(quarantineDirectory)/\(fileName(of: target)): \(reason)")
                removed.append(check)
            }
        }
        // Records of moved segments that are live and have no copy in a kept segment are lost.
        var truncation = TruncationState()
        for check in checks { truncation.merge(check.truncation) }
        for check in kept { mergeMarkers(check, into: &truncation, fileSystem: fileSystem) }
        var present = Set<[UInt64]>()
        for check in kept {
            for record in check.scan.records where record.header.kind.isUser { present.insert([record.header.stream, record.header.lsn]) }
        }
        var lost: [LostRecord] = []
        for check in removed {
            for record in check.scan.records where record.header.kind.isUser {
                let h = record.header
                if truncation.isLive(stream: h.stream, lsn: h.lsn) && !present.contains([h.stream, h.lsn]) {
                    lost.append(LostRecord(stream: h.stream, lsn: h.lsn, kind: h.kind.rawValue))
                }
            }
        }
        report.lostRecords = lost.sorted { ($0.stream, $0.lsn) < ($1.stream, $1.lsn) }
        return report
    }

    static func mergeMarkers(_ check: SegmentCheck, into truncation: inout TruncationState, fileSystem: any FileSystem) {
        guard let handle = try? fileSystem.open(check.path, options: .read), let bytes = try? handle.readAll() else { return }
        handle.close()
        for record in check.scan.records where record.header.kind == .truncatePrefix || record.header.kind == .truncateSuffix {
            guard record.payloadRange.upperBound <= bytes.count, record.payloadRange.count == 8 else { continue }
            let bound = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: record.payloadRange.lowerBound, as: UInt64.self)) }
            if record.header.kind == .truncatePrefix {
                truncation.streams[record.header.stream, default: StreamTruncation()].raisePrefix(to: bound)
            } else if bound < record.header.lsn {
                truncation.streams[record.header.stream, default: StreamTruncation()].addDeadRange(bound..<record.header.lsn)
            }
        }
    }
}
