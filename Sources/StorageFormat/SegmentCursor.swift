// A position in a segment that moves entry by entry in either direction, a block at a time
// (through the segment's block cache). Compaction and the engine's iterators are built on it.

public final class SegmentCursor {
    public let reader: SegmentReader
    var blockIndex = 0
    var block: DecodedBlock?
    var slot = 0

    let fillCache: Bool
    /// Set once the cursor moves from block to block (a scan, not a point lookup).
    var readahead: Readahead?

    /// `fillCache: false` keeps the blocks this cursor reads out of the block cache (compaction).
    public init(_ reader: SegmentReader, fillCache: Bool = true) {
        self.reader = reader
        self.fillCache = fillCache
    }

    // The current block's layout, cached so that stepping and reading touch no reference
    // counts (`block` keeps it alive).
    var spans: UnsafePointer<DecodedBlock.Span>?
    var keysBase: UnsafePointer<UInt8>?
    var blockBase: UnsafePointer<UInt8>?
    var blockCount = 0

    public var isValid: Bool { spans != nil }
    public var key: [UInt8] { Array(keyBuffer) }
    /// The current key and value without copying, valid until the cursor moves.
    public var keyBuffer: UnsafeBufferPointer<UInt8> {
        let span = spans![slot]
        return UnsafeBufferPointer(start: keysBase! + Int(span.keyStart), count: Int(span.keyEnd - span.keyStart))
    }
    public var valueBuffer: UnsafeBufferPointer<UInt8> {
        let span = spans![slot]
        return UnsafeBufferPointer(start: blockBase! + Int(span.valueStart), count: Int(span.valueLength))
    }
    public var value: ArraySlice<UInt8> { Array(valueBuffer)[...] }

    func load(_ position: Int, sequential: Bool = false) throws(SegmentError) {
        if sequential && readahead == nil { readahead = Readahead() }
        blockIndex = position
        let loaded = try reader.decodedBlock(position, fillCache: fillCache, readahead: sequential ? readahead : nil)
        block = loaded
        spans = loaded.spans
        keysBase = loaded.keysBase
        blockBase = loaded.blockBase
        blockCount = loaded.count
    }

    func invalidate() {
        block = nil
        spans = nil
        blockCount = 0
    }

    /// Moves to the first entry with key ≥ `target` (invalid when there is none).
    public func seek(_ target: [UInt8]) throws(SegmentError) {
        guard let position = reader.firstBlock(atLeast: target) else {
            invalidate()
            return
        }
        try load(position)
        slot = block!.lowerBound(target)
        if slot == blockCount { try next(fromEnd: true) }
    }

    /// Moves to the last entry with key < `target` (invalid when there is none).
    public func seekBefore(_ target: [UInt8]) throws(SegmentError) {
        guard let position = reader.firstBlock(atLeast: target) else {
            try seekToLast()
            return
        }
        try load(position)
        slot = block!.lowerBound(target)
        try previous()
    }

    public func seekToFirst() throws(SegmentError) {
        guard reader.blockCount > 0 else { invalidate(); return }
        try load(0)
        slot = 0
    }

    public func seekToLast() throws(SegmentError) {
        guard reader.blockCount > 0 else { invalidate(); return }
        try load(reader.blockCount - 1)
        slot = blockCount - 1
    }

    public func next() throws(SegmentError) {
        slot += 1
        if slot == blockCount { try next(fromEnd: true) }
    }

    func next(fromEnd: Bool) throws(SegmentError) {
        if blockIndex + 1 < reader.blockCount {
            try load(blockIndex + 1, sequential: true)
            slot = 0
        } else {
            invalidate()
        }
    }

    public func previous() throws(SegmentError) {
        if slot > 0 {
            slot -= 1
        } else if blockIndex > 0 {
            try load(blockIndex - 1)
            slot = blockCount - 1
        } else {
            invalidate()
        }
    }
}
