// The order of keys in a segment (Format/segment.md §1.2), named by the footer's `keyOrder`.
//
// `bytewise`: plain lexicographic order of the bytes. `internalKey`: the storage engine's
// internal keys (§14) — a user key followed by an 8-byte trailer — ordered by user key
// (bytewise), then by trailer (bytewise). Every key in such a segment has at least 8 bytes.

import Checksum

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum KeyOrder: UInt16, Sendable {
    case bytewise = 0
    case internalKey = 1

    public static let trailerBytes = 8

    /// Three-way comparison: negative, zero or positive.
    @inlinable
    public func compare(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
        switch self {
        case .bytewise: return compareBytes(a, b)
        case .internalKey: return compareInternalKeys(a, b)
        }
    }

    @inlinable
    public func compare(_ a: [UInt8], _ b: [UInt8]) -> Int {
        a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in compare(a, b) } }
    }

    /// The part of a key the Bloom filter records: the whole key (bytewise), the user key
    /// (internal keys), so that one probe finds every version of a user key.
    @inlinable
    public func filterHash(_ key: [UInt8]) -> UInt64 {
        key.withUnsafeBufferPointer { filterHash($0) }
    }

    @inlinable
    public func filterHash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        switch self {
        case .bytewise: return XXH3.hash(UnsafeRawBufferPointer(key))
        case .internalKey:
            guard key.count >= Self.trailerBytes else { return XXH3.hash(UnsafeRawBufferPointer(key)) }
            return XXH3.hash(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(key)[..<(key.count - Self.trailerBytes)]))
        }
    }

    /// Whether `count` bytes can be a key in this order.
    @inlinable
    public func allowsKeyLength(_ count: Int) -> Bool { self == .bytewise || count >= Self.trailerBytes }
}

/// Internal-key order: user parts bytewise (shorter first on a tie), then the trailers.
@inlinable
public func compareInternalKeys(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Int {
    // Keys too short to be internal keys (only from callers, never from a valid block) compare
    // bytewise, so that no input can make this read out of bounds.
    if a.count < 8 || b.count < 8 { return compareBytes(a, b) }
    let userA = a.count - 8, userB = b.count - 8
    let common = min(userA, userB)
    if common > 0 {
        let result = memcmp(a.baseAddress!, b.baseAddress!, common)
        if result != 0 { return Int(result) }
    }
    if userA != userB { return userA - userB }
    return Int(memcmp(a.baseAddress! + userA, b.baseAddress! + userB, 8))
}

@inlinable
public func compareInternalKeys(_ a: [UInt8], _ b: [UInt8]) -> Int {
    a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in compareInternalKeys(a, b) } }
}
