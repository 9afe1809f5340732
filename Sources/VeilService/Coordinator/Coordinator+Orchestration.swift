import Foundation
import VeilLearning
import VeilSecAgg
import VeilWire

/// What the coordinator measures of each member during an attempt, for reputation, Oort and
/// credits (`Specs/orchestration.md` §5–§7).
struct AttemptObservations {
    /// The attempt's round and members (none before the first attempt).
    var round = 0
    var cohort: Set<String> = []
    /// Each member's waiting time so far: over the stages it has answered, the seconds from the
    /// stage's start to its message (training is inside the first stage's).
    var waited: [String: Double] = [:]
    /// The example count each member reported when it connected, at most 2³² (captured at
    /// selection, since a member that drops may be gone when the attempt ends).
    var examples: [String: Int] = [:]
    /// The loss each member revealed for this attempt (its first report only).
    var losses: [String: Double] = [:]
    /// Members whose own signed messages proved a fault in this attempt, and everyone named for
    /// a fault in it (proven or not).
    var faulted: Set<String> = []
    var named: Set<String> = []
    /// The members that declined the attempt's round before they were dropped or named, and
    /// those among them whose client aborted.
    var declined: Set<String> = []
    var aborted: Set<String> = []

    /// The largest example count taken from a participant's report.
    static let maxExamples = 1 << 32

    /// Each member's outcome (`Specs/orchestration.md` §6): a proven fault first, then a
    /// contribution to the released sum; a member whose client aborted is excused when someone
    /// else was named for a fault in the attempt (a neighbour's bad shares make honest clients
    /// abort) and has declined otherwise; then a decline, a drop; anyone else is excused.
    /// `declined` holds only declines that came before the member was dropped or named.
    static func outcomes(
        cohort: [String], contributors: Set<String>, faulted: Set<String>, declined: Set<String>,
        aborted: Set<String>, named: Set<String>, dropped: Set<String>
    ) -> [String: ParticipationOutcome] {
        var result: [String: ParticipationOutcome] = [:]
        for id in cohort {
            result[id] =
                if faulted.contains(id) {
                    .faulted
                } else if contributors.contains(id) {
                    .contributed
                } else if aborted.contains(id) {
                    named.subtracting([id]).isEmpty ? .declined : .excused
                } else if declined.contains(id) {
                    .declined
                } else if dropped.contains(id) {
                    .dropped
                } else {
                    .excused
                }
        }
        return result
    }

    /// Counts above twice the median of `counts` are taken at twice the median (an overstated
    /// count cannot push everyone else's share, or Oort utility, to nothing).
    static func capped(_ counts: [Int]) -> [Int] {
        guard !counts.isEmpty else { return [] }
        let sorted = counts.sorted()
        let median = (Double(sorted[(sorted.count - 1) / 2]) + Double(sorted[sorted.count / 2])) / 2
        return counts.map { Int(min(Double($0), 2 * median)) }
    }
}

extension Coordinator {
    /// Notes a member's accepted message: how long it took from the start of the stage it
    /// answers (`stageStarted`).
    func noteArrival(of id: String, stageStarted: ContinuousClock.Instant?) {
        guard let stageStarted, observations.cohort.contains(id) else { return }
        observations.waited[id, default: 0] += seconds(since: stageStarted)
    }

    /// A member's decline of the current attempt's round (its code decides whether it can be
    /// excused, §6). One that comes after the member was dropped or named for a fault changes
    /// nothing: a decline cannot soften a drop.
    func noteDecline(_ decline: Veil_V1_Decline, from id: String) {
        guard decline.round == UInt64(observations.round), observations.cohort.contains(id),
            !droppedThisAttempt.contains(id), !observations.named.contains(id)
        else { return }
        observations.declined.insert(id)
        // Excused as an abort only after it took part (a message of its accepted this attempt):
        // its client aborts on what others sent it. A "DECLINE_ABORTED" straight after the
        // assignment is a plain decline (review, helper-36), or a rogue could be picked again and
        // again without ever being left out.
        if decline.code == .declineAborted, observations.waited[id] != nil { observations.aborted.insert(id) }
    }

    /// A member's loss report (`Specs/orchestration.md` §5.1): kept when losses are wanted
    /// (`oort`), it is for the current attempt's round, from a member, its first finite one;
    /// clamped to [0, loss_clip]. Anything else is refused and counted, and costs only its sender.
    func noteLoss(_ report: Veil_V1_LossReport, from id: String) {
        guard configuration.selection == .oort, report.round == UInt64(observations.round),
            observations.cohort.contains(id), observations.losses[id] == nil
        else {
            refuseReport(from: id, .outOfRound)
            return
        }
        guard report.loss.isFinite else {
            refuseReport(from: id, .malformed)
            return
        }
        observations.losses[id] = min(max(report.loss, 0), configuration.orchestration.lossClip)
    }

    private func refuseReport(from id: String, _ reason: RefusalReason) {
        metrics.increment("veil_refused_messages_total", labels: ["reason": reason.rawValue])
        logger.debug("loss report refused", metadata: ["id": "\(id)", "reason": "\(reason.rawValue)"])
    }

    /// Notes an attribution; a fault the member's own signed messages prove marks it faulted.
    func noteFault(_ id: String, code: String) {
        observations.named.insert(id)
        if SecAggEvidence.Fault(rawValue: code)?.isProven == true { observations.faulted.insert(id) }
    }

    /// The attempt's participation rows and, for a completed round, its credit rows: each
    /// contributor's reputation at the attempt's start, and its capped example count against
    /// the contributors' mean. `abort` is the attempt's, if it failed: only an attempt that
    /// failed for missing contributions counts the members that sent none as dropped.
    func orchestrationRecords(_ machine: RoundMachine, contributors: [String], abort: RoundAbort?) -> (
        participation: [CoordinatorStore.Participation], credits: [CoordinatorStore.Credit]
    ) {
        let missing = abort?.kind == .missingContributions ? Set(machine.missingContributors) : []
        let outcomes = AttemptObservations.outcomes(
            cohort: machine.cohort, contributors: Set(contributors), faulted: observations.faulted,
            declined: observations.declined, aborted: observations.aborted,
            named: observations.named, dropped: droppedThisAttempt.union(missing))
        let deadline = configuration.trainingDeadlineSeconds
        let participation = machine.cohort.sorted().map { id in
            CoordinatorStore.Participation(
                participant: id, round: machine.number, attempt: machine.attempt, outcome: outcomes[id]!,
                seconds: outcomes[id] == .contributed ? observations.waited[id] : nil,
                examples: observations.examples[id] ?? 0, loss: observations.losses[id], deadline: deadline)
        }
        // Only contributions earn credits: a survivor convicted of a fault has none.
        let earning = participation.filter { $0.outcome == .contributed }
        let counts = AttemptObservations.capped(earning.map(\.examples))
        let mean = counts.isEmpty ? 0 : counts.reduce(0.0) { $0 + Double($1) } / Double(counts.count)
        let credits = zip(earning, counts).map { row, examples in
            let reputation = book.reputation(of: row.participant, at: machine.number)
            return CoordinatorStore.Credit(
                participant: row.participant, round: machine.number,
                credits: CreditRule.credits(reputation: reputation, examples: examples, meanExamples: mean),
                reputation: reputation, examples: examples)
        }
        return (participation, credits)
    }

    /// Once the rows are stored: the book learns them, and the metrics show every known
    /// participant's reputation for the next round and the credits earned. The label is a
    /// certificate subject, which only the federation CA issues, so a peer cannot mint series.
    func learn(_ participation: [CoordinatorStore.Participation], credits: [CoordinatorStore.Credit]) {
        book.record(participation)
        monitoring.remember(participation)
        if let round = participation.first?.round { Self.publishReputations(book, to: metrics, at: round + 1) }
        for credit in credits {
            metrics.increment(
                "veil_participant_credits_total", by: credit.credits, labels: ["participant": credit.participant])
        }
    }

    static func publishReputations(_ book: OrchestrationBook, to metrics: Metrics, at round: Int) {
        for id in book.reputations.keys {
            metrics.set(
                "veil_participant_reputation", book.reputation(of: id, at: round), labels: ["participant": id])
        }
    }
}
