import Foundation
import VeilCore

/// The parameters of one secure-aggregation session, validated against a threat model.
///
/// n participants, Shamir threshold t, k neighbours per participant (k = n − 1 is the
/// complete graph of Bonawitz et al. 2017; smaller k is the Harary graph of SecAgg+, Bell et
/// al. 2020), vectors of d elements of Z_(2^b). `Specs/secagg.md` ("Parameters") gives the
/// rules and the table of recommended values.
public struct SecAggParameters: Hashable, Sendable, CustomStringConvertible {
    /// n.
    public let clientCount: Int
    /// t: shares needed to reconstruct, and signatures needed in the consistency check.
    public let threshold: Int
    /// k: neighbours per participant.
    public let neighborCount: Int
    /// b.
    public let bitWidth: BitWidth
    /// d.
    public let dimension: Int
    /// What the parameters were validated against.
    public let threatModel: ThreatModel

    /// The largest session: 32-bit participant ids, and an O(n) roster per participant.
    public static let maxClientCount = 1 << 20

    /// The smallest threshold of any session, whatever the threat model: 2.
    public static let thresholdFloor = 2

    /// Whether every participant is every other's neighbour.
    public var isCompleteGraph: Bool { neighborCount == clientCount - 1 }

    /// Validates and creates parameters.
    /// - Throws: ``SecAggParameterError`` naming the rule broken and, for thresholds, the
    ///   theorem that requires it.
    public init(
        clientCount n: Int, threshold t: Int, neighborCount k: Int, bitWidth: BitWidth, dimension d: Int,
        threatModel: ThreatModel
    ) throws(SecAggParameterError) {
        try Self.validate(clientCount: n, threshold: t, neighborCount: k, threatModel: threatModel)
        guard d >= 1 else { throw .dimensionOutOfRange(d) }
        self.clientCount = n
        self.threshold = t
        self.neighborCount = k
        self.bitWidth = bitWidth
        self.dimension = d
        self.threatModel = threatModel
    }

    /// Checks n, t and k against the graph's shape and the threat model's rules (1–4 of
    /// `Specs/secagg.md` §2).
    /// - Throws: ``SecAggParameterError`` naming the rule broken.
    public static func validate(clientCount n: Int, threshold t: Int, neighborCount k: Int, threatModel: ThreatModel)
        throws(SecAggParameterError)
    {
        guard (2...Self.maxClientCount).contains(n) else { throw .clientCountOutOfRange(n) }
        guard (1...(n - 1)).contains(k) else { throw .neighborCountOutOfRange(neighbors: k, clients: n) }
        guard k == n - 1 || k % 2 == 0 || n % 2 == 0 else { throw .hararyGraphUndefined(neighbors: k, clients: n) }
        // t ≥ 2 always: with t = 1 every Shamir share is the secret itself, and a "sum" of one
        // survivor is that survivor's input.
        guard (Self.thresholdFloor...(k + 1)).contains(t) else {
            throw .thresholdOutOfRange(threshold: t, neighbors: k)
        }
        switch Self.requirement(clientCount: n, neighborCount: k, threatModel: threatModel) {
        case .refused(let error): throw error
        case .minimum(let minimum, let why):
            guard t >= minimum else { throw .thresholdTooLow(threshold: t, minimum: minimum, why: why) }
        }
        if k < n - 1 {
            let failure = Self.disconnectionProbability(clientCount: n, neighborCount: k, threatModel: threatModel)
            guard failure <= exp2(-Double(threatModel.securityBits)) else {
                throw .graphTooSparse(
                    neighbors: k, clients: n, failureProbability: failure, securityBits: threatModel.securityBits)
            }
        }
    }

    enum Requirement {
        case minimum(Int, why: String)
        case refused(SecAggParameterError)
    }

    /// The smallest threshold the threat model allows for n and k (see `Specs/secagg.md`).
    static func requirement(clientCount n: Int, neighborCount k: Int, threatModel: ThreatModel) -> Requirement {
        let corrupt = threatModel.corruptCount(of: n)
        switch threatModel.adversary {
        case .honestButCuriousServer where k == n - 1:
            // Bonawitz et al. 2017, Theorem 6.3: the server and any n_C < t participants learn
            // nothing beyond the sum of the others' inputs.
            return .minimum(
                corrupt + 1,
                why: "an honest-but-curious server colluding with n_C = \(corrupt) participants learns an input "
                    + "once n_C ≥ t (Bonawitz et al. 2017, Theorem 6.3: secure iff t > n_C)")
        case .honestButCuriousServer:
            // Bell et al. 2020, semi-honest security of the Harary-graph protocol: no honest
            // participant may have t corrupt neighbours, except with probability 2^−σ.
            let bound = exp2(-Double(threatModel.securityBits)) / Double(n)
            var t = thresholdFloor
            while t <= k + 1,
                Hypergeometric.upperTail(population: n - 1, marked: corrupt, draws: k, atLeast: t) > bound
            {
                t += 1
            }
            return .minimum(
                t,
                why: "with \(corrupt) corrupt participants among \(n), some participant has t = t_min − 1 corrupt "
                    + "neighbours with probability above 2^-\(threatModel.securityBits) (Bell et al. 2020, semi-honest "
                    + "security: fewer than t corrupt neighbours for every participant)")
        case .maliciousServer where k == n - 1:
            // Bonawitz et al. 2017, §6 (active adversaries, with ConsistencyCheck): two
            // different survivor views each need t signatures; honest participants sign one,
            // corrupt ones both, so 2t > n + n_C makes a split impossible.
            return .minimum(
                (n + corrupt) / 2 + 1,
                why: "a malicious server could show two survivor views, each signed by t participants, when "
                    + "2t ≤ n + n_C (Bonawitz et al. 2017, §6, security against active adversaries: t > (n + n_C)/2 "
                    + "with n_C = \(corrupt))")
        case .maliciousServer:
            return .refused(.maliciousRequiresCompleteGraph(neighbors: k, clients: n))
        }
    }

    /// The smallest threshold the threat model accepts for n participants with k neighbours,
    /// or nil when it accepts no threshold for that graph (a malicious server on a sparse graph).
    public static func minimumThreshold(clientCount n: Int, neighborCount k: Int, threatModel: ThreatModel) -> Int? {
        guard n >= 2, (1...(n - 1)).contains(k) else { return nil }
        switch requirement(clientCount: n, neighborCount: k, threatModel: threatModel) {
        case .minimum(let t, _): return t <= k + 1 ? t : nil
        case .refused: return nil
        }
    }

    /// An upper bound on the probability that honest, non-dropped participants split into
    /// disconnected groups of the Harary graph (whose sums a server would learn separately):
    /// n · (γ + δ)^⌊k/2⌋ (Bell et al. 2020).
    static func disconnectionProbability(clientCount n: Int, neighborCount k: Int, threatModel: ThreatModel) -> Double {
        Double(n) * pow(threatModel.corruptFraction + threatModel.dropoutFraction, Double(k / 2))
    }

    /// An upper bound on the probability that some dropped participant has fewer than t
    /// surviving neighbours, so that the round cannot complete: n · P[Hyp(n−1, n−1−⌊δn⌋, k) < t].
    public var abortProbabilityBound: Double {
        let dropped = threatModel.dropoutCount(of: clientCount)
        // Nobody expected to drop: no masking key needs reconstructing (t = n is fine).
        guard dropped > 0 else { return 0 }
        let alive = Hypergeometric.lowerTail(
            population: clientCount - 1, marked: clientCount - 1 - dropped, draws: neighborCount, below: threshold)
        return min(1, Double(clientCount) * alive)
    }

    /// The (k, t) `Specs/secagg.md` recommends for n participants: the smallest k (even, or
    /// the complete graph) and then the smallest t that meet the threat model at 2^−σ and
    /// complete except with probability 2^−20 (``abortProbabilityBound``).
    /// - Throws: ``SecAggParameterError`` when no (k, t) meets them.
    public static func recommended(
        clientCount n: Int, bitWidth: BitWidth, dimension: Int, threatModel: ThreatModel, correctnessBits: Int = 20
    ) throws(SecAggParameterError) -> SecAggParameters {
        let target = exp2(-Double(correctnessBits))
        var candidates = Array(stride(from: 2, to: n - 1, by: 2))
        candidates.append(n - 1)
        if threatModel.adversary == .maliciousServer { candidates = [n - 1] }
        for k in candidates {
            if k < n - 1,
                disconnectionProbability(clientCount: n, neighborCount: k, threatModel: threatModel)
                    > exp2(-Double(threatModel.securityBits))
            {
                continue
            }
            guard case .minimum(let t, _) = requirement(clientCount: n, neighborCount: k, threatModel: threatModel),
                t <= k + 1
            else { continue }
            let parameters = try SecAggParameters(
                clientCount: n, threshold: t, neighborCount: k, bitWidth: bitWidth, dimension: dimension,
                threatModel: threatModel)
            if parameters.abortProbabilityBound <= target { return parameters }
        }
        throw .noParametersMeet(clients: n, threatModel: threatModel)
    }

    public var description: String {
        "n = \(clientCount), t = \(threshold), k = \(neighborCount)\(isCompleteGraph ? " (complete graph)" : ""), "
            + "b = \(bitWidth.bits), d = \(dimension); \(threatModel)"
    }
}

/// Why parameters were refused.
public enum SecAggParameterError: Error, Hashable, Sendable, CustomStringConvertible {
    case clientCountOutOfRange(Int)
    case neighborCountOutOfRange(neighbors: Int, clients: Int)
    case hararyGraphUndefined(neighbors: Int, clients: Int)
    case thresholdOutOfRange(threshold: Int, neighbors: Int)
    case thresholdTooLow(threshold: Int, minimum: Int, why: String)
    case graphTooSparse(neighbors: Int, clients: Int, failureProbability: Double, securityBits: Int)
    case maliciousRequiresCompleteGraph(neighbors: Int, clients: Int)
    case dimensionOutOfRange(Int)
    case invalidThreatModel(String)
    case noParametersMeet(clients: Int, threatModel: ThreatModel)

    /// A stable name, used in vector files.
    public var code: String {
        switch self {
        case .clientCountOutOfRange: "clientCountOutOfRange"
        case .neighborCountOutOfRange: "neighborCountOutOfRange"
        case .hararyGraphUndefined: "hararyGraphUndefined"
        case .thresholdOutOfRange: "thresholdOutOfRange"
        case .thresholdTooLow: "thresholdTooLow"
        case .graphTooSparse: "graphTooSparse"
        case .maliciousRequiresCompleteGraph: "maliciousRequiresCompleteGraph"
        case .dimensionOutOfRange: "dimensionOutOfRange"
        case .invalidThreatModel: "invalidThreatModel"
        case .noParametersMeet: "noParametersMeet"
        }
    }

    public var description: String {
        switch self {
        case .clientCountOutOfRange(let n):
            return "\(n) participants: a session needs 2...\(SecAggParameters.maxClientCount)"
        case .neighborCountOutOfRange(let k, let n):
            return "\(k) neighbours for \(n) participants: need 1 ≤ k ≤ n − 1 (k = n − 1 is the complete graph)"
        case .hararyGraphUndefined(let k, let n):
            return "a \(k)-regular Harary graph on \(n) vertices does not exist: k odd needs n even"
        case .thresholdOutOfRange(let t, let k):
            return
                "threshold \(t) with \(k) neighbours: need 2 ≤ t ≤ k + 1 (shares go to a participant's k neighbours and itself; with t = 1 each share is the secret)"
        case .thresholdTooLow(let t, let minimum, let why):
            return "threshold \(t) is below the minimum \(minimum) for this threat model: \(why)"
        case .graphTooSparse(let k, let n, let p, let sigma):
            return
                "\(k) neighbours for \(n) participants: honest survivors may split into groups whose sums the server "
                + "learns separately, with probability up to \(p) > 2^-\(sigma) (Bell et al. 2020: n·(γ+δ)^⌊k/2⌋); "
                + "raise --neighbors or use the complete graph"
        case .maliciousRequiresCompleteGraph(let k, let n):
            return
                "a malicious server needs the complete graph (k = \(n - 1)), not k = \(k): on a sparse graph it could "
                + "drop honest participants on purpose to cut the graph and learn the sums of small groups "
                + "(Specs/secagg.md, Threat model); split large federations into complete-graph groups instead"
        case .dimensionOutOfRange(let d):
            return "vector length \(d) must be at least 1"
        case .invalidThreatModel(let why):
            return "invalid threat model: \(why)"
        case .noParametersMeet(let n, let model):
            return "no (k, t) for \(n) participants meets \(model)"
        }
    }
}
