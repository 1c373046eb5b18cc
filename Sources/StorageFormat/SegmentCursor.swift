// A position in a segment that moves entry by entry in either direction, a block at a time
// (through the segment's block cache). Compaction and the engine's iterators are built on it.

public struct SegmentCursor {
    public let reader: SegmentReader
    var blockIndex = 0
    var block: DecodedBlock?
    var slot = 0

    public init(_ reader: SegmentReader) {
        self.reader = reader
    }

    public var isValid: Bool { block != nil }
    public var key: [UInt8] { block!.key(slot) }
    /// The current key and value without copying, valid until the cursor moves.
    public var keyBuffer: UnsafeBufferPointer<UInt8> { block!.keyBuffer(slot) }
    public var valueBuffer: UnsafeBufferPointer<UInt8> { block!.valueBuffer(slot) }
    public var value: ArraySlice<UInt8> { block!.value(slot) }
    /// The current block and the entry's index in it (to read the key without copying).
    public var position: (block: DecodedBlock, slot: Int) { (block!, slot) }

    mutating func load(_ position: Int) throws(SegmentError) {
        blockIndex = position
        block = try reader.decodedBlock(position)
    }

    /// Moves to the first entry with key ≥ `target` (invalid when there is none).
    public mutating func seek(_ target: [UInt8]) throws(SegmentError) {
        guard let position = reader.firstBlock(atLeast: target) else {
            block = nil
            return
        }
        try load(position)
        slot = block!.lowerBound(target)
        if slot == block!.count { try next(fromEnd: true) }
    }

    /// Moves to the last entry with key < `target` (invalid when there is none).
    public mutating func seekBefore(_ target: [UInt8]) throws(SegmentError) {
        guard let position = reader.firstBlock(atLeast: target) else {
            try seekToLast()
            return
        }
        try load(position)
        slot = block!.lowerBound(target)
        try previous()
    }

    public mutating func seekToFirst() throws(SegmentError) {
        guard reader.blockCount > 0 else { block = nil; return }
        try load(0)
        slot = 0
    }

    public mutating func seekToLast() throws(SegmentError) {
        guard reader.blockCount > 0 else { block = nil; return }
        try load(reader.blockCount - 1)
        slot = block!.count - 1
    }

    public mutating func next() throws(SegmentError) {
        slot += 1
        if slot == block!.count { try next(fromEnd: true) }
    }

    mutating func next(fromEnd: Bool) throws(SegmentError) {
        if blockIndex + 1 < reader.blockCount {
            try load(blockIndex + 1)
            slot = 0
        } else {
            block = nil
        }
    }

    public mutating func previous() throws(SegmentError) {
        if slot > 0 {
            slot -= 1
        } else if blockIndex > 0 {
            try load(blockIndex - 1)
            slot = block!.count - 1
        } else {
            block = nil
        }
    }
}
