import Foundation

/// Differential privacy in the service: participants clip; the coordinator adds Gaussian
/// noise to each round's sum (`central`, `Specs/wire.md` §4.2) or each participant adds its
/// share of integer noise inside the secure sum (`ddg`, `skellam`, §4.3); a ledger in the
/// store keeps what each participant has spent.
public struct ServicePrivacy: Codable, Hashable, Sendable {
    /// Who adds the noise.
    public enum Mode: String, Codable, Hashable, Sendable, CaseIterable {
        case central, ddg, skellam
    }

    public var mode: Mode = .central
    /// The (ε, δ) a participant that contributes to every one of `rounds` rounds ends with:
    /// the noise is calibrated to it, without amplification by sampling (the coordinator
    /// chooses the cohort, so no sampling randomness is hidden from it).
    public var epsilon: Double
    public var delta = 1e-5
    /// C: the L2 bound on each participant's update.
    public var clip = 1.0
    /// Each participant's ε budget (at `delta`), across rounds and runs; nil: `epsilon`.
    public var participantBudget: Double?
    /// Alert when a participant has spent this fraction of its budget.
    public var alertFraction = 0.8
    /// `ddg`/`skellam`: the secure sum's modulus 2^bits.
    public var bits = 20
    /// `ddg`/`skellam`: the fewest noise shares a released sum carries — the secure sum's
    /// threshold is raised to it, so no sum with fewer can be unmasked. nil: `min_participants`.
    public var minContributors: Int?

    public init(epsilon: Double, mode: Mode = .central) {
        self.epsilon = epsilon
        self.mode = mode
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode, epsilon, delta, clip, participantBudget, alertFraction, bits, minContributors
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "privacy")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(epsilon: try c.decode(Double.self, forKey: .epsilon))
        try c.take(.mode, &mode); try c.take(.bits, &bits)
        minContributors = try c.decodeIfPresent(Int.self, forKey: .minContributors)
        try c.take(.delta, &delta); try c.take(.clip, &clip)
        participantBudget = try c.decodeIfPresent(Double.self, forKey: .participantBudget)
        try c.take(.alertFraction, &alertFraction)
    }

    /// The budget the ledger applies.
    public var budget: Double { participantBudget ?? epsilon }

    func validate() throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigurationError(why) } }
        try require(epsilon > 0 && epsilon.isFinite, "privacy.epsilon must be positive")
        try require(delta > 0 && delta < 1, "privacy.delta must be in (0, 1)")
        try require(clip > 0 && clip.isFinite, "privacy.clip must be positive")
        try require(budget > 0 && budget.isFinite, "privacy.participant_budget must be positive")
        try require(alertFraction > 0 && alertFraction <= 1, "privacy.alert_fraction must be in (0, 1]")
        try require((8...62).contains(bits), "privacy.bits must be in 8...62")
        try require((minContributors ?? 1) >= 1, "privacy.min_contributors must be at least 1")
    }
}
