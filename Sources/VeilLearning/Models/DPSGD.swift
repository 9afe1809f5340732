import Foundation
import VeilCore
import VeilPrivacy

/// Example-level differential privacy in local training: DP-SGD (Abadi et al., CCS 2016) with
/// Poisson-sampled batches (`Specs/privacy.md` §8). Each step includes every example
/// independently with probability q = min(1, B/n), clips each included example's gradient to
/// L2 norm C, sums them, adds N(0, (σC)²) to every coordinate, and divides by the expected
/// batch size qn; an epoch is ⌈n/B⌉ steps. One local training of E epochs is T = E·⌈n/B⌉
/// steps of the Poisson-subsampled Gaussian mechanism with rate q and noise multiplier σ.
public struct ExampleLevelPrivacy: Hashable, Sendable, Codable {
    /// σ: the noise's standard deviation over the clip.
    public var noiseMultiplier: Double
    /// C: the L2 bound of one example's gradient.
    public var clip: Double

    public init(noiseMultiplier: Double, clip: Double) {
        self.noiseMultiplier = noiseMultiplier
        self.clip = clip
    }

    /// The sampling rate q and the steps T of one local training on `examples` rows.
    public static func schedule(examples: Int, batchSize: Int, epochs: Int) -> (samplingRate: Double, steps: Int) {
        guard examples > 0, batchSize > 0, epochs > 0 else { return (0, 0) }
        let rate = min(1, Double(batchSize) / Double(examples))
        return (rate, epochs * ((examples + batchSize - 1) / batchSize))
    }

    /// The RDP curve of one local training: T compositions of the Poisson-subsampled Gaussian.
    public func cost(examples: Int, batchSize: Int, epochs: Int) -> RDPAccountant {
        let (rate, steps) = Self.schedule(examples: examples, batchSize: batchSize, epochs: epochs)
        var accountant = RDPAccountant()
        if steps > 0 {
            accountant.compose(
                .poissonSampledGaussian(samplingRate: rate, noiseMultiplier: noiseMultiplier), count: steps)
        }
        return accountant
    }
}

/// Local training by DP-SGD (``ExampleLevelPrivacy``): `randomness` draws the batches and the
/// Gaussian noise, and must be cryptographic and secret — both are what protects the examples.
/// `adjust` (FedProx's proximal term) and the optimiser's momentum and weight decay act on
/// the privatised gradient and the parameters only, so they cost no privacy.
public func trainLocallyPrivately(
    model: any Model, start: [Double], data: Dataset, epochs: Int, batchSize: Int, optimizer: SGD,
    privacy: ExampleLevelPrivacy, using randomness: inout some RandomNumberGenerator,
    adjust: ((UnsafeMutableBufferPointer<Double>, UnsafeBufferPointer<Double>) -> Void)? = nil
) -> LocalTrainingResult {
    var parameters = start
    let (rate, steps) = ExampleLevelPrivacy.schedule(examples: data.count, batchSize: batchSize, epochs: epochs)
    guard steps > 0 else { return LocalTrainingResult(parameters: parameters, steps: 0, meanLoss: 0) }
    let count = parameters.count
    var sum = [Double](repeating: 0, count: count)
    var gradient = [Double](repeating: 0, count: count)
    // One row at a time, without an allocation per row.
    var single = [0]
    var velocity = [Double](repeating: 0, count: optimizer.momentum > 0 ? count : 0)
    let workspace = model.makeWorkspace()
    let expectedBatch = rate * Double(data.count)
    let deviation = privacy.noiseMultiplier * privacy.clip
    var loss = 0.0
    var included = 0
    for _ in 0..<steps {
        for i in 0..<count { sum[i] = 0 }
        parameters.withUnsafeMutableBufferPointer { w in
            gradient.withUnsafeMutableBufferPointer { g in
                for row in 0..<data.count where randomness.unit() < rate {
                    single[0] = row
                    loss += model.lossAndGradient(
                        UnsafeBufferPointer(w), data: data, rows: single[...], gradient: g, workspace: workspace)
                    included += 1
                    var norm = 0.0
                    for i in 0..<count { norm += g[i] * g[i] }
                    // A gradient that is not finite (logits overflowed at extreme parameters)
                    // contributes nothing: min(1, C/NaN) would let it through unclipped.
                    guard norm.isFinite else { continue }
                    let scale = min(1, privacy.clip / max(norm.squareRoot(), .leastNormalMagnitude))
                    for i in 0..<count { sum[i] += scale * g[i] }
                }
            }
            sum.withUnsafeMutableBufferPointer { g in
                for i in 0..<count { g[i] = (g[i] + deviation * randomness.standardNormal()) / expectedBatch }
                adjust?(g, UnsafeBufferPointer(w))
                optimizer.step(w, gradient: UnsafeBufferPointer(g), velocity: &velocity)
            }
        }
    }
    return LocalTrainingResult(
        parameters: parameters, steps: steps, meanLoss: included > 0 ? loss / Double(included) : 0)
}
