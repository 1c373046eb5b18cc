// Prometheus metrics (`GET /metrics`, text format 0.0.4): requests and their latency per
// endpoint and status, and the node's gauges. Kept in one lock-guarded table: the request rate
// of one node is far below what a lock costs.

import Basics
import Catalog
import HTTPServer
import JSON

final class Metrics: @unchecked Sendable {
    static let bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Series {
        var count: UInt64 = 0
        var sum: Double = 0
        var buckets = [UInt64](repeating: 0, count: Metrics.bounds.count)
    }

    private let lock = ConditionLock()
    private var requests: [String: [Int: UInt64]] = [:]
    private var latency: [String: Series] = [:]

    func record(endpoint: String, status: Int, seconds: Double) {
        lock.withLock {
            requests[endpoint, default: [:]][status, default: 0] += 1
            var series = latency[endpoint] ?? Series()
            series.count += 1
            series.sum += seconds
            for (index, bound) in Self.bounds.enumerated() where seconds <= bound { series.buckets[index] += 1 }
            latency[endpoint] = series
        }
    }

    func render(into text: inout String) {
        lock.withLock {
            text += "# HELP vectron_http_requests_total HTTP requests by endpoint and status.\n# TYPE vectron_http_requests_total counter\n"
            for endpoint in requests.keys.sorted() {
                for status in requests[endpoint]!.keys.sorted() {
                    text += "vectron_http_requests_total{endpoint=\"\(escape(endpoint))\",status=\"\(status)\"} \(requests[endpoint]![status]!)\n"
                }
            }
            text += "# HELP vectron_http_request_duration_seconds HTTP request latency by endpoint.\n# TYPE vectron_http_request_duration_seconds histogram\n"
            for endpoint in latency.keys.sorted() {
                let series = latency[endpoint]!
                let label = "endpoint=\"\(escape(endpoint))\""
                for (index, bound) in Self.bounds.enumerated() {
                    text += "vectron_http_request_duration_seconds_bucket{\(label),le=\"\(bound)\"} \(series.buckets[index])\n"
                }
                text += "vectron_http_request_duration_seconds_bucket{\(label),le=\"+Inf\"} \(series.count)\n"
                text += "vectron_http_request_duration_seconds_sum{\(label)} \(series.sum)\n"
                text += "vectron_http_request_duration_seconds_count{\(label)} \(series.count)\n"
            }
        }
    }

    func escape(_ label: String) -> String {
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
        text += "# HELP vectron_recovery_seconds How long the last start took to recover.\n# TYPE vectron_recovery_seconds gauge\n"
        text += "vectron_recovery_seconds \(node.recoverySeconds)\n"
        text += "# HELP vectron_ready Whether the node has finished recovering.\n# TYPE vectron_ready gauge\n"
        text += "vectron_ready \(node.isReady ? 1 : 0)\n"
        let catalog = node.catalog
        text += "# HELP vectron_collections Collections in the catalog.\n# TYPE vectron_collections gauge\nvectron_collections \(catalog.collections.count)\n"
        text += "# HELP vectron_shard_points Points per shard group (the index's size).\n# TYPE vectron_shard_points gauge\n"
        text += "# HELP vectron_shard_applied_index The last log index a shard applied.\n# TYPE vectron_shard_applied_index gauge\n"
        for info in catalog.collections.values.sorted(by: { $0.name < $1.name }) {
            for group in info.shardGroups {
                guard let shard = node.shard(group: group) else { continue }
                text += "vectron_shard_points{group=\"\(group)\"} \(shard.count)\n"
                text += "vectron_shard_applied_index{group=\"\(group)\"} \(shard.appliedIndex)\n"
            }
        }
        let statistics = node.engine.statistics
        text += "# HELP vectron_storage_level_bytes Bytes of storage segments per level.\n# TYPE vectron_storage_level_bytes gauge\n"
        for (level, stats) in statistics.levels.enumerated() { text += "vectron_storage_level_bytes{level=\"\(level)\"} \(stats.bytes)\n" }
        text += "# HELP vectron_storage_memtable_bytes Bytes in the storage engine's memtable.\n# TYPE vectron_storage_memtable_bytes gauge\n"
        text += "vectron_storage_memtable_bytes \(statistics.memtableBytes)\n"
        var response = HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4")], body: Array(text.utf8))
        response.status = 200
        call.responder.respond(response)
    }
}
