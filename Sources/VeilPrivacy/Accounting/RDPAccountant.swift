import Foundation

/// One privacy-relevant release that an accountant composes.
public enum PrivacyEvent: Hashable, Sendable {
    /// The Gaussian mechanism on the whole population: noise standard deviation over L2
    /// sensitivity σ.
    case gaussian(noiseMultiplier: Double)
    /// Each member is included independently with probability q, then the Gaussian mechanism.
    case poissonSampledGaussian(samplingRate: Double, noiseMultiplier: Double)
    /// Each member is included independently with probability q, then a sum carrying
    /// distributed discrete noise (q = 1: everyone).
    case poissonSampledNoiseSum(samplingRate: Double, DistributedNoiseSum)
}

/// A Rényi-DP accountant: RDP curves add under composition, and the total converts to
/// (ε, δ) by ``RDPConversion``. For the Gaussian events it is Google's `dp_accounting`
/// `RdpAccountant` (same orders, same formulas, same conversion); `Specs/privacy.md` §5.
///
/// The distributed-noise bounds hold at integer orders; at a fractional order α the
/// accountant charges the bound at ⌈α⌉, which is at least the RDP at α because RDP is
/// non-decreasing in the order.
public struct RDPAccountant: Codable, Hashable, Sendable {
    /// `dp_accounting`'s `DEFAULT_RDP_ORDERS`: 1.1, 1.2, …, 10.9, then 11, …, 63, 128, 256, 512, 1024.
    public static let defaultOrders: [Double] = {
        let fractional: [Double] = (1..<100).map { (x: Int) -> Double in 1 + Double(x) / 10.0 }
        let integral: [Double] = (11..<64).map { (x: Int) -> Double in Double(x) }
        return fractional + integral + [128, 256, 512, 1024]
    }()

    public let orders: [Double]
    /// The accumulated RDP at each order.
    public private(set) var rdp: [Double]

    /// An accountant with nothing spent.
    public init(orders: [Double] = defaultOrders) {
        precondition(!orders.isEmpty && orders.allSatisfy { $0 > 1 }, "RDP orders must exceed 1")
        self.orders = orders
        rdp = [Double](repeating: 0, count: orders.count)
    }

    private enum CodingKeys: String, CodingKey { case orders, rdp }

    /// RDP may be +∞ (an order with no finite bound); JSON has no ∞, so it is stored as null.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        orders = try container.decode([Double].self, forKey: .orders)
        rdp = try container.decode([Double?].self, forKey: .rdp).map { $0 ?? .infinity }
        guard rdp.count == orders.count, !orders.isEmpty, orders.allSatisfy({ $0 > 1 }) else {
            throw DecodingError.dataCorruptedError(
                forKey: .rdp, in: container, debugDescription: "one RDP value per order, every order above 1")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(orders, forKey: .orders)
        try container.encode(rdp.map { $0.isFinite ? $0 : nil }, forKey: .rdp)
    }

    /// Adds `count` independent runs of `event`.
    public mutating func compose(_ event: PrivacyEvent, count: Int = 1) {
        precondition(count >= 0, "a negative number of events")
        let curve = Self.rdp(of: event, orders: orders)
        for i in rdp.indices { rdp[i] += Double(count) * curve[i] }
    }

    /// Adds another accountant's spending (same orders).
    public mutating func compose(_ other: RDPAccountant) {
        precondition(other.orders == orders, "accountants over different orders")
        for i in rdp.indices { rdp[i] += other.rdp[i] }
    }

    /// The smallest ε for which everything composed so far is (ε, δ)-DP, and the order used.
    public func epsilon(delta: Double) -> (epsilon: Double, order: Double) {
        RDPConversion.epsilon(orders: orders, rdp: rdp, delta: delta)
    }

    /// The smallest δ for which everything composed so far is (ε, δ)-DP, and the order used.
    public func delta(epsilon: Double) -> (delta: Double, order: Double) {
        RDPConversion.delta(orders: orders, rdp: rdp, epsilon: epsilon)
    }

    /// The RDP curve of one event.
    /// - Parameter subsampledBound: the bound on a Poisson-subsampled distributed mechanism;
    ///   ``PoissonSubsampledRDP/rdp(order:samplingRate:mechanism:)`` (`Specs/privacy.md` §5.3)
    ///   unless a test substitutes a deliberately broken one to show that the vectors catch it.
    public static func rdp(
        of event: PrivacyEvent, orders: [Double], subsampledBound: SubsampledRDPBound = PoissonSubsampledRDP.rdp
    ) -> [Double] {
        switch event {
        case .gaussian(let sigma):
            return orders.map { SubsampledGaussianRDP.rdp(samplingRate: 1, noiseMultiplier: sigma, order: $0) }
        case .poissonSampledGaussian(let q, let sigma):
            return orders.map { SubsampledGaussianRDP.rdp(samplingRate: q, noiseMultiplier: sigma, order: $0) }
        case .poissonSampledNoiseSum(let q, let sum):
            if q == 0 { return orders.map { _ in 0 } }
            let integerOrders = orders.map { Int($0.rounded(.up)) }
            let highest = max(integerOrders.max() ?? 2, 2)
            // ε(l) for every l ≤ the highest order, once: the subsampling bound sums over them.
            let unsampled = [Double.nan, .nan] + sum.rdp(ordersThrough: highest)
            return integerOrders.map { order in
                subsampledBound(max(order, 2), q) { unsampled[$0] }
            }
        }
    }
}

/// An upper bound on the RDP, at an integer order α ≥ 2, of a mechanism run on a Poisson
/// sample at rate q ∈ (0, 1], given the mechanism's own RDP at the integer orders 2…α.
public typealias SubsampledRDPBound = (_ order: Int, _ samplingRate: Double, _ mechanism: (Int) -> Double) -> Double

/// Why an accounting request was refused (`Specs/privacy.md` §5.6).
public enum AccountingError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidParameters(String)

    public var description: String {
        switch self {
        case .invalidParameters(let why): "invalid accounting parameters: \(why)"
        }
    }
}

extension RDPAccountant {
    /// The (ε, δ) of `steps` independent releases of `event`, every parameter checked first
    /// (`Specs/privacy.md` §5.6) so that a value from a file or a peer is refused, not trapped on.
    /// - Parameters:
    ///   - event: the release; its sampling rate must be in [0, 1], a Gaussian noise multiplier
    ///     at least 0, a noise sum's local variance positive and finite, its participants and
    ///     dimension at least 1, and its sensitivities finite and non-negative.
    ///   - steps: how many releases, at least 0.
    ///   - delta: δ in (0, 1).
    ///   - orders: at least one order, each finite and above 1.
    ///   - subsampledBound: as in ``rdp(of:orders:subsampledBound:)``.
    /// - Returns: the smallest ε over the orders and the first order attaining it (§5.2).
    /// - Throws: ``AccountingError/invalidParameters(_:)`` naming the first rule broken.
    public static func epsilon(
        of event: PrivacyEvent, steps: Int, delta: Double, orders: [Double] = defaultOrders,
        subsampledBound: SubsampledRDPBound = PoissonSubsampledRDP.rdp
    ) throws(AccountingError) -> (epsilon: Double, order: Double) {
        try validate(event)
        guard !orders.isEmpty else { throw .invalidParameters("no RDP orders") }
        guard orders.allSatisfy({ $0 > 1 && $0.isFinite }) else {
            throw .invalidParameters("every RDP order must be finite and above 1")
        }
        guard steps >= 0 else { throw .invalidParameters("a negative number of steps") }
        guard delta > 0, delta < 1 else { throw .invalidParameters("δ must be in (0, 1)") }
        let curve = rdp(of: event, orders: orders, subsampledBound: subsampledBound)
        // As compose(_:count:) on a fresh accountant: 0 + steps·curve[i].
        return RDPConversion.epsilon(orders: orders, rdp: curve.map { 0 + Double(steps) * $0 }, delta: delta)
    }

    /// Checks an event's parameters (§5.6).
    static func validate(_ event: PrivacyEvent) throws(AccountingError) {
        func rate(_ q: Double) throws(AccountingError) {
            guard q >= 0, q <= 1 else { throw .invalidParameters("the sampling rate must be in [0, 1]") }
        }
        switch event {
        case .gaussian(let sigma):
            guard sigma >= 0, !sigma.isNaN else { throw .invalidParameters("a negative noise multiplier") }
        case .poissonSampledGaussian(let q, let sigma):
            try rate(q)
            guard sigma >= 0, !sigma.isNaN else { throw .invalidParameters("a negative noise multiplier") }
        case .poissonSampledNoiseSum(let q, let sum):
            try rate(q)
            let variance: Double
            switch sum.noise {
            case .discreteGaussian(let v), .skellam(let v): variance = v
            }
            guard variance > 0, variance.isFinite else {
                throw .invalidParameters("the local noise variance must be positive and finite")
            }
            guard sum.participants >= 1 else { throw .invalidParameters("at least one participant adds noise") }
            guard sum.dimension >= 1 else { throw .invalidParameters("the dimension must be at least 1") }
            guard sum.l2Sensitivity >= 0, sum.l2Sensitivity.isFinite, sum.l1Sensitivity >= 0,
                sum.l1Sensitivity.isFinite
            else { throw .invalidParameters("the sensitivities must be finite and non-negative") }
        }
    }
}
