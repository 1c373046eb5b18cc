// /collections: create, list, describe, check, delete — Qdrant's shapes.

import Catalog
import HTTPServer
import JSON
import VectorIndex

extension Gateway {
    static let distanceNames: [Metric: String] = [.cosine: "Cosine", .dot: "Dot", .euclid: "Euclid", .manhattan: "Manhattan"]

    func listCollections(_ call: Call) {
        let names = collectionNames(for: call.principal!)
        call.ok { writer in
            writer.beginObject()
            writer.key("collections")
            writer.beginArray()
            for name in names {
                writer.beginObject()
                writer.member("name", .string(name))
                writer.endObject()
            }
            writer.endArray()
            writer.endObject()
        }
    }

    func collectionExists(_ call: Call) {
        let exists: Bool
        do throws(APIError) {
            _ = try collection(call)
            exists = true
        } catch {
            exists = false
        }
        call.ok { writer in
            writer.beginObject()
            writer.member("exists", .bool(exists))
            writer.endObject()
        }
    }

    func createCollection(_ call: Call) {
        do throws(APIError) {
            let name = call.param("name")
            if let problem = Catalog.validateCollectionName(name) { throw .badRequest(problem) }
            let body = try self.body(call)
            guard case .object(let vectors)? = body["vectors"] else {
                throw .badRequest("`vectors` must be an object: {\"size\": n, \"distance\": \"Cosine\" | \"Dot\" | \"Euclid\" | \"Manhattan\"}")
            }
            // A value that is not an integer in range reads as -1, which `checkCollection` refuses
            // with the field's range.
            func integer(_ value: JSONValue?, default fallback: Int) -> Int {
                guard let value else { return fallback }
                guard let number = value.int64Value, let result = Int(exactly: number), (0...(1 << 40)).contains(result) else { return -1 }
                return result
            }
            guard case .string(let distanceName)? = vectors["distance"], let metric = Metric(name: distanceName) else {
                throw .badRequest("`vectors.distance` must be one of Cosine, Dot, Euclid, Manhattan")
            }
            var settings = CollectionSettings(name: name, dimension: integer(vectors["size"], default: -1), metric: metric,
                                              shards: integer(body["shard_number"], default: 1), m: 16, efConstruct: 100)
            for hnsw in [body["hnsw_config"], vectors["hnsw_config"]] {
                guard let hnsw else { continue }
                guard case .object(let config) = hnsw else { throw .badRequest("`hnsw_config` must be an object") }
                settings.m = integer(config["m"], default: settings.m)
                settings.efConstruct = integer(config["ef_construct"], default: settings.efConstruct)
            }
            try checkCollection(settings)
            createCollection(settings, owner: call.principal!.userID) { result in
                switch result {
                case .success(true): call.ok(.bool(true))
                case .success(false): call.fail(409, "Wrong input: Collection `\(name)` already exists!")
                case .failure(let error): call.fail(error)
                }
            }
        } catch {
            call.fail(error)
        }
    }

    func getCollection(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            let points = pointCount(info)
            call.ok { writer in
                writer.beginObject()
                writer.member("status", .string("green"))
                writer.member("optimizer_status", .string("ok"))
                writer.member("points_count", .integer(Int64(points)))
                writer.member("indexed_vectors_count", .integer(Int64(points)))
                writer.member("segments_count", .integer(Int64(info.shardGroups.count)))
                writer.key("config")
                writer.beginObject()
                writer.key("params")
                writer.beginObject()
                writer.key("vectors")
                writer.beginObject()
                writer.member("size", .integer(Int64(info.dimension)))
                writer.member("distance", .string(Self.distanceNames[info.metric]!))
                writer.endObject()
                writer.member("shard_number", .integer(Int64(info.shardGroups.count)))
                writer.member("replication_factor", .integer(1))
                writer.endObject()
                writer.key("hnsw_config")
                writer.beginObject()
                writer.member("m", .integer(Int64(info.m)))
                writer.member("ef_construct", .integer(Int64(info.efConstruct)))
                // Below this many points a filtered search scans exactly (a fixed rule here).
                writer.member("full_scan_threshold", .integer(10_000))
                writer.endObject()
                // Qdrant's optimizer settings have no counterpart; these say what Vectron does:
                // one index per shard, flushed at checkpoints.
                writer.key("optimizer_config")
                writer.beginObject()
                writer.member("default_segment_number", .integer(Int64(info.shardGroups.count)))
                writer.member("flush_interval_sec", .integer(Int64(node.configuration.checkpointMilliseconds / 1000)))
                writer.endObject()
                writer.endObject()
                writer.key("payload_schema")
                writer.beginObject()
                writer.endObject()
                writer.endObject()
            }
        } catch {
            call.fail(error)
        }
    }

    func deleteCollection(_ call: Call) {
        let info: CollectionInfo
        do throws(APIError) { info = try collection(call) } catch {
            // Qdrant answers a delete of a missing collection with `false`.
            call.ok(.bool(false))
            return
        }
        deleteCollection(info) { result in
            switch result {
            case .success(let existed): call.ok(.bool(existed))
            case .failure(let error): call.fail(error)
            }
        }
    }
}
