// An email address as an account identifier: checked for shape, not deliverability, and
// normalised to lowercase so that `Alice@Example.com` and `alice@example.com` are one account.
// The rules: at most 254 UTF-8 bytes (RFC 5321's path limit), exactly one `@`, a non-empty local
// part, a domain of at least two non-empty dot-separated labels, no whitespace or control
// characters anywhere. Quoted local parts and IP-literal domains are not accepted.

public struct EmailAddress: Sendable, Hashable, CustomStringConvertible {
    public static let bytesMax = 254

    /// The lowercase form, the one to store and compare.
    public let normalized: String

    public init(_ original: String) throws(AuthError) {
        // Checked after lowercasing: Unicode lowercasing can change the byte length.
        let text = original.lowercased()
        guard !text.isEmpty else { throw .invalidEmail(reason: "empty") }
        guard text.utf8.count <= Self.bytesMax else { throw .invalidEmail(reason: "longer than \(Self.bytesMax) bytes") }
        for scalar in text.unicodeScalars {
            if scalar.properties.isWhitespace || scalar.properties.generalCategory == .control
                || scalar.properties.generalCategory == .format {
                throw .invalidEmail(reason: "contains whitespace or a control character")
            }
        }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw .invalidEmail(reason: "must contain exactly one @") }
        guard !parts[0].isEmpty else { throw .invalidEmail(reason: "empty local part") }
        let labels = parts[1].split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty }) else {
            throw .invalidEmail(reason: "the domain must be dotted labels, none empty")
        }
        normalized = text
    }

    /// The validated, normalised address.
    public static func validate(_ text: String) throws(AuthError) -> EmailAddress {
        try EmailAddress(text)
    }

    public var description: String { normalized }
}
