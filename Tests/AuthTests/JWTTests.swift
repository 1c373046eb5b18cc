// HS256 tokens: the jwt.io example, a known-answer token computed independently (Python's
// hmac/hashlib/base64, and again here by hand from the literal JSON text), time checks at their
// exact boundaries, and every kind of forged or broken token refused with its own error.

import Auth
import JSON
import Testing

@Suite struct JWTTests {
    /// The example token shown on jwt.io (secret `your-256-bit-secret`, no `exp`).
    static let jwtIOToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    static let jwtIOSecret = Array("your-256-bit-secret".utf8)

    static let secret = Array("vectron-known-answer-secret-0123".utf8)
    static let claims = JSONObject([
        "sub": .string("alice"), "iat": .integer(1_700_000_000), "exp": .integer(1_700_003_600),
        "scope": .array([.string("read"), .string("write")]),
    ])
    /// `claims` signed with `secret`, computed outside Swift:
    /// python3: b64(header) + "." + b64(payload) + "." + b64(hmac.new(secret, signingInput, sha256))
    static let knownToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwLCJzY29wZSI6WyJyZWFkIiwid3JpdGUiXX0.pIlm4kcQjuh3efrDDfFqKSEPYjTZDMo4nL-JUzXTPFE"

    /// A token with any header and payload text, correctly signed: forgeries that get past the
    /// signature must still be refused by the header and claim checks.
    static func forge(header: String, payload: String, secret: [UInt8] = secret) -> String {
        let signingInput = Secrets.base64URLEncode(Array(header.utf8)) + "." + Secrets.base64URLEncode(Array(payload.utf8))
        return signingInput + "." + Secrets.base64URLEncode(Secrets.hmacSHA256(key: secret, message: Array(signingInput.utf8)))
    }

    static let hs256Header = #"{"alg":"HS256","typ":"JWT"}"#

    func verifyError(_ token: String, now: Int64 = 1_700_000_000, leeway: Int64 = 30, secret: [UInt8] = secret) -> AuthError? {
        authError { () throws(AuthError) in _ = try JWT.verify(token, secret: secret, now: now, leeway: leeway) }
    }

    // MARK: Known answers

    @Test func jwtIOExampleVerifies() throws {
        let claims = try JWT.verifySignature(Self.jwtIOToken, secret: Self.jwtIOSecret)
        #expect(claims["sub"] == .string("1234567890"))
        #expect(claims["name"] == .string("John Doe"))
        #expect(claims["iat"] == .integer(1_516_239_022))
        // It has no `exp`, which `verify` requires.
        #expect(verifyError(Self.jwtIOToken, now: 1_516_239_022, secret: Self.jwtIOSecret) == .tokenMissingClaim("exp"))
        #expect(verifyError(Self.jwtIOToken, secret: Array("your-256-bit-secreT".utf8)) == .tokenBadSignature)
        // Signing the same claims reproduces it byte for byte.
        let same = JSONObject(["sub": .string("1234567890"), "name": .string("John Doe"), "iat": .integer(1_516_239_022)])
        #expect(JWT.sign(claims: same, secret: Self.jwtIOSecret) == Self.jwtIOToken)
    }

    @Test func signMatchesTheKnownAnswer() {
        #expect(JWT.sign(claims: Self.claims, secret: Self.secret) == Self.knownToken)
        // Again by hand, from the literal JSON text rather than the writer.
        let byHand = Self.forge(header: Self.hs256Header,
                                payload: #"{"sub":"alice","iat":1700000000,"exp":1700003600,"scope":["read","write"]}"#)
        #expect(byHand == Self.knownToken)
        #expect(Self.knownToken.hasPrefix("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."))
    }

    @Test func verifyReturnsTheClaims() throws {
        let claims = try JWT.verify(Self.knownToken, secret: Self.secret, now: 1_700_000_000)
        #expect(claims == Self.claims)
    }

    // MARK: Time

    @Test func expiryBoundaries() {
        let exp: Int64 = 1_700_003_600
        #expect(verifyError(Self.knownToken, now: exp + 29) == nil)
        #expect(verifyError(Self.knownToken, now: exp + 30) == .tokenExpired)
        #expect(verifyError(Self.knownToken, now: exp - 1, leeway: 0) == nil)
        #expect(verifyError(Self.knownToken, now: exp, leeway: 0) == .tokenExpired)
        #expect(verifyError(Self.knownToken, now: Int64.max) == .tokenExpired)
        #expect(verifyError(Self.knownToken, now: Int64.min, leeway: 0) == nil)
        // exp + leeway beyond Int64.max is a deadline never reached, not an overflow trap.
        let far = Self.forge(header: Self.hs256Header, payload: #"{"exp":9223372036854775807}"#)
        #expect(verifyError(far, now: Int64.max, leeway: 30) == nil)
        #expect(verifyError(far, now: Int64.max, leeway: 0) == .tokenExpired)
    }

    @Test func notBeforeBoundaries() {
        let token = Self.forge(header: Self.hs256Header, payload: #"{"nbf":1000,"exp":2000}"#)
        #expect(verifyError(token, now: 969) == .tokenNotYetValid)
        #expect(verifyError(token, now: 970) == nil)
        #expect(verifyError(token, now: 999, leeway: 0) == .tokenNotYetValid)
        #expect(verifyError(token, now: 1000, leeway: 0) == nil)
    }

    @Test func claimTypesAreChecked() {
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"sub":"a"}"#)) == .tokenMissingClaim("exp"))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"exp":"1800000000"}"#)) == .tokenInvalidClaim("exp"))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"exp":1.8e9}"#)) == .tokenInvalidClaim("exp"))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"exp":null}"#)) == .tokenInvalidClaim("exp"))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"exp":18446744073709551615}"#)) == .tokenInvalidClaim("exp"))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"exp":1800000000,"nbf":"0"}"#)) == .tokenInvalidClaim("nbf"))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"exp":1800000000}"#)) == nil)
    }

    // MARK: Forgeries and garbage

    @Test func tamperedTokensAreRejected() {
        let parts = Self.knownToken.split(separator: ".").map(String.init)
        // Payload: sub "alice" → "mallory", signature kept.
        let otherPayload = Secrets.base64URLEncode(Array(#"{"sub":"mallory","iat":1700000000,"exp":1700003600,"scope":["read","write"]}"#.utf8))
        #expect(verifyError(parts[0] + "." + otherPayload + "." + parts[2]) == .tokenBadSignature)
        // Signature: first character changed (still canonical base64url).
        let signature = Array(parts[2])
        let changed = String([signature[0] == "A" ? "B" : "A"] + signature.dropFirst())
        #expect(verifyError(parts[0] + "." + parts[1] + "." + changed) == .tokenBadSignature)
        // Signature truncated or extended.
        #expect(verifyError(parts[0] + "." + parts[1] + "." + String(parts[2].dropLast(3))) == .tokenBadSignature)
        #expect(verifyError(parts[0] + "." + parts[1] + "." + parts[2] + "A") == .tokenBadSignature)
        // Wrong secret.
        #expect(verifyError(Self.knownToken, secret: Array("vectron-known-answer-secret-0124".utf8)) == .tokenBadSignature)
        // A header re-encoded with extra whitespace changes the signing input.
        let spacedHeader = Secrets.base64URLEncode(Array(#"{"alg":"HS256", "typ":"JWT"}"#.utf8))
        #expect(verifyError(spacedHeader + "." + parts[1] + "." + parts[2]) == .tokenBadSignature)
    }

    @Test func onlyHS256IsAccepted() {
        let payload = #"{"sub":"alice","exp":1800000000}"#
        for header in [#"{"alg":"none","typ":"JWT"}"#, #"{"alg":"None"}"#, #"{"alg":"NONE"}"#, #"{"alg":"HS512","typ":"JWT"}"#,
                       #"{"alg":"HS384"}"#, #"{"alg":"RS256"}"#, #"{"alg":"hs256"}"#, #"{"alg":"HS256 "}"#, #"{"alg":""}"#,
                       #"{"alg":null}"#, #"{"alg":256}"#, #"{"typ":"JWT"}"#, #"{}"#,
                       #"{"alg":"HS256","crit":["exp"],"exp":1}"#] {
            #expect(verifyError(Self.forge(header: header, payload: payload)) == .tokenUnsupportedAlgorithm, "accepted header \(header)")
        }
        // The unsigned form of alg "none" (empty signature) never gets that far.
        let unsigned = Secrets.base64URLEncode(Array(#"{"alg":"none"}"#.utf8)) + "." + Secrets.base64URLEncode(Array(payload.utf8)) + "."
        #expect(verifyError(unsigned) == .tokenMalformed)
        // Control: the same payload under the HS256 header verifies.
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: payload)) == nil)
    }

    @Test func garbageIsRejectedWithTheRightError() {
        for token in ["", ".", "..", "...", "abc", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", Self.knownToken + "."] {
            #expect(verifyError(token) == .tokenMalformed, "\(token.debugDescription)")
        }
        let parts = Self.knownToken.split(separator: ".").map(String.init)
        #expect(verifyError("eyJ!." + parts[1] + "." + parts[2]) == .tokenEncoding(part: .header))
        #expect(verifyError(parts[0] + "=." + parts[1] + "." + parts[2]) == .tokenEncoding(part: .header))
        #expect(verifyError(parts[0] + "." + parts[1] + "." + parts[2] + "=") == .tokenEncoding(part: .signature))
        #expect(verifyError(parts[0] + "." + parts[1] + "." + "a+b/") == .tokenEncoding(part: .signature))
        // Header or payload that is not a JSON object.
        let notJSON = Secrets.base64URLEncode(Array("hello".utf8))
        #expect(verifyError(notJSON + "." + parts[1] + "." + parts[2]) == .tokenJSON(part: .header))
        #expect(verifyError(Self.forge(header: #"["HS256"]"#, payload: "{}")) == .tokenJSON(part: .header))
        #expect(verifyError(Self.forge(header: #"{"alg":"HS256","alg":"none"}"#, payload: "{}")) == .tokenJSON(part: .header))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: "[1]")) == .tokenJSON(part: .payload))
        #expect(verifyError(Self.forge(header: Self.hs256Header, payload: #"{"exp":1800000000"#)) == .tokenJSON(part: .payload))
        // A correctly signed payload part that is not canonical base64url.
        let signingInput = parts[0] + ".Zh"
        let signature = Secrets.base64URLEncode(Secrets.hmacSHA256(key: Self.secret, message: Array(signingInput.utf8)))
        #expect(verifyError(signingInput + "." + signature) == .tokenEncoding(part: .payload))
    }

    @Test func oversizedTokensAreRejectedBeforeDecoding() {
        var claims = JSONObject(["exp": .integer(1_800_000_000)])
        claims.insertNew("pad", .string(String(repeating: "x", count: 6_500)))
        let large = JWT.sign(claims: claims, secret: Self.secret)
        #expect(large.utf8.count > JWT.tokenBytesMax)
        #expect(verifyError(large) == .tokenTooLarge(bytesMax: 8_192))
        // Just under the limit still verifies.
        var smaller = JSONObject(["exp": .integer(1_800_000_000)])
        smaller.insertNew("pad", .string(String(repeating: "x", count: 5_000)))
        let fits = JWT.sign(claims: smaller, secret: Self.secret)
        #expect(fits.utf8.count <= JWT.tokenBytesMax)
        #expect(verifyError(fits) == nil)
        #expect(verifyError(String(repeating: "a", count: 9_000)) == .tokenTooLarge(bytesMax: 8_192))
    }

    // MARK: issue

    @Test func issueMakesVerifiableTokens() throws {
        let token = JWT.issue(subject: "user-7", issuedAt: 1_700_000_000, lifetime: 900, secret: Self.secret, tokenID: "fixed-id")
        let claims = try JWT.verify(token, secret: Self.secret, now: 1_700_000_100)
        #expect(claims == JSONObject(["sub": .string("user-7"), "iat": .integer(1_700_000_000),
                                      "exp": .integer(1_700_000_900), "jti": .string("fixed-id")]))
        #expect(verifyError(token, now: 1_700_000_930) == .tokenExpired)
        // Deterministic given the token id.
        #expect(token == JWT.issue(subject: "user-7", issuedAt: 1_700_000_000, lifetime: 900, secret: Self.secret, tokenID: "fixed-id"))
        // Random token ids by default.
        let first = try JWT.verify(JWT.issue(subject: "u", issuedAt: 0, lifetime: 60, secret: Self.secret), secret: Self.secret, now: 0)
        let second = try JWT.verify(JWT.issue(subject: "u", issuedAt: 0, lifetime: 60, secret: Self.secret), secret: Self.secret, now: 0)
        #expect(first["jti"]?.stringValue?.utf8.count == 22)
        #expect(first["jti"] != second["jti"])
    }

    @Test func errorsNeverContainTheToken() {
        let parts = Self.knownToken.split(separator: ".").map(String.init)
        for token in [Self.knownToken, parts[0] + "." + parts[1] + ".AAAA"] {
            guard let error = verifyError(token, now: 1_900_000_000) else {
                Issue.record("accepted")
                continue
            }
            for part in parts { #expect(!error.description.contains(part)) }
        }
    }
}
