// The one error type of the Auth module. Every refusal — a weak password, a malformed email, a
// bad token — is one of these. Descriptions name the rule that was broken and never contain the
// password, the email, the token, a key or any other secret the caller passed in, so they can go
// to logs and to clients as they are.

public enum AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    // Passwords.
    case passwordTooShort(bytesMin: Int)
    case passwordTooLong(bytesMax: Int)
    /// Only letters, or no letters at all.
    case passwordTooSimple
    case passwordEqualsEmail
    /// libsodium could not hash (in practice: the memory limit could not be allocated).
    case hashingFailed

    // Email addresses.
    case invalidEmail(reason: String)

    // Tokens.
    case tokenTooLarge(bytesMax: Int)
    /// Not `header.payload.signature`, or a part is empty.
    case tokenMalformed
    /// A part that is not strict unpadded base64url.
    case tokenEncoding(part: TokenPart)
    /// A header or payload that is not a JSON object.
    case tokenJSON(part: TokenPart)
    /// `alg` missing or anything but exactly "HS256" (so "none", "hs256", "HS512" all land here),
    /// or a `crit` header this implementation cannot honour.
    case tokenUnsupportedAlgorithm
    case tokenBadSignature
    case tokenMissingClaim(String)
    /// A registered claim of the wrong type (`exp` or `nbf` not an integer).
    case tokenInvalidClaim(String)
    case tokenExpired
    case tokenNotYetValid

    public enum TokenPart: String, Sendable, Equatable {
        case header, payload, signature
    }

    public var description: String {
        switch self {
        case .passwordTooShort(let bytesMin): return "password too short: at least \(bytesMin) bytes are required"
        case .passwordTooLong(let bytesMax): return "password too long: at most \(bytesMax) bytes are allowed"
        case .passwordTooSimple: return "password too simple: it needs at least one letter and one character that is not a letter"
        case .passwordEqualsEmail: return "password must not be the email address"
        case .hashingFailed: return "password hashing failed (out of memory?)"
        case .invalidEmail(let reason): return "invalid email address: \(reason)"
        case .tokenTooLarge(let bytesMax): return "token larger than \(bytesMax) bytes"
        case .tokenMalformed: return "malformed token: expected three non-empty dot-separated parts"
        case .tokenEncoding(let part): return "malformed token: the \(part.rawValue) is not unpadded base64url"
        case .tokenJSON(let part): return "malformed token: the \(part.rawValue) is not a JSON object"
        case .tokenUnsupportedAlgorithm: return "unsupported token algorithm: only HS256 is accepted"
        case .tokenBadSignature: return "token signature does not match"
        case .tokenMissingClaim(let name): return "token has no \"\(name)\" claim"
        case .tokenInvalidClaim(let name): return "token claim \"\(name)\" is not an integer"
        case .tokenExpired: return "token expired"
        case .tokenNotYetValid: return "token not valid yet"
        }
    }
}
