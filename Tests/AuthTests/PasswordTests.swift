// argon2id hashing at the minimum cost (`.fastForTests`), the password policy and email
// validation.

import Auth
import Testing

@Suite struct PasswordHasherTests {
    let hasher = PasswordHasher(parameters: .fastForTests)

    @Test func hashVerifiesTheRightPasswordOnly() throws {
        let encoded = try hasher.hash("correct horse battery 9")
        #expect(encoded.hasPrefix("$argon2id$v=19$m=8,t=1,p=1$"))
        #expect(hasher.verify("correct horse battery 9", encoded: encoded))
        #expect(!hasher.verify("correct horse battery 8", encoded: encoded))
        #expect(!hasher.verify("", encoded: encoded))
        // A fresh salt each time; both verify.
        let again = try hasher.hash("correct horse battery 9")
        #expect(again != encoded)
        #expect(hasher.verify("correct horse battery 9", encoded: again))
    }

    @Test func verifyRefusesMalformedHashes() throws {
        let encoded = try hasher.hash("pässwörd ✓ 123")
        #expect(hasher.verify("pässwörd ✓ 123", encoded: encoded))
        #expect(!hasher.verify("pässwörd ✓ 123", encoded: ""))
        #expect(!hasher.verify("pässwörd ✓ 123", encoded: "$argon2id$garbage"))
        #expect(!hasher.verify("pässwörd ✓ 123", encoded: String(encoded.dropLast())))
        #expect(!hasher.verify("pässwörd ✓ 123", encoded: encoded + String(repeating: "A", count: 200)))
    }

    @Test func overLongPasswordsAreRefused() throws {
        let longest = String(repeating: "a", count: PasswordHasher.passwordBytesMax)
        let encoded = try hasher.hash(longest)
        #expect(hasher.verify(longest, encoded: encoded))
        let tooLong = longest + "a"
        #expect(authError { () throws(AuthError) in _ = try hasher.hash(tooLong) } == .passwordTooLong(bytesMax: 1_024))
        #expect(!hasher.verify(tooLong, encoded: encoded))
        // Bytes, not characters: 513 two-byte characters are 1,026 bytes.
        #expect(authError { () throws(AuthError) in _ = try hasher.hash(String(repeating: "é", count: 513)) } == .passwordTooLong(bytesMax: 1_024))
    }

    @Test func needsRehashWhenParametersDiffer() throws {
        let encoded = try hasher.hash("correct horse battery 9")
        #expect(!hasher.needsRehash(encoded))
        #expect(PasswordHasher().needsRehash(encoded))
        #expect(PasswordHasher(parameters: .init(opsLimit: 2, memoryLimitBytes: 8192)).needsRehash(encoded))
        #expect(hasher.needsRehash("not a hash"))
        #expect(hasher.needsRehash(""))
    }

    @Test func interactiveIsSodiumsInteractiveLevel() {
        #expect(PasswordHasher().parameters == .interactive)
        #expect(PasswordHasher.Parameters.interactive.opsLimit == 2)
        #expect(PasswordHasher.Parameters.interactive.memoryLimitBytes == 64 << 20)
        #expect(PasswordHasher.Parameters.fastForTests.opsLimit == 1)
        #expect(PasswordHasher.Parameters.fastForTests.memoryLimitBytes == 8192)
    }
}

@Suite struct PasswordPolicyTests {
    func violation(_ password: String, email: String? = nil) -> AuthError? {
        authError { () throws(AuthError) in try PasswordPolicy.check(password, email: email) }
    }

    @Test func acceptsReasonablePasswords() {
        #expect(violation("correct horse battery staple") == nil)  // spaces are non-letters
        #expect(violation("abcdefghi1") == nil)  // exactly the minimum
        #expect(violation("pässwörd-ß") == nil)
        #expect(violation("12345678a!") == nil)
        #expect(violation(String(repeating: "ab1", count: 341) + "a") == nil)  // 1,024 bytes
    }

    @Test func rejectsWithTheRuleBroken() {
        #expect(violation("") == .passwordTooShort(bytesMin: 10))
        #expect(violation("abcdefgh1") == .passwordTooShort(bytesMin: 10))
        #expect(violation("éééé1") == .passwordTooShort(bytesMin: 10))  // 9 bytes
        #expect(violation(String(repeating: "ab1", count: 341) + "ab") == .passwordTooLong(bytesMax: 1_024))
        #expect(violation("abcdefghijkl") == .passwordTooSimple)
        #expect(violation("ééééééééé") == .passwordTooSimple)  // 18 bytes, all letters
        #expect(violation("1234567890123") == .passwordTooSimple)
        #expect(violation("!!!!!!!!!!!!") == .passwordTooSimple)
        #expect(violation("alice@example.com", email: "alice@example.com") == .passwordEqualsEmail)
        #expect(violation("Alice@Example.com", email: "alice@example.com") == .passwordEqualsEmail)
        #expect(violation("alice@example.com!", email: "alice@example.com") == nil)
    }

    @Test func errorsNeverContainThePassword() {
        for password in ["hunter2", "hunterhunterhunter", "alice@example.com", String(repeating: "x1", count: 600)] {
            guard let error = violation(password, email: "alice@example.com") else {
                Issue.record("\(password.prefix(10)) accepted")
                continue
            }
            #expect(!error.description.contains(password))
        }
    }
}

@Suite struct EmailAddressTests {
    @Test func acceptsAndNormalises() throws {
        #expect(try EmailAddress.validate("Alice@Example.COM").normalized == "alice@example.com")
        #expect(try EmailAddress.validate("a.b+tag@sub.example.org").normalized == "a.b+tag@sub.example.org")
        #expect(try EmailAddress.validate("x@y.z").normalized == "x@y.z")
        let local = String(repeating: "a", count: 64)
        let longest = local + "@" + String(repeating: "b", count: 254 - 64 - 1 - 4) + ".com"
        #expect(longest.utf8.count == 254)
        #expect(try EmailAddress.validate(longest).normalized == longest)
    }

    @Test func rejectsMalformedAddresses() {
        let bad = ["", "alice", "alice@", "@example.com", "a@b@example.com", "alice@localhost", "alice@example.",
                   "alice@.example.com", "alice@example..com", "al ice@example.com", "alice@example.com ",
                   "alice@exam\tple.com", "alice@example.com\n", "ali\u{0}ce@example.com", "alice@exa\u{200B}mple.com",
                   "alice@exa\u{7F}mple.com", "a@" + String(repeating: "b", count: 250) + ".com"]
        for text in bad {
            let error = authError { () throws(AuthError) in _ = try EmailAddress.validate(text) }
            guard case .invalidEmail = error else {
                Issue.record("accepted \(text.debugDescription)")
                continue
            }
        }
    }
}
