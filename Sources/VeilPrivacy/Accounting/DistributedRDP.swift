import Foundation

/// The sum of integer vectors to which each of n participants added its own discrete noise,
/// described in the scaled integer domain (after rotation, scaling and conditional rounding),
/// where the sensitivities are the rounded bounds of `Specs/privacy.md` §4.
public struct DistributedNoiseSum: Hashable, Sendable {
    /// The noise each participant adds to every coordinate.
    public enum Noise: Hashable, Sendable {
        /// The discrete Gaussian N_ℤ(0, σ²) with local variance σ² (Kairouz, Liu, Steinke 2021).
        case discreteGaussian(localVariance: Double)
        /// The Skellam distribution Sk(μ) = Poisson(μ/2) − Poisson(μ/2), variance μ
        /// (Agarwal, Kairouz, Liu 2021).
        case skellam(localVariance: Double)
    }

    public let noise: Noise
    /// How many participants add noise (the sum carries n times the local variance).
    public let participants: Int
    /// The vector's length after padding.
    public let dimension: Int
    /// The L2 sensitivity of one participant's rounded, scaled vector.
    public let l2Sensitivity: Double
    /// The L1 sensitivity (at most Δ₂·min(√d, Δ₂) on the integer grid).
    public let l1Sensitivity: Double

    public init(noise: Noise, participants: Int, dimension: Int, l2Sensitivity: Double, l1Sensitivity: Double) {
        self.noise = noise
        self.participants = participants
        self.dimension = dimension
        self.l2Sensitivity = l2Sensitivity
        self.l1Sensitivity = l1Sensitivity
    }

    /// The variance of the summed noise in each coordinate.
    public var centralVariance: Double {
        switch noise {
        case .discreteGaussian(let v), .skellam(let v): Double(participants) * v
        }
    }

    /// τ of Kairouz et al. Theorem 1: how far a sum of n discrete Gaussians of variance σ²
    /// may be from one discrete Gaussian of variance nσ², τ = 10·Σ_{k=1}^{n−1} e^{−2π²σ²·k/(k+1)}.
    public static func discreteGaussianSumInflation(localVariance: Double, participants: Int) -> Double {
        guard participants > 1 else { return 0 }
        var tau = 0.0
        for k in 1..<participants {
            tau += exp(-2 * Double.pi * Double.pi * localVariance * Double(k) / Double(k + 1))
        }
        return 10 * tau
    }

    /// The RDP at integer order α ≥ 2 of one release of the sum to a party that sees it.
    ///
    /// Distributed discrete Gaussian: Kairouz et al. Proposition 14 (eq. 17), with
    /// a₂ = Δ₂/√(nσ²), a₁ = Δ₁/√(nσ²): min(α/2·a₂² + τd, α/2·(a₂² + 2a₁τ + τ²d), α/2·(a₂ + τ√d)²).
    /// Skellam: Agarwal et al. Theorem 3.5 with total variance μ = nσ²:
    /// α·Δ₂²/(2μ) + min(((2α − 1)·Δ₂² + 6Δ₁)/(4μ²), 3Δ₁/(2μ)).
    public func rdp(order alpha: Int) -> Double { rdp(order: alpha, inflation: inflation) }

    /// The RDP at every integer order 2…`highest`, in order: τ, a sum over the participants,
    /// computed once rather than at each of the orders (a calibration evaluates thousands).
    public func rdp(ordersThrough highest: Int) -> [Double] {
        let tau = inflation
        return (2...max(highest, 2)).map { rdp(order: $0, inflation: tau) }
    }

    /// τ for the discrete Gaussian (0 for Skellam, which does not use it).
    private var inflation: Double {
        guard case .discreteGaussian(let local) = noise else { return 0 }
        return Self.discreteGaussianSumInflation(localVariance: local, participants: participants)
    }

    private func rdp(order alpha: Int, inflation tau: Double) -> Double {
        let a = Double(alpha)
        let mu = centralVariance
        guard mu > 0 else { return .infinity }
        let l2 = l2Sensitivity
        let l1 = l1Sensitivity
        switch noise {
        case .discreteGaussian:
            let a2 = l2 / mu.squareRoot()
            let a1 = l1 / mu.squareRoot()
            let d = Double(dimension)
            let first = a / 2 * a2 * a2 + tau * d
            let second = a / 2 * (a2 * a2 + 2 * a1 * tau + tau * tau * d)
            let third = a / 2 * (a2 + d.squareRoot() * tau) * (a2 + d.squareRoot() * tau)
            return min(first, second, third)
        case .skellam:
            return a * l2 * l2 / (2 * mu) + min(((2 * a - 1) * l2 * l2 + 6 * l1) / (4 * mu * mu), 3 * l1 / (2 * mu))
        }
    }
}

/// Privacy amplification by Poisson subsampling for any mechanism whose RDP is known at the
/// integer orders: Zhu and Wang (ICML 2019), "Poisson Subsampled Rényi Differential Privacy",
/// Theorem 9 (the general upper bound), as the distributed-DP papers' accounting uses it.
public enum PoissonSubsampledRDP {
    /// The RDP at integer order α ≥ 2 of the mechanism run on a Poisson sample at rate γ,
    /// given the mechanism's RDP ε(l) at l = 2…α. Never more than ε(α) itself.
    public static func rdp(order alpha: Int, samplingRate gamma: Double, mechanism epsilon: (Int) -> Double)
        -> Double
    {
        precondition(alpha >= 2, "the bound needs an integer order of at least 2")
        precondition(gamma > 0 && gamma <= 1, "the sampling rate must be in (0, 1]")
        let unsampled = epsilon(alpha)
        if gamma == 1 { return unsampled }
        let a = Double(alpha)
        let log1mg = log1p(-gamma)
        let logg = log(gamma)
        var terms: [(logValue: Double, weight: Double)] = [
            (0, pow(1 - gamma, a - 1) * (a * gamma - gamma + 1)),
            (epsilon(2), a * (a - 1) / 2 * gamma * gamma * pow(1 - gamma, a - 2)),
        ]
        if alpha >= 3 {
            for l in 3...alpha {
                let x = Double(l)
                terms.append(((x - 1) * epsilon(l) + LogSpace.logBinomial(a, x) + (a - x) * log1mg + x * logg, 3))
            }
        }
        return min(LogSpace.sumExp(terms) / (a - 1), unsampled)
    }
}
