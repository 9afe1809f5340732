import Crypto
import Foundation
import SwiftASN1
import Testing
import VeilCrypto
import VeilTestSupport
import X509

@testable import VeilService

@Suite struct CertificateTests {
    func withCA(_ body: (FederationCA, URL) throws -> Void) throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-ca")
        defer { try? FileManager.default.removeItem(at: directory) }
        try body(try FederationCA.create(in: directory), directory)
    }

    @Test func issuedCertificatesBindTheIdRoleAndSigningKey() throws {
        try withCA { ca, directory in
            let files = try ca.issue(id: "alice", role: .participant)
            let certificate = try FederationCA.loadCertificate(files.certificatePath)
            let identity = try FederationIdentity(certificate: certificate, ca: ca.certificate)
            #expect(identity.id == "alice" && identity.role == .participant)
            #expect(try loadSigningKey(files.signingKeyPath).publicKey == identity.signingKey)
            for path in [files.keyPath, files.signingKeyPath, directory.appendingPathComponent("ca.key.pem").path] {
                let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(path)")
            }
            #expect(throws: CredentialError.wrongRole(expected: .coordinator, actual: "participant")) {
                try identity.requiring(.coordinator)
            }
            #expect(throws: CredentialError.alreadyExists(files.certificatePath)) {
                try ca.issue(id: "alice", role: .participant)
            }
            #expect(throws: CredentialError.self) { try FederationCA.create(in: directory) }
        }
    }

    @Test func certificatesFromAnotherCAOrOutOfDateAreRefused() throws {
        try withCA { ca, _ in
            let otherDirectory = try RepositoryPaths.temporaryDirectory("veil-ca-other")
            defer { try? FileManager.default.removeItem(at: otherDirectory) }
            let other = try FederationCA.create(in: otherDirectory)
            let foreign = try FederationCA.loadCertificate(
                try other.issue(id: "mallory", role: .participant).certificatePath)
            #expect(throws: CredentialError.notIssuedByFederation("\(foreign.subject)")) {
                try FederationIdentity(certificate: foreign, ca: ca.certificate)
            }
            let expired = try FederationCA.loadCertificate(
                try ca.issue(
                    id: "old", role: .participant, notValidBefore: Date().addingTimeInterval(-7200),
                    notValidAfter: Date().addingTimeInterval(-3600)
                ).certificatePath)
            #expect(throws: CredentialError.expired("\(expired.subject)")) {
                try FederationIdentity(certificate: expired, ca: ca.certificate)
            }
        }
    }

    @Test(arguments: ["", "ca", "a b", "../x", String(repeating: "x", count: 65), "é"])
    func badIdsAreRefused(id: String) throws {
        try withCA { ca, _ in
            #expect(throws: CredentialError.invalidName(id)) { try ca.issue(id: id, role: .participant) }
        }
    }

    @Test func opensslAgreesWithTheChainAndSeesTheExtensions() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-ca")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = try FederationCA.create(in: directory)
        do {
            let files = try ca.issue(id: "coordinator", role: .coordinator, hosts: ["localhost", "veil.example"])
            let verify = try await ProcessRunner.run(
                "/usr/bin/openssl",
                ["verify", "-CAfile", directory.appendingPathComponent("ca.cert.pem").path, files.certificatePath])
            #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(verify.stderr)")
            let text = try await ProcessRunner.run(
                "/usr/bin/openssl", ["x509", "-in", files.certificatePath, "-noout", "-text"])
            #expect(text.stdout.contains("1.3.6.1.4.1.32473.1.2") && text.stdout.contains("DNS:coordinator"))
            #expect(
                text.stdout.contains("DNS:veil.example") && !text.stdout.contains("IP Address")
                    && text.stdout.contains("TLS Web Server Authentication"))
            // An IP address would match any connection to it, whatever id the client expects.
            #expect(throws: CredentialError.self) {
                try ca.issue(id: "by-address", role: .coordinator, hosts: ["10.0.0.7"])
            }
        }
    }
}

/// Keys made where they are used (`veil ca request` on the holder, `veil ca sign` on the CA):
/// the CA folder never holds a holder's private key, and a request is signed only when both
/// keys it names are proven to be the requester's.
@Suite struct CertificateRequestTests {
    func folders() throws -> (ca: FederationCA, caDirectory: URL, holder: URL) {
        let root = try RepositoryPaths.temporaryDirectory("veil-csr")
        let ca = try FederationCA.create(in: root.appendingPathComponent("ca"))
        return (ca, root.appendingPathComponent("ca"), root.appendingPathComponent("holder"))
    }

    @Test func aRequestedCertificateBindsTheHoldersOwnKeysAndTheCAHoldsNone() throws {
        let (ca, caDirectory, holder) = try folders()
        defer { try? FileManager.default.removeItem(at: caDirectory.deletingLastPathComponent()) }
        let files = try CertificateRequest.create(id: "p1", role: .participant, hosts: [], in: holder)
        for path in [files.keyPath, files.signingKeyPath] {
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        }
        let request = try CertificateRequest(path: files.requestPath)
        #expect(request.id == "p1" && request.role == .participant && request.hosts.isEmpty)
        let (certificate, recorded) = try ca.sign(request: request, role: .participant)
        let identity = try FederationIdentity(certificate: certificate, ca: ca.certificate)
        #expect(identity.id == "p1" && identity.role == .participant)
        #expect(try loadSigningKey(files.signingKeyPath).publicKey == identity.signingKey)
        // The holder's folder works as its TLS files once the CA's certificate is copied in.
        try FileManager.default.copyItem(atPath: recorded, toPath: holder.appendingPathComponent("p1.cert.pem").path)
        try FileManager.default.copyItem(
            atPath: caDirectory.appendingPathComponent("ca.cert.pem").path,
            toPath: holder.appendingPathComponent("ca.cert.pem").path)
        #expect(try TLSFiles(directory: holder.path, id: "p1").credentials(role: .participant).identity.id == "p1")
        // The CA's folder: its own key and certificates, no holder key.
        let caFiles = try FileManager.default.contentsOfDirectory(atPath: caDirectory.path).sorted()
        #expect(caFiles == ["ca.cert.pem", "ca.key.pem", "p1.cert.pem"], "\(caFiles)")
        // An id is certified once.
        #expect(throws: CredentialError.alreadyExists(recorded)) { try ca.sign(request: request, role: .participant) }
    }

    @Test func theCASignsOnlyTheRoleItMeansAndACoordinatorsHosts() throws {
        let (ca, caDirectory, holder) = try folders()
        defer { try? FileManager.default.removeItem(at: caDirectory.deletingLastPathComponent()) }
        #expect(throws: CredentialError.self) {
            try CertificateRequest.create(id: "boss", role: .coordinator, hosts: ["10.0.0.7"], in: holder)
        }
        let files = try CertificateRequest.create(
            id: "boss", role: .coordinator, hosts: ["veil.example", "localhost"], in: holder)
        let request = try CertificateRequest(path: files.requestPath)
        #expect(throws: CredentialError.wrongRole(expected: .participant, actual: "coordinator")) {
            try ca.sign(request: request, role: .participant)
        }
        let (certificate, _) = try ca.sign(request: request, role: .coordinator)
        let names = try #require(try certificate.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("veil.example")) && names.contains(.dnsName("boss")))
        #expect(!names.contains { if case .ipAddress = $0 { return true } else { return false } })
        #expect(throws: CredentialError.self) {
            try CertificateRequest.create(id: "p2", role: .participant, hosts: ["x"], in: holder)
        }
    }

    /// A requester that puts someone else's signing key (or a key it cannot sign with) in its
    /// request: the binding does not verify, and the CA refuses. Also a tampered request.
    @Test func aRequestForSomeoneElsesSigningKeyIsRefused() throws {
        let (ca, caDirectory, holder) = try folders()
        defer { try? FileManager.default.removeItem(at: caDirectory.deletingLastPathComponent()) }
        let victim = Ed25519.PrivateKey()
        let tlsKey = P256.Signing.PrivateKey()
        let mallory = Ed25519.PrivateKey()
        // Mallory binds the victim's public key with its own signature.
        let binding = mallory.signature(
            for: try CertificateRequest.bindingMessage(
                id: "mallory", role: .participant, tlsKey: .init(tlsKey.publicKey)))
        let extensions = try Certificate.Extensions {
            Certificate.Extension(oid: VeilExtensions.role, critical: false, value: try utf8("participant"))
            Certificate.Extension(
                oid: VeilExtensions.signingKey, critical: false, value: try octets(victim.publicKey.rawRepresentation))
            Certificate.Extension(oid: VeilExtensions.signingKeyBinding, critical: false, value: try octets(binding))
        }
        let forged = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("mallory") }, privateKey: .init(tlsKey),
            attributes: .init([.init(ExtensionRequest(extensions: extensions))]), signatureAlgorithm: .ecdsaWithSHA256)
        #expect(throws: CredentialError.self) { try CertificateRequest(forged) }
        do {
            _ = try CertificateRequest(forged)
        } catch {
            #expect("\(error)".contains("the signing key's binding does not verify"), "\(error)")
        }
        // A request whose bytes were changed after signing.
        let files = try CertificateRequest.create(id: "p3", role: .participant, hosts: [], in: holder)
        var pem = try String(contentsOfFile: files.requestPath, encoding: .utf8)
        let der = try CertificateSigningRequest(pemEncoded: pem)
        var serializer = DER.Serializer()
        try serializer.serialize(der)
        var bytes = serializer.serializedBytes
        bytes[bytes.count / 2] ^= 1
        pem = PEMDocument(type: "CERTIFICATE REQUEST", derBytes: bytes).pemString
        try pem.write(toFile: files.requestPath, atomically: true, encoding: .utf8)
        #expect(throws: CredentialError.self) { try CertificateRequest(path: files.requestPath) }
        #expect(!FileManager.default.fileExists(atPath: caDirectory.appendingPathComponent("p3.cert.pem").path))
        _ = ca
    }
}

/// Secret key files: created with mode 0600 by open(2), never overwritten, never following a
/// link — so that no other user can read a key, even for an instant.
@Suite(.serialized) struct SecretFileTests {
    @Test func aSecretFileIsOwnerOnlyEvenUnderAPermissiveUmask() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-secret")
        defer { try? FileManager.default.removeItem(at: directory) }
        let old = umask(0)
        defer { umask(old) }
        // A watcher looks at every file in the folder while keys are written: none may ever be
        // readable by group or others (the review: created with the umask's mode, chmod'ed after).
        let stop = ManagedAtomicFlag()
        let exposed = ManagedAtomicFlag()
        let watcher = Thread {
            while !stop.isSet {
                for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? [] {
                    var info = stat()
                    if stat(directory.appendingPathComponent(name).path, &info) == 0, info.st_mode & 0o077 != 0 {
                        exposed.set()
                    }
                }
            }
        }
        watcher.start()
        for i in 0..<300 {
            try FederationCA.writeSecret("secret \(i)\n", to: directory.appendingPathComponent("key-\(i)"))
        }
        stop.set()
        Thread.sleep(forTimeInterval: 0.05)
        #expect(!exposed.isSet, "a secret file was readable by others while it was being written")
        for i in [0, 299] {
            let mode =
                try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("key-\(i)").path)[
                    .posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test func aSecretFileNeverOverwritesOrFollowsALink() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-secret-link")
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("elsewhere")
        let link = directory.appendingPathComponent("key.pem")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        #expect(throws: SecretFileError.exists(path: link.path)) {
            try SecretFile.create(atPath: link.path, contents: SecureBytes(copying: Array("k".utf8)))
        }
        #expect(!FileManager.default.fileExists(atPath: target.path))
        let file = directory.appendingPathComponent("existing")
        try "old".write(to: file, atomically: true, encoding: .utf8)
        #expect(throws: SecretFileError.exists(path: file.path)) {
            try SecretFile.create(atPath: file.path, contents: SecureBytes(copying: Array("new".utf8)))
        }
        #expect(try String(contentsOf: file, encoding: .utf8) == "old")
    }
}

/// A flag shared with a thread.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
