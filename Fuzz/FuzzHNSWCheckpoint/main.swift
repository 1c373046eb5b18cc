// Fuzz target: the HNSW checkpoint loader (Format/hnsw.md), structure-aware.
//
// Input byte 0 picks a mode; the rest is a checkpoint file. Bit 0 set: before loading, every
// section checksum the table names (where the section lies inside the input) and the header
// checksum are recomputed over the mutated bytes, so that mutations get past the checksums and
// reach the header, table and graph checks behind them. A load must either fail with a typed
// error or give an index that searches, inserts and saves without trapping.

import Checksum
import FileIO
import FileIOSim
import FuzzSupport
import VectorIndex

func repairChecksums(_ bytes: inout [UInt8]) {
    let header = CheckpointHeader.bytes
    guard bytes.count >= header else { return }
    for position in 0..<CheckpointHeader.sectionCount {
        let entry = CheckpointHeader.tableOffset + position * 32
        let offset = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: entry + 8, as: UInt64.self) }
        let length = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: entry + 16, as: UInt64.self) }
        guard offset <= UInt64(bytes.count), length <= UInt64(bytes.count) - offset else { continue }
        let checksum = XXH3.hash(bytes, range: Int(offset)..<Int(offset + length))
        withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[entry + 24 + i] = $0[i] } }
    }
    let checksum = XXH3.hash(bytes, range: 0..<CheckpointHeader.checksumOffset)
    withUnsafeBytes(of: checksum.littleEndian) { for i in 0..<8 { bytes[CheckpointHeader.checksumOffset + i] = $0[i] } }
}

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    if mode & 1 != 0 { repairChecksums(&bytes) }
    let fileSystem = MemoryFileSystem()
    try! fileSystem.createDirectory("/f")
    let handle = try! fileSystem.open("/f/c", options: [.read, .write, .create])
    try! handle.write(at: 0, bytes)
    handle.close()
    guard let (index, _) = try? HNSWIndex.load(from: "/f/c", fileSystem: fileSystem) else { return }
    // A loaded index is fully usable.
    let query = (0..<index.dimension).map { Float(($0 % 7) + 1) }
    if let hits = try? index.search(query, k: 5) {
        precondition(hits.count <= 5 && hits.count <= index.count, "search returned too many hits")
    }
    _ = try? index.exactSearch(query, k: 3)
    _ = try? index.insert(id: UInt64.max, vector: query)
    _ = try? index.search(query, k: 2)
    try! index.save(to: "/f/d", appliedIndex: 1, fileSystem: fileSystem)
    precondition((try? HNSWIndex.load(from: "/f/d", fileSystem: fileSystem)) != nil, "a re-saved index does not load")
}

runFuzzer(fuzzOne)
