import Foundation

/// What a participant did in one attempt it was invited to, as the coordinator observed it
/// (`Specs/orchestration.md` §6). Nothing here comes from the participant's word.
public enum ParticipationOutcome: String, Codable, CaseIterable, Hashable, Sendable {
    /// Its input is in the attempt's released sum.
    case contributed
    /// It went silent, disconnected, or was dropped for a message that failed the checks.
    case dropped
    /// It declined the round (its own policy, budget or training failed).
    case declined
    /// Its own signed messages prove a fault (recorded with the evidence).
    case faulted
    /// It was invited to an attempt that failed through no fault of its own: it answered, or
    /// its client aborted because a neighbour misbehaved.
    case excused
}

/// The constants of the reputation rule.
public struct ReputationParameters: Hashable, Sendable {
    /// An event's weight halves every `halfLife` rounds.
    public var halfLife = 20.0
    /// What each outcome adds to the negative evidence (a contribution adds to the positive,
    /// between 1/2 and 1 by timeliness).
    public var dropped = 1.0
    public var declined = 0.5
    public var faulted = 4.0

    public init() {}

    public func validate() throws(LearningError) {
        func require(_ ok: Bool, _ why: String) throws(LearningError) { if !ok { throw .invalidConfiguration(why) } }
        try require(halfLife > 0 && halfLife.isFinite, "the reputation half-life must be positive")
        for (value, name) in [(dropped, "dropped"), (declined, "declined"), (faulted, "faulted")] {
            try require(value >= 0 && value.isFinite, "the weight of \(name) must be at least 0")
        }
    }
}

/// One participant's reputation: a beta-reputation (Jøsang and Ismail, 2002) over decayed
/// evidence. P and N are the positive and negative evidence as of round `round`; the score at
/// round R is (1 + P·f) / (2 + (P + N)·f) with f = 2^(−(R − round)/halfLife), so a newcomer and
/// a participant long unseen both stand at 1/2, and old behaviour is forgiven at the half-life.
public struct Reputation: Hashable, Sendable {
    public private(set) var positive = 0.0
    public private(set) var negative = 0.0
    public private(set) var round = 0
    /// Events by outcome, undecayed (reported beside the score).
    public private(set) var counts: [ParticipationOutcome: Int] = [:]

    public init() {}

    /// Adds one attempt's outcome in round `round` (rounds never go back). `timeliness` is the
    /// fraction of the training deadline left when the participant's first message arrived,
    /// in [0, 1]; only a contribution uses it.
    public mutating func record(
        _ outcome: ParticipationOutcome, timeliness: Double, round: Int, parameters: ReputationParameters
    ) {
        decay(to: round, parameters)
        counts[outcome, default: 0] += 1
        switch outcome {
        case .contributed: positive += 0.5 + 0.5 * min(max(timeliness.isFinite ? timeliness : 0, 0), 1)
        case .dropped: negative += parameters.dropped
        case .declined: negative += parameters.declined
        case .faulted: negative += parameters.faulted
        case .excused: break
        }
    }

    /// The score in (0, 1) at round `round` (not before the last event's).
    public func score(at round: Int, parameters: ReputationParameters) -> Double {
        var copy = self
        copy.decay(to: round, parameters)
        return (1 + copy.positive) / (2 + copy.positive + copy.negative)
    }

    private mutating func decay(to round: Int, _ parameters: ReputationParameters) {
        guard round > self.round else { return }
        let factor = exp2(-Double(round - self.round) / parameters.halfLife)
        positive *= factor
        negative *= factor
        self.round = round
    }
}
