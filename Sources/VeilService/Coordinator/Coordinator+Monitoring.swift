import Foundation
import Logging
import VeilLearning
import VeilWire

/// What the coordinator keeps for monitoring (`Specs/wire.md` §9.2–§9.4): every attempt's
/// health, what the current attempt has observed so far, each participant's recent
/// invitations and latest resource report, and the alert book.
struct MonitoringState {
    struct Attempt {
        var stageSeconds: [String: Double] = [:]
        var dropouts = RoundHealth(
            number: 0, attempt: 0, outcome: "", started: 0, finished: 0, cohort: 0, survivors: 0, seconds: 0)
        var declines: [String: Int] = [:]
        /// The L2 norm of the mean step the released aggregate applied.
        var updateNorm: Double?
    }

    /// The latest `memory` attempts (the store keeps them all): enough for every detector's
    /// window and for the live dashboard, bounded however long the federation runs.
    var rounds: [RoundHealth] = []
    static let memory = 2000
    var attempt = Attempt()
    var invitations: [String: [ParticipationOutcome]] = [:]
    var resources: [String: ResourceUsage] = [:]
    /// Reports not yet in the store (written with the next attempt's health).
    var unsaved: [String: ResourceUsage] = [:]
    var alerts = AlertBook()
    /// Health records the store could not read back, and whether the alert book could not be
    /// (logged at start).
    var unreadable = 0
    var alertBookUnreadable = false
    /// The invitations each participant keeps in memory (the detectors' windows are shorter).
    static let invitationMemory = 100

    mutating func remember(_ participation: [CoordinatorStore.Participation]) {
        for row in participation {
            var list = invitations[row.participant, default: []]
            list.append(row.outcome)
            if list.count > Self.invitationMemory { list.removeFirst(list.count - Self.invitationMemory) }
            invitations[row.participant] = list
        }
    }
}

extension Coordinator {
    /// Reads the monitoring records back from the store (a restarted coordinator keeps its
    /// history, resource reports and alerts).
    static func monitoringState(store: CoordinatorStore, history: [CoordinatorStore.Participation]) throws
        -> MonitoringState
    {
        var state = MonitoringState()
        let (rounds, unreadable) = try store.roundHealth()
        state.rounds = Array(rounds.suffix(MonitoringState.memory))
        state.unreadable = unreadable
        state.remember(history)
        state.resources = try store.resourceReports()
        let (alerts, readable) = try store.alertBook()
        state.alerts = alerts
        state.alertBookUnreadable = !readable
        return state
    }

    /// A participant's report of what its device used over a round (§9.2): refused (and the
    /// sender told) when a value is out of bounds, or unless it names the last round the
    /// participant was invited to and has not reported yet.
    func noteResources(_ report: Veil_V1_ResourceReport, from id: String) {
        let usage: ResourceUsage
        do {
            usage = try ResourceUsage(validating: report, at: Date().timeIntervalSince1970)
            guard usage.round == book.lastInvited[id], usage.round > monitoring.resources[id]?.round ?? 0 else {
                throw ResourceUsage.Invalid(description: "a report for round \(usage.round) is not expected")
            }
        } catch {
            metrics.increment("veil_refused_messages_total", labels: ["reason": RefusalReason.malformed.rawValue])
            if let connection = registry.participants[id] {
                registry.refuse(connection, .failureMalformed, "resource report: \(error)")
            }
            return
        }
        monitoring.resources[id] = usage
        monitoring.unsaved[id] = usage
        let labels = ["participant": id]
        metrics.set("veil_participant_cpu_fraction", usage.cpuFraction, labels: labels)
        metrics.set("veil_participant_memory_bytes", Double(usage.memoryBytes), labels: labels)
        metrics.set("veil_participant_network_bytes_per_second", usage.networkBitsPerSecond / 8, labels: labels)
        metrics.set("veil_participant_battery", usage.battery, labels: labels)
        metrics.set("veil_participant_gpu_utilisation", usage.gpuUtilisation, labels: labels)
        hub.changed()
    }

    /// Ends an attempt's monitoring: its health recorded (with the resource reports received
    /// since the last one and the alert book, in one transaction), the alert rules evaluated,
    /// their notifications handed to the hub, the observers told.
    func recordHealth(_ summary: RoundSummary, abort: RoundAbort?) {
        let now = Date().timeIntervalSince1970
        let observed = monitoring.attempt
        monitoring.attempt = MonitoringState.Attempt()
        var health = RoundHealth(
            number: summary.number, attempt: summary.attempt,
            outcome: summary.completed ? "completed" : summary.interrupted ? "interrupted" : "aborted",
            started: now - summary.seconds, finished: now, cohort: summary.cohort, survivors: summary.survivors,
            seconds: summary.seconds, bytesIn: summary.bytesIn, bytesOut: summary.bytesOut)
        health.threshold = summary.threshold
        health.stageSeconds = observed.stageSeconds
        health.dropouts = observed.dropouts.dropouts
        health.declines = observed.declines
        health.accuracy = summary.accuracy
        health.loss = summary.loss
        health.abortKind = abort?.kind.rawValue
        // The reason can quote a participant's words; a bounded excerpt is enough here.
        health.abortReason = abort.map { String($0.detail.prefix(500)) }
        if let ledger {
            let spent = ledger.balances.map(\.epsilon)
            health.epsilonMax = spent.max() ?? 0
            health.epsilonMean = spent.isEmpty ? 0 : spent.reduce(0, +) / Double(spent.count)
        }
        if summary.completed { health.updateNorm = observed.updateNorm }
        monitoring.rounds.append(health)
        if monitoring.rounds.count > MonitoringState.memory { monitoring.rounds.removeFirst() }
        metrics.set(
            "veil_round_dropout_fraction",
            summary.cohort == 0 ? 0 : Double(health.droppedCount) / Double(summary.cohort))
        if let norm = health.updateNorm { metrics.set("veil_round_update_norm", norm) }
        evaluateAlerts(round: summary.number, at: now)
        let reports = monitoring.unsaved
        if recording(
            "record the round's health",
            {
                try store.recordHealth(health, resources: reports, alerts: monitoring.alerts)
            }) != nil
        {
            monitoring.unsaved = [:]
        }
        hub.changed()
    }

    /// Runs every alert rule over the history and folds what they find into the alert book.
    private func evaluateAlerts(round: Int, at now: Double) {
        let rules = configuration.monitoring?.alerts ?? AlertRule.defaults
        let input = AnomalyDetector.Input(
            rounds: monitoring.rounds, invitations: monitoring.invitations,
            epsilon: Dictionary(uniqueKeysWithValues: ledger?.balances.map { ($0.participant, $0.epsilon) } ?? []),
            budget: privacy?.settings.budget, alertFraction: privacy?.settings.alertFraction)
        let notices = monitoring.alerts.evaluate(
            rules.map { ($0, AnomalyDetector.findings($0, in: input)) }, round: round, at: now)
        for notice in notices {
            let alert = notice.alert
            let metadata: Logger.Metadata = [
                "alert": "\(alert.rule)", "subject": "\(alert.subject)", "severity": "\(alert.severity)",
                "round": "\(round)", "summary": "\(alert.summary)",
            ]
            if alert.state == .firing {
                logger.warning("alert firing", metadata: metadata)
            } else {
                logger.info("alert resolved", metadata: metadata)
            }
            hub.alert(notice)
        }
        let firing = Set(monitoring.alerts.firing.map(\.rule))
        for rule in rules {
            metrics.set(
                "veil_alerts_firing", firing.contains(rule.name) ? 1 : 0,
                labels: ["alert": rule.name, "severity": rule.severity.rawValue])
        }
    }

    /// The dashboard's view of the federation now.
    public func monitoringSnapshot() -> MonitoringSnapshot {
        let records = storeClosed ? [] : recording("read the participants") { try store.participantRecords() } ?? []
        let process = metrics.sampleProcess()
        let current = active.map {
            MonitoringSnapshot.Current(
                round: $0.number, attempt: $0.attempt, cohort: $0.cohort.count, protocolRound: $0.stage?.description)
        }
        let round = completedRounds + 1
        return MonitoringSnapshot.assemble(
            configuration: configuration, roundsCompleted: completedRounds, rounds: monitoring.rounds,
            records: records, resources: monitoring.resources, alerts: monitoring.alerts, ledger: ledger,
            reputation: { [book] in book.reputations[$0] == nil ? nil : book.reputation(of: $0, at: round) },
            connected: Set(registry.participants.keys), excluded: faultExcluded, current: current,
            coordinator: MonitoringSnapshot.CoordinatorUsage(
                cpuFraction: process.cpuFraction, residentBytes: process.residentBytes,
                uptimeSeconds: Date().timeIntervalSince(startedAt)),
            live: true)
    }
}
