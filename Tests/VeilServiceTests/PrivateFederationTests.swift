import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilPrivacy
import VeilSecAgg
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// Central differential privacy in the service: participants clip, the coordinator adds the
/// calibrated noise, and the ledger in its store keeps each participant within its budget.
@Suite(.serialized) struct PrivateFederationTests {
    func federation(rounds: Int, privacy: ServicePrivacy, clients: Int = 4, deadline: Double = 10) throws -> (
        NetworkSimulation, URL
    ) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-private-federation")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = rounds
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: deadline)
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

    @Test(arguments: [ServicePrivacy.Mode.ddg, .skellam])
    func distributedNoiseComesFromTheParticipants(mode: ServicePrivacy.Mode) async throws {
        var accuracies: [Double: Double] = [:]
        for epsilon in [200.0, 0.05] {
            var privacy = ServicePrivacy(epsilon: epsilon, mode: mode)
            privacy.minContributors = 3
            let (built, directory) = try federation(rounds: 3, privacy: privacy)
            var network = built
            defer { try? FileManager.default.removeItem(at: directory) }
            // Each participant keeps its own ledger, with a budget that does not bind here.
            for i in network.participants.indices {
                network.participants[i].join.privacyBudget = ParticipantBudget(
                    epsilon: 1e6, ledger: directory.appendingPathComponent("ledger-\(i).json").path)
            }
            let summary = try await network.run(logger: quietLogger())
            #expect(summary.completedRounds == 3 && summary.rounds.allSatisfy { $0.survivors == 4 })
            accuracies[epsilon] = summary.finalAccuracy ?? 0
            let ledger = try #require(try CoordinatorStore(path: network.serve.state).ledger())
            #expect(ledger.balances.count == 4)
            for (participant, spent) in ledger.balances {
                #expect(spent <= epsilon && spent > 0.99 * epsilon, "\(participant) spent \(spent) of \(epsilon)")
                // The participant computed the cost from the plan it ran, and agrees.
                let own = try #require(summary.participants.first { $0.id == participant }?.privacySpent)
                #expect(abs(own - spent) <= 1e-9 * spent, "\(participant): \(own) vs \(spent)")
            }
        }
        #expect(accuracies[200]! > 0.6, "\(accuracies)")
        #expect(accuracies[0.05]! < 0.35, "\(accuracies)")
    }

    /// A coordinate subset under differential privacy (Specs/export.md §5.4): each participant
    /// clips its k scaled values to C after scaling; the coordinator's noise (central) or the
    /// round's mechanism for k values (distributed, costing no more than a whole round at any
    /// order) makes the release private; and with distributed noise every participant charges
    /// itself what the plan it ran costs, which the coordinator's ledger agrees with, within
    /// the run's ε. Adaptive: at 1 kb/s a round of 1,024 or 512 padded values in Z_2^20 takes
    /// more than the 10 s deadline, 256 (k = 163, a quarter) fits.
    @Test(arguments: [(ServicePrivacy.Mode.central, false), (.ddg, false), (.ddg, true)])
    func aCoordinateSubsetRunsUnderDifferentialPrivacy(mode: ServicePrivacy.Mode, adaptive: Bool) async throws {
        let epsilon = 200.0
        var privacy = ServicePrivacy(epsilon: epsilon, mode: mode)
        if mode != .central { privacy.minContributors = 3 }
        let (built, directory) = try federation(rounds: 3, privacy: privacy)
        var network = built
        defer { try? FileManager.default.removeItem(at: directory) }
        if adaptive {
            network.serve.adaptiveCompression = ServiceAdaptiveCompression(minSubset: 0.125)
            for i in network.participants.indices { network.participants[i].join.linkBitsPerSecond = 1000 }
        } else {
            network.serve.subset = 0.25
        }
        if mode != .central {
            for i in network.participants.indices {
                network.participants[i].join.privacyBudget = ParticipantBudget(
                    epsilon: 1e6, ledger: directory.appendingPathComponent("ledger-\(i).json").path)
            }
        }
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 3 && summary.rounds.allSatisfy { $0.survivors == 4 }, "\(summary)")
        #expect(summary.rounds.allSatisfy { abs(($0.subsetFraction ?? 0) - 163.0 / 650) < 1e-9 })
        #expect((summary.finalAccuracy ?? 0) > 0.5, "\(summary.finalAccuracy ?? 0)")
        let ledger = try #require(try CoordinatorStore(path: network.serve.state).ledger())
        #expect(ledger.balances.count == 4)
        for (participant, spent) in ledger.balances {
            #expect(spent <= epsilon && spent > 0, "\(participant) spent \(spent) of \(epsilon)")
            if mode != .central {
                let own = try #require(summary.participants.first { $0.id == participant }?.privacySpent)
                #expect(abs(own - spent) <= 1e-9 * spent, "\(participant): \(own) vs \(spent)")
            }
        }
    }

    @Test func aParticipantDeclinesRoundsBeyondItsOwnBudget() async throws {
        var privacy = ServicePrivacy(epsilon: 20, mode: .ddg)
        privacy.minContributors = 3
        let (built, directory) = try federation(rounds: 3, privacy: privacy)
        var network = built
        defer { try? FileManager.default.removeItem(at: directory) }
        // The mechanism the coordinator will calibrate, and what one round of it costs.
        let plan = try ServicePrivacyPlan(
            privacy, rounds: 3, updateLength: 650, minParticipants: network.serve.minParticipants,
            cohortSize: network.serve.cohortSize)
        let one = try #require(plan.distributed.map(ServicePrivacyPlan.participation))
        let oneRound = one.epsilon(delta: 1e-5).epsilon
        let ledgerFile = directory.appendingPathComponent("ledger-last.json")
        // The last participant's own budget allows one round, the coordinator's all three.
        network.participants[3].join.privacyBudget = ParticipantBudget(
            epsilon: oneRound * 1.000001, ledger: ledgerFile.path)
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 3)
        #expect(summary.rounds.map(\.survivors) == [4, 3, 3])
        let last = try #require(summary.participants.first { $0.id == "participant-4" })
        #expect(last.roundsCompleted == 1)
        #expect(abs((last.privacySpent ?? 0) - oneRound) <= 1e-9 * oneRound)
        // The ledger file survives the participant: a restarted one starts from it.
        let reloaded = try ParticipantLedger(
            ParticipantBudget(epsilon: oneRound * 1.000001, ledger: ledgerFile.path))
        #expect(abs(reloaded.spent(last.id) - oneRound) <= 1e-9 * oneRound)
        #expect(throws: ParticipantError.self) { try reloaded.admit(last.id, one) }
    }

    @Test func aRoundThatCannotReachItsNoiseSharesIsGivenUp() async throws {
        // Five noise shares per sum, four participants: no round can start, and after two
        // attempts the federation gives up instead of trying forever.
        var privacy = ServicePrivacy(epsilon: 8, mode: .ddg)
        privacy.minContributors = 5
        let (built, directory) = try federation(rounds: 2, privacy: privacy)
        defer { try? FileManager.default.removeItem(at: directory) }
        var network = built
        network.serve.cohortSize = 5
        network.serve.maxRoundAttempts = 2
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.gaveUp && summary.completedRounds == 0 && summary.attempts == 2)
        #expect(summary.stopReason?.contains("round 1 was aborted 2 times in a row") == true, "\(summary)")
        #expect(summary.stopReason?.contains("exceeds the cohort of 4") == true)
        #expect(summary.participants.allSatisfy { $0.finishedReason == summary.stopReason })
    }

    @Test func moreNoiseSharesThanASparseGraphCanRequireTakeTheCompleteGraph() async throws {
        // 60 participants: the recommended SecAgg+ graph is sparse, so a threshold of 60 — every
        // share in every sum — needs the complete graph.
        let threat = try ThreatModel(
            adversary: .honestButCuriousServer, corruptFraction: 0.05, dropoutFraction: 0.1, securityBits: 40)
        let sparse = try SecAggParameters.recommended(
            clientCount: 60, bitWidth: BitWidth(20), dimension: 1024, threatModel: threat)
        #expect(sparse.neighborCount + 1 < 60)
        var privacy = ServicePrivacy(epsilon: 8, mode: .skellam)
        privacy.minContributors = 60
        // Sixty participants on two shared cores: a generous deadline, and the completed attempt
        // is the one that counts (CI once saw the first attempt miss the 10 s deadline).
        let (built, directory) = try federation(rounds: 1, privacy: privacy, clients: 60, deadline: 40)
        defer { try? FileManager.default.removeItem(at: directory) }
        var network = built
        network.serve.evaluate = nil
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 1, "\(summary.stopReason ?? "")")
        #expect(summary.rounds.last?.completed == true && summary.rounds.last?.survivors == 60, "\(summary.rounds)")
    }

    @Test func theRotationAndTheMechanismTravelInThePlan() throws {
        var privacy = ServicePrivacy(epsilon: 4, mode: .skellam)
        privacy.minContributors = 5
        let plan = try ServicePrivacyPlan(privacy, rounds: 10, updateLength: 650, minParticipants: 5, cohortSize: 8)
        let mechanism = try #require(plan.distributed)
        let message = plan.plan(mechanism)
        #expect(try ServicePrivacyPlan.mechanism(message) == mechanism)
        #expect(try ServicePrivacyPlan.rotation(message) == ServicePrivacyPlan.rotation(message))
        #expect(try ServicePrivacyPlan.rotation(message) != ServicePrivacyPlan.rotation(plan.plan(mechanism)))
        var bad = message
        bad.noise = "laplace"
        #expect(throws: ConfigurationError.self) { try ServicePrivacyPlan.mechanism(bad) }
        bad = message
        bad.unitLocalStddev = 0
        #expect(throws: (any Error).self) { try ServicePrivacyPlan.mechanism(bad) }
        bad = message
        bad.rotationSeed = Data(count: 16)
        #expect(throws: ConfigurationError.self) { try ServicePrivacyPlan.rotation(bad) }
    }

    @Test func aParticipantWithABudgetIsNotSelectedForRoundsItCannotCost() async throws {
        // No privacy plan: the participant with a budget of its own declared that it needs one
        // (it would decline with ε = ∞), so the coordinator leaves it out of every cohort.
        let directory = try RepositoryPaths.temporaryDirectory("veil-private-federation")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 5
        c.rounds = 3
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        network.serve.minParticipants = 4
        network.serve.cohortSize = 4
        network.participants[4].join.privacyBudget = ParticipantBudget(
            epsilon: 10, ledger: directory.appendingPathComponent("ledger.json").path)
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 3 && summary.rounds.allSatisfy { $0.survivors == 4 })
        let budgeted = try #require(summary.participants.first { $0.id == "participant-5" })
        #expect(budgeted.roundsAssigned == 0 && budgeted.declines.isEmpty, "\(budgeted)")

        // With two such participants only three can be planned for: the coordinator does not
        // start, and says why.
        let again = try RepositoryPaths.temporaryDirectory("veil-private-federation")
        defer { try? FileManager.default.removeItem(at: again) }
        var short = try NetworkSimulation(configuration: c, directory: again, roundDeadlineSeconds: 10)
        short.serve.minParticipants = 4
        short.serve.cohortSize = 4
        short.serve.registrationTimeoutSeconds = 5
        for i in [3, 4] {
            short.participants[i].join.privacyBudget = ParticipantBudget(
                epsilon: 10, ledger: again.appendingPathComponent("ledger-\(i).json").path)
        }
        let refusal = await #expect(throws: ConfigurationError.self) { try await short.run(logger: quietLogger()) }
        let reason = refusal.map { "\($0)" } ?? ""
        #expect(reason.contains("only 3 of the 4 participants needed connected"), "\(reason)")
        #expect(reason.contains("2 more declare a privacy budget"), "\(reason)")
    }

    @Test func aParticipantOverItsBudgetIsNotSelectedAndIsToldWhy() async throws {
        // The budget is what two of the four rounds cost: after two rounds nobody may go on.
        var privacy = ServicePrivacy(epsilon: 8)
        let central = try ServicePrivacyPlan(privacy, rounds: 4, updateLength: 650, minParticipants: 4, cohortSize: 4)
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
