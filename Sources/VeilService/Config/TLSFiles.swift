import Foundation
import VeilCrypto
import X509

/// The certificate files of one holder, and the federation's CA.
public struct TLSFiles: Codable, Hashable, Sendable {
    /// The federation CA's certificate (PEM).
    public var ca: String
    /// This holder's certificate (PEM).
    public var certificate: String
    /// This holder's P-256 TLS key (PEM).
    public var key: String
    /// This holder's Ed25519 signing key (hex seed).
    public var signingKey: String

    public init(ca: String, certificate: String, key: String, signingKey: String) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
        self.signingKey = signingKey
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case ca, certificate, key, signingKey }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "tls")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            ca: c.decode(String.self, forKey: .ca), certificate: c.decode(String.self, forKey: .certificate),
            key: c.decode(String.self, forKey: .key), signingKey: c.decode(String.self, forKey: .signingKey))
    }

    /// The files `veil ca issue` wrote for `id` in `directory`.
    public init(directory: String, id: String) {
        let d = URL(fileURLWithPath: directory)
        self.init(
            ca: d.appendingPathComponent("ca.cert.pem").path,
            certificate: d.appendingPathComponent("\(id).cert.pem").path,
            key: d.appendingPathComponent("\(id).key.pem").path,
            signingKey: d.appendingPathComponent("\(id).signing.key").path)
    }

    /// Loads and checks the holder's credentials: the CA certificate, this holder's certificate
    /// (issued by the CA, valid, with `role`), and the signing key it binds.
    func credentials(role: FederationRole) throws -> (
        ca: Certificate, identity: FederationIdentity, signingKey: Ed25519.PrivateKey
    ) {
        let ca = try FederationCA.loadCertificate(self.ca)
        let identity = try FederationIdentity(certificate: try FederationCA.loadCertificate(certificate), ca: ca)
            .requiring(role)
        let key = try loadSigningKey(signingKey)
        guard key.publicKey == identity.signingKey else {
            throw ConfigurationError("the signing key \(signingKey) does not match the one the certificate binds")
        }
        return (ca, identity, key)
    }

    /// Relative paths are relative to the configuration file's folder.
    func resolved(against base: URL) -> TLSFiles {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : base.appendingPathComponent(path).standardizedFileURL.path
        }
        return TLSFiles(
            ca: resolve(ca), certificate: resolve(certificate), key: resolve(key), signingKey: resolve(signingKey))
    }
}
