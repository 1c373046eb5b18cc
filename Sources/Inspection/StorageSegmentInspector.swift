// dump / verify for storage segments (Format/segment.md): the footer, properties, filter and
// index blocks, and every data block with its compression, sizes and checksum.

import FileIO
import StorageFormat
import Wire

public enum StorageSegmentInspector {
    public static let fileSuffix = ".vseg"

    public static func dump(path: String, fileSystem: any FileSystem) throws(FileIOError) -> (text: String, json: JSONValue) {
        let handle = try fileSystem.open(path, options: .read)
        defer { handle.close() }
        let size = try handle.size()
        var lines = ["\(path): storage segment, \(size) bytes"]
        let reader: SegmentReader
        do throws(SegmentError) {
            reader = try SegmentReader(handle: handle)
        } catch {
            lines.append("CORRUPT: \(error)")
            return (lines.joined(separator: "\n"), .object([("file", .string(path)), ("format", .string("storage-segment")),
                                                            ("error", .string(error.description))]))
        }
        let f = reader.footer
        let footerAt = Int(size) - SegmentFormat.footerBytes
        lines += [
            "footer @\(offsetString(footerAt)): version \(SegmentFormat.version), magic \"VECTRSEG\", checksum ok",
            "  index block       @\(offsetString(Int(f.index.offset))) \(f.index.size) B",
            "  filter block      @\(offsetString(Int(f.filter.offset))) \(f.filter.size) B",
            "  properties block  @\(offsetString(Int(f.properties.offset))) \(f.properties.size) B",
        ]
        let p = reader.properties
        lines += [
            "properties: \(p.entryCount) entries in \(p.dataBlockCount) data blocks, raw keys \(p.rawKeyBytes) B, raw values \(p.rawValueBytes) B",
            "  keys \(hexBytes(p.smallestKey, limit: 16)) … \(hexBytes(p.largestKey, limit: 16))",
            "  sequences \(p.smallestSequence)…\(p.largestSequence)"
                + (p.appliedIndexes.isEmpty ? "" : ", applied " + p.appliedIndexes.keys.sorted().map { "stream \($0)@\(p.appliedIndexes[$0]!)" }.joined(separator: ", ")),
        ]
        var blocks: [JSONValue] = []
        var problems: [String] = []
        for (position, block) in reader.dataBlockSummaries().enumerated() {
            switch block {
            case let .success(summary):
                lines.append("data block \(position) @\(offsetString(Int(summary.handle.offset))): \(summary.compression) stored \(summary.handle.size) B, "
                             + "raw \(summary.rawBytes) B, \(summary.entries) entries, last key \(hexBytes(summary.lastKey, limit: 16)), checksum ok")
                blocks.append(.object([("offset", .uint(summary.handle.offset)), ("stored", .uint(UInt64(summary.handle.size))),
                                       ("raw", .uint(UInt64(summary.rawBytes))), ("compression", .string("\(summary.compression)")),
                                       ("entries", .uint(UInt64(summary.entries)))]))
            case let .failure(error):
                lines.append("data block \(position): CORRUPT: \(error)")
                problems.append(error.description)
            }
        }
        let json: JSONValue = .object([
            ("file", .string(path)), ("format", .string("storage-segment")), ("size", .uint(size)),
            ("entries", .uint(p.entryCount)), ("data_blocks", .array(blocks)),
            ("problems", .array(problems.map { .string($0) })),
        ])
        return (lines.joined(separator: "\n"), json)
    }

    public static func verify(path: String, fileSystem: any FileSystem) throws(FileIOError) -> Finding {
        let handle = try fileSystem.open(path, options: .read)
        defer { handle.close() }
        let size = try handle.size()
        do throws(SegmentError) {
            let reader = try SegmentReader(handle: handle)
            let entries = try reader.scan()
            var problems: [String] = []
            let p = reader.properties
            if UInt64(entries.count) != p.entryCount { problems.append("properties say \(p.entryCount) entries, blocks hold \(entries.count)") }
            if let first = entries.first, first.key != p.smallestKey { problems.append("smallest key differs from the properties") }
            if let last = entries.last, last.key != p.largestKey { problems.append("largest key differs from the properties") }
            for entry in entries where try reader.get(entry.key) == nil {
                problems.append("key \(hexBytes(entry.key, limit: 16)) is in a block but not found by lookup (index or filter inconsistent)")
                break
            }
            return Finding(path: path, format: "storage-segment", status: problems.isEmpty ? .ok : .corrupt,
                           summary: "\(entries.count) entries, \(p.dataBlockCount) data blocks, \(size) bytes", problems: problems)
        } catch {
            return Finding(path: path, format: "storage-segment", status: .corrupt, summary: "\(size) bytes", problems: [error.description])
        }
    }
}
