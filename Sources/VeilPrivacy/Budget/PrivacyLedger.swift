import Foundation

/// What each participant has spent, across every round and federation it contributed to,
/// and who may still be selected. Sans-IO: the coordinator asks before a round, charges after
/// it, and stores the ledger (it is `Codable`) wherever it keeps its state.
///
/// A participant's spending is the RDP composition of the rounds it actually contributed to,
/// without amplification by sampling (it was in the sample), converted at the ledger's δ.
/// One more round is allowed only if the spending after it stays within the budget, so the
/// ledger never lets a participant pass its budget (`Specs/privacy.md` §6).
public struct PrivacyLedger: Codable, Hashable, Sendable {
    /// The budget every participant gets.
    public struct Policy: Codable, Hashable, Sendable {
        public var epsilon: Double
        public var delta: Double
        /// Alert once a participant has spent at least this fraction of its ε budget.
        public var alertFraction: Double

        public init(epsilon: Double, delta: Double, alertFraction: Double = 0.8) {
            self.epsilon = epsilon
            self.delta = delta
            self.alertFraction = alertFraction
        }
    }

    /// The answer for one candidate.
    public enum Admission: Hashable, Sendable {
        /// Selected; `alert` when this round takes the spending past the alert fraction (once per participant).
        case admitted(epsilonAfter: Double, alert: Bool)
        /// Not selected: what the participant would be told.
        case refused(Refusal)
    }

    /// Why a participant is not selected.
    public struct Refusal: Hashable, Sendable, CustomStringConvertible {
        public let participant: String
        public let spent: Double
        public let wouldSpend: Double
        public let budget: Double

        public var description: String {
            String(
                format:
                    "%@ is not selected: its privacy budget ε = %.4g would be exceeded (spent %.4g; this round would make it %.4g)",
                participant, budget, spent, wouldSpend)
        }
    }

    public let policy: Policy
    private var accounts: [String: RDPAccountant] = [:]

    public init(policy: Policy) {
        precondition(policy.epsilon > 0 && policy.delta > 0 && policy.delta < 1, "an invalid budget")
        self.policy = policy
    }

    /// ε spent so far by a participant (0 for one never charged).
    public func spent(by participant: String) -> Double {
        accounts[participant]?.epsilon(delta: policy.delta).epsilon ?? 0
    }

    /// Every participant charged so far, with its ε, ascending by name.
    public var balances: [(participant: String, epsilon: Double)] {
        accounts.keys.sorted().map { ($0, spent(by: $0)) }
    }

    /// Whether a participant may contribute one more round that costs `round` (the RDP curve of
    /// one unsampled release, over the ledger's orders).
    public func admit(_ participant: String, round: RDPAccountant) -> Admission {
        var after = accounts[participant] ?? RDPAccountant(orders: round.orders)
        after.compose(round)
        let epsilonAfter = after.epsilon(delta: policy.delta).epsilon
        if epsilonAfter > policy.epsilon {
            return .refused(
                Refusal(
                    participant: participant, spent: spent(by: participant), wouldSpend: epsilonAfter,
                    budget: policy.epsilon))
        }
        let threshold = policy.alertFraction * policy.epsilon
        return .admitted(
            epsilonAfter: epsilonAfter, alert: spent(by: participant) < threshold && epsilonAfter >= threshold)
    }

    /// Records that the participants contributed to a round that cost `round`.
    public mutating func charge(_ participants: some Sequence<String>, round: RDPAccountant) {
        for participant in participants {
            accounts[participant, default: RDPAccountant(orders: round.orders)].compose(round)
        }
    }
}
