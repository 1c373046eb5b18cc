// Helpers shared by the Auth tests.

import Auth

/// The error `body` throws, or nil if it returns.
func authError(_ body: () throws(AuthError) -> Void) -> AuthError? {
    do throws(AuthError) {
        try body()
        return nil
    } catch {
        return error
    }
}

func hexBytes(_ text: String) -> [UInt8] {
    guard let bytes = Secrets.bytes(fromHex: text) else { preconditionFailure("bad hex in a test: \(text)") }
    return bytes
}
