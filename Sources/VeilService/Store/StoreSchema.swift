/// The store's tables, one list of migrations for both databases (`Specs/wire.md` §6). Each
/// is applied once, in order, inside a transaction, and recorded by name: GRDB's
/// `grdb_migrations` in SQLite, `veil_migrations` in PostgreSQL.
public enum StoreSchema {
    /// Each database's names for the column types.
    public struct Types: Sendable {
        var integer: String
        var double: String
        var text: String
        var blob: String
        /// A primary key the database numbers.
        var serialKey: String

        public static let sqlite = Types(
            integer: "INTEGER", double: "DOUBLE", text: "TEXT", blob: "BLOB",
            serialKey: "INTEGER PRIMARY KEY AUTOINCREMENT")
        /// `COLLATE "C"` orders text by its bytes, as SQLite's default does, whatever locale
        /// the cluster was made with: ids sort the same in both stores.
        public static let postgres = Types(
            integer: "BIGINT", double: "DOUBLE PRECISION", text: "TEXT COLLATE \"C\"", blob: "BYTEA",
            serialKey: "BIGSERIAL PRIMARY KEY")
    }

    public struct Migration: Sendable {
        public var name: String
        public var statements: [String]
    }

    public static func migrations(_ t: Types) -> [Migration] {
        let (integer, double, text, blob) = (t.integer, t.double, t.text, t.blob)
        return [
            Migration(
                name: "v1",
                statements: [
                    """
                    CREATE TABLE participants (id \(text) PRIMARY KEY NOT NULL, first_seen \(double) NOT NULL,
                        last_seen \(double) NOT NULL, cores \(integer), memory_bytes \(integer), battery \(double),
                        link_bits_per_second \(integer), sample_count \(integer),
                        rounds_completed \(integer) NOT NULL DEFAULT 0)
                    """,
                    """
                    CREATE TABLE rounds (number \(integer) NOT NULL, attempt \(integer) NOT NULL,
                        started \(double) NOT NULL, finished \(double), outcome \(text) NOT NULL,
                        cohort \(integer) NOT NULL, survivors \(integer), abort_reason \(text),
                        transcript_hash \(blob), bytes_in \(integer), bytes_out \(integer),
                        PRIMARY KEY (number, attempt))
                    """,
                    """
                    CREATE TABLE checkpoints (round \(integer) PRIMARY KEY NOT NULL, state \(blob) NOT NULL,
                        accuracy \(double), created \(double) NOT NULL)
                    """,
                    "CREATE TABLE ledger (id \(integer) PRIMARY KEY NOT NULL CHECK (id = 1), state \(blob) NOT NULL)",
                    "CREATE TABLE meta (key \(text) PRIMARY KEY NOT NULL, value \(text) NOT NULL)",
                ]),
            // One row per fault a participant's own signed messages prove, with that evidence
            // (`SecAggEvidence`'s encoding, `Specs/secagg.md` §7.1).
            Migration(
                name: "v2-attributions",
                statements: [
                    """
                    CREATE TABLE attributions (seq \(t.serialKey), participant \(text) NOT NULL,
                        round \(integer) NOT NULL, attempt \(integer) NOT NULL, fault \(text) NOT NULL,
                        detail \(text) NOT NULL, evidence \(blob) NOT NULL, recorded \(double) NOT NULL)
                    """,
                    "CREATE INDEX attributions_on_participant ON attributions (participant)",
                ]),
            // The audit records of masking rounds, chained in `sequence` order, and each one's
            // log of protocol messages (`Specs/audit.md`).
            Migration(
                name: "v3-audit",
                statements: [
                    """
                    CREATE TABLE audit_records (sequence \(integer) PRIMARY KEY NOT NULL, round \(integer) NOT NULL,
                        attempt \(integer) NOT NULL, record \(blob) NOT NULL, signature \(blob) NOT NULL)
                    """,
                    """
                    CREATE TABLE audit_events (sequence \(integer) NOT NULL REFERENCES audit_records (sequence),
                        idx \(integer) NOT NULL, kind \(integer) NOT NULL, party \(integer) NOT NULL,
                        bytes \(blob) NOT NULL, PRIMARY KEY (sequence, idx))
                    """,
                ]),
            // The round plan each record's session binds (`Specs/audit.md` §3), so that an
            // auditor can read the training and DP plan every participant accepted.
            Migration(name: "v4-audit-plans", statements: ["ALTER TABLE audit_records ADD COLUMN plan \(blob)"]),
            // A Paillier record's evidence (`Specs/audit.md` §7.2): the contributions'
            // ciphertexts, the re-randomisers, the aggregate and the sum, as the export writes them.
            Migration(
                name: "v5-audit-paillier", statements: ["ALTER TABLE audit_records ADD COLUMN paillier \(blob)"]),
            // What each invited participant did in each attempt, as the coordinator measured it
            // (reputation and Oort's records are folds of it, `Specs/orchestration.md` §6), and
            // the credits each contribution earned (§7).
            Migration(
                name: "v6-orchestration",
                statements: [
                    """
                    CREATE TABLE participation (participant \(text) NOT NULL, round \(integer) NOT NULL,
                        attempt \(integer) NOT NULL, outcome \(text) NOT NULL, seconds \(double),
                        examples \(integer) NOT NULL, loss \(double), deadline \(double) NOT NULL,
                        PRIMARY KEY (round, attempt, participant))
                    """,
                    """
                    CREATE TABLE credits (participant \(text) NOT NULL, round \(integer) NOT NULL,
                        attempt \(integer) NOT NULL, credits \(double) NOT NULL, reputation \(double) NOT NULL,
                        examples \(integer) NOT NULL, PRIMARY KEY (round, participant))
                    """,
                ]),
            // What the coordinator observed of each attempt (`RoundHealth`, JSON), each
            // participant's latest resource report, for the dashboard and `veil report`
            // (`Specs/wire.md` §9.2); the alert book is a `meta` value.
            Migration(
                name: "v7-monitoring",
                statements: [
                    """
                    CREATE TABLE round_health (number \(integer) NOT NULL, attempt \(integer) NOT NULL,
                        health \(blob) NOT NULL, PRIMARY KEY (number, attempt))
                    """,
                    "CREATE TABLE resource_reports (participant \(text) PRIMARY KEY NOT NULL, usage \(blob) NOT NULL)",
                ]),
            // Which process leads the federation, until when, and its fencing epoch
            // (`Specs/wire.md` §6.2): one row, changed only under the writers' lock.
            Migration(
                name: "v8-leadership",
                statements: [
                    """
                    CREATE TABLE leadership (id \(integer) PRIMARY KEY NOT NULL CHECK (id = 1),
                        epoch \(integer) NOT NULL, holder \(text) NOT NULL, expires \(double) NOT NULL)
                    """
                ]),
            // Hierarchical secure aggregation (`Specs/wire.md` §6.3): the round the leader has
            // open and its group count; each group's claim (its holder and claim number — the
            // group's fencing token), members and, once done, its sum; each aggregator's
            // heartbeat and load, by the database's clock.
            Migration(
                name: "v9-tier",
                statements: [
                    """
                    CREATE TABLE tier_rounds (number \(integer) PRIMARY KEY NOT NULL, attempt \(integer) NOT NULL,
                        groups \(integer) NOT NULL, opened \(double) NOT NULL, deadline \(double) NOT NULL,
                        status \(text) NOT NULL, combine_seconds \(double))
                    """,
                    """
                    CREATE TABLE tier_groups (round \(integer) NOT NULL, attempt \(integer) NOT NULL,
                        slot \(integer) NOT NULL, holder \(text) NOT NULL, claim \(integer) NOT NULL,
                        members \(text) NOT NULL, status \(text) NOT NULL, claimed \(double) NOT NULL,
                        contributors \(text), sum \(blob), transcript \(blob), crypto_seconds \(double),
                        PRIMARY KEY (round, attempt, slot))
                    """,
                    """
                    CREATE TABLE tier_aggregators (holder \(text) PRIMARY KEY NOT NULL, address \(text) NOT NULL,
                        connections \(integer) NOT NULL, capacity \(integer) NOT NULL,
                        seconds_per_member \(double) NOT NULL, seen \(double) NOT NULL,
                        waiting \(integer) NOT NULL, waiting_round \(integer) NOT NULL,
                        waiting_attempt \(integer) NOT NULL)
                    """,
                ]),
        ]
    }
}
