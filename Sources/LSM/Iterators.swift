// Iterators over internal keys (memtables, segments, levels), a merging iterator over many of
// them, and the user-facing iterator that resolves versions at a snapshot.
//
// Every internal iterator moves in one direction per use: forward after `seek`/`seekToFirst`,
// backward after `seekBefore`/`seekToLast`. The merging iterator keeps that rule, which keeps it
// simple (no direction switches).

import StorageFormat
import Wire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

protocol InternalIterator: AnyObject {
    var isValid: Bool { get }
    /// The current key and value, without copying: valid until the iterator moves.
    var keyBuffer: UnsafeBufferPointer<UInt8> { get }
    var valueBuffer: UnsafeBufferPointer<UInt8> { get }
    /// First entry with key ≥ target.
    func seek(_ target: [UInt8]) throws(StorageError)
    /// Last entry with key < target.
    func seekBefore(_ target: [UInt8]) throws(StorageError)
    func seekToFirst() throws(StorageError)
    func seekToLast() throws(StorageError)
    func next() throws(StorageError)
    func previous() throws(StorageError)
}

extension InternalIterator {
    /// Copies of the current key and value.
    var key: [UInt8] { Array(keyBuffer) }
    var value: ArraySlice<UInt8> { Array(valueBuffer)[...] }
}

final class SegmentIterator: InternalIterator {
    let cursor: SegmentCursor

    init(_ segment: SegmentFile, fillCache: Bool = true) { cursor = SegmentCursor(segment.reader, fillCache: fillCache) }

    var isValid: Bool { cursor.isValid }
    var keyBuffer: UnsafeBufferPointer<UInt8> { cursor.keyBuffer }
    var valueBuffer: UnsafeBufferPointer<UInt8> { cursor.valueBuffer }

    func seek(_ target: [UInt8]) throws(StorageError) {
        do throws(SegmentError) { try cursor.seek(target) } catch { throw StorageError(error) }
    }
    func seekBefore(_ target: [UInt8]) throws(StorageError) {
        do throws(SegmentError) { try cursor.seekBefore(target) } catch { throw StorageError(error) }
    }
    func seekToFirst() throws(StorageError) {
        do throws(SegmentError) { try cursor.seekToFirst() } catch { throw StorageError(error) }
    }
    func seekToLast() throws(StorageError) {
        do throws(SegmentError) { try cursor.seekToLast() } catch { throw StorageError(error) }
    }
    func next() throws(StorageError) {
        do throws(SegmentError) { try cursor.next() } catch { throw StorageError(error) }
    }
    func previous() throws(StorageError) {
        do throws(SegmentError) { try cursor.previous() } catch { throw StorageError(error) }
    }
}

/// The segments of one level ≥ 1 (disjoint, sorted), opened one at a time.
final class LevelIterator: InternalIterator {
    let files: [SegmentFile]
    let fillCache: Bool
    var position = 0
    var current: SegmentIterator?

    init(_ files: [SegmentFile], fillCache: Bool = true) {
        self.files = files
        self.fillCache = fillCache
    }

    var isValid: Bool { current?.isValid ?? false }
    var keyBuffer: UnsafeBufferPointer<UInt8> { current!.keyBuffer }
    var valueBuffer: UnsafeBufferPointer<UInt8> { current!.valueBuffer }

    private func open(_ position: Int) -> SegmentIterator? {
        self.position = position
        guard position >= 0 && position < files.count else { current = nil; return nil }
        current = SegmentIterator(files[position], fillCache: fillCache)
        return current
    }

    func seek(_ target: [UInt8]) throws(StorageError) {
        // First file whose largest key ≥ target.
        var low = 0, high = files.count
        while low < high {
            let mid = (low + high) / 2
            if compareInternalKeys(files[mid].descriptor.largestKey, target) < 0 { low = mid + 1 } else { high = mid }
        }
        try open(low)?.seek(target)
        try skipEmptyForward()
    }

    func seekBefore(_ target: [UInt8]) throws(StorageError) {
        // Last file whose smallest key < target.
        var low = 0, high = files.count
        while low < high {
            let mid = (low + high) / 2
            if compareInternalKeys(files[mid].descriptor.smallestKey, target) < 0 { low = mid + 1 } else { high = mid }
        }
        try open(low - 1)?.seekBefore(target)
        try skipEmptyBackward()
    }

    func seekToFirst() throws(StorageError) {
        try open(0)?.seekToFirst()
        try skipEmptyForward()
    }

    func seekToLast() throws(StorageError) {
        try open(files.count - 1)?.seekToLast()
        try skipEmptyBackward()
    }

    func next() throws(StorageError) {
        try current!.next()
        try skipEmptyForward()
    }

    func previous() throws(StorageError) {
        try current!.previous()
        try skipEmptyBackward()
    }

    private func skipEmptyForward() throws(StorageError) {
        while let iterator = current, !iterator.isValid {
            try open(position + 1)?.seekToFirst()
        }
    }

    private func skipEmptyBackward() throws(StorageError) {
        while let iterator = current, !iterator.isValid {
            try open(position - 1)?.seekToLast()
        }
    }
}

/// Merges children in key order (forward) or reverse key order (backward). Children never hold
/// the same internal key (sequence numbers are unique), so ties do not occur.
final class MergingIterator: InternalIterator {
    let children: [any InternalIterator]
    /// Valid children, as a binary heap: the smallest key on top going forward, the largest
    /// going backward.
    var heap: [Int] = []
    /// Each child's current key, refreshed whenever it moves (the heap compares these).
    var keys: [UnsafeBufferPointer<UInt8>]
    var forward = true

    init(_ children: [any InternalIterator]) {
        self.children = children
        keys = Array(repeating: UnsafeBufferPointer(start: nil, count: 0), count: children.count)
    }

    var isValid: Bool { !heap.isEmpty }
    var keyBuffer: UnsafeBufferPointer<UInt8> { keys[heap[0]] }
    var valueBuffer: UnsafeBufferPointer<UInt8> { children[heap[0]].valueBuffer }

    @inline(__always)
    private func before(_ a: Int, _ b: Int) -> Bool {
        let order = compareInternalKeys(keys[a], keys[b])
        return forward ? order < 0 : order > 0
    }

    private func rebuild() {
        heap.removeAll(keepingCapacity: true)
        for (index, child) in children.enumerated() where child.isValid {
            keys[index] = child.keyBuffer
            heap.append(index)
        }
        var index = heap.count / 2 - 1
        while index >= 0 { siftDown(index); index -= 1 }
    }

    private func siftDown(_ start: Int) {
        var index = start
        let count = heap.count
        while true {
            let left = 2 * index + 1
            if left >= count { return }
            var best = left
            let right = left + 1
            if right < count && before(heap[right], heap[left]) { best = right }
            if !before(heap[best], heap[index]) { return }
            heap.swapAt(best, index)
            index = best
        }
    }

    /// After the top child moved: drop it if exhausted, else refresh its key; restore the heap.
    @inline(__always)
    private func topMoved(_ top: any InternalIterator) {
        if top.isValid {
            keys[heap[0]] = top.keyBuffer
        } else {
            heap[0] = heap[heap.count - 1]
            heap.removeLast()
        }
        if heap.count > 1 { siftDown(0) }
    }

    func seek(_ target: [UInt8]) throws(StorageError) {
        forward = true
        for child in children { try child.seek(target) }
        rebuild()
    }

    func seekBefore(_ target: [UInt8]) throws(StorageError) {
        forward = false
        for child in children { try child.seekBefore(target) }
        rebuild()
    }

    func seekToFirst() throws(StorageError) {
        forward = true
        for child in children { try child.seekToFirst() }
        rebuild()
    }

    func seekToLast() throws(StorageError) {
        forward = false
        for child in children { try child.seekToLast() }
        rebuild()
    }

    func next() throws(StorageError) {
        precondition(forward, "MergingIterator: next() after a backward positioning")
        let top = children[heap[0]]
        try top.next()
        topMoved(top)
    }

    func previous() throws(StorageError) {
        precondition(!forward, "MergingIterator: previous() after a forward positioning")
        let top = children[heap[0]]
        try top.previous()
        topMoved(top)
    }
}

/// Iterates user keys and their values as of a snapshot, within bounds, in one direction.
///
/// Two ways to step: `next()` returns copies; `advance()` moves to the next entry and
/// `withCurrent` lends its key and value without copying (valid until the next move).
public final class StorageIterator {
    let source: MergingIterator
    let sequence: UInt64
    let lower: [UInt8]?
    let upper: [UInt8]?
    /// Seek targets: the first internal key of `lower`, the first internal key of `upper`.
    let lowerTarget: [UInt8]?
    let upperTarget: [UInt8]?
    let reverse: Bool
    var started = false
    var finished = false
    /// Forward: the source is on the current entry (a visible value).
    var onEntry = false
    /// Scratch: the user key whose older versions are being skipped.
    var skipping: [UInt8] = []
    /// Backward: the current entry, copied (versions arrive oldest first).
    var backwardEntry: (key: [UInt8], value: [UInt8])?
    /// Keeps the snapshot (and so the versions it reads) alive while iterating.
    let pin: AnyObject?

    init(source: MergingIterator, sequence: UInt64, lower: [UInt8]?, upper: [UInt8]?, reverse: Bool, pin: AnyObject?) {
        self.source = source
        self.sequence = sequence
        self.lower = lower
        self.upper = upper
        lowerTarget = lower.map { InternalKey.seekKey(userKey: $0, sequence: InternalKey.sequenceMax) }
        upperTarget = upper.map { InternalKey.seekKey(userKey: $0, sequence: InternalKey.sequenceMax) }
        self.reverse = reverse
        self.pin = pin
    }

    /// The next key and value (copies), or nil at the end.
    public func next() throws(StorageError) -> (key: [UInt8], value: [UInt8])? {
        guard try advance() else { return nil }
        return withCurrent { key, value in (Array(key), Array(value)) }
    }

    /// Moves to the next entry; false at the end.
    public func advance() throws(StorageError) -> Bool {
        if finished { return false }
        if !started {
            started = true
            if reverse {
                if let upperTarget { try source.seekBefore(upperTarget) } else { try source.seekToLast() }
            } else {
                if let lowerTarget { try source.seek(lowerTarget) } else { try source.seekToFirst() }
            }
        }
        let found = reverse ? try advanceBackward() : try advanceForward()
        if !found { finished = true }
        return found
    }

    /// Lends the current entry's user key and value (after `advance()` returned true).
    public func withCurrent<R>(_ body: (_ key: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if reverse {
            let entry = backwardEntry!
            return try entry.key.withUnsafeBufferPointer { key in try entry.value.withUnsafeBufferPointer { try body(key, $0) } }
        }
        let key = source.keyBuffer
        return try body(UnsafeBufferPointer(rebasing: key[..<(key.count - 8)]), source.valueBuffer)
    }

    /// Moves the source past every version of the user key of its current entry.
    private func skipVersions() throws(StorageError) {
        let key = source.keyBuffer
        skipping.removeAll(keepingCapacity: true)
        skipping.append(contentsOf: UnsafeBufferPointer(rebasing: key[..<(key.count - 8)]))
        try source.next()
        while source.isValid && sameUserPart(source.keyBuffer, skipping) { try source.next() }
    }

    private func advanceForward() throws(StorageError) -> Bool {
        if onEntry {
            onEntry = false
            try skipVersions()
        }
        while source.isValid {
            let key = source.keyBuffer
            let user = UnsafeBufferPointer(rebasing: key[..<(key.count - 8)])
            if let upper, upper.withUnsafeBufferPointer({ compareBytes(user, $0) }) >= 0 { return false }
            let (entrySequence, kindByte) = trailer(of: key)
            if entrySequence > sequence {
                try source.next()
                continue
            }
            switch kindByte {
            case ValueKind.value.rawValue:
                onEntry = true
                return true
            case ValueKind.deletion.rawValue:
                try skipVersions()
            default:
                throw .corruption(path: "(iterator)", DecodeError(field: "internal key kind", offset: 0, reason: .invalidValue(UInt64(kindByte))))
            }
        }
        return false
    }

    private func advanceBackward() throws(StorageError) -> Bool {
        // Backward, the versions of a user key come oldest first: the visible one is the last
        // with sequence ≤ snapshot before the user key changes.
        while source.isValid {
            let key = source.key
            if let lower, compareBytes(userPart(key), lower) < 0 { return false }
            var visible: (kindByte: UInt8, key: [UInt8], value: [UInt8])?
            while source.isValid && sameUserKey(source.key, key) {
                let (entrySequence, kindByte) = trailer(of: source.keyBuffer)
                if entrySequence <= sequence { visible = (kindByte, source.key, Array(source.valueBuffer)) }
                try source.previous()
            }
            if let visible {
                switch visible.kindByte {
                case ValueKind.value.rawValue:
                    backwardEntry = (Array(userPart(visible.key)), visible.value)
                    return true
                case ValueKind.deletion.rawValue:
                    break
                default:
                    throw .corruption(path: "(iterator)", DecodeError(field: "internal key kind", offset: 0, reason: .invalidValue(UInt64(visible.kindByte))))
                }
            }
        }
        return false
    }
}

/// Sequence and kind byte of an internal key in a buffer.
@inline(__always)
func trailer(of key: UnsafeBufferPointer<UInt8>) -> (sequence: UInt64, kindByte: UInt8) {
    let value = ~UInt64(bigEndian: UnsafeRawPointer(key.baseAddress! + key.count - 8).loadUnaligned(as: UInt64.self))
    return (value >> 8, UInt8(truncatingIfNeeded: value))
}

/// Whether an internal key's user part equals `user`.
@inline(__always)
func sameUserPart(_ key: UnsafeBufferPointer<UInt8>, _ user: [UInt8]) -> Bool {
    key.count - 8 == user.count && (user.isEmpty || user.withUnsafeBufferPointer { memcmp(key.baseAddress!, $0.baseAddress!, user.count) == 0 })
}
