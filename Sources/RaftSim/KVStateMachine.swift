// The replicated state machine the simulator drives: a string key-value map with put, get and
// compare-and-set, and a per-client session table so that a retried command takes effect once.

import Raft
import Wire

public enum KVOperation: Sendable, Equatable, CustomStringConvertible {
    case put(key: String, value: String)
    case get(key: String)
    /// Sets `key` to `new` if its value is `expected` (nil: absent).
    case cas(key: String, expected: String?, new: String)

    public var key: String {
        switch self {
        case let .put(key, _), let .get(key), let .cas(key, _, _): key
        }
    }

    public var description: String {
        switch self {
        case let .put(key, value): "put(\(key), \(value))"
        case let .get(key): "get(\(key))"
        case let .cas(key, expected, new): "cas(\(key), \(expected ?? "nil") → \(new))"
        }
    }
}

public enum KVResult: Sendable, Equatable, CustomStringConvertible {
    case ok
    case value(String?)
    case swapped(Bool)

    public var description: String {
        switch self {
        case .ok: "ok"
        case let .value(value): value ?? "nil"
        case let .swapped(done): done ? "swapped" : "not swapped"
        }
    }
}

/// A command in the log: who asked (client and its sequence number) and what.
struct KVCommand: Sendable, Equatable {
    var client: UInt64
    var sequence: UInt64
    var operation: KVOperation

    var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.write(client)
        writer.write(sequence)
        switch operation {
        case let .put(key, value):
            writer.write(UInt8(1))
            writer.writeLengthPrefixed(Array(key.utf8))
            writer.writeLengthPrefixed(Array(value.utf8))
        case let .get(key):
            writer.write(UInt8(2))
            writer.writeLengthPrefixed(Array(key.utf8))
        case let .cas(key, expected, new):
            writer.write(UInt8(3))
            writer.writeLengthPrefixed(Array(key.utf8))
            writer.write(UInt8(expected == nil ? 0 : 1))
            writer.writeLengthPrefixed(Array((expected ?? "").utf8))
            writer.writeLengthPrefixed(Array(new.utf8))
        }
        return writer.bytes
    }

    init(client: UInt64, sequence: UInt64, operation: KVOperation) {
        self.client = client
        self.sequence = sequence
        self.operation = operation
    }

    init(decoding bytes: [UInt8]) throws(DecodeError) {
        var reader = ByteReader(bytes)
        client = try reader.readUInt64("client")
        sequence = try reader.readUInt64("sequence")
        func string(_ field: String) throws(DecodeError) -> String {
            String(decoding: try reader.readLengthPrefixed(field, limit: 1 << 16), as: UTF8.self)
        }
        switch try reader.readUInt8("operation") {
        case 1: operation = .put(key: try string("key"), value: try string("value"))
        case 2: operation = .get(key: try string("key"))
        case 3:
            let key = try string("key")
            let present = try reader.readUInt8("expected present")
            let expected = try string("expected")
            operation = .cas(key: key, expected: present == 0 ? nil : expected, new: try string("new"))
        case let other: throw reader.error("operation", .invalid("unknown operation \(other)"))
        }
    }
}

struct KVStateMachine: Sendable, Equatable {
    var values: [String: String] = [:]
    /// Per client: the last sequence number applied and its result.
    var sessions: [UInt64: (sequence: UInt64, result: KVResult)] = [:]
    var applied: UInt64 = 0

    static func == (a: KVStateMachine, b: KVStateMachine) -> Bool {
        a.values == b.values && a.applied == b.applied && a.sessions.keys == b.sessions.keys
            && a.sessions.allSatisfy { b.sessions[$0.key]!.sequence == $0.value.sequence && b.sessions[$0.key]!.result == $0.value.result }
    }

    /// Applies a command; returns its result (a retried command's first result), or nil for a
    /// command older than the client's last.
    mutating func apply(_ command: KVCommand, index: UInt64) -> KVResult? {
        applied = index
        if let session = sessions[command.client] {
            if session.sequence == command.sequence { return session.result }
            if session.sequence > command.sequence { return nil }
        }
        let result: KVResult
        switch command.operation {
        case let .put(key, value):
            values[key] = value
            result = .ok
        case let .get(key):
            result = .value(values[key])
        case let .cas(key, expected, new):
            if values[key] == expected {
                values[key] = new
                result = .swapped(true)
            } else {
                result = .swapped(false)
            }
        }
        sessions[command.client] = (command.sequence, result)
        return result
    }

    var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.write(applied)
        writer.write(UInt32(values.count))
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            writer.writeLengthPrefixed(Array(key.utf8))
            writer.writeLengthPrefixed(Array(value.utf8))
        }
        writer.write(UInt32(sessions.count))
        for (client, session) in sessions.sorted(by: { $0.key < $1.key }) {
            writer.write(client)
            writer.write(session.sequence)
            switch session.result {
            case .ok: writer.write(UInt8(1))
            case let .value(value):
                writer.write(UInt8(value == nil ? 2 : 3))
                writer.writeLengthPrefixed(Array((value ?? "").utf8))
            case let .swapped(done): writer.write(UInt8(done ? 4 : 5))
            }
        }
        return writer.bytes
    }

    init() {}

    init(decoding bytes: [UInt8]) throws(DecodeError) {
        var reader = ByteReader(bytes)
        applied = try reader.readUInt64("applied")
        for _ in 0..<(try reader.readUInt32("value count")) {
            let key = String(decoding: try reader.readLengthPrefixed("key", limit: 1 << 16), as: UTF8.self)
            values[key] = String(decoding: try reader.readLengthPrefixed("value", limit: 1 << 16), as: UTF8.self)
        }
        for _ in 0..<(try reader.readUInt32("session count")) {
            let client = try reader.readUInt64("client")
            let sequence = try reader.readUInt64("sequence")
            let result: KVResult
            switch try reader.readUInt8("result") {
            case 1: result = .ok
            case 2: result = .value(nil)
            case 3: result = .value(String(decoding: try reader.readLengthPrefixed("value", limit: 1 << 16), as: UTF8.self))
            case 4: result = .swapped(true)
            case 5: result = .swapped(false)
            case let other: throw reader.error("result", .invalid("unknown result \(other)"))
            }
            sessions[client] = (sequence, result)
        }
    }
}
