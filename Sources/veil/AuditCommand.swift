import ArgumentParser
import Foundation
import VeilPostgres
import VeilService

/// `veil audit`: the coordinator's signed, chained round records (`Specs/audit.md`).
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Export the coordinator's signed round records, and verify them offline.",
        subcommands: [Export.self, Verify.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Write the audit records of rounds A…B (masking and Paillier) from a coordinator's store, one JSON file per attempt.",
            discussion:
                "Reads the store named by the configuration's `state` without changing it (a coordinator may be running)."
        )

        @Option(help: "The coordinator's configuration file (serve.json).")
        var config: String

        @Option(help: "The rounds, as A-B or A.")
        var rounds: String

        @Option(help: "The folder to write into (created if missing).")
        var out: String

        func run() throws {
            let parts = rounds.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(parts.count), let first = parts.first ?? nil, let last = parts.last ?? nil,
                first >= 1, first <= last
            else { throw ValidationError("--rounds must be A-B (1 ≤ A ≤ B) or A, not \(rounds)") }
            let configuration = try ServeConfiguration.load(path: config)
            let written = try RoundAudit.export(
                store: configuration.store, stores: PostgresStoreDriver(), rounds: first...last,
                to: URL(fileURLWithPath: out))
            for name in written { print("wrote \(out)/\(name)") }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check exported round records with only the federation's CA certificate.",
            discussion: """
                Checks every file: the coordinator's certificate and signature, the roster's certificates, the \
                session, the round plan it binds (printed: the DP plan every participant accepted), every \
                protocol message and the server's replayed decisions, the survivor lists, the released sum and the \
                attributions — or, for a Paillier round, the key holder's certificate and signed key, every \
                member's receipted contribution, the aggregate as their product and the sum the key holder \
                signed; then, across the files, the chain between records of consecutive sequence numbers \
                and that no sequence number or session has two different records. With --participant and \
                --journal, a participant also checks the records of the sessions it took part in against its own \
                journal (join.json's audit_journal): each must be the record the coordinator gave it a receipt \
                for, and must hold what the participant sent (every message, or its Paillier contribution) and \
                every message the server sent it. With --key-holder-record, every decryption in the key holder's \
                record (keyholder.json's record) must be in a record that names its aggregate and sum; given once \
                per threshold key holder, each holder's decryptions must be in a record that names its aggregate, \
                and an aggregate that t holders decrypted must have its sum named. Exits 1, \
                naming the file and what failed, if anything does not check.
                """)

        @Option(help: "The federation CA's certificate (PEM).")
        var ca: String

        @Option(help: "A participant's id: check the records against its journal (with --journal).")
        var participant: String?

        @Option(help: "The participant's audit journal folder (join.json's audit_journal).")
        var journal: String?

        @Option(
            help:
                "The key holder's decryption record (keyholder.json's record): check that none is withheld. Repeat it for each threshold key holder."
        )
        var keyHolderRecord: [String] = []

        @Argument(help: "Exported record files.")
        var files: [String]

        func validate() throws {
            guard (participant == nil) == (journal == nil) else {
                throw ValidationError("--participant and --journal go together")
            }
        }

        func run() throws {
            let certificate = try FederationCA.loadCertificate(ca)
            var reports = RoundAudit.verify(files: files.map { URL(fileURLWithPath: $0) }, ca: certificate)
            if let participant, let journal {
                let entries = try AuditJournal(directory: URL(fileURLWithPath: journal)).entries()
                reports = RoundAudit.check(reports, participant: participant, journal: entries)
            }
            if !keyHolderRecord.isEmpty { reports = try RoundAudit.check(reports, keyHolderRecords: keyHolderRecord) }
            var failed = false
            for report in reports {
                let place =
                    report.round.map { round in "round \(round)" + (report.attempt.map { " attempt \($0)" } ?? "") }
                    ?? "-"
                for note in report.notes { print("note  \(report.path) (\(place)): \(note)") }
                if report.problems.isEmpty {
                    print("ok    \(report.path) (\(place))")
                    if let plan = report.plan { print("      plan: \(plan)") }
                } else {
                    failed = true
                    for problem in report.problems { print("FAIL  \(report.path) (\(place)): \(problem)") }
                }
            }
            if failed { throw ExitCode(1) }
        }
    }
}
