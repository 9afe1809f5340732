/// The discrete Gaussian N_ℤ(0, σ²): P(x) ∝ e^{−x²/(2σ²)} on the integers, sampled exactly
/// (Canonne, Kamath, Steinke 2020, Algorithm 3, with the discrete Laplace of Algorithm 2).
///
/// σ² is held as a rational n/2^k, rounded *up* from the requested value (more noise, never
/// less) with the largest k ≤ 32 for which n ≤ 2^52; all arithmetic is then on integers.
public struct DiscreteGaussian: Hashable, Sendable {
    /// Why a variance cannot be sampled.
    public enum SamplerError: Error, Hashable, Sendable, CustomStringConvertible {
        case invalidVariance(Double)

        public var description: String {
            switch self {
            case .invalidVariance(let v):
                "the discrete Gaussian needs a variance in (0, 2^52], got \(v)"
            }
        }
    }

    /// The largest variance the integer arithmetic supports (σ ≤ 2^26).
    public static let maxVariance = 0x1p52

    /// σ² = numerator / 2^denominatorBits.
    public let numerator: UInt128
    public let denominatorBits: Int
    /// t = ⌊σ⌋ + 1, the discrete Laplace scale of the proposal.
    public let laplaceScale: UInt128

    public init(variance: Double) throws(SamplerError) {
        guard variance > 0, variance <= Self.maxVariance, variance.isFinite else { throw .invalidVariance(variance) }
        var bits = 32
        while bits > 0 && (variance * Double(UInt64(1) << bits)).rounded(.up) > 0x1p52 { bits -= 1 }
        numerator = UInt128((variance * Double(UInt64(1) << bits)).rounded(.up))
        denominatorBits = bits
        // ⌊σ⌋ = the largest m with m²·2^k ≤ n.
        var m = UInt128(variance.squareRoot())
        while (m + 1) * (m + 1) << UInt128(bits) <= numerator { m += 1 }
        while m > 0 && m * m << UInt128(bits) > numerator { m -= 1 }
        laplaceScale = m + 1
    }

    /// The variance actually sampled (n / 2^k ≥ the requested one).
    public var variance: Double { Double(numerator) / Double(UInt64(1) << denominatorBits) }

    /// One draw.
    public func sample(using generator: inout some RandomNumberGenerator) -> Int64 {
        var bits = ExactBernoulli(generator: generator)
        defer { generator = bits.generator }
        return sample(&bits)
    }

    /// `count` independent draws.
    public func samples(_ count: Int, using generator: inout some RandomNumberGenerator) -> [Int64] {
        var bits = ExactBernoulli(generator: generator)
        defer { generator = bits.generator }
        return (0..<count).map { _ in sample(&bits) }
    }

    func sample<G>(_ bits: inout ExactBernoulli<G>) -> Int64 {
        let t = laplaceScale
        let d = UInt128(1) << UInt128(denominatorBits)
        let n = numerator
        // The acceptance exponent γ = (|Y|·t·d − n)² / (2·n·d·t²).
        let denominator = 2 * n * d * t * t
        while true {
            let y = DiscreteLaplace.sample(scale: t, &bits)
            let magnitude = UInt128(y.magnitude)
            let (scaled, overflow) = magnitude.multipliedReportingOverflow(by: t * d)
            // |Y| that large has probability below e^{−2000} and acceptance below e^{−2^20}.
            guard !overflow, scaled < UInt128(1) << 63 else { continue }
            let difference = scaled > n ? scaled - n : n - scaled
            let (square, squareOverflow) = difference.multipliedReportingOverflow(by: difference)
            guard !squareOverflow else { continue }
            if bits.bernoulliExp(square, over: denominator) { return y }
        }
    }
}

/// The discrete Laplace distribution P(x) ∝ e^{−|x|/t} for an integer scale t (CKS Algorithm 2
/// with s = 1).
enum DiscreteLaplace {
    static func sample<G>(scale t: UInt128, _ bits: inout ExactBernoulli<G>) -> Int64 {
        while true {
            let u = bits.below(t)
            if !bits.bernoulliExp(u, over: t) { continue }
            var v: UInt128 = 0
            while bits.bernoulliExpUnit(1, over: 1) { v += 1 }
            let x = u + t * v
            let negative = bits.bernoulli(1, over: 2)
            if negative && x == 0 { continue }
            guard x < UInt128(Int64.max) else { continue }
            return negative ? -Int64(x) : Int64(x)
        }
    }
}
