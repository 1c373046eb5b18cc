// /auth: registration, login (a JWT), and API keys (shown once, stored as SHA-256 digests).

import Auth
import Basics
import Catalog
import HTTPServer
import Dispatch
import JSON

extension Gateway {
    func register(_ call: Call) {
        do throws(APIError) {
            let body = try self.body(call)
            guard case .string(let emailText)? = body["email"], case .string(let password)? = body["password"] else {
                throw .badRequest("`email` and `password` (strings) are required")
            }
            let email: EmailAddress
            do throws(AuthError) {
                email = try EmailAddress.validate(emailText)
                try PasswordPolicy.check(password, email: email.normalized)
            } catch {
                throw .badRequest("\(error)")
            }
            if node.catalog.user(email: email.normalized) != nil || email.normalized == Self.adminEmail {
                throw .conflict("a user with this email already exists")
            }
            hashing(call) { [self] () throws(APIError) in
                let hash: String
                do throws(AuthError) { hash = try hasher.hash(password) } catch { throw .internalError("\(error)") }
                node.proposeCatalog(.createUser(email: email.normalized, passwordHash: hash, isAdmin: false, createdAt: Self.unixNow())) { result in
                    switch result {
                    case .success(.userCreated(let user)):
                        call.ok { writer in
                            writer.beginObject()
                            writer.member("id", .unsigned(user.id))
                            writer.member("email", .string(user.email))
                            writer.endObject()
                        }
                    case .success(.alreadyExists(let text)): call.fail(409, text)
                    case .success(let other): call.fail(400, "\(other)")
                    case .failure(let error): call.fail(APIError(error))
                    }
                }
            }
        } catch {
            call.fail(error)
        }
    }

    func login(_ call: Call) {
        do throws(APIError) {
            let body = try self.body(call)
            guard case .string(let emailText)? = body["email"], case .string(let password)? = body["password"] else {
                throw .badRequest("`email` and `password` (strings) are required")
            }
            let catalog = node.catalog
            let user = catalog.user(email: emailText.lowercased())
            hashing(call) { [self] () throws(APIError) in
                // Verify even for an unknown user, so timing does not tell which emails exist.
                let encoded = user?.passwordHash ?? Self.dummyHash(hasher)
                guard hasher.verify(password, encoded: encoded), let user else { throw .unauthorized("wrong email or password") }
                let lifetime = node.configuration.tokenLifetimeSeconds
                let now = Self.unixNow()
                // A non-positive lifetime (a testing aid: `token_lifetime_seconds: -120`) issues
                // tokens already expired by that much. `JWT.issue` traps on a lifetime ≤ 0, so such
                // a token is backdated instead: a one-second lifetime ending `-lifetime` ago.
                let token = lifetime > 0
                    ? JWT.issue(subject: String(user.id), issuedAt: now, lifetime: lifetime, secret: catalog.secret)
                    : JWT.issue(subject: String(user.id), issuedAt: now + lifetime - 1, lifetime: 1, secret: catalog.secret)
                call.ok { writer in
                    writer.beginObject()
                    writer.member("token", .string(token))
                    writer.member("expires_in", .integer(lifetime))
                    writer.endObject()
                }
            }
        } catch {
            call.fail(error)
        }
    }

    nonisolated(unsafe) static var dummy: String?
    static let dummyLock = ConditionLock()

    static func dummyHash(_ hasher: PasswordHasher) -> String {
        dummyLock.withLock {
            if let dummy { return dummy }
            let made = (try? hasher.hash("not a password \(Secrets.hex(Secrets.randomBytes(8)))")) ?? "!"
            dummy = made
            return made
        }
    }

    static let keysPerUserMax = 100

    func createKey(_ call: Call) {
        do throws(APIError) {
            let body = try self.body(call)
            var name = ""
            if let value = body["name"] {
                guard case .string(let text) = value, text.utf8.count <= 256 else { throw .badRequest("`name` must be a string of at most 256 bytes") }
                name = text
            }
            let owner = call.principal!.userID
            // The catalog is kept (and rewritten) whole: bound what one user can add to it.
            guard node.catalog.keys.values.count(where: { $0.owner == owner }) < Self.keysPerUserMax else {
                throw .conflict("at most \(Self.keysPerUserMax) API keys per user: delete one first")
            }
            let generated = APIKey.generate()
            let createdAt = Self.unixNow()
            node.proposeCatalog(.createKey(id: generated.id, owner: owner, hash: APIKey.hash(generated.secret), name: name, createdAt: createdAt)) { result in
                switch result {
                case .success(.keyCreated(let info)):
                    call.ok { writer in
                        writer.beginObject()
                        writer.member("id", .string(info.id))
                        writer.member("name", .string(info.name))
                        writer.member("key", .string(generated.secret))
                        writer.member("created_at", .integer(info.createdAt))
                        writer.endObject()
                    }
                case .success(let other): call.fail(409, "\(other)")
                case .failure(let error): call.fail(APIError(error))
                }
            }
        } catch {
            call.fail(error)
        }
    }

    func listKeys(_ call: Call) {
        let owner = call.principal!.userID
        let keys = node.catalog.keys.values.filter { $0.owner == owner }.sorted { $0.id < $1.id }
        call.ok { writer in
            writer.beginArray()
            for key in keys {
                writer.beginObject()
                writer.member("id", .string(key.id))
                writer.member("name", .string(key.name))
                writer.member("created_at", .integer(key.createdAt))
                writer.endObject()
            }
            writer.endArray()
        }
    }

    func deleteKey(_ call: Call) {
        let id = call.param("id")
        guard let key = node.catalog.keys[id], key.owner == call.principal!.userID else {
            call.fail(404, "API key `\(id)` does not exist")
            return
        }
        node.proposeCatalog(.deleteKey(id: id)) { result in
            switch result {
            case .success(.keyDeleted): call.ok(.bool(true))
            case .success(.notFound(let text)): call.fail(404, text)
            case .success(let other): call.fail(400, "\(other)")
            case .failure(let error): call.fail(APIError(error))
            }
        }
    }
}

/// Runs password hashing (argon2id: tens of milliseconds and 64 MiB each) on a pool of its own,
/// at most `concurrentMax` at once, so logins neither starve searches of the worker queue nor
/// take unbounded memory; beyond `queuedMax` waiting, a request is refused with 503.
final class HashingPool: @unchecked Sendable {
    static let concurrentMax = 2
    static let queuedMax = 64

    private let lock = ConditionLock()
    private var running = 0
    private var waiting: [@Sendable () -> Void] = []
    private let queue = DispatchQueue(label: "vectron.gateway.hashing", attributes: .concurrent)

    /// Starts `work` now or later; false if too many are waiting.
    func submit(_ work: @escaping @Sendable () -> Void) -> Bool {
        enum Decision { case start, queued, refused }
        let decision: Decision = lock.withLock {
            if running < Self.concurrentMax {
                running += 1
                return .start
            }
            guard waiting.count < Self.queuedMax else { return .refused }
            waiting.append(work)
            return .queued
        }
        switch decision {
        case .start: run(work)
        case .queued: break
        case .refused: return false
        }
        return true
    }

    private func run(_ work: @escaping @Sendable () -> Void) {
        queue.async { [self] in
            work()
            let next: (@Sendable () -> Void)? = lock.withLock {
                if waiting.isEmpty {
                    running -= 1
                    return nil
                }
                return waiting.removeFirst()
            }
            if let next { run(next) }
        }
    }
}

extension Gateway {
    /// Runs `body` (which hashes a password) on the hashing pool, answering its error.
    func hashing(_ call: Call, _ body: @escaping @Sendable () throws(APIError) -> Void) {
        let accepted = hashingPool.submit {
            do throws(APIError) { try body() } catch { call.fail(error) }
        }
        if !accepted { call.fail(503, "too many logins and registrations in progress; retry shortly") }
    }
}
