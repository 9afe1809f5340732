import Foundation
import Logging
import Testing
import VeilLearning
import VeilTestSupport

@testable import VeilService

/// Federations over loopback with real mutual TLS: the coordinator and participants of
/// `veil serve` and `veil join`, in this process.
@Suite(.serialized) struct FederationTests {
    func federation(clients: Int = 4, rounds: Int = 3, _ body: (inout NetworkSimulation) throws -> Void = { _ in })
        throws -> (NetworkSimulation, URL)
    {
        let directory = try RepositoryPaths.temporaryDirectory("veil-federation")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = rounds
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 5)
        try body(&network)
        return (network, directory)
    }

    var quiet: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    @Test func aFederationCompletesOverMutualTLS() async throws {
        let (network, directory) = try federation()
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 3 && summary.attempts == 3)
        #expect(summary.rounds.allSatisfy { $0.completed && $0.survivors == 4 && $0.bytesIn > 0 && $0.bytesOut > 0 })
        #expect((summary.finalAccuracy ?? 0) > 0.6)
        let store = try CoordinatorStore(path: network.serve.state)
        #expect(try store.journalMode == "wal")
        #expect(try store.rounds().map(\.outcome) == ["completed", "completed", "completed"])
        #expect(try store.latestCheckpoint()?.round == 3)
        #expect(try store.roundsCompleted().values.allSatisfy { $0 == 3 })
    }

    @Test func aParticipantKilledMidRoundIsADropoutAndTheRoundCompletes() async throws {
        // Participant 3 sends its keys in round 2, then goes silent for good.
        let (network, directory) = try federation(clients: 4, rounds: 3) { network in
            network.serve.minParticipants = 3
            network.serve.cohortSize = 4
            network.failures = [2: (round: 2, messages: 1)]
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 3)
        let second = try #require(summary.rounds.first { $0.number == 2 })
        #expect(second.completed && second.cohort == 4 && second.survivors == 3)
        let third = try #require(summary.rounds.first { $0.number == 3 })
        #expect(third.cohort == 3 && third.survivors == 3)
    }
}
