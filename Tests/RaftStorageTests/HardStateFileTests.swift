// The hard-state file: round trip, and every flipped byte or truncation is a typed error.

import FileIOSim
import Testing
@testable import RaftStorage

@Suite struct HardStateFileTests {
    @Test func roundTripsThroughAFile() throws {
        let fileSystem = MemoryFileSystem()
        try fileSystem.createDirectory("/node")
        #expect(try HardStateFile.read("/node/hardstate", fileSystem: fileSystem) == nil)
        let state = DurableVote(term: 7, vote: 3, recovering: true)
        try HardStateFile.write("/node/hardstate", state, fileSystem: fileSystem)
        #expect(try HardStateFile.read("/node/hardstate", fileSystem: fileSystem) == state)
        // Survives a crash: it was synced and renamed with a directory sync.
        #expect(try HardStateFile.read("/node/hardstate", fileSystem: fileSystem.crashClone(seed: 1)) == state)
    }

    @Test func everyFlippedByteAndTruncationIsAnError() {
        let bytes = HardStateFile.encode(DurableVote(term: 0x0102_0304, vote: 9, recovering: false))
        #expect(bytes.count == HardStateFile.bytes)
        for position in bytes.indices {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[position] ^= UInt8(1 << bit)
                #expect(throws: (any Error).self, "byte \(position) bit \(bit)") { try HardStateFile.decode(damaged) }
            }
        }
        for length in 0..<bytes.count {
            #expect(throws: (any Error).self, "length \(length)") { try HardStateFile.decode(Array(bytes[0..<length])) }
        }
    }
}
