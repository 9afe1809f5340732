import Foundation
import VeilCore
import VeilLearning

/// What selection knows of each participant — its reputation, the last round it was invited
/// to, Oort's records — and nothing else: every entry is a fold of the store's participation
/// rows (what the coordinator measured), so a restarted coordinator rebuilds the same book
/// (`Specs/orchestration.md` §5–§6). Sans-IO: the coordinator feeds it each attempt's rows.
struct OrchestrationBook {
    let settings: ServiceOrchestration
    let parameters: ReputationParameters
    private(set) var reputations: [String: Reputation] = [:]
    private(set) var lastInvited: [String: Int] = [:]
    private var oort: OortSelector
    /// Oort's participant numbers, in the order of first invitation (the rows' order), so
    /// that a book rebuilt from the store numbers everyone as the live one did.
    private var indices: [String: Int] = [:]
    private var ids: [String] = []

    init(settings: ServiceOrchestration, history: [CoordinatorStore.Participation]) {
        self.settings = settings
        parameters = settings.reputation
        oort = OortSelector(parameters: settings.oort)
        var attempt: [CoordinatorStore.Participation] = []
        for row in history {
            if let first = attempt.first, (first.round, first.attempt) != (row.round, row.attempt) {
                record(attempt)
                attempt = []
            }
            attempt.append(row)
        }
        if !attempt.isEmpty { record(attempt) }
    }

    /// Adds one attempt's rows (all of the same round and attempt).
    mutating func record(_ rows: [CoordinatorStore.Participation]) {
        guard let round = rows.first?.round else { return }
        for row in rows {
            reputations[row.participant, default: Reputation()].record(
                row.outcome, timeliness: Self.timeliness(row), round: row.round, parameters: parameters)
            lastInvited[row.participant] = max(lastInvited[row.participant] ?? 0, row.round)
        }
        // A contributor that revealed no loss is taken at the median of those revealed in the
        // attempt (1 when none was): neither rewarded nor punished for keeping it.
        let revealed = rows.filter { $0.outcome == .contributed }.compactMap(\.loss).sorted()
        let median =
            revealed.isEmpty
            ? 1 : (revealed[(revealed.count - 1) / 2] + revealed[revealed.count / 2]) / 2
        let examples = AttemptObservations.capped(rows.map(\.examples))
        var observations: [ParticipationObservation] = []
        for (row, count) in zip(rows, examples) {
            // Anything but a contribution counts as taking the whole training deadline.
            observations.append(
                ParticipationObservation(
                    participant: number(of: row.participant), completed: row.outcome == .contributed,
                    seconds: row.seconds ?? row.deadline, loss: row.loss ?? median, examples: count))
        }
        oort.observe(round: round, observations)
    }

    /// The fraction of the attempt's training deadline a contribution left unused (0 for any
    /// other outcome).
    static func timeliness(_ row: CoordinatorStore.Participation) -> Double {
        guard let seconds = row.seconds, row.deadline > 0 else { return 0 }
        return 1 - min(max(seconds / row.deadline, 0), 1)
    }

    func reputation(of id: String, at round: Int) -> Double {
        (reputations[id] ?? Reputation()).score(at: round, parameters: parameters)
    }

    private mutating func number(of id: String) -> Int {
        if let index = indices[id] { return index }
        indices[id] = ids.count
        ids.append(id)
        return ids.count - 1
    }

    /// The candidates selection may draw from: those at or above `min_reputation`, and —
    /// while fewer than `needed` are — the most reputable of the others (ties by id), so that
    /// a federation whose members all stumbled still runs and their reputations can recover.
    func admitted(_ candidates: [CohortSelection.Candidate], needed: Int, round: Int) -> [CohortSelection.Candidate] {
        let scored = candidates.map { ($0, reputation(of: $0.id, at: round)) }
        let above = scored.filter { $0.1 >= settings.minReputation }.map(\.0)
        guard above.count < needed else { return above }
        let below = scored.filter { $0.1 < settings.minReputation }
            .sorted { ($0.1, $1.0.id) > ($1.1, $0.0.id) }
            .prefix(needed - above.count).map(\.0)
        return (above + below).sorted { $0.id < $1.id }
    }

    /// Picks `count` of the candidates for `round`: first those the fairness floor makes due
    /// (longest-waiting first, then by id), then the strategy's choice among the rest.
    mutating func select(
        _ candidates: [CohortSelection.Candidate], count: Int, strategy: SelectionStrategy, round: Int,
        generator: inout Xoshiro256
    ) -> [String] {
        let ordered = candidates.sorted { $0.id < $1.id }
        let floor = settings.maxGap.flatMap { try? FairnessFloor(maxGap: $0) }
        let due =
            floor?.due(ordered.map(\.id), lastSelected: { lastInvited[$0] ?? 0 }, round: round, count: count) ?? []
        let rest = ordered.filter { !due.contains($0.id) }
        let wanted = count - due.count
        let weights = Dictionary(
            uniqueKeysWithValues: rest.map { ($0.id, pow(reputation(of: $0.id, at: round), settings.reputationWeight)) }
        )
        let picked: [String]
        switch strategy {
        case .oort:
            // Candidates in ascending number; those never invited have none yet and follow, in
            // id order, under numbers of this call only (Oort has no record of them).
            let known = rest.filter { indices[$0.id] != nil }.sorted { indices[$0.id]! < indices[$1.id]! }
            let unknown = rest.filter { indices[$0.id] == nil }
            let order = known.map(\.id) + unknown.map(\.id)
            let numbers = known.map { indices[$0.id]! } + unknown.indices.map { ids.count + $0 }
            let byNumber = Dictionary(uniqueKeysWithValues: zip(numbers, order))
            let weighted = Dictionary(uniqueKeysWithValues: zip(numbers, order.map { weights[$0]! }))
            picked = oort.select(numbers, count: wanted, round: round, weights: weighted, generator: &generator)
                .map { byNumber[$0]! }
        case .random where settings.reputationWeight > 0:
            picked = weightedDraw(rest.map { ($0.id, weights[$0.id]!) }, count: wanted, generator: &generator)
        case .random, .roundRobin, .resourceAware:
            picked = CohortSelection.select(rest, count: wanted, strategy: strategy, generator: &generator)
        }
        return (due + picked).sorted()
    }
}
