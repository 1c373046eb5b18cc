// Tuning and behaviour of a storage engine. Defaults suit the server; tests shrink everything to
// exercise flushes, compactions and block boundaries with a few hundred keys.

import StorageFormat

public struct StorageOptions: Sendable {
    /// How writes are made durable before they are flushed to segments.
    public enum WALMode: Sendable, Equatable {
        /// The engine keeps its own write-ahead log: a record log in `<directory>/wal`.
        case recordLog
        /// No write-ahead log: the caller (Raft) keeps one and passes per-stream applied
        /// indexes with its writes (`WriteBatch.setAppliedIndex`). Unflushed writes are lost on a
        /// crash; `StorageEngine.durableAppliedIndexes` says where the caller must replay from.
        case external
    }

    /// Where flushes and compactions run.
    public enum BackgroundMode: Sendable, Equatable {
        /// On background threads (one for flushes, one for compactions).
        case threads
        /// Inline, on the writing thread, as soon as they are due: deterministic (tests).
        case inline
    }

    public var walMode: WALMode = .recordLog
    public var background: BackgroundMode = .threads
    /// A memtable is switched out (and queued for flush) once it holds this many bytes.
    public var memtableBytes = 64 << 20
    /// Writers stop while this many full memtables wait for flush.
    public var immutableMemtablesMax = 2
    /// Target uncompressed size of a data block.
    public var blockBytes = 4096
    public var restartInterval = 16
    public var bloomBitsPerKey = 10
    public var compression: BlockCompression = .lz4
    /// Compaction output is cut into segments of about this size.
    public var segmentBytesTarget = 64 << 20
    /// Target size of level 1; each deeper level is `levelSizeRatio` times larger.
    public var levelBaseBytes = 256 << 20
    public var levelSizeRatio = 10
    public var levelCount = 7
    /// Level-0 segment counts that start a compaction, slow writers (1 ms per write batch) and
    /// stop writers until compaction catches up.
    public var level0CompactionTrigger = 4
    public var level0SlowdownTrigger = 20
    public var level0StopTrigger = 36
    /// Decoded data blocks kept in memory, shared by every segment.
    public var blockCacheBytes = 32 << 20
    /// Write-ahead-log segment size (a segment's space returns once nothing in it is needed).
    public var walSegmentBytes = 64 << 20
    /// `close()` flushes the memtable first, so that reopening replays nothing and the WAL's
    /// space is released.
    public var flushOnClose = true
    /// A manifest is rewritten (fresh snapshot, atomic switch of CURRENT) after this many edits.
    public var manifestEditsMax = 1000

    public init() {}

    /// How the engine's segments are written.
    var segmentWriterOptions: SegmentWriterOptions {
        var writerOptions = SegmentWriterOptions()
        writerOptions.blockBytes = blockBytes
        writerOptions.restartInterval = restartInterval
        writerOptions.bloomBitsPerKey = bloomBitsPerKey
        writerOptions.compression = compression
        writerOptions.keyOrder = .internalKey
        return writerOptions
    }

    func validate() throws(StorageError) {
        guard memtableBytes >= 1024, immutableMemtablesMax >= 1, blockBytes >= 64, restartInterval >= 1,
              bloomBitsPerKey >= 1, segmentBytesTarget >= 1024, levelBaseBytes >= 1024, levelSizeRatio >= 2,
              (2...ManifestFormat.levelCountMax).contains(levelCount), level0CompactionTrigger >= 1,
              level0SlowdownTrigger >= level0CompactionTrigger, level0StopTrigger >= level0SlowdownTrigger,
              blockCacheBytes >= 0, walSegmentBytes >= 4096, manifestEditsMax >= 1 else {
            throw .invalidArgument("storage options out of range")
        }
    }
}

public struct StorageStatistics: Sendable, Equatable {
    public struct Level: Sendable, Equatable {
        public var segments = 0
        public var bytes: UInt64 = 0
    }

    public var levels: [Level] = []
    public var memtableBytes = 0
    public var immutableMemtables = 0
    /// Bytes of keys and values written by callers.
    public var userBytesWritten: UInt64 = 0
    /// Bytes written to the write-ahead log.
    public var walBytesWritten: UInt64 = 0
    public var flushBytesWritten: UInt64 = 0
    public var compactionBytesWritten: UInt64 = 0
    public var compactionBytesRead: UInt64 = 0
    public var flushes: UInt64 = 0
    public var compactions: UInt64 = 0
    public var trivialMoves: UInt64 = 0
    public var writeSlowdowns: UInt64 = 0
    public var writeStops: UInt64 = 0
    public var blockCache = BlockCacheStatistics()

    /// (WAL + flush + compaction bytes written) / user bytes written.
    public var writeAmplification: Double {
        userBytesWritten == 0 ? 0 : Double(walBytesWritten + flushBytesWritten + compactionBytesWritten) / Double(userBytesWritten)
    }

    public var totalSegmentBytes: UInt64 { levels.reduce(0) { $0 + $1.bytes } }
}
