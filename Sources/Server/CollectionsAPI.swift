// /collections: create, list, describe, check, delete — Qdrant's shapes.

import Catalog
import HTTPServer
import JSON
import VectorIndex

extension Gateway {
    static let distanceNames: [Metric: String] = [.cosine: "Cosine", .dot: "Dot", .euclid: "Euclid", .manhattan: "Manhattan"]

    func listCollections(_ call: Call) {
        let principal = call.principal!
        let names = node.catalog.collections.values.filter { principal.isAdmin || $0.owner == principal.userID }.map(\.name).sorted()
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
            guard let size = vectors["size"]?.int64Value, size >= 1, size <= 65_536 else {
                throw .badRequest("`vectors.size` must be an integer in 1…65536")
            }
            guard case .string(let distanceName)? = vectors["distance"], let metric = Metric(name: distanceName) else {
                throw .badRequest("`vectors.distance` must be one of Cosine, Dot, Euclid, Manhattan")
            }
            var shards = 1
            if let value = body["shard_number"] {
                guard let count = value.int64Value, count >= 1, count <= Int64(Catalog.shardsMax) else {
                    throw .badRequest("`shard_number` must be an integer in 1…\(Catalog.shardsMax)")
                }
                shards = Int(count)
            }
            var m = 16, efConstruct = 100
            for hnsw in [body["hnsw_config"], vectors["hnsw_config"]] {
                guard let hnsw else { continue }
                guard case .object(let config) = hnsw else { throw .badRequest("`hnsw_config` must be an object") }
                if let value = config["m"] {
                    guard let number = value.int64Value, number >= 2, number <= 128 else { throw .badRequest("`hnsw_config.m` must be an integer in 2…128") }
                    m = Int(number)
                }
                if let value = config["ef_construct"] {
                    guard let number = value.int64Value, number >= 4, number <= 4096 else {
                        throw .badRequest("`hnsw_config.ef_construct` must be an integer in 4…4096")
                    }
                    efConstruct = Int(number)
                }
            }
            let command = CatalogCommand.createCollection(name: name, owner: call.principal!.userID, dimension: Int(size), metric: metric,
                                                          shards: shards, m: m, efConstruct: efConstruct, createdAt: Self.unixNow())
            node.proposeCatalog(command) { [self] result in
                switch result {
                case .success(.collectionCreated(let info)):
                    // Answer once its shards can take writes.
                    node.whenShardsReady(info) { ready in
                        if ready { call.ok(.bool(true)) } else { call.fail(503, "the collection's shards did not start") }
                    }
                case .success(.alreadyExists):
                    // Another user's collection of this name is not revealed as such.
                    call.fail(409, "Wrong input: Collection `\(name)` already exists!")
                case .success(.invalid(let text)): call.fail(400, text)
                case .success(let other): call.fail(400, "\(other)")
                case .failure(let error): call.fail(APIError(error))
                }
            }
        } catch {
            call.fail(error)
        }
    }

    func getCollection(_ call: Call) {
        do throws(APIError) {
            let info = try collection(call)
            var points = 0
            for group in info.shardGroups { points += node.shard(group: group)?.count ?? 0 }
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
        node.proposeCatalog(.deleteCollection(name: info.name)) { result in
            switch result {
            case .success(.collectionDeleted): call.ok(.bool(true))
            case .success(.notFound): call.ok(.bool(false))
            case .success(let other): call.fail(400, "\(other)")
            case .failure(let error): call.fail(APIError(error))
            }
        }
    }
}
