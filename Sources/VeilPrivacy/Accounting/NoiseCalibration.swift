import Foundation

/// The smallest noise that meets a target (ε, δ).
public enum NoiseCalibration {
    /// Why no noise level meets the target.
    public enum CalibrationError: Error, Hashable, Sendable, CustomStringConvertible {
        case invalidTarget(String)
        case unreachable(String)

        public var description: String {
            switch self {
            case .invalidTarget(let why): "invalid privacy target: \(why)"
            case .unreachable(let why): "no noise level meets the target: \(why)"
            }
        }
    }

    /// The absolute tolerance of the search, as in `dp_accounting`'s `calibrate_dp_mechanism`.
    public static let tolerance = 1e-6

    /// The smallest noise multiplier σ (within ``tolerance``) for which `steps` runs of the
    /// Poisson-subsampled Gaussian at rate q are (ε, δ)-DP under ``RDPAccountant``.
    /// The returned σ always meets the target.
    public static func noiseMultiplier(
        epsilon: Double, delta: Double, samplingRate q: Double, steps: Int,
        orders: [Double] = RDPAccountant.defaultOrders
    ) throws(CalibrationError) -> Double {
        try validate(epsilon: epsilon, delta: delta, samplingRate: q, steps: steps)
        return try smallestMeeting(epsilon: epsilon, tolerance: tolerance) { sigma in
            var accountant = RDPAccountant(orders: orders)
            accountant.compose(.poissonSampledGaussian(samplingRate: q, noiseMultiplier: sigma), count: steps)
            return accountant.epsilon(delta: delta).epsilon
        }
    }

    /// Checks a target and a schedule.
    public static func validate(epsilon: Double, delta: Double, samplingRate q: Double, steps: Int)
        throws(CalibrationError)
    {
        guard epsilon > 0, epsilon.isFinite else { throw .invalidTarget("ε must be positive and finite") }
        guard delta > 0, delta < 1 else { throw .invalidTarget("δ must be in (0, 1)") }
        guard q > 0, q <= 1 else { throw .invalidTarget("the sampling rate must be in (0, 1]") }
        guard steps >= 1 else { throw .invalidTarget("at least one step") }
    }

    /// The smallest x > 0 (within `tolerance`, absolute) with spent(x) ≤ ε, for a spent(x)
    /// that does not increase with x: doubling to find a bracket, then bisection, keeping the
    /// upper end so that the answer always meets the target.
    public static func smallestMeeting(epsilon: Double, tolerance: Double, spent: (Double) -> Double)
        throws(CalibrationError) -> Double
    {
        var low = 0.0
        var high = 1.0
        var doublings = 0
        while spent(high) > epsilon {
            low = high
            high *= 2
            doublings += 1
            if doublings > 40 { throw .unreachable("ε stays above \(epsilon) even with noise \(high)") }
        }
        while high - low > tolerance {
            let middle = (low + high) / 2
            if spent(middle) > epsilon { low = middle } else { high = middle }
        }
        return high
    }
}
