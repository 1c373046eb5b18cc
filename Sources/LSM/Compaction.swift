// Leveled compaction.
//
// Level 0 holds flushed segments, which overlap; levels ≥ 1 hold disjoint segments, sorted, and
// level n may hold `levelBaseBytes × levelSizeRatio^(n−1)` bytes. A compaction is due when level
// 0 has `level0CompactionTrigger` segments (then every level-0 segment is merged with the
// overlapping level-1 segments — taking all of level 0 keeps its age order trivially true), or a
// deeper level is over its target (then one of its segments, round robin through the key space,
// is merged with the overlapping segments of the next level). A segment that overlaps nothing in
// the next level moves down by a manifest edit alone (a trivial move), without being rewritten.
//
// Merging keeps, per user key, the newest version in each snapshot stripe, and drops a deletion
// when nothing older can exist below the output level and no snapshot needs it. All versions
// of a user key go to the same output segment, so a level ≥ 1 holds each user key in one place.

import FileIO
import StorageFormat

struct CompactionJob {
    var level: Int
    var outputLevel: Int
    /// Inputs from `level` and from `outputLevel`.
    var inputs: [SegmentFile]
    var outputInputs: [SegmentFile]
    /// No segment below the output level overlaps the inputs: deletions can be dropped.
    var isBottommost: Bool
    var snapshots: [UInt64]
    var largestUserKey: [UInt8]
}

/// The user-key part of an internal key.
@inline(__always)
func userPart(_ key: [UInt8]) -> ArraySlice<UInt8> { key[..<(key.count - 8)] }

extension Version {
    /// Files of `level` whose user-key range meets [smallest, largest] (internal keys; compared
    /// by user key).
    func overlappingUserRange(level: Int, smallest: [UInt8], largest: [UInt8]) -> [SegmentFile] {
        let low = userPart(smallest), high = userPart(largest)
        return levels[level].filter {
            compareBytes(userPart($0.descriptor.largestKey), low) >= 0 && compareBytes(userPart($0.descriptor.smallestKey), high) <= 0
        }
    }
}

extension StorageEngine {
    func levelTarget(_ level: Int) -> Double {
        var target = Double(options.levelBaseBytes)
        if level > 1 { for _ in 2...level { target *= Double(options.levelSizeRatio) } }
        return target
    }

    /// Whether a compaction is due (under `lock`).
    func compactionDue() -> Bool {
        if version.levels[0].count >= options.level0CompactionTrigger { return true }
        for level in 1..<(options.levelCount - 1) where Double(version.bytes(level: level)) >= levelTarget(level) { return true }
        return false
    }

    /// Picks the most urgent compaction (under `lock`).
    func pickCompaction() -> CompactionJob? {
        let levels = version.levels
        var chosen: (level: Int, score: Double)?
        let level0Score = Double(levels[0].count) / Double(options.level0CompactionTrigger)
        if level0Score >= 1 { chosen = (0, level0Score) }
        for level in 1..<(options.levelCount - 1) {
            let score = Double(version.bytes(level: level)) / levelTarget(level)
            if score >= 1 && score > (chosen?.score ?? 0) { chosen = (level, score) }
        }
        guard let (level, _) = chosen else { return nil }
        var inputs: [SegmentFile]
        if level == 0 {
            inputs = levels[0]
        } else {
            let files = levels[level]
            let pointer = compactPointers[level]
            let next = pointer.flatMap { pointer in files.first { compareBytes(userPart($0.descriptor.smallestKey), pointer) > 0 } } ?? files[0]
            inputs = [next]
        }
        return job(level: level, inputs: inputs)
    }

    func job(level: Int, inputs: [SegmentFile]) -> CompactionJob {
        var smallest = inputs[0].descriptor.smallestKey, largest = inputs[0].descriptor.largestKey
        for file in inputs.dropFirst() {
            if compareBytes(userPart(file.descriptor.smallestKey), userPart(smallest)) < 0 { smallest = file.descriptor.smallestKey }
            if compareBytes(userPart(file.descriptor.largestKey), userPart(largest)) > 0 { largest = file.descriptor.largestKey }
        }
        let outputLevel = level + 1
        let outputInputs = version.overlappingUserRange(level: outputLevel, smallest: smallest, largest: largest)
        var bottommost = true
        for deeper in (outputLevel + 1)..<max(outputLevel + 1, options.levelCount)
        where !version.overlappingUserRange(level: deeper, smallest: smallest, largest: largest).isEmpty {
            bottommost = false
        }
        return CompactionJob(level: level, outputLevel: outputLevel, inputs: inputs, outputInputs: outputInputs,
                             isBottommost: bottommost, snapshots: snapshots.keys.sorted(), largestUserKey: largest)
    }

    /// Whether no two segments share a user key.
    static func disjoint(_ files: [SegmentFile]) -> Bool {
        let sorted = files.sorted { compareInternalKeys($0.descriptor.smallestKey, $1.descriptor.smallestKey) < 0 }
        for index in sorted.indices.dropFirst()
        where compareBytes(userPart(sorted[index - 1].descriptor.largestKey), userPart(sorted[index].descriptor.smallestKey)) >= 0 {
            return false
        }
        return true
    }

    /// Runs one due compaction, if any. Returns whether it did.
    @discardableResult
    func compactOnce() throws(StorageError) -> Bool {
        let job: CompactionJob? = lock.withLock {
            guard !compactionRunning, !isClosed, let job = pickCompaction() else { return nil }
            compactionRunning = true
            return job
        }
        guard let job else { return false }
        try runClaimed(job)
        return true
    }

    /// Runs a claimed job (`compactionRunning` set) and releases the claim.
    func runClaimed(_ job: CompactionJob) throws(StorageError) {
        do throws(StorageError) {
            try run(job)
            lock.withLock {
                compactionRunning = false
                lock.broadcast()
            }
        } catch {
            lock.withLock {
                compactionRunning = false
                if backgroundError == nil { backgroundError = error }
                lock.broadcast()
            }
            throw error
        }
    }

    /// Merges a job's inputs into new segments of the output level and installs them.
    func run(_ job: CompactionJob) throws(StorageError) {
        var edit = VersionEdit()
        if job.outputInputs.isEmpty && Self.disjoint(job.inputs) {
            // Trivial move: nothing in the output level overlaps, and the inputs do not overlap
            // one another (always so for one segment; for level 0, e.g. after sequential
            // inserts), so the segments move down by a manifest edit without being rewritten.
            edit.deletedSegments = job.inputs.map { (job.level, $0.number) }
            edit.addedSegments = job.inputs.map { file in
                var moved = file.descriptor
                moved.level = job.outputLevel
                return moved
            }
            try manifestLock.withLock { () throws(StorageError) in try manifest.record(edit) }
            lock.withLock {
                version = version.applying(deleted: Set(job.inputs.map(\.number)), added: job.inputs.map { (job.outputLevel, $0) })
                compactPointers[job.level] = Array(userPart(job.largestUserKey))
                counters.trivialMoves += UInt64(job.inputs.count)
            }
            return
        }
        // Compaction reads each block once: keep them out of the block cache.
        var children: [any InternalIterator] = job.inputs.map { SegmentIterator($0, fillCache: false) }
        if !job.outputInputs.isEmpty { children.append(LevelIterator(job.outputInputs, fillCache: false)) }
        let merged = MergingIterator(children)
        try merged.seekToFirst()
        var outputs: [SegmentDescriptor] = []
        var builder: SegmentBuilder?
        var previous: [UInt8] = []
        var previousStripe = -1
        var bytesWritten: UInt64 = 0
        var bytesRead: UInt64 = 0
        for file in job.inputs + job.outputInputs { bytesRead += file.descriptor.fileBytes }
        do throws(StorageError) {
            while merged.isValid {
                let key = merged.keyBuffer
                let (sequence, kindByte) = trailer(of: key)
                let stripe = Self.stripe(of: sequence, snapshots: job.snapshots)
                let sameKey = previousStripe >= 0 && sameUserPart(key, previous)
                if sameKey && stripe == previousStripe {
                    try merged.next()
                    continue  // shadowed by a newer version no reader can tell apart
                }
                if !sameKey, let current = builder, current.estimatedBytes >= UInt64(options.segmentBytesTarget) {
                    let (descriptor, bytes) = try current.finish()
                    outputs.append(descriptor)
                    bytesWritten += bytes
                    builder = nil
                }
                if !sameKey {
                    previous.removeAll(keepingCapacity: true)
                    previous.append(contentsOf: UnsafeBufferPointer(rebasing: key[..<(key.count - 8)]))
                }
                previousStripe = stripe
                if kindByte == ValueKind.deletion.rawValue && job.isBottommost && stripe == 0 {
                    try merged.next()
                    continue  // nothing older below, and no snapshot can see what it deleted
                }
                if builder == nil {
                    let number = lock.withLock { () -> UInt64 in
                        defer { nextFileNumber += 1 }
                        return nextFileNumber
                    }
                    builder = try SegmentBuilder(engine: self, number: number, level: job.outputLevel)
                }
                try builder!.add(key, merged.valueBuffer)
                try merged.next()
            }
            if let current = builder {
                let (descriptor, bytes) = try current.finish()
                outputs.append(descriptor)
                bytesWritten += bytes
                builder = nil
            }
        } catch {
            builder?.abandon()
            for output in outputs { try? fileSystem.remove(joinPath(directory, Self.segmentFileName(output.number))) }
            throw error
        }
        var opened: [(Int, SegmentFile)] = []
        for output in outputs {
            opened.append((job.outputLevel, try Self.openSegment(output, path: joinPath(directory, Self.segmentFileName(output.number)),
                                                                 fileSystem: fileSystem, cache: cache)))
        }
        edit.deletedSegments = job.inputs.map { (job.level, $0.number) } + job.outputInputs.map { (job.outputLevel, $0.number) }
        edit.addedSegments = outputs
        edit.nextFileNumber = lock.withLock { nextFileNumber }
        try manifestLock.withLock { () throws(StorageError) in try manifest.record(edit) }
        let removed = job.inputs + job.outputInputs
        lock.withLock {
            version = version.applying(deleted: Set(removed.map(\.number)), added: opened)
            if job.level > 0 { compactPointers[job.level] = Array(userPart(job.largestUserKey)) }
            counters.compactions += 1
            counters.compactionBytesWritten += bytesWritten
            counters.compactionBytesRead += bytesRead
            lock.broadcast()
        }
        for file in removed { file.obsolete.store(true, ordering: .releasing) }
    }

    /// Flushes, then merges every level down into the deepest non-empty one (at least level 1).
    public func compact() throws(StorageError) {
        try flush()
        // Take the compaction claim so the background thread stays out of the way.
        try lock.withLock { () throws(StorageError) in
            while compactionRunning {
                if isClosed { throw .closed }
                lock.wait()
            }
            if isClosed { throw .closed }
            compactionRunning = true
        }
        var released = false
        defer {
            if !released {
                lock.withLock {
                    compactionRunning = false
                    lock.broadcast()
                }
            }
        }
        let deepest = lock.withLock { () -> Int in
            var deepest = 1
            for level in 1..<options.levelCount where !version.levels[level].isEmpty { deepest = level }
            return deepest
        }
        for level in 0..<deepest {
            let job: CompactionJob? = lock.withLock {
                let files = version.levels[level]
                return files.isEmpty ? nil : self.job(level: level, inputs: files)
            }
            guard let job else { continue }
            do throws(StorageError) { try run(job) } catch {
                // As for a background failure: stop accepting writes until reopened.
                lock.withLock { if backgroundError == nil { backgroundError = error } }
                throw error
            }
        }
        released = true
        lock.withLock {
            compactionRunning = false
            lock.broadcast()
        }
    }
}
