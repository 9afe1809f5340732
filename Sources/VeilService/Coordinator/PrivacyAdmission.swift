import Foundation
import VeilPrivacy
import VeilWire

/// The coordinator's side of the privacy budgets: the calibrated plan and the ledger (kept
/// in the store), who may be selected, and who is warned.
extension Coordinator {
    /// The plan for `configuration.privacy`, and the ledger the store holds (or a new one).
    /// - Throws: ``ConfigurationError`` when the store's ledger was kept under another budget.
    static func privacyPlan(_ configuration: ServeConfiguration, store: CoordinatorStore, updateLength: Int) throws
        -> (ServicePrivacyPlan?, PrivacyLedger?)
    {
        guard let settings = configuration.privacy else { return (nil, nil) }
        let plan = try ServicePrivacyPlan(
            settings, rounds: configuration.rounds, updateLength: updateLength,
            minParticipants: configuration.minParticipants, cohortSize: configuration.cohortSize,
            subsetSizes: try configuration.subsetSizes(payloadLength: updateLength + 1))
        guard let stored = try store.ledger() else { return (plan, PrivacyLedger(policy: plan.policy)) }
        // A budget is a promise to the participants: changing it under a running federation
        // is refused rather than silently applied.
        guard stored.policy == plan.policy else {
            throw ConfigurationError(
                "the store's privacy ledger has budget ε = \(stored.policy.epsilon), δ = \(stored.policy.delta), alert \(stored.policy.alertFraction); this configuration says ε = \(plan.policy.epsilon), δ = \(plan.policy.delta), alert \(plan.policy.alertFraction)"
            )
        }
        return (plan, stored)
    }

    /// Removes from `candidates` those whose budget one more round would exceed, telling each
    /// (once per connection) why; returns what they were told.
    func admitWithinBudget(_ candidates: inout [CohortSelection.Candidate]) -> [String] {
        guard let ledger, let privacy else { return [] }
        var refusals: [String] = []
        var told = toldOverBudget
        candidates.removeAll { candidate in
            guard case .refused(let refusal) = ledger.admit(candidate.id, round: privacy.participation) else {
                return false
            }
            refusals.append(refusal.description)
            if registry.participants[candidate.id] != nil, !told.contains(candidate.id) {
                told.insert(candidate.id)
                registry.send(.failure(.failurePrivacyBudget, refusal.description), to: candidate.id)
                metrics.increment("veil_privacy_refusals_total")
                logger.info("not selected: privacy budget", metadata: ["participant": "\(candidate.id)"])
            }
            return true
        }
        toldOverBudget = told
        return refusals
    }

    /// The cohort members this round takes past the alert fraction of their budget.
    func budgetAlerts(_ cohort: [String]) -> [String] {
        guard let ledger, let privacy else { return [] }
        let alerts = cohort.filter {
            if case .admitted(_, alert: true) = ledger.admit($0, round: privacy.participation) { return true }
            return false
        }
        for id in alerts {
            metrics.increment("veil_privacy_alerts_total")
            logger.warning(
                "privacy budget alert",
                metadata: [
                    "participant": "\(id)", "fraction": "\(privacy.settings.alertFraction)",
                    "budget": "\(privacy.settings.budget)",
                ])
        }
        return alerts
    }

    /// The global model on the evaluation set, when there is one.
    func evaluationResult() -> (accuracy: Double, loss: Double)? {
        guard let evaluation, let model = model.veil else { return nil }
        let evaluated = algorithm.evaluate(model: model, on: evaluation)
        return (evaluated.accuracy, evaluated.loss)
    }
}
