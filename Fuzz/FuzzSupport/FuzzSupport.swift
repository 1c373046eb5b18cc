// The libFuzzer entry points every fuzz target shares: `LLVMFuzzerTestOneInput` (exported for
// libFuzzer) forwards each input to the target's body, and `runFuzzer` hands control to
// libFuzzer's driver with the process's arguments.

import CFuzzer

#if canImport(Glibc)
import Glibc
#endif

/// Set once by `runFuzzer` before the driver starts; read only by the driver's thread.
nonisolated(unsafe) var fuzzBody: ((UnsafeRawBufferPointer) -> Void)?

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzBody?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Runs libFuzzer with `body` as the target; exits with the driver's status.
public func runFuzzer(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    fuzzBody = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in testOneInput(data, size) }
    exit(status)
}
