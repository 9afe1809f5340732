import Crypto
import Foundation
import Synchronization
import Testing
import VeilCrypto
import VeilTestSupport
import VeilTransport
import X509

@testable import VeilService

/// Enrolment (`Specs/wire.md` §2.3): a one-time token from the operator decides the id a
/// holder's own request is certified under. The attacks: a token used twice (also at once), for
/// another id or a stronger role, after it expired, or read back from the CA's folder; bodies
/// that are not what the endpoint takes.
@Suite struct EnrolmentTests {
    struct Fixture {
        let ca: FederationCA
        let enrolment: Enrolment
        let root: URL

        init() throws {
            root = try RepositoryPaths.temporaryDirectory("veil-enrol")
            ca = try FederationCA.create(in: root.appendingPathComponent("ca"))
            enrolment = try Enrolment(ca: ca)
        }

        /// A holder's own request, as `veil ca request` (or the browser page) makes it.
        func request(_ id: String, role: FederationRole = .participant, copy: Int = 0) throws -> (
            pem: String, signing: String
        ) {
            let folder = root.appendingPathComponent("holder-\(id)-\(role.rawValue)-\(copy)")
            let files = try CertificateRequest.create(id: id, role: role, hosts: [], in: folder)
            return (try String(contentsOfFile: files.requestPath, encoding: .utf8), files.signingKeyPath)
        }

        func body(token: String, request: String) -> [UInt8] {
            Array(try! JSONSerialization.data(withJSONObject: ["token": token, "request": request]))
        }
    }

    @Test func aTokenCertifiesItsHoldersOwnKeysOnceAndTheCAKeepsOnlyItsHash() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let token = try f.enrolment.tokens.issue(id: "browser-1", validity: 600)
        #expect(token.count == 64)
        let (pem, signingPath) = try f.request("browser-1")
        let issued = try f.enrolment.enrol(body: f.body(token: token, request: pem))
        let certificate = try Certificate(pemEncoded: issued.certificatePEM)
        let identity = try FederationIdentity(certificate: certificate, ca: f.ca.certificate)
        #expect(identity.id == "browser-1" && identity.role == .participant)
        #expect(try loadSigningKey(signingPath).publicKey == identity.signingKey)
        #expect(try Certificate(pemEncoded: issued.caPEM) == f.ca.certificate)
        // Used once: the same body again, and another request with it, are refused.
        #expect(throws: EnrolmentError.unknownToken) { try f.enrolment.enrol(body: f.body(token: token, request: pem)) }
        // Nothing in the CA's folder holds the token itself.
        let enumerator = FileManager.default.enumerator(atPath: f.ca.directory.path)!
        for case let name as String in enumerator {
            let data = FileManager.default.contents(atPath: f.ca.directory.appendingPathComponent(name).path) ?? Data()
            #expect(String(decoding: data, as: UTF8.self).range(of: token) == nil, "\(name)")
        }
    }

    @Test func aTokenIsForItsOwnIdAndForAParticipantOnly() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let token = try f.enrolment.tokens.issue(id: "alice", validity: 600)
        // Mallory's request with Alice's token, or Alice's id with a stronger role: refused
        // before the token is used, so Alice still enrols with it.
        for (id, role) in [("mallory", FederationRole.participant), ("alice", .keyHolder), ("alice", .coordinator)] {
            let (pem, _) = try f.request(id, role: role)
            #expect(throws: EnrolmentError.self) { try f.enrolment.enrol(body: f.body(token: token, request: pem)) }
        }
        #expect(!FileManager.default.fileExists(atPath: f.ca.directory.appendingPathComponent("mallory.cert.pem").path))
        let (pem, _) = try f.request("alice")
        #expect(try f.enrolment.enrol(body: f.body(token: token, request: pem)).id == "alice")
    }

    @Test func anExpiredTokenIsRefusedAndRemoved() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let token = try f.enrolment.tokens.issue(id: "late", validity: 60, now: Date().addingTimeInterval(-120))
        let (pem, _) = try f.request("late")
        #expect(throws: EnrolmentError.expiredToken) { try f.enrolment.enrol(body: f.body(token: token, request: pem)) }
        #expect(!FileManager.default.fileExists(atPath: f.enrolment.tokens.path(of: token)))
        #expect(throws: EnrolmentError.unknownToken) { try f.enrolment.enrol(body: f.body(token: token, request: pem)) }
        #expect(throws: EnrolmentError.self) { try f.enrolment.tokens.issue(id: "late", validity: 0) }
        #expect(throws: EnrolmentError.self) { try f.enrolment.tokens.issue(id: "late", validity: 31 * 86400) }
        #expect(throws: CredentialError.self) { try f.enrolment.tokens.issue(id: "ca", validity: 60) }
    }

    @Test func anIdAlreadyCertifiedGetsNeitherATokenNorACertificate() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let token = try f.enrolment.tokens.issue(id: "bob", validity: 600)
        _ = try f.ca.issue(id: "bob", role: .participant)
        let (pem, _) = try f.request("bob")
        #expect(throws: EnrolmentError.alreadyCertified("bob")) {
            try f.enrolment.enrol(body: f.body(token: token, request: pem))
        }
        #expect(FileManager.default.fileExists(atPath: f.enrolment.tokens.path(of: token)))
        #expect(throws: CredentialError.self) { try f.enrolment.tokens.issue(id: "bob", validity: 600) }
    }

    @Test func malformedBodiesAreRefusedByNameAndCostNoToken() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let token = try f.enrolment.tokens.issue(id: "carol", validity: 600)
        let (pem, _) = try f.request("carol")
        let bodies: [(String, [UInt8])] = [
            ("not JSON", Array("token=\(token)".utf8)),
            ("an array", Array("[1, 2]".utf8)),
            ("an unknown key", Array(#"{"token": "\#(token)", "request": "x", "role": "coordinator"}"#.utf8)),
            ("a number for a token", Array(#"{"token": 7, "request": "x"}"#.utf8)),
            ("no request", Array(#"{"token": "\#(token)"}"#.utf8)),
            ("not a request", f.body(token: token, request: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n")),
            ("over the limit", Array(repeating: 0x20, count: Enrolment.maxBodyBytes + 1)),
            ("a token of another shape", f.body(token: token.uppercased(), request: pem)),
            ("a token never issued", f.body(token: String(repeating: "0", count: 64), request: pem)),
        ]
        for (what, body) in bodies {
            #expect(throws: EnrolmentError.self, "\(what)") { try f.enrolment.enrol(body: body) }
        }
        // A key is the sender's text and the refusal is logged: it is never repeated (a newline
        // would forge a log line; a token sent as a key would be written down).
        let sneaky = Array(#"{"token": "\#(token)", "request": "x", "\#(token)\nFAKE enrolled": 1}"#.utf8)
        do {
            _ = try f.enrolment.enrol(body: sneaky)
            Issue.record("an unknown key was accepted")
        } catch {
            #expect(!"\(error)".contains(token) && !"\(error)".contains("FAKE"), "\(error)")
        }
        #expect(try f.enrolment.enrol(body: f.body(token: token, request: pem)).id == "carol")
    }

    /// helper-45 raced two `veil ca enrol` processes on one CA folder, each with its own token
    /// for one id: both got certificates (the record was renamed over the other). The record is
    /// now linked to its name, which fails when it exists: of concurrent signings, one wins.
    @Test func concurrentSigningsOfOneIdCertifyItOnce() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let requests = try (0..<8).map { i in
            try CertificateRequest(pemEncoded: try f.request("twin", role: .participant, copy: i).pem)
        }
        let successes = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: requests.count) { i in
            if (try? f.ca.sign(request: requests[i], role: .participant)) != nil { successes.withLock { $0 += 1 } }
        }
        #expect(successes.withLock { $0 } == 1)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: f.ca.directory.path).filter {
            $0.hasSuffix(".tmp")
        }
        #expect(leftovers.isEmpty, "\(leftovers)")
    }

    /// A refusal quotes the request's id, the sender's text: a newline or an escape sequence in
    /// it would forge a log line or repaint the operator's terminal (helper-45).
    @Test func aRefusalQuotingTheSendersTextIsOneLogLine() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let token = try f.enrolment.tokens.issue(id: "eve", validity: 600)
        let forged = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName("x\n2026-12-06 info veil.enrol: id=victim enrolled\u{1b}[2J") },
            privateKey: .init(P256.Signing.PrivateKey()), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256)
        do {
            _ = try f.enrolment.enrol(body: f.body(token: token, request: try forged.serializeAsPEM().pemString))
            Issue.record("accepted")
        } catch {
            #expect(!"\(error)".contains("\n") && !"\(error)".contains("\u{1b}"), "\(error)")
        }
    }

    @Test func allowedOriginsAreWrittenAsBrowsersSendThem() {
        #expect(WebOrigin.canonical("https://app.example") == "https://app.example")
        #expect(WebOrigin.canonical("https://app.example:8443") == "https://app.example:8443")
        #expect(WebOrigin.canonical("http://127.0.0.1:8000") == "http://127.0.0.1:8000")
        // Never sent this way by a browser, or not an origin at all: refused by `veil ca enrol`.
        #expect(WebOrigin.canonical("https://APP.example") == "https://app.example")
        for origin in [
            "https://app.example:443", "https://user@app.example", "https://app.example/", "https://app.example/x",
            "http://app.example", "https://app.example:99999", "*", "null", "app.example", "https://",
        ] {
            #expect(WebOrigin.canonical(origin) != origin, "\(origin)")
        }
    }

    @Test func aRequestWhoseBindingNamesAnotherIdIsRefused() throws {
        let f = try Fixture()
        defer { try? FileManager.default.removeItem(at: f.root) }
        let token = try f.enrolment.tokens.issue(id: "dave", validity: 600)
        // Dave's keys, but the request's signing key lifted from Erin's: its binding signature
        // is over Erin's id and TLS key, so the check of `veil ca sign` refuses it.
        let (erin, _) = try f.request("erin")
        let erinKey = try CertificateRequest(pemEncoded: erin).signingKey
        let folder = f.root.appendingPathComponent("forged")
        let tls = P256.Signing.PrivateKey()
        let extensions = try Certificate.Extensions {
            Certificate.Extension(oid: VeilExtensions.role, critical: false, value: try utf8("participant"))
            Certificate.Extension(
                oid: VeilExtensions.signingKey, critical: false, value: try octets(erinKey.rawRepresentation))
            Certificate.Extension(
                oid: VeilExtensions.signingKeyBinding, critical: false,
                value: try octets(Array(repeating: 1, count: 64)))
        }
        let forged = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("dave") }, privateKey: .init(tls),
            attributes: CertificateSigningRequest.Attributes([.init(ExtensionRequest(extensions: extensions))]),
            signatureAlgorithm: .ecdsaWithSHA256)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let pem = try forged.serializeAsPEM().pemString
        #expect(throws: EnrolmentError.self) { try f.enrolment.enrol(body: f.body(token: token, request: pem)) }
        #expect(FileManager.default.fileExists(atPath: f.enrolment.tokens.path(of: token)))
    }
}
