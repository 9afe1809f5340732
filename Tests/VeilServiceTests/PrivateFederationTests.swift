import Foundation
import Testing
import VeilLearning
import VeilPrivacy
import VeilTestSupport

@testable import VeilService

/// Central differential privacy in the service: participants clip, the coordinator adds the
/// calibrated noise, and the ledger in its store keeps each participant within its budget.
@Suite(.serialized) struct PrivateFederationTests {
    func federation(rounds: Int, privacy: ServicePrivacy) throws -> (NetworkSimulation, URL) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-private-federation")
        var c = FederatedConfiguration()
        c.clients = 4
        c.rounds = rounds
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        network.serve.privacy = privacy
        return (network, directory)
    }

    @Test func theNoiseIsAddedAndEveryContributorIsCharged() async throws {
        var accuracies: [Double: Double] = [:]
        for epsilon in [1e4, 0.05] {
            let (network, directory) = try federation(rounds: 3, privacy: ServicePrivacy(epsilon: epsilon))
            defer { try? FileManager.default.removeItem(at: directory) }
            let summary = try await network.run(logger: quietLogger())
            #expect(summary.completedRounds == 3 && summary.stopReason == nil)
            accuracies[epsilon] = summary.finalAccuracy ?? 0
            // Everyone contributed to all three rounds: each has spent what the run was calibrated
            // to, just within the target (calibration rounds the noise up).
            let ledger = try #require(try CoordinatorStore(path: network.serve.state).ledger())
            #expect(ledger.balances.count == 4)
            for (participant, spent) in ledger.balances {
                #expect(spent <= epsilon && spent > 0.99 * epsilon, "\(participant) spent \(spent) of \(epsilon)")
            }
            let last = try #require(summary.rounds.last?.epsilon)
            #expect(last == ledger.balances.map(\.epsilon).max())
            #expect(summary.rounds.allSatisfy { $0.budgetRefusals.isEmpty })
        }
        // ε = 10⁴ is almost noiseless; at ε = 0.05 the noise (z ≈ 10² per unit of clip) drowns
        // four clipped updates, and the model is no better than chance.
        #expect(accuracies[1e4]! > 0.6, "\(accuracies)")
        #expect(accuracies[0.05]! < 0.35, "\(accuracies)")
    }

    @Test func aParticipantOverItsBudgetIsNotSelectedAndIsToldWhy() async throws {
        // The budget is what two of the four rounds cost: after two rounds nobody may go on.
        var privacy = ServicePrivacy(epsilon: 8)
        let central = try CentralPrivacy(privacy, rounds: 4)
        var two = RDPAccountant()
        two.compose(central.participation)
        two.compose(central.participation)
        let budget = two.epsilon(delta: privacy.delta).epsilon * 1.000001
        privacy.participantBudget = budget
        privacy.alertFraction = 0.5
        let (network, directory) = try federation(rounds: 4, privacy: privacy)
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quietLogger())

        #expect(summary.completedRounds == 2)
        #expect(summary.stopReason?.hasPrefix("the privacy budgets are spent") == true, "\(summary.stopReason ?? "")")
        // Each participant passes half its budget once, and is told, once, why it is left out.
        let alerted = summary.rounds.flatMap(\.budgetAlerts)
        #expect(alerted.count == 4 && Set(alerted).count == 4, "\(alerted)")
        #expect(summary.participants.count == 4)
        for p in summary.participants {
            #expect(p.roundsCompleted == 2)
            #expect(p.privacyNotice?.contains("\(p.id) is not selected: its privacy budget") == true, "\(p)")
            #expect(p.finishedReason == summary.stopReason)
        }
        let ledger = try #require(try CoordinatorStore(path: network.serve.state).ledger())
        #expect(ledger.balances.allSatisfy { $0.epsilon <= budget && $0.epsilon > 0.999 * budget })

        // The budget is a promise: a coordinator configured with another one refuses the store.
        var changed = network.serve
        changed.privacy?.participantBudget = budget * 2
        #expect(throws: ConfigurationError.self) { try Coordinator(configuration: changed, logger: quietLogger()) }
        _ = try Coordinator(configuration: network.serve, logger: quietLogger())
    }
}
