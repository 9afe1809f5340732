import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Testing
import VeilCrypto
import VeilLearning
import VeilTestSupport
import VeilTransport
import VeilWire
import X509

@testable import VeilService

/// A coordinator that deviates: a gRPC server holding the coordinator's real certificate and
/// keys and speaking the real wire protocol, whose every move a test scripts. Honest
/// participants (`ParticipantAgent`) and key holders (`KeyHolderAgent`) connect to it as they
/// would to `veil serve`; the test sends what it likes and reads what they answer.
final class HostileCoordinator: Sendable {
    let tls: TLSFiles
    let ca: Certificate
    let identity: FederationIdentity
    let signingKey: Ed25519.PrivateKey
    let port: Int
    private let table = PeerTable()
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let serving: Task<Void, any Error>

    /// Starts listening on a free port of 127.0.0.1 with the coordinator's files `tls`.
    init(tls: TLSFiles) async throws {
        self.tls = tls
        (ca, identity, signingKey) = try tls.credentials(role: .coordinator)
        let transport = HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: 0),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: tls.certificate, format: .pem)],
                privateKey: .file(path: tls.key, format: .pem)
            ) {
                $0.trustRoots = .certificates([.file(path: tls.ca, format: .pem)])
                $0.clientCertificateVerification = .noHostnameVerification
            },
            config: .defaults { $0.rpc.maxRequestPayloadSize = 64 << 20 })
        let server = GRPCServer(transport: transport, services: [Service(table: table, ca: ca)])
        self.server = server
        serving = Task { try await server.serve() }
        guard let address = try await server.listeningAddress?.ipv4 else {
            throw ConfigurationError("the hostile coordinator did not start")
        }
        port = address.port
    }

    deinit { server.beginGracefulShutdown() }

    /// Waits until the holders `ids` have connected and said Hello; returns their Hellos.
    @discardableResult
    func waitFor(_ ids: [String], timeout: Double = 60) async throws -> [String: Veil_V1_Hello] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let hellos = table.hellos(ids)
            if hellos.count == ids.count { return hellos }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ConfigurationError("only \(table.hellos(ids).count) of \(ids.count) connected to the hostile coordinator")
    }

    /// How many streams `id` has registered (a newer one replaces the older).
    func streamCount(_ id: String) -> Int { table.streamCount(id) }

    /// The certificate a holder connected with.
    func peer(_ id: String) -> FederationIdentity? { table.identity(id) }

    func send(_ message: Veil_V1_CoordinatorMessage, to id: String) { table.send(message, to: id) }

    /// The next message `id` sends (after its Hello), waiting up to `timeout` seconds.
    func next(from id: String, timeout: Double = 120) async throws -> Veil_V1_ParticipantMessage {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let message = table.pop(id) { return message }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw ConfigurationError("\(id) sent nothing to the hostile coordinator within \(timeout) s")
    }

    /// Tells everyone the federation is over and stops.
    func finish() {
        table.finishAll()
        server.beginGracefulShutdown()
        serving.cancel()
    }

    /// The streams of connected holders.
    final class PeerTable: @unchecked Sendable {
        struct Peer {
            let identity: FederationIdentity
            let hello: Veil_V1_Hello
            let outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
            var inbox: [Veil_V1_ParticipantMessage] = []
        }
        private let lock = NSLock()
        private var peers: [String: Peer] = [:]
        private var streams: [String: Int] = [:]

        func register(
            _ identity: FederationIdentity, _ hello: Veil_V1_Hello,
            _ outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
        ) {
            lock.withLock {
                peers[identity.id] = Peer(identity: identity, hello: hello, outbox: outbox)
                streams[identity.id, default: 0] += 1
            }
        }
        func streamCount(_ id: String) -> Int { lock.withLock { streams[id, default: 0] } }
        func append(_ message: Veil_V1_ParticipantMessage, from id: String) {
            lock.withLock { peers[id]?.inbox.append(message) }
        }
        func pop(_ id: String) -> Veil_V1_ParticipantMessage? {
            lock.withLock {
                guard var peer = peers[id], !peer.inbox.isEmpty else { return nil }
                let first = peer.inbox.removeFirst()
                peers[id] = peer
                return first
            }
        }
        func hellos(_ ids: [String]) -> [String: Veil_V1_Hello] {
            lock.withLock {
                var found: [String: Veil_V1_Hello] = [:]
                for id in ids { if let peer = peers[id] { found[id] = peer.hello } }
                return found
            }
        }
        func identity(_ id: String) -> FederationIdentity? { lock.withLock { peers[id]?.identity } }
        func send(_ message: Veil_V1_CoordinatorMessage, to id: String) {
            _ = lock.withLock { peers[id]?.outbox.yield(message) }
        }
        func finishAll() {
            let outboxes = lock.withLock { peers.values.map(\.outbox) }
            for outbox in outboxes {
                outbox.yield(.with { $0.finished = .with { $0.reason = "the hostile coordinator is done" } })
                outbox.finish()
            }
        }
    }

    struct Service: Veil_V1_Federation.SimpleServiceProtocol {
        let table: PeerTable
        let ca: Certificate

        func participate(
            request: RPCAsyncSequence<Veil_V1_ParticipantMessage, any Error>,
            response: RPCWriter<Veil_V1_CoordinatorMessage>, context: ServerContext
        ) async throws {
            guard let posix = context.transportSpecific as? HTTP2ServerTransport.Posix.Context,
                let certificate = posix.peerCertificate
            else { throw RPCError(code: .permissionDenied, message: "no certificate") }
            let identity = try FederationIdentity(certificate: certificate, ca: ca)
            let (outbox, continuation) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await message in outbox { try await response.write(message) }
                }
                group.addTask {
                    var registered = false
                    do {
                        for try await message in request {
                            if !registered, case .hello(let hello) = message.kind {
                                table.register(identity, hello, continuation)
                                continuation.yield(
                                    .with {
                                        $0.welcome = .with {
                                            $0.participantID = identity.id; $0.nextRound = 1
                                        }
                                    })
                                registered = true
                                continue
                            }
                            table.append(message, from: identity.id)
                        }
                    } catch {}
                    continuation.finish()
                }
                try await group.waitForAll()
            }
        }
    }
}

/// The double itself: an honest participant registers with it as with `veil serve`, declaring
/// its policy in Hello, and answers what it is sent.
@Suite struct HostileCoordinatorDoubleTests {
    @Test func aParticipantRegistersAndDeclaresItsPolicy() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-double")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 3
        c.partition = .iid
        let network = try NetworkSimulation(configuration: c, directory: directory)
        let coordinator = try await HostileCoordinator(tls: network.serve.tls)
        defer { coordinator.finish() }
        var join = network.participants[0].join
        join.port = coordinator.port
        join.reconnectAttempts = 0
        let agent = try ParticipantAgent(configuration: join, data: network.participants[0].data, logger: quietLogger())
        let running = Task { try await agent.run() }
        defer { running.cancel() }
        let hello = try #require(try await coordinator.waitFor([agent.identity.id])[agent.identity.id])
        #expect(hello.protocolVersion == 1 && hello.sampleCount == UInt64(network.participants[0].data.count))
        let declared = try #require(hello.policy.declared)
        #expect(declared.threatModel.adversary == .maliciousServer && declared.minimumContributors == 3)
        #expect(coordinator.peer(agent.identity.id)?.role == .participant)
        // An empty assignment is answered, with a decline that says why.
        coordinator.send(.with { $0.assignment = .with { $0.round = 9 } }, to: agent.identity.id)
        guard case .decline(let decline) = try await coordinator.next(from: agent.identity.id).kind else {
            Issue.record("no decline")
            return
        }
        #expect(decline.round == 9 && decline.code == .declineCoordinator)
    }
}
