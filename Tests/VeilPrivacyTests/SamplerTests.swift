import Foundation
import Testing
import VeilCrypto
import VeilTestSupport

@testable import VeilPrivacy

/// Sampler statistics against the exact distributions: mean, variance, tail mass and (for
/// small σ) the probability of every value, each within five standard errors. The generator
/// is seeded, so a pass is reproducible rather than lucky.
@Suite struct SamplerTests {
    func generator(_ label: String) -> ChaCha20Generator { ChaCha20Generator(label: label) }

    /// The exact probabilities of N_ℤ(0, σ²) over |x| ≤ 40σ + 10.
    func discreteGaussianPMF(_ variance: Double) -> [Int: Double] {
        let limit = Int(40 * variance.squareRoot()) + 10
        var weights: [Int: Double] = [:]
        for x in -limit...limit { weights[x] = exp(-Double(x * x) / (2 * variance)) }
        let total = weights.values.reduce(0, +)
        return weights.mapValues { $0 / total }
    }

    func moments(_ samples: [Int64]) -> (mean: Double, variance: Double) {
        let n = Double(samples.count)
        let mean = samples.reduce(0.0) { $0 + Double($1) } / n
        let variance = samples.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)
        return (mean, variance)
    }

    @Test(arguments: [0.25, 0.49, 1.0, 2.25, 9.0, 100.0, 10_000.0])
    func discreteGaussianMatchesItsDistribution(variance: Double) throws {
        var g = generator("dg \(variance)")
        let n = 20_000
        let samples = try DiscreteGaussian(variance: variance).samples(n, using: &g)
        let pmf = discreteGaussianPMF(variance)
        let exactVariance = pmf.reduce(0.0) { $0 + Double($1.key * $1.key) * $1.value }
        let fourth = pmf.reduce(0.0) { $0 + pow(Double($1.key), 4) * $1.value }
        let (mean, sampleVariance) = moments(samples)
        #expect(abs(mean) < 5 * (exactVariance / Double(n)).squareRoot())
        let varianceError = ((fourth - exactVariance * exactVariance) / Double(n)).squareRoot()
        #expect(
            abs(sampleVariance - exactVariance) < 5 * varianceError, "variance \(sampleVariance) vs \(exactVariance)")
        if variance < 1 {
            // Below σ = 1 the discrete Gaussian's variance is visibly less than σ².
            #expect(exactVariance < variance)
        }
        // Tails: the mass at |x| ≥ 2σ and ≥ 3σ.
        for k in [2.0, 3.0] {
            let cut = k * variance.squareRoot()
            let p = pmf.filter { abs(Double($0.key)) >= cut }.values.reduce(0, +)
            let observed = Double(samples.count { abs(Double($0)) >= cut }) / Double(n)
            #expect(abs(observed - p) < 5 * (p * (1 - p) / Double(n)).squareRoot() + 1e-9, "tail \(k)σ")
        }
        if variance <= 2.25 {
            for value in -3...3 {
                let p = pmf[value]!
                let observed = Double(samples.count { $0 == Int64(value) }) / Double(n)
                #expect(abs(observed - p) < 5 * (p * (1 - p) / Double(n)).squareRoot() + 1e-9, "P(\(value))")
            }
        }
    }

    @Test func discreteGaussianVarianceRoundsUpAndRefusesNonsense() throws {
        let dg = try DiscreteGaussian(variance: 0.1)
        #expect(dg.variance >= 0.1 && dg.variance - 0.1 < 1e-9)
        #expect(dg.laplaceScale == 1)
        #expect(try DiscreteGaussian(variance: 16).laplaceScale == 5)
        #expect(try DiscreteGaussian(variance: 15.99).laplaceScale == 4)
        for bad in [0.0, -1, .infinity, .nan, 0x1p53] {
            #expect(throws: DiscreteGaussian.SamplerError.self) { try DiscreteGaussian(variance: bad) }
        }
    }

    @Test(arguments: [0.5, 3.0, 19.5, 50.0, 10_000.0])
    func skellamHasItsVariance(variance: Double) throws {
        var g = generator("sk \(variance)")
        let n = 20_000
        let samples = try Skellam(variance: variance).samples(n, using: &g)
        let (mean, sampleVariance) = moments(samples)
        #expect(abs(mean) < 5 * (variance / Double(n)).squareRoot())
        // Skellam(μ): fourth central moment 3μ² + μ.
        let error = ((3 * variance * variance + variance - variance * variance) / Double(n)).squareRoot()
        #expect(abs(sampleVariance - variance) < 5 * error, "variance \(sampleVariance) vs \(variance)")
    }

    @Test(arguments: [5.0, 40.0, 1000.0])
    func poissonHasItsMeanAndVariance(rate: Double) throws {
        var g = generator("poisson \(rate)")
        let n = 20_000
        let samples = (0..<n).map { _ in Poisson.sample(rate: rate, using: &g) }
        let (mean, variance) = moments(samples)
        #expect(abs(mean - rate) < 5 * (rate / Double(n)).squareRoot())
        #expect(abs(variance - rate) < 5 * ((rate + 2 * rate * rate) / Double(n)).squareRoot())
        #expect(samples.allSatisfy { $0 >= 0 })
    }

    @Test func gaussianNoiseHasItsMomentsAndTails() throws {
        var g = generator("gaussian")
        let n = 40_001
        let samples = GaussianNoise.samples(n, standardDeviation: 3, using: &g)
        #expect(samples.count == n)
        let mean = samples.reduce(0, +) / Double(n)
        let variance = samples.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        #expect(abs(mean) < 5 * 3 / Double(n).squareRoot())
        #expect(abs(variance - 9) < 5 * 9 * (2 / Double(n)).squareRoot())
        let beyond = Double(samples.count { abs($0) > 6 }) / Double(n)  // P(|Z| > 2) = 0.0455
        #expect(abs(beyond - 0.0455) < 5 * (0.0455 * 0.9545 / Double(n)).squareRoot())
    }

    @Test func sameSeedSameDraws() throws {
        var a = generator("determinism")
        var b = generator("determinism")
        let dg = try DiscreteGaussian(variance: 7.5)
        #expect(dg.samples(100, using: &a) == dg.samples(100, using: &b))
    }
}
