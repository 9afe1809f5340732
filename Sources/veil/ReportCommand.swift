import ArgumentParser
import Foundation
import VeilPostgres
import VeilService

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a federation's report from its store: self-contained HTML, and the same data as JSON and CSV.",
        discussion: """
            Reads the coordinator's configuration and its state file (read-only: the federation may be \
            running or finished) and writes report.html (the dashboard's charts and tables with the data \
            inside, opened offline), federation.json (the dashboard's snapshot, Specs/wire.md §9.2), \
            rounds.csv, participants.csv and alerts.csv into the output folder, replacing files of those \
            names. Prints the path of each file written.
            """)

    @Option(help: "The coordinator's configuration file (serve.json).")
    var config: String

    @Option(help: "The folder to write into (created if missing).")
    var out = "veil-report"

    func run() throws {
        let snapshot: MonitoringSnapshot
        do {
            let configuration = try ServeConfiguration.load(path: config)
            let store = try CoordinatorStore(reading: configuration.store, driver: PostgresStoreDriver())
            let warnings: [String]
            (snapshot, warnings) = try MonitoringSnapshot.stored(configuration: configuration, store: store)
            for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        } catch let error as ConfigurationError { throw usageError("\(error)") }
        let folder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, bytes) in try FederationReport.files(snapshot) {
            let file = folder.appendingPathComponent(name)
            try Data(bytes).write(to: file, options: .atomic)
            print(file.path)
        }
    }
}
