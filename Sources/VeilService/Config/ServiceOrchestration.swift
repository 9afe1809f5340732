import Foundation
import VeilLearning

/// serve.json's `orchestration`: the fairness floor and the reputation that selection uses
/// (`Specs/orchestration.md` §5–§6). Reputation is always kept; these settings decide how far
/// selection listens to it.
public struct ServiceOrchestration: Codable, Hashable, Sendable {
    /// A participant not invited for this many rounds is invited first (nil: no floor).
    public var maxGap: Int?
    /// Participants whose reputation is below this are not selected (0: everyone may be).
    public var minReputation = 0.0
    /// Selection weighs each candidate by reputation^w (random and oort; 0: not at all).
    public var reputationWeight = 0.0
    /// The reputation's half-life in rounds.
    public var reputationHalfLife = 20.0
    /// With `oort`, the weights of its criteria (`Specs/orchestration.md` §5): the statistical
    /// utility term, the staleness bonus, and the system-utility (straggler) exponent α.
    public var statisticalWeight = 1.0
    public var stalenessWeight = 0.1
    public var systemWeight = 2.0
    /// With `oort`: the clip of the losses participants are asked to reveal; the coordinator
    /// clamps every report to [0, loss_clip], so one participant's overstated loss cannot
    /// dwarf everyone else's (`Specs/orchestration.md` §5.1).
    public var lossClip = 10.0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxGap, minReputation, reputationWeight, reputationHalfLife, lossClip
        case statisticalWeight, stalenessWeight, systemWeight
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "orchestration")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxGap = try c.decodeIfPresent(Int.self, forKey: .maxGap)
        try c.take(.minReputation, &minReputation); try c.take(.reputationWeight, &reputationWeight)
        try c.take(.reputationHalfLife, &reputationHalfLife); try c.take(.lossClip, &lossClip)
        try c.take(.statisticalWeight, &statisticalWeight); try c.take(.stalenessWeight, &stalenessWeight)
        try c.take(.systemWeight, &systemWeight)
    }

    /// Oort's parameters: its defaults with these weights.
    public var oort: OortParameters {
        var parameters = OortParameters()
        parameters.statistical = statisticalWeight
        parameters.staleness = stalenessWeight
        parameters.straggler = systemWeight
        return parameters
    }

    public var reputation: ReputationParameters {
        var parameters = ReputationParameters()
        parameters.halfLife = reputationHalfLife
        return parameters
    }

    func validate() throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigurationError(why) } }
        try require((maxGap ?? 1) >= 1, "orchestration.max_gap must be at least 1")
        // A reputation never reaches 0 or 1, and a newcomer stands at 1/2: a minimum of 1/2 or
        // more would keep every newcomer out.
        try require(
            minReputation >= 0 && minReputation < 0.5, "orchestration.min_reputation must be in [0, 0.5)")
        try require(
            reputationWeight >= 0 && reputationWeight <= 16, "orchestration.reputation_weight must be in [0, 16]")
        try require(
            reputationHalfLife > 0 && reputationHalfLife <= 1e6,
            "orchestration.reputation_half_life must be in (0, 1000000]")
        try require(lossClip > 0 && lossClip <= 1_000_000, "orchestration.loss_clip must be in (0, 1000000]")
        for (value, key) in [
            (statisticalWeight, "statistical_weight"), (stalenessWeight, "staleness_weight"),
            (systemWeight, "system_weight"),
        ] {
            try require(value >= 0 && value <= 16, "orchestration.\(key) must be in [0, 16]")
        }
    }
}
