import Crypto
import Foundation
import VeilCore
import VeilCrypto
import X509

#if canImport(Glibc)
    import Glibc
#endif

/// One-time enrolment tokens (`Specs/wire.md` §2.3): how a holder that cannot run `veil ca
/// request` and carry files to the operator — a browser — gets its own keys certified. The
/// operator makes a token for one participant id (`veil ca token`) and hands it over out of
/// band; the CA keeps only the token's SHA-256, in `CA/enrolment/`, so that its folder never
/// holds a usable token.
public struct EnrolmentTokens: Sendable {
    public let folder: URL

    /// Tokens are for participants only: the endpoint is reachable from browsers, and a
    /// coordinator or a key holder is certified by the operator's own hand (`veil ca sign`).
    public static let role = FederationRole.participant
    /// The longest a token may stay valid.
    public static let maxValidity: TimeInterval = 30 * 24 * 3600

    /// The CA's `enrolment/` folder (made 0700 if missing).
    public init(ca: FederationCA) throws {
        folder = ca.directory.appendingPathComponent("enrolment")
        var info = stat()
        if lstat(folder.path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw EnrolmentError.store("\(folder.path) is not a folder (a symbolic link is refused)")
            }
        } else if mkdir(folder.path, 0o700) != 0 {
            throw EnrolmentError.store("cannot create \(folder.path): \(String(cString: strerror(errno)))")
        }
    }

    /// What the CA keeps of a token.
    struct Record: Codable, Equatable {
        var id: String
        var role: String
        /// Seconds since 1970.
        var expires: Int64
    }

    /// Makes a token for `id`, valid for `validity` seconds: 32 random bytes in hex, shown
    /// once. An id already certified gets none.
    public func issue(id: String, validity: TimeInterval, now: Date = Date()) throws -> String {
        try FederationCA.validate(id: id)
        guard validity > 0, validity <= Self.maxValidity else {
            throw EnrolmentError.store(
                "a token's validity must be above 0 and at most \(Int(Self.maxValidity / 60)) minutes")
        }
        let certified = folder.deletingLastPathComponent().appendingPathComponent("\(id).cert.pem").path
        guard !FileManager.default.fileExists(atPath: certified) else { throw CredentialError.alreadyExists(certified) }
        let token = Hex.encode(SecureBytes.random(count: 32).unsafeExposedBytes())
        let record = Record(id: id, role: Self.role.rawValue, expires: Int64(now.timeIntervalSince1970 + validity))
        let json = try JSONEncoder().encode(record)
        do {
            try SecretFile.create(atPath: path(of: token), contents: SecureBytes(copying: json))
        } catch { throw EnrolmentError.store("\(error)") }
        return token
    }

    /// The file of a token: named by its hash, so that a token cannot be read back from it.
    func path(of token: String) -> String {
        folder.appendingPathComponent(Hex.encode(SHA256.hash(Array(token.utf8))) + ".json").path
    }

    /// The record of a token, without using it up.
    func record(of token: String, now: Date) throws(EnrolmentError) -> Record {
        // Anything but 64 lower-case hex digits was never issued: not even looked up.
        guard token.utf8.count == 64,
            token.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { throw .unknownToken }
        let path = path(of: token)
        guard case .success(let bytes) = TrainerExchange.readRegularFile(path, limit: 4096),
            let record = try? JSONDecoder().decode(Record.self, from: Data(bytes))
        else { throw .unknownToken }
        guard Int64(now.timeIntervalSince1970) < record.expires else {
            unlink(path)
            throw .expiredToken
        }
        return record
    }

    /// Uses the token up: only one caller's `unlink` succeeds, even across processes.
    func consume(_ token: String) throws(EnrolmentError) {
        guard unlink(path(of: token)) == 0 else { throw .unknownToken }
    }
}

/// Why an enrolment was refused, with the HTTP status the endpoint answers.
public enum EnrolmentError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    /// Never issued, already used, or removed: the three are not told apart.
    case unknownToken
    case expiredToken
    /// The request is for another id or role than the token's.
    case notThisToken(String)
    case refused(String)
    case alreadyCertified(String)
    case store(String)

    public var description: String {
        switch self {
        case .malformed(let why): "malformed enrolment: \(why)"
        case .unknownToken: "the token is unknown or already used"
        case .expiredToken: "the token has expired"
        case .notThisToken(let why): "the token is not for this request: \(why)"
        case .refused(let why): why
        case .alreadyCertified(let id): "\(id) is already certified"
        case .store(let why): why
        }
    }

    /// 400, 403, 409 or 500.
    public var status: Int {
        switch self {
        case .malformed, .refused: 400
        case .unknownToken, .expiredToken, .notThisToken: 403
        case .alreadyCertified: 409
        case .store: 500
        }
    }
}

/// One enrolment (`POST /enrol`, `Specs/wire.md` §2.3), without the socket: the JSON body
/// `{"token": T, "request": PEM}` in, the certificate and the CA's certificate out. The
/// request gets exactly the checks of `veil ca sign`; the token decides the id and the role.
/// Callers run one at a time (``EnrolmentServer`` does): the check that an id is not yet
/// certified and the writing of its certificate must not interleave.
public struct Enrolment: Sendable {
    public let ca: FederationCA
    public let tokens: EnrolmentTokens
    /// A request body is at most this long: a request PEM is about 1 KiB.
    public static let maxBodyBytes = 16 << 10
    /// Certificates issued here are valid this long.
    public static let validity: TimeInterval = FederationCA.validity

    public init(ca: FederationCA) throws {
        self.ca = ca
        tokens = try EnrolmentTokens(ca: ca)
    }

    public struct Issued: Sendable {
        public let id: String
        public let certificatePEM: String
        public let caPEM: String

        /// The 200 answer's body.
        public var json: [UInt8] {
            let object = ["certificate": certificatePEM, "ca": caPEM]
            return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
        }
    }

    /// Checks everything that can be checked before the token is used up — the body, the
    /// request's signatures and binding, that the token is live and for this id and role, that
    /// the id is not certified — then uses the token up and signs. A refused request costs its
    /// sender the token only when the refusal comes after that point.
    public func enrol(body: [UInt8], now: Date = Date()) throws(EnrolmentError) -> Issued {
        guard body.count <= Self.maxBodyBytes else { throw .malformed("the body is over \(Self.maxBodyBytes) bytes") }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw .malformed("the body is not a JSON object")
        }
        // Not named: a key is the sender's text, and the refusal is logged (a newline would
        // forge a log line, a token sent as a key would be written down).
        let unknown = Set(object.keys).subtracting(["token", "request"])
        guard unknown.isEmpty else { throw .malformed("\(unknown.count) unknown key(s); only token and request") }
        guard let token = object["token"] as? String else { throw .malformed("\"token\" must be a string") }
        guard let pem = object["request"] as? String else { throw .malformed("\"request\" must be a string") }
        let request: CertificateRequest
        // The request's refusal quotes its id, the sender's text: made loggable (one line,
        // control characters escaped, bounded), as it goes into the answer and the log.
        do { request = try CertificateRequest(pemEncoded: pem) } catch { throw .refused(loggable("\(error)")) }
        let record = try tokens.record(of: token, now: now)
        guard record.id == request.id else {
            throw .notThisToken("it is for another id than \(request.id)")
        }
        guard record.role == request.role.rawValue, request.role == EnrolmentTokens.role else {
            throw .notThisToken("it is for a \(record.role), the request is a \(request.role.rawValue)'s")
        }
        let path = ca.directory.appendingPathComponent("\(request.id).cert.pem").path
        guard !FileManager.default.fileExists(atPath: path) else { throw .alreadyCertified(request.id) }
        try tokens.consume(token)
        do {
            let (certificate, _) = try ca.sign(
                request: request, role: EnrolmentTokens.role, notValidAfter: now.addingTimeInterval(Self.validity))
            return Issued(
                id: request.id, certificatePEM: try FederationCA.pem(certificate),
                caPEM: try FederationCA.pem(ca.certificate))
        } catch CredentialError.alreadyExists {
            // Certified meanwhile by another process on this CA folder (the record is created
            // without replacing one: FederationCA.sign).
            throw .alreadyCertified(request.id)
        } catch { throw .store(loggable("\(error)")) }
    }
}
