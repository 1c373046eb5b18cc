// Fuzz target: the catalog's decoders of untrusted bytes (Format/catalog.md) — commands (Raft
// entry data of group 1) and snapshots (kept in the storage engine and sent between nodes).
//
// Input byte 0 picks what the rest is: 0 a command, 1 a snapshot, 2 a snapshot whose checksum
// is recomputed over the mutated bytes first (so mutations reach the fields behind it). A
// decode must either throw a typed DecodeError or give a value that re-encodes and decodes to
// an equal value; a decoded catalog must also keep working: applying commands to it never
// traps, and what it becomes still encodes to a snapshot that decodes.

import Catalog
import Checksum
import FuzzSupport
import Wire

func repairChecksum(_ bytes: inout [UInt8]) {
    guard bytes.count >= 8 else { return }
    let checksum = XXH3.hash(bytes, range: 0..<(bytes.count - 8))
    withUnsafeBytes(of: checksum.littleEndian) { for offset in 0..<8 { bytes[bytes.count - 8 + offset] = $0[offset] } }
}

func checkError(_ error: DecodeError, _ bytes: [UInt8]) {
    precondition(!error.field.isEmpty, "a decode error names no field")
    precondition(error.offset <= UInt64(bytes.count), "a decode error points past the input")
}

/// `catalog` survives its own snapshot: encode, decode, equal.
func checkRoundTrip(_ catalog: Catalog, _ what: String) {
    let encoded = catalog.encode()
    do throws(DecodeError) {
        let decoded = try Catalog.decode(encoded)
        precondition(decoded == catalog, "\(what): the snapshot decodes to another catalog")
    } catch {
        preconditionFailure("\(what): the snapshot does not decode: \(error)")
    }
}

let probes: [CatalogCommand] = [
    .createCollection(name: "fuzz", owner: 1, dimension: 4, metric: .dot, shards: 2, m: 8, efConstruct: 16, createdAt: 0),
    .createUser(email: "fuzz@example.com", passwordHash: "h", isAdmin: false, createdAt: 0),
    .createKey(id: "fuzz", owner: 1, hash: [1, 2, 3], name: "n", createdAt: 0),
    .initialise(secret: [7]),
]

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    var bytes = [UInt8](data.dropFirst())
    if mode % 3 == 0 {
        let command: CatalogCommand
        do throws(DecodeError) { command = try CatalogCommand.decode(bytes) } catch {
            checkError(error, bytes)
            return
        }
        let again = try? CatalogCommand.decode(command.encode())
        precondition(again == command, "a decoded command does not round-trip")
        var catalog = Catalog()
        _ = catalog.apply(command)
        checkRoundTrip(catalog, "after one command")
        return
    }
    if mode % 3 == 2 { repairChecksum(&bytes) }
    var catalog: Catalog
    do throws(DecodeError) { catalog = try Catalog.decode(bytes) } catch {
        checkError(error, bytes)
        return
    }
    checkRoundTrip(catalog, "decoded")
    for info in catalog.collections.values {
        precondition(info.shardGroups.allSatisfy { $0 >= Catalog.firstShardGroup && $0 < catalog.nextGroup })
    }
    for probe in probes { _ = catalog.apply(probe) }
    checkRoundTrip(catalog, "after the probes")
}

runFuzzer(fuzzOne)
