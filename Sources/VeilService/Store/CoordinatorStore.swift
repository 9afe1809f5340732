import Foundation
import VeilCore
import VeilLearning
import VeilPrivacy
import VeilSecAgg

/// The coordinator's durable state: participants, rounds and their outcomes, model
/// checkpoints, transcript hashes, the privacy ledger — in SQLite or PostgreSQL
/// (``StoreLocation``), with the same schema and statements. Every completed round is one
/// transaction — outcome and checkpoint together — so a coordinator killed at any point
/// restarts from the last completed round (`Specs/wire.md` §6).
public final class CoordinatorStore: Sendable {
    let database: any StoreDatabase
    /// The lease every write must still be under — its epoch and holder (``LeadershipLost``
    /// otherwise); nil for a store with one writer.
    let fence: Lease?

    /// Opens (creating and migrating) the store at `location`. A round left running by a
    /// coordinator that died is aborted cleanly: it will run again. With `fence`, every write
    /// — this one first — is refused unless the store's lease still has `fence`'s epoch and holder.
    public init(_ location: StoreLocation, driver: any StoreDriver = SQLiteStoreDriver(), fence: Lease? = nil) throws {
        database = try driver.open(location, forWriting: true)
        self.fence = fence
        try write { db in
            try db.execute(
                "UPDATE rounds SET outcome = 'interrupted', finished = ? WHERE outcome = 'running'",
                [Date().timeIntervalSince1970])
        }
    }

    /// Opens (creating and migrating) the store at `location` to take part in electing its
    /// leader (``acquireLeadership(holder:seconds:)``), and nothing else: a standby must leave
    /// the leader's round running.
    public init(electingAt location: StoreLocation, driver: any StoreDriver) throws {
        database = try driver.open(location, forWriting: true)
        fence = nil
    }

    /// Opens an existing store for reading only: no migration, and a round left running stays
    /// as it is (a coordinator may be running on it) — for `veil audit export`.
    public init(reading location: StoreLocation, driver: any StoreDriver = SQLiteStoreDriver()) throws {
        database = try driver.open(location, forWriting: false)
        fence = nil
    }

    /// A write transaction, behind the fence when there is one.
    func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
        try database.write { db in
            if let fence { try Self.checkFence(fence, in: db) }
            return try body(db)
        }
    }

    /// The SQLite file at `path`.
    public convenience init(path: String) throws { try self.init(.sqlite(path: path)) }

    /// The SQLite file at `path`, for reading only.
    public convenience init(readingAt path: String) throws { try self.init(reading: .sqlite(path: path)) }

    /// Closes the database (a SQLite store is one file again): nothing more can be written
    /// through this store.
    public func close() throws { try database.close() }

    /// The journal mode SQLite reports (`wal`); nil for PostgreSQL.
    public var journalMode: String? {
        get throws { try (database as? SQLiteStoreDatabase)?.journalMode }
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
    private static func insert(_ draft: AuditDraft, round: Int, attempt: Int, in db: any StoreTransaction) throws
        -> [UInt8]
    {
        let last = try db.fetchOne("SELECT sequence, record FROM audit_records ORDER BY sequence DESC LIMIT 1")
        let sequence = (try last?.int("sequence") ?? 0) + 1
        let previous =
            try last.map { RoundAuditRecord.hash(try $0.bytes("record")) } ?? [UInt8](repeating: 0, count: 32)
        let (record, signature) = draft.seal(sequence, previous)
        try db.execute(
            "INSERT INTO audit_records (sequence, round, attempt, record, signature, plan, paillier) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                sequence, round, attempt, record, signature, draft.plan, draft.paillier,
            ])
        for (index, event) in draft.events.enumerated() {
            let (kind, party, bytes): (Int, Int, [UInt8]) =
                switch event {
                case .received(let p, let b): (0, Int(p.rawValue), b)
                case .deadline: (1, 0, [])
                case .sent(let b): (2, 0, b)
                }
            try db.execute(
                "INSERT INTO audit_events (sequence, idx, kind, party, bytes) VALUES (?, ?, ?, ?, ?)",
                [sequence, index, kind, party, bytes])
        }
        return record
    }

    /// The audit records of rounds `rounds` (every attempt), in chain order, with their logs.
    public func audits(rounds: ClosedRange<Int>) throws -> [StoredAudit] {
        try database.read { db in
            let rows = try db.fetch(
                "SELECT sequence, round, attempt, record, signature, plan, paillier FROM audit_records WHERE round BETWEEN ? AND ? ORDER BY sequence",
                [rounds.lowerBound, rounds.upperBound])
            return try rows.map { row in
                let sequence = try row.int("sequence")
                let events = try db.fetch(
                    "SELECT kind, party, bytes FROM audit_events WHERE sequence = ? ORDER BY idx", [sequence]
                ).map { event -> SecAggAuditEvent in
                    let bytes = try event.bytes("bytes")
                    switch try event.int("kind") {
                    case 0:
                        guard let party = UInt32(exactly: try event.int("party")) else {
                            throw StoreError("audit event \(sequence) has a party out of range")
                        }
                        return .received(ParticipantID(party), bytes)
                    case 1: return .deadline
                    default: return .sent(bytes)
                    }
                }
                return StoredAudit(
                    sequence: sequence, round: try row.int("round"), attempt: try row.int("attempt"),
                    record: try row.bytes("record"), signature: try row.bytes("signature"),
                    events: events, plan: try row.optionalBytes("plan"), paillier: try row.optionalBytes("paillier"))
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
        try write { db in
            try db.execute(
                """
                INSERT INTO attributions (participant, round, attempt, fault, detail, evidence, recorded)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    attribution.participant, attribution.round, attribution.attempt, attribution.fault,
                    attribution.detail, attribution.evidence, Date().timeIntervalSince1970,
                ])
        }
    }

    /// Every recorded attribution, oldest first.
    public func attributions() throws -> [Attribution] {
        try database.read { db in
            try db.fetch(
                "SELECT participant, round, attempt, fault, detail, evidence FROM attributions ORDER BY seq"
            ).map { row in
                Attribution(
                    participant: try row.string("participant"), round: try row.int("round"),
                    attempt: try row.int("attempt"), fault: try row.string("fault"), detail: try row.string("detail"),
                    evidence: try row.bytes("evidence"))
            }
        }
    }

    /// How many faults of the given kinds are recorded against each participant.
    public func attributionCounts(faults: [String]) throws -> [String: Int] {
        guard !faults.isEmpty else { return [:] }
        return try database.read { db in
            let marks = Array(repeating: "?", count: faults.count).joined(separator: ", ")
            let rows = try db.fetch(
                "SELECT participant, COUNT(*) AS n FROM attributions WHERE fault IN (\(marks)) GROUP BY participant",
                faults)
            return Dictionary(uniqueKeysWithValues: try rows.map { (try $0.string("participant"), try $0.int("n")) })
        }
    }

    // MARK: - Participants

    public func recordParticipant(
        id: String, cores: Int, memoryBytes: UInt64, battery: Double, linkBitsPerSecond: UInt64, sampleCount: UInt64
    ) throws {
        let now = Date().timeIntervalSince1970
        try write { db in
            try db.execute(
                """
                INSERT INTO participants (id, first_seen, last_seen, cores, memory_bytes, battery,
                    link_bits_per_second, sample_count)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen, cores = excluded.cores,
                    memory_bytes = excluded.memory_bytes, battery = excluded.battery,
                    link_bits_per_second = excluded.link_bits_per_second, sample_count = excluded.sample_count
                """,
                [
                    id, now, now, cores, Int64(clamping: memoryBytes), battery, Int64(clamping: linkBitsPerSecond),
                    Int64(clamping: sampleCount),
                ])
        }
    }

    /// How many rounds each participant has completed (for round-robin selection).
    public func roundsCompleted() throws -> [String: Int] {
        try database.read { db in
            var result: [String: Int] = [:]
            for row in try db.fetch("SELECT id, rounds_completed FROM participants") {
                result[try row.string("id")] = try row.int("rounds_completed")
            }
            return result
        }
    }

    // MARK: - Rounds

    /// The number the next attempt of round `number` takes: one more than any recorded,
    /// including attempts a stopped or crashed process left behind.
    public func nextAttempt(of number: Int) throws -> Int {
        try database.read { db in
            (try db.fetchOne("SELECT MAX(attempt) AS a FROM rounds WHERE number = ?", [number])?.optionalInt("a") ?? 0)
                + 1
        }
    }

    /// Records attempt `attempt` of round `number` as running (the primary key refuses an
    /// attempt recorded before).
    public func beginRound(_ number: Int, attempt: Int, cohort: Int) throws {
        try write { db in
            try db.execute(
                "INSERT INTO rounds (number, attempt, started, outcome, cohort) VALUES (?, ?, ?, 'running', ?)",
                [number, attempt, Date().timeIntervalSince1970, cohort])
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
        return try write { db -> [UInt8]? in
            try db.execute(
                """
                UPDATE rounds SET finished = ?, outcome = ?, survivors = ?, abort_reason = ?, transcript_hash = ?,
                    bytes_in = ?, bytes_out = ? WHERE number = ? AND attempt = ?
                """,
                [
                    now, record.outcome, record.survivors, record.abortReason, record.transcriptHash,
                    record.bytesIn, record.bytesOut, number, attempt,
                ])
            if let state {
                try db.execute(
                    """
                    INSERT INTO checkpoints (round, state, accuracy, created) VALUES (?, ?, ?, ?)
                    ON CONFLICT (round) DO UPDATE SET state = excluded.state, accuracy = excluded.accuracy,
                        created = excluded.created
                    """, [number, state, accuracy, now])
                for id in record.contributors {
                    try db.execute(
                        "UPDATE participants SET rounds_completed = rounds_completed + 1 WHERE id = ?", [id])
                }
            }
            if let ledgerState {
                try db.execute(
                    "INSERT INTO ledger (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state",
                    [ledgerState])
            }
            for p in record.participation {
                try db.execute(
                    """
                    INSERT INTO participation (participant, round, attempt, outcome, seconds, examples, loss, deadline)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [
                        p.participant, number, attempt, p.outcome.rawValue, p.seconds, p.examples, p.loss, p.deadline,
                    ])
            }
            for c in record.credits {
                try db.execute(
                    """
                    INSERT INTO credits (participant, round, attempt, credits, reputation, examples)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """, [c.participant, number, attempt, c.credits, c.reputation, c.examples])
            }
            return try audit.map { RoundAuditRecord.hash(try Self.insert($0, round: number, attempt: attempt, in: db)) }
        }
    }

    /// The latest checkpoint: its round and the algorithm's state.
    public func latestCheckpoint() throws -> (round: Int, state: FedAvgFamily)? {
        try database.read { db in
            guard
                let row = try db.fetchOne("SELECT round, state FROM checkpoints ORDER BY round DESC LIMIT 1")
            else { return nil }
            return (
                try row.int("round"), try JSONDecoder().decode(FedAvgFamily.self, from: Data(try row.bytes("state")))
            )
        }
    }

    /// The stored privacy ledger, if any.
    public func ledger() throws -> PrivacyLedger? {
        try database.read { db in
            guard let row = try db.fetchOne("SELECT state FROM ledger WHERE id = 1") else { return nil }
            return try JSONDecoder().decode(PrivacyLedger.self, from: Data(try row.bytes("state")))
        }
    }

    /// Every attempt, in order: number, attempt, outcome, survivors.
    public func rounds() throws -> [(number: Int, attempt: Int, outcome: String, survivors: Int?, abortReason: String?)]
    {
        try database.read { db in
            try db.fetch(
                "SELECT number, attempt, outcome, survivors, abort_reason FROM rounds ORDER BY number, attempt"
            )
            .map {
                (
                    try $0.int("number"), try $0.int("attempt"), try $0.string("outcome"),
                    try $0.optionalInt("survivors"),
                    try $0.optionalString("abort_reason")
                )
            }
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
        try database.read { db in
            // A store opened for reading that a coordinator of an earlier version wrote has
            // no such table yet: nothing recorded.
            guard try db.tableExists("participation") else { return [] }
            return try db.fetch(
                "SELECT participant, round, attempt, outcome, seconds, examples, loss, deadline FROM participation ORDER BY round, attempt, participant"
            ).map { row in
                let text = try row.string("outcome")
                guard let outcome = ParticipationOutcome(rawValue: text) else {
                    throw ConfigurationError("the store's participation table has an unknown outcome \"\(text)\"")
                }
                return Participation(
                    participant: try row.string("participant"), round: try row.int("round"),
                    attempt: try row.int("attempt"), outcome: outcome, seconds: try row.optionalDouble("seconds"),
                    examples: try row.int("examples"), loss: try row.optionalDouble("loss"),
                    deadline: try row.double("deadline"))
            }
        }
    }

    /// Every credit row, by round.
    public func credits() throws -> [Credit] {
        try database.read { db in
            guard try db.tableExists("credits") else { return [] }
            return try db.fetch(
                "SELECT participant, round, credits, reputation, examples FROM credits ORDER BY round, participant"
            ).map { row in
                Credit(
                    participant: try row.string("participant"), round: try row.int("round"),
                    credits: try row.double("credits"), reputation: try row.double("reputation"),
                    examples: try row.int("examples"))
            }
        }
    }

    /// The latest completed round (0 before the first).
    public func latestRound() throws -> Int {
        try database.read { db in
            guard try db.tableExists("checkpoints") else { return 0 }
            return try db.fetchOne("SELECT MAX(round) AS r FROM checkpoints")?.optionalInt("r") ?? 0
        }
    }

    /// The test accuracy stored with each checkpoint that has one, by round.
    public func accuracies() throws -> [Int: Double] {
        try database.read { db in
            guard try db.tableExists("checkpoints") else { return [:] }
            var result: [Int: Double] = [:]
            for row in try db.fetch("SELECT round, accuracy FROM checkpoints WHERE accuracy IS NOT NULL") {
                result[try row.int("round")] = try row.double("accuracy")
            }
            return result
        }
    }

    // MARK: - Meta

    public func value(_ key: String) throws -> String? {
        try database.read { db in try db.fetchOne("SELECT value FROM meta WHERE key = ?", [key])?.string("value") }
    }

    public func setValue(_ value: String, for key: String) throws {
        try write { db in
            try db.execute(Self.setMeta, [key, value])
        }
    }

    static let setMeta =
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
}
