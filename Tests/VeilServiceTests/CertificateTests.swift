import Foundation
import Testing
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

    @Test func opensslAgreesWithTheChainAndSeesTheExtensions() throws {
        try withCA { ca, directory in
            let files = try ca.issue(id: "coordinator", role: .coordinator, hosts: ["localhost", "10.0.0.7"])
            let verify = try ProcessRunner.run(
                "/usr/bin/openssl",
                ["verify", "-CAfile", directory.appendingPathComponent("ca.cert.pem").path, files.certificatePath])
            #expect(verify.status == 0 && verify.stdout.contains("OK"), "\(verify.stderr)")
            let text = try ProcessRunner.run(
                "/usr/bin/openssl", ["x509", "-in", files.certificatePath, "-noout", "-text"])
            #expect(text.stdout.contains("1.3.6.1.4.1.32473.1.2") && text.stdout.contains("DNS:coordinator"))
            #expect(
                text.stdout.contains("IP Address:10.0.0.7") && text.stdout.contains("TLS Web Server Authentication"))
        }
    }
}
