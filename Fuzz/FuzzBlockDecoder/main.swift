// Fuzz target: the key/value block decoders — `Block` (validate, entries, seek) and
// `DecodedBlock` (the engine's one-pass decoder, lowerBound) — under both key orders.
//
// Input byte 0: bit 0 picks the key order (bytewise / internal key); the rest is a block.
// Beyond "no crash", the two decoders must agree: both reject, or both accept with the same
// entries, and `seek` must find what `lowerBound` finds.

import FuzzSupport
import StorageFormat

func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let mode = data.first else { return }
    let order: KeyOrder = mode & 1 == 0 ? .bytewise : .internalKey
    let bytes = [UInt8](data.dropFirst())
    let block = try? Block(bytes, baseOffset: 0, order: order)
    let decoded = try? DecodedBlock.decode(bytes, baseOffset: 0, order: order)
    let entries = try? block?.entries()
    precondition((entries == nil) == (decoded == nil), "Block and DecodedBlock disagree on validity")
    guard let entries, let decoded else { return }
    precondition(entries.count == decoded.count, "entry counts differ")
    for (index, entry) in entries.enumerated() {
        precondition(entry.key == decoded.key(index) && entry.value == decoded.value(index), "entry \(index) differs")
    }
    // Probe seek with every key, each key's successor and predecessor-ish variants.
    var targets: [[UInt8]] = entries.prefix(32).map(\.key)
    targets += entries.prefix(32).map { $0.key + [0] }
    targets += entries.prefix(32).compactMap { $0.key.count > 8 ? Array($0.key.dropLast()) : nil }
    targets.append([UInt8](repeating: 0xFF, count: 12))
    targets.append([UInt8](repeating: 0, count: 8))
    for target in targets where order.allowsKeyLength(target.count) {
        let position = decoded.lowerBound(target)
        let found = try? block!.seek(target)
        if position == decoded.count {
            precondition(found == nil, "seek found an entry past lowerBound")
        } else {
            precondition(found?.key == decoded.key(position), "seek and lowerBound disagree")
        }
    }
}

runFuzzer(fuzzOne)
