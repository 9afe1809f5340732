import Foundation

/// What a federation run ended with.
public struct FederationSummary: Sendable {
    public let completedRounds: Int
    public let attempts: Int
    public let finalAccuracy: Double?
    public let rounds: [RoundSummary]
    /// Why the federation ended before `rounds` completed (the participants' privacy budgets
    /// are spent, or the coordinator was stopped); nil when it ran them all.
    public var stopReason: String? = nil
    /// Whether it stopped because a round kept failing (`max_round_attempts`): a failure, not
    /// an ending.
    public var gaveUp = false
    /// The participants' own summaries, when they ran in this process (``NetworkSimulation``).
    public var participants: [ParticipantSummary] = []
}

/// One secure-aggregation round as the coordinator saw it.
public struct RoundSummary: Sendable {
    public let number: Int
    public let attempt: Int
    public let completed: Bool
    /// Whether it ended because the coordinator was stopped during it.
    public var interrupted = false
    public let cohort: Int
    public let survivors: Int
    public let abortReason: String?
    public let seconds: Double
    public let bytesIn: Int
    public let bytesOut: Int
    public let accuracy: Double?
    public let loss: Double?
    /// Time spent in the secure-sum state machine (cryptography), and training plus waiting.
    public let cryptoSeconds: Double
    /// The fewest contributors the round's sum could be released over: the masking session's
    /// t, or a Paillier round's whole roster; nil when the round did not start.
    public var threshold: Int? = nil
    /// With `privacy`: the most ε any participant has spent after this round (at the configured δ).
    public var epsilon: Double? = nil
    /// With `privacy`: what the participants left out for their budget were told, and who
    /// passed the alert fraction of theirs in this round.
    public var budgetRefusals: [String] = []
    public var budgetAlerts: [String] = []
    /// The payload ring's bits and the share of update coordinates sent (`Specs/export.md`
    /// §5); nil when the round did not start.
    public var payloadBits: Int? = nil
    public var subsetFraction: Double? = nil
    /// Asynchronous federations (`Specs/wire.md` §4.4): each member's staleness τ, by id, as
    /// it announced its held update.
    public var staleness: [String: UInt64] = [:]
    /// Without privacy: the released sum's weight coordinate Σ s(τ)·p̃ over the contributors
    /// (each member weights its own update before masking); nil otherwise.
    public var totalWeight: Double? = nil
}
