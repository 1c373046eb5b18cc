// The memtable's skip list on its own: sequential inserts take the tail fast path, random ones
// search, and a memtable built on a reused arena (`takeArena`) reads exactly like a fresh one.

import Basics
@testable import LSM
import StorageFormat
import Testing

@Suite struct MemTableTests {
    /// Inserts a seeded mix of ascending and random keys, several versions each, and checks every
    /// key's newest version against a dictionary; then does it again on the same arena.
    @Test(arguments: [UInt64(1), 2, 3])
    func insertsReadBackAlsoOnAReusedArena(seed: UInt64) {
        var random = SeededRandom(seed: seed)
        var arena: [UInt8]?
        for round in 0..<3 {
            let table = MemTable(number: UInt64(round + 1), capacity: 1 << 16, arena: arena)
            var model: [[UInt8]: [UInt8]] = [:]
            var sequence: UInt64 = 1
            for step in 0..<2000 {
                // Runs of ascending keys (above every key so far), then random ones.
                let number = step % 400 < 200 ? UInt64(10_000 + step) : random.next() % 3000
                var key = withUnsafeBytes(of: number.bigEndian) { Array($0) }
                key += [UInt8](repeating: UInt8(round), count: Int(random.next() % 3))
                let value = (0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                table.insert(userKey: key, sequence: sequence, kind: .value, value: value)
                model[key] = value
                sequence += 1
            }
            for (key, value) in model {
                let found = table.get(userKey: key, seekKey: InternalKey.seekKey(userKey: key, sequence: sequence))
                #expect(found?.kind == .value && found?.value == value, "seed \(seed) round \(round)")
            }
            #expect(table.get(userKey: [0xFF, 0xFF], seekKey: InternalKey.seekKey(userKey: [0xFF, 0xFF], sequence: sequence)) == nil)
            let capacity = table.takeArena()
            #expect(capacity.isEmpty && capacity.capacity >= 1 << 16)
            arena = capacity
        }
    }
}
