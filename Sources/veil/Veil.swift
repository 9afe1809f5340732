import ArgumentParser
import VeilCore

@main
struct Veil: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "veil",
        abstract: "Secure aggregation for federated learning: the coordinator learns only the sum.",
        version: VeilVersion.current,
        subcommands: [
            SimulateCommand.self, SecAggCommand.self, PaillierCommand.self, DPCommand.self, VectorsCommand.self,
            BenchCommand.self, CACommand.self, ServeCommand.self, JoinCommand.self, KeyHolderCommand.self,
            AuditCommand.self, CreditsCommand.self, ModelCommand.self, ReportCommand.self,
        ]
    )
}

/// `--json`, shared by every command that reports results.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object on stdout instead of text.")
    var json = false
}
