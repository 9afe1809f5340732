import Foundation
import VeilLearning

/// The coordinator's anomaly detectors (`Specs/wire.md` §9.3). Each reads only what the
/// coordinator may see under secure aggregation — the rounds' outcomes, timings and sizes,
/// the released aggregate's evaluation and norm, who dropped out, the privacy ledger — never
/// an individual update. Pure functions of a recorded series: the tests replay series that
/// must fire and series that must not.
public enum AnomalyDetector {
    public enum Kind: String, CaseIterable, Codable, Sendable, ConfigurationName {
        /// The latest evaluated accuracy is more than `threshold` below the best of the
        /// `window` evaluated rounds before it.
        case accuracyDrop = "accuracy_drop"
        /// The latest evaluated loss exceeds the lowest of the `window` before it by more than
        /// `threshold` × that lowest loss.
        case lossRise = "loss_rise"
        /// The last `window` attempts dropped, on average, at least `threshold` of their cohorts.
        case dropoutSpike = "dropout_spike"
        /// At least `threshold` of the last `window` attempts were aborted.
        case abortSpike = "abort_spike"
        /// The latest attempt took more than `threshold` × the median of the `window` before
        /// it (with at least three of them).
        case latencyOutlier = "latency_outlier"
        /// A participant dropped or was proven at fault in at least `threshold` of its last
        /// `window` invitations (one alert per participant).
        case participantFailing = "participant_failing"
        /// The latest aggregate step's norm exceeds `threshold` × the median of the `window`
        /// before it (with at least three of them).
        case updateNormJump = "update_norm_jump"
        /// A participant has spent at least `threshold` of its ε budget (one alert per participant).
        case budgetExhaustion = "budget_exhaustion"

        public var defaultThreshold: Double {
            switch self {
            case .accuracyDrop: 0.05
            case .lossRise: 0.25
            case .dropoutSpike: 0.3
            case .abortSpike: 3
            case .latencyOutlier: 3
            case .participantFailing: 3
            case .updateNormJump: 5
            case .budgetExhaustion: 0.8
            }
        }

        public var defaultWindow: Int {
            switch self {
            case .accuracyDrop, .lossRise, .participantFailing: 5
            case .dropoutSpike, .budgetExhaustion: 1
            case .abortSpike, .latencyOutlier, .updateNormJump: 10
            }
        }

        var thresholdRange: ClosedRange<Double> {
            switch self {
            case .accuracyDrop, .budgetExhaustion: 0.0001...1
            case .dropoutSpike: 0.0001...1
            case .lossRise: 0.0001...1000
            case .abortSpike, .participantFailing: 1...1000
            case .latencyOutlier, .updateNormJump: 1...1_000_000
            }
        }
    }

    /// What the detectors read.
    public struct Input: Sendable {
        /// Every attempt so far, in order.
        public var rounds: [RoundHealth]
        /// Each participant's invitations, in order.
        public var invitations: [String: [ParticipationOutcome]]
        /// ε spent by each participant, and the budget (nil without privacy).
        public var epsilon: [String: Double]
        public var budget: Double?
        /// The privacy plan's alert fraction: `budget_exhaustion`'s threshold when its rule sets none.
        public var alertFraction: Double?

        public init(
            rounds: [RoundHealth], invitations: [String: [ParticipationOutcome]] = [:], epsilon: [String: Double] = [:],
            budget: Double? = nil, alertFraction: Double? = nil
        ) {
            self.alertFraction = alertFraction
            self.rounds = rounds
            self.invitations = invitations
            self.epsilon = epsilon
            self.budget = budget
        }
    }

    /// A condition a rule found: its subject (a participant, or "" for the federation), the
    /// value compared with the threshold, and a sentence for people.
    public struct Finding: Hashable, Sendable {
        public var subject: String
        public var value: Double
        public var summary: String
    }

    /// What `rule` finds in `input` now.
    public static func findings(_ rule: AlertRule, in input: Input) -> [Finding] {
        let t =
            rule.threshold
            ?? (rule.detector == .budgetExhaustion ? input.alertFraction : nil) ?? rule.detector.defaultThreshold
        let w = rule.window
        let attempts = input.rounds
        switch rule.detector {
        case .accuracyDrop:
            let series = attempts.compactMap(\.accuracy)
            guard let latest = series.last, series.count > 1 else { return [] }
            let best = series.dropLast().suffix(w).max()!
            guard best - latest > t else { return [] }
            return [
                Finding(
                    subject: "", value: best - latest,
                    summary: String(format: "accuracy fell to %.4f from %.4f within %d rounds", latest, best, w))
            ]
        case .lossRise:
            let series = attempts.compactMap(\.loss)
            guard let latest = series.last, series.count > 1 else { return [] }
            let lowest = series.dropLast().suffix(w).min()!
            guard lowest > 0, latest > lowest * (1 + t) else { return [] }
            return [
                Finding(
                    subject: "", value: latest / lowest - 1,
                    summary: String(format: "loss rose to %.4f from %.4f within %d rounds", latest, lowest, w))
            ]
        case .dropoutSpike:
            let recent = attempts.suffix(w).filter { $0.cohort > 0 }
            guard !recent.isEmpty else { return [] }
            let fraction =
                recent.map { Double($0.droppedCount) / Double($0.cohort) }.reduce(0, +) / Double(recent.count)
            guard fraction >= t else { return [] }
            return [
                Finding(
                    subject: "", value: fraction,
                    summary: String(
                        format: "%.0f%% of the cohort dropped out over the last %d attempt(s)", fraction * 100,
                        recent.count))
            ]
        case .abortSpike:
            let aborted = attempts.suffix(w).count { $0.outcome == "aborted" }
            guard Double(aborted) >= t else { return [] }
            return [
                Finding(
                    subject: "", value: Double(aborted),
                    summary: "\(aborted) of the last \(min(w, attempts.count)) attempts were aborted")
            ]
        case .latencyOutlier:
            guard let latest = attempts.last else { return [] }
            let before = attempts.dropLast().suffix(w).map(\.seconds)
            guard before.count >= 3, let median = median(before), median > 0, latest.seconds > t * median else {
                return []
            }
            return [
                Finding(
                    subject: "", value: latest.seconds / median,
                    summary: String(
                        format: "round %d took %.2f s, %.1f× the median %.2f s", latest.number, latest.seconds,
                        latest.seconds / median, median))
            ]
        case .participantFailing:
            return input.invitations.keys.sorted().compactMap { id in
                let failed = input.invitations[id]!.suffix(w).count { $0 == .dropped || $0 == .faulted }
                guard Double(failed) >= t else { return nil }
                return Finding(
                    subject: id, value: Double(failed),
                    summary: "\(id) dropped out or was at fault in \(failed) of its last \(w) invitations")
            }
        case .updateNormJump:
            let norms = attempts.compactMap(\.updateNorm)
            guard let latest = norms.last, let median = median(Array(norms.dropLast().suffix(w))),
                norms.count > 3, median > 0, latest > t * median
            else { return [] }
            return [
                Finding(
                    subject: "", value: latest / median,
                    summary: String(
                        format: "the aggregate step's norm %.4g is %.1f× the median %.4g", latest, latest / median,
                        median))
            ]
        case .budgetExhaustion:
            guard let budget = input.budget, budget > 0 else { return [] }
            return input.epsilon.keys.sorted().compactMap { id in
                let spent = input.epsilon[id]!
                guard spent / budget >= t else { return nil }
                return Finding(
                    subject: id, value: spent / budget,
                    summary: String(format: "%@ has spent ε = %.4g of its budget %.4g", id, spent, budget))
            }
        }
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}
