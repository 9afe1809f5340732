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

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxGap, minReputation, reputationWeight, reputationHalfLife
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "orchestration")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxGap = try c.decodeIfPresent(Int.self, forKey: .maxGap)
        try c.take(.minReputation, &minReputation); try c.take(.reputationWeight, &reputationWeight)
        try c.take(.reputationHalfLife, &reputationHalfLife)
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
    }
}
