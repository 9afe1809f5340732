/// A way of adding participants' vectors so that the party computing the sum sees only the
/// sum: pairwise masking (VeilSecAgg), Paillier (VeilPaillier), or — for plaintext
/// federations and as the reference — none (``PlainSum``).
///
/// Federated-learning code is handed a `SecureSum` and never imports a backend. This is the
/// in-process form of a round, used by simulations: the contributions go in together, each
/// backend applies its own protocol (and its configured dropouts), and the result is the sum
/// over the participants that survived, with who they were.
public protocol SecureSum {
    /// A short name: "plain", "secagg", "paillier".
    var name: String { get }

    /// Whether individual contributions stay hidden from the party that computes the sum.
    /// Aggregators that need individual updates (median, Krum) refuse backends where this holds.
    var hidesIndividualContributions: Bool { get }

    /// Sums the contributions of one round.
    /// - Parameters:
    ///   - contributions: each participant's vector; all over the same ring, of the same length.
    ///   - round: the round number, which backends fold into their session randomness.
    /// - Returns: the sum over the survivors, and the survivors.
    /// - Throws: the backend's error when the round cannot produce a sum (too few survivors).
    mutating func sum(_ contributions: [ParticipantID: ModularVector], round: Int) throws -> SecureSumResult

    /// What one participant sends in a round of `cohort` participants that sums vectors of
    /// `elements` elements of Z_2^b, and how many request–response exchanges the round takes:
    /// the simulation's timing model (`Specs/orchestration.md` §1.3). An estimate of the
    /// protocol's messages, not a measurement of them.
    func uploadCost(elements: Int, bitWidth: BitWidth, cohort: Int) -> UploadCost
}

/// A participant's share of a round's traffic, for simulated timing.
public struct UploadCost: Hashable, Sendable {
    /// Bytes the participant sends.
    public let bytes: Int
    /// Request–response exchanges with the server, each costing one round trip.
    public let exchanges: Int

    public init(bytes: Int, exchanges: Int) {
        self.bytes = bytes
        self.exchanges = exchanges
    }
}

extension SecureSum {
    /// The vector in the clear, ⌈b/8⌉ bytes an element, in one exchange.
    public func uploadCost(elements: Int, bitWidth: BitWidth, cohort: Int) -> UploadCost {
        UploadCost(bytes: elements * bitWidth.byteCount, exchanges: 1)
    }
}

/// Adds in the clear. Hides nothing: for plaintext federations, and as the reference the
/// secure backends must agree with.
public struct PlainSum: SecureSum {
    public init() {}

    public var name: String { "plain" }
    public var hidesIndividualContributions: Bool { false }

    public func sum(_ contributions: [ParticipantID: ModularVector], round: Int) throws -> SecureSumResult {
        guard let first = contributions.values.first else { throw SecureSumError.noContributions }
        var total = ModularVector(zeros: first.count, bitWidth: first.bitWidth)
        for (_, vector) in contributions.sorted(by: { $0.key < $1.key }) { try total.add(vector) }
        return SecureSumResult(sum: total, survivors: Array(contributions.keys))
    }
}

/// Failures common to every backend.
public enum SecureSumError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The round had no contributions at all.
    case noContributions
    /// Fewer participants survived than the backend needs.
    case tooFewSurvivors(String)

    public var description: String {
        switch self {
        case .noContributions: "no participant contributed to the round"
        case .tooFewSurvivors(let why): "the round ended without a sum: \(why)"
        }
    }
}
