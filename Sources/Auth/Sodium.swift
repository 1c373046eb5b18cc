// libsodium's one-time initialisation. `sodium_init` must run before any other sodium call; a
// global `let` is initialised lazily and exactly once (swift_once), so every entry point of this
// module calls `Sodium.ensureInitialised()` first and pays one atomic load after the first call.

import CSodium

/// Sodium's result, computed on first use: 0 (initialised now) or 1 (already) are success.
private let sodiumInitStatus: Int32 = sodium_init()

enum Sodium {
    static func ensureInitialised() {
        // A failure here means the process cannot get randomness; nothing in Auth is safe then.
        precondition(sodiumInitStatus >= 0, "sodium_init failed")
    }
}
