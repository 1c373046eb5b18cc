// Every bound of the record log, named. Defaults suit a server; tests shrink them to force
// rotation and relocation often.

public struct RecordLogOptions: Sendable {
    /// A segment is rotated before it would grow past this (one record larger than the rest of
    /// a segment still gets a segment of its own). At most `segmentBytesLimit`.
    public var segmentBytesMax: Int = 64 << 20
    /// Largest payload a caller may append.
    public var recordPayloadBytesMax: Int = 16 << 20
    /// One group-commit batch (one write, one fdatasync) takes at most this many bytes of
    /// queued appends (a single larger append is still written whole).
    public var batchBytesMax: Int = 8 << 20
    /// Appenders block (backpressure) while this many bytes are queued and not yet written.
    public var queueBytesMax: Int = 64 << 20
    /// When there are more segments than this, the live records of the segment with the least
    /// live data are rewritten forward (only if at most half a segment is live, so relocation
    /// never rewrites more than it frees) and the segment is deleted: disk use stays under
    /// max(segmentCountMax segments, about twice the live data) even if a stream never truncates.
    public var segmentCountMax: Int = 16
    /// Appends with `compress: true` are stored LZ4-compressed only if at least this long and
    /// only if compression saves space.
    public var compressionBytesMin: Int = 128
    /// Fixes the log id of a new log (tests want byte-identical files); nil picks a random one.
    public var logID: UInt64?
    /// Fixes the creation time written into segment headers (golden files); nil reads the clock.
    public var creationTimeOverride: UInt64?

    /// The format's own limits: a segment offset is a u32, and decoders refuse larger payloads.
    public static let segmentBytesLimit = Int(UInt32.max)
    public static let recordPayloadBytesMaxLimit = 256 << 20

    /// Remove dead segments' files on a thread of their own instead of on the appender that
    /// happened to lead (unlinking a large segment frees its page cache, a few milliseconds to
    /// tens of them). Off by default, so that tests see file operations in a fixed order.
    public var removesFilesInBackground = false

    /// How a new segment's file comes to be.
    public enum SegmentPreparation: Sendable, Equatable {
        /// Created at rotation, empty: every batch's write grows the file, so every fdatasync
        /// also commits a size change (a file-system journal commit on ext4).
        case none
        /// Prepared at rotation, zero-filled to `segmentBytesMax` and synced before the header is
        /// written: appends overwrite allocated blocks, and their fdatasyncs commit no metadata.
        /// The rotation pays for the zero-fill; for tests (a fixed order of file operations).
        case inline
        /// Like `inline`, but the next segment's file is prepared on a thread of its own as soon
        /// as the previous one is taken, so that a rotation normally finds it ready.
        case background
    }

    /// See `SegmentPreparation`. `.none` by default, so that tests and the simulator see file
    /// operations in a fixed order; servers want `.background` (Benchmarks/RESULTS.md, issue 2).
    public var segmentPreparation: SegmentPreparation = .none

    /// Zero bytes written per `pwrite` while preparing a segment.
    public static let preparationChunkBytes = 1 << 20

    public init() {}

    func validate() throws(LogError) {
        guard segmentBytesMax >= 4096, segmentBytesMax <= Self.segmentBytesLimit else {
            throw .invalidArgument("segmentBytesMax must be in 4096...\(Self.segmentBytesLimit)")
        }
        guard recordPayloadBytesMax > 0, recordPayloadBytesMax <= Self.recordPayloadBytesMaxLimit,
              recordPayloadBytesMax <= segmentBytesMax else {
            throw .invalidArgument("recordPayloadBytesMax must be positive and fit in a segment")
        }
        guard batchBytesMax > 0, queueBytesMax >= batchBytesMax, segmentCountMax >= 2 else {
            throw .invalidArgument("batchBytesMax > 0, queueBytesMax ≥ batchBytesMax and segmentCountMax ≥ 2 are required")
        }
    }
}
