// `vectron-bench json`: decoding a Qdrant-style upsert body (points × dimension floats plus a
// small payload each) with the JSON module — vectors read compactly as float32 — against
// Foundation's JSONDecoder decoding the same bytes into Codable structs, in the same run; and
// writing a search-style response with JSONWriter against JSONEncoder. Two float spellings:
// float32 shortest round-trip (what Vectron writes) and the double representation of each
// float32 (17 digits, what Python clients send for numpy float32 vectors).

import Basics
import Foundation
import JSON

public struct JSONBenchmarkConfiguration: Sendable {
    public var points = 256
    public var dimension = 384
    /// Timed rounds per decoder (each one full body), alternating between the decoders.
    public var rounds = 30
    public var seed: UInt64 = 42

    public init() {}
}

public enum JSONBenchmark {
    struct FoundationPayload: Codable {
        var city: String
        var count: Int
        var tags: [String]
        var price: Double
    }

    struct FoundationPoint: Codable {
        var id: UInt64
        var vector: [Float]
        var payload: FoundationPayload
    }

    struct FoundationBody: Codable {
        var points: [FoundationPoint]
    }

    struct Point {
        var id: UInt64
        var vector: [Float]
        var payload: JSONObject
    }

    enum Failure: Error, CustomStringConvertible {
        case badBody(String)
        var description: String {
            switch self { case .badBody(let reason): return "bench body decoded wrongly: \(reason)" }
        }
    }

    /// The upsert body, with each float spelled by `spell`.
    static func upsertBody(_ vectors: [[Float]], spell: (Float) -> String) -> [UInt8] {
        var text = "{\"points\":["
        for (index, vector) in vectors.enumerated() {
            if index > 0 { text += "," }
            text += "{\"id\":\(index * 7 + 1),\"vector\":["
            text += vector.map(spell).joined(separator: ",")
            text += "],\"payload\":{\"city\":\"Berlin\",\"count\":\(index),\"tags\":[\"red\",\"large\"],\"price\":12.5}}"
        }
        text += "]}"
        return Array(text.utf8)
    }

    static let vectorOptions = JSONParser.Options(floatArrays: .underKeys(["vector"]))

    /// The JSON module's decoding of the body into points, as the REST layer will do it.
    static func decodeVectron(_ body: [UInt8]) throws -> [Point] {
        let document = try JSONParser.parse(body, options: vectorOptions)
        guard let points = document["points"]?.arrayValue else { throw Failure.badBody("no points") }
        var result: [Point] = []
        result.reserveCapacity(points.count)
        for point in points {
            guard let id = point["id"]?.uint64Value, case .floats(let vector)? = point["vector"],
                  let payload = point["payload"]?.objectValue else { throw Failure.badBody("bad point") }
            result.append(Point(id: id, vector: vector, payload: payload))
        }
        return result
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }

    public static func run(_ configuration: JSONBenchmarkConfiguration, output: (String) -> Void) throws {
        var random = SeededRandom(seed: configuration.seed)
        let vectors: [[Float]] = (0..<configuration.points).map { _ in
            (0..<configuration.dimension).map { _ in Float(Double(random.next() >> 11) * 0x1.0p-53 * 2 - 1) }
        }
        let clock = ContinuousClock()
        let decoder = JSONDecoder()
        for (format, spell) in [("float32-shortest", { (f: Float) in f.description }),
                                ("float32-as-double", { (f: Float) in Double(f).description })] {
            let body = upsertBody(vectors, spell: spell)
            // Both decoders must read the same vectors before anything is timed.
            let ours = try decodeVectron(body)
            let theirs = try decoder.decode(FoundationBody.self, from: Data(body))
            let ourMismatches = zip(ours, vectors).filter { $0.0.vector != $0.1 }.count
            let theirMismatches = zip(theirs.points, vectors).filter { $0.0.vector != $0.1 }.count
            var vectronTimes: [Double] = []
            var foundationTimes: [Double] = []
            let data = Data(body)
            for round in 0..<(configuration.rounds + 2) {
                var start = clock.now
                let decoded = try decodeVectron(body)
                let vectronSeconds = seconds(clock.now - start)
                precondition(decoded.count == configuration.points)
                start = clock.now
                let decodedByFoundation = try decoder.decode(FoundationBody.self, from: data)
                let foundationSeconds = seconds(clock.now - start)
                precondition(decodedByFoundation.points.count == configuration.points)
                if round >= 2 {  // two warm-up rounds
                    vectronTimes.append(vectronSeconds)
                    foundationTimes.append(foundationSeconds)
                }
            }
            let megabytes = Double(body.count) / 1e6
            for (name, times, mismatches) in [("vectron-json", vectronTimes, ourMismatches), ("foundation-jsondecoder", foundationTimes, theirMismatches)] {
                let time = median(times)
                output("{\"bench\":\"json-decode\",\"format\":\"\(format)\",\"decoder\":\"\(name)\",\"points\":\(configuration.points),\"dimension\":\(configuration.dimension),\"body_bytes\":\(body.count),\"ms_per_body_p50\":\(formatNumber(time * 1e3, digits: 3)),\"mb_per_s\":\(formatNumber(megabytes / time, digits: 1)),\"us_per_vector\":\(formatNumber(time * 1e6 / Double(configuration.points), digits: 2)),\"vectors_differing_from_source\":\(mismatches)}")
            }
            output("{\"bench\":\"json-decode\",\"format\":\"\(format)\",\"speedup_vs_foundation\":\(formatNumber(median(foundationTimes) / median(vectronTimes), digits: 1))}")
        }

        // Writing: a search-style response with vectors, JSONWriter against JSONEncoder.
        struct Hit: Codable {
            var id: UInt64
            var score: Float
            var vector: [Float]
        }
        struct Response: Codable {
            var result: [Hit]
            var status: String
            var time: Double
        }
        let hits = vectors.enumerated().map { Hit(id: UInt64($0.offset), score: 1 / Float($0.offset + 1), vector: $0.element) }
        let response = Response(result: hits, status: "ok", time: 0.000123)
        let encoder = JSONEncoder()
        var writerTimes: [Double] = []
        var encoderTimes: [Double] = []
        var writtenBytes = 0
        for round in 0..<(configuration.rounds + 2) {
            var start = clock.now
            var writer = JSONWriter(reservingCapacity: 1 << 20)
            writer.beginObject()
            writer.key("result")
            writer.beginArray()
            for hit in response.result {
                writer.beginObject()
                writer.key("id")
                writer.value(hit.id)
                writer.key("score")
                writer.value(hit.score)
                writer.key("vector")
                writer.value(hit.vector)
                writer.endObject()
            }
            writer.endArray()
            writer.key("status")
            writer.value(response.status)
            writer.key("time")
            writer.value(response.time)
            writer.endObject()
            let writerSeconds = seconds(clock.now - start)
            writtenBytes = writer.bytes.count
            start = clock.now
            let encoded = try encoder.encode(response)
            let encoderSeconds = seconds(clock.now - start)
            precondition(!encoded.isEmpty)
            if round >= 2 {
                writerTimes.append(writerSeconds)
                encoderTimes.append(encoderSeconds)
            }
        }
        for (name, times) in [("vectron-jsonwriter", writerTimes), ("foundation-jsonencoder", encoderTimes)] {
            let time = median(times)
            output("{\"bench\":\"json-encode\",\"encoder\":\"\(name)\",\"points\":\(configuration.points),\"dimension\":\(configuration.dimension),\"bytes\":\(writtenBytes),\"ms_per_response_p50\":\(formatNumber(time * 1e3, digits: 3)),\"us_per_vector\":\(formatNumber(time * 1e6 / Double(configuration.points), digits: 2))}")
        }
    }
}
