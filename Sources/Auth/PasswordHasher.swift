// Password hashing with argon2id (libsodium's `crypto_pwhash_str_alg`). The result is the
// self-describing PHC string (`$argon2id$v=19$m=…,t=…,p=1$salt$hash`): it carries its own salt
// and parameters, so verifying needs only the string, and `needsRehash` tells when a stored hash
// was made with other parameters than the current ones (rehash on the next successful login).
//
// Hashing is deliberately slow and memory-hungry (64 MiB at `.interactive`): callers on an event
// loop must run it on a thread pool. Swift strings cannot be wiped, so the password's bytes live
// as long as the caller's `String` does.

import CSodium

public struct PasswordHasher: Sendable {
    /// Longer passwords are refused before hashing: argon2 accepts them, but a megabyte password
    /// is a cheap way to make the server work.
    public static let passwordBytesMax = 1_024

    /// argon2id's cost: passes over memory and the memory used, in bytes.
    public struct Parameters: Sendable, Equatable {
        public var opsLimit: UInt64
        public var memoryLimitBytes: Int

        public init(opsLimit: UInt64, memoryLimitBytes: Int) {
            self.opsLimit = opsLimit
            self.memoryLimitBytes = memoryLimitBytes
        }

        /// libsodium's interactive level (2 passes, 64 MiB): the default.
        public static let interactive = Parameters(
            opsLimit: UInt64(crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE),
            memoryLimitBytes: Int(crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE))

        /// argon2id's minimums (1 pass, 8 KiB). Only for tests: this protects nothing.
        public static let fastForTests = Parameters(
            opsLimit: UInt64(crypto_pwhash_argon2id_OPSLIMIT_MIN),
            memoryLimitBytes: Int(crypto_pwhash_argon2id_MEMLIMIT_MIN))
    }

    public var parameters: Parameters

    public init(parameters: Parameters = .interactive) {
        precondition(parameters.opsLimit >= UInt64(crypto_pwhash_argon2id_OPSLIMIT_MIN), "argon2id opsLimit below the minimum")
        precondition(parameters.memoryLimitBytes >= Int(crypto_pwhash_argon2id_MEMLIMIT_MIN), "argon2id memory limit below the minimum")
        self.parameters = parameters
    }

    /// The encoded argon2id hash of `password`, with a fresh random salt.
    public func hash(_ password: String) throws(AuthError) -> String {
        let length = password.utf8.count
        guard length <= Self.passwordBytesMax else { throw .passwordTooLong(bytesMax: Self.passwordBytesMax) }
        Sodium.ensureInitialised()
        var encoded = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
        let status = password.withCString { password in
            crypto_pwhash_str_alg(&encoded, password, UInt64(length),
                                  parameters.opsLimit, parameters.memoryLimitBytes, crypto_pwhash_ALG_ARGON2ID13)
        }
        guard status == 0 else { throw .hashingFailed }
        return encoded.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// True if `password` is the one `encoded` was made from. False for a wrong password, an
    /// over-long one, and an `encoded` string that is not a valid hash.
    public func verify(_ password: String, encoded: String) -> Bool {
        let length = password.utf8.count
        guard length <= Self.passwordBytesMax, encoded.utf8.count < Int(crypto_pwhash_STRBYTES) else { return false }
        Sodium.ensureInitialised()
        return encoded.withCString { encoded in
            password.withCString { password in
                crypto_pwhash_str_verify(encoded, password, UInt64(length)) == 0
            }
        }
    }

    /// True if `encoded` was not made by argon2id with exactly these parameters (or is not a valid
    /// hash at all): after a successful `verify`, store a fresh `hash` of the password.
    public func needsRehash(_ encoded: String) -> Bool {
        guard encoded.utf8.count < Int(crypto_pwhash_STRBYTES), encoded.hasPrefix("$argon2id$") else { return true }
        Sodium.ensureInitialised()
        return encoded.withCString { encoded in
            crypto_pwhash_str_needs_rehash(encoded, parameters.opsLimit, parameters.memoryLimitBytes) != 0
        }
    }
}
