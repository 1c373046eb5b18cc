// What a new password must satisfy before it is hashed. Deliberately short (NIST SP 800-63B
// style): a length range, not a single character class, and not the account's own email. The
// upper bound matches `PasswordHasher.passwordBytesMax`, so every password the policy accepts can
// be hashed. Lengths are UTF-8 bytes, the unit the hasher limits.

public enum PasswordPolicy {
    public static let passwordBytesMin = 10
    public static let passwordBytesMax = PasswordHasher.passwordBytesMax

    /// Throws the first rule `password` breaks. `email`, when given, is the account's address;
    /// the password may not equal it (ignoring case).
    public static func check(_ password: String, email: String? = nil) throws(AuthError) {
        let length = password.utf8.count
        guard length >= passwordBytesMin else { throw .passwordTooShort(bytesMin: passwordBytesMin) }
        guard length <= passwordBytesMax else { throw .passwordTooLong(bytesMax: passwordBytesMax) }
        var hasLetter = false
        var hasNonLetter = false
        for character in password {
            if character.isLetter { hasLetter = true } else { hasNonLetter = true }
            if hasLetter && hasNonLetter { break }
        }
        guard hasLetter && hasNonLetter else { throw .passwordTooSimple }
        if let email, password.lowercased() == email.lowercased() { throw .passwordEqualsEmail }
    }
}
