import Foundation
import Logging
import Testing
import VeilLearning
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// Who completes a handshake with the coordinator, and who does not.
@Suite(.serialized) struct HandshakeTests {
    /// Starts a coordinator that waits for participants, runs `body` with its port, stops it.
    func withCoordinator(_ body: @Sendable (Int, URL, FederationCA) async throws -> Void) async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-handshake")
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = try FederationCA.create(in: directory)
        _ = try ca.issue(id: "coordinator", role: .coordinator)
        var serve = ServeConfiguration(tls: TLSFiles(directory: directory.path, id: "coordinator"))
        serve.port = 0
        serve.metricsPort = nil
        serve.state = directory.appendingPathComponent("state.sqlite").path
        serve.minParticipants = 50
        serve.cohortSize = 50
        serve.evaluate = nil
        // The body stops the coordinator itself; its registration must not expire first. The
        // default 300 s did, on a loaded clean-clone CI run where this test took 474 s: the
        // server closed and the second openssl connection was refused.
        serve.registrationTimeoutSeconds = 86_400
        let logger = quietLogger()
        let coordinator = try Coordinator(configuration: serve, logger: logger)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                _ = try await CoordinatorServer.run(
                    coordinator, logger: logger, ready: { portContinuation.yield($0.grpcPort) })
            }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body(port, directory, ca)
            await coordinator.stop()
            try await group.waitForAll()
        }
    }

    func agent(_ directory: URL, id: String, port: Int, tls: TLSFiles? = nil) throws -> ParticipantAgent {
        var join = JoinConfiguration(tls: tls ?? TLSFiles(directory: directory.path, id: id))
        join.port = port
        join.reconnectAttempts = 0
        let logger = quietLogger()
        let data = try Dataset(
            features: [Double](repeating: 0, count: 64), labels: [0], featureCount: 64, classCount: 10)
        return try ParticipantAgent(configuration: join, data: data, logger: logger)
    }

    @Test func opensslWithoutACertificateIsRefusedAndWithOneCompletesTLS13() async throws {
        try await withCoordinator { port, directory, ca in
            _ = try ca.issue(id: "alice", role: .participant)
            let base =
                "openssl s_client -connect 127.0.0.1:\(port) -servername coordinator -alpn h2 -CAfile \(directory.path)/ca.cert.pem"
            let anonymous = try await ProcessRunner.run("/bin/sh", ["-c", "(sleep 2) | \(base) 2>&1"])
            #expect(anonymous.stdout.contains("certificate required"), "\(anonymous.stdout)")
            let alice = try await ProcessRunner.run(
                "/bin/sh",
                [
                    "-c",
                    "(sleep 1) | \(base) -cert \(directory.path)/alice.cert.pem -key \(directory.path)/alice.key.pem 2>&1",
                ])
            #expect(alice.stdout.contains("TLSv1.3"), "\(alice.stdout)")
            #expect(!alice.stdout.contains("alert"), "\(alice.stdout)")
            #expect(alice.stdout.contains("Verify return code: 0"))
        }
    }

    @Test func certificatesFromAnotherCAOrExpiredNeverConnect() async throws {
        try await withCoordinator { port, directory, ca in
            let otherDirectory = directory.appendingPathComponent("other")
            let other = try FederationCA.create(in: otherDirectory)
            let files = try other.issue(id: "mallory", role: .participant)
            // Mallory trusts the real CA (so she can check the coordinator) but holds a foreign certificate.
            let foreign = TLSFiles(
                ca: directory.appendingPathComponent("ca.cert.pem").path, certificate: files.certificatePath,
                key: files.keyPath, signingKey: files.signingKeyPath)
            // Her own agent refuses to start with a certificate its CA did not issue…
            #expect(throws: CredentialError.self) { try agent(directory, id: "mallory", port: port, tls: foreign) }
            // …and the coordinator refuses the handshake anyway.
            let openssl = try await ProcessRunner.run(
                "/bin/sh",
                [
                    "-c",
                    "(sleep 1) | openssl s_client -connect 127.0.0.1:\(port) -servername coordinator -alpn h2 -cert \(files.certificatePath) -key \(files.keyPath) 2>&1",
                ])
            #expect(openssl.stdout.contains("alert"), "\(openssl.stdout)")
            _ = try ca.issue(
                id: "late", role: .participant, notValidBefore: Date().addingTimeInterval(-7200),
                notValidAfter: Date().addingTimeInterval(-3600))
            let expired = try await ProcessRunner.run(
                "/bin/sh",
                [
                    "-c",
                    "(sleep 1) | openssl s_client -connect 127.0.0.1:\(port) -servername coordinator -alpn h2 -cert \(directory.path)/late.cert.pem -key \(directory.path)/late.key.pem 2>&1",
                ])
            #expect(expired.stdout.contains("certificate expired"), "\(expired.stdout)")
        }
    }

    @Test func aCoordinatorCertificateCannotActAsAParticipant() async throws {
        try await withCoordinator { port, directory, ca in
            _ = try ca.issue(id: "impostor", role: .coordinator)
            // The agent itself insists on a participant certificate…
            #expect(throws: CredentialError.wrongRole(expected: .participant, actual: "coordinator")) {
                try agent(directory, id: "impostor", port: port)
            }
        }
    }

    @Test func aParticipantRegistersUnderItsCertificatesName() async throws {
        try await withCoordinator { port, directory, ca in
            _ = try ca.issue(id: "bob", role: .participant)
            let bob = try agent(directory, id: "bob", port: port)
            let task = Task { try await bob.run() }
            let store = try CoordinatorStore(path: directory.appendingPathComponent("state.sqlite").path)
            _ = try await eventually { try !store.roundsCompleted().isEmpty }
            task.cancel()
            _ = await task.result
            #expect(try store.roundsCompleted().keys.sorted() == ["bob"])
        }
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    return logger
}
