import Foundation
import Logging
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPrivacy

/// What the leader does with a round's groups (`Specs/wire.md` §6.3), decided from the store's
/// rows alone — so that every path, including those only a deadline reaches, runs in a unit test.
public enum TierDecision: Equatable, Sendable {
    /// Some groups are still to come, and there is time.
    case wait
    /// Combine the done groups (these slots) into the round's sum.
    case combine(slots: [Int])
    /// Too few contributors when the time ran out: a new attempt.
    case abandon(reason: String)

    /// Combined once no further group will come — none running under a holder alive or dead
    /// for less than three liveness windows (its members, reconnecting elsewhere, may form its
    /// group again), and the cohort full, every slot done, or every live aggregator counting
    /// fewer than `min_group_size` free participants for this attempt — when the groups' contributors
    /// number at least `min_participants` (the round's floor holds across groups as it does in
    /// one). At the deadline, combined if they do, abandoned if not.
    public static func decide(
        _ round: CoordinatorStore.TierRound, groups: [CoordinatorStore.TierGroup],
        aggregators: [CoordinatorStore.AggregatorLoad], hierarchy: ServiceHierarchy, cohortSize: Int,
        minParticipants: Int
    ) -> TierDecision {
        let done = groups.filter { $0.status == "done" }
        let running = groups.filter { $0.status == "running" && $0.recent }
        let used = CoordinatorStore.busy(groups).count
        let attempt = CoordinatorStore.AggregatorLoad.Waiting(round: round.number, attempt: round.attempt)
        let exhausted =
            running.isEmpty
            && (used >= cohortSize || done.count >= round.groups
                || aggregators.allSatisfy { $0.waitingFor == attempt && $0.waiting < hierarchy.minGroupSize })
        let contributors = done.reduce(0) { $0 + $1.contributors.count }
        if exhausted && contributors >= minParticipants && !done.isEmpty {
            return .combine(slots: done.map(\.slot))
        }
        guard round.remaining <= 0 else { return .wait }
        if contributors >= minParticipants { return .combine(slots: done.map(\.slot)) }
        return .abandon(
            reason:
                "\(contributors) contributors in \(done.count) groups when hierarchy.round_seconds ran out (min_participants \(minParticipants))"
        )
    }
}

/// The leader of a tier running hierarchical secure aggregation (`Specs/wire.md` §6.3): it
/// opens each round with its number of groups, waits for the aggregators' group sums, and
/// combines them — the model updated, the ledger charged and the checkpoint written in one
/// transaction, through its fenced store. It sees group sums only, never a member's update.
public actor TierLeader {
    let configuration: ServeConfiguration
    let hierarchy: ServiceHierarchy
    let store: CoordinatorStore
    let liveness: Double
    let logger: Logger
    let clock: any Clock<Duration>
    let model: FederatedModel
    var algorithm: FedAvgFamily
    let evaluation: Dataset?
    let privacy: ServicePrivacyPlan?
    var ledger: PrivacyLedger?
    var completedRounds = 0

    /// Opens the store behind `fence` and resumes from its last checkpoint.
    public init(
        configuration: ServeConfiguration, fence: CoordinatorStore.Lease, stores: any StoreDriver,
        logger: Logger = Logger(label: "veil.leader"), clock: any Clock<Duration> = ContinuousClock()
    ) throws {
        guard let hierarchy = configuration.hierarchy, let settings = configuration.postgres else {
            throw ConfigurationError("a tier leader needs hierarchy and postgres")
        }
        self.configuration = configuration
        self.hierarchy = hierarchy
        liveness = settings.leaseSeconds
        self.logger = logger
        self.clock = clock
        store = try CoordinatorStore(configuration.store, driver: stores, fence: fence)
        model = try FederatedModel(
            configuration.model.description, featureCount: configuration.features, classCount: configuration.classes)
        var initGenerator = Xoshiro256(seed: configuration.seed, purpose: .initialParameters)
        let initial = model.initialParameters(using: &initGenerator)
        if let (round, state) = try store.latestCheckpoint() {
            algorithm = state
            completedRounds = round
        } else {
            algorithm = configuration.initialAlgorithm(initial)
        }
        (privacy, ledger) = try Coordinator.privacyPlan(
            configuration, store: store, updateLength: model.parameterCount)
        evaluation = try configuration.evaluationSet()
    }

    /// Leads rounds until `rounds` are committed; gives up (and says so in the store, which
    /// stops the aggregators) after `max_round_attempts` abandoned attempts in a row.
    public func run(progress: @escaping @Sendable (RoundSummary) -> Void = { _ in }) async throws
        -> FederationSummary
    {
        var summaries: [RoundSummary] = []
        var abandonedInARow = 0
        // A tier started again after its leader gave up runs again: the aggregators stop only
        // for this leader's own giving up.
        if try store.value(Coordinator.tierStoppedKey)?.isEmpty == false {
            try store.setValue("", for: Coordinator.tierStoppedKey)
        }
        while completedRounds < configuration.rounds {
            let summary = try await lead(completedRounds + 1)
            summaries.append(summary)
            progress(summary)
            abandonedInARow = summary.completed ? 0 : abandonedInARow + 1
            if abandonedInARow >= configuration.maxRoundAttempts {
                let reason =
                    "round \(summary.number) was abandoned \(abandonedInARow) times in a row; the last time: \(summary.abortReason ?? "-")"
                try store.setValue(reason, for: Coordinator.tierStoppedKey)
                return FederationSummary(
                    completedRounds: completedRounds, attempts: summaries.count, finalAccuracy: nil,
                    rounds: summaries, stopReason: reason, gaveUp: true)
            }
        }
        return FederationSummary(
            completedRounds: completedRounds, attempts: summaries.count,
            finalAccuracy: summaries.last(where: \.completed)?.accuracy, rounds: summaries, stopReason: nil,
            gaveUp: false)
    }

    /// One attempt at round `number`: the one a previous leader left open, or a new one.
    private func lead(_ number: Int) async throws -> RoundSummary {
        let started = ContinuousClock.now
        var round: CoordinatorStore.TierRound
        if let open = try store.tierRound(number), open.status == "open" || open.status == "combining" {
            round = open
            logger.info("resuming the open round", metadata: ["round": "\(number)", "attempt": "\(open.attempt)"])
        } else {
            let attempt = try store.nextAttempt(of: number)
            let groups = hierarchy.groups(cohortSize: configuration.cohortSize)
            try store.beginRound(number, attempt: attempt, cohort: configuration.cohortSize)
            try store.openTierRound(number, attempt: attempt, groups: groups, seconds: hierarchy.roundSeconds)
            round = try store.tierRound(number)!
            logger.info(
                "round opened", metadata: ["round": "\(number)", "attempt": "\(attempt)", "slots": "\(groups)"])
        }
        while true {
            let groups = try store.tierGroups(round: number, attempt: round.attempt, liveness: liveness)
            let decision =
                round.status == "combining"
                ? .combine(slots: groups.filter { $0.status == "done" }.map(\.slot))
                : TierDecision.decide(
                    round, groups: groups, aggregators: try store.aggregators(liveness: liveness),
                    hierarchy: hierarchy, cohortSize: configuration.cohortSize,
                    minParticipants: configuration.minParticipants)
            switch decision {
            case .wait:
                try await clock.sleep(for: .milliseconds(200))
                round = try store.tierRound(number)!
            case .combine:
                if let summary = try combine(round, started: started) { return summary }
                return try abandon(
                    round, groups: groups, started: started,
                    reason:
                        "fewer than min_participants \(configuration.minParticipants) contributors in the groups that may be combined"
                )
            case .abandon(let reason):
                return try abandon(round, groups: groups, started: started, reason: reason)
            }
        }
    }

    /// Ends an attempt without a model update.
    private func abandon(
        _ round: CoordinatorStore.TierRound, groups: [CoordinatorStore.TierGroup], started: ContinuousClock.Instant,
        reason: String
    ) throws -> RoundSummary {
        let number = round.number
        // The done groups' sums were released — the leader and the database can read
        // them — though the model does not use them: their contributors are charged.
        let released = groups.filter { $0.status == "done" }.flatMap(\.contributors)
        if let privacy, !released.isEmpty { ledger?.charge(released, round: privacy.participation) }
        try store.finishRound(
            number, attempt: round.attempt,
            record: .init(
                outcome: "aborted", survivors: 0, abortReason: reason, transcriptHash: [], bytesIn: 0,
                bytesOut: 0, contributors: []),
            checkpoint: nil, accuracy: nil, ledger: released.isEmpty ? nil : ledger)
        try store.closeTierRound(number, attempt: round.attempt, status: "abandoned")
        logger.warning("round abandoned", metadata: ["round": "\(number)", "reason": "\(reason)"])
        return RoundSummary(
            number: number, attempt: round.attempt, completed: false, cohort: 0, survivors: 0,
            abortReason: reason, seconds: seconds(since: started), bytesIn: 0, bytesOut: 0, accuracy: nil,
            loss: nil, cryptoSeconds: 0)
    }

    /// The done groups the leader may add, and why each other is left out: a sum of another
    /// length than the model's payload, a slot beyond the attempt's, a contributor not among
    /// the group's members, or one already counted in an earlier slot's group. The store
    /// refuses all of these; a process writing the database directly would not be.
    static func usable(_ done: [CoordinatorStore.TierGroup], length: Int, slots: Int) -> (
        kept: [CoordinatorStore.TierGroup], leftOut: [(slot: Int, why: String)]
    ) {
        var kept: [CoordinatorStore.TierGroup] = []
        var leftOut: [(slot: Int, why: String)] = []
        var counted: Set<String> = []
        for group in done.sorted(by: { $0.slot < $1.slot }) {
            let why: String? =
                if group.sum.count != length { "\(group.sum.count) values, not \(length)" } else if group.slot >= slots
                {
                    "slot \(group.slot) beyond the attempt's \(slots)"
                } else if !Set(group.contributors).isSubset(of: group.members) {
                    "a contributor is not a member"
                } else if !counted.isDisjoint(with: group.contributors) { "a contributor is already counted" } else {
                    nil
                }
            if let why {
                leftOut.append((group.slot, why))
            } else {
                kept.append(group)
                counted.formUnion(group.contributors)
            }
        }
        return (kept, leftOut)
    }

    /// Freezes the attempt (no deposit counts after this), sums the usable done groups' sums,
    /// updates the model and commits it with the ledger's charge; nil (nothing committed) when
    /// the usable groups' contributors number fewer than `min_participants`.
    private func combine(_ round: CoordinatorStore.TierRound, started: ContinuousClock.Instant) throws
        -> RoundSummary?
    {
        let number = round.number
        let began = ContinuousClock.now
        if round.status == "open" { try store.closeTierRound(number, attempt: round.attempt, status: "combining") }
        let done = try store.tierGroups(round: number, attempt: round.attempt, liveness: liveness).filter {
            $0.status == "done"
        }
        let length = algorithm.payloadLength
        let (usable, leftOut) = Self.usable(done, length: length, slots: round.groups)
        for (slot, why) in leftOut {
            logger.error("group sum left out", metadata: ["round": "\(number)", "slot": "\(slot)", "why": "\(why)"])
        }
        guard usable.reduce(0, { $0 + $1.contributors.count }) >= configuration.minParticipants else { return nil }
        var sum = [Double](repeating: 0, count: length)
        var contributors: [String] = []
        var transcripts: [UInt8] = []
        var members = 0
        var crypto = 0.0
        for group in usable {
            for i in 0..<length { sum[i] += group.sum[i] }
            contributors += group.contributors
            transcripts += group.transcript
            members += group.members.count
            crypto += group.cryptoSeconds
        }
        algorithm.serverUpdate(sum: sum, contributors: contributors.count)
        // Groups are disjoint: each contributor's update is in one released group sum, so the
        // round costs each the mechanism once (`Specs/wire.md` §6.3).
        if let privacy { ledger?.charge(contributors, round: privacy.participation) }
        let evaluated = evaluation.flatMap { data in
            model.veil.map { algorithm.evaluate(model: $0, on: data) }
        }
        try store.finishRound(
            number, attempt: round.attempt,
            record: .init(
                outcome: "completed", survivors: contributors.count, abortReason: nil,
                transcriptHash: SHA256.hash(transcripts), bytesIn: 0, bytesOut: 0, contributors: contributors.sorted()),
            checkpoint: algorithm, accuracy: evaluated?.accuracy, ledger: ledger)
        try store.closeTierRound(number, attempt: round.attempt, status: "committed", seconds: seconds(since: began))
        completedRounds = number
        logger.info(
            "round committed",
            metadata: ["round": "\(number)", "groups": "\(usable.count)", "contributors": "\(contributors.count)"])
        return RoundSummary(
            number: number, attempt: round.attempt, completed: true, cohort: members, survivors: contributors.count,
            abortReason: nil, seconds: seconds(since: started), bytesIn: 0, bytesOut: 0,
            accuracy: evaluated?.accuracy, loss: evaluated?.loss, cryptoSeconds: crypto)
    }

    /// Ends the store (a clean stop).
    public func close() throws { try store.close() }
}
