import ArgumentParser
import Foundation
import VeilPostgres
import VeilService

/// `veil credits`: the coordinator's credit ledger (`Specs/orchestration.md` §7).
struct CreditsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credits",
        abstract: "Print the credit ledger of a coordinator's store: participation, reputation, credits, payout.",
        discussion: """
            Reads the store named by the configuration's `state` without changing it (a coordinator may be \
            running). One line per participant ever invited: attempts invited to, contributed, dropped, declined, \
            faulted, excused; its reputation now; the credits its contributions earned (reputation × the example-count \
            share, per contribution); the marginal estimate (mean test-accuracy gain of the completed rounds it \
            contributed to minus that of the others, in points; '-' with fewer than 3 rounds on either side); and \
            the payout, credits × (1 + clamp(10 × marginal, −0.5, 0.5)). --json prints the same as one object; \
            --csv as comma-separated values with a header line.
            """)

    @Option(help: "The coordinator's configuration file (serve.json).")
    var config: String

    @OptionGroup var output: OutputOptions

    @Flag(help: "Print comma-separated values with a header line.")
    var csv = false

    func validate() throws {
        if csv && output.json { throw ValidationError("--csv and --json are exclusive") }
    }

    func run() throws {
        let report = try CreditReport.load(try ServeConfiguration.load(path: config), stores: PostgresStoreDriver())
        if output.json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            struct Body: Encodable {
                let round: Int
                let participants: [CreditReport.Entry]
            }
            print(
                String(
                    decoding: try encoder.encode(Body(round: report.round, participants: report.entries)), as: UTF8.self
                ))
            return
        }
        let header = [
            "participant", "invited", "contributed", "dropped", "declined", "faulted", "excused", "reputation",
            "credits",
            "marginal_points", "payout",
        ]
        let rows = report.entries.map { e in
            [
                e.participant, "\(e.invited)", "\(e.contributed)", "\(e.dropped)", "\(e.declined)", "\(e.faulted)",
                "\(e.excused)",
                String(format: "%.4f", e.reputation), String(format: "%.4f", e.credits),
                e.marginal.map { String(format: "%+.3f", $0 * 100) } ?? "-", String(format: "%.4f", e.payout),
            ]
        }
        if csv {
            // Participant ids are certificate subjects (letters, digits, '.', '-', '_'): no quoting needed.
            for line in [header] + rows { print(line.joined(separator: ",")) }
            return
        }
        print("credit ledger after round \(report.round): \(report.entries.count) participants")
        let widths = header.indices.map { i in ([header] + rows).map { $0[i].count }.max()! }
        for line in [header] + rows {
            print(
                zip(line, widths).enumerated().map { i, cell in
                    i == 0
                        ? cell.0.padding(toLength: cell.1, withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: cell.1 - cell.0.count) + cell.0
                }.joined(separator: "  "))
        }
    }
}
