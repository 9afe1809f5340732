import Foundation
import Synchronization
import Testing
import VeilCore
import VeilLearning
import VeilWire

@testable import VeilService

/// A hostile aggregator's retry hint (`Specs/wire.md` §6.3): `FAILURE_OVERLOADED` is the one
/// message a coordinator sends that steers where a participant connects next. A liar must not
/// be able to park the participant, flood it with addresses, or use up its reconnect attempts
/// so that it leaves the federation.
@Suite struct RetryHintTests {
    /// A coordinator scripted at the message level: each address either refuses with a hint,
    /// fails to connect (as a TLS handshake with a non-federation certificate does), or
    /// finishes the federation.
    final class ScriptedLink: CoordinatorLink {
        enum Behaviour: Sendable {
            case overloaded(Veil_V1_Failure)
            case unreachable
            case finished
        }
        let script: @Sendable (String) -> Behaviour
        let tried = Mutex<[String]>([])

        init(_ script: @escaping @Sendable (String) -> Behaviour) { self.script = script }

        func open<Result: Sendable>(
            tls: TLSFiles, host: String, port: Int, coordinator: String, hello: Veil_V1_Hello,
            body: @escaping Session<Result>
        ) async throws -> Result {
            let address = "\(host):\(port)"
            tried.withLock { $0.append(address) }
            let messages: [Veil_V1_CoordinatorMessage]
            switch script(address) {
            case .unreachable: throw ParticipantError.session("\(address): handshake refused")
            case .overloaded(let failure): messages = [.with { $0.failure = failure }]
            case .finished: messages = [.with { $0.finished = .with { $0.reason = "all rounds completed" } }]
            }
            let stream = AsyncThrowingStream<Veil_V1_CoordinatorMessage, any Error> { continuation in
                for message in messages { continuation.yield(message) }
                continuation.finish()
            }
            return try await body(stream, { _ in })
        }
    }

    static func agent(reconnectAttempts: Int) throws -> (ParticipantAgent, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("veil-hint-\(UUID().uuidString)")
        let ca = try FederationCA.create(in: directory)
        _ = try ca.issue(id: "p1", role: .participant)
        var join = JoinConfiguration(tls: TLSFiles(directory: directory.path, id: "p1"))
        join.host = "aggregator"
        join.port = 1
        join.failoverAddresses = ["home:2"]
        join.reconnectAttempts = reconnectAttempts
        join.reportResources = false
        let data = try Dataset(features: [0.5, 0.25], labels: [1], featureCount: 2, classCount: 2)
        return (try ParticipantAgent(configuration: join, data: data), directory)
    }

    /// The liar hints ten addresses that do not hold the coordinator's certificate and one that
    /// is not an address, and asks for a wait of 49 days: the participant tries at most eight,
    /// none of their failures counts against its single reconnect attempt, and it goes on
    /// to its own address list, where the federation finishes.
    @Test func aLyingHintCannotParkTheParticipantNorUseUpItsReconnectAttempts() async throws {
        let (agent, directory) = try Self.agent(reconnectAttempts: 1)
        defer { try? FileManager.default.removeItem(at: directory) }
        let hint = Veil_V1_Failure.with {
            $0.code = .failureOverloaded
            $0.message = "full"
            $0.retryAfterMillis = 50
            $0.retryAddresses = ["not an address"] + (0..<10).map { "evil\($0):666" }
        }
        let link = ScriptedLink { address in
            switch address {
            case "aggregator:1": .overloaded(hint)
            case "home:2": .finished
            default: .unreachable
            }
        }
        let summary = try await agent.run(over: link)
        #expect(summary.finishedReason == "all rounds completed")
        let tried = link.tried.withLock { $0 }
        #expect(tried == ["aggregator:1"] + (0..<7).map { "evil\($0):666" } + ["home:2"], "\(tried)")
    }

    @Test func aHintIsCappedAtAMinuteAndEightAddresses() {
        let hint = RetryHint(
            .with {
                $0.retryAfterMillis = .max
                $0.retryAddresses = ["[::1", "a:0", "b:70000"] + (0..<12).map { "h\($0):1" }
            })
        #expect(hint.after == .seconds(60))
        // The first eight entries only, the malformed among them dropped.
        #expect(hint.addresses.map { "\($0.host):\($0.port)" } == (0..<5).map { "h\($0):1" })
    }
}
