import ArgumentParser
import Foundation
import VeilCore
import VeilCrypto
import VeilSecAgg

struct SecAggCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secagg",
        abstract: "The masking protocol: simulate a session, or choose its parameters.",
        subcommands: [Simulate.self, Parameters.self]
    )

    /// The threat model options shared by `simulate` and `parameters`.
    struct ThreatOptions: ParsableArguments {
        @Option(help: "The server's power: honest-but-curious or malicious.")
        var threatModel: Adversary = .malicious

        @Option(help: "Fraction of participants that may collude with the server (γ).")
        var corruptFraction = 0.05

        @Option(help: "Probabilistic conditions must fail with probability at most 2^-σ.")
        var securityBits = 40

        @Option(
            help: """
                N: cohorts are uniform samples of N participants of whom a fraction γ may be corrupt, so n_C is \
                the 2^-σ tail of the hypergeometric count (default: γ bounds every cohort, n_C = max(1, ⌈γn⌉)).
                """)
        var population: Int?

        enum Adversary: String, ExpressibleByArgument, CaseIterable {
            case honestButCurious = "honest-but-curious"
            case malicious

            var value: ThreatModel.Adversary { self == .malicious ? .maliciousServer : .honestButCuriousServer }
        }

        func model(dropoutFraction: Double) throws -> ThreatModel {
            do {
                return try ThreatModel(
                    adversary: threatModel.value, corruptFraction: corruptFraction, dropoutFraction: dropoutFraction,
                    securityBits: securityBits, population: population)
            } catch { throw usageError(error.description) }
        }
    }

    struct Simulate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one session in this process and check the result against the plaintext sum.",
            discussion: """
                Starts N participant state machines and the server state machine, takes participants offline \
                (each, with probability P, in one of the --drop-round rounds, without sending that round's \
                message), and prints per-round time and bytes. Everything derives from --seed. Without \
                --neighbors and --threshold the parameters of Specs/secagg.md's recommendation are used; with \
                --neighbors alone the smallest threshold the threat model accepts. Exits 0 when the sum is \
                exact or the round aborted correctly (survivors below t), 1 on a wrong sum or any other abort.
                """
        )

        @Option(help: "Number of participants n.")
        var clients = 10

        @Option(name: .customLong("dim"), help: "Vector length d.")
        var dimension = 1000

        @Option(help: "Shamir threshold t (default: the smallest the threat model accepts).")
        var threshold: Int?

        @Option(help: "Neighbours per participant k (default: recommended; n - 1 is the complete graph).")
        var neighbors: Int?

        @Option(help: "Bit width b of Z_2^b.")
        var bits = 32

        @Option(help: "Probability that a participant drops out in each drop round.")
        var dropout = 0.0

        @Option(
            name: .customLong("drop-round"), parsing: .singleValue,
            help: "A round (0-4) in which participants may drop; repeat for several (default: all).")
        var dropRounds: [Int] = []

        @Option(help: "Seed of every key, input and dropout (a 64-bit integer).")
        var seed: UInt64 = 1

        @OptionGroup var threat: ThreatOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard clients >= 2 else { throw ValidationError("--clients must be at least 2") }
            guard dimension >= 1 else { throw ValidationError("--dim must be at least 1") }
            guard BitWidth.range.contains(bits) else { throw ValidationError("--bits must be in 1...64") }
            guard (0...1).contains(dropout) else { throw ValidationError("--dropout must be in 0...1") }
            guard dropRounds.allSatisfy({ (0...4).contains($0) }) else {
                throw ValidationError("--drop-round takes rounds 0 to 4")
            }
        }

        func run() throws {
            let rounds =
                dropRounds.isEmpty
                ? Set(SecAggRound.allCases) : Set(dropRounds.compactMap { SecAggRound(rawValue: UInt8($0)) })
            // The threat model's dropout fraction is what the simulation will take offline.
            let expectedDropout =
                dropout == 0 ? 0 : min(0.99 - threat.corruptFraction, 1 - pow(1 - dropout, Double(rounds.count)))
            let model = try threat.model(dropoutFraction: max(0, expectedDropout))
            let parameters = try chooseParameters(model)
            let seedBytes = simulationSeed(seed)
            let report = try SecAggSimulation.run(
                .init(parameters: parameters, seed: seedBytes, dropoutProbability: dropout, dropRounds: rounds))
            let correctAbort =
                report.abort.map { abort in
                    switch abort.reason {
                    case .tooFewSurvivors, .cannotReconstruct: true
                    default: false
                    }
                } ?? false
            if output.json {
                print(try jsonString(json(report, parameters, correctAbort)))
            } else {
                printText(report, parameters, correctAbort)
            }
            if !(report.sumCorrect || correctAbort) { throw ExitCode.failure }
        }

        private func chooseParameters(_ model: ThreatModel) throws -> SecAggParameters {
            let bitWidth = try BitWidth(bits)
            return try validated { () throws(SecAggParameterError) in
                if threshold == nil && neighbors == nil {
                    return try SecAggParameters.recommended(
                        clientCount: clients, bitWidth: bitWidth, dimension: dimension, threatModel: model)
                }
                let k = neighbors ?? clients - 1
                guard
                    let t = threshold
                        ?? SecAggParameters.minimumThreshold(clientCount: clients, neighborCount: k, threatModel: model)
                else {
                    // Let the validation explain why no threshold works for this graph.
                    return try SecAggParameters(
                        clientCount: clients, threshold: SecAggParameters.thresholdFloor, neighborCount: k,
                        bitWidth: bitWidth, dimension: dimension, threatModel: model)
                }
                return try SecAggParameters(
                    clientCount: clients, threshold: t, neighborCount: k, bitWidth: bitWidth, dimension: dimension,
                    threatModel: model)
            }
        }

        private func json(_ report: SecAggSimulation.Report, _ p: SecAggParameters, _ correctAbort: Bool) -> [String:
            Any]
        {
            [
                "sum_correct": report.sumCorrect,
                "aborted": report.aborted,
                "abort_reason": report.abort.map { $0.description } ?? NSNull(),
                "abort_code": report.abort.map { $0.reason.code } ?? NSNull(),
                "correct_abort": correctAbort,
                "survivors": report.result?.survivors.map(\.rawValue) ?? [],
                "survivor_count": report.result?.survivors.count ?? 0,
                "parameters": [
                    "clients": p.clientCount, "threshold": p.threshold, "neighbors": p.neighborCount,
                    "bits": p.bitWidth.bits,
                    "dim": p.dimension, "complete_graph": p.isCompleteGraph, "threat_model": p.threatModel.description,
                ] as [String: Any],
                "offline": report.offline.sorted { $0.key < $1.key }.map {
                    ["participant": $0.key.rawValue, "round": Int($0.value.rawValue)]
                },
                "dropped": report.dropped.map {
                    ["participant": $0.0.rawValue, "round": Int($0.1.rawValue), "reason": $0.2.code]
                },
                "client_aborts": report.clientAborts.map {
                    ["participant": $0.0.rawValue, "round": Int($0.1.round.rawValue), "reason": $0.1.reason.code]
                },
                "rounds": report.rounds.map { r in
                    [
                        "round": Int(r.round.rawValue), "name": r.round.description, "participants": r.participants,
                        "client_seconds_per_participant": r.clientSecondsPerParticipant,
                        "server_seconds": r.serverSeconds,
                        "bytes_to_server": r.bytesToServer, "bytes_from_server": r.bytesFromServer,
                        "bytes_per_participant": r.bytesPerParticipant,
                    ] as [String: Any]
                },
            ]
        }

        private func printText(_ report: SecAggSimulation.Report, _ p: SecAggParameters, _ correctAbort: Bool) {
            print("secure aggregation: \(p)")
            print(
                "round                     sent   client ms/participant   server ms   bytes/participant   server bytes in/out"
            )
            for r in report.rounds {
                let name = r.round.description.padding(toLength: 24, withPad: " ", startingAt: 0)
                print(
                    name
                        + String(
                            format: " %5d   %21.3f   %9.3f   %17.0f   %d/%d", r.participants,
                            r.clientSecondsPerParticipant * 1000, r.serverSeconds * 1000, r.bytesPerParticipant,
                            r.bytesToServer, r.bytesFromServer))
            }
            if !report.offline.isEmpty {
                let offline = report.offline.sorted { $0.key < $1.key }.map {
                    "\($0.key.rawValue)@R\($0.value.rawValue)"
                }
                print("offline: \(offline.joined(separator: " "))")
            }
            for (id, round, reason) in report.dropped where reason != .noResponse {
                print("dropped \(id) in \(round): \(reason)")
            }
            for (id, abort) in report.clientAborts { print("participant \(id) \(abort)") }
            if let result = report.result {
                let verdict = report.sumCorrect ? "exact" : "WRONG"
                print("result: sum \(verdict) over \(result.survivors.count) of \(p.clientCount) participants")
            } else if let abort = report.abort {
                print("result: \(abort)\(correctAbort ? " (correct: survivors below t)" : "")")
            }
        }
    }

    struct Parameters: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the (k, t) Specs/secagg.md recommends for N participants under a threat model.",
            discussion: """
                The smallest k (even, or the complete graph) and then the smallest t ≥ 2 such that no honest \
                participant has t corrupt neighbours, honest survivors stay connected (sparse graphs), and the \
                round completes except with probability 2^-20 at the given dropout; a malicious server needs the \
                complete graph and t > (n + n_C)/2. n_C = max(1, ⌈γn⌉), with γ read as the decimal it is written \
                as; with --population N, the 2^-σ tail of a uniform cohort's corrupt count.
                """
        )

        @Option(help: "Number of participants n.")
        var clients: Int

        @Option(help: "Fraction of participants expected to drop out (δ).")
        var dropoutFraction = 0.33

        @OptionGroup var threat: ThreatOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            let model = try threat.model(dropoutFraction: dropoutFraction)
            let bitWidth = try BitWidth(32)
            let p = try validated { () throws(SecAggParameterError) in
                try SecAggParameters.recommended(
                    clientCount: clients, bitWidth: bitWidth, dimension: 1, threatModel: model)
            }
            if output.json {
                print(
                    try jsonString([
                        "clients": clients, "neighbors": p.neighborCount, "threshold": p.threshold,
                        "complete_graph": p.isCompleteGraph, "abort_probability_bound": p.abortProbabilityBound,
                        "threat_model": model.description, "corrupt_count": model.corruptCount(of: clients),
                    ]))
            } else {
                print(
                    "n = \(clients): k = \(p.neighborCount)\(p.isCompleteGraph ? " (complete graph)" : ""), t = \(p.threshold), n_C = \(model.corruptCount(of: clients))"
                )
                print(
                    "  \(model); completes except with probability ≤ \(String(format: "%.2g", p.abortProbabilityBound))"
                )
            }
        }
    }
}

/// The 32-byte simulation seed of `--seed S`: LE_8(S) followed by 24 zero bytes.
func simulationSeed(_ seed: UInt64) -> [UInt8] {
    withUnsafeBytes(of: seed.littleEndian) { Array($0) } + [UInt8](repeating: 0, count: 24)
}

/// Runs a parameter choice; a refusal prints its explanation and exits with the usage status, 64.
func validated<T>(_ body: () throws(SecAggParameterError) -> T) throws -> T {
    do { return try body() } catch { throw usageError(error.description) }
}

/// Prints `Error: message` on stderr and returns the exit status of a usage error (64), for
/// refusals found after parsing, which need no usage text.
func usageError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode.validationFailure
}
