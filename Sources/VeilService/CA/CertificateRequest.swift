import Crypto
import Foundation
import SwiftASN1
import VeilCore
import VeilCrypto
import X509

/// A holder's request for a certificate (`veil ca request`; `Specs/wire.md` §2.1): a PKCS #10
/// request whose subject is the holder's id and whose key is its P-256 TLS key (the request's
/// signature proves possession of it), with an extension request carrying Veil's role and
/// signing-key extensions and a third, the binding: the Ed25519 key's signature over
///
///     "veil/v1/ca/signing-key-binding" ‖ 0x00 ‖ LE_4(|id|) ‖ id ‖ LE_4(|role|) ‖ role ‖ SHA-256(TLS key SPKI, DER)
///
/// which proves possession of the Ed25519 key and ties it to this id, role and TLS key: nobody
/// can get someone else's signing key certified under their own name.
///
/// The keys are created where they will be used; the CA only ever sees the request.
public struct CertificateRequest: Sendable {
    public let id: String
    public let role: FederationRole
    public let tlsKey: Certificate.PublicKey
    public let signingKey: Ed25519.PublicKey
    /// Coordinators: the DNS names participants may reach it at, besides its id.
    public let hosts: [String]

    /// The files `create` writes in the holder's folder.
    public struct Files: Sendable {
        public let requestPath: String
        public let keyPath: String
        public let signingKeyPath: String
    }

    /// Creates the holder's TLS key and Ed25519 signing key (both mode 0600, never
    /// overwritten) and the request, in `directory`: `ID.key.pem`, `ID.signing.key`, `ID.csr.pem`.
    public static func create(id: String, role: FederationRole, hosts: [String], in directory: URL) throws -> Files {
        try FederationCA.validate(id: id)
        guard role == .coordinator || hosts.isEmpty else {
            throw CredentialError.invalidRequest("only a coordinator's certificate names hosts")
        }
        try FederationCA.validate(hosts: hosts)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let files = Files(
            requestPath: directory.appendingPathComponent("\(id).csr.pem").path,
            keyPath: directory.appendingPathComponent("\(id).key.pem").path,
            signingKeyPath: directory.appendingPathComponent("\(id).signing.key").path)
        for path in [files.requestPath, files.keyPath, files.signingKeyPath]
        where FileManager.default.fileExists(atPath: path) {
            throw CredentialError.alreadyExists(path)
        }
        let tlsKey = P256.Signing.PrivateKey()
        let seed = SecureBytes.random(count: Ed25519.seedByteCount)
        let signing = try Ed25519.PrivateKey(seed: seed)
        let publicKey = Certificate.PublicKey(tlsKey.publicKey)
        let binding = signing.signature(for: try bindingMessage(id: id, role: role, tlsKey: publicKey))
        let extensions = try Certificate.Extensions {
            Certificate.Extension(oid: VeilExtensions.role, critical: false, value: try utf8(role.rawValue))
            Certificate.Extension(
                oid: VeilExtensions.signingKey, critical: false, value: try octets(signing.publicKey.rawRepresentation))
            Certificate.Extension(oid: VeilExtensions.signingKeyBinding, critical: false, value: try octets(binding))
            if !hosts.isEmpty { SubjectAlternativeNames(hosts.map { GeneralName.dnsName($0) }) }
        }
        let request = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(id) }, privateKey: .init(tlsKey),
            attributes: CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256)
        try FederationCA.writeSecret(tlsKey.pemRepresentation, to: URL(fileURLWithPath: files.keyPath))
        try FederationCA.writeSecret(
            Hex.encode(seed.unsafeExposedBytes()) + "\n", to: URL(fileURLWithPath: files.signingKeyPath))
        try (try request.serializeAsPEM().pemString + "\n").write(
            toFile: files.requestPath, atomically: true, encoding: .utf8)
        return files
    }

    /// The bytes the signing key signs.
    static func bindingMessage(id: String, role: FederationRole, tlsKey: Certificate.PublicKey) throws -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/ca/signing-key-binding".utf8) + [0])
        writer.blob(Array(id.utf8))
        writer.blob(Array(role.rawValue.utf8))
        var serializer = DER.Serializer()
        try serializer.serialize(tlsKey)
        writer.raw(SHA256.hash(serializer.serializedBytes))
        return writer.bytes
    }

    /// Reads and checks a request file.
    /// - Throws: ``CredentialError/invalidRequest(_:)`` naming what does not check.
    public init(path: String) throws {
        try self.init(pemEncoded: try FederationCA.read(path), source: path)
    }

    /// Reads and checks a request given as PEM text (an enrolment's, `Specs/wire.md` §2.3).
    /// - Throws: ``CredentialError/invalidRequest(_:)`` naming what does not check.
    public init(pemEncoded text: String) throws {
        try self.init(pemEncoded: text, source: nil)
    }

    /// `source`: the file the text came from, for the refusal.
    private init(pemEncoded text: String, source: String?) throws {
        let request: CertificateSigningRequest
        do { request = try CertificateSigningRequest(pemEncoded: text) } catch {
            throw CredentialError.invalidRequest(
                "\(source.map { "\($0) is" } ?? "it is") not a PEM certificate request: \(error)")
        }
        try self.init(request)
    }

    init(_ request: CertificateSigningRequest) throws {
        func refuse(_ why: String) -> CredentialError { .invalidRequest(why) }
        guard P256.Signing.PublicKey(request.publicKey) != nil, request.signatureAlgorithm == .ecdsaWithSHA256 else {
            throw refuse("the TLS key must be P-256, the request signed with ECDSA and SHA-256")
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw refuse("its signature does not verify: whoever made it does not hold the TLS key")
        }
        guard let id = request.subject.commonName else { throw refuse("the subject has no common name") }
        try FederationCA.validate(id: id)
        guard let extensions = try? request.attributes.extensionRequest?.extensions else {
            throw refuse("it has no extension request")
        }
        guard let roleExtension = extensions[oid: VeilExtensions.role],
            let role = FederationRole(rawValue: try String(ASN1UTF8String(derEncoded: roleExtension.value)))
        else { throw refuse("it names no Veil role") }
        guard let keyExtension = extensions[oid: VeilExtensions.signingKey],
            let signingKey = try? Ed25519.PublicKey(
                rawRepresentation: Array(try ASN1OctetString(derEncoded: keyExtension.value).bytes))
        else { throw refuse("it carries no 32-byte Ed25519 signing key") }
        guard let bindingExtension = extensions[oid: VeilExtensions.signingKeyBinding] else {
            throw refuse("it carries no signing-key binding")
        }
        let binding = Array(try ASN1OctetString(derEncoded: bindingExtension.value).bytes)
        guard
            signingKey.isValidSignature(
                binding, for: try Self.bindingMessage(id: id, role: role, tlsKey: request.publicKey))
        else {
            throw refuse(
                "the signing key's binding does not verify: it was not made with that key for \(id) as \(role.rawValue)"
            )
        }
        var hosts: [String] = []
        if let names = try? extensions.subjectAlternativeNames {
            for name in names {
                guard case .dnsName(let host) = name else { throw refuse("a host must be a DNS name") }
                hosts.append(host)
            }
        }
        guard role == .coordinator || hosts.isEmpty else {
            throw refuse("only a coordinator's certificate names hosts")
        }
        self.id = id
        self.role = role
        self.tlsKey = request.publicKey
        self.signingKey = signingKey
        self.hosts = hosts
    }
}
