import Foundation

/// Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
/// "Rényi Differential Privacy of the Sampled Gaussian Mechanism", §3.3), computed exactly
/// as Google's `dp_accounting` 0.6.0 `RdpAccountant` does: the integer-order sum for integer
/// α, the two-sided series with log-erfc terms for fractional α.
public enum SubsampledGaussianRDP {
    /// The fractional-order series gives up after this many terms (the reference's limit);
    /// the order is then excluded (its RDP is +∞).
    static let maxFractionalTerms = 1000

    /// RDP at order α of one application with sampling rate q and noise multiplier σ
    /// (noise standard deviation over L2 sensitivity).
    /// - Returns: 0 for q = 0; α/(2σ²) for q = 1; +∞ for σ = 0 or α = ∞.
    public static func rdp(samplingRate q: Double, noiseMultiplier sigma: Double, order alpha: Double) -> Double {
        if q == 0 { return 0 }
        if alpha.isInfinite || sigma == 0 { return .infinity }
        if q == 1 { return alpha / (2 * sigma * sigma) }
        return logA(q: q, sigma: sigma, alpha: alpha) / (alpha - 1)
    }

    static func logA(q: Double, sigma: Double, alpha: Double) -> Double {
        if alpha.rounded(.towardZero) == alpha, alpha < Double(Int.max) {
            return logAInteger(q: q, sigma: sigma, alpha: Int(alpha))
        }
        return logAFractional(q: q, sigma: sigma, alpha: alpha)
    }

    /// log A_α for integer α: log Σᵢ C(α,i)·qⁱ·(1−q)^{α−i}·e^{(i²−i)/(2σ²)}.
    static func logAInteger(q: Double, sigma: Double, alpha: Int) -> Double {
        var logA = -Double.infinity
        let log1mq = log1p(-q)
        let logq = log(q)
        let a = Double(alpha)
        for step in 0...alpha {
            let i = Double(step)
            let logCoefficient = LogSpace.logBinomial(a, i) + i * logq + (a - i) * log1mq
            logA = LogSpace.add(logA, logCoefficient + (i * i - i) / (2 * (sigma * sigma)))
        }
        return logA
    }

    /// log A_α for fractional α: the integrals over (−∞, z₀] and [z₀, ∞) as two series.
    static func logAFractional(q: Double, sigma: Double, alpha: Double) -> Double {
        var logA0 = -Double.infinity
        var logA1 = -Double.infinity
        let z0 = sigma * sigma * log(1 / q - 1) + 0.5
        let log1mq = log1p(-q)
        let logq = log(q)
        let sigmaSquared = sigma * sigma
        var lastS0 = -Double.infinity
        var lastS1 = -Double.infinity
        for step in 0..<maxFractionalTerms {
            let i = Double(step)
            let logCoefficient = LogSpace.logBinomial(alpha, i)
            let j = alpha - i
            let logT0 = logCoefficient + i * logq + j * log1mq
            let logT1 = logCoefficient + j * logq + i * log1mq
            let logE0 = log(0.5) + LogSpace.logErfc((i - z0) / (2.0.squareRoot() * sigma))
            let logE1 = log(0.5) + LogSpace.logErfc((z0 - j) / (2.0.squareRoot() * sigma))
            let logS0 = logT0 + (i * i - i) / (2 * sigmaSquared) + logE0
            let logS1 = logT1 + (j * j - j) / (2 * sigmaSquared) + logE1
            logA0 = LogSpace.add(logA0, logS0)
            logA1 = LogSpace.add(logA1, logS1)
            let total = LogSpace.add(logA0, logA1)
            if logS0 < lastS0 && logS1 < lastS1 && max(logS0, logS1) < total - 30 { return total }
            lastS0 = logS0
            lastS1 = logS1
        }
        return .infinity
    }
}
