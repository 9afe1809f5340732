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
    /// Too few contributors when every group is done or the time ran out: a new attempt.
    case abandon(reason: String)

    /// Every group done, or the time up: combined when their contributors number at least
    /// `min_participants` (the round's floor holds across groups as it does in one), else abandoned.
    public static func decide(
        _ round: CoordinatorStore.TierRound, groups: [CoordinatorStore.TierGroup], minParticipants: Int
    ) -> TierDecision {
        let done = groups.filter { $0.status == "done" }
        let complete = done.count >= round.groups
        guard complete || round.remaining <= 0 else { return .wait }
        let contributors = done.reduce(0) { $0 + $1.contributors.count }
        if contributors >= minParticipants { return .combine(slots: done.map(\.slot)) }
        return .abandon(
            reason:
                "\(contributors) contributors in \(done.count) of \(round.groups) groups \(complete ? "with every group done" : "when hierarchy.round_seconds ran out") (min_participants \(minParticipants))"
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
        switch configuration.evaluate {
        case .digits?:
            var c = FederatedConfiguration()
            c.seed = configuration.seed
            evaluation = try FederatedSimulation(configuration: c).data.test
        case nil: evaluation = nil
        }
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
                "round opened", metadata: ["round": "\(number)", "attempt": "\(attempt)", "groups": "\(groups)"])
        }
        while true {
            let groups = try store.tierGroups(round: number, attempt: round.attempt, liveness: liveness)
            let decision =
                round.status == "combining"
                ? .combine(slots: groups.filter { $0.status == "done" }.map(\.slot))
                : TierDecision.decide(round, groups: groups, minParticipants: configuration.minParticipants)
            switch decision {
            case .wait:
                try await clock.sleep(for: .milliseconds(200))
                round = try store.tierRound(number)!
            case .combine:
                return try combine(round, started: started)
            case .abandon(let reason):
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
        }
    }

    /// Freezes the attempt (no deposit counts after this), sums the done groups' sums, updates
    /// the model and commits it with the ledger's charge.
    private func combine(_ round: CoordinatorStore.TierRound, started: ContinuousClock.Instant) throws -> RoundSummary {
        let number = round.number
        let began = ContinuousClock.now
        if round.status == "open" { try store.closeTierRound(number, attempt: round.attempt, status: "combining") }
        let done = try store.tierGroups(round: number, attempt: round.attempt, liveness: liveness).filter {
            $0.status == "done"
        }
        let length = algorithm.payloadLength
        var sum = [Double](repeating: 0, count: length)
        var contributors: [String] = []
        var transcripts: [UInt8] = []
        var members = 0
        var crypto = 0.0
        var counted: Set<String> = []
        for group in done {
            // A group sum of another length is not this model's, and one sharing a contributor
            // with a group already summed would count an update twice (the store refuses both;
            // a process writing the database directly could not be): left out, and said.
            guard group.sum.count == length, counted.isDisjoint(with: group.contributors) else {
                logger.error(
                    "group sum left out",
                    metadata: [
                        "round": "\(number)", "slot": "\(group.slot)", "values": "\(group.sum.count)",
                        "overlapping": "\(!counted.isDisjoint(with: group.contributors))",
                    ])
                continue
            }
            counted.formUnion(group.contributors)
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
            metadata: ["round": "\(number)", "groups": "\(done.count)", "contributors": "\(contributors.count)"])
        return RoundSummary(
            number: number, attempt: round.attempt, completed: true, cohort: members, survivors: contributors.count,
            abortReason: nil, seconds: seconds(since: started), bytesIn: 0, bytesOut: 0,
            accuracy: evaluated?.accuracy, loss: evaluated?.loss, cryptoSeconds: crypto)
    }

    /// Ends the store (a clean stop).
    public func close() throws { try store.close() }
}
