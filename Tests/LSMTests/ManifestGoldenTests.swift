// Golden manifest files (Format/manifest.md §15): Format/golden/manifest/ holds
//
//   CURRENT              the CURRENT file naming `manifest-000001` (§3)
//   edit-snapshot.bin    the snapshot edit of the worked example, §11.2 (byte for byte the spec's hex)
//   edit-compaction.bin  a compaction edit: two segments deleted (levels 0 and 1), one added at
//                        level 1, and the engine's nextFileNumber (§7)
//
// each with a `.dump.txt` that annotates every field (written by `annotateManifestEdit` /
// `annotateCurrentFile` below, which walk the bytes themselves rather than trusting
// `ManifestFormat.decode`). The tests decode the committed bytes and check every field against
// fixed values, check that today's encoder reproduces them, compare the dumps, and flip every bit
// of every file. The same files, with the fuzzer's mode byte in front, are the seeds of
// Fuzz/FuzzManifestDecoder (Fuzz/seeds/FuzzManifestDecoder/).
//
// Regenerate (only for a new format version, never to paper over a change):
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter ManifestGoldenTests

import Foundation
import StorageFormat
import Testing
import Wire

let manifestGoldenRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path
let manifestGoldenDirectory = manifestGoldenRoot + "/Format/golden/manifest"
let manifestFuzzSeedDirectory = manifestGoldenRoot + "/Fuzz/seeds/FuzzManifestDecoder"

/// An internal key (segment.md §14.1): the user key, then `~(sequence << 8 | kind)` big-endian.
/// Written out here rather than taken from `InternalKey`, so the golden bytes do not depend on it.
func goldenInternalKey(_ user: String, _ sequence: UInt64, _ kind: UInt8) -> [UInt8] {
    let trailer = ~(sequence << 8 | UInt64(kind))
    return Array(user.utf8) + (0..<8).map { UInt8(truncatingIfNeeded: trailer >> (56 - 8 * $0)) }
}

/// The bytes of manifest.md §11.2, copied from the spec.
let manifestSpecSnapshotHex = "01010203030a0405070002ac02887766" + "554433221104070a0a6162ffffffffff" + "fff6fe0a6566fffffffffffff7fe"
/// The CURRENT file of manifest.md §11.3 (naming `manifest-000002`), copied from the spec.
let manifestSpecCurrent2Hex = "5645435452435552" + "0f" + "6d616e69666573742d303030303032" + "d17c80d61af0f0b0"

/// §11.2: nextFileNumber 3, lastSequence 10, walReplayFrom 5, one level-0 segment.
func goldenSnapshotEdit() -> VersionEdit {
    var edit = VersionEdit()
    edit.isSnapshot = true
    edit.nextFileNumber = 3
    edit.lastSequence = 10
    edit.walReplayFrom = 5
    edit.addedSegments = [SegmentDescriptor(
        level: 0, number: 2, fileBytes: 300, checksum: 0x1122_3344_5566_7788, entryCount: 4,
        smallestSequence: 7, largestSequence: 10,
        smallestKey: goldenInternalKey("ab", 9, 1), largestKey: goldenInternalKey("ef", 8, 1))]
    return edit
}

/// A compaction of level 0 into level 1 (§7): its level-0 input (4) and the overlapping level-1
/// segment (3) are deleted, the output (5) is added at level 1, and nextFileNumber is the
/// engine's counter. The output's largest key is a deletion (kind 0).
func goldenCompactionEdit() -> VersionEdit {
    var edit = VersionEdit()
    edit.nextFileNumber = 6
    edit.deletedSegments = [(level: 0, number: 4), (level: 1, number: 3)]
    edit.addedSegments = [SegmentDescriptor(
        level: 1, number: 5, fileBytes: 1234, checksum: 0x0123_4567_89AB_CDEF, entryCount: 7,
        smallestSequence: 3, largestSequence: 12,
        smallestKey: goldenInternalKey("ab", 12, 1), largestKey: goldenInternalKey("gh", 3, 0))]
    return edit
}

let goldenManifestName = "manifest-000001"

/// File name and the bytes today's writer produces for it.
func goldenManifestFiles() -> [(name: String, bytes: [UInt8])] {
    [("CURRENT", ManifestFormat.encodeCurrent(manifestName: goldenManifestName)),
     ("edit-snapshot.bin", ManifestFormat.encode(goldenSnapshotEdit())),
     ("edit-compaction.bin", ManifestFormat.encode(goldenCompactionEdit()))]
}

/// Fuzz seed file name → content (the mode byte of Fuzz/FuzzManifestDecoder/main.swift, then the
/// golden file): 0 = a version edit, 1 = a CURRENT file, 3 = a CURRENT file whose checksum the
/// fuzzer repairs first.
func manifestFuzzSeeds(_ golden: [String: [UInt8]]) -> [(name: String, bytes: [UInt8])] {
    [("edit-snapshot.bin.mode0", [0x00] + golden["edit-snapshot.bin"]!),
     ("edit-compaction.bin.mode0", [0x00] + golden["edit-compaction.bin"]!),
     ("CURRENT.mode1", [0x01] + golden["CURRENT"]!),
     ("CURRENT.mode3", [0x03] + golden["CURRENT"]!)]
}

// MARK: Annotated dumps

private func hexOffset(_ value: Int) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}

private func hexBytes(_ bytes: ArraySlice<UInt8>) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
}

private func hex64(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}

private func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

/// Describes an internal key: printable user keys as text, others in hex.
private func describeInternalKey(_ key: ArraySlice<UInt8>) -> String {
    guard key.count >= 8 else { return "(shorter than the 8-byte trailer)" }
    let user = key.dropLast(8)
    let trailer = key.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let value = ~trailer
    let kind: String
    switch value & 0xFF {
    case 1: kind = "value"
    case 0: kind = "deletion"
    default: kind = "kind \(value & 0xFF)"
    }
    let printable = user.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    let userText = printable ? "\"" + String(decoding: user, as: UTF8.self) + "\"" : hexBytes(user)
    return "user key \(userText), sequence \(value >> 8), \(kind)"
}

private struct Annotator {
    var reader: ByteReader
    var lines: [String] = []
    init(_ bytes: [UInt8]) { reader = ByteReader(bytes) }

    mutating func line(from start: Int, _ field: String, _ value: String) {
        let text = padded(hexOffset(start), 8) + padded(hexBytes(reader.bytes[start..<reader.position]), 46)
            + padded(field, 22) + value
        lines.append(String(text.reversed().drop(while: { $0 == " " }).reversed()))
    }

    mutating func varint(_ field: String, indent: Bool = true) throws -> UInt64 {
        let start = reader.position
        let value = try reader.readVarint(field)
        line(from: start, (indent ? "  " : "") + field, "\(value)")
        return value
    }
}

/// A line per field of a version edit (manifest.md §5), parsed here independently of
/// `ManifestFormat.decode`.
func annotateManifestEdit(_ bytes: [UInt8], name: String) throws -> String {
    var a = Annotator(bytes)
    let header = ["\(name): manifest version edit (Format/manifest.md §5), \(bytes.count) bytes", "fields: offset, bytes, field, value"]
    let version = try a.reader.readUInt8("version")
    a.line(from: 0, "version", "\(version)")
    while !a.reader.isAtEnd {
        let start = a.reader.position
        let tag = try a.reader.readVarint("tag")
        switch tag {
        case 1: a.line(from: start, "tag 1 snapshot", "(no value)")
        case 2, 3, 4:
            let name = ["nextFileNumber", "lastSequence", "walReplayFrom"][Int(tag) - 2]
            let value = try a.reader.readVarint(name)
            a.line(from: start, "tag \(tag) \(name)", "\(value)")
        case 5:
            a.line(from: start, "tag 5 appliedIndex", "a caller stream's applied index")
            _ = try a.varint("stream")
            _ = try a.varint("index")
        case 6:
            a.line(from: start, "tag 6 deletedSegment", "a segment leaves the database")
            _ = try a.varint("level")
            _ = try a.varint("number")
        case 7:
            a.line(from: start, "tag 7 addedSegment", "a segment joins the database (descriptor, §5.2)")
            _ = try a.varint("level")
            _ = try a.varint("number")
            _ = try a.varint("fileBytes")
            let at = a.reader.position
            let checksum = try a.reader.readUInt64("checksum")
            a.line(from: at, "  checksum", "\(hex64(checksum)) (u64 LE, XXH3-64 of the whole segment file)")
            _ = try a.varint("entryCount")
            _ = try a.varint("smallestSequence")
            _ = try a.varint("largestSequence")
            for field in ["smallestKey", "largestKey"] {
                let length = try a.varint(field + " length")
                let keyAt = a.reader.position
                let key = try a.reader.readBytes(Int(length), field)
                a.line(from: keyAt, "  " + field, describeInternalKey(key))
            }
        default:
            a.line(from: start, "tag \(tag)", "undefined: the decoder stops here")
            return (header + a.lines).joined(separator: "\n")
        }
    }
    return (header + a.lines).joined(separator: "\n")
}

/// A line per field of a CURRENT file (manifest.md §3).
func annotateCurrentFile(_ bytes: [UInt8], name: String) throws -> String {
    var a = Annotator(bytes)
    let header = ["\(name): CURRENT file (Format/manifest.md §3), \(bytes.count) bytes", "fields: offset, bytes, field, value"]
    let magic = try a.reader.readBytes(8, "magic")
    a.line(from: 0, "magic", "\"" + String(decoding: magic, as: UTF8.self) + "\"")
    let length = try a.varint("nameLength", indent: false)
    let nameAt = a.reader.position
    let manifest = try a.reader.readBytes(Int(length), "name")
    a.line(from: nameAt, "name", "\"" + String(decoding: manifest, as: UTF8.self) + "\" (the manifest directory)")
    let covered = a.reader.position
    let stored = try a.reader.readUInt64("checksum")
    var status = "ok"
    do { _ = try ManifestFormat.decodeCurrent(bytes) } catch {
        if case let .checksumMismatch(_, computed) = error.reason { status = "MISMATCH, computed \(hex64(computed))" } else { status = "\(error)" }
    }
    a.line(from: covered, "checksum", "\(hex64(stored)) (u64 LE, XXH3-64 of bytes 0..<\(covered), \(status))")
    return (header + a.lines).joined(separator: "\n")
}

func annotateGoldenManifestFile(name: String, bytes: [UInt8]) throws -> String {
    (name == "CURRENT" ? try annotateCurrentFile(bytes, name: name) : try annotateManifestEdit(bytes, name: name)) + "\n"
}

private func bytesFromHex(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

private func readGolden(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: manifestGoldenDirectory + "/" + name)))
}

// MARK: Tests

@Suite(.serialized) struct ManifestGoldenTests {
    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try FileManager.default.createDirectory(atPath: manifestGoldenDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: manifestFuzzSeedDirectory, withIntermediateDirectories: true)
        var written: [String: [UInt8]] = [:]
        for (name, bytes) in goldenManifestFiles() {
            try Data(bytes).write(to: URL(fileURLWithPath: manifestGoldenDirectory + "/" + name))
            try annotateGoldenManifestFile(name: name, bytes: bytes)
                .write(toFile: manifestGoldenDirectory + "/" + name + ".dump.txt", atomically: true, encoding: .utf8)
            written[name] = bytes
        }
        for (name, bytes) in manifestFuzzSeeds(written) {
            try Data(bytes).write(to: URL(fileURLWithPath: manifestFuzzSeedDirectory + "/" + name))
        }
    }

    /// The spec's hex is the ground truth for §11.2 and §11.3: the encoder must produce it.
    @Test func encoderProducesTheSpecExamples() throws {
        #expect(ManifestFormat.encode(goldenSnapshotEdit()) == bytesFromHex(manifestSpecSnapshotHex))
        #expect(ManifestFormat.encodeCurrent(manifestName: "manifest-000002") == bytesFromHex(manifestSpecCurrent2Hex))
        #expect(try ManifestFormat.decodeCurrent(bytesFromHex(manifestSpecCurrent2Hex)) == "manifest-000002")
        // §11.1: the first edit of a new database.
        var initial = VersionEdit()
        initial.isSnapshot = true
        initial.nextFileNumber = 1
        initial.lastSequence = 0
        initial.walReplayFrom = 0
        #expect(ManifestFormat.encode(initial) == [1, 1, 2, 1, 3, 0, 4, 0])
    }

    @Test func writerStillProducesTheGoldenBytes() throws {
        for (name, bytes) in goldenManifestFiles() {
            #expect(try readGolden(name) == bytes, "\(name): the writer no longer produces the golden bytes")
        }
    }

    @Test func goldenCurrentDecodes() throws {
        let bytes = try readGolden("CURRENT")
        #expect(bytes.count == 32, "a v1 CURRENT is 32 bytes")
        #expect(Array(bytes[0..<8]) == Array("VECTRCUR".utf8))
        #expect(bytes[8] == 15)
        #expect(Array(bytes[9..<24]) == Array("manifest-000001".utf8))
        #expect(try ManifestFormat.decodeCurrent(bytes) == "manifest-000001")
        #expect(ManifestFormat.encodeCurrent(manifestName: try ManifestFormat.decodeCurrent(bytes)) == bytes)
    }

    @Test func goldenSnapshotEditDecodes() throws {
        let bytes = try readGolden("edit-snapshot.bin")
        #expect(bytes == bytesFromHex(manifestSpecSnapshotHex), "edit-snapshot.bin must be the bytes of manifest.md §11.2")
        #expect(bytes.count == 46)
        let edit = try ManifestFormat.decode(bytes)
        #expect(edit.isSnapshot)
        #expect(edit.nextFileNumber == 3)
        #expect(edit.lastSequence == 10)
        #expect(edit.walReplayFrom == 5)
        #expect(edit.appliedIndexes.isEmpty)
        #expect(edit.deletedSegments.isEmpty)
        #expect(edit.addedSegments.count == 1)
        if let segment = edit.addedSegments.first {
            #expect(segment.level == 0)
            #expect(segment.number == 2)
            #expect(segment.fileBytes == 300)
            #expect(segment.checksum == 0x1122_3344_5566_7788)
            #expect(segment.entryCount == 4)
            #expect(segment.smallestSequence == 7)
            #expect(segment.largestSequence == 10)
            #expect(segment.smallestKey == [0x61, 0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf6, 0xfe])
            #expect(segment.largestKey == [0x65, 0x66, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf7, 0xfe])
        }
        #expect(edit == goldenSnapshotEdit())
        #expect(ManifestFormat.encode(edit) == bytes, "re-encoding the decoded edit must give the same bytes")
    }

    @Test func goldenCompactionEditDecodes() throws {
        let bytes = try readGolden("edit-compaction.bin")
        #expect(bytes.count == 47)
        #expect(Array(bytes.prefix(12)) == [0x01, 0x02, 0x06, 0x06, 0x00, 0x04, 0x06, 0x01, 0x03, 0x07, 0x01, 0x05])
        let edit = try ManifestFormat.decode(bytes)
        #expect(!edit.isSnapshot)
        #expect(edit.nextFileNumber == 6)
        #expect(edit.lastSequence == nil)
        #expect(edit.walReplayFrom == nil)
        #expect(edit.appliedIndexes.isEmpty)
        #expect(edit.deletedSegments.map(\.level) == [0, 1])
        #expect(edit.deletedSegments.map(\.number) == [4, 3])
        #expect(edit.addedSegments.count == 1)
        if let segment = edit.addedSegments.first {
            #expect(segment.level == 1)
            #expect(segment.number == 5)
            #expect(segment.fileBytes == 1234)
            #expect(segment.checksum == 0x0123_4567_89AB_CDEF)
            #expect(segment.entryCount == 7)
            #expect(segment.smallestSequence == 3)
            #expect(segment.largestSequence == 12)
            // ("ab", 12, value): ~(12 × 256 + 1) = ~0xC01; ("gh", 3, deletion): ~0x300.
            #expect(segment.smallestKey == [0x61, 0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf3, 0xfe])
            #expect(segment.largestKey == [0x67, 0x68, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfc, 0xff])
        }
        #expect(edit == goldenCompactionEdit())
        #expect(ManifestFormat.encode(edit) == bytes, "re-encoding the decoded edit must give the same bytes")
    }

    @Test func dumpsMatchCommittedText() throws {
        for (name, _) in goldenManifestFiles() {
            let text = try annotateGoldenManifestFile(name: name, bytes: try readGolden(name))
            let expected = try String(contentsOfFile: manifestGoldenDirectory + "/" + name + ".dump.txt", encoding: .utf8)
            #expect(text == expected, "annotation of \(name) changed; diff it against \(name).dump.txt")
        }
    }

    @Test func fuzzSeedsAreTheGoldenFiles() throws {
        var golden: [String: [UInt8]] = [:]
        for (name, _) in goldenManifestFiles() { golden[name] = try readGolden(name) }
        for (name, bytes) in manifestFuzzSeeds(golden) {
            let seed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: manifestFuzzSeedDirectory + "/" + name)))
            #expect(seed == bytes, "Fuzz/seeds/FuzzManifestDecoder/\(name) is not the golden file with its mode byte")
        }
    }

    /// CURRENT is checksummed as a whole: every single-bit flip and every inverted byte must
    /// fail `decodeCurrent`.
    @Test func everyFlipOfCurrentFailsToDecode() throws {
        let bytes = try readGolden("CURRENT")
        var flips = 0
        var reasons: [String: Int] = [:]
        forEachFlip(of: bytes) { flipped, position, mask in
            flips += 1
            do throws(DecodeError) {
                let name = try ManifestFormat.decodeCurrent(flipped)
                Issue.record("CURRENT byte \(position) ^ 0x\(String(mask, radix: 16)) decoded as \"\(name)\"")
            } catch {
                reasons[error.field, default: 0] += 1
            }
        }
        print("ManifestGoldenTests [CURRENT]: \(flips) flips, all rejected: \(reasons.sorted { $0.key < $1.key })")
    }

    /// Edits have no checksum of their own (the record log's protects them), so a flip may
    /// decode. It must never trap, and what decodes must be a different edit (the encoding has
    /// one form per edit up to field order, which one flip cannot change). Reported, not
    /// asserted: how many flips the decoder rejects on its own.
    @Test(arguments: ["edit-snapshot.bin", "edit-compaction.bin"])
    func flipsOfAnEditNeverTrapOrDecodeToTheSameEdit(name: String) throws {
        let bytes = try readGolden(name)
        let original = try ManifestFormat.decode(bytes)
        var flips = 0, rejected = 0, different = 0
        var reasons: [String: Int] = [:]
        var decodedPositions: [Int] = []
        forEachFlip(of: bytes) { flipped, position, mask in
            flips += 1
            do throws(DecodeError) {
                let edit = try ManifestFormat.decode(flipped)
                #expect(edit != original, "\(name) byte \(position) ^ 0x\(String(mask, radix: 16)) decodes to the original edit")
                different += 1
                if decodedPositions.last != position { decodedPositions.append(position) }
                // Whatever decodes round-trips.
                #expect(try ManifestFormat.decode(ManifestFormat.encode(edit)) == edit)
            } catch {
                rejected += 1
                reasons[error.field, default: 0] += 1
            }
        }
        print("ManifestGoldenTests [\(name)]: \(flips) flips (8 single bits and 0xFF per byte): \(rejected) rejected by decode, "
            + "\(different) decode to a different edit (positions \(decodedPositions)); rejections by field: \(reasons.sorted { $0.key < $1.key })")
    }

    /// Calls `body` with every single-bit flip and the 0xFF flip of every byte of `bytes`.
    func forEachFlip(of bytes: [UInt8], _ body: (_ flipped: [UInt8], _ position: Int, _ mask: UInt8) -> Void) {
        for position in bytes.indices {
            for mask in (0..<8).map({ UInt8(1) << UInt8($0) }) + [0xFF] {
                var flipped = bytes
                flipped[position] ^= mask
                body(flipped, position, mask)
            }
        }
    }
}
