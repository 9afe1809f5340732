import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilPrivacy
import VeilSecAgg
import VeilTestSupport

func privateConfiguration(
    _ mode: PrivacyConfiguration.Mode, epsilon: Double, rounds: Int = 5, clients: Int = 10, fraction: Double = 1
) -> FederatedConfiguration {
    var c = FederatedConfiguration()
    c.rounds = rounds
    c.localEpochs = 5
    c.clients = clients
    c.fraction = fraction
    if clients > 10 { c.partition = .iid }
    c.privacy = PrivacyConfiguration(mode: mode, epsilon: epsilon, delta: 1e-5, clip: 1)
    return c
}

@Suite struct PrivacyTests {
    @Test(arguments: PrivacyConfiguration.Mode.allCases)
    func everyModeSpendsExactlyItsBudget(mode: PrivacyConfiguration.Mode) async throws {
        let reports = try await offCooperativePool {
            var plain = PlainSum()
            return try FederatedSimulation(configuration: privateConfiguration(mode, epsilon: 4)).run(secureSum: &plain)
        }
        let spent = reports.compactMap { $0.privacy?.epsilon }
        #expect(spent.count == 5)
        #expect(zip(spent, spent.dropFirst()).allSatisfy { $0 < $1 })
        #expect(spent.last! <= 4 && spent.last! > 3.99)
        #expect(reports.allSatisfy { $0.privacy!.released && $0.survivors == 10 })
        // Everyone takes part in every round: the coordinator's view costs the same.
        #expect(abs(reports.last!.privacy!.participantEpsilon - spent.last!) < 1e-9)
    }

    @Test func hugeEpsilonIsUniformFedAvg() throws {
        var plain = PlainSum()
        var c = privateConfiguration(.central, epsilon: 1e6, rounds: 10)
        c.evaluateEvery = 10
        let accuracy = try FederatedSimulation(configuration: c).run(secureSum: &plain).last!.accuracy!
        #expect(accuracy > 0.86)  // seed 0 reaches 0.877
    }

    @Test func privacyCostsAccuracyInOrder() async throws {
        // 100 participants (iid), everyone every round, 20 rounds: ε = 8 learns, ε = 1 barely.
        let accuracies = try await offCooperativePool {
            try [1.0, 8.0].map { epsilon in
                var plain = PlainSum()
                var c = privateConfiguration(.central, epsilon: epsilon, rounds: 20, clients: 100)
                c.evaluateEvery = 20
                return try FederatedSimulation(configuration: c).run(secureSum: &plain).last!.accuracy!
            }
        }
        #expect(accuracies[1] > 0.8 && accuracies[0] < accuracies[1], "\(accuracies)")
    }

    @Test(arguments: [PrivacyConfiguration.Mode.ddg, .skellam])
    func distributedNoiseIsTheSameThroughSecureAggregation(mode: PrivacyConfiguration.Mode) async throws {
        // Participants add the noise, so the backend cannot change the result.
        let c = privateConfiguration(mode, epsilon: 8, rounds: 3)
        let (a, b) = try await offCooperativePool {
            var plain = PlainSum()
            var secagg = SecAggSecureSum()
            return (
                try FederatedSimulation(configuration: c).run(secureSum: &plain),
                try FederatedSimulation(configuration: c).run(secureSum: &secagg)
            )
        }
        #expect(a.map(\.accuracy) == b.map(\.accuracy) && a.map(\.loss) == b.map(\.loss))
    }

    @Test func ledgerRefusesParticipantsOverBudgetAndNeverLetsThemPassIt() throws {
        var c = privateConfiguration(.central, epsilon: 4, rounds: 8)
        c.privacy!.participantBudget = 2
        c.privacy!.alertFraction = 0.5
        var plain = PlainSum()
        let reports = try FederatedSimulation(configuration: c).run(secureSum: &plain)
        let refusals = reports.flatMap { $0.privacy!.refusals }
        #expect(!refusals.isEmpty && refusals.allSatisfy { $0.contains("would be exceeded") })
        #expect(reports.allSatisfy { $0.privacy!.participantEpsilon <= 2 })
        #expect(reports.flatMap { $0.privacy!.alerts }.count == 10)  // once each
        // Once everyone is out of budget, nothing is summed or released.
        #expect(reports.last!.survivors == 0 && !reports.last!.privacy!.released)
    }

    @Test func adaptiveClippingMovesTheBound() throws {
        var c = privateConfiguration(.central, epsilon: 8, rounds: 10, clients: 100)
        c.privacy!.adaptiveQuantile = 0.5
        c.privacy!.clip = 0.05
        var plain = PlainSum()
        let clips = try FederatedSimulation(configuration: c).run(secureSum: &plain).map { $0.privacy!.clip }
        #expect(clips.first == 0.05 && clips.last! > 0.1, "\(clips)")
    }

    @Test func poissonSamplingVariesTheCohort() async throws {
        let c = privateConfiguration(.ddg, epsilon: 4, rounds: 6, clients: 100, fraction: 0.3)
        let reports = try await offCooperativePool {
            var plain = PlainSum()
            return try FederatedSimulation(configuration: c).run(secureSum: &plain)
        }
        let sizes = Set(reports.map(\.selected))
        #expect(sizes.count > 1 && sizes.allSatisfy { (10...50).contains($0) })
        let plan = try FederatedSimulation(configuration: c).privacyPlan()!
        #expect(plan.minimumParticipants == Int((30 - 4 * 21.0.squareRoot()).rounded(.down)))
        // Against the coordinator, amplification by sampling does not hold: it costs more.
        #expect(reports.last!.privacy!.participantEpsilon > reports.last!.privacy!.epsilon)
    }

    @Test func algorithmsThatDoNotSendTheFedAvgUpdateAreRefused() {
        var c = privateConfiguration(.central, epsilon: 4)
        c.algorithm = .scaffold
        #expect(throws: LearningError.privacyUnsupported(algorithm: "scaffold")) {
            try FederatedSimulation(configuration: c)
        }
    }
}
