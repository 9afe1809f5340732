import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import Testing
import VeilLearning
import VeilTestSupport
import VeilWire

@testable import VeilService

/// Participants that misbehave on the wire: each costs only itself.
@Suite(.serialized) struct HostileParticipantTests {
    /// A participant with a valid certificate that sends whatever `reply` says to each assignment.
    func rogue(
        directory: URL, id: String, port: Int,
        reply: @escaping @Sendable (Veil_V1_RoundAssignment) -> Veil_V1_ParticipantMessage
    ) async throws -> String {
        let tls = TLSFiles(directory: directory.path, id: id)
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: tls.certificate, format: .pem)],
                privateKey: .file(path: tls.key, format: .pem)
            ) { $0.trustRoots = .certificates([.file(path: tls.ca, format: .pem)]) },
            config: .defaults { $0.http2.authority = "coordinator" })
        return try await withGRPCClient(transport: transport) { client in
            let federation = Veil_V1_Federation.Client(wrapping: client)
            let (outbound, continuation) = AsyncStream.makeStream(of: Veil_V1_ParticipantMessage.self)
            continuation.yield(.with { $0.hello = .with { $0.protocolVersion = 1 } })
            do {
                return try await federation.participate(
                    request: StreamingClientRequest { writer in
                        for await message in outbound { try await writer.write(message) }
                    }
                ) { response in
                    var seen: [String] = []
                    for try await message in response.messages {
                        switch message.kind {
                        case .assignment(let a): continuation.yield(reply(a))
                        case .failure(let f): seen.append("failure \(f.code): \(f.message)")
                        case .finished: continuation.finish(); return seen.joined(separator: "\n")
                        default: break
                        }
                    }
                    continuation.finish()
                    return seen.joined(separator: "\n")
                }
            } catch {
                continuation.finish()
                return "stream failed: \(error)"
            }
        }
    }

    func federation(extra: String) throws -> (NetworkSimulation, URL) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-hostile")
        var c = FederatedConfiguration()
        c.clients = 3
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        network.serve.port = try freeTCPPort()
        network.serve.minParticipants = 4
        network.serve.cohortSize = 4
        network.serve.maxMessageBytes = 1 << 20
        _ = try FederationCA(directory: directory).issue(id: extra, role: .participant)
        return (network, directory)
    }

    @Test func aGarbageProtocolMessageDropsOnlyItsSender() async throws {
        let (network, directory) = try federation(extra: "rogue")
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = network.serve.port
        async let summary = network.run(logger: quietLogger())
        #expect(await waitUntilListening(port: port))
        let seen = try await rogue(directory: directory, id: "rogue", port: port) { a in
            .with {
                $0.secagg = .with {
                    $0.round = a.round; $0.signed = Data(repeating: 0xAB, count: 100)
                }
            }
        }
        let result = try await summary
        #expect(result.completedRounds == 2)
        #expect(result.rounds.allSatisfy { $0.cohort == 4 && $0.survivors == 3 })
        #expect(seen.contains("failureDropped"), "\(seen)")
    }

    @Test func anOversizedMessageClosesOnlyItsSendersStream() async throws {
        let (network, directory) = try federation(extra: "flooder")
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = network.serve.port
        async let summary = network.run(logger: quietLogger())
        #expect(await waitUntilListening(port: port))
        let seen = try await rogue(directory: directory, id: "flooder", port: port) { a in
            .with {
                $0.decline = .with {
                    $0.round = a.round; $0.reason = String(repeating: "x", count: 2 << 20)
                }
            }
        }
        #expect(seen.hasPrefix("stream failed"), "\(seen)")
        // The coordinator still serves, the honest three are still connected: the flooder may
        // come back (the federation needs four) and decline, and both rounds complete.
        #expect(await waitUntilListening(port: port))
        let again = try await rogue(directory: directory, id: "flooder", port: port) { a in
            .with {
                $0.decline = .with {
                    $0.round = a.round; $0.reason = "cannot train now"
                }
            }
        }
        #expect(!again.hasPrefix("stream failed"), "\(again)")
        let result = try await summary
        #expect(result.completedRounds == 2)
    }
}
