// Messages of the client protocol (Format/client.md §4). Each writes itself with `ByteWriter`
// and reads itself back with `ByteReader`, checking every length, count and value; a decoder
// never allocates more than the bytes in hand justify. Payloads and filters travel as JSON text
// (Qdrant's shapes, checked by the server); vectors as raw little-endian float32s.

import Payload
import RPC
import Wire

/// Bounds of the client protocol (Format/client.md §5).
public enum ClientLimits {
    /// A collection name, in UTF-8 bytes.
    public static let nameBytesMax = 255
    /// Floats in one vector.
    public static let dimensionMax = 65_536
    /// A payload's or a filter's JSON text in a request.
    public static let jsonBytesMax = 1 << 20
    /// A payload read back: payload changes merge into what a point has, up to 4 MiB.
    public static let storedPayloadBytesMax = 4 << 20
    /// Keys in a payload selector or a list of payload paths, and bytes in each.
    public static let keysMax = 1024
    public static let keyBytesMax = 1024
    /// Points one search or scroll may return (`limit + offset`).
    public static let resultPointsMax = 10_000
}

/// A collection's distance function. The same raw values as `VectorIndex.Metric`, restated
/// here so that the SDK does not depend on the index (and its C kernels); the server converts
/// by raw value.
public enum Distance: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case cosine = 1
    case dot = 2
    case euclid = 3
    case manhattan = 4

    public var description: String {
        switch self {
        case .cosine: "Cosine"
        case .dot: "Dot"
        case .euclid: "Euclid"
        case .manhattan: "Manhattan"
        }
    }
}

// MARK: Field codecs

extension ByteWriter {
    public mutating func write(pointID: PointID) { write(bytes: pointID.encodedKey) }

    /// varint dimension, then the float32s, little-endian.
    public mutating func write(vector: [Float]) {
        writeVarint(UInt64(vector.count))
        vector.withUnsafeBytes { write(bytes: $0) }
    }

    public mutating func write(flag: Bool) { write(flag ? UInt8(1) : UInt8(0)) }

    /// varint count, then each string.
    public mutating func write(strings: [String]) {
        writeVarint(UInt64(strings.count))
        for string in strings { writeString(string) }
    }
}

extension ByteReader {
    public mutating func readPointID(_ field: String) throws(DecodeError) -> PointID {
        let at = absoluteOffset
        let tag = try readUInt8(field)
        let length: Int
        switch tag {
        case 0: length = PointID.numberKeyBytes - 1
        case 1: length = PointID.uuidKeyBytes - 1
        default: throw DecodeError(field: field, offset: at, reason: .invalidValue(UInt64(tag)))
        }
        let body = try readBytes(length, field)
        do throws(PointIDKeyError) {
            return try PointID(encodedKey: [tag] + body)
        } catch {
            throw DecodeError(field: field, offset: at, reason: .invalid("\(error)"))
        }
    }

    public mutating func readVector(_ field: String) throws(DecodeError) -> [Float] {
        let at = absoluteOffset
        let dimension = try readVarint("\(field).dimension")
        guard dimension >= 1, dimension <= UInt64(ClientLimits.dimensionMax) else {
            throw DecodeError(field: "\(field).dimension", offset: at, reason: .tooLarge(value: dimension, limit: UInt64(ClientLimits.dimensionMax)))
        }
        let raw = try readBytes(Int(dimension) * 4, field)
        return [Float](unsafeUninitializedCapacity: Int(dimension)) { buffer, initialised in
            raw.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
            initialised = Int(dimension)
        }
    }

    public mutating func readFlag(_ field: String) throws(DecodeError) -> Bool {
        let at = absoluteOffset
        let byte = try readUInt8(field)
        guard byte <= 1 else { throw DecodeError(field: field, offset: at, reason: .invalidValue(UInt64(byte))) }
        return byte == 1
    }

    /// A count of items each at least `minimumBytes` long: bounded by `limit` and by the bytes left.
    public mutating func readCount(_ field: String, limit: Int = Int.max, minimumBytes: Int) throws(DecodeError) -> Int {
        let at = absoluteOffset
        let count = try readVarint(field)
        let bound = min(UInt64(limit), UInt64(remaining / max(1, minimumBytes)))
        guard count <= bound else { throw DecodeError(field: field, offset: at, reason: .tooLarge(value: count, limit: bound)) }
        return Int(count)
    }

    public mutating func readStrings(_ field: String) throws(DecodeError) -> [String] {
        let count = try readCount("\(field).count", limit: ClientLimits.keysMax, minimumBytes: 1)
        var strings: [String] = []
        strings.reserveCapacity(count)
        for _ in 0..<count { strings.append(try readString(field, limit: ClientLimits.keyBytesMax)) }
        return strings
    }

    /// JSON text (not parsed here): empty means "absent".
    public mutating func readJSONText(_ field: String, limit: Int = ClientLimits.jsonBytesMax) throws(DecodeError) -> [UInt8] {
        Array(try readLengthPrefixed(field, limit: limit))
    }

    public mutating func readCollectionName() throws(DecodeError) -> String {
        try readString("collection", limit: ClientLimits.nameBytesMax)
    }
}

// MARK: Collections

/// `collections.create`: a new collection.
public struct CollectionSpec: RPCMessage, Equatable {
    public var name: String
    public var dimension: UInt32
    public var distance: Distance
    public var shards: UInt32
    public var m: UInt32
    public var efConstruct: UInt32

    public init(name: String, dimension: UInt32, distance: Distance, shards: UInt32 = 1, m: UInt32 = 16, efConstruct: UInt32 = 100) {
        self.name = name
        self.dimension = dimension
        self.distance = distance
        self.shards = shards
        self.m = m
        self.efConstruct = efConstruct
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(name)
        writer.write(dimension)
        writer.write(distance.rawValue)
        writer.write(shards)
        writer.write(m)
        writer.write(efConstruct)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CollectionSpec {
        let name = try reader.readCollectionName()
        let dimension = try reader.readUInt32("dimension")
        let distance = try reader.readDistance()
        return CollectionSpec(name: name, dimension: dimension, distance: distance, shards: try reader.readUInt32("shards"),
                              m: try reader.readUInt32("m"), efConstruct: try reader.readUInt32("ef construct"))
    }
}

extension ByteReader {
    mutating func readDistance() throws(DecodeError) -> Distance {
        let at = absoluteOffset
        let raw = try readUInt8("distance")
        guard let distance = Distance(rawValue: raw) else { throw DecodeError(field: "distance", offset: at, reason: .invalidValue(UInt64(raw))) }
        return distance
    }
}

public enum CreateCollectionResult: UInt8, RPCMessage, Equatable {
    case created = 1
    /// A collection of this name exists (the caller's or, unrevealed, another user's).
    case alreadyExists = 2

    public func encode(into writer: inout ByteWriter) { writer.write(rawValue) }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CreateCollectionResult {
        let at = reader.absoluteOffset
        let raw = try reader.readUInt8("outcome")
        guard let outcome = CreateCollectionResult(rawValue: raw) else { throw DecodeError(field: "outcome", offset: at, reason: .invalidValue(UInt64(raw))) }
        return outcome
    }
}

public struct CollectionName: RPCMessage, Equatable {
    public var name: String
    public init(_ name: String) { self.name = name }
    public func encode(into writer: inout ByteWriter) { writer.writeString(name) }
    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CollectionName { CollectionName(try reader.readCollectionName()) }
}

public struct Flag: RPCMessage, Equatable {
    public var value: Bool
    public init(_ value: Bool) { self.value = value }
    public func encode(into writer: inout ByteWriter) { writer.write(flag: value) }
    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> Flag { Flag(try reader.readFlag("flag")) }
}

public struct CollectionDescription: RPCMessage, Equatable {
    public var spec: CollectionSpec
    /// Points in the collection now.
    public var points: UInt64

    public init(spec: CollectionSpec, points: UInt64) {
        self.spec = spec
        self.points = points
    }

    public func encode(into writer: inout ByteWriter) {
        spec.encode(into: &writer)
        writer.write(points)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CollectionDescription {
        CollectionDescription(spec: try CollectionSpec.decode(from: &reader), points: try reader.readUInt64("points"))
    }
}

public struct CollectionNames: RPCMessage, Equatable {
    public var names: [String]
    public init(_ names: [String]) { self.names = names }
    public func encode(into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(names.count))
        for name in names { writer.writeString(name) }
    }
    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CollectionNames {
        let count = try reader.readCount("names.count", minimumBytes: 1)
        var names: [String] = []
        names.reserveCapacity(count)
        for _ in 0..<count { names.append(try reader.readCollectionName()) }
        return CollectionNames(names)
    }
}

// MARK: Points

/// A point to write: id, vector and payload (a JSON object's text; empty means `{}`).
public struct PointWrite: Equatable, Sendable {
    public var id: PointID
    public var vector: [Float]
    public var payload: [UInt8]

    public init(id: PointID, vector: [Float], payload: [UInt8] = []) {
        self.id = id
        self.vector = vector
        self.payload = payload
    }
}

public struct UpsertRequest: RPCMessage, Equatable {
    public var collection: String
    public var points: [PointWrite]

    public init(collection: String, points: [PointWrite]) {
        self.collection = collection
        self.points = points
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(collection)
        writer.writeVarint(UInt64(points.count))
        for point in points {
            writer.write(pointID: point.id)
            writer.write(vector: point.vector)
            writer.writeLengthPrefixed(point.payload)
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> UpsertRequest {
        let collection = try reader.readCollectionName()
        // Smallest point: a 9-byte id, a 1-float vector (1 + 4 bytes), an empty payload (1).
        let count = try reader.readCount("points.count", minimumBytes: 15)
        var points: [PointWrite] = []
        points.reserveCapacity(count)
        for _ in 0..<count {
            let id = try reader.readPointID("point.id")
            let vector = try reader.readVector("point.vector")
            points.append(PointWrite(id: id, vector: vector, payload: try reader.readJSONText("point.payload")))
        }
        return UpsertRequest(collection: collection, points: points)
    }
}

/// The Raft log index at which a write was applied (Qdrant's `operation_id`).
public struct UpdateResult: RPCMessage, Equatable {
    public var operationID: UInt64
    public init(operationID: UInt64) { self.operationID = operationID }
    public func encode(into writer: inout ByteWriter) { writer.write(operationID) }
    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> UpdateResult {
        UpdateResult(operationID: try reader.readUInt64("operation id"))
    }
}

/// Which points a delete or a payload change touches.
public enum PointSelector: Equatable, Sendable {
    case ids([PointID])
    /// A Qdrant filter's JSON text.
    case filter([UInt8])

    func encode(into writer: inout ByteWriter) {
        switch self {
        case .ids(let ids):
            writer.write(UInt8(1))
            writer.writeVarint(UInt64(ids.count))
            for id in ids { writer.write(pointID: id) }
        case .filter(let text):
            writer.write(UInt8(2))
            writer.writeLengthPrefixed(text)
        }
    }

    static func decode(from reader: inout ByteReader) throws(DecodeError) -> PointSelector {
        let at = reader.absoluteOffset
        switch try reader.readUInt8("selector") {
        case 1: return .ids(try reader.readPointIDs("selector.ids"))
        case 2:
            let text = try reader.readJSONText("selector.filter")
            guard !text.isEmpty else { throw reader.error("selector.filter", .invalid("an empty filter")) }
            return .filter(text)
        case let other: throw DecodeError(field: "selector", offset: at, reason: .invalidValue(UInt64(other)))
        }
    }
}

extension ByteReader {
    mutating func readPointIDs(_ field: String) throws(DecodeError) -> [PointID] {
        let count = try readCount("\(field).count", minimumBytes: PointID.numberKeyBytes)
        var ids: [PointID] = []
        ids.reserveCapacity(count)
        for _ in 0..<count { ids.append(try readPointID(field)) }
        return ids
    }
}

public struct DeletePointsRequest: RPCMessage, Equatable {
    public var collection: String
    public var selector: PointSelector

    public init(collection: String, selector: PointSelector) {
        self.collection = collection
        self.selector = selector
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(collection)
        selector.encode(into: &writer)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> DeletePointsRequest {
        DeletePointsRequest(collection: try reader.readCollectionName(), selector: try PointSelector.decode(from: &reader))
    }
}

/// A change to the payloads of the selected points.
public enum PayloadChange: Equatable, Sendable {
    /// Merge these keys in (at `path`, a nested key, when given).
    case set(payload: [UInt8], path: String?)
    /// Replace the whole payload.
    case overwrite(payload: [UInt8])
    case deleteKeys([String])
    case clear
}

public struct PayloadChangeRequest: RPCMessage, Equatable {
    public var collection: String
    public var selector: PointSelector
    public var change: PayloadChange

    public init(collection: String, selector: PointSelector, change: PayloadChange) {
        self.collection = collection
        self.selector = selector
        self.change = change
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(collection)
        selector.encode(into: &writer)
        switch change {
        case .set(let payload, let path):
            writer.write(UInt8(1))
            writer.writeLengthPrefixed(payload)
            writer.writeString(path ?? "")
        case .overwrite(let payload):
            writer.write(UInt8(2))
            writer.writeLengthPrefixed(payload)
        case .deleteKeys(let keys):
            writer.write(UInt8(3))
            writer.write(strings: keys)
        case .clear:
            writer.write(UInt8(4))
        }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> PayloadChangeRequest {
        let collection = try reader.readCollectionName()
        let selector = try PointSelector.decode(from: &reader)
        let at = reader.absoluteOffset
        let change: PayloadChange
        switch try reader.readUInt8("change") {
        case 1:
            let payload = try reader.readJSONText("change.payload")
            let path = try reader.readString("change.path", limit: ClientLimits.keyBytesMax)
            change = .set(payload: payload, path: path.isEmpty ? nil : path)
        case 2: change = .overwrite(payload: try reader.readJSONText("change.payload"))
        case 3: change = .deleteKeys(try reader.readStrings("change.keys"))
        case 4: change = .clear
        case let other: throw DecodeError(field: "change", offset: at, reason: .invalidValue(UInt64(other)))
        }
        return PayloadChangeRequest(collection: collection, selector: selector, change: change)
    }
}

/// Which payload keys a read returns.
public enum PayloadSelection: Equatable, Sendable {
    case none
    case all
    case include([String])
    case exclude([String])

    func encode(into writer: inout ByteWriter) {
        switch self {
        case .none: writer.write(UInt8(0))
        case .all: writer.write(UInt8(1))
        case .include(let keys):
            writer.write(UInt8(2))
            writer.write(strings: keys)
        case .exclude(let keys):
            writer.write(UInt8(3))
            writer.write(strings: keys)
        }
    }

    static func decode(from reader: inout ByteReader) throws(DecodeError) -> PayloadSelection {
        let at = reader.absoluteOffset
        switch try reader.readUInt8("with payload") {
        case 0: return .none
        case 1: return .all
        case 2: return .include(try reader.readStrings("with payload.keys"))
        case 3: return .exclude(try reader.readStrings("with payload.keys"))
        case let other: throw DecodeError(field: "with payload", offset: at, reason: .invalidValue(UInt64(other)))
        }
    }
}

public struct RetrieveRequest: RPCMessage, Equatable {
    public var collection: String
    public var ids: [PointID]
    public var withPayload: PayloadSelection
    public var withVector: Bool

    public init(collection: String, ids: [PointID], withPayload: PayloadSelection = .all, withVector: Bool = false) {
        self.collection = collection
        self.ids = ids
        self.withPayload = withPayload
        self.withVector = withVector
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(collection)
        writer.writeVarint(UInt64(ids.count))
        for id in ids { writer.write(pointID: id) }
        withPayload.encode(into: &writer)
        writer.write(flag: withVector)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> RetrieveRequest {
        RetrieveRequest(collection: try reader.readCollectionName(), ids: try reader.readPointIDs("ids"),
                        withPayload: try PayloadSelection.decode(from: &reader), withVector: try reader.readFlag("with vector"))
    }
}

/// A point read back: its id, and what the request asked for.
public struct PointRead: Equatable, Sendable {
    public var id: PointID
    /// The similarity score (searches only).
    public var score: Float?
    /// The payload's JSON text (when asked for).
    public var payload: [UInt8]?
    public var vector: [Float]?

    public init(id: PointID, score: Float? = nil, payload: [UInt8]? = nil, vector: [Float]? = nil) {
        self.id = id
        self.score = score
        self.payload = payload
        self.vector = vector
    }

    static let hasScore: UInt8 = 1 << 0
    static let hasPayload: UInt8 = 1 << 1
    static let hasVector: UInt8 = 1 << 2

    func encode(into writer: inout ByteWriter) {
        writer.write(pointID: id)
        var flags: UInt8 = 0
        if score != nil { flags |= Self.hasScore }
        if payload != nil { flags |= Self.hasPayload }
        if vector != nil { flags |= Self.hasVector }
        writer.write(flags)
        if let score { writer.write(score.bitPattern) }
        if let payload { writer.writeLengthPrefixed(payload) }
        if let vector { writer.write(vector: vector) }
    }

    static func decode(from reader: inout ByteReader) throws(DecodeError) -> PointRead {
        let id = try reader.readPointID("point.id")
        let at = reader.absoluteOffset
        let flags = try reader.readUInt8("point.flags")
        guard flags & ~(hasScore | hasPayload | hasVector) == 0 else {
            throw DecodeError(field: "point.flags", offset: at, reason: .invalidValue(UInt64(flags)))
        }
        var point = PointRead(id: id)
        if flags & hasScore != 0 { point.score = Float(bitPattern: try reader.readUInt32("point.score")) }
        if flags & hasPayload != 0 { point.payload = try reader.readJSONText("point.payload", limit: ClientLimits.storedPayloadBytesMax) }
        if flags & hasVector != 0 { point.vector = try reader.readVector("point.vector") }
        return point
    }
}

public struct PointList: RPCMessage, Equatable {
    public var points: [PointRead]
    public init(_ points: [PointRead]) { self.points = points }

    public func encode(into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(points.count))
        for point in points { point.encode(into: &writer) }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> PointList {
        // Smallest point: a 9-byte id and its flags.
        let count = try reader.readCount("points.count", minimumBytes: 10)
        var points: [PointRead] = []
        points.reserveCapacity(count)
        for _ in 0..<count { points.append(try PointRead.decode(from: &reader)) }
        return PointList(points)
    }
}

public struct SearchRequest: RPCMessage, Equatable {
    public var collection: String
    public var vector: [Float]
    public var limit: UInt32
    public var offset: UInt32
    /// A Qdrant filter's JSON text; empty for none.
    public var filter: [UInt8]
    public var withPayload: PayloadSelection
    public var withVector: Bool
    /// Search exactly (a scan) instead of through the index.
    public var exact: Bool
    public var scoreThreshold: Float?
    /// The HNSW search breadth (nil: the server's default).
    public var ef: UInt32?

    public init(collection: String, vector: [Float], limit: UInt32 = 10, offset: UInt32 = 0, filter: [UInt8] = [],
                withPayload: PayloadSelection = .none, withVector: Bool = false, exact: Bool = false,
                scoreThreshold: Float? = nil, ef: UInt32? = nil) {
        self.collection = collection
        self.vector = vector
        self.limit = limit
        self.offset = offset
        self.filter = filter
        self.withPayload = withPayload
        self.withVector = withVector
        self.exact = exact
        self.scoreThreshold = scoreThreshold
        self.ef = ef
    }

    static let flagWithVector: UInt8 = 1 << 0
    static let flagExact: UInt8 = 1 << 1
    static let flagThreshold: UInt8 = 1 << 2
    static let flagEF: UInt8 = 1 << 3

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(collection)
        writer.write(vector: vector)
        writer.write(limit)
        writer.write(offset)
        writer.writeLengthPrefixed(filter)
        withPayload.encode(into: &writer)
        var flags: UInt8 = 0
        if withVector { flags |= Self.flagWithVector }
        if exact { flags |= Self.flagExact }
        if scoreThreshold != nil { flags |= Self.flagThreshold }
        if ef != nil { flags |= Self.flagEF }
        writer.write(flags)
        if let scoreThreshold { writer.write(scoreThreshold.bitPattern) }
        if let ef { writer.write(ef) }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> SearchRequest {
        let collection = try reader.readCollectionName()
        let vector = try reader.readVector("vector")
        let limit = try reader.readUInt32("limit")
        let offset = try reader.readUInt32("offset")
        let filter = try reader.readJSONText("filter")
        let withPayload = try PayloadSelection.decode(from: &reader)
        let at = reader.absoluteOffset
        let flags = try reader.readUInt8("flags")
        guard flags & ~(flagWithVector | flagExact | flagThreshold | flagEF) == 0 else {
            throw DecodeError(field: "flags", offset: at, reason: .invalidValue(UInt64(flags)))
        }
        let threshold = flags & flagThreshold != 0 ? Float(bitPattern: try reader.readUInt32("score threshold")) : nil
        let ef = flags & flagEF != 0 ? try reader.readUInt32("ef") : nil
        return SearchRequest(collection: collection, vector: vector, limit: limit, offset: offset, filter: filter,
                             withPayload: withPayload, withVector: flags & flagWithVector != 0, exact: flags & flagExact != 0,
                             scoreThreshold: threshold, ef: ef)
    }
}

public struct ScrollRequest: RPCMessage, Equatable {
    public var collection: String
    /// The first id of the page (a previous page's `next`); nil from the start.
    public var from: PointID?
    public var limit: UInt32
    public var filter: [UInt8]
    public var withPayload: PayloadSelection
    public var withVector: Bool

    public init(collection: String, from: PointID? = nil, limit: UInt32 = 10, filter: [UInt8] = [],
                withPayload: PayloadSelection = .all, withVector: Bool = false) {
        self.collection = collection
        self.from = from
        self.limit = limit
        self.filter = filter
        self.withPayload = withPayload
        self.withVector = withVector
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(collection)
        writer.write(flag: from != nil)
        if let from { writer.write(pointID: from) }
        writer.write(limit)
        writer.writeLengthPrefixed(filter)
        withPayload.encode(into: &writer)
        writer.write(flag: withVector)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> ScrollRequest {
        let collection = try reader.readCollectionName()
        let from = try reader.readFlag("has from") ? try reader.readPointID("from") : nil
        return ScrollRequest(collection: collection, from: from, limit: try reader.readUInt32("limit"),
                             filter: try reader.readJSONText("filter"), withPayload: try PayloadSelection.decode(from: &reader),
                             withVector: try reader.readFlag("with vector"))
    }
}

public struct ScrollResult: RPCMessage, Equatable {
    public var points: [PointRead]
    /// The first id of the next page; nil at the end.
    public var next: PointID?

    public init(points: [PointRead], next: PointID?) {
        self.points = points
        self.next = next
    }

    public func encode(into writer: inout ByteWriter) {
        PointList(points).encode(into: &writer)
        writer.write(flag: next != nil)
        if let next { writer.write(pointID: next) }
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> ScrollResult {
        let points = try PointList.decode(from: &reader).points
        let next = try reader.readFlag("has next") ? try reader.readPointID("next") : nil
        return ScrollResult(points: points, next: next)
    }
}

public struct CountRequest: RPCMessage, Equatable {
    public var collection: String
    public var filter: [UInt8]

    public init(collection: String, filter: [UInt8] = []) {
        self.collection = collection
        self.filter = filter
    }

    public func encode(into writer: inout ByteWriter) {
        writer.writeString(collection)
        writer.writeLengthPrefixed(filter)
    }

    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CountRequest {
        CountRequest(collection: try reader.readCollectionName(), filter: try reader.readJSONText("filter"))
    }
}

public struct CountResult: RPCMessage, Equatable {
    public var count: UInt64
    public init(count: UInt64) { self.count = count }
    public func encode(into writer: inout ByteWriter) { writer.write(count) }
    public static func decode(from reader: inout ByteReader) throws(DecodeError) -> CountResult {
        CountResult(count: try reader.readUInt64("count"))
    }
}
