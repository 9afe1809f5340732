import Foundation

/// The store's monitoring records (`Specs/wire.md` §9.2): each attempt's `RoundHealth`, the
/// participants' latest resource reports, the alert book, and the per-participant tallies the
/// dashboard and `veil report` show.
extension CoordinatorStore {
    static let alertBookKey = "alert_book"

    /// Records an attempt's health, the resource reports received since the last one, and the
    /// alert book, in one transaction.
    public func recordHealth(_ health: RoundHealth, resources: [String: ResourceUsage], alerts: AlertBook) throws {
        let encoder = JSONEncoder()
        let row = try encoder.encode(health)
        let book = String(decoding: try encoder.encode(alerts), as: UTF8.self)
        let reports = try resources.map { ($0.key, try encoder.encode($0.value)) }
        try write { db in
            try db.execute(
                """
                INSERT INTO round_health (number, attempt, health) VALUES (?, ?, ?)
                ON CONFLICT (number, attempt) DO UPDATE SET health = excluded.health
                """, [health.number, health.attempt, row])
            for (id, usage) in reports {
                try db.execute(
                    """
                    INSERT INTO resource_reports (participant, usage) VALUES (?, ?)
                    ON CONFLICT (participant) DO UPDATE SET usage = excluded.usage
                    """, [id, usage])
            }
            try db.execute(
                Self.setMeta, [Self.alertBookKey, book])
        }
    }

    /// Every attempt, in order: its recorded health (within the bounds the coordinator writes,
    /// ``RoundHealth/sanitized()``), or — for attempts recorded before health was kept, not
    /// recorded because the store failed, or whose record cannot be read (counted in
    /// `unreadable`) — what the rounds table says of it.
    public func roundHealth() throws -> (rounds: [RoundHealth], unreadable: Int) {
        try database.read { db in
            var recorded: [String: RoundHealth] = [:]
            var unreadable = 0
            if try db.tableExists("round_health") {
                for row in try db.fetch("SELECT number, attempt, health FROM round_health") {
                    let number = try row.int("number")
                    let attempt = try row.int("attempt")
                    guard let data = try? row.bytes("health"),
                        let health = try? JSONDecoder().decode(RoundHealth.self, from: Data(data))
                    else {
                        unreadable += 1
                        continue
                    }
                    recorded["\(number)/\(attempt)"] = health.sanitized()
                }
            }
            var accuracy: [Int: Double] = [:]
            for row in try db.fetch("SELECT round, accuracy FROM checkpoints WHERE accuracy IS NOT NULL") {
                accuracy[try row.int("round")] = try row.double("accuracy")
            }
            let rounds = try db.fetch(
                """
                SELECT number, attempt, started, finished, outcome, cohort, survivors, abort_reason, bytes_in,
                    bytes_out FROM rounds WHERE outcome != 'running' ORDER BY number, attempt
                """
            ).map { row in
                let number = try row.int("number")
                let attempt = try row.int("attempt")
                if let health = recorded["\(number)/\(attempt)"] { return health }
                let started = try row.double("started")
                let finished = try row.optionalDouble("finished") ?? started
                let outcome = try row.string("outcome")
                var health = RoundHealth(
                    number: number, attempt: attempt, outcome: outcome, started: started, finished: finished,
                    cohort: try row.int("cohort"), survivors: try row.optionalInt("survivors") ?? 0,
                    seconds: finished - started, bytesIn: try row.optionalInt("bytes_in") ?? 0,
                    bytesOut: try row.optionalInt("bytes_out") ?? 0)
                health.abortReason = try row.optionalString("abort_reason")
                if outcome == "completed" { health.accuracy = accuracy[number] }
                return health.sanitized()
            }
            return (rounds, unreadable)
        }
    }

    /// Notes that a participant was seen now (its stream ended).
    public func touchParticipant(_ id: String) throws {
        try write { db in
            try db.execute(
                "UPDATE participants SET last_seen = ? WHERE id = ?", [Date().timeIntervalSince1970, id])
        }
    }

    /// Each participant's latest resource report.
    public func resourceReports() throws -> [String: ResourceUsage] {
        try database.read { db in
            guard try db.tableExists("resource_reports") else { return [:] }
            var result: [String: ResourceUsage] = [:]
            // A report that does not read back, or is out of bounds, is left out.
            for row in try db.fetch("SELECT participant, usage FROM resource_reports") {
                guard let data = try? row.bytes("usage"),
                    let stored = try? JSONDecoder().decode(ResourceUsage.self, from: Data(data)),
                    let usage = try? ResourceUsage(validating: stored.report, at: stored.reported)
                else { continue }
                result[try row.string("participant")] = usage
            }
            return result
        }
    }

    /// The stored alert book, within bounds (``AlertBook/sanitized()``): a new one before the
    /// first evaluation, or when the stored one cannot be read (`readable` false — its alerts
    /// then fire again if their conditions hold).
    public func alertBook() throws -> (book: AlertBook, readable: Bool) {
        guard let text = try value(Self.alertBookKey) else { return (AlertBook(), true) }
        guard let book = try? JSONDecoder().decode(AlertBook.self, from: Data(text.utf8)) else {
            return (AlertBook(), false)
        }
        return (book.sanitized(), true)
    }

    /// What the store knows of each participant that ever registered.
    public struct ParticipantRecord: Sendable {
        public var id: String
        public var firstSeen: Double
        public var lastSeen: Double
        /// Invitations, contributions, and dropouts or proven faults.
        public var selected = 0
        public var completed = 0
        public var dropped = 0
        /// Faults attributed to it (proven or not), and the credits its contributions earned.
        public var faults = 0
        public var credits = 0.0
    }

    public func participantRecords() throws -> [ParticipantRecord] {
        try database.read { db in
            var records: [String: ParticipantRecord] = [:]
            for row in try db.fetch("SELECT id, first_seen, last_seen FROM participants ORDER BY id") {
                let id = try row.string("id")
                records[id] = ParticipantRecord(
                    id: id, firstSeen: try row.double("first_seen"), lastSeen: try row.double("last_seen"))
            }
            if try db.tableExists("participation") {
                for row in try db.fetch(
                    """
                    SELECT participant, COUNT(*) AS selected,
                        SUM(CASE WHEN outcome = 'contributed' THEN 1 ELSE 0 END) AS completed,
                        SUM(CASE WHEN outcome IN ('dropped', 'faulted') THEN 1 ELSE 0 END) AS dropped
                    FROM participation GROUP BY participant
                    """)
                {
                    let id = try row.string("participant")
                    records[id]?.selected = try row.int("selected")
                    records[id]?.completed = try row.int("completed")
                    records[id]?.dropped = try row.int("dropped")
                }
            }
            if try db.tableExists("credits") {
                for row in try db.fetch("SELECT participant, SUM(credits) AS total FROM credits GROUP BY participant") {
                    records[try row.string("participant")]?.credits = try row.double("total")
                }
            }
            if try db.tableExists("attributions") {
                for row in try db.fetch("SELECT participant, COUNT(*) AS n FROM attributions GROUP BY participant") {
                    records[try row.string("participant")]?.faults = try row.int("n")
                }
            }
            return records.values.sorted { $0.id < $1.id }
        }
    }
}
