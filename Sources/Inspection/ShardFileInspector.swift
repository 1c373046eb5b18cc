// `vectron-tool` on a shard's own files (Format/shard.md): snapshots (§6) and keys files (§4.1).
// `dump` prints a snapshot's header and chunk list (stopping, marked CORRUPT, at the first chunk
// that fails its check) or a keys file's header and entries; `verify` runs the same check an
// install runs — the whole chunk chain, every point, the embedded checkpoint loaded from an
// in-memory copy — or decodes the keys file.

import FileIO
import FileIOSim
import Shard
import VectorIndex
import Wire

public enum ShardFileInspector {
    public static let snapshotFormat = "shard-snapshot"
    public static let keysFormat = "shard-keys"

    // MARK: Snapshots

    public static func dumpSnapshot(path: String, fileSystem: any FileSystem) throws(FileIOError) -> (text: String, json: JSONValue) {
        var lines = ["\(path): shard snapshot"]
        var json: [(String, JSONValue)] = [("path", .string(path)), ("format", .string(snapshotFormat))]
        let reader: ShardSnapshot.Reader
        do throws(ShardError) { reader = try ShardSnapshot.Reader(path: path, fileSystem: fileSystem) } catch {
            if case let .io(ioError) = error { throw ioError }
            lines.append("header: CORRUPT: \(error)")
            json.append(("error", .string("\(error)")))
            return (lines.joined(separator: "\n"), .object(json))
        }
        lines += ["version          \(ShardSnapshot.version)", "group            \(reader.group)",
                  "applied index    \(reader.appliedIndex)", "size             \(reader.size) bytes", "chunks:"]
        json += [("group", .uint(reader.group)), ("applied_index", .uint(reader.appliedIndex)), ("bytes", .uint(reader.size))]
        var chunks: [JSONValue] = []
        while true {
            let chunk: ShardSnapshot.Chunk?
            do throws(ShardError) { chunk = try reader.next() } catch {
                if case let .io(ioError) = error { throw ioError }
                lines.append("  CORRUPT at \(reader.offset): \(error)")
                json.append(("error", .string("\(error)")))
                break
            }
            guard let chunk else { break }
            var line = "  \(String(chunk.offset).padding(10)) \(chunk.kind.name.padding(10)) \(String(chunk.payload.count).padding(8)) bytes  checksum \(hex64(chunk.checksum))"
            var entry: [(String, JSONValue)] = [("offset", .uint(chunk.offset)), ("kind", .string(chunk.kind.name)),
                                                ("length", .uint(UInt64(chunk.payload.count))), ("checksum", .string(hex64(chunk.checksum)))]
            let payloadAt = chunk.offset + UInt64(ShardSnapshot.chunkHeaderBytes)
            switch chunk.kind {
            case .points:
                if let points = try? ShardSnapshot.decodePoints(chunk.payload, baseOffset: payloadAt), let first = points.first, let last = points.last {
                    line += "  \(points.count) points, keys \(hexBytes(first.key)) … \(hexBytes(last.key))"
                    entry.append(("points", .uint(UInt64(points.count))))
                } else {
                    line += "  points do not decode"
                }
            case .end:
                if let totals = try? ShardSnapshot.decodeEnd(chunk.payload, baseOffset: payloadAt) {
                    line += "  \(totals.points) points, keys file \(totals.keysFileBytes) bytes, index file \(totals.indexFileBytes) bytes"
                    entry += [("points", .uint(totals.points)), ("keys_file_bytes", .uint(totals.keysFileBytes)),
                              ("index_file_bytes", .uint(totals.indexFileBytes))]
                }
            case .keysFile, .indexFile:
                break
            }
            lines.append(line)
            chunks.append(.object(entry))
        }
        json.append(("chunks", .array(chunks)))
        return (lines.joined(separator: "\n"), .object(json))
    }

    public static func verifySnapshot(path: String, fileSystem: any FileSystem) throws(FileIOError) -> Finding {
        // The embedded checkpoint is loaded from an in-memory copy: the check writes nothing here.
        let staging = MemoryFileSystem()
        do throws(ShardError) {
            let (info, state) = try ShardSnapshot.check(path: path, fileSystem: fileSystem, configuration: nil,
                                                        staging: staging, indexPath: "/index", keysPath: "/keys")
            let configuration = state.index.configuration
            let summary = "group \(info.group), applied index \(info.appliedIndex), \(info.points) points, "
                + "dimension \(configuration.dimension), \(configuration.metric), \(info.chunks) chunks, \(info.bytes) bytes"
            return Finding(path: path, format: snapshotFormat, status: .ok, summary: summary, problems: [])
        } catch {
            if case let .io(ioError) = error, ioError.path == path { throw ioError }
            return Finding(path: path, format: snapshotFormat, status: .corrupt, summary: "not installable", problems: ["\(error)"])
        }
    }

    // MARK: Keys files

    static func readAll(_ path: String, _ fileSystem: any FileSystem) throws(FileIOError) -> [UInt8] {
        let handle = try fileSystem.open(path, options: .read)
        defer { handle.close() }
        return try handle.readAll()
    }

    public static func dumpKeys(path: String, fileSystem: any FileSystem, entriesShown: Int = 20) throws(FileIOError) -> (text: String, json: JSONValue) {
        var lines = ["\(path): shard keys file"]
        var json: [(String, JSONValue)] = [("path", .string(path)), ("format", .string(keysFormat))]
        let bytes = try readAll(path, fileSystem)
        do throws(DecodeError) {
            let decoded = try VectorState.decodeKeys(bytes)
            lines += ["applied index    \(decoded.applied)", "next number      \(decoded.nextNumber)", "count            \(decoded.keys.count)"]
            let sorted = decoded.keys.sorted { $0.key < $1.key }
            for (number, key) in sorted.prefix(entriesShown) { lines.append("  \(String(number).padding(10)) \(hexBytes(key))") }
            if sorted.count > entriesShown { lines.append("  … \(sorted.count - entriesShown) more") }
            json += [("applied_index", .uint(decoded.applied)), ("next_number", .uint(decoded.nextNumber)), ("count", .uint(UInt64(decoded.keys.count)))]
        } catch {
            lines.append("CORRUPT: \(error)")
            json.append(("error", .string("\(error)")))
        }
        return (lines.joined(separator: "\n"), .object(json))
    }

    public static func verifyKeys(path: String, fileSystem: any FileSystem) throws(FileIOError) -> Finding {
        let bytes = try readAll(path, fileSystem)
        do throws(DecodeError) {
            let decoded = try VectorState.decodeKeys(bytes)
            return Finding(path: path, format: keysFormat, status: .ok,
                           summary: "\(decoded.keys.count) keys, next number \(decoded.nextNumber), applied index \(decoded.applied)", problems: [])
        } catch {
            return Finding(path: path, format: keysFormat, status: .corrupt, summary: "does not decode", problems: ["\(error)"])
        }
    }
}
