import Foundation

/// The credit rule (`Specs/orchestration.md` §7): what one contribution to a completed round
/// earns, from the contributor's reputation before the round and its example count against
/// the round's mean. The count is the participant's own report and cannot be checked, so it
/// can at most double the base: a participant that overstates it gains at most ×1.5 over an
/// honest one with the round's mean count.
public enum CreditRule {
    /// Credits of a contribution: ρ · (1/2 + 1/2 · min(n / n̄, 2)), ρ the reputation, n the
    /// example count, n̄ the mean over the round's contributors (n / n̄ = 1 when n̄ is 0).
    public static func credits(reputation: Double, examples: Int, meanExamples: Double) -> Double {
        let share = meanExamples > 0 ? Double(max(examples, 0)) / meanExamples : 1
        return reputation * (0.5 + 0.5 * min(share, 2))
    }

    /// The payout factor from a marginal estimate μ (accuracy, as a fraction): 1 + clamp(10 μ,
    /// −1/2, 1/2) — rounds with a participant in them gained a point of accuracy more than
    /// rounds without it: +10 %; no estimate: 1.
    public static func factor(marginal: Double?) -> Double {
        guard let marginal, marginal.isFinite else { return 1 }
        return 1 + min(max(10 * marginal, -0.5), 0.5)
    }
}

/// A completed round as the marginal estimate sees it: who contributed, and the test accuracy
/// of the global model before and after.
public struct CohortRound: Hashable, Sendable {
    public let round: Int
    public let contributors: Set<String>
    public let gain: Double

    public init(round: Int, contributors: Set<String>, accuracyBefore: Double, accuracyAfter: Double) {
        self.round = round
        self.contributors = contributors
        gain = accuracyAfter - accuracyBefore
    }
}

/// An estimate of each participant's marginal contribution from cohort-level signals only:
/// the regression of the rounds' accuracy gain on membership, one participant at a time —
/// μ_i = mean gain of the rounds i contributed to − mean gain of the others. It needs
/// `minimumRounds` rounds on each side, and it sees only what the coordinator already knows
/// (cohorts and the aggregate model's accuracy), never an update.
public struct MarginalEstimate: Hashable, Sendable {
    public let participant: String
    /// nil when either side has fewer than the minimum of rounds.
    public let marginal: Double?
    public let roundsWith: Int
    public let roundsWithout: Int

    public static let minimumRounds = 3

    public static func estimate(_ rounds: [CohortRound], participants: [String]) -> [String: MarginalEstimate] {
        var result: [String: MarginalEstimate] = [:]
        for id in participants {
            let with = rounds.filter { $0.contributors.contains(id) }.map(\.gain)
            let without = rounds.filter { !$0.contributors.contains(id) }.map(\.gain)
            let enough = with.count >= minimumRounds && without.count >= minimumRounds
            let marginal =
                enough
                ? with.reduce(0, +) / Double(with.count) - without.reduce(0, +) / Double(without.count) : nil
            result[id] = MarginalEstimate(
                participant: id, marginal: marginal, roundsWith: with.count, roundsWithout: without.count)
        }
        return result
    }
}
