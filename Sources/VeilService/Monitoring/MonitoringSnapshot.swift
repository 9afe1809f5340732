import Foundation
import VeilLearning
import VeilPrivacy

/// Everything the dashboard draws and `veil report` writes (`Specs/wire.md` §9.2): the
/// federation, every attempt's health, every participant that registered, the privacy
/// budget, the alerts and the coordinator's own resources. Encoded as JSON with snake_case
/// keys spelled out (participant ids and stage names are data, never rewritten).
public struct MonitoringSnapshot: Codable, Sendable {
    public struct Federation: Codable, Sendable {
        public var name: String
        public var roundsTarget: Int
        public var roundsCompleted: Int
        public var secureSum: String
        public var algorithm: String
        public var model: String
        public var cohortSize: Int
        public var minParticipants: Int
        public var selection: String

        enum CodingKeys: String, CodingKey {
            case name, roundsTarget = "rounds_target", roundsCompleted = "rounds_completed", secureSum = "secure_sum"
            case algorithm, model, cohortSize = "cohort_size", minParticipants = "min_participants", selection
        }
    }

    public struct Current: Codable, Sendable {
        public var round: Int
        public var attempt: Int
        public var cohort: Int
        public var protocolRound: String?

        enum CodingKeys: String, CodingKey {
            case round, attempt, cohort, protocolRound = "protocol_round"
        }
    }

    public struct Participant: Codable, Sendable {
        public var id: String
        public var connected: Bool
        public var firstSeen: Double
        public var lastSeen: Double
        public var selected: Int
        public var completed: Int
        public var dropped: Int
        public var faults: Int
        public var excluded: Bool
        public var epsilon: Double?
        public var reputation: Double?
        public var credits: Double?
        public var resources: ResourceUsage?

        enum CodingKeys: String, CodingKey {
            case id, connected, firstSeen = "first_seen", lastSeen = "last_seen", selected, completed, dropped
            case faults, excluded, epsilon, reputation, credits, resources
        }
    }

    public struct Privacy: Codable, Sendable {
        public var mode: String
        public var budget: Double
        public var delta: Double
        public var alertFraction: Double

        enum CodingKeys: String, CodingKey {
            case mode, budget, delta, alertFraction = "alert_fraction"
        }
    }

    public struct CoordinatorUsage: Codable, Sendable {
        public var cpuFraction: Double
        public var residentBytes: UInt64
        public var uptimeSeconds: Double

        enum CodingKeys: String, CodingKey {
            case cpuFraction = "cpu_fraction", residentBytes = "resident_bytes", uptimeSeconds = "uptime_seconds"
        }
    }

    public var version = 1
    public var generated: Double
    public var live: Bool
    public var federation: Federation
    public var current: Current?
    public var rounds: [RoundHealth]
    public var participants: [Participant]
    public var privacy: Privacy?
    /// Firing alerts, then the resolved ones (latest first).
    public var alerts: [AlertBook.Alert]
    public var coordinator: CoordinatorUsage?

    /// The JSON the dashboard reads (an unknown value's key is left out).
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }
}

extension MonitoringSnapshot {
    /// Assembles a snapshot from what the store keeps and what the caller knows live.
    static func assemble(
        configuration c: ServeConfiguration, roundsCompleted: Int, rounds: [RoundHealth],
        records: [CoordinatorStore.ParticipantRecord], resources: [String: ResourceUsage], alerts: AlertBook,
        ledger: PrivacyLedger?, reputation: (String) -> Double?, connected: Set<String>, excluded: Set<String>,
        current: Current?, coordinator: CoordinatorUsage?, live: Bool
    ) -> MonitoringSnapshot {
        let now = Date().timeIntervalSince1970
        let participants = records.map { r in
            // A connected participant is seen now; the store has when the others left.
            Participant(
                id: r.id, connected: connected.contains(r.id), firstSeen: r.firstSeen,
                lastSeen: connected.contains(r.id) ? now : r.lastSeen,
                selected: r.selected, completed: r.completed, dropped: r.dropped, faults: r.faults,
                excluded: excluded.contains(r.id), epsilon: ledger.map { $0.spent(by: r.id) },
                reputation: reputation(r.id), credits: r.credits, resources: resources[r.id])
        }
        let privacy = c.privacy.map {
            Privacy(mode: $0.mode.rawValue, budget: $0.budget, delta: $0.delta, alertFraction: $0.alertFraction)
        }
        return MonitoringSnapshot(
            generated: now, live: live,
            federation: Federation(
                name: c.federation, roundsTarget: c.rounds, roundsCompleted: roundsCompleted,
                secureSum: c.secureSum.rawValue, algorithm: c.algorithm.rawValue, model: Self.modelName(c.model),
                cohortSize: c.cohortSize, minParticipants: c.minParticipants, selection: c.selection.rawValue),
            current: current, rounds: rounds, participants: participants, privacy: privacy,
            alerts: alerts.firing + alerts.past.reversed(), coordinator: coordinator)
    }

    /// The model's name; a `tensors:` schema (up to 1 MiB of text) by its tensor count.
    static func modelName(_ model: ModelArchitecture) -> String {
        if case .tensors(let schema) = model { return "tensors (\(schema.tensors.count) tensors)" }
        return model.description
    }

    /// A snapshot of a federation from its store alone (running or finished): `veil report`;
    /// with a warning for each kind of record it could not read.
    public static func stored(configuration c: ServeConfiguration, store: CoordinatorStore) throws -> (
        snapshot: MonitoringSnapshot, warnings: [String]
    ) {
        let (rounds, unreadable) = try store.roundHealth()
        let (alerts, readable) = try store.alertBook()
        var warnings: [String] = []
        if unreadable > 0 {
            warnings.append(
                "\(unreadable) attempt record(s) in the store could not be read; those attempts are reported from the rounds table"
            )
        }
        if !readable { warnings.append("the store's alert book could not be read; no alert is reported") }
        let history = try store.participation()
        let book = OrchestrationBook(settings: c.orchestration, history: history)
        let completed = try store.latestRound()
        let snapshot = assemble(
            configuration: c, roundsCompleted: completed, rounds: rounds,
            records: try store.participantRecords(), resources: try store.resourceReports(),
            alerts: alerts, ledger: try store.ledger(),
            reputation: { book.reputations[$0] == nil ? nil : book.reputation(of: $0, at: completed + 1) },
            connected: [], excluded: try Coordinator.excluded(store: store, limit: c.excludeAfterFaults), current: nil,
            coordinator: nil, live: false)
        return (snapshot, warnings)
    }
}
