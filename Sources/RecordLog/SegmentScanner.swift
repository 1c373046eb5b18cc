// Reads one segment file's bytes and checks every rule of Format/log.md: the header, every
// record's checksum, LSN order, synced offsets, the leading checkpoint and the closing seal.
//
// It also decides what a bad record means. Writes are serialized with syncs (one batch is
// written, then synced, before the next is written), so after a crash only the last batch of
// the last segment can be partly missing. Every record stores how far its segment was durable
// when it was written; if any valid record after a bad spot says the bad spot had been durable,
// the bad spot is corruption, otherwise it is a torn tail of writes that were never
// acknowledged. Sealed (older) segments were fully synced, so anything bad in them is corruption.
//
// From version 2 on, a segment may be longer than its records: segments are prepared ahead,
// zero-filled to their full size, and appends overwrite the zeros. Where no record decodes and
// every remaining byte is zero, the records have ended (a clean end, subject to the same seal
// rule as the end of a file). A bad record followed by anything but zeros is judged as above.
//
// Used by recovery, `vectron-tool dump/verify/repair` and the fuzzers: it never traps on bad
// input and allocates only in proportion to the input.

import Wire

public struct ScannedRecord: Equatable, Sendable {
    public var offset: Int
    public var header: RecordHeader
    public var payloadRange: Range<Int> { (offset + LogFormat.recordHeaderBytes)..<(offset + header.totalLength) }
}

public enum SegmentEnd: Equatable, Sendable {
    /// Every byte was a valid record; the segment ends at this offset.
    case clean
    /// Bytes from `offset` on are the torn remains of writes that were never synced.
    case tornTail(offset: Int)
    /// A record at or before the end that had been durable is bad: real corruption.
    case corrupt(DecodeError)
}

public struct SegmentScan: Sendable {
    public var header: SegmentHeader?
    public var records: [ScannedRecord] = []
    public var end: SegmentEnd = .clean
    /// Offset just past the last valid record (where a torn tail is cut).
    public var validEnd: Int = 0
    public var fileSize: Int = 0
    /// The last fresh (not relocated) LSN in the segment, if any.
    public var lastFreshLSN: UInt64?
    /// Zero bytes after the records that end a version 2 segment (the unused part of a segment
    /// prepared ahead); 0 when the records end at the end of the file.
    public var zeroFilledTailBytes = 0
    public var isSealed: Bool { records.last?.header.kind == .seal }
}

public enum SegmentScanner {
    /// Scans a segment. `isLast` says whether this is the newest segment of its log (the only
    /// one that may have a torn tail). `expectedLogID`, when given, must match the header.
    public static func scan(
        _ bytes: [UInt8], isLast: Bool, expectedLogID: UInt64? = nil,
        payloadBytesMax: Int = RecordLogOptions.recordPayloadBytesMaxLimit
    ) -> SegmentScan {
        var scan = SegmentScan()
        scan.fileSize = bytes.count
        guard bytes.count <= RecordLogOptions.segmentBytesLimit else {
            scan.end = .corrupt(DecodeError(field: "segment", offset: 0,
                                            reason: .tooLarge(value: UInt64(bytes.count), limit: UInt64(RecordLogOptions.segmentBytesLimit))))
            return scan
        }
        let header: SegmentHeader
        do throws(DecodeError) {
            header = try SegmentHeader.decode(bytes)
        } catch {
            // A new segment whose header never became durable is a torn tail, unless a later
            // record proves the start of the file had been synced. A header whose checksum
            // matches but whose fields are wrong (an unknown version) is never torn.
            let couldBeTorn: Bool
            switch error.reason {
            case .truncated, .badMagic, .checksumMismatch: couldBeTorn = true
            default: couldBeTorn = false
            }
            if isLast && couldBeTorn && !laterRecordProvesDurable(bytes, badOffset: 0, payloadBytesMax: payloadBytesMax) {
                scan.end = .tornTail(offset: 0)
            } else {
                scan.end = .corrupt(error)
            }
            return scan
        }
        if let expectedLogID, header.logID != expectedLogID {
            scan.end = .corrupt(DecodeError(field: "log id", offset: UInt64(LogFormat.HeaderField.logID),
                                            reason: .invalid("segment belongs to log \(hex16(header.logID)), not \(hex16(expectedLogID))")))
            return scan
        }
        scan.header = header
        var offset = LogFormat.segmentHeaderBytes
        scan.validEnd = offset
        var nextFresh = header.firstLSN
        var lastSynced: UInt32 = 0
        while offset < bytes.count {
            let record: RecordHeader
            do throws(DecodeError) {
                record = try RecordHeader.decode(bytes, at: offset, end: bytes.count, payloadBytesMax: payloadBytesMax)
            } catch {
                if header.version >= LogFormat.zeroFilledTailVersion && isZero(bytes, from: offset) {
                    scan.zeroFilledTailBytes = bytes.count - offset
                    break
                }
                if isLast && !laterRecordProvesDurable(bytes, badOffset: offset, payloadBytesMax: payloadBytesMax) {
                    scan.end = .tornTail(offset: offset)
                } else {
                    scan.end = .corrupt(error)
                }
                return scan
            }
            if let violation = checkRules(record, at: offset, header: header, index: scan.records.count,
                                          nextFresh: nextFresh, lastSynced: lastSynced, afterSeal: scan.isSealed) {
                scan.end = .corrupt(violation)
                return scan
            }
            if !record.flags.contains(.relocated) {
                scan.lastFreshLSN = record.lsn
                nextFresh = record.lsn &+ 1
            }
            lastSynced = record.syncedOffset
            scan.records.append(ScannedRecord(offset: offset, header: record))
            offset += record.totalLength
            scan.validEnd = offset
        }
        if scan.records.isEmpty && isLast {
            // The header became durable but the checkpoint written with it did not: the
            // segment's creation was torn. (Every segment is created with its checkpoint.)
            scan.end = .tornTail(offset: LogFormat.segmentHeaderBytes)
        } else if scan.records.isEmpty && !isLast {
            scan.end = .corrupt(DecodeError(field: "checkpoint", offset: UInt64(offset), reason: .invalid("sealed segment has no records")))
        } else if !isLast && !scan.isSealed {
            scan.end = .corrupt(DecodeError(field: "seal", offset: UInt64(offset),
                                            reason: .invalid("older segment does not end with a seal record (truncated?)")))
        }
        return scan
    }

    /// Rules between a segment and its file name and predecessor: the header's segment number
    /// matches the name, and consecutive segment numbers have contiguous LSNs (a gap in numbers
    /// is a deleted segment, so LSNs need only increase).
    public static func checkSequence(
        number: UInt64, scan: SegmentScan, previousNumber: UInt64?, previous: SegmentScan?
    ) -> DecodeError? {
        guard let header = scan.header else { return nil }
        if header.segmentNumber != number {
            return DecodeError(field: "segment number", offset: UInt64(LogFormat.HeaderField.segmentNumber),
                               reason: .invalid("header says segment \(header.segmentNumber), file name says \(number)"))
        }
        guard let previousNumber, let previous, let previousHeader = previous.header else { return nil }
        let expected = previous.lastFreshLSN.map { $0 &+ 1 } ?? previousHeader.firstLSN
        let contiguous = number == previousNumber &+ 1
        if contiguous ? header.firstLSN != expected : header.firstLSN < expected {
            return DecodeError(field: "first lsn", offset: UInt64(LogFormat.HeaderField.firstLSN),
                               reason: .invalid("first LSN \(header.firstLSN) does not follow the previous segment's last LSN \(expected &- 1)"))
        }
        return nil
    }

    static func checkRules(
        _ record: RecordHeader, at offset: Int, header: SegmentHeader, index: Int,
        nextFresh: UInt64, lastSynced: UInt32, afterSeal: Bool
    ) -> DecodeError? {
        let at = UInt64(offset)
        if afterSeal {
            return DecodeError(field: "record", offset: at, reason: .invalid("record after the segment's seal"))
        }
        if index == 0 && record.kind != .checkpoint {
            return DecodeError(field: "kind", offset: at + UInt64(LogFormat.RecordField.kind),
                               reason: .invalid("first record is \(record.kind), not a checkpoint"))
        }
        if index > 0 && record.kind == .checkpoint {
            return DecodeError(field: "kind", offset: at + UInt64(LogFormat.RecordField.kind), reason: .invalid("checkpoint after the first record"))
        }
        if record.flags.contains(.relocated) {
            if !record.kind.isUser {
                return DecodeError(field: "flags", offset: at + UInt64(LogFormat.RecordField.flags), reason: .invalid("relocated \(record.kind) record"))
            }
            if record.lsn >= header.firstLSN {
                return DecodeError(field: "lsn", offset: at + UInt64(LogFormat.RecordField.lsn),
                                   reason: .invalid("relocated record LSN \(record.lsn) not below the segment's first LSN \(header.firstLSN)"))
            }
        } else if record.lsn != nextFresh {
            return DecodeError(field: "lsn", offset: at + UInt64(LogFormat.RecordField.lsn),
                               reason: .invalid("LSN \(record.lsn) where \(nextFresh) was expected"))
        }
        if UInt64(record.syncedOffset) > at || record.syncedOffset < lastSynced {
            return DecodeError(field: "synced offset", offset: at + UInt64(LogFormat.RecordField.syncedOffset),
                               reason: .invalid("synced offset \(record.syncedOffset) out of order"))
        }
        if !record.kind.isUser && !record.flags.isEmpty {
            return DecodeError(field: "flags", offset: at + UInt64(LogFormat.RecordField.flags),
                               reason: .invalid("\(record.kind) record with flags \(record.flags.rawValue)"))
        }
        switch record.kind {
        case .truncatePrefix, .truncateSuffix:
            if record.payloadLength != 8 || record.flags.contains(.lz4) {
                return DecodeError(field: "payload length", offset: at + 12, reason: .invalid("truncation marker payload must be 8 plain bytes"))
            }
        case .seal:
            if record.payloadLength != 0 {
                return DecodeError(field: "payload length", offset: at + 12, reason: .invalid("seal payload must be empty"))
            }
        default: break
        }
        return nil
    }

    /// Whether every byte from `offset` to the end is zero.
    static func isZero(_ bytes: [UInt8], from offset: Int) -> Bool {
        bytes.withUnsafeBytes { raw -> Bool in
            var position = offset
            // Eight bytes at a time: a 64 MiB tail is scanned on every open.
            while position + 8 <= raw.count {
                if raw.loadUnaligned(fromByteOffset: position, as: UInt64.self) != 0 { return false }
                position += 8
            }
            while position < raw.count {
                if raw[position] != 0 { return false }
                position += 1
            }
            return true
        }
    }

    /// Is there a valid record after `badOffset` whose synced offset is beyond `badOffset`?
    /// Only records written after the bad spot had been synced can say so.
    static func laterRecordProvesDurable(_ bytes: [UInt8], badOffset: Int, payloadBytesMax: Int) -> Bool {
        var candidate = badOffset + 1
        let lastStart = bytes.count - LogFormat.recordHeaderBytes
        guard candidate <= lastStart else { return false }
        // Bytes inside payloads can look like records; a crafted file could make every offset
        // a candidate. Past a hashing budget, answer "durable": reporting corruption is the
        // safe side, silently cutting data is not.
        var hashBudget = 4 * bytes.count + (1 << 20)
        return bytes.withUnsafeBytes { raw -> Bool in
            while candidate <= lastStart {
                defer { candidate += 1 }
                let synced = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: candidate + LogFormat.RecordField.syncedOffset, as: UInt32.self))
                // Cheap filters first: the synced offset must point past the bad spot and not
                // past the candidate itself.
                guard Int(synced) > badOffset, Int(synced) <= candidate else { continue }
                guard raw[candidate + LogFormat.RecordField.reserved] == 0, raw[candidate + LogFormat.RecordField.reserved + 1] == 0 else { continue }
                let stored = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: candidate + LogFormat.RecordField.storedLength, as: UInt32.self)))
                guard stored <= payloadBytesMax, candidate + LogFormat.recordHeaderBytes + stored <= bytes.count else { continue }
                hashBudget -= LogFormat.recordHeaderBytes + stored
                if hashBudget < 0 { return true }
                if (try? RecordHeader.decode(bytes, at: candidate, end: bytes.count, payloadBytesMax: payloadBytesMax)) != nil {
                    return true
                }
            }
            return false
        }
    }
}

func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}
