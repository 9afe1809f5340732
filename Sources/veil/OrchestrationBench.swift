import ArgumentParser
import Foundation
import VeilCore
import VeilLearning

extension BenchCommand {
    /// Time-to-accuracy of the selection strategies on the same devices, data and seeds.
    struct Orchestration: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "orchestration",
            abstract: "Random against Oort-style selection, with and without the fairness floor, in simulated time.",
            discussion: """
                Digits split into label-sorted shards (two per participant by default: McMahan et al.'s pathological non-IID split), softmax regression, FedAvg, the built-in heterogeneous devices \
                (Specs/orchestration.md §1.2); every strategy runs the same seeds, so the same devices, \
                availability, data and training streams. The sum is plain (one exchange per round): the \
                secure backends give the same sums (Specs/learning.md §5), but SecAgg's four more round \
                trips and larger uploads lengthen every simulated round. \
                Reports simulated seconds to the target accuracy (mean over seeds, and the ratio \
                random / strategy), final accuracy, and Jain's index of participation.
                """)

        @Option(help: "Participants.")
        var clients = 100
        @Option(help: "iid, dirichlet:A or shards:S (S label-sorted shards each).")
        var partition = "shards:2"
        @Option(help: "Fraction of participants summed each round.")
        var fraction = 0.1
        @Option(help: "Rounds per run.")
        var rounds = 300
        @Option(help: "Seeds, comma-separated; every strategy runs each.")
        var seeds = "0,1,2"
        @Option(help: "The accuracy whose simulated time-to-accuracy is compared.")
        var targetAccuracy = 0.9
        @Option(help: "Invite this many times the cohort (all strategies).")
        var overcommit = 1.3
        @Option(help: "The fairness floor G of the strategies with a floor.")
        var maxGap = 8
        @OptionGroup var output: OutputOptions

        struct Strategy {
            let name: String
            let selection: SelectionChoice
            let floor: Bool
        }

        struct Outcome {
            var timeToAccuracy: [Double?] = []
            var roundsToAccuracy: [Int?] = []
            var finalAccuracy: [Double] = []
            var jain: [Double] = []
            var simulatedSeconds: [Double] = []
        }

        func validate() throws {
            guard clients >= 2, rounds >= 1, (0...1).contains(targetAccuracy), overcommit >= 1, maxGap >= 1 else {
                throw ValidationError(
                    "--clients ≥ 2, --rounds ≥ 1, --target-accuracy in [0, 1], --overcommit ≥ 1, --max-gap ≥ 1")
            }
            _ = try seedList()
        }

        func seedList() throws -> [UInt64] {
            let list = seeds.split(separator: ",").map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            guard !list.isEmpty, list.allSatisfy({ $0 != nil }) else {
                throw ValidationError("--seeds must be non-negative integers separated by commas")
            }
            return list.map { $0! }
        }

        func run() throws {
            let strategies = [
                Strategy(name: "random", selection: .random, floor: false),
                Strategy(name: "oort", selection: .oort(OortParameters()), floor: false),
                Strategy(name: "random + floor", selection: .random, floor: true),
                Strategy(name: "oort + floor", selection: .oort(OortParameters()), floor: true),
            ]
            var outcomes = [Outcome](repeating: Outcome(), count: strategies.count)
            for seed in try seedList() {
                for (s, strategy) in strategies.enumerated() {
                    var c = FederatedConfiguration()
                    c.clients = clients
                    c.partition = try Partition(parsing: partition)
                    c.fraction = fraction
                    c.rounds = rounds
                    c.seed = seed
                    c.selection = strategy.selection
                    c.overcommit = overcommit
                    c.devices = DevicePopulation.heterogeneous(participants: clients, seed: seed)
                    if strategy.floor { c.fairness = try FairnessFloor(maxGap: maxGap) }
                    let simulation = try FederatedSimulation(configuration: c)
                    var sum = PlainSum()
                    let reports = try simulation.run(secureSum: &sum)
                    let summary = OrchestrationSummary(
                        reports: reports, participants: clients, targetAccuracy: targetAccuracy)
                    outcomes[s].timeToAccuracy.append(summary.timeToAccuracy)
                    outcomes[s].roundsToAccuracy.append(summary.roundsToAccuracy)
                    outcomes[s].finalAccuracy.append(reports.last { $0.accuracy != nil }?.accuracy ?? 0)
                    outcomes[s].jain.append(summary.participationJain)
                    outcomes[s].simulatedSeconds.append(summary.simulatedSeconds ?? 0)
                }
            }
            func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }
            // The mean time-to-accuracy counts only when every seed reached the target.
            func meanTime(_ o: Outcome) -> Double? {
                o.timeToAccuracy.contains { $0 == nil } ? nil : mean(o.timeToAccuracy.map { $0! })
            }
            let baseline = meanTime(outcomes[0])
            if output.json {
                let object: [String: Any] = [
                    "clients": clients, "partition": partition, "fraction": fraction, "rounds": rounds,
                    "seeds": try seedList(),
                    "target_accuracy": targetAccuracy, "overcommit": overcommit, "max_gap": maxGap,
                    "devices": "heterogeneous",
                    "strategies": zip(strategies, outcomes).map { strategy, o -> [String: Any] in
                        let time = meanTime(o)
                        return [
                            "name": strategy.name,
                            "time_to_accuracy": o.timeToAccuracy.map { $0 ?? NSNull() as Any },
                            "rounds_to_accuracy": o.roundsToAccuracy.map { $0 ?? NSNull() as Any },
                            "mean_time_to_accuracy": time ?? NSNull(),
                            "speedup_over_random": (baseline.flatMap { b in time.map { b / $0 } }) ?? NSNull(),
                            "final_accuracy": o.finalAccuracy, "mean_final_accuracy": mean(o.finalAccuracy),
                            "participation_jain": o.jain, "mean_participation_jain": mean(o.jain),
                            "simulated_seconds": o.simulatedSeconds,
                        ]
                    },
                ]
                print(try jsonString(object))
                return
            }
            print(
                "digits, \(clients) participants (\(partition)) on heterogeneous devices, \(Int((fraction * Double(clients)).rounded())) summed per round of ⌈\(overcommit)×⌉ invited, \(rounds) rounds, seeds \(seeds)"
            )
            print(
                "strategy          time to \(targetAccuracy) (s)   vs random   rounds per seed   final accuracy   Jain")
            for (strategy, o) in zip(strategies, outcomes) {
                let time = meanTime(o)
                let rounds = o.roundsToAccuracy.map { $0.map(String.init) ?? "-" }.joined(separator: "/")
                print(
                    strategy.name.padding(toLength: 16, withPad: " ", startingAt: 0)
                        + (time.map { String(format: "  %17.1f", $0) } ?? "        not reached")
                        + ((baseline.flatMap { b in time.map { String(format: "   %8.2fx", b / $0) } }) ?? "          -")
                        + "   " + rounds.padding(toLength: 15, withPad: " ", startingAt: 0)
                        + String(format: " %14.4f   %.3f", mean(o.finalAccuracy), mean(o.jain)))
            }
        }
    }
}
