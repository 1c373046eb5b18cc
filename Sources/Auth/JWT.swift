// JSON Web Tokens (RFC 7519), HS256 only. A token is
// `base64url(header) . base64url(claims) . base64url(HMAC-SHA256(secret, first two parts))`,
// every part strict unpadded base64url (`Secrets.base64URLDecode`).
//
// Verification order matters: size first (nothing over `tokenBytesMax` is decoded), then the
// header, whose `alg` must be exactly "HS256" — never "none", never another algorithm, never a
// case variant: accepting the token's own choice of algorithm is the classic JWT forgery —
// then the signature, compared in constant time, and only then the claims are parsed and their
// times checked. `exp` is required; a token that never expires is refused.

import JSON

public enum JWT {
    /// Larger tokens are refused before any decoding.
    public static let tokenBytesMax = 8 * 1024
    /// RFC 7518 §3.2: an HS256 key should have at least 256 bits. Not enforced (tokens from
    /// elsewhere may use shorter keys); `generateSecret` makes keys of this size.
    public static let secretBytesMin = 32
    public static let leewayDefault: Int64 = 30
    /// Nesting allowed in a header or claims set.
    static let depthMax = 16

    /// The only header this module writes.
    public static let header = #"{"alg":"HS256","typ":"JWT"}"#
    static let encodedHeader = Secrets.base64URLEncode(Array(header.utf8))

    /// A fresh random HS256 key.
    public static func generateSecret() -> [UInt8] {
        Secrets.randomBytes(secretBytesMin)
    }

    /// The signed token for `claims` (serialised compactly, members in their order).
    public static func sign(claims: JSONObject, secret: [UInt8]) -> String {
        let signingInput = encodedHeader + "." + Secrets.base64URLEncode(JSONValue.object(claims).serialized())
        let signature = Secrets.hmacSHA256(key: secret, message: Array(signingInput.utf8))
        return signingInput + "." + Secrets.base64URLEncode(signature)
    }

    /// A token for `subject` valid from `issuedAt` (unix seconds) for `lifetime` seconds, with
    /// claims `sub`, `iat`, `exp` and `jti` (a random id, for revocation lists).
    public static func issue(subject: String, issuedAt: Int64, lifetime: Int64, secret: [UInt8],
                             tokenID: String = newTokenID()) -> String {
        precondition(lifetime > 0, "a token lifetime must be positive")
        let (expiresAt, overflow) = issuedAt.addingReportingOverflow(lifetime)
        precondition(!overflow, "issuedAt + lifetime overflows")
        return sign(claims: JSONObject([
            "sub": .string(subject),
            "iat": .integer(issuedAt),
            "exp": .integer(expiresAt),
            "jti": .string(tokenID),
        ]), secret: secret)
    }

    /// 128 random bits, base64url.
    public static func newTokenID() -> String {
        Secrets.base64URLEncode(Secrets.randomBytes(16))
    }

    /// The claims of `token` if it is well formed, HS256 and signed with `secret`; `now` (unix
    /// seconds) must be before `exp + leeway` and not before `nbf - leeway`.
    public static func verify(_ token: String, secret: [UInt8], now: Int64, leeway: Int64 = leewayDefault) throws(AuthError) -> JSONObject {
        precondition(leeway >= 0, "negative leeway")
        let claims = try verifySignature(token, secret: secret)
        guard let expiry = claims["exp"] else { throw .tokenMissingClaim("exp") }
        guard case .integer(let expiresAt) = expiry else { throw .tokenInvalidClaim("exp") }
        // Expired once now ≥ exp + leeway; a sum past Int64.max is a deadline never reached.
        let (deadline, deadlineOverflows) = expiresAt.addingReportingOverflow(leeway)
        if !deadlineOverflows && now >= deadline { throw .tokenExpired }
        if let notBefore = claims["nbf"] {
            guard case .integer(let validFrom) = notBefore else { throw .tokenInvalidClaim("nbf") }
            // Not yet valid while now < nbf - leeway; a difference below Int64.min is no bound.
            let (earliest, earliestOverflows) = validFrom.subtractingReportingOverflow(leeway)
            if !earliestOverflows && now < earliest { throw .tokenNotYetValid }
        }
        return claims
    }

    /// The claims of `token` if it is well formed, HS256 and signed with `secret`, WITHOUT any
    /// check of `exp` or `nbf`. For inspecting tokens and for tests; authentication uses `verify`.
    public static func verifySignature(_ token: String, secret: [UInt8]) throws(AuthError) -> JSONObject {
        let bytes = Array(token.utf8)
        guard bytes.count <= tokenBytesMax else { throw .tokenTooLarge(bytesMax: tokenBytesMax) }
        let parts = bytes.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { throw .tokenMalformed }

        guard let headerBytes = Secrets.base64URLDecode(utf8: parts[0]) else { throw .tokenEncoding(part: .header) }
        let header = try parseObject(headerBytes, part: .header)
        guard case .string(let algorithm) = header["alg"], algorithm == "HS256" else { throw .tokenUnsupportedAlgorithm }
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood; this module knows none.
        guard header["crit"] == nil else { throw .tokenUnsupportedAlgorithm }

        guard let signature = Secrets.base64URLDecode(utf8: parts[2]) else { throw .tokenEncoding(part: .signature) }
        let signingInput = Array(bytes[parts[0].startIndex..<parts[1].endIndex])
        let expected = Secrets.hmacSHA256(key: secret, message: signingInput)
        guard Secrets.constantTimeEqual(signature, expected) else { throw .tokenBadSignature }

        guard let payloadBytes = Secrets.base64URLDecode(utf8: parts[1]) else { throw .tokenEncoding(part: .payload) }
        return try parseObject(payloadBytes, part: .payload)
    }

    private static func parseObject(_ bytes: [UInt8], part: AuthError.TokenPart) throws(AuthError) -> JSONObject {
        var options = JSONParser.Options()
        options.depthMax = depthMax
        options.bytesMax = tokenBytesMax
        let value: JSONValue
        do throws(JSONError) {
            value = try JSONParser.parse(bytes, options: options)
        } catch {
            throw .tokenJSON(part: part)
        }
        guard case .object(let object) = value else { throw .tokenJSON(part: part) }
        return object
    }
}
