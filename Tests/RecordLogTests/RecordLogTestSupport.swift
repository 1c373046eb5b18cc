// Helpers shared by the record-log tests: small options that force rotation and relocation,
// and a snapshot of every stream's live records.

import Basics
import FileIO
import FileIOSim
import RecordLog

func smallOptions(segmentBytes: Int = 4096, segmentCount: Int = 3, batchBytes: Int = 2048) -> RecordLogOptions {
    var options = RecordLogOptions()
    options.segmentBytesMax = segmentBytes
    options.segmentCountMax = segmentCount
    options.recordPayloadBytesMax = 2048
    options.batchBytesMax = batchBytes
    options.queueBytesMax = batchBytes * 4
    options.compressionBytesMin = 32
    options.logID = 0x5EED
    return options
}

/// Every stream's live records, as the log returns them.
func snapshot(_ log: RecordLog) throws -> [UInt64: [StoredRecord]] {
    var result: [UInt64: [StoredRecord]] = [:]
    for stream in log.streams() { result[stream] = try log.read(stream: stream) }
    return result
}

/// A payload whose bytes say which stream and step wrote it, compressible half of the time.
func payload(_ random: inout SeededRandom, stream: UInt64, step: Int) -> [UInt8] {
    let length = Int(random.next() % 300)
    if random.chance(0.5) {
        return (0..<length).map { UInt8(truncatingIfNeeded: $0 / 16 &+ Int(stream) &+ step) }
    }
    return random.bytes(length)
}
