// Prometheus metrics (`GET /metrics`, text format 0.0.4): requests and their latency per
// endpoint and status, Raft commit latency, the unified record log's fsync latency and size,
// and the node's gauges (recovery, shards, storage levels). Requests are counted in one
// lock-guarded table: the request rate of one node is far below what a lock costs. The other
// series are read from their owners at scrape time.
//
// Every histogram is a `LatencyHistogram` (Basics), written out by `appendHistogram`. Each
// family is one block: `# HELP`, `# TYPE`, then all its samples (the format requires a
// family's samples to be contiguous).

import Basics
import Catalog
import HTTPServer
import JSON
import RecordLog
import Shard
import VectorIndex

final class Metrics: @unchecked Sendable {
    private let lock = ConditionLock()
    private var requests: [String: [Int: UInt64]] = [:]
    private var latency: [String: LatencyHistogram] = [:]

    func record(endpoint: String, status: Int, seconds: Double) {
        lock.withLock {
            requests[endpoint, default: [:]][status, default: 0] += 1
            latency[endpoint, default: LatencyHistogram()].record(seconds: seconds)
        }
    }

    func render(into text: inout String) {
        lock.withLock {
            Self.appendFamily("vectron_http_requests_total", type: "counter", help: "HTTP requests by endpoint and status.", to: &text)
            for endpoint in requests.keys.sorted() {
                for status in requests[endpoint]!.keys.sorted() {
                    text += "vectron_http_requests_total{endpoint=\"\(Self.escape(endpoint))\",status=\"\(status)\"} \(requests[endpoint]![status]!)\n"
                }
            }
            Self.appendFamily("vectron_http_request_duration_seconds", type: "histogram", help: "HTTP request latency by endpoint.", to: &text)
            for endpoint in latency.keys.sorted() {
                Self.appendHistogram("vectron_http_request_duration_seconds", labels: "endpoint=\"\(Self.escape(endpoint))\"",
                                     latency[endpoint]!, to: &text)
            }
        }
    }

    /// A family's `# HELP` and `# TYPE` lines.
    static func appendFamily(_ name: String, type: String, help: String, to text: inout String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    /// One histogram's samples: a cumulative bucket per bound, `+Inf` (= count), sum, count.
    /// `labels` is empty or a comma-separated list such as `endpoint="GET /x"`.
    static func appendHistogram(_ name: String, labels: String = "", _ histogram: LatencyHistogram, to text: inout String) {
        let prefix = labels.isEmpty ? "" : labels + ","
        let own = labels.isEmpty ? "" : "{\(labels)}"
        for (bucket, bound) in LatencyHistogram.bounds.enumerated() {
            text += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(histogram.cumulativeCount(bucket: bucket))\n"
        }
        text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(histogram.count)\n"
        text += "\(name)_sum\(own) \(histogram.sum)\n"
        text += "\(name)_count\(own) \(histogram.count)\n"
    }

    /// A gauge family with one unlabelled sample.
    static func appendGauge(_ name: String, help: String, _ value: some CustomStringConvertible, to text: inout String) {
        appendFamily(name, type: "gauge", help: help, to: &text)
        text += "\(name) \(value)\n"
    }

    static func escape(_ label: String) -> String {
        var out = ""
        for character in label {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}

extension Gateway {
    func serveMetrics(_ call: Call) {
        var text = ""
        metrics.render(into: &text)

        Metrics.appendFamily("vectron_raft_commit_seconds", type: "histogram",
                             help: "Raft proposals from proposing on this node until applied and answered.", to: &text)
        Metrics.appendHistogram("vectron_raft_commit_seconds", node.commitLatency, to: &text)

        let log = node.host.store.log
        Metrics.appendFamily("vectron_log_sync_seconds", type: "histogram",
                             help: "fdatasync latency of the unified record log (one per group-commit sync).", to: &text)
        Metrics.appendHistogram("vectron_log_sync_seconds", log.stats.syncLatency, to: &text)
        let usage = log.diskUsage
        Metrics.appendGauge("vectron_log_bytes", help: "Bytes of the unified record log's segment files on disk.", usage.bytes, to: &text)
        Metrics.appendGauge("vectron_log_segments", help: "Segment files of the unified record log.", usage.segments, to: &text)

        Metrics.appendGauge("vectron_recovery_seconds", help: "How long the last start took to recover.", node.recoverySeconds, to: &text)
        Metrics.appendGauge("vectron_ready", help: "Whether the node has finished recovering.", node.isReady ? 1 : 0, to: &text)
        let catalog = node.catalog
        Metrics.appendGauge("vectron_collections", help: "Collections in the catalog.", catalog.collections.count, to: &text)

        var shards: [(group: UInt64, shard: Shard)] = []
        for info in catalog.collections.values.sorted(by: { $0.name < $1.name }) {
            for group in info.shardGroups {
                if let shard = node.shard(group: group) { shards.append((group, shard)) }
            }
        }
        Metrics.appendFamily("vectron_shard_points", type: "gauge", help: "Points per shard group (the index's size).", to: &text)
        for (group, shard) in shards { text += "vectron_shard_points{group=\"\(group)\"} \(shard.count)\n" }
        Metrics.appendFamily("vectron_shard_index_bytes", type: "gauge",
                             help: "Bytes a shard's HNSW index has allocated (node arena, vectors, links; not the key map).", to: &text)
        for (group, shard) in shards { text += "vectron_shard_index_bytes{group=\"\(group)\"} \(shard.vectors.index.allocatedBytes)\n" }
        Metrics.appendFamily("vectron_shard_applied_index", type: "gauge", help: "The last log index a shard applied.", to: &text)
        for (group, shard) in shards { text += "vectron_shard_applied_index{group=\"\(group)\"} \(shard.appliedIndex)\n" }

        let statistics = node.engine.statistics
        Metrics.appendFamily("vectron_storage_level_bytes", type: "gauge", help: "Bytes of storage segments per level.", to: &text)
        for (level, stats) in statistics.levels.enumerated() { text += "vectron_storage_level_bytes{level=\"\(level)\"} \(stats.bytes)\n" }
        Metrics.appendGauge("vectron_storage_memtable_bytes", help: "Bytes in the storage engine's memtable.", statistics.memtableBytes, to: &text)

        call.responder.respond(HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(text.utf8)))
    }
}
