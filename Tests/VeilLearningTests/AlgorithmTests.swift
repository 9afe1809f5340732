import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilPaillier
import VeilSecAgg
import VeilTestSupport

func digitsConfiguration(_ algorithm: AlgorithmChoice, seed: UInt64 = 0, rounds: Int = 50) -> FederatedConfiguration {
    var c = FederatedConfiguration()
    c.algorithm = algorithm
    c.seed = seed
    c.rounds = rounds
    c.evaluateEvery = rounds
    return c
}

func finalAccuracy(_ configuration: FederatedConfiguration, _ backend: inout some SecureSum) throws -> Double {
    try FederatedSimulation(configuration: configuration).run(secureSum: &backend).last!.accuracy!
}

@Suite struct AlgorithmTests {
    // Every algorithm on the reference digits setting (10 participants, Dirichlet(0.5), softmax
    // from zero, E = 1, B = 32, lr 0.1, everyone every round, 50 rounds, seed 0), plain sum.
    // Each minimum is seed 0's accuracy (the README's table) less 0.015, rounded down to 0.01.
    @Test(arguments: [
        (AlgorithmChoice.fedAvg, 0.88), (.fedAvgM(beta: 0.9), 0.93), (.fedProx(mu: 0.01), 0.88),
        (.fedAdagrad(learningRate: 0.1, tau: 1e-3), 0.92),
        (.fedAdam(learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3), 0.94),
        (.fedYogi(learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-3), 0.94), (.scaffold, 0.89), (.fedNova, 0.90),
        (.fedBuff(buffer: 5, concurrency: 10), 0.89), (.ifca(clusters: 2), 0.90), (.ditto(lambda: 0.1), 0.88),
        (.qFedAvg(q: 1), 0.87), (.robust(.median), 0.78), (.robust(.trimmedMean(fraction: 0.1)), 0.83),
        (.robust(.krum(byzantine: 1)), 0.58),
    ])
    func everyAlgorithmTrainsDigits(_ algorithm: AlgorithmChoice, _ minimum: Double) async throws {
        let accuracy = try await offCooperativePool {
            var plain = PlainSum()
            return try finalAccuracy(digitsConfiguration(algorithm), &plain)
        }
        #expect(accuracy >= minimum, "\(algorithm.name): \(accuracy)")
    }

    /// The personal models are evaluated on their participants' own test rows. Whether they beat
    /// the global model on the global test set depends on the seed (seeds 0–4: 1 of 5 runs with
    /// the labelled streams, 3 of 5 with the earlier ones, the means within 0.02 of each other),
    /// so only their accuracy is pinned: seed 0's 0.866 less 0.015, rounded down.
    @Test func dittoPersonalModelsFitTheirOwnDistributions() throws {
        var plain = PlainSum()
        let last = try FederatedSimulation(configuration: digitsConfiguration(.ditto(lambda: 0.1))).run(
            secureSum: &plain
        ).last!
        let personal = try #require(last.personalizedAccuracy)
        #expect(personal > 0.85)
    }

    @Test func robustAggregatorsAreRefusedOnASecureSum() throws {
        var secagg = SecAggSecureSum()
        do {
            _ = try FederatedSimulation(configuration: digitsConfiguration(.robust(.median), rounds: 1)).run(
                secureSum: &secagg)
            Issue.record("median ran on a secure sum")
        } catch let error as LearningError {
            #expect(error == .robustAggregatorOnSecureSum(aggregator: "median", backend: "secagg"))
            #expect(error.description.contains("hides by design"))
        }
    }

    @Test func invalidConfigurationsAreRefused() throws {
        var c = FederatedConfiguration()
        c.fraction = 0
        #expect(throws: LearningError.self) { try FederatedSimulation(configuration: c) }
        c = FederatedConfiguration()
        c.dataset = .csv(path: "/nonexistent.csv")
        #expect(throws: DataError.self) { try FederatedSimulation(configuration: c) }
        #expect(throws: DataError.self) { try DatasetSource(parsing: "synthetic:1") }
        #expect(try DatasetSource(parsing: "synthetic:0.5,1") == .synthetic(alpha: 0.5, beta: 1))
    }

    @Test func thePayloadCodecUsesTheMostPrecisionThatCannotWrap() throws {
        let simulation = try FederatedSimulation(configuration: digitsConfiguration(.fedAvg))
        #expect(try simulation.payloadCodec(addends: 10).fractionalBits == 32)
        var narrow = digitsConfiguration(.fedAvg)
        narrow.payloadBits = 32
        let small = try FederatedSimulation(configuration: narrow)
        // 10 addends of ±1024 in Z_2^32: 10 · 2^10 · 2^f ≤ 2^31 − 1 holds for f = 17, not 18.
        #expect(try small.payloadCodec(addends: 10).fractionalBits == 17)
    }
}

@Suite struct ReferenceResultTests {
    /// Learning issue, reference result 1: digits, 10 participants, Dirichlet(0.5), softmax
    /// from zero, E = 1, B = 32, lr 0.1, all participants every round, 50 rounds, FedAvg: mean
    /// test accuracy over 5 seeds ≥ 0.90.
    @Test func fedAvgOnDigitsReachesNinetyPercentOverFiveSeeds() async throws {
        let accuracies = try await offCooperativePool {
            try (0..<5).map { seed in
                var plain = PlainSum()
                return try finalAccuracy(digitsConfiguration(.fedAvg, seed: UInt64(seed)), &plain)
            }
        }
        let mean = accuracies.reduce(0, +) / 5
        #expect(mean >= 0.90, "\(accuracies)")
    }

    /// The same run through masking and through Paillier gives the same model: the secure sums
    /// are exact, so the accuracy agrees to the last digit (fixed-point rounding is identical).
    @Test func plainSecAggAndPaillierTrainTheSameModel() async throws {
        let configuration = digitsConfiguration(.fedAvg, seed: 1, rounds: 20)
        let (reference, masked, encrypted) = try await offCooperativePool {
            var plain = PlainSum()
            var secagg = SecAggSecureSum(seed: 1)
            var paillier = try PaillierSecureSum(
                keyBits: 512, bitWidth: BitWidth(64), maxAddends: 10, decryption: .keyHolder(minimumContributors: 2))
            return (
                try FederatedSimulation(configuration: configuration).run(secureSum: &plain),
                try FederatedSimulation(configuration: configuration).run(secureSum: &secagg),
                try FederatedSimulation(configuration: configuration).run(secureSum: &paillier)
            )
        }
        #expect(masked.map(\.accuracy) == reference.map(\.accuracy))
        #expect(encrypted.map(\.accuracy) == reference.map(\.accuracy))
        #expect(reference.last!.accuracy! > 0.85)
    }

    /// Learning issue, reference result 2 (the FedProx paper's Figure): Synthetic(1,1), 90%
    /// stragglers, lr 0.01, B = 10, E = 20, 10 devices per round, 200 rounds. FedAvg drops the
    /// stragglers and oscillates; FedProx with μ = 1 keeps their partial work and ends with a
    /// clearly lower training loss and a higher test accuracy (means over 3 seeds).
    @Test func fedProxBeatsFedAvgUnderSystemsHeterogeneity() async throws {
        @Sendable func run(_ algorithm: AlgorithmChoice, seed: UInt64) throws -> RoundReport {
            var c = FederatedConfiguration()
            c.dataset = .synthetic(alpha: 1, beta: 1)
            c.clients = 30
            c.fraction = 1.0 / 3
            c.rounds = 200
            c.localEpochs = 20
            c.batchSize = 10
            c.learningRate = 0.01
            c.stragglerFraction = 0.9
            c.algorithm = algorithm
            c.seed = seed
            c.evaluateEvery = 200
            var plain = PlainSum()
            return try FederatedSimulation(configuration: c).run(secureSum: &plain).last!
        }
        // Six independent runs of 200 rounds: each on a thread of its own, two at a time.
        var fedAvg: [RoundReport] = []
        var fedProx: [RoundReport] = []
        for seed in UInt64(0)..<3 {
            async let avg = offCooperativePool { try run(.fedAvg, seed: seed) }
            async let prox = offCooperativePool { try run(.fedProx(mu: 1), seed: seed) }
            fedAvg.append(try await avg)
            fedProx.append(try await prox)
        }
        func mean(_ reports: [RoundReport], _ value: (RoundReport) -> Double) -> Double {
            reports.map(value).reduce(0, +) / Double(reports.count)
        }
        let lossAvg = mean(fedAvg) { $0.trainingLoss! }
        let lossProx = mean(fedProx) { $0.trainingLoss! }
        #expect(lossProx < 0.8 * lossAvg, "training loss: FedProx \(lossProx), FedAvg \(lossAvg)")
        #expect(mean(fedProx) { $0.accuracy! } > mean(fedAvg) { $0.accuracy! })
    }
}
