import Foundation

/// Turning an RDP curve into (ε, δ)-DP, with `dp_accounting`'s conversion: Proposition 12
/// of Canonne, Kamath, Steinke (2020, arXiv:2004.00010) — also Asoodeh et al. (2020), eq. 20 —
/// ε = r + log(1 − 1/α) − log(δ·α)/(α − 1), minimised over the orders, with the KL shortcut
/// (ε = 0 when δ² + e^{−r} − 1 > 0) and no bound for α ≤ 1.01, where it is unstable.
public enum RDPConversion {
    /// The smallest ε over the orders, and the order that attains it (the first, on ties).
    /// - Precondition: orders and rdp have the same length; δ ≥ 0; every order ≥ 1.
    public static func epsilon(orders: [Double], rdp: [Double], delta: Double) -> (epsilon: Double, order: Double) {
        precondition(orders.count == rdp.count && !orders.isEmpty, "one RDP value per order")
        precondition(delta >= 0, "δ must be non-negative")
        if delta == 0 { return rdp.allSatisfy { $0 == 0 } ? (0, 0) : (.infinity, 0) }
        var best = (epsilon: Double.infinity, order: orders[0])
        var bestSet = false
        for (a, r) in zip(orders, rdp) {
            precondition(a >= 1, "RDP orders are at least 1")
            let epsilon: Double
            if r < 0 {
                epsilon = 0
            } else if delta * delta + expm1(-r) > 0 {
                epsilon = 0
            } else if a > 1.01 {
                epsilon = r + log1p(-1 / a) - log(delta * a) / (a - 1)
            } else {
                epsilon = .infinity
            }
            // NumPy's argmin: the first minimum; NaN never wins here (the reference would
            // pick it; we treat an undefined bound as no bound).
            if !bestSet || epsilon < best.epsilon {
                best = (epsilon.isNaN ? .infinity : epsilon, a)
                bestSet = true
            }
        }
        return (max(0, best.epsilon), best.order)
    }

    /// The smallest δ over the orders for a target ε (the same proposition, solved for δ),
    /// and the order that attains it.
    public static func delta(orders: [Double], rdp: [Double], epsilon: Double) -> (delta: Double, order: Double) {
        precondition(orders.count == rdp.count && !orders.isEmpty, "one RDP value per order")
        precondition(epsilon >= 0, "ε must be non-negative")
        var best = (logDelta: Double.infinity, order: orders[0])
        for (a, r) in zip(orders, rdp) {
            precondition(a >= 1, "RDP orders are at least 1")
            var logDelta: Double
            if r <= 0 {
                logDelta = -.infinity
            } else {
                // The KL bound δ ≤ √(1 − e^{−r}), the better one for small α.
                logDelta = 0.5 * log1p(-exp(-r))
            }
            if a > 1.01 {
                logDelta = min(logDelta, (a - 1) * (r - epsilon + log1p(-1 / a)) - log(a))
            }
            if logDelta < best.logDelta { best = (logDelta, a) }
        }
        return (min(exp(best.logDelta), 1), best.order)
    }
}
