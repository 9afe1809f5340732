import Foundation

/// L2 clipping: x·min(1, C/‖x‖₂), the step that bounds one participant's influence.
public enum L2Clipping {
    public static func norm(_ x: [Double]) -> Double {
        // Scaled, so that huge updates do not overflow to ∞ and escape the clip.
        let largest = x.reduce(0.0) { max($0, abs($1)) }
        guard largest > 0, largest.isFinite else { return largest }
        return largest * x.reduce(0.0) { $0 + ($1 / largest) * ($1 / largest) }.squareRoot()
    }

    /// The clipped vector and whether it was already within the bound (the bit that
    /// adaptive clipping counts). Non-finite vectors clip to zero and count as above.
    public static func clip(_ x: [Double], to bound: Double) -> (clipped: [Double], withinBound: Bool) {
        precondition(bound > 0, "a clip bound must be positive")
        guard x.allSatisfy(\.isFinite) else { return ([Double](repeating: 0, count: x.count), false) }
        let n = norm(x)
        if n <= bound { return (x, true) }
        let factor = bound / n
        // Rounding may leave the product a hair above the bound; the nextDown keeps it under.
        return (x.map { $0 * factor.nextDown }, false)
    }
}

/// Adaptive clipping to a quantile of the update norms (Andrew, Thakkar, McMahan, Ramaswamy,
/// NeurIPS 2021): each participant reports b = 1[‖Δ‖ ≤ C] inside the same noisy sum as its
/// update; the server estimates the fraction b̄ below the bound and moves C geometrically,
/// C ← C·exp(−η·(b̄ − γ)), towards the γ-quantile.
public struct AdaptiveClipping: Hashable, Sendable {
    /// γ, the target fraction of updates left unclipped.
    public let targetQuantile: Double
    /// η_C.
    public let learningRate: Double
    public private(set) var bound: Double

    public init(initialBound: Double, targetQuantile: Double = 0.5, learningRate: Double = 0.2) {
        precondition(initialBound > 0 && (0...1).contains(targetQuantile) && learningRate > 0, "invalid clipping")
        bound = initialBound
        self.targetQuantile = targetQuantile
        self.learningRate = learningRate
    }

    /// Updates the bound from the noisy sum of (b − ½) and the expected number of reports.
    public mutating func update(noisyCenteredCount: Double, expectedReports: Double) {
        let fraction = noisyCenteredCount / expectedReports + 0.5
        bound *= exp(-learningRate * (fraction - targetQuantile))
    }
}
