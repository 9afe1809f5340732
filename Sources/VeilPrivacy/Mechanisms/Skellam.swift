import Foundation

/// The Skellam distribution Sk(μ) = Poisson(μ/2) − Poisson(μ/2): integer noise of variance μ
/// that stays Skellam when summed, so n participants each adding Sk(μ) give Sk(nμ)
/// (Agarwal, Kairouz, Liu, NeurIPS 2021).
public struct Skellam: Hashable, Sendable {
    /// Why a variance cannot be sampled.
    public enum SamplerError: Error, Hashable, Sendable, CustomStringConvertible {
        case invalidVariance(Double)

        public var description: String {
            switch self {
            case .invalidVariance(let v): "the Skellam distribution needs a variance in (0, 2^52], got \(v)"
            }
        }
    }

    public let variance: Double

    public init(variance: Double) throws(SamplerError) {
        guard variance > 0, variance <= 0x1p52, variance.isFinite else { throw .invalidVariance(variance) }
        self.variance = variance
    }

    /// One draw: the difference of two Poisson(μ/2) draws.
    public func sample(using generator: inout some RandomNumberGenerator) -> Int64 {
        let rate = variance / 2
        let plus = Poisson.sample(rate: rate, using: &generator)
        let minus = Poisson.sample(rate: rate, using: &generator)
        return plus - minus
    }

    /// `count` independent draws.
    public func samples(_ count: Int, using generator: inout some RandomNumberGenerator) -> [Int64] {
        (0..<count).map { _ in sample(using: &generator) }
    }
}

/// Poisson(λ) draws: multiplication of uniforms below λ = 10, Hörmann's PTRS transformed
/// rejection (1993) from 10 on — NumPy's choice, and the one the Skellam paper's
/// experiments used. These use floating point; `Specs/privacy.md` §3 says what that means.
public enum Poisson {
    public static func sample(rate lambda: Double, using generator: inout some RandomNumberGenerator) -> Int64 {
        precondition(lambda >= 0 && lambda.isFinite, "a Poisson rate must be finite and non-negative")
        if lambda == 0 { return 0 }
        if lambda < 10 {
            let threshold = exp(-lambda)
            var count: Int64 = 0
            var product = 1.0
            while true {
                product *= generator.unit()
                if product > threshold { count += 1 } else { return count }
            }
        }
        let root = lambda.squareRoot()
        let logLambda = log(lambda)
        let b = 0.931 + 2.53 * root
        let a = -0.059 + 0.02483 * b
        let inverseAlpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = generator.unit() - 0.5
            let v = generator.unit()
            let us = 0.5 - abs(u)
            let k = ((2 * a / us + b) * u + lambda + 0.43).rounded(.down)
            if us >= 0.07 && v <= vr { return Int64(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if log(v) + log(inverseAlpha) - log(a / (us * us) + b) <= -lambda + k * logLambda - lgamma(k + 1) {
                return Int64(k)
            }
        }
    }
}

/// Continuous Gaussian noise for central DP, from a cryptographic generator (the Box–Muller
/// transform on 53-bit uniforms; `Specs/privacy.md` §3 on floating point).
public enum GaussianNoise {
    /// `count` independent N(0, σ²) draws.
    public static func samples(
        _ count: Int, standardDeviation sigma: Double, using generator: inout some RandomNumberGenerator
    )
        -> [Double]
    {
        var values: [Double] = []
        values.reserveCapacity(count + 1)
        while values.count < count {
            // 1 − U lies in (0, 1], so the logarithm is finite.
            let radius = (-2 * log(1 - generator.unit())).squareRoot()
            let angle = 2 * Double.pi * generator.unit()
            values.append(sigma * radius * cos(angle))
            values.append(sigma * radius * sin(angle))
        }
        return Array(values.prefix(count))
    }
}
