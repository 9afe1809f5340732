import Foundation

/// Log-space arithmetic and the special functions the accountants need, written to follow
/// SciPy's definitions (`gammaln`, `log_ndtr`) so that results match `dp_accounting` to
/// rounding error rather than to an approximation's error.
enum LogSpace {
    /// log(e^x + e^y), exact at −∞.
    static func add(_ x: Double, _ y: Double) -> Double {
        let (a, b) = (min(x, y), max(x, y))
        if a == -.infinity { return b }
        return log1p(exp(a - b)) + b
    }

    /// log Σ bᵢ·e^{aᵢ} for non-negative weights bᵢ (SciPy's `logsumexp` with `b`).
    static func sumExp(_ terms: [(logValue: Double, weight: Double)]) -> Double {
        let live = terms.filter { $0.weight > 0 && $0.logValue > -.infinity }
        guard let top = live.map(\.logValue).max() else { return -.infinity }
        if top == .infinity { return .infinity }
        let total = live.reduce(0.0) { $0 + $1.weight * exp($1.logValue - top) }
        return top + log(total)
    }

    /// log C(n, k) through log Γ, for real n and k.
    static func logBinomial(_ n: Double, _ k: Double) -> Double {
        logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1)
    }

    /// log |Γ(x)|.
    static func logGamma(_ x: Double) -> Double {
        #if canImport(Glibc)
            var sign: Int32 = 0
            return lgamma_r(x, &sign)
        #else
            return lgamma(x)
        #endif
    }

    /// log Φ(a), the log of the standard normal CDF, accurate in both tails (SciPy's
    /// `log_ndtr`: −Φ(−a) above 6, log Φ(a) down to −20, the asymptotic series below).
    static func logNormalCDF(_ a: Double) -> Double {
        if a > 6 { return -normalCDF(-a) }
        if a > -20 { return log(normalCDF(a)) }
        let logLeft = -0.5 * a * a - log(-a) - 0.5 * log(2 * Double.pi)
        var lastTotal = 0.0
        var rightHandSide = 1.0
        var numerator = 1.0
        var denominatorFactor = 1.0
        let denominatorStep = 1 / (a * a)
        var sign = 1.0
        var i = 0.0
        while abs(lastTotal - rightHandSide) > Double.ulpOfOne {
            i += 1
            lastTotal = rightHandSide
            sign = -sign
            denominatorFactor *= denominatorStep
            numerator *= 2 * i - 1
            rightHandSide += sign * numerator * denominatorFactor
        }
        return logLeft + log(rightHandSide)
    }

    /// Φ(a) (Cephes `ndtr`: erf near zero, erfc in the tails).
    static func normalCDF(_ a: Double) -> Double {
        let x = a * 0.5.squareRoot()
        let z = abs(x)
        if z < 0.5.squareRoot() { return 0.5 + 0.5 * erf(x) }
        let y = 0.5 * erfc(z)
        return x > 0 ? 1 - y : y
    }

    /// log erfc(x), accurate for large x.
    static func logErfc(_ x: Double) -> Double {
        log(2) + logNormalCDF(-x * 2.0.squareRoot())
    }
}
