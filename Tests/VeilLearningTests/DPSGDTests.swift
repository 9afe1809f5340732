import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilPrivacy
import VeilTestSupport

/// DP-SGD in local training (`Specs/privacy.md` §8).
@Suite struct DPSGDTests {
    static func data(rows: Int, seed: UInt64 = 3) throws -> Dataset {
        var g = Xoshiro256(seed: seed)
        let features = (0..<(rows * 4)).map { _ in g.standardNormal() }
        let labels = (0..<rows).map { _ in Int(g.next() % 3) }
        return try Dataset(features: features, labels: labels, featureCount: 4, classCount: 3)
    }

    static let model = SoftmaxRegression(featureCount: 4, classCount: 3)

    @Test func theScheduleIsPoissonSamplingAtBOverN() {
        #expect(ExampleLevelPrivacy.schedule(examples: 100, batchSize: 32, epochs: 1) == (0.32, 4))
        #expect(ExampleLevelPrivacy.schedule(examples: 100, batchSize: 32, epochs: 3) == (0.32, 12))
        #expect(ExampleLevelPrivacy.schedule(examples: 20, batchSize: 32, epochs: 2) == (1, 2))
        #expect(ExampleLevelPrivacy.schedule(examples: 0, batchSize: 32, epochs: 2) == (0, 0))
        // The cost is T compositions of the Poisson-subsampled Gaussian: dp_accounting's
        // (0.32, 1.1, 12 steps, δ = 10⁻⁵) is 7.642388543393673.
        let cost = ExampleLevelPrivacy(noiseMultiplier: 1.1, clip: 1).cost(examples: 100, batchSize: 32, epochs: 3)
        #expect(abs(cost.epsilon(delta: 1e-5).epsilon - 7.642388543393673) < 1e-9)
    }

    /// With every example in every batch (q = 1), no noise and a clip no gradient reaches,
    /// DP-SGD is full-batch SGD.
    @Test func withoutNoiseOrClippingItIsFullBatchSGD() throws {
        let data = try Self.data(rows: 20)
        let start = (0..<Self.model.parameterCount).map { Double($0 % 7) / 10 - 0.3 }
        let optimizer = SGD(learningRate: 0.3, momentum: 0.5, weightDecay: 0.01)
        var plain = Xoshiro256(seed: 1)
        let sgd = trainLocally(
            model: Self.model, start: start, data: data, epochs: 3, batchSize: 20, optimizer: optimizer, using: &plain)
        var randomness = Xoshiro256(seed: 2)
        let dpsgd = trainLocallyPrivately(
            model: Self.model, start: start, data: data, epochs: 3, batchSize: 20, optimizer: optimizer,
            privacy: ExampleLevelPrivacy(noiseMultiplier: 0, clip: 1e9), using: &randomness)
        #expect(dpsgd.steps == 3 && sgd.steps == 3)
        #expect(zip(dpsgd.parameters, sgd.parameters).allSatisfy { abs($0 - $1) < 1e-12 })
    }

    /// One example, no noise: the step is the example's gradient scaled to norm C.
    @Test func eachExamplesGradientIsClippedToC() throws {
        let data = try Self.data(rows: 1)
        let start = [Double](repeating: 0, count: Self.model.parameterCount)
        var gradient = [Double](repeating: 0, count: start.count)
        start.withUnsafeBufferPointer { w in
            gradient.withUnsafeMutableBufferPointer { g in
                _ = Self.model.lossAndGradient(
                    w, data: data, rows: [0][...], gradient: g, workspace: Self.model.makeWorkspace())
            }
        }
        let norm = gradient.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let clip = norm / 4
        var randomness = Xoshiro256(seed: 5)
        let result = trainLocallyPrivately(
            model: Self.model, start: start, data: data, epochs: 1, batchSize: 1, optimizer: SGD(learningRate: 1),
            privacy: ExampleLevelPrivacy(noiseMultiplier: 0, clip: clip), using: &randomness)
        let expected = gradient.map { -$0 * clip / norm }
        #expect(zip(result.parameters, expected).allSatisfy { abs($0 - $1) < 1e-12 })
    }

    /// The noise: with q = 1 the batch is fixed, so the difference from the noiseless run is
    /// −η·σC·z/n for z standard normal in every coordinate.
    @Test func theNoiseHasDeviationSigmaCOverTheExpectedBatch() throws {
        let data = try Self.data(rows: 8)
        let model = MultilayerPerceptron(layerSizes: [4, 64, 3])
        var g = Xoshiro256(seed: 9)
        let start = model.initialParameters(using: &g)
        func run(_ sigma: Double) -> [Double] {
            var randomness = Xoshiro256(seed: 11)
            return trainLocallyPrivately(
                model: model, start: start, data: data, epochs: 1, batchSize: 8, optimizer: SGD(learningRate: 0.5),
                privacy: ExampleLevelPrivacy(noiseMultiplier: sigma, clip: 2), using: &randomness
            ).parameters
        }
        let difference = zip(run(1.5), run(0)).map { $0 - $1 }
        let deviation = (difference.reduce(0) { $0 + $1 * $1 } / Double(difference.count)).squareRoot()
        let expected = 0.5 * 1.5 * 2 / 8
        #expect(difference.count > 500)
        #expect(abs(deviation / expected - 1) < 0.1, "\(deviation) against \(expected)")
    }

    /// A coordinator's extreme parameters overflow the logits of some rows: their gradients are
    /// not finite and contribute nothing (min(1, C/NaN) would have let them through unclipped).
    @Test func aGradientThatIsNotFiniteContributesNothing() throws {
        let data = try Self.data(rows: 6)
        var start = [Double](repeating: 0, count: Self.model.parameterCount)
        for i in 0..<4 { start[i] = 1e308 }
        var randomness = Xoshiro256(seed: 4)
        let result = trainLocallyPrivately(
            model: Self.model, start: start, data: data, epochs: 1, batchSize: 6, optimizer: SGD(learningRate: 1),
            privacy: ExampleLevelPrivacy(noiseMultiplier: 0, clip: 1), using: &randomness)
        #expect(result.parameters.allSatisfy { $0.isFinite })
    }

    /// A batch size of 0 trains nothing instead of looping for ever.
    @Test func aBatchOfZeroTrainsNothing() throws {
        var g = Xoshiro256(seed: 1)
        let result = trainLocally(
            model: Self.model, start: [Double](repeating: 0, count: Self.model.parameterCount),
            data: try Self.data(rows: 4), epochs: 1, batchSize: 0, optimizer: SGD(learningRate: 1), using: &g)
        #expect(result.steps == 0)
    }
}
