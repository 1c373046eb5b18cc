// `GET /metrics` against the real binary: after some upserts the Raft commit and log fsync
// histograms have observations, the log and the index have a size, and the whole exposition
// is valid Prometheus text format 0.0.4 — checked by a small parser of that format, below.

import Foundation
import Testing
import TestSupport

@Suite(.serialized, .ownThread)
struct MetricsTests {
    @Test func metricsAfterUpsertsAreWellFormedAndCountCommitsAndSyncs() throws {
        let server = try ServerHarness()
        defer { server.tearDown() }
        try server.start()
        let api = API(port: server.port, credential: try #require(server.adminKey))
        try api.ok("PUT", "/collections/m", #"{"vectors": {"size": 4, "distance": "Dot"}, "shard_number": 2}"#)
        for batch in 0..<4 {
            let points = (0..<8).map { i in
                let id = batch * 8 + i
                return #"{"id": \#(id), "vector": [\#(id), 1, 0, 0.5]}"#
            }
            try api.ok("PUT", "/collections/m/points", #"{"points": ["# + points.joined(separator: ",") + "]}")
        }

        let response = try API(port: server.port, credential: nil).send("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "text/plain; version=0.0.4")
        let exposition = try Exposition(parsing: response.text)

        // Every family is named `vectron_…`, and each histogram is consistent.
        #expect(exposition.families.keys.allSatisfy { $0.hasPrefix("vectron_") })
        try exposition.checkHistograms()

        // The answered upserts went through Raft and the log was synced for them.
        #expect(exposition.families["vectron_raft_commit_seconds"] == "histogram")
        #expect(exposition.families["vectron_log_sync_seconds"] == "histogram")
        #expect(try exposition.value("vectron_raft_commit_seconds_count") >= 4)
        #expect(try exposition.value("vectron_raft_commit_seconds_sum") > 0)
        #expect(try exposition.value("vectron_log_sync_seconds_count") > 0)
        #expect(try exposition.value("vectron_log_bytes") > 0)
        #expect(try exposition.value("vectron_log_segments") >= 1)

        // Index sizes: the 32 points across the two shards, each with an allocated index.
        let points = exposition.samples.filter { $0.name == "vectron_shard_points" }
        #expect(points.count == 2)
        #expect(points.reduce(0) { $0 + $1.value } == 32)
        let indexBytes = exposition.samples.filter { $0.name == "vectron_shard_index_bytes" }
        #expect(indexBytes.count == 2 && indexBytes.allSatisfy { $0.value > 0 })

        // The gauges that were there before stay.
        for name in ["vectron_recovery_seconds", "vectron_ready", "vectron_collections", "vectron_storage_memtable_bytes",
                     "vectron_storage_level_bytes", "vectron_shard_applied_index", "vectron_http_requests_total"] {
            #expect(exposition.samples.contains { $0.name == name }, "\(name) is missing")
        }
        #expect(try exposition.value("vectron_ready") == 1)
        #expect(try server.stop() == 0)
    }

    @Test func theParserRefusesMalformedText() {
        #expect(throws: ExpositionError.self) { try Exposition(parsing: "vectron_x 1\n") }  // no TYPE
        #expect(throws: ExpositionError.self) { try Exposition(parsing: "# TYPE vectron_x gauge\nvectron_x{a=\"1} 2\n") }
        #expect(throws: ExpositionError.self) { try Exposition(parsing: "# TYPE vectron_x gauge\nvectron_x one\n") }
        #expect(throws: ExpositionError.self) {
            try Exposition(parsing: "# TYPE vectron_x gauge\n# TYPE vectron_y gauge\nvectron_y 1\nvectron_x 1\n")  // not contiguous
        }
        #expect(throws: ExpositionError.self) {
            try Exposition(parsing: """
            # TYPE vectron_h histogram
            vectron_h_bucket{le="1"} 3
            vectron_h_bucket{le="+Inf"} 2
            vectron_h_sum 1
            vectron_h_count 2

            """).checkHistograms()
        }
    }
}

struct ExpositionError: Error, CustomStringConvertible {
    var description: String
}

/// Prometheus text format 0.0.4, as much as the server writes: `# HELP` / `# TYPE` lines and
/// samples `name{label="value",…} number`, each family's lines contiguous.
struct Exposition {
    struct Sample {
        var name: String
        var labels: [(String, String)]
        var value: Double
    }

    /// Family name → type.
    var families: [String: String] = [:]
    var samples: [Sample] = []

    init(parsing text: String) throws {
        var finished: Set<String> = []
        var current: String?
        func enter(_ family: String, line: String) throws {
            if family == current { return }
            if finished.contains(family) { throw ExpositionError(description: "family \(family) is not contiguous at `\(line)`") }
            if let current { finished.insert(current) }
            current = family
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) where !line.isEmpty {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count == 4, Self.isMetricName(parts[2]) else { throw ExpositionError(description: "bad comment `\(line)`") }
                try enter(parts[2], line: line)
                if parts[1] == "TYPE" {
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]), families[parts[2]] == nil else {
                        throw ExpositionError(description: "bad or repeated TYPE `\(line)`")
                    }
                    families[parts[2]] = parts[3]
                }
                continue
            }
            if line.hasPrefix("#") { continue }
            let sample = try Self.parseSample(line)
            let family = family(of: sample.name)
            guard families[family] != nil else { throw ExpositionError(description: "sample before its TYPE: `\(line)`") }
            try enter(family, line: line)
            samples.append(sample)
        }
    }

    /// The family a sample belongs to (histograms' `_bucket`, `_sum`, `_count`).
    func family(of name: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
            let base = String(name.dropLast(suffix.count))
            if families[base] == "histogram" { return base }
        }
        return name
    }

    /// The value of the one sample named `name` without labels.
    func value(_ name: String) throws -> Double {
        let found = samples.filter { $0.name == name && $0.labels.isEmpty }
        guard found.count == 1 else { throw ExpositionError(description: "\(found.count) samples named \(name)") }
        return found[0].value
    }

    /// Every histogram series: buckets in ascending `le` ending at `+Inf`, counts
    /// non-decreasing, `+Inf` equal to `_count`, and a `_sum`.
    func checkHistograms() throws {
        for (family, type) in families where type == "histogram" {
            var series: [String: [(le: Double, count: Double)]] = [:]
            var counts: [String: Double] = [:]
            var sums: Set<String> = []
            for sample in samples where self.family(of: sample.name) == family {
                let key = sample.labels.filter { $0.0 != "le" }.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
                switch sample.name {
                case family + "_bucket":
                    guard let le = sample.labels.first(where: { $0.0 == "le" })?.1, let bound = Self.number(le) else {
                        throw ExpositionError(description: "\(family) bucket without a numeric le")
                    }
                    series[key, default: []].append((bound, sample.value))
                case family + "_count": counts[key] = sample.value
                case family + "_sum": sums.insert(key)
                default: throw ExpositionError(description: "\(sample.name) in histogram \(family)")
                }
            }
            for (key, buckets) in series {
                guard buckets.map(\.le) == buckets.map(\.le).sorted(), buckets.last?.le == .infinity else {
                    throw ExpositionError(description: "\(family){\(key)}: bounds not ascending to +Inf")
                }
                guard buckets.map(\.count) == buckets.map(\.count).sorted() else {
                    throw ExpositionError(description: "\(family){\(key)}: bucket counts decrease")
                }
                guard let count = counts[key], count == buckets.last!.count, sums.contains(key) else {
                    throw ExpositionError(description: "\(family){\(key)}: +Inf is not _count, or _sum is missing")
                }
            }
            guard Set(series.keys) == Set(counts.keys) else { throw ExpositionError(description: "\(family): _count without buckets") }
        }
    }

    static func isMetricName(_ name: String) -> Bool {
        func isLetter(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_" || scalar == ":" }
        guard let first = name.unicodeScalars.first, isLetter(first) else { return false }
        return name.unicodeScalars.allSatisfy { isLetter($0) || ("0"..."9").contains($0) }
    }

    static func number(_ text: String) -> Double? {
        switch text {
        case "+Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    /// `name{label="value",…} value` (labels optional; values escape `\\`, `\"`, `\n`).
    static func parseSample(_ line: String) throws -> Sample {
        let scalars = Array(line.unicodeScalars)
        var at = 0
        func fail(_ why: String) -> ExpositionError { ExpositionError(description: "\(why) in `\(line)`") }
        func identifier() -> String {
            var text = ""
            while at < scalars.count, scalars[at] != "{", scalars[at] != " ", scalars[at] != "=" {
                text.unicodeScalars.append(scalars[at])
                at += 1
            }
            return text
        }
        let name = identifier()
        guard isMetricName(name) else { throw fail("bad metric name") }
        var labels: [(String, String)] = []
        if at < scalars.count, scalars[at] == "{" {
            at += 1
            while at < scalars.count, scalars[at] != "}" {
                let label = identifier()
                guard isMetricName(label), !label.contains(":") else { throw fail("bad label name") }
                guard at + 1 < scalars.count, scalars[at] == "=", scalars[at + 1] == "\"" else { throw fail("label without =\"") }
                at += 2
                var value = ""
                var closed = false
                while at < scalars.count {
                    let scalar = scalars[at]
                    at += 1
                    if scalar == "\"" { closed = true; break }
                    if scalar == "\\" {
                        guard at < scalars.count else { break }
                        switch scalars[at] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: throw fail("bad escape")
                        }
                        at += 1
                    } else {
                        value.unicodeScalars.append(scalar)
                    }
                }
                guard closed else { throw fail("unterminated label value") }
                labels.append((label, value))
                if at < scalars.count, scalars[at] == "," { at += 1 }
                else if at < scalars.count, scalars[at] != "}" { throw fail("expected , or }") }
            }
            guard at < scalars.count else { throw fail("unterminated labels") }
            at += 1
        }
        guard at < scalars.count, scalars[at] == " " else { throw fail("no space before the value") }
        at += 1
        var rest = ""
        rest.unicodeScalars.append(contentsOf: scalars[at...])
        let fields = rest.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 1 || (fields.count == 2 && Int64(fields[1]) != nil), let value = number(String(fields[0])) else {
            throw fail("bad value")
        }
        return Sample(name: name, labels: labels, value: value)
    }
}
