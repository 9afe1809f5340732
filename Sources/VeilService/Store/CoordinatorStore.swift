import Foundation
import GRDB
import VeilCore
import VeilLearning
import VeilPrivacy
import VeilSecAgg

/// The coordinator's durable state, in SQLite (WAL mode, through GRDB's `DatabasePool`):
/// participants, rounds and their outcomes, model checkpoints, transcript hashes, the
/// privacy ledger. Every completed round is one transaction — outcome and checkpoint
/// together — so a coordinator killed at any point restarts from the last completed round
/// (`Specs/wire.md` §6).
public final class CoordinatorStore: Sendable {
    let pool: DatabasePool

    /// Opens (creating and migrating) the store at `path`.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
        // A round left running by a coordinator that died is aborted cleanly: it will run again.
        try pool.write { db in
            try db.execute(
                sql: "UPDATE rounds SET outcome = 'interrupted', finished = ? WHERE outcome = 'running'",
                arguments: [Date().timeIntervalSince1970])
        }
    }

    /// Opens an existing store for reading only: no migration, and a round left running stays
    /// as it is (a coordinator may be running on it) — for `veil audit export`.
    public init(readingAt path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw ConfigurationError("no store at \(path)") }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: configuration)
    }

    /// Checkpoints the write-ahead log and closes the database: after a clean stop the state
    /// is one file, and nothing more can be written through this store.
    public func close() throws {
        try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        try pool.close()
    }

    /// The journal mode SQLite reports (`wal`).
    public var journalMode: String {
        get throws { try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" } }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "participants") { t in
                t.primaryKey("id", .text)
                t.column("first_seen", .double).notNull()
                t.column("last_seen", .double).notNull()
                t.column("cores", .integer)
                t.column("memory_bytes", .integer)
                t.column("battery", .double)
                t.column("link_bits_per_second", .integer)
                t.column("sample_count", .integer)
                t.column("rounds_completed", .integer).notNull().defaults(to: 0)
            }
            try db.create(table: "rounds") { t in
                t.column("number", .integer).notNull()
                t.column("attempt", .integer).notNull()
                t.column("started", .double).notNull()
                t.column("finished", .double)
                t.column("outcome", .text).notNull()
                t.column("cohort", .integer).notNull()
                t.column("survivors", .integer)
                t.column("abort_reason", .text)
                t.column("transcript_hash", .blob)
                t.column("bytes_in", .integer)
                t.column("bytes_out", .integer)
                t.primaryKey(["number", "attempt"])
            }
            try db.create(table: "checkpoints") { t in
                t.primaryKey("round", .integer)
                t.column("state", .blob).notNull()
                t.column("accuracy", .double)
                t.column("created", .double).notNull()
            }
            try db.create(table: "ledger") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("state", .blob).notNull()
            }
            try db.create(table: "meta") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
        }
        migrator.registerMigration("v2-attributions") { db in
            // One row per fault a participant's own signed messages prove, with that evidence
            // (`SecAggEvidence`'s encoding, `Specs/secagg.md` §7.1).
            try db.create(table: "attributions") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("participant", .text).notNull().indexed()
                t.column("round", .integer).notNull()
                t.column("attempt", .integer).notNull()
                t.column("fault", .text).notNull()
                t.column("detail", .text).notNull()
                t.column("evidence", .blob).notNull()
                t.column("recorded", .double).notNull()
            }
        }
        migrator.registerMigration("v3-audit") { db in
            // The audit records of masking rounds, chained in `sequence` order, and each one's
            // log of protocol messages (`Specs/audit.md`).
            try db.create(table: "audit_records") { t in
                t.primaryKey("sequence", .integer)
                t.column("round", .integer).notNull()
                t.column("attempt", .integer).notNull()
                t.column("record", .blob).notNull()
                t.column("signature", .blob).notNull()
            }
            try db.create(table: "audit_events") { t in
                t.column("sequence", .integer).notNull().references("audit_records")
                t.column("idx", .integer).notNull()
                t.column("kind", .integer).notNull()
                t.column("party", .integer).notNull()
                t.column("bytes", .blob).notNull()
                t.primaryKey(["sequence", "idx"])
            }
        }
        migrator.registerMigration("v4-audit-plans") { db in
            // The round plan each record's session binds (`Specs/audit.md` §3), so that an
            // auditor can read the training and DP plan every participant accepted.
            try db.alter(table: "audit_records") { t in t.add(column: "plan", .blob) }
        }
        migrator.registerMigration("v5-audit-paillier") { db in
            // A Paillier record's evidence (`Specs/audit.md` §7.2): the contributions' ciphertexts,
            // the re-randomisers, the aggregate and the sum, as the export writes them.
            try db.alter(table: "audit_records") { t in t.add(column: "paillier", .blob) }
        }
        migrator.registerMigration("v6-orchestration") { db in
            // What each invited participant did in each attempt, as the coordinator measured it
            // (reputation and Oort's records are folds of it, `Specs/orchestration.md` §6), and
            // the credits each contribution earned (§7).
            try db.create(table: "participation") { t in
                t.column("participant", .text).notNull()
                t.column("round", .integer).notNull()
                t.column("attempt", .integer).notNull()
                t.column("outcome", .text).notNull()
                t.column("seconds", .double)
                t.column("examples", .integer).notNull()
                t.column("loss", .double)
                t.column("deadline", .double).notNull()
                t.primaryKey(["round", "attempt", "participant"])
            }
            try db.create(table: "credits") { t in
                t.column("participant", .text).notNull()
                t.column("round", .integer).notNull()
                t.column("attempt", .integer).notNull()
                t.column("credits", .double).notNull()
                t.column("reputation", .double).notNull()
                t.column("examples", .integer).notNull()
                t.primaryKey(["round", "participant"])
            }
        }
        migrator.registerMigration("v7-monitoring") { db in
            // What the coordinator observed of each attempt (`RoundHealth`, JSON), each
            // participant's latest resource report, for the dashboard and `veil report`
            // (`Specs/wire.md` §9.2); the alert book is a `meta` value.
            try db.create(table: "round_health") { t in
                t.column("number", .integer).notNull()
                t.column("attempt", .integer).notNull()
                t.column("health", .blob).notNull()
                t.primaryKey(["number", "attempt"])
            }
            try db.create(table: "resource_reports") { t in
                t.primaryKey("participant", .text)
                t.column("usage", .blob).notNull()
            }
        }
        return migrator
    }

    // MARK: - Audit records

    /// An attempt's audit record before it is sealed: the store gives it its place in the
    /// chain (sequence, previous hash) inside the transaction that ends the round.
    public struct AuditDraft: Sendable {
        public var events: [SecAggAuditEvent]
        /// The round plan's encoding (its digest is the session's context).
        public var plan: [UInt8]
        /// A Paillier record's evidence (``PaillierAuditEvidence``, JSON); nil for masking.
        public var paillier: [UInt8]? = nil
        /// Builds and signs the record for a sequence number and the previous record's hash.
        public var seal: @Sendable (_ sequence: Int, _ previous: [UInt8]) -> (record: [UInt8], signature: [UInt8])
    }

    /// A stored audit record, its signature and its log.
    public struct StoredAudit: Sendable {
        public var sequence: Int
        public var round: Int
        public var attempt: Int
        public var record: [UInt8]
        public var signature: [UInt8]
        public var events: [SecAggAuditEvent]
        /// The round plan's encoding; nil for records stored before plans were kept.
        public var plan: [UInt8]?
        /// A Paillier record's evidence (JSON); nil for masking records.
        public var paillier: [UInt8]?
    }

    /// Seals and stores the record; returns its bytes.
    private static func insert(_ draft: AuditDraft, round: Int, attempt: Int, in db: Database) throws -> [UInt8] {
        let last = try Row.fetchOne(
            db, sql: "SELECT sequence, record FROM audit_records ORDER BY sequence DESC LIMIT 1")
        let sequence = (last.map { $0["sequence"] as Int } ?? 0) + 1
        let previous =
            last.map { RoundAuditRecord.hash([UInt8]($0["record"] as Data)) } ?? [UInt8](repeating: 0, count: 32)
        let (record, signature) = draft.seal(sequence, previous)
        try db.execute(
            sql:
                "INSERT INTO audit_records (sequence, round, attempt, record, signature, plan, paillier) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [
                sequence, round, attempt, Data(record), Data(signature), Data(draft.plan),
                draft.paillier.map { Data($0) },
            ])
        for (index, event) in draft.events.enumerated() {
            let (kind, party, bytes): (Int, Int, [UInt8]) =
                switch event {
                case .received(let p, let b): (0, Int(p.rawValue), b)
                case .deadline: (1, 0, [])
                case .sent(let b): (2, 0, b)
                }
            try db.execute(
                sql: "INSERT INTO audit_events (sequence, idx, kind, party, bytes) VALUES (?, ?, ?, ?, ?)",
                arguments: [sequence, index, kind, party, Data(bytes)])
        }
        return record
    }

    /// The audit records of rounds `rounds` (every attempt), in chain order, with their logs.
    public func audits(rounds: ClosedRange<Int>) throws -> [StoredAudit] {
        try pool.read { db in
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT sequence, round, attempt, record, signature, plan, paillier FROM audit_records WHERE round BETWEEN ? AND ? ORDER BY sequence",
                arguments: [rounds.lowerBound, rounds.upperBound])
            return try rows.map { row in
                let sequence: Int = row["sequence"]
                let events = try Row.fetchAll(
                    db, sql: "SELECT kind, party, bytes FROM audit_events WHERE sequence = ? ORDER BY idx",
                    arguments: [sequence]
                ).map { event -> SecAggAuditEvent in
                    let bytes = [UInt8](event["bytes"] as Data)
                    switch event["kind"] as Int {
                    case 0: return .received(ParticipantID(UInt32(event["party"] as Int)), bytes)
                    case 1: return .deadline
                    default: return .sent(bytes)
                    }
                }
                return StoredAudit(
                    sequence: sequence, round: row["round"], attempt: row["attempt"],
                    record: [UInt8](row["record"] as Data), signature: [UInt8](row["signature"] as Data),
                    events: events, plan: (row["plan"] as Data?).map { [UInt8]($0) },
                    paillier: (row["paillier"] as Data?).map { [UInt8]($0) })
            }
        }
    }

    // MARK: - Attributions

    /// One attributed fault and its evidence.
    public struct Attribution: Sendable, Equatable {
        public var participant: String
        public var round: Int
        public var attempt: Int
        public var fault: String
        public var detail: String
        public var evidence: [UInt8]
    }

    public func recordAttribution(_ attribution: Attribution) throws {
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO attributions (participant, round, attempt, fault, detail, evidence, recorded)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    attribution.participant, attribution.round, attribution.attempt, attribution.fault,
                    attribution.detail, Data(attribution.evidence), Date().timeIntervalSince1970,
                ])
        }
    }

    /// Every recorded attribution, oldest first.
    public func attributions() throws -> [Attribution] {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT participant, round, attempt, fault, detail, evidence FROM attributions ORDER BY seq"
            ).map { row in
                Attribution(
                    participant: row["participant"], round: row["round"], attempt: row["attempt"], fault: row["fault"],
                    detail: row["detail"], evidence: [UInt8](row["evidence"] as Data))
            }
        }
    }

    /// How many faults of the given kinds are recorded against each participant.
    public func attributionCounts(faults: [String]) throws -> [String: Int] {
        guard !faults.isEmpty else { return [:] }
        return try pool.read { db in
            let marks = Array(repeating: "?", count: faults.count).joined(separator: ", ")
            let rows = try Row.fetchAll(
                db,
                sql:
                    "SELECT participant, COUNT(*) AS n FROM attributions WHERE fault IN (\(marks)) GROUP BY participant",
                arguments: StatementArguments(faults))
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["participant"], $0["n"]) })
        }
    }

    // MARK: - Participants

    public func recordParticipant(
        id: String, cores: Int, memoryBytes: UInt64, battery: Double, linkBitsPerSecond: UInt64, sampleCount: UInt64
    ) throws {
        let now = Date().timeIntervalSince1970
        try pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO participants (id, first_seen, last_seen, cores, memory_bytes, battery,
                        link_bits_per_second, sample_count)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen, cores = excluded.cores,
                        memory_bytes = excluded.memory_bytes, battery = excluded.battery,
                        link_bits_per_second = excluded.link_bits_per_second, sample_count = excluded.sample_count
                    """,
                arguments: [
                    id, now, now, cores, Int64(clamping: memoryBytes), battery, Int64(clamping: linkBitsPerSecond),
                    Int64(clamping: sampleCount),
                ])
        }
    }

    /// How many rounds each participant has completed (for round-robin selection).
    public func roundsCompleted() throws -> [String: Int] {
        try pool.read { db in
            var result: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, rounds_completed FROM participants") {
                result[row["id"]] = row["rounds_completed"]
            }
            return result
        }
    }

    // MARK: - Rounds

    /// The number the next attempt of round `number` takes: one more than any recorded,
    /// including attempts a stopped or crashed process left behind.
    public func nextAttempt(of number: Int) throws -> Int {
        try pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT MAX(attempt) FROM rounds WHERE number = ?", arguments: [number]) ?? 0)
                + 1
        }
    }

    /// Records attempt `attempt` of round `number` as running (the primary key refuses an
    /// attempt recorded before).
    public func beginRound(_ number: Int, attempt: Int, cohort: Int) throws {
        try pool.write { db in
            try db.execute(
                sql: "INSERT INTO rounds (number, attempt, started, outcome, cohort) VALUES (?, ?, ?, 'running', ?)",
                arguments: [number, attempt, Date().timeIntervalSince1970, cohort])
        }
    }

    /// What a finished attempt produced.
    public struct RoundRecord: Sendable {
        public var outcome: String
        public var survivors: Int
        public var abortReason: String?
        public var transcriptHash: [UInt8]
        public var bytesIn: Int
        public var bytesOut: Int
        public var contributors: [String]
        /// Every invited participant's outcome; the credits of a completed round's contributors.
        public var participation: [Participation]
        public var credits: [Credit]

        public init(
            outcome: String, survivors: Int, abortReason: String?, transcriptHash: [UInt8], bytesIn: Int, bytesOut: Int,
            contributors: [String], participation: [Participation] = [], credits: [Credit] = []
        ) {
            self.participation = participation
            self.credits = credits
            self.outcome = outcome
            self.survivors = survivors
            self.abortReason = abortReason
            self.transcriptHash = transcriptHash
            self.bytesIn = bytesIn
            self.bytesOut = bytesOut
            self.contributors = contributors
        }
    }

    /// Records an attempt's end and, for a completed round, the new checkpoint (and ledger) —
    /// in one transaction. Returns the SHA-256 of the audit record sealed with it, if any.
    @discardableResult
    public func finishRound(
        _ number: Int, attempt: Int, record: RoundRecord, checkpoint: FedAvgFamily?, accuracy: Double?,
        ledger: PrivacyLedger?, audit: AuditDraft? = nil
    ) throws -> [UInt8]? {
        let encoder = JSONEncoder()
        let state = try checkpoint.map { try encoder.encode($0) }
        let ledgerState = try ledger.map { try encoder.encode($0) }
        let now = Date().timeIntervalSince1970
        return try pool.write { db -> [UInt8]? in
            try db.execute(
                sql: """
                    UPDATE rounds SET finished = ?, outcome = ?, survivors = ?, abort_reason = ?, transcript_hash = ?,
                        bytes_in = ?, bytes_out = ? WHERE number = ? AND attempt = ?
                    """,
                arguments: [
                    now, record.outcome, record.survivors, record.abortReason, Data(record.transcriptHash),
                    record.bytesIn, record.bytesOut, number, attempt,
                ])
            if let state {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO checkpoints (round, state, accuracy, created) VALUES (?, ?, ?, ?)",
                    arguments: [number, state, accuracy, now])
                for id in record.contributors {
                    try db.execute(
                        sql: "UPDATE participants SET rounds_completed = rounds_completed + 1 WHERE id = ?",
                        arguments: [id])
                }
            }
            if let ledgerState {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO ledger (id, state) VALUES (1, ?)", arguments: [ledgerState])
            }
            for p in record.participation {
                try db.execute(
                    sql: """
                        INSERT INTO participation (participant, round, attempt, outcome, seconds, examples, loss, deadline)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        p.participant, number, attempt, p.outcome.rawValue, p.seconds, p.examples, p.loss, p.deadline,
                    ])
            }
            for c in record.credits {
                try db.execute(
                    sql: """
                        INSERT INTO credits (participant, round, attempt, credits, reputation, examples)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [c.participant, number, attempt, c.credits, c.reputation, c.examples])
            }
            return try audit.map { RoundAuditRecord.hash(try Self.insert($0, round: number, attempt: attempt, in: db)) }
        }
    }

    /// The latest checkpoint: its round and the algorithm's state.
    public func latestCheckpoint() throws -> (round: Int, state: FedAvgFamily)? {
        try pool.read { db in
            guard
                let row = try Row.fetchOne(db, sql: "SELECT round, state FROM checkpoints ORDER BY round DESC LIMIT 1")
            else { return nil }
            let data: Data = row["state"]
            return (row["round"], try JSONDecoder().decode(FedAvgFamily.self, from: data))
        }
    }

    /// The stored privacy ledger, if any.
    public func ledger() throws -> PrivacyLedger? {
        try pool.read { db in
            guard let data = try Data.fetchOne(db, sql: "SELECT state FROM ledger WHERE id = 1") else { return nil }
            return try JSONDecoder().decode(PrivacyLedger.self, from: data)
        }
    }

    /// Every attempt, in order: number, attempt, outcome, survivors.
    public func rounds() throws -> [(number: Int, attempt: Int, outcome: String, survivors: Int?, abortReason: String?)]
    {
        try pool.read { db in
            try Row.fetchAll(
                db, sql: "SELECT number, attempt, outcome, survivors, abort_reason FROM rounds ORDER BY number, attempt"
            )
            .map { ($0["number"], $0["attempt"], $0["outcome"], $0["survivors"], $0["abort_reason"]) }
        }
    }

    // MARK: - Participation and credits

    /// What one invited participant did in one attempt.
    public struct Participation: Sendable, Equatable {
        public var participant: String
        public var round: Int
        public var attempt: Int
        public var outcome: ParticipationOutcome
        /// Measured by the coordinator for a contribution: over the stages it answered, the
        /// seconds from each stage's start to its message (nil for any other outcome).
        public var seconds: Double?
        /// The example count the participant reported when it connected.
        public var examples: Int
        /// The loss it revealed for the attempt (`Specs/orchestration.md` §5.1), if any.
        public var loss: Double?
        /// The training deadline of the attempt, in seconds (timeliness is measured against it).
        public var deadline: Double

        public init(
            participant: String, round: Int, attempt: Int, outcome: ParticipationOutcome, seconds: Double?,
            examples: Int, loss: Double? = nil, deadline: Double
        ) {
            self.loss = loss
            self.deadline = deadline
            self.participant = participant
            self.round = round
            self.attempt = attempt
            self.outcome = outcome
            self.seconds = seconds
            self.examples = examples
        }
    }

    /// What one contribution to a completed round earned (`Specs/orchestration.md` §7).
    public struct Credit: Sendable, Equatable {
        public var participant: String
        public var round: Int
        public var credits: Double
        /// The contributor's reputation before the round.
        public var reputation: Double
        public var examples: Int

        public init(participant: String, round: Int, credits: Double, reputation: Double, examples: Int) {
            self.participant = participant
            self.round = round
            self.credits = credits
            self.reputation = reputation
            self.examples = examples
        }
    }

    /// Every participation row, in the order the attempts ran.
    public func participation() throws -> [Participation] {
        try pool.read { db in
            // A store opened for reading that a coordinator of an earlier version wrote has
            // no such table yet: nothing recorded.
            guard try db.tableExists("participation") else { return [] }
            return try Row.fetchAll(
                db,
                sql:
                    "SELECT participant, round, attempt, outcome, seconds, examples, loss, deadline FROM participation ORDER BY round, attempt, participant"
            ).map { row in
                let text: String = row["outcome"]
                guard let outcome = ParticipationOutcome(rawValue: text) else {
                    throw ConfigurationError("the store's participation table has an unknown outcome \"\(text)\"")
                }
                return Participation(
                    participant: row["participant"], round: row["round"], attempt: row["attempt"], outcome: outcome,
                    seconds: row["seconds"], examples: row["examples"], loss: row["loss"], deadline: row["deadline"])
            }
        }
    }

    /// Every credit row, by round.
    public func credits() throws -> [Credit] {
        try pool.read { db in
            guard try db.tableExists("credits") else { return [] }
            return try Row.fetchAll(
                db,
                sql: "SELECT participant, round, credits, reputation, examples FROM credits ORDER BY round, participant"
            ).map { row in
                Credit(
                    participant: row["participant"], round: row["round"], credits: row["credits"],
                    reputation: row["reputation"], examples: row["examples"])
            }
        }
    }

    /// The latest completed round (0 before the first).
    public func latestRound() throws -> Int {
        try pool.read { db in
            guard try db.tableExists("checkpoints") else { return 0 }
            return try Int.fetchOne(db, sql: "SELECT MAX(round) FROM checkpoints") ?? 0
        }
    }

    /// The test accuracy stored with each checkpoint that has one, by round.
    public func accuracies() throws -> [Int: Double] {
        try pool.read { db in
            guard try db.tableExists("checkpoints") else { return [:] }
            var result: [Int: Double] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT round, accuracy FROM checkpoints WHERE accuracy IS NOT NULL")
            {
                result[row["round"]] = row["accuracy"]
            }
            return result
        }
    }

    // MARK: - Meta

    public func value(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setValue(_ value: String, for key: String) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }
}
