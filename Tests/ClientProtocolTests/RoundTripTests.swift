// The client protocol's messages (Format/client.md): seeded random values of every message
// round-trip exactly; every strict prefix of an encoding and seeded garbage are refused with a
// `DecodeError` (never a trap), and whatever garbage decodes re-encodes to the same bytes; the
// golden payloads in Format/golden/client/ decode to the values the spec's examples name.
//
// Regenerate the golden files (only for a new protocol version, never to paper over a change):
//   VECTRON_REGENERATE_GOLDEN=1 swift test --filter ClientProtocolTests

import Basics
import ClientProtocol
import Foundation
import Payload
import RPC
import Testing
import Wire

/// A seeded source of message values.
struct Values {
    var random: SeededRandom

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func bool() -> Bool { random.next() & 1 == 0 }
    mutating func string(_ maxLength: Int = 12) -> String {
        String((0..<int(0...maxLength)).map { _ in Array("abcxyzé_-.0189")[int(0...13)] })
    }
    mutating func id() -> PointID { bool() ? .number(random.next()) : .uuid(UUIDBytes(high: random.next(), low: random.next())) }
    mutating func vector() -> [Float] { (0..<int(1...9)).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: random.next())) } }
    mutating func json() -> [UInt8] { bool() ? [] : Array("{\"k\": \(int(0...99))}".utf8) }
    mutating func selection() -> PayloadSelection {
        switch int(0...3) {
        case 0: return .none
        case 1: return .all
        case 2: return .include((0..<int(0...3)).map { _ in string() })
        default: return .exclude((0..<int(0...3)).map { _ in string() })
        }
    }
    mutating func selector() -> PointSelector { bool() ? .ids((0..<int(0...4)).map { _ in id() }) : .filter(Array("{\"must\": []}".utf8)) }
    mutating func read() -> PointRead {
        PointRead(id: id(), score: bool() ? Float(int(0...1000)) / 7 : nil, payload: bool() ? json() : nil, vector: bool() ? vector() : nil)
    }

    /// One encoded message of each kind, with its decoder.
    mutating func messages() -> [(name: String, bytes: [UInt8], decode: ([UInt8]) throws -> [UInt8])] {
        func entry<M: RPCMessage & Equatable>(_ message: M) -> (String, [UInt8], ([UInt8]) throws -> [UInt8]) {
            (String(describing: M.self), message.encoded(), { try M.decode($0).encoded() })
        }
        let distance = Distance.allCases[int(0...3)]
        let change: PayloadChange
        switch int(0...3) {
        case 0: change = .set(payload: Array("{\"a\": 1}".utf8), path: bool() ? "a.b" : nil)
        case 1: change = .overwrite(payload: json())
        case 2: change = .deleteKeys((0..<int(0...3)).map { _ in string() })
        default: change = .clear
        }
        return [
            entry(CollectionSpec(name: string(), dimension: UInt32(int(1...65_536)), distance: distance, shards: UInt32(int(1...8)),
                                 m: UInt32(int(2...64)), efConstruct: UInt32(int(4...512)))),
            entry(bool() ? CreateCollectionResult.created : .alreadyExists),
            entry(CollectionName(string())),
            entry(Flag(bool())),
            entry(CollectionDescription(spec: CollectionSpec(name: string(), dimension: 3, distance: distance), points: random.next())),
            entry(CollectionNames((0..<int(0...4)).map { _ in string() })),
            entry(UpsertRequest(collection: string(), points: (0..<int(0...4)).map { _ in PointWrite(id: id(), vector: vector(), payload: json()) })),
            entry(UpdateResult(operationID: random.next())),
            entry(DeletePointsRequest(collection: string(), selector: selector())),
            entry(PayloadChangeRequest(collection: string(), selector: selector(), change: change)),
            entry(RetrieveRequest(collection: string(), ids: (0..<int(0...4)).map { _ in id() }, withPayload: selection(), withVector: bool())),
            entry(PointList((0..<int(0...4)).map { _ in read() })),
            entry(SearchRequest(collection: string(), vector: vector(), limit: UInt32(int(0...100)), offset: UInt32(int(0...100)),
                                filter: json(), withPayload: selection(), withVector: bool(), exact: bool(),
                                scoreThreshold: bool() ? 0.5 : nil, ef: bool() ? UInt32(int(1...500)) : nil)),
            entry(ScrollRequest(collection: string(), from: bool() ? id() : nil, limit: UInt32(int(1...100)), filter: json(),
                                withPayload: selection(), withVector: bool())),
            entry(ScrollResult(points: (0..<int(0...3)).map { _ in read() }, next: bool() ? id() : nil)),
            entry(CountRequest(collection: string(), filter: json())),
            entry(CountResult(count: random.next())),
        ]
    }
}

@Suite struct ClientMessageTests {
    @Test func randomMessagesRoundTripExactly() throws {
        var values = Values(random: SeededRandom(seed: 1))
        for _ in 0..<300 {
            for (name, bytes, decode) in values.messages() {
                #expect(try decode(bytes) == bytes, "\(name)")
            }
        }
    }

    @Test func everyStrictPrefixIsRefused() throws {
        var values = Values(random: SeededRandom(seed: 2))
        for _ in 0..<40 {
            for (name, bytes, decode) in values.messages() {
                for length in 0..<bytes.count {
                    #expect(throws: DecodeError.self, "\(name) prefix \(length)") { _ = try decode(Array(bytes.prefix(length))) }
                }
                #expect(throws: DecodeError.self, "\(name) with a byte after it") { _ = try decode(bytes + [0]) }
            }
        }
    }

    @Test func garbageIsRefusedOrReencodesIdentically() throws {
        var values = Values(random: SeededRandom(seed: 3))
        var random = SeededRandom(seed: 4)
        for _ in 0..<200 {
            for (name, valid, decode) in values.messages() {
                var bytes = valid
                for _ in 0..<3 where !bytes.isEmpty { bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next()) }
                do {
                    #expect(try decode(bytes) == bytes, "\(name)")
                } catch {
                    #expect(error is DecodeError, "\(name): \(error)")
                }
            }
        }
    }

    @Test func countsCannotClaimMoreThanTheBytesHold() {
        // An upsert claiming 2^40 points in a 20-byte payload is refused before any allocation.
        var writer = ByteWriter()
        writer.writeString("c")
        writer.writeVarint(1 << 40)
        #expect(throws: DecodeError.self) { _ = try UpsertRequest.decode(writer.finish() + [UInt8](repeating: 0, count: 16)) }
        var vector = ByteWriter()
        vector.writeVarint(UInt64(ClientLimits.dimensionMax + 1))
        var reader = ByteReader(vector.finish())
        #expect(throws: DecodeError.self) { _ = try reader.readVector("v") }
    }
}

let clientRepositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
let goldenClientDirectory = clientRepositoryRoot + "/Format/golden/client"

/// File name → the message it holds (the examples of Format/client.md §6).
let goldenMessages: [(String, any RPCMessage)] = [
    ("collection-spec.bin", CollectionSpec(name: "docs", dimension: 384, distance: .cosine, shards: 2, m: 16, efConstruct: 100)),
    ("upsert-request.bin", UpsertRequest(collection: "docs", points: [
        PointWrite(id: .number(7), vector: [1, -0.5], payload: Array(#"{"lang":"en"}"#.utf8)),
        PointWrite(id: .uuid(UUIDBytes(parsing: "5c56c793-69f3-4fbf-87e6-c4bf54c28c26")!), vector: [0.25, 2], payload: []),
    ])),
    ("search-request.bin", SearchRequest(collection: "docs", vector: [1, 0], limit: 10, offset: 0,
                                         filter: Array(#"{"must":[{"key":"lang","match":{"value":"en"}}]}"#.utf8),
                                         withPayload: .include(["lang"]), withVector: false, exact: false, scoreThreshold: nil, ef: 64)),
    ("point-list.bin", PointList([PointRead(id: .number(7), score: 0.75, payload: Array(#"{"lang":"en"}"#.utf8), vector: nil)])),
    ("scroll-result.bin", ScrollResult(points: [PointRead(id: .number(1))], next: .number(2))),
]

@Suite(.serialized) struct GoldenClientMessageTests {
    @Test func regenerateWhenAsked() throws {
        guard ProcessInfo.processInfo.environment["VECTRON_REGENERATE_GOLDEN"] != nil else { return }
        try FileManager.default.createDirectory(atPath: goldenClientDirectory, withIntermediateDirectories: true)
        for (name, message) in goldenMessages {
            try Data(message.encoded()).write(to: URL(fileURLWithPath: goldenClientDirectory + "/" + name))
        }
    }

    func golden(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: goldenClientDirectory + "/" + name)))
    }

    @Test func goldenFilesDecodeToTheirValues() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: goldenClientDirectory).filter { $0.hasSuffix(".bin") }.sorted()
        #expect(names == goldenMessages.map(\.0).sorted(), "a golden file is missing or unexpected")
        #expect(try CollectionSpec.decode(golden("collection-spec.bin")) == goldenMessages[0].1 as? CollectionSpec)
        #expect(try UpsertRequest.decode(golden("upsert-request.bin")) == goldenMessages[1].1 as? UpsertRequest)
        #expect(try SearchRequest.decode(golden("search-request.bin")) == goldenMessages[2].1 as? SearchRequest)
        #expect(try PointList.decode(golden("point-list.bin")) == goldenMessages[3].1 as? PointList)
        #expect(try ScrollResult.decode(golden("scroll-result.bin")) == goldenMessages[4].1 as? ScrollResult)
        for (name, message) in goldenMessages { #expect(try golden(name) == message.encoded(), "\(name) does not re-encode to its bytes") }
    }

    /// The byte-level example of Format/client.md §6.1.
    @Test func collectionSpecBytesAreAsDocumented() throws {
        #expect(try golden("collection-spec.bin") == [
            0x04, 0x64, 0x6F, 0x63, 0x73,  // name: length 4, "docs"
            0x80, 0x01, 0x00, 0x00,        // dimension 384
            0x01,                          // distance: Cosine
            0x02, 0x00, 0x00, 0x00,        // shards 2
            0x10, 0x00, 0x00, 0x00,        // m 16
            0x64, 0x00, 0x00, 0x00,        // ef_construct 100
        ])
    }
}
