import Foundation
import Logging
import Testing
import VeilLearning
import VeilPrivacy
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// DP-SGD in the participants' local training over the network (`Specs/privacy.md` §8): each
/// keeps its example-level ledger, which agrees with Google's `dp_accounting` for the steps it
/// actually took, and enforces its own example-level budget.
@Suite(.serialized) struct DPSGDFederationTests {
    var quiet: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    /// ε of `steps` Poisson-subsampled Gaussian steps, from dp_accounting itself.
    func dpAccountingEpsilon(rate: Double, sigma: Double, steps: Int, delta: Double) async throws -> Double {
        let script = """
            import dp_accounting as d
            a = d.rdp.RdpAccountant()
            a.compose(d.PoissonSampledDpEvent(\(rate), d.GaussianDpEvent(\(sigma))), \(steps))
            print(repr(float(a.get_epsilon(\(delta)))))
            """
        let output = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", script])
        #expect(output.status == 0, "\(output.stderr)")
        return try #require(Double(output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    @Test func theExampleLevelLedgerAgreesWithDPAccountingAndItsBudgetHolds() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-dpsgd")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 4
        c.rounds = 3
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 30)
        let (sigma, delta, batch) = (1.1, 1e-5, network.serve.batchSize)
        for i in network.participants.indices {
            network.participants[i].join.dpSgd = DPSGDSettings(
                noiseMultiplier: sigma, clip: 1, delta: delta,
                ledger: directory.appendingPathComponent("examples-\(i + 1).json").path)
        }
        // The fourth allows itself between one and two local trainings.
        let n4 = network.participants[3].data.count
        let privacy = ExampleLevelPrivacy(noiseMultiplier: sigma, clip: 1)
        var twice = privacy.cost(examples: n4, batchSize: batch, epochs: 1)
        let once = twice.epsilon(delta: delta).epsilon
        twice.compose(privacy.cost(examples: n4, batchSize: batch, epochs: 1))
        network.participants[3].join.dpSgd?.epsilon = (once + twice.epsilon(delta: delta).epsilon) / 2

        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 3)
        #expect(summary.rounds.map(\.survivors) == [4, 3, 3])
        let participants = Dictionary(uniqueKeysWithValues: summary.participants.map { ($0.id, $0) })
        for i in 0..<4 {
            let p = try #require(participants["participant-\(i + 1)"])
            let (rate, steps) = ExampleLevelPrivacy.schedule(
                examples: network.participants[i].data.count, batchSize: batch, epochs: 1)
            let trainings = i == 3 ? 1 : 3
            #expect(p.exampleRounds == trainings && p.exampleSteps == steps * trainings)
            let reference = try await dpAccountingEpsilon(
                rate: rate, sigma: sigma, steps: steps * trainings, delta: delta)
            let epsilon = try #require(p.exampleEpsilon)
            #expect(abs(epsilon / reference - 1) < 1e-9, "participant-\(i + 1): \(epsilon) against \(reference)")
        }
        let budgeted = try #require(participants["participant-4"])
        #expect(budgeted.declines["privacy"] == 2 && budgeted.lastDecline?.contains("DP-SGD") == true)
        // What it spent is on disk: a restart starts from it.
        let reloaded = try ExampleLedger(try #require(network.participants[3].join.dpSgd))
        #expect(reloaded.rounds == 1 && reloaded.epsilon() == budgeted.exampleEpsilon)
    }

    /// A ledger file that is not this accountant's is refused, never treated as a fresh budget.
    @Test func aForeignOrUnreadableLedgerIsRefused() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-example-ledger")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("ledger.json")
        let settings = DPSGDSettings(noiseMultiplier: 1, delta: 1e-5, ledger: file.path)
        try #"{"delta": 1e-5, "rounds": 1, "steps": 4, "accountant": {"orders": [2, 3], "rdp": [0.1, 0.2]}}"#.write(
            to: file, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try ExampleLedger(settings) }
        try FileManager.default.removeItem(at: file)
        try FileManager.default.createDirectory(at: file, withIntermediateDirectories: false)
        #expect(throws: ConfigurationError.self) { try ExampleLedger(settings) }
    }
}
