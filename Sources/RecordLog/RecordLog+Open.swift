// Opening a record log: create a new one, or recover an existing one.
//
// Recovery reads every segment in order with `SegmentScanner`. Corruption anywhere stops the
// open with a typed error naming the segment and offset (`vectron-tool repair` deals with it);
// a torn tail of the newest segment (unsynced writes cut by a crash) is cut off and reported.
// Truncation state is the merge of every checkpoint and marker found, records are live by that
// state, and a relocated copy of a record replaces the original. The log then seals the newest
// segment and starts a fresh one, so that appends never go to a segment recovery has touched,
// and deletes segments that hold nothing live.

import Basics
import Compression
import FileIO
import Wire

extension RecordLog {
    public static let lockFileName = "LOCK"

    public static func open(
        directory: String, fileSystem: any FileSystem, options: RecordLogOptions = RecordLogOptions()
    ) throws(LogError) -> (RecordLog, RecoveryReport) {
        try options.validate()
        let directoryLock: any FileLock
        do throws(FileIOError) { directoryLock = try fileSystem.lockDirectory(directory, lockFileName: lockFileName) } catch {
            if error.kind == .locked { throw .locked(directory) }
            throw .io(error)
        }
        do throws(LogError) {
            return try recover(directory: directory, fileSystem: fileSystem, options: options, directoryLock: directoryLock)
        } catch {
            directoryLock.unlock()
            throw error
        }
    }

    /// Segment numbers present in `directory`, ascending.
    public static func segmentNumbers(in directory: String, fileSystem: any FileSystem) throws(FileIOError) -> [UInt64] {
        try fileSystem.list(directory).compactMap(LogFormat.segmentNumber(fromFileName:)).sorted()
    }

    /// Cuts torn tails and removes segments whose creation was torn (after recovery's checks).
    static func applyTornRepairs(_ repairs: [(path: String, handle: any FileHandle, offset: Int?)],
                                 directory: String, fileSystem: any FileSystem) throws(LogError) {
        do throws(FileIOError) {
            for repair in repairs {
                if let offset = repair.offset {
                    try repair.handle.truncate(to: UInt64(offset))
                    try repair.handle.sync()
                } else {
                    try fileSystem.remove(repair.path)
                }
            }
            if repairs.contains(where: { $0.offset == nil }) { try fileSystem.syncDirectory(directory) }
        } catch {
            throw .io(error)
        }
    }

    static func readSegment(_ path: String, fileSystem: any FileSystem, writable: Bool) throws(LogError) -> (any FileHandle, [UInt8]) {
        do throws(FileIOError) {
            let handle = try fileSystem.open(path, options: writable ? .readWrite : .read)
            do { return (handle, try handle.readAll()) } catch {
                handle.close()
                throw error
            }
        } catch {
            throw .io(error)
        }
    }

    /// Whether segment `number`'s header says that its predecessor was sealed unsynced. An
    /// unreadable header says no (its own scan reports it) — unless the segment is the newest:
    /// then its creation may have been cut by the crash (it holds nothing), and the rotation
    /// that created it may have left its predecessor unsynced.
    public static func predecessorUnsynced(_ number: UInt64, isNewest: Bool = false, directory: String,
                                           fileSystem: any FileSystem) throws(LogError) -> Bool {
        do throws(FileIOError) {
            let handle = try fileSystem.open(joinPath(directory, LogFormat.segmentFileName(number)), options: .read)
            defer { handle.close() }
            let bytes = try handle.read(at: 0, count: LogFormat.segmentHeaderBytes)
            guard let header = try? SegmentHeader.decode(bytes) else { return isNewest }
            return header.flags.contains(.predecessorUnsynced)
        } catch {
            throw .io(error)
        }
    }

    /// After a torn tail in a segment that is not the newest: every newer segment must have been
    /// created while an older one was unsynced, and none may hold a record proving a sync after
    /// its creation (a sync makes every older segment durable first, so that proof would make the
    /// tear corruption). Then none of them holds anything ever synced, and all are removed —
    /// the log's content stays a prefix of what was written.
    static func dropUnsyncedSuccessors(
        of tornName: String, tornAt offset: Int, numbers: ArraySlice<UInt64>, directory: String, fileSystem: any FileSystem,
        writable: Bool, logID: UInt64?, analysis: inout Analysis, report: inout RecoveryReport
    ) throws(LogError) {
        var removals: [(path: String, handle: any FileHandle, offset: Int?)] = []
        func fail(_ reason: String) -> LogError {
            for removal in removals { removal.handle.close() }
            return .corruption(segment: tornName, DecodeError(field: "record", offset: UInt64(offset), reason: .invalid(reason)))
        }
        for number in numbers {
            let name = LogFormat.segmentFileName(number)
            let path = joinPath(directory, name)
            let (handle, bytes) = try readSegment(path, fileSystem: fileSystem, writable: writable)
            removals.append((path, handle, nil))
            let scan = SegmentScanner.scan(bytes, isLast: true, expectedLogID: logID,
                                           payloadBytesMax: RecordLogOptions.recordPayloadBytesMaxLimit)
            if case let .corrupt(error) = scan.end {
                for removal in removals { removal.handle.close() }
                throw .corruption(segment: name, error)
            }
            // The newest segment's creation may itself have been cut short: nothing in it.
            if scan.header == nil && scan.records.isEmpty && number == numbers.last { continue }
            guard let header = scan.header, header.flags.contains(.predecessorUnsynced) else {
                throw fail("damaged, but \(name) was created after it had been synced")
            }
            let contentStart = scan.records.first.map { $0.offset + $0.header.totalLength } ?? bytes.count
            if scan.records.contains(where: { Int($0.header.syncedOffset) > contentStart }) {
                throw fail("damaged, but a record of \(name) proves it had been synced")
            }
        }
        for removal in removals { report.segmentsRemoved.append(fileName(of: removal.path)) }
        analysis.tornRepairs.append(contentsOf: removals)
    }

    static func fileName(of path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    struct FoundSegment {
        var number: UInt64
        var handle: any FileHandle
        var scan: SegmentScan
    }

    /// What a directory holds, read without changing anything: the segments that survive (in
    /// order), the torn tails recovery would cut, and the merged truncation state.
    struct Analysis {
        var found: [FoundSegment] = []
        var logID: UInt64?
        /// Torn tails to cut (offset) or torn segments to remove (nil), applied after the checks.
        var tornRepairs: [(path: String, handle: any FileHandle, offset: Int?)] = []
        var truncation = TruncationState()
        var nextLSN: UInt64 = 1

        func closeHandles() {
            for segment in found { segment.handle.close() }
            for repair in tornRepairs where repair.offset == nil { repair.handle.close() }
        }
    }

    static func analyze(directory: String, fileSystem: any FileSystem, writable: Bool,
                        report: inout RecoveryReport) throws(LogError) -> Analysis {
        var analysis = Analysis()
        var numbers: [UInt64]
        do throws(FileIOError) { numbers = try segmentNumbers(in: directory, fileSystem: fileSystem) } catch { throw .io(error) }
        do throws(LogError) {
            for (position, number) in numbers.enumerated() {
                let name = LogFormat.segmentFileName(number)
                let path = joinPath(directory, name)
                let isLast = position == numbers.count - 1
                // A newer segment created while this one was sealed but not yet synced allows a
                // torn tail here too, if nothing newer proves it synced (Format/log.md §7.4).
                let mayBeTorn = isLast ? true : try predecessorUnsynced(numbers[position + 1], isNewest: position + 2 == numbers.count,
                                                                       directory: directory, fileSystem: fileSystem)
                let (handle, bytes) = try readSegment(path, fileSystem: fileSystem, writable: writable)
                let scan = SegmentScanner.scan(bytes, isLast: mayBeTorn, expectedLogID: analysis.logID,
                                               payloadBytesMax: RecordLogOptions.recordPayloadBytesMaxLimit)
                report.segmentsScanned += 1
                report.recordsScanned += scan.records.count
                var tornHere = false
                switch scan.end {
                case let .corrupt(error):
                    handle.close()
                    throw .corruption(segment: name, error)
                case let .tornTail(offset):
                    tornHere = true
                    // Cut (or removed) only after every check has passed: an open that reports
                    // corruption must leave the files as it found them.
                    report.tornTails.append(.init(segment: name, offset: offset, droppedBytes: bytes.count - offset))
                    if scan.records.isEmpty {
                        guard isLast else {
                            handle.close()
                            throw .corruption(segment: name, DecodeError(field: "segment", offset: UInt64(offset),
                                                                         reason: .invalid("torn before its checkpoint, with newer segments after it")))
                        }
                        // The segment's creation never became durable: it holds nothing.
                        analysis.tornRepairs.append((path, handle, nil))
                        report.segmentsRemoved.append(name)
                        continue
                    }
                    analysis.tornRepairs.append((path, handle, offset))
                case .clean:
                    // An older segment that ends without its seal lost it (and maybe more) at a
                    // record boundary.
                    tornHere = !isLast && !scan.isSealed
                }
                if analysis.logID == nil { analysis.logID = scan.header?.logID }
                if let problem = SegmentScanner.checkSequence(number: number, scan: scan, previousNumber: analysis.found.last?.number,
                                                              previous: analysis.found.last?.scan) {
                    handle.close()
                    throw .corruption(segment: name, problem)
                }
                analysis.found.append(FoundSegment(number: number, handle: handle, scan: scan))
                if tornHere && !isLast {
                    try dropUnsyncedSuccessors(of: name, tornAt: scan.validEnd, numbers: numbers[(position + 1)...],
                                               directory: directory, fileSystem: fileSystem, writable: writable,
                                               logID: analysis.logID, analysis: &analysis, report: &report)
                    break
                }
            }

            // Truncation state: the merge of every checkpoint and marker.
            for segment in analysis.found {
                analysis.nextLSN = max(analysis.nextLSN, segment.scan.header!.firstLSN)
                if let lastFresh = segment.scan.lastFreshLSN { analysis.nextLSN = max(analysis.nextLSN, lastFresh + 1) }
                for record in segment.scan.records {
                    switch record.header.kind {
                    case .checkpoint, .truncatePrefix, .truncateSuffix:
                        let payload: [UInt8]
                        do throws(FileIOError) {
                            payload = try segment.handle.read(at: UInt64(record.payloadRange.lowerBound), count: record.payloadRange.count)
                        } catch { throw .io(error) }
                        if record.header.kind == .checkpoint {
                            do throws(DecodeError) {
                                analysis.truncation.merge(try TruncationState.decode(payload, baseOffset: UInt64(record.payloadRange.lowerBound)))
                            } catch {
                                throw .corruption(segment: LogFormat.segmentFileName(segment.number), error)
                            }
                        } else {
                            let bound = payload.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                            if record.header.kind == .truncatePrefix {
                                analysis.truncation.streams[record.header.stream, default: StreamTruncation()].raisePrefix(to: bound)
                            } else if bound < record.header.lsn {
                                analysis.truncation.streams[record.header.stream, default: StreamTruncation()].addDeadRange(bound..<record.header.lsn)
                            }
                        }
                    default:
                        break
                    }
                }
            }
        } catch {
            analysis.closeHandles()
            throw error
        }
        return analysis
    }

    /// The live records of `stream`, in LSN order, read without changing any file (no torn
    /// tail is cut, nothing is sealed): for tools, and for logs that are read once and replaced.
    public static func readLive(directory: String, fileSystem: any FileSystem, stream: UInt64) throws(LogError) -> [StoredRecord] {
        var report = RecoveryReport()
        let analysis = try analyze(directory: directory, fileSystem: fileSystem, writable: false, report: &report)
        defer { analysis.closeHandles() }
        var byLSN: [UInt64: StoredRecord] = [:]
        for segment in analysis.found {
            for record in segment.scan.records where record.header.kind.isUser && record.header.stream == stream {
                let header = record.header
                guard analysis.truncation.isLive(stream: stream, lsn: header.lsn) else { continue }
                var payload: [UInt8]
                do throws(FileIOError) {
                    payload = try segment.handle.read(at: UInt64(record.payloadRange.lowerBound), count: record.payloadRange.count)
                } catch { throw .io(error) }
                if header.flags.contains(.lz4) {
                    do throws(CompressionError) {
                        payload = try LZ4.decompress(payload, decompressedSize: Int(header.payloadLength), limit: RecordLogOptions.recordPayloadBytesMaxLimit)
                    } catch {
                        throw .corruption(segment: LogFormat.segmentFileName(segment.number),
                                          DecodeError(field: "payload", offset: UInt64(record.offset) + 40, reason: .invalid(error.description)))
                    }
                }
                // A later copy (relocated) replaces an earlier one.
                byLSN[header.lsn] = StoredRecord(lsn: header.lsn, stream: stream, kind: header.kind.rawValue, payload: payload)
            }
        }
        return byLSN.values.sorted { $0.lsn < $1.lsn }
    }

    /// Removes a prepared file a previous run left (it may hold anything: a crash can fall
    /// between writing a header into it and renaming it) and, unless preparation is off,
    /// prepares the file of the segment that opening creates — inline, as the log is not open yet.
    static func prepareForOpen(directory: String, fileSystem: any FileSystem, options: RecordLogOptions) throws(LogError) -> (any FileHandle)? {
        do throws(FileIOError) {
            if try fileSystem.list(directory).contains(LogFormat.preparedFileName) {
                try fileSystem.remove(joinPath(directory, LogFormat.preparedFileName))
            }
            if options.segmentPreparation == .none { return nil }
            return try RecordLog.prepareSegmentFile(directory: directory, fileSystem: fileSystem, bytes: options.segmentBytesMax)
        } catch {
            throw .io(error)
        }
    }

    static func recover(
        directory: String, fileSystem: any FileSystem, options: RecordLogOptions, directoryLock: any FileLock
    ) throws(LogError) -> (RecordLog, RecoveryReport) {
        var report = RecoveryReport()
        let analysis = try analyze(directory: directory, fileSystem: fileSystem, writable: true, report: &report)
        let found = analysis.found
        let tornRepairs = analysis.tornRepairs
        let truncation = analysis.truncation
        var nextLSN = analysis.nextLSN

        guard let logID = analysis.logID, let last = found.last else {
            // No segment survived (or there never was one): a new log.
            try applyTornRepairs(tornRepairs, directory: directory, fileSystem: fileSystem)
            report.isNewLog = true
            let id = options.logID ?? UInt64.random(in: 1...UInt64.max)
            let (handle, size) = try createSegment(number: 1, logID: id, firstLSN: 1, truncation: TruncationState(),
                                                   directory: directory, fileSystem: fileSystem,
                                                   createdUnixNanos: options.creationTimeOverride,
                                                   prepared: try prepareForOpen(directory: directory, fileSystem: fileSystem, options: options))
            let log = RecordLog(directory: directory, options: options, logID: id, fileSystem: fileSystem,
                                directoryLock: directoryLock,
                                active: ActiveSegment(number: 1, handle: handle, size: size, syncedSize: size, contentStart: size),
                                nextLSN: 2, truncation: TruncationState())
            log.segments[1] = SegmentState(handle: handle)
            log.statistics.segmentsCreated = 1
            log.statistics.segmentsPrepared = options.segmentPreparation == .none ? 0 : 1
            log.startPreparing()
            return (log, report)
        }

        try applyTornRepairs(tornRepairs, directory: directory, fileSystem: fileSystem)

        // Seal the newest segment (unless a crash left it sealed already) and start a new one.
        var lastSize = last.scan.validEnd
        // What recovery read may still be only in the page cache (the crashed process wrote it,
        // the machine did not crash): make it durable before anything is written after it.
        // So may older segments that were sealed unsynced (their successors say so).
        do throws(FileIOError) {
            for (segment, successor) in zip(found, found.dropFirst())
            where successor.scan.header?.flags.contains(.predecessorUnsynced) == true {
                try segment.handle.dataSync()
            }
            try last.handle.dataSync()
        } catch { throw .io(error) }
        if !last.scan.isSealed {
            var buffer: [UInt8] = []
            RecordHeader.encode(stream: 0, lsn: nextLSN, syncedOffset: UInt32(lastSize), kind: .seal, flags: [],
                                payloadLength: 0, storedPayload: UnsafeRawBufferPointer(start: nil, count: 0), into: &buffer)
            do throws(FileIOError) {
                try last.handle.write(at: UInt64(lastSize), buffer)
                try last.handle.dataSync()
            } catch { throw .io(error) }
            nextLSN += 1
            lastSize += buffer.count
        }
        let activeNumber = last.number + 1
        let (activeHandle, activeSize) = try createSegment(
            number: activeNumber, logID: logID, firstLSN: nextLSN, truncation: truncation,
            directory: directory, fileSystem: fileSystem, createdUnixNanos: options.creationTimeOverride,
            prepared: try prepareForOpen(directory: directory, fileSystem: fileSystem, options: options))
        let log = RecordLog(directory: directory, options: options, logID: logID, fileSystem: fileSystem,
                            directoryLock: directoryLock,
                            active: ActiveSegment(number: activeNumber, handle: activeHandle, size: activeSize, syncedSize: activeSize, contentStart: activeSize),
                            nextLSN: nextLSN + 1, truncation: truncation)
        for segment in found { log.segments[segment.number] = SegmentState(handle: segment.handle) }
        log.segments[activeNumber] = SegmentState(handle: activeHandle)
        log.statistics.segmentsCreated = 1
        log.statistics.segmentsPrepared = options.segmentPreparation == .none ? 0 : 1

        // Index: every live user record; a later copy (relocated) replaces an earlier one.
        var byStream: [UInt64: [UInt64: RecordLocation]] = [:]
        for segment in found {
            for record in segment.scan.records where record.header.kind.isUser {
                let header = record.header
                guard truncation.isLive(stream: header.stream, lsn: header.lsn) else { continue }
                byStream[header.stream, default: [:]][header.lsn] = RecordLocation(
                    lsn: header.lsn, segment: segment.number, offset: UInt32(record.offset), storedLength: header.storedLength)
            }
        }
        for (stream, locations) in byStream {
            let sorted = locations.values.sorted { $0.lsn < $1.lsn }
            log.index[stream] = sorted
            for location in sorted {
                log.adjustLive(location.segment, records: 1, bytes: LogFormat.recordHeaderBytes + Int(location.storedLength))
            }
        }
        report.liveRecords = log.statistics.liveRecords

        // Drop segments with nothing live, then bring the count within bounds.
        let before = Set(log.segments.keys)
        log.lock.lock()
        log.writerActive = true
        log.lock.unlock()
        log.removeDetached(log.maintain())
        log.lock.lock()
        log.writerActive = false
        let failure = log.failure
        let after = Set(log.segments.keys)
        log.lock.unlock()
        if let failure {
            log.close()
            throw failure
        }
        report.segmentsRemoved += before.subtracting(after).sorted().map(LogFormat.segmentFileName)
        log.startPreparing()
        return (log, report)
    }
}
