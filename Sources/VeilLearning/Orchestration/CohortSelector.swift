import Foundation
import VeilCore

/// How a simulated round picks its cohort (`Specs/orchestration.md` §2).
public enum SelectionChoice: Hashable, Sendable {
    /// Uniformly at random among the participants online.
    case random
    /// Utility-guided, after Oort (Lai et al., OSDI 2021).
    case oort(OortParameters)

    public var name: String {
        switch self {
        case .random: "random"
        case .oort: "oort"
        }
    }
}

/// What the coordinator legitimately learns about one participant's part in a round: whether
/// its contribution arrived in time, how long it took (measured by the coordinator, from the
/// broadcast to the last message; for one cut off, how long it was waited for), and the two
/// figures it reveals of its own accord — its training loss on the model it received and its
/// example count. Never its update.
public struct ParticipationObservation: Hashable, Sendable {
    public let participant: Int
    public let completed: Bool
    public let seconds: Double
    public let loss: Double?
    public let examples: Int

    public init(participant: Int, completed: Bool, seconds: Double, loss: Double?, examples: Int) {
        self.participant = participant
        self.completed = completed
        self.seconds = seconds
        self.loss = loss
        self.examples = examples
    }
}

/// A cohort-selection strategy: picks `count` of the candidates (participant indices, from 0)
/// for `round`, and learns from what each round showed.
public protocol CohortSelector {
    mutating func select(
        _ candidates: [Int], count: Int, round: Int, generator: inout some RandomNumberGenerator
    ) -> [Int]
    mutating func observe(round: Int, _ observations: [ParticipationObservation])
}

/// Uniformly at random: a shuffle of the candidates, then its first `count`.
public struct RandomSelector: CohortSelector {
    public init() {}

    public func select(
        _ candidates: [Int], count: Int, round: Int, generator: inout some RandomNumberGenerator
    ) -> [Int] {
        var order = candidates
        generator.shuffle(&order)
        return Array(order.prefix(count))
    }

    public func observe(round: Int, _ observations: [ParticipationObservation]) {}
}

/// Oort's parameters, with the defaults of its paper and artifact (`Specs/orchestration.md` §2.2).
public struct OortParameters: Hashable, Sendable {
    /// ε: the fraction of the cohort drawn from participants never tried, at round 1…
    public var exploration = 0.9
    /// …multiplied by this after every round…
    public var explorationDecay = 0.98
    /// …down to this floor.
    public var explorationFloor = 0.2
    /// α: how hard a participant slower than the preferred round duration is penalised.
    public var straggler = 2.0
    /// c: participants whose utility is at least c times the k-th best are admitted to the draw.
    public var cutoff = 0.95
    /// The weight of the staleness bonus √(w·ln r / L).
    public var staleness = 0.1
    /// The weight of the statistical utility term (1 in Oort; 0 ranks by system utility,
    /// staleness and any extra weights alone).
    public var statistical = 1.0
    /// The pacer: every `pacerWindow` rounds, if the window's summed statistical utility fell
    /// below the previous window's, the preferred duration moves up `pacerStep` percentiles
    /// of the measured durations, from `pacerPercentile`.
    public var pacerWindow = 20
    public var pacerPercentile = 30.0
    public var pacerStep = 5.0

    public init() {}

    /// Refuses values outside their ranges, by name.
    public func validate() throws(LearningError) {
        func require(_ ok: Bool, _ why: String) throws(LearningError) { if !ok { throw .invalidConfiguration(why) } }
        try require((0...1).contains(exploration), "oort exploration must be in [0, 1]")
        try require(explorationDecay > 0 && explorationDecay <= 1, "oort exploration decay must be in (0, 1]")
        try require((0...1).contains(explorationFloor), "oort exploration floor must be in [0, 1]")
        try require(straggler >= 0 && straggler.isFinite, "oort straggler penalty α must be ≥ 0")
        try require(cutoff > 0 && cutoff <= 1, "oort cut-off c must be in (0, 1]")
        try require(staleness >= 0 && staleness.isFinite, "oort staleness weight must be ≥ 0")
        try require(statistical >= 0 && statistical.isFinite, "oort statistical weight must be ≥ 0")
        try require(pacerWindow >= 1, "oort pacer window must be at least 1 round")
        try require((0...100).contains(pacerPercentile), "oort pacer percentile must be in [0, 100]")
        try require(pacerStep >= 0 && pacerStep <= 100, "oort pacer step must be in [0, 100]")
    }
}

/// Utility-guided selection after Oort: statistical utility from the losses participants
/// reveal, system utility from the durations the coordinator measured, a staleness bonus,
/// exploration of participants never tried, and a pacer that relaxes the preferred round
/// duration when utility falls (`Specs/orchestration.md` §2.2 is normative).
public struct OortSelector: CohortSelector {
    public let parameters: OortParameters

    /// What is known of each participant tried so far, by index.
    struct Record {
        var statisticalUtility: Double?
        var seconds: Double
        var lastSelected: Int
    }

    private(set) var records: [Int: Record] = [:]
    /// The summed statistical utility observed in each round, for the pacer.
    private var utilityByRound: [Double] = []
    private(set) var percentile: Double

    public init(parameters: OortParameters = OortParameters()) {
        self.parameters = parameters
        percentile = parameters.pacerPercentile
    }

    /// The exploration fraction at `round` (from 1).
    func exploration(at round: Int) -> Double {
        max(parameters.explorationFloor, parameters.exploration * pow(parameters.explorationDecay, Double(round - 1)))
    }

    /// T: the `percentile`-th percentile (nearest rank) of the measured durations, or nil
    /// before any participant was measured.
    func preferredDuration() -> Double? {
        let durations = records.values.map(\.seconds).sorted()
        guard !durations.isEmpty else { return nil }
        let rank = Int((percentile / 100 * Double(durations.count) - 1e-9).rounded(.up))
        return durations[min(max(rank, 1), durations.count) - 1]
    }

    /// Each tried candidate's score at `round`: its statistical utility scaled to [0, 1] over
    /// the tried participants, plus the staleness bonus, times the straggler penalty.
    /// `weights` multiplies each score (absent: 1): the service's reputation^w, the other
    /// criteria of a multi-criteria selection (`Specs/orchestration.md` §5).
    func scores(of candidates: [Int], round: Int, weights: [Int: Double] = [:]) -> [Int: Double] {
        let utilities = records.values.compactMap(\.statisticalUtility)
        let low = utilities.min() ?? 0
        let high = utilities.max() ?? 0
        let preferred = preferredDuration()
        var scores: [Int: Double] = [:]
        for index in candidates {
            guard let record = records[index] else { continue }
            var score =
                parameters.statistical * (high > low ? ((record.statisticalUtility ?? low) - low) / (high - low) : 1)
            score += (parameters.staleness * log(Double(max(round, 1))) / Double(max(record.lastSelected, 1)))
                .squareRoot()
            if let preferred, preferred < record.seconds {
                score *= pow(preferred / record.seconds, parameters.straggler)
            }
            scores[index] = score * (weights[index] ?? 1)
        }
        return scores
    }

    public mutating func select(
        _ candidates: [Int], count: Int, round: Int, generator: inout some RandomNumberGenerator
    ) -> [Int] {
        select(candidates, count: count, round: round, weights: [:], generator: &generator)
    }

    /// As ``select(_:count:round:generator:)``, each tried candidate's score multiplied by its
    /// weight (absent: 1).
    public mutating func select(
        _ candidates: [Int], count: Int, round: Int, weights: [Int: Double],
        generator: inout some RandomNumberGenerator
    ) -> [Int] {
        let count = min(count, candidates.count)
        guard count > 0 else { return [] }
        let tried = candidates.filter { records[$0] != nil }
        var untried = candidates.filter { records[$0] == nil }
        let wanted = Int((exploration(at: round) * Double(count)).rounded())
        let explore = min(untried.count, max(wanted, count - tried.count))
        let exploit = count - explore

        var chosen: [Int] = []
        if exploit > 0 {
            let scores = scores(of: tried, round: round, weights: weights)
            let ranked = tried.sorted { (scores[$0]!, $1) > (scores[$1]!, $0) }
            let bar = parameters.cutoff * scores[ranked[exploit - 1]]!
            let admitted = ranked.filter { scores[$0]! >= bar }
            chosen += weightedDraw(admitted.map { ($0, scores[$0]!) }, count: exploit, generator: &generator)
        }
        // No self-report is trusted, so participants never tried are drawn uniformly.
        generator.shuffle(&untried)
        chosen += untried.prefix(explore)
        return chosen
    }

    public mutating func observe(round: Int, _ observations: [ParticipationObservation]) {
        var roundUtility = 0.0
        for o in observations {
            var record =
                records[o.participant] ?? Record(statisticalUtility: nil, seconds: o.seconds, lastSelected: round)
            record.seconds = o.seconds
            record.lastSelected = round
            if o.completed, let loss = o.loss, loss.isFinite, loss >= 0 {
                // Oort's |B|·√(mean of squared losses), with the participant's mean loss for the
                // root mean square: the one figure it reveals.
                record.statisticalUtility = Double(o.examples) * loss
                roundUtility += Double(o.examples) * loss
            }
            records[o.participant] = record
        }
        utilityByRound.append(roundUtility)
        let w = parameters.pacerWindow
        if utilityByRound.count >= 2 * w, utilityByRound.count % w == 0 {
            let recent = utilityByRound.suffix(w).reduce(0, +)
            let previous = utilityByRound.dropLast(w).suffix(w).reduce(0, +)
            if recent < previous { percentile = min(100, percentile + parameters.pacerStep) }
        }
    }
}

/// Weighted sampling without replacement, in proportion to the weights (Efraimidis and Spirakis
/// 2006): one u = ((next() ≫ 11) + 0.5)·2⁻⁵³ per item, in the given order; key u^(1/w),
/// compared as ln(u)/w, which orders alike and does not underflow to 0 for the small weights a
/// penalty leaves (a weight below 10⁻³⁰⁰ counts as 10⁻³⁰⁰); the `count` largest keys win, ties
/// to the smaller id. Oort's step 4 and the service's reputation-weighted random draw.
public func weightedDraw<ID: Comparable>(
    _ items: [(id: ID, weight: Double)], count: Int, generator: inout some RandomNumberGenerator
) -> [ID] {
    let keyed = items.map { item -> (key: Double, id: ID) in
        let u = (Double(generator.next() >> 11) + 0.5) * 0x1p-53
        return (log(u) / max(item.weight, 1e-300), item.id)
    }
    return keyed.sorted { ($0.key, $1.id) > ($1.key, $0.id) }.prefix(count).map(\.id)
}

/// The fairness floor (`Specs/orchestration.md` §3): an online participant not selected in
/// the last `maxGap` rounds is selected before anyone else.
public struct FairnessFloor: Hashable, Sendable {
    public let maxGap: Int

    public init(maxGap: Int) throws(LearningError) {
        guard maxGap >= 1 else { throw .invalidConfiguration("--max-gap must be at least 1 round") }
        self.maxGap = maxGap
    }

    /// The candidates the floor forces into `round`'s cohort, longest-waiting first (then by
    /// index or id), at most `count`. `lastSelected` is 0 for a participant never selected.
    public func due<ID: Comparable>(_ candidates: [ID], lastSelected: (ID) -> Int, round: Int, count: Int) -> [ID] {
        candidates.filter { round - lastSelected($0) > maxGap }
            .sorted { (lastSelected($0), $0) < (lastSelected($1), $1) }
            .prefix(count).map { $0 }
    }
}

/// Jain's fairness index of `values`: (Σx)² / (n·Σx²), 1 when all are equal, 1/n when one
/// has everything; 1 for an empty or all-zero list.
public func jainIndex(_ values: [Double]) -> Double {
    let sum = values.reduce(0, +)
    let squares = values.reduce(0) { $0 + $1 * $1 }
    guard squares > 0 else { return 1 }
    return sum * sum / (Double(values.count) * squares)
}

/// What a run's reports say about participation and simulated time.
public struct OrchestrationSummary: Hashable, Sendable {
    /// Rounds each participant was invited to, by index.
    public let participation: [Int]
    /// Jain's index of `participation`.
    public let participationJain: Double
    /// The run's simulated seconds, with devices.
    public let simulatedSeconds: Double?
    /// Simulated seconds until the first evaluated round at or above the target accuracy (nil:
    /// no target, no devices, or never reached).
    public let timeToAccuracy: Double?
    /// The round that first reached the target accuracy.
    public let roundsToAccuracy: Int?

    public init(reports: [RoundReport], participants: Int, targetAccuracy: Double?) {
        var counts = [Int](repeating: 0, count: participants)
        for report in reports { for index in report.invited where index < participants { counts[index] += 1 } }
        participation = counts
        participationJain = jainIndex(counts.map(Double.init))
        let timed = reports.allSatisfy { $0.simulatedSeconds != nil } && !reports.isEmpty
        simulatedSeconds = timed ? reports.reduce(0) { $0 + $1.simulatedSeconds! } : nil
        var elapsed = 0.0
        var reached: (seconds: Double, round: Int)?
        if let target = targetAccuracy {
            for report in reports {
                elapsed += report.simulatedSeconds ?? 0
                if let accuracy = report.accuracy, accuracy >= target {
                    reached = (elapsed, report.round)
                    break
                }
            }
        }
        timeToAccuracy = timed ? reached?.seconds : nil
        roundsToAccuracy = reached?.round
    }
}
