// Which records of each stream are dead, by LSN.
//
// A stream's state is a prefix bound (records below it are dead) and a sorted list of dead
// ranges left by suffix truncations ([bound, marker LSN)). The state only grows: bounds rise,
// ranges are added, and ranges under the prefix bound are dropped. Because it only grows,
// merging two states (max of bounds, union of ranges) is the same as replaying their markers,
// which is what makes recovery independent of which old segments still exist.

import Wire

public struct StreamTruncation: Equatable, Sendable {
    public var prefixBound: UInt64 = 0
    /// Sorted, disjoint, non-adjacent half-open ranges, all above `prefixBound`.
    public var deadRanges: [Range<UInt64>] = []

    public init(prefixBound: UInt64 = 0, deadRanges: [Range<UInt64>] = []) {
        self.prefixBound = prefixBound
        self.deadRanges = deadRanges
    }

    public func isLive(_ lsn: UInt64) -> Bool {
        if lsn < prefixBound { return false }
        // Binary search: few ranges in practice, but stay O(log n) for hostile inputs.
        var low = 0, high = deadRanges.count
        while low < high {
            let mid = (low + high) / 2
            if deadRanges[mid].upperBound <= lsn { low = mid + 1 } else { high = mid }
        }
        return !(low < deadRanges.count && deadRanges[low].contains(lsn))
    }

    public mutating func raisePrefix(to bound: UInt64) {
        guard bound > prefixBound else { return }
        prefixBound = bound
        deadRanges = deadRanges.compactMap { range in
            if range.upperBound <= bound { return nil }
            return max(range.lowerBound, bound)..<range.upperBound
        }
    }

    public mutating func addDeadRange(_ range: Range<UInt64>) {
        let clipped = max(range.lowerBound, prefixBound)..<max(range.upperBound, prefixBound)
        guard !clipped.isEmpty else { return }
        var merged: [Range<UInt64>] = []
        var current = clipped
        var inserted = false
        for existing in deadRanges {
            if existing.upperBound < current.lowerBound {
                merged.append(existing)
            } else if current.upperBound < existing.lowerBound {
                if !inserted { merged.append(current); inserted = true }
                merged.append(existing)
            } else {
                current = min(existing.lowerBound, current.lowerBound)..<max(existing.upperBound, current.upperBound)
            }
        }
        if !inserted { merged.append(current) }
        deadRanges = merged
    }

    public mutating func merge(_ other: StreamTruncation) {
        raisePrefix(to: other.prefixBound)
        for range in other.deadRanges { addDeadRange(range) }
    }

    public var isEmpty: Bool { prefixBound == 0 && deadRanges.isEmpty }
}

/// The truncation state of every stream: the payload of a checkpoint record.
public struct TruncationState: Equatable, Sendable {
    public var streams: [UInt64: StreamTruncation] = [:]

    public init(streams: [UInt64: StreamTruncation] = [:]) { self.streams = streams }

    public func isLive(stream: UInt64, lsn: UInt64) -> Bool {
        streams[stream]?.isLive(lsn) ?? true
    }

    public mutating func merge(_ other: TruncationState) {
        for (stream, state) in other.streams { streams[stream, default: StreamTruncation()].merge(state) }
    }

    /// Checkpoint payload: u32 stream count, then per stream in ascending stream order:
    /// u64 stream, u64 prefix bound, u32 range count, and per range u64 lower, u64 upper.
    public func encode() -> [UInt8] {
        var writer = ByteWriter(capacity: 4 + streams.count * 20)
        let sorted = streams.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        writer.write(UInt32(sorted.count))
        for (stream, state) in sorted {
            writer.write(stream)
            writer.write(state.prefixBound)
            writer.write(UInt32(state.deadRanges.count))
            for range in state.deadRanges {
                writer.write(range.lowerBound)
                writer.write(range.upperBound)
            }
        }
        return writer.finish()
    }

    public static func decode(_ bytes: [UInt8], baseOffset: UInt64 = 0) throws(DecodeError) -> TruncationState {
        var reader = ByteReader(bytes, baseOffset: baseOffset)
        let count = try reader.readUInt32("checkpoint.stream count")
        // Each stream takes at least 20 bytes: refuse counts the input cannot hold before
        // allocating anything for them.
        guard UInt64(count) * 20 <= UInt64(reader.remaining) else {
            throw reader.error("checkpoint.stream count", .tooLarge(value: UInt64(count), limit: UInt64(reader.remaining / 20)))
        }
        var state = TruncationState()
        var previous: UInt64?
        for _ in 0..<count {
            let streamAt = reader.absoluteOffset
            let stream = try reader.readUInt64("checkpoint.stream")
            if let previous, stream <= previous {
                throw DecodeError(field: "checkpoint.stream", offset: streamAt, reason: .invalid("streams not in ascending order"))
            }
            previous = stream
            var entry = StreamTruncation(prefixBound: try reader.readUInt64("checkpoint.prefix bound"))
            let rangeCount = try reader.readUInt32("checkpoint.range count")
            guard UInt64(rangeCount) * 16 <= UInt64(reader.remaining) else {
                throw reader.error("checkpoint.range count", .tooLarge(value: UInt64(rangeCount), limit: UInt64(reader.remaining / 16)))
            }
            var lastUpper = entry.prefixBound
            for _ in 0..<rangeCount {
                let rangeAt = reader.absoluteOffset
                let lower = try reader.readUInt64("checkpoint.range lower")
                let upper = try reader.readUInt64("checkpoint.range upper")
                guard lower < upper, lower >= lastUpper else {
                    throw DecodeError(field: "checkpoint.range", offset: rangeAt,
                                      reason: .invalid("range \(lower)..<\(upper) empty, unsorted or below the prefix bound"))
                }
                lastUpper = upper
                entry.deadRanges.append(lower..<upper)
            }
            state.streams[stream] = entry
        }
        guard reader.isAtEnd else { throw reader.error("checkpoint", .invalid("\(reader.remaining) trailing bytes")) }
        return state
    }
}
