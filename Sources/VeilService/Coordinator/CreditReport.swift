import Foundation
import VeilLearning

/// The credit ledger as `veil credits` shows it (`Specs/orchestration.md` §7): per
/// participant, what it did, its reputation now, the credits its contributions earned, the
/// marginal estimate and the payout it implies — all read from the coordinator's store.
public struct CreditReport: Sendable {
    public struct Entry: Codable, Hashable, Sendable {
        public let participant: String
        public let invited: Int
        public let contributed: Int
        public let dropped: Int
        public let declined: Int
        public let faulted: Int
        public let excused: Int
        public let reputation: Double
        public let credits: Double
        /// Accuracy gained by rounds with the participant minus rounds without (a fraction);
        /// nil with fewer than ``MarginalEstimate/minimumRounds`` rounds on either side.
        public let marginal: Double?
        public let payout: Double

        enum CodingKeys: String, CodingKey {
            case participant, invited, contributed, dropped, declined, faulted, excused, reputation, credits
            case marginal, payout
        }

        /// `marginal` is written as null when there is none, not left out.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(participant, forKey: .participant); try c.encode(invited, forKey: .invited)
            try c.encode(contributed, forKey: .contributed); try c.encode(dropped, forKey: .dropped)
            try c.encode(declined, forKey: .declined); try c.encode(faulted, forKey: .faulted)
            try c.encode(excused, forKey: .excused); try c.encode(reputation, forKey: .reputation)
            try c.encode(credits, forKey: .credits); try c.encode(marginal, forKey: .marginal)
            try c.encode(payout, forKey: .payout)
        }
    }

    /// The latest completed round the report covers.
    public let round: Int
    public let entries: [Entry]

    /// Reads the store of `configuration` without changing it (a coordinator may be running on
    /// it); reputations are folded from the participation rows exactly as the coordinator folds
    /// them.
    public static func load(
        _ configuration: ServeConfiguration, stores: any StoreDriver = SQLiteStoreDriver()
    ) throws -> CreditReport {
        let participation: [CoordinatorStore.Participation]
        let credits: [CoordinatorStore.Credit]
        let accuracies: [Int: Double]
        let round: Int
        do {
            let store = try CoordinatorStore(reading: configuration.store, driver: stores)
            participation = try store.participation()
            credits = try store.credits()
            accuracies = try store.accuracies()
            round = try store.latestRound()
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError("cannot read the coordinator's store at \(configuration.store): \(error)")
        }
        let book = OrchestrationBook(
            settings: configuration.orchestration, history: participation)
        // The marginal estimate over completed rounds whose model and predecessor were both
        // evaluated.
        let contributorsByRound = Dictionary(grouping: credits, by: \.round).mapValues { Set($0.map(\.participant)) }
        let rounds = contributorsByRound.keys.sorted().compactMap { r -> CohortRound? in
            guard let after = accuracies[r], let before = accuracies[r - 1] else { return nil }
            return CohortRound(
                round: r, contributors: contributorsByRound[r]!, accuracyBefore: before, accuracyAfter: after)
        }
        let ids = Set(participation.map(\.participant)).sorted()
        let estimates = MarginalEstimate.estimate(rounds, participants: ids)
        let earned = Dictionary(grouping: credits, by: \.participant).mapValues { $0.reduce(0) { $0 + $1.credits } }
        let entries = ids.map { id -> Entry in
            let c = book.reputations[id]?.counts ?? [:]
            let marginal = estimates[id]?.marginal
            return Entry(
                participant: id, invited: c.values.reduce(0, +), contributed: c[.contributed] ?? 0,
                dropped: c[.dropped] ?? 0, declined: c[.declined] ?? 0, faulted: c[.faulted] ?? 0,
                excused: c[.excused] ?? 0,
                reputation: book.reputation(of: id, at: round + 1),
                credits: earned[id] ?? 0, marginal: marginal,
                payout: (earned[id] ?? 0) * CreditRule.factor(marginal: marginal))
        }
        return CreditReport(round: round, entries: entries)
    }
}
