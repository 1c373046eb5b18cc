// Large anonymous memory for big flat arrays (the HNSW arena): mapped directly, aligned to
// 2 MiB and advised for transparent huge pages, so that random accesses across hundreds of
// megabytes do not miss the TLB on every node. Where the kernel gives no huge pages, this is
// ordinary zeroed memory.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum LargeBuffer {
    public static let hugePageBytes = 2 << 20

    /// At least `bytes` zeroed bytes, aligned to 2 MiB. Free with `deallocate(_:bytes:)`.
    public static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let length = max(bytes, 1)
        #if os(Linux)
        // Over-map by one huge page, then trim to a 2 MiB-aligned range.
        let mapped = length + hugePageBytes
        guard let raw = mmap(nil, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else {
            fatalError("mmap of \(mapped) bytes failed: errno \(errno)")
        }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(hugePageBytes) - 1) & ~(UInt(hugePageBytes) - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        let tail = mapped - head - roundedLength(length)
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + UInt(roundedLength(length)))!, tail) }
        let pointer = UnsafeMutableRawPointer(bitPattern: aligned)!
        _ = madvise(pointer, roundedLength(length), MADV_HUGEPAGE)
        return pointer
        #else
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 4096)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        return pointer
        #endif
    }

    public static func deallocate(_ pointer: UnsafeMutableRawPointer, bytes: Int) {
        #if os(Linux)
        munmap(pointer, roundedLength(max(bytes, 1)))
        #else
        pointer.deallocate()
        #endif
    }

    /// `bytes` rounded up to whole 4 KiB pages (what the mapping covers).
    static func roundedLength(_ bytes: Int) -> Int { (bytes + 4095) & ~4095 }
}
