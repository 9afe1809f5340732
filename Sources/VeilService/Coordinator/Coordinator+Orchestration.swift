import Foundation
import VeilLearning
import VeilSecAgg

/// What the coordinator measures of each member during an attempt, for reputation, Oort and
/// credits (`Specs/orchestration.md` §5–§7).
struct AttemptObservations {
    let started = ContinuousClock.now
    /// Seconds from the attempt's start to each member's first accepted message.
    var firstMessage: [String: Double] = [:]
    /// The example count each member reported when it connected (captured at selection,
    /// since a member that drops may be gone when the attempt ends).
    var examples: [String: Int] = [:]
    /// Members whose own signed messages proved a fault in this attempt.
    var faulted: Set<String> = []

    /// Each member's outcome: a proven fault first, then a contribution to the released sum,
    /// a decline of its own, a drop (silent, disconnected, a message that failed the checks, or
    /// — Paillier — no contribution to an aborted attempt); anyone else is excused, including a
    /// member whose client aborted because a neighbour misbehaved.
    static func outcomes(
        cohort: [String], contributors: Set<String>, faulted: Set<String>, declined: Set<String>,
        aborted: Set<String>, dropped: Set<String>
    ) -> [String: ParticipationOutcome] {
        var result: [String: ParticipationOutcome] = [:]
        for id in cohort {
            result[id] =
                if faulted.contains(id) { .faulted } else if contributors.contains(id) {
                    .contributed
                } else if aborted.contains(id) { .excused } else if declined.contains(id) {
                    .declined
                } else if dropped.contains(id) { .dropped } else { .excused }
        }
        return result
    }
}

extension Coordinator {
    /// Notes a member's first accepted message of the attempt.
    func noteArrival(of id: String) {
        guard observations.firstMessage[id] == nil else { return }
        observations.firstMessage[id] = seconds(since: observations.started)
    }

    /// Notes a fault, when it is one the member's own signed messages prove.
    func noteFault(_ id: String, code: String) {
        if SecAggEvidence.Fault(rawValue: code)?.isProven == true { observations.faulted.insert(id) }
    }

    /// The attempt's participation rows and, for a completed round, its credit rows: each
    /// contributor's reputation before the round, and its example count against the mean.
    func orchestrationRecords(_ machine: RoundMachine, contributors: [String]) -> (
        participation: [CoordinatorStore.Participation], credits: [CoordinatorStore.Credit]
    ) {
        let outcomes = AttemptObservations.outcomes(
            cohort: machine.cohort, contributors: Set(contributors), faulted: observations.faulted,
            declined: Set(machine.declined.map { machine.id(of: $0) }), aborted: machine.aborted,
            dropped: droppedThisAttempt.union(machine.missingContributors))
        let participation = machine.cohort.sorted().map { id in
            CoordinatorStore.Participation(
                participant: id, round: machine.number, attempt: machine.attempt, outcome: outcomes[id]!,
                seconds: observations.firstMessage[id], examples: observations.examples[id] ?? 0)
        }
        let counts = contributors.map { observations.examples[$0] ?? 0 }
        let mean = counts.isEmpty ? 0 : Double(counts.reduce(0, +)) / Double(counts.count)
        let credits = contributors.sorted().map { id in
            let reputation = book.reputation(of: id, at: machine.number)
            let examples = observations.examples[id] ?? 0
            return CoordinatorStore.Credit(
                participant: id, round: machine.number,
                credits: CreditRule.credits(reputation: reputation, examples: examples, meanExamples: mean),
                reputation: reputation, examples: examples)
        }
        return (participation, credits)
    }

    /// Once the rows are stored: the book learns them, and the metrics show each member's
    /// reputation and credits. The label is the member's certificate subject, which only the
    /// federation CA issues, so a peer cannot mint series.
    func learn(_ participation: [CoordinatorStore.Participation], credits: [CoordinatorStore.Credit]) {
        book.record(participation)
        for row in participation {
            metrics.set(
                "veil_participant_reputation", book.reputation(of: row.participant, at: row.round),
                labels: ["participant": row.participant])
        }
        for credit in credits {
            metrics.increment(
                "veil_participant_credits_total", by: credit.credits, labels: ["participant": credit.participant])
        }
    }
}
