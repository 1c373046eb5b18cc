// `vectron-tool` on HNSW checkpoints (Format/hnsw.md): `dump` prints the header, the section
// table, the level histogram and degree statistics; `verify` loads the file (every checksum and
// load-time rule) and then checks the graph's invariants, reachability included.

import FileIO
import VectorIndex

public enum CheckpointInspector {
    public static let format = "hnsw-checkpoint"

    static func header(path: String, fileSystem: any FileSystem) throws(FileIOError) -> Result<CheckpointHeader, DecodeErrorBox> {
        let handle = try fileSystem.open(path, options: .read)
        defer { handle.close() }
        let size = try handle.size()
        let bytes = try handle.read(at: 0, count: min(CheckpointHeader.bytes, Int(clamping: size)))
        do { return .success(try CheckpointHeader.decode(bytes, fileSize: size)) } catch { return .failure(DecodeErrorBox(description: "\(error)")) }
    }

    struct DecodeErrorBox: Error { var description: String }

    public static func dump(path: String, fileSystem: any FileSystem) throws(FileIOError) -> (text: String, json: JSONValue) {
        var lines = ["\(path): HNSW checkpoint"]
        var json: [(String, JSONValue)] = [("path", .string(path)), ("format", .string(format))]
        switch try header(path: path, fileSystem: fileSystem) {
        case let .failure(error):
            lines.append("header: CORRUPT: \(error.description)")
            json.append(("error", .string(error.description)))
            return (lines.joined(separator: "\n"), .object(json))
        case let .success(header):
            lines += [
                "version          \(CheckpointHeader.version)",
                "metric           \(header.metric)",
                "dimension        \(header.dimension)",
                "m                \(header.m) (level 0 holds up to \(2 * header.m))",
                "ef_construct     \(header.efConstruct)",
                "ef               \(header.ef)",
                "node slots       \(header.nodeCount)",
                "live             \(header.liveCount)",
                "entry point      \(header.maxLevel < 0 ? "none" : "\(header.entryPoint)")",
                "max level        \(header.maxLevel)",
                "upper words      \(header.upperWords)",
                "applied index    \(header.appliedIndex)",
                "insertions       \(header.insertions)",
                "sections:",
            ]
            for section in header.sections {
                lines.append("  \(String(describing: section.kind).padding(12)) offset \(section.offset)  length \(section.length)  checksum \(hex64(section.checksum))")
            }
            json += [("metric", .string("\(header.metric)")), ("dimension", .uint(UInt64(header.dimension))), ("m", .uint(UInt64(header.m))),
                     ("ef_construct", .uint(UInt64(header.efConstruct))), ("ef", .uint(UInt64(header.ef))),
                     ("node_slots", .uint(UInt64(header.nodeCount))), ("live", .uint(UInt64(header.liveCount))),
                     ("max_level", .int(Int64(header.maxLevel))), ("applied_index", .uint(header.appliedIndex))]
        }
        do throws(CheckpointError) {
            let report = try HNSWIndex.load(from: path, fileSystem: fileSystem).index.inspect()
            lines.append("tombstones       \(report.tombstones)")
            lines.append("free slots       \(report.free)")
            lines.append("unreachable      \(report.unreachable)")
            lines.append("level histogram  " + report.levelHistogram.enumerated().map { "L\($0)=\($1)" }.joined(separator: " "))
            for degree in report.degrees {
                lines.append("degree L\(degree.level)        min \(degree.minimum)  mean \((degree.mean * 100).rounded() / 100)  max \(degree.maximum)  (\(degree.nodes) nodes)")
            }
            json += [("tombstones", .uint(UInt64(report.tombstones))), ("free", .uint(UInt64(report.free))),
                     ("level_histogram", .array(report.levelHistogram.map { .uint(UInt64($0)) })),
                     ("degrees", .array(report.degrees.map { .object([("level", .uint(UInt64($0.level))), ("min", .uint(UInt64($0.minimum))),
                                                                       ("mean", .double($0.mean)), ("max", .uint(UInt64($0.maximum)))]) }))]
        } catch {
            lines.append("graph: not loadable: \(error)")
            json.append(("error", .string("\(error)")))
        }
        return (lines.joined(separator: "\n"), .object(json))
    }

    public static func verify(path: String, fileSystem: any FileSystem) throws(FileIOError) -> Finding {
        do throws(CheckpointError) {
            let (index, applied) = try HNSWIndex.load(from: path, fileSystem: fileSystem)
            let report = index.inspect()
            let summary = "\(report.live) live, \(report.tombstones) deleted, \(report.free) free of \(report.slots) slots, "
                + "dimension \(index.dimension), \(index.metric), applied index \(applied)"
            // Unreachable nodes cost recall, not integrity: listed, but the file is not corrupt.
            let notes = report.unreachable == 0 ? [] : ["note: \(report.unreachable) live nodes are not reachable from the entry point (searches miss them)"]
            return Finding(path: path, format: format, status: report.problems.isEmpty ? .ok : .corrupt, summary: summary,
                           problems: report.problems + notes)
        } catch {
            switch error {
            case let .io(ioError): throw ioError
            case let .corrupt(_, decodeError):
                return Finding(path: path, format: format, status: .corrupt, summary: "not loadable", problems: ["\(decodeError)"])
            }
        }
    }
}
