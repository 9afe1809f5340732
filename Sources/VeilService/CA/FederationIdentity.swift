import Foundation
import SwiftASN1
import VeilCrypto
import X509

/// What a federation certificate says about its holder, once checked against the CA.
public struct FederationIdentity: Hashable, Sendable {
    /// The subject's common name: the participant or coordinator id.
    public let id: String
    public let role: FederationRole
    /// The Ed25519 key the holder signs protocol messages with.
    public let signingKey: Ed25519.PublicKey
    /// The certificate, DER.
    public let certificateDER: [UInt8]
    /// When the certificate expires.
    public let notValidAfter: Date

    /// Reads and checks a certificate: issued (signed) by `ca`, valid at `now`, with Veil's
    /// role and signing-key extensions.
    public init(certificate: Certificate, ca: Certificate, now: Date = Date()) throws {
        guard certificate.issuer == ca.subject, ca.publicKey.isValidSignature(certificate.signature, for: certificate)
        else {
            throw CredentialError.notIssuedByFederation("\(certificate.subject)")
        }
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else {
            throw CredentialError.expired("\(certificate.subject)")
        }
        // RFC 5280 §4.2: a critical extension not understood makes the certificate unusable
        // (the browser's x509.js refuses it the same way).
        if let unknown = certificate.extensions.first(where: {
            $0.critical && !Self.understoodExtensions.contains($0.oid)
        }) {
            throw CredentialError.unhandledCriticalExtension(subject: "\(certificate.subject)", oid: "\(unknown.oid)")
        }
        guard let name = certificate.subject.commonName else {
            throw CredentialError.missingExtension("subject common name")
        }
        guard let roleExtension = certificate.extensions[oid: VeilExtensions.role],
            let role = FederationRole(rawValue: try String(ASN1UTF8String(derEncoded: roleExtension.value)))
        else {
            throw CredentialError.missingExtension("role")
        }
        guard let keyExtension = certificate.extensions[oid: VeilExtensions.signingKey] else {
            throw CredentialError.missingExtension("signing key")
        }
        let raw = Array(try ASN1OctetString(derEncoded: keyExtension.value).bytes)
        guard let key = try? Ed25519.PublicKey(rawRepresentation: raw) else {
            throw CredentialError.missingExtension("signing key (32 bytes)")
        }
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        self.id = name
        self.role = role
        self.signingKey = key
        self.certificateDER = serializer.serializedBytes
        self.notValidAfter = certificate.notValidAfter
    }

    /// The extensions whose meaning is known here, critical or not: basic constraints, key
    /// usage, extended key usage, subject alternative name, the two key identifiers, and
    /// Veil's role and signing key.
    static let understoodExtensions: Set<ASN1ObjectIdentifier> = [
        [2, 5, 29, 19], [2, 5, 29, 15], [2, 5, 29, 37], [2, 5, 29, 17], [2, 5, 29, 14], [2, 5, 29, 35],
        VeilExtensions.role, VeilExtensions.signingKey,
    ]

    /// Parses a DER certificate and checks it as above.
    public init(der: [UInt8], ca: Certificate, now: Date = Date()) throws {
        let certificate: Certificate
        do { certificate = try Certificate(derEncoded: der) } catch {
            throw CredentialError.notIssuedByFederation("an unparseable certificate")
        }
        try self.init(certificate: certificate, ca: ca, now: now)
    }

    /// Requires a role.
    public func requiring(_ role: FederationRole) throws -> FederationIdentity {
        guard self.role == role else { throw CredentialError.wrongRole(expected: role, actual: self.role.rawValue) }
        return self
    }
}

extension DistinguishedName {
    /// The first common name.
    var commonName: String? {
        for rdn in self {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                return String(attribute.value) ?? String(describing: attribute.value)
            }
        }
        return nil
    }
}
