import Crypto
import Foundation
import SwiftASN1
import VeilCore
import VeilCrypto
import X509

/// What a certificate lets its holder do in a federation.
public enum FederationRole: String, Sendable, CaseIterable, Codable {
    case coordinator
    case participant
    /// Holds the Paillier secret key and decrypts aggregates (never individual contributions).
    case keyHolder = "key-holder"
}

/// Veil's certificate extensions, under the documentation enterprise arc 1.3.6.1.4.1.32473
/// (RFC 5612) — only Veil reads them (`Specs/wire.md` §2).
public enum VeilExtensions {
    /// The holder's role, a UTF8String.
    public static let role: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 32473, 1, 1]
    /// The holder's Ed25519 key for protocol signatures, an OCTET STRING of 32 bytes.
    public static let signingKey: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 32473, 1, 2]
    /// In a certificate request only: the Ed25519 key's signature binding it to the request's
    /// id, role and TLS key (`Specs/wire.md` §2), an OCTET STRING of 64 bytes.
    public static let signingKeyBinding: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 32473, 1, 3]
}

/// Why a certificate or a CA operation was refused.
public enum CredentialError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidName(String)
    case unreadable(path: String, why: String)
    case alreadyExists(String)
    case notIssuedByFederation(String)
    case expired(String)
    case missingExtension(String)
    case wrongRole(expected: FederationRole, actual: String)
    case invalidRequest(String)
    /// The WebSocket binding's challenge was not answered by the certificate's key (`Specs/wire.md` §1.1).
    case unauthenticated(String)
    /// RFC 5280 §4.2: a critical extension this verifier does not understand.
    case unhandledCriticalExtension(subject: String, oid: String)

    public var description: String {
        switch self {
        case .invalidName(let name):
            "\"\(name)\" is not a valid id: use 1–64 characters from a–z, A–Z, 0–9, '.', '-', '_'"
        case .unreadable(let path, let why): "cannot read \(path): \(why)"
        case .alreadyExists(let path): "\(path) already exists; refusing to overwrite it"
        case .notIssuedByFederation(let subject): "the certificate of \(subject) was not issued by this federation's CA"
        case .expired(let subject): "the certificate of \(subject) is not valid now"
        case .missingExtension(let what): "the certificate lacks Veil's \(what) extension"
        case .wrongRole(let expected, let actual): "a \(actual) certificate where a \(expected.rawValue) one is needed"
        case .invalidRequest(let why): "the certificate request is refused: \(why)"
        case .unauthenticated(let why): "not authenticated: \(why)"
        case .unhandledCriticalExtension(let subject, let oid):
            "the certificate of \(subject) has a critical extension \(oid) this verifier does not understand"
        }
    }
}

/// A federation's certificate authority on disk (`veil ca init`, `veil ca issue`): a P-256 CA
/// key and certificate, and per holder a P-256 TLS key, its certificate, and the Ed25519
/// signing key the certificate binds (`Specs/wire.md` §2).
///
/// Files in the directory: `ca.key.pem` (0600), `ca.cert.pem`; for each id `ID.key.pem` (0600),
/// `ID.cert.pem`, `ID.signing.key` (the Ed25519 seed, hex, 0600).
public struct FederationCA: Sendable {
    public let directory: URL
    public let certificate: Certificate
    private let key: Certificate.PrivateKey

    /// How long issued certificates are valid.
    public static let validity: TimeInterval = 365 * 24 * 3600

    /// Creates a CA in `directory` (created if needed).
    /// - Throws: ``CredentialError/alreadyExists(_:)`` when a CA is already there.
    @discardableResult
    public static func create(in directory: URL, name: String = "Veil federation CA") throws -> FederationCA {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keyURL = directory.appendingPathComponent("ca.key.pem")
        let certificateURL = directory.appendingPathComponent("ca.cert.pem")
        for url in [keyURL, certificateURL] where FileManager.default.fileExists(atPath: url.path) {
            throw CredentialError.alreadyExists(url.path)
        }
        let p256 = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(p256)
        let subject = try DistinguishedName { CommonName(name) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(10 * validity),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: key)
        try writeSecret(p256.pemRepresentation, to: keyURL)
        try pem(certificate).write(to: certificateURL, atomically: true, encoding: .utf8)
        return FederationCA(directory: directory, certificate: certificate, key: key)
    }

    /// Opens the CA in `directory`.
    public init(directory: URL) throws {
        self.directory = directory
        let keyPath = directory.appendingPathComponent("ca.key.pem").path
        let text = try Self.read(keyPath)
        do { key = Certificate.PrivateKey(try P256.Signing.PrivateKey(pemRepresentation: text)) } catch {
            throw CredentialError.unreadable(path: keyPath, why: "\(error)")
        }
        certificate = try Self.loadCertificate(directory.appendingPathComponent("ca.cert.pem").path)
    }

    private init(directory: URL, certificate: Certificate, key: Certificate.PrivateKey) {
        self.directory = directory
        self.certificate = certificate
        self.key = key
    }

    /// The files of one holder.
    public struct Credentials: Sendable {
        public let certificatePath: String
        public let keyPath: String
        public let signingKeyPath: String
    }

    /// Issues a certificate *and its holder's keys*, all in the CA's folder: a convenience
    /// for local testing and simulations only. Whoever holds the CA folder then holds every
    /// holder's private keys; real federations use ``CertificateRequest/create(id:role:hosts:in:)``
    /// on each holder's machine and ``sign(request:role:notValidBefore:notValidAfter:)`` here —
    /// which is what this does, in one folder.
    /// - Parameters:
    ///   - hosts: DNS names the certificate is valid for besides the id (coordinators only;
    ///     default localhost).
    ///   - notValidBefore, notValidAfter: the validity (default from five minutes ago to a
    ///     year from now).
    public func issue(
        id: String, role: FederationRole, hosts: [String] = ["localhost"], notValidBefore: Date? = nil,
        notValidAfter: Date? = nil
    ) throws -> Credentials {
        try Self.validate(id: id)
        let certificatePath = directory.appendingPathComponent("\(id).cert.pem").path
        guard !FileManager.default.fileExists(atPath: certificatePath) else {
            throw CredentialError.alreadyExists(certificatePath)
        }
        let hosts = role == .coordinator ? hosts : []
        // Checked before any key is written, so that a refusal leaves nothing behind.
        try refuseHostsNamingHolders(hosts, id: id)
        let files = try CertificateRequest.create(id: id, role: role, hosts: hosts, in: directory)
        defer { try? FileManager.default.removeItem(atPath: files.requestPath) }
        let request = try CertificateRequest(path: files.requestPath)
        _ = try sign(request: request, role: role, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        return Credentials(
            certificatePath: certificatePath, keyPath: files.keyPath, signingKeyPath: files.signingKeyPath)
    }

    /// Issues the certificate a holder requested (`veil ca sign`): the request's signature
    /// proves possession of the TLS key, its binding signature proves possession of the
    /// Ed25519 key and ties it to the same id, role and TLS key; the role must be the one the
    /// CA operator says it is signing. The certificate is built from the checked values, never
    /// copied from the request, and recorded as `ID.cert.pem` in the CA's folder (which holds
    /// no private key but the CA's own). An id is certified once.
    /// - Returns: the certificate, and where it was recorded.
    /// - Throws: ``CredentialError``.
    public func sign(
        request: CertificateRequest, role: FederationRole, notValidBefore: Date? = nil, notValidAfter: Date? = nil
    ) throws -> (certificate: Certificate, path: String) {
        guard request.role == role else {
            throw CredentialError.wrongRole(expected: role, actual: request.role.rawValue)
        }
        let path = directory.appendingPathComponent("\(request.id).cert.pem").path
        guard !FileManager.default.fileExists(atPath: path) else { throw CredentialError.alreadyExists(path) }
        try refuseHostsNamingHolders(request.hosts, id: request.id)
        let certificate = try certificate(
            id: request.id, role: request.role, tlsKey: request.tlsKey, signingKey: request.signingKey,
            hosts: request.hosts, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        try Self.record(try Self.pem(certificate), at: path)
        return (certificate, path)
    }

    /// Writes a certificate's record without ever replacing one: a temporary file, synced, then
    /// `link(2)`ed to its name — which fails if the name exists. Two processes certifying one id
    /// at once (`veil ca sign`, `veil ca enrol` on one CA folder) cannot both succeed; the check
    /// before it only saves the work.
    static func record(_ text: String, at path: String) throws {
        let temporary = path + ".\(Hex.encode(SecureBytes.random(count: 8).unsafeExposedBytes())).tmp"
        // SecretFile's write: exclusive, never through a link, every call checked, synced (the
        // record is not secret; 0600 does no harm in the CA's own folder).
        do { try SecretFile.create(atPath: temporary, contents: SecureBytes(copying: Array(text.utf8))) } catch {
            throw CredentialError.unreadable(path: path, why: "cannot record it: \(error)")
        }
        defer { unlink(temporary) }
        guard link(temporary, path) == 0 else {
            if errno == EEXIST { throw CredentialError.alreadyExists(path) }
            throw CredentialError.unreadable(path: path, why: "cannot record it: \(String(cString: strerror(errno)))")
        }
    }

    /// A host name that is another holder's id (say `coordinator` in someone else's request)
    /// is refused. Veil's clients check the coordinator's id itself, not its host names, so such
    /// a certificate could not pose as that holder to them; to anything else that checks names
    /// it could.
    func refuseHostsNamingHolders(_ hosts: [String], id: String) throws {
        for host in hosts where host != id {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("\(host).cert.pem").path) {
                throw CredentialError.invalidRequest("the host \(host) is another holder's id")
            }
        }
    }

    /// A holder's certificate: subject CN = id, the TLS key, Veil's role and signing-key
    /// extensions (`Specs/wire.md` §2).
    func certificate(
        id: String, role: FederationRole, tlsKey: Certificate.PublicKey, signingKey: Ed25519.PublicKey, hosts: [String],
        notValidBefore: Date?, notValidAfter: Date?
    ) throws -> Certificate {
        try Self.validate(hosts: hosts)
        let now = Date()
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: tlsKey,
            notValidBefore: notValidBefore ?? now.addingTimeInterval(-300),
            notValidAfter: notValidAfter ?? now.addingTimeInterval(Self.validity),
            issuer: self.certificate.subject, subject: try DistinguishedName { CommonName(id) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(role == .coordinator ? [.serverAuth, .clientAuth] : [.clientAuth])
                // The id is always a DNS name of the certificate: participants verify the
                // coordinator by its id, whatever address they reach it at.
                SubjectAlternativeNames([.dnsName(id)] + (role == .coordinator ? hosts.map { .dnsName($0) } : []))
                Certificate.Extension(oid: VeilExtensions.role, critical: false, value: try utf8(role.rawValue))
                Certificate.Extension(
                    oid: VeilExtensions.signingKey, critical: false, value: try octets(signingKey.rawRepresentation))
            },
            issuerPrivateKey: key)
    }

    // MARK: - Files

    /// Coordinator hosts are DNS names only. An IP address in a certificate would match any
    /// connection to that address, whatever id the client expects (NIOSSL accepts an IP
    /// subject alternative name equal to the peer's address before it looks at the server
    /// name), letting any coordinator-role certificate of the federation pass for the
    /// coordinator; Veil's clients verify the coordinator by its id, which is always a DNS name
    /// of its certificate.
    static func validate(hosts: [String]) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
        for host in hosts {
            guard IPv4Address(host) == nil, !host.contains(":") else {
                throw CredentialError.invalidRequest(
                    "\(host) is an IP address: a coordinator's certificate names DNS names only (its id always among them)"
                )
            }
            guard (1...253).contains(host.count), host.allSatisfy(allowed.contains) else {
                throw CredentialError.invalidRequest("\(host) is not a DNS name")
            }
        }
    }

    static func validate(id: String) throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
        guard (1...64).contains(id.count), id.allSatisfy(allowed.contains), id != "ca" else {
            throw CredentialError.invalidName(id)
        }
    }

    static func read(_ path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CredentialError.unreadable(path: path, why: "\(error.localizedDescription)")
        }
    }

    /// Reads a PEM certificate.
    public static func loadCertificate(_ path: String) throws -> Certificate {
        let text = try read(path)
        do { return try Certificate(pemEncoded: text) } catch {
            throw CredentialError.unreadable(path: path, why: "not a PEM certificate: \(error)")
        }
    }

    static func pem(_ certificate: Certificate) throws -> String {
        try certificate.serializeAsPEM().pemString + "\n"
    }

    /// Writes a secret file readable by its owner only, never overwriting (``SecretFile``).
    static func writeSecret(_ text: String, to url: URL) throws {
        try SecretFile.create(atPath: url.path, contents: SecureBytes(copying: Array(text.utf8)))
    }
}

func utf8(_ text: String) throws -> ArraySlice<UInt8> {
    var serializer = DER.Serializer()
    try serializer.serialize(ASN1UTF8String(text))
    return serializer.serializedBytes[...]
}

func octets(_ bytes: [UInt8]) throws -> ArraySlice<UInt8> {
    var serializer = DER.Serializer()
    try serializer.serialize(ASN1OctetString(contentBytes: bytes[...]))
    return serializer.serializedBytes[...]
}

/// A dotted IPv4 address.
struct IPv4Address {
    let bytes: [UInt8]

    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        self.bytes = bytes
    }
}
