// A data block decoded for reading: every key materialised once into one flat buffer, with
// offsets, so that a binary search or a scan touches no reference-counted objects and makes no
// allocations. Decoding makes every check `Block` makes (Format/segment.md §5), in one pass.

import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class DecodedBlock: @unchecked Sendable {
    /// Where entry i's key and value lie: the key in the keys area, the value in the block.
    public struct Span {
        public var keyStart: Int32
        public var keyEnd: Int32
        public var valueStart: Int32
        public var valueLength: Int32
    }

    /// One allocation: the spans, then the block's bytes (values are read from here), then
    /// every key concatenated. Owned, immutable and never moved, so pointers into it stay valid
    /// while the block is alive.
    let storage: UnsafeMutableRawBufferPointer
    public let count: Int
    public let spans: UnsafePointer<Span>
    public let blockBase: UnsafePointer<UInt8>
    public let keysBase: UnsafePointer<UInt8>
    let bytesCount: Int
    let keysCount: Int
    /// Bytes held in memory (what a cache charges).
    public let charge: Int
    public let order: KeyOrder

    var keys: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: keysBase, count: keysCount) }

    /// The block's bytes.
    public var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: blockBase, count: bytesCount) }

    /// Key `index`, valid while this block is alive.
    @inline(__always)
    public func keyBuffer(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        let span = spans[index]
        return UnsafeBufferPointer(start: keysBase + Int(span.keyStart), count: Int(span.keyEnd - span.keyStart))
    }

    /// Value `index`, valid while this block is alive.
    @inline(__always)
    public func valueBuffer(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        let span = spans[index]
        return UnsafeBufferPointer(start: blockBase + Int(span.valueStart), count: Int(span.valueLength))
    }

    public func key(_ index: Int) -> [UInt8] { Array(keyBuffer(index)) }
    public func value(_ index: Int) -> ArraySlice<UInt8> { Array(valueBuffer(index))[...] }


    /// Compares key `index` with `other`.
    public func compareKey(_ index: Int, _ other: [UInt8]) -> Int {
        other.withUnsafeBufferPointer { other in order.compare(keyBuffer(index), other) }
    }

    /// Index of the first key ≥ `target` (`count` when none).
    public func lowerBound(_ target: [UInt8]) -> Int {
        target.withUnsafeBufferPointer { target in
            var low = 0, high = count
            while low < high {
                let mid = (low + high) / 2
                if order.compare(keyBuffer(mid), target) < 0 { low = mid + 1 } else { high = mid }
            }
            return low
        }
    }

    init(bytes: [UInt8], keys: [UInt8], keyEnds: [Int32], valueStarts: [Int32], valueLengths: [Int32], order: KeyOrder) {
        self.order = order
        count = keyEnds.count
        bytesCount = bytes.count
        keysCount = keys.count
        let spanBytes = count * MemoryLayout<Span>.stride
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, spanBytes + bytes.count + keys.count), alignment: 16)
        let spans = storage.baseAddress!.bindMemory(to: Span.self, capacity: count)
        for index in 0..<count {
            spans[index] = Span(keyStart: index == 0 ? 0 : keyEnds[index - 1], keyEnd: keyEnds[index],
                                valueStart: valueStarts[index], valueLength: valueLengths[index])
        }
        let blockStart = storage.baseAddress! + spanBytes
        bytes.withUnsafeBytes { if !bytes.isEmpty { blockStart.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) } }
        keys.withUnsafeBytes { if !keys.isEmpty { (blockStart + bytes.count).copyMemory(from: $0.baseAddress!, byteCount: keys.count) } }
        self.storage = storage
        self.spans = UnsafePointer(spans)
        blockBase = UnsafePointer(blockStart.bindMemory(to: UInt8.self, capacity: bytes.count + keys.count))
        keysBase = blockBase + bytes.count
        charge = spanBytes + bytes.count + keys.count + 200
    }

    deinit { storage.deallocate() }

    /// Decodes and validates a block.
    public static func decode(_ bytes: [UInt8], baseOffset: UInt64, order: KeyOrder = .bytewise) throws(DecodeError) -> DecodedBlock {
        guard bytes.count >= 4 else {
            throw DecodeError(field: "block.restart count", offset: baseOffset, reason: .truncated(needed: 4, available: bytes.count))
        }
        let result = bytes.withUnsafeBytes { raw in Result { () throws(DecodeError) -> DecodedBlock in try decode(bytes, raw, baseOffset: baseOffset, order: order) } }
        return try result.get()
    }

    private static func decode(_ bytes: [UInt8], _ raw: UnsafeRawBufferPointer, baseOffset: UInt64, order: KeyOrder) throws(DecodeError) -> DecodedBlock {
        do {
            func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
            let restartCount = u32(bytes.count - 4)
            guard restartCount >= 1 else {
                throw DecodeError(field: "block.restart count", offset: baseOffset + UInt64(bytes.count - 4), reason: .invalidValue(0))
            }
            guard restartCount <= (bytes.count - 4) / 4 else {
                throw DecodeError(field: "block.restart count", offset: baseOffset + UInt64(bytes.count - 4),
                                  reason: .tooLarge(value: UInt64(restartCount), limit: UInt64((bytes.count - 4) / 4)))
            }
            let entriesEnd = bytes.count - 4 - restartCount * 4
            var previousRestart = -1
            for i in 0..<restartCount {
                let at = entriesEnd + i * 4
                let restart = u32(at)
                guard restart > previousRestart, restart <= entriesEnd, (i > 0 || restart == 0) else {
                    throw DecodeError(field: "block.restart", offset: baseOffset + UInt64(at), reason: .invalid("restart \(restart) out of order or past the entries"))
                }
                previousRestart = restart
            }
            var keys: [UInt8] = []
            keys.reserveCapacity(entriesEnd * 2)
            var keyEnds: [Int32] = [], valueStarts: [Int32] = [], valueLengths: [Int32] = []
            let estimate = max(4, entriesEnd / 24)
            keyEnds.reserveCapacity(estimate)
            valueStarts.reserveCapacity(estimate)
            valueLengths.reserveCapacity(estimate)
            var budget = Block.decodedKeyBytesLimit(blockBytes: bytes.count)
            var offset = 0
            var restartIndex = 0
            var previousStart = 0, previousLength = 0
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            func varint(_ position: inout Int, _ field: String) throws(DecodeError) -> UInt64 {
                var result: UInt64 = 0
                var shift: UInt64 = 0
                let start = position
                while true {
                    guard position < entriesEnd else {
                        throw DecodeError(field: field, offset: baseOffset + UInt64(start), reason: .truncated(needed: 1, available: 0))
                    }
                    let byte = base[position]
                    position += 1
                    if shift == 63 && byte > 1 { throw DecodeError(field: field, offset: baseOffset + UInt64(start), reason: .malformedVarint) }
                    result |= UInt64(byte & 0x7F) << shift
                    if byte & 0x80 == 0 {
                        // An overlong form (a last 0 after others) is refused, as ByteReader does.
                        if byte == 0 && position - start > 1 {
                            throw DecodeError(field: field, offset: baseOffset + UInt64(start), reason: .malformedVarint)
                        }
                        return result
                    }
                    shift += 7
                    if shift > 63 { throw DecodeError(field: field, offset: baseOffset + UInt64(start), reason: .malformedVarint) }
                }
            }
            while offset < entriesEnd {
                let isRestart = restartIndex < restartCount && u32(entriesEnd + restartIndex * 4) == offset
                if isRestart { restartIndex += 1 }
                let entryOffset = offset
                let shared = try varint(&offset, "block.entry.shared")
                let unshared = try varint(&offset, "block.entry.unshared")
                let valueLength = try varint(&offset, "block.entry.value length")
                let previousAvailable = isRestart ? 0 : previousLength
                guard shared <= UInt64(previousAvailable) else {
                    throw DecodeError(field: "block.entry.shared", offset: baseOffset + UInt64(entryOffset),
                                      reason: .tooLarge(value: shared, limit: UInt64(previousAvailable)))
                }
                guard unshared <= UInt64(Block.keyBytesLimit) - shared else {
                    throw DecodeError(field: "block.entry.unshared", offset: baseOffset + UInt64(entryOffset),
                                      reason: .tooLarge(value: unshared > UInt64.max - shared ? UInt64.max : shared + unshared, limit: UInt64(Block.keyBytesLimit)))
                }
                let remaining = entriesEnd - offset
                guard unshared <= UInt64(remaining), valueLength <= UInt64(remaining) - unshared else {
                    throw DecodeError(field: "block.entry", offset: baseOffset + UInt64(offset),
                                      reason: .truncated(needed: Int(clamping: unshared &+ valueLength), available: remaining))
                }
                let keyLength = Int(shared) + Int(unshared)
                guard order.allowsKeyLength(keyLength) else {
                    throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(entryOffset), reason: .invalid("key of \(keyLength) bytes is too short for its key order"))
                }
                budget -= keyLength
                if budget < 0 {
                    throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(entryOffset), reason: .invalid("decoded keys exceed the block's budget"))
                }
                let start = keys.count
                if shared > 0 {
                    for index in previousStart..<(previousStart + Int(shared)) { keys.append(keys[index]) }
                }
                keys.append(contentsOf: UnsafeBufferPointer(start: base + offset, count: Int(unshared)))
                offset += Int(unshared)
                if !keyEnds.isEmpty {
                    let order = keys.withUnsafeBufferPointer { keys in
                        order.compare(UnsafeBufferPointer(rebasing: keys[previousStart..<(previousStart + previousLength)]),
                                     UnsafeBufferPointer(rebasing: keys[start..<(start + keyLength)]))
                    }
                    guard order < 0 else {
                        throw DecodeError(field: "block.entry.key", offset: baseOffset + UInt64(entryOffset), reason: .invalid("keys not strictly increasing"))
                    }
                }
                keyEnds.append(Int32(start + keyLength))
                valueStarts.append(Int32(offset))
                valueLengths.append(Int32(valueLength))
                offset += Int(valueLength)
                previousStart = start
                previousLength = keyLength
            }
            guard restartIndex == restartCount || (entriesEnd == 0 && restartCount == 1) else {
                throw DecodeError(field: "block.restart", offset: baseOffset + UInt64(entriesEnd), reason: .invalid("a restart point is not at an entry boundary"))
            }
            return DecodedBlock(bytes: bytes, keys: keys, keyEnds: keyEnds, valueStarts: valueStarts, valueLengths: valueLengths, order: order)
        }
    }
}
