import Foundation

/// serve.json's `hierarchy`: hierarchical secure aggregation across a tier of `veil serve`
/// processes on one PostgreSQL store (`Specs/wire.md` §6.3). Every process is an aggregator:
/// participants connect to it, and it runs the secure sum of one group of a round at a time;
/// the one holding the lease also leads — it opens each round with its number of groups,
/// and combines the groups' sums into the model.
public struct ServiceHierarchy: Codable, Hashable, Sendable {
    /// The members an aggregator asks for in one group.
    public var groupSize = 100
    /// The fewest members a group may start with: every released group sum is over at least
    /// the session's threshold of them, and a participant's own policy may ask for more.
    public var minGroupSize = 10
    /// How long the leader waits for a round's groups before it commits those done (if they
    /// hold `min_participants` contributors) or abandons the attempt.
    public var roundSeconds = 600.0
    /// Participants an aggregator serves at once; a further one is refused with a retry hint
    /// naming aggregators with room (0: no limit).
    public var maxConnections = 0
    /// The delay the retry hint asks a refused participant to wait.
    public var retryAfterSeconds = 2.0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case groupSize, minGroupSize, roundSeconds, maxConnections, retryAfterSeconds
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "hierarchy")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.take(.groupSize, &groupSize)
        try c.take(.minGroupSize, &minGroupSize)
        try c.take(.roundSeconds, &roundSeconds)
        try c.take(.maxConnections, &maxConnections)
        try c.take(.retryAfterSeconds, &retryAfterSeconds)
    }

    /// The most groups a round of `cohortSize` can have (each has at least `min_group_size`
    /// members, and a round at most `cohortSize`): its slots. How many it has depends on where
    /// its participants are — an aggregator with 2,500 of them and groups of 1,000 runs three.
    public func groups(cohortSize: Int) -> Int { max(1, cohortSize / minGroupSize) }

    func validate(_ c: ServeConfiguration) throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigurationError(why) } }
        try require(c.postgres != nil, "hierarchy needs a postgres store: the tier shares its rounds there")
        try require(minGroupSize >= 2, "hierarchy.min_group_size must be at least 2 (a secure sum needs two)")
        try require(groupSize >= minGroupSize, "hierarchy.group_size must be at least hierarchy.min_group_size")
        try require(groupSize <= c.cohortSize, "hierarchy.group_size must be at most cohort_size")
        try require(
            c.minParticipants >= minGroupSize, "min_participants must be at least hierarchy.min_group_size")
        try require(roundSeconds > 0 && roundSeconds <= 86_400, "hierarchy.round_seconds must be in (0, 86400]")
        try require(maxConnections >= 0, "hierarchy.max_connections must be at least 0 (0: no limit)")
        try require(
            maxConnections == 0 || maxConnections >= minGroupSize,
            "hierarchy.max_connections must be 0 or at least hierarchy.min_group_size")
        try require(
            retryAfterSeconds > 0 && retryAfterSeconds <= 3600, "hierarchy.retry_after_seconds must be in (0, 3600]")
        // What a group sum does not do yet, each with its reason (Specs/wire.md §6.3).
        try require(
            c.secureSum == .secagg,
            "hierarchy runs each group's sum with secagg: a Paillier group would need the key holder at every aggregator"
        )
        try require(
            c.asynchronous == nil,
            "hierarchy and asynchronous: a buffer of held updates is one offer at one coordinator, not split into groups"
        )
        try require(
            c.privacy == nil || c.privacy?.mode != .central,
            "hierarchy with privacy.mode central: the noise would be added by each aggregator to a group sum it saw exact; use a distributed mode"
        )
        if let privacy = c.privacy {
            // Each group sum is released on its own: it must carry enough noise shares by itself.
            try require(
                (privacy.minContributors ?? c.minParticipants) <= minGroupSize,
                "hierarchy with privacy: privacy.min_contributors (the noise shares every released sum carries) must be at most hierarchy.min_group_size, as each group's sum is released on its own"
            )
        }
        try require(
            c.adaptiveCompression == nil,
            "hierarchy and adaptive_compression: each group would choose its own subset from its members' links, and the groups' sums would not add up coordinate by coordinate; a fixed subset is fine"
        )
        try require(
            c.selection == .random,
            "hierarchy selects each group at random among the aggregator's free participants: selection \(c.selection.rawValue) needs the whole cohort at one coordinator"
        )
    }
}
