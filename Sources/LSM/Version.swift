// Segment files and versions: the set of segments that make up the database at one moment.
//
// A `Version` is immutable. Readers take the current one (under the engine lock) and use it
// without locks; ARC keeps its segments open. When a flush or compaction installs a new version,
// the segments it drops are marked obsolete, and each file is deleted when its last reader lets
// go of it (`SegmentFile.deinit`).

import FileIO
import StorageFormat
import Synchronization

final class SegmentFile: Sendable {
    let descriptor: SegmentDescriptor
    let reader: SegmentReader
    let path: String
    let fileSystem: any FileSystem
    let cache: BlockCache?
    /// Set when no version holds the file any more: delete it on deinit.
    let obsolete = Atomic<Bool>(false)

    init(descriptor: SegmentDescriptor, reader: SegmentReader, path: String, fileSystem: any FileSystem, cache: BlockCache?) {
        self.descriptor = descriptor
        self.reader = reader
        self.path = path
        self.fileSystem = fileSystem
        self.cache = cache
    }

    var number: UInt64 { descriptor.number }

    deinit {
        reader.close()
        if obsolete.load(ordering: .acquiring) {
            cache?.evict(segment: descriptor.number)
            // A leftover file is harmless: the next open deletes files no manifest names.
            try? fileSystem.remove(path)
        }
    }

    func overlaps(smallest: [UInt8], largest: [UInt8]) -> Bool {
        compareInternalKeys(descriptor.largestKey, smallest) >= 0 && compareInternalKeys(descriptor.smallestKey, largest) <= 0
    }
}

final class Version: Sendable {
    /// Level 0: newest first (overlapping). Levels ≥ 1: ascending by key, disjoint.
    let levels: [[SegmentFile]]

    init(levels: [[SegmentFile]]) { self.levels = levels }

    static func empty(levelCount: Int) -> Version { Version(levels: Array(repeating: [], count: levelCount)) }

    func bytes(level: Int) -> UInt64 { levels[level].reduce(0) { $0 + $1.descriptor.fileBytes } }

    /// Files of `level` overlapping the internal-key range (by user key: the range is widened to
    /// whole user keys by the caller).
    func overlapping(level: Int, smallest: [UInt8], largest: [UInt8]) -> [SegmentFile] {
        levels[level].filter { $0.overlaps(smallest: smallest, largest: largest) }
    }

    /// Applies an edit: removes deleted files, adds new ones (opened by the caller) at the given
    /// levels. A file's level is where a version holds it (a trivial move changes it without
    /// reopening the file), not its descriptor's `level`.
    func applying(deleted: Set<UInt64>, added: [(Int, SegmentFile)]) -> Version {
        var levels = self.levels.map { $0.filter { !deleted.contains($0.number) } }
        for (level, file) in added { levels[level].append(file) }
        levels[0].sort { $0.descriptor.largestSequence > $1.descriptor.largestSequence }
        for level in 1..<levels.count {
            levels[level].sort { compareInternalKeys($0.descriptor.smallestKey, $1.descriptor.smallestKey) < 0 }
        }
        return Version(levels: levels)
    }

    /// Checks the level invariants (levels ≥ 1 disjoint and sorted).
    func checkInvariants() -> String? {
        for level in 1..<levels.count {
            let files = levels[level]
            for index in files.indices.dropFirst() where compareBytes(userPart(files[index - 1].descriptor.largestKey), userPart(files[index].descriptor.smallestKey)) >= 0 {
                return "level \(level): segments \(files[index - 1].number) and \(files[index].number) overlap"
            }
        }
        return nil
    }
}

/// Two internal keys name the same user key.
@inline(__always)
func sameUserKey(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.count == b.count && a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in memcmp(a.baseAddress!, b.baseAddress!, a.count - 8) == 0 }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
