import ArgumentParser
import Foundation
import Logging
import SwiftProtobuf
import VeilCore
import VeilLearning
import VeilService
import VeilTransport
import VeilWire

extension BenchCommand {
    struct Federation: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "federation",
            abstract: "One end-to-end round over loopback mutual TLS: its time and split, memory, bytes.",
            discussion: """
                Starts a coordinator in this process and N participants in a child process (so that this \
                process's peak memory is the coordinator's), each with a P-256 certificate from a temporary CA, \
                over gRPC with mutual TLS on loopback, and runs --rounds rounds of secure aggregation (SecAgg+ \
                graph from Specs/secagg.md's recommendation) on vectors of about D elements of Z_2^64: a softmax \
                model with 10 classes sized to D, each participant training one local step on one row. Reports \
                registration (process start, TLS handshakes, Hello), the round, and its split: the coordinator's \
                cryptography (the SecAggServer state machine), the participants' cryptography (SecAggClient, \
                summed and per participant), serialisation (protobuf encoding and decoding of every byte sent, \
                measured separately), and the rest (waiting: network, scheduling, participants); the \
                coordinator's peak resident memory; protocol bytes per participant. Target: 1,000 participants, \
                d = 10,000, one round under 60 s on 2 cores.

                With --aggregators A, the round runs instead on a tier of A `veil serve` processes sharing a \
                PostgreSQL database (--postgres: a settings file as serve.json's `postgres` object, whose user may \
                create databases; the bench makes one and drops it), with hierarchical secure aggregation \
                (Specs/wire.md §6.3) in groups of at most --group-size that split each aggregator's N/A participants evenly, the participants in child processes of at most \
                2,500 spread evenly over the aggregators. Reports registration, the round, each process's groups, \
                cryptography time (the SecAggServer state machine of its groups) and peak memory, the leader's \
                time to combine the group sums, bytes per participant, and a projection, from the measured \
                aggregator cryptography per participant, of the aggregator cores 1,000,000 participants a round \
                need. Target: 10,000 participants in one round on 2 cores, the aggregators' cost per participant \
                flat from 1,000 to 10,000.
                """
        )

        @Option(help: "Participants N.")
        var clients = 100

        @Option(name: .customLong("dim"), help: "Approximate vector length d.")
        var dimension = 10_000

        @Option(help: "Rounds.")
        var rounds = 1

        @Option(
            help: """
                The threat model of the coordinator and of every participant's policy: honest-but-curious (a \
                SecAgg+ graph, the default of this benchmark) or malicious (the complete graph, t > (n + n_C)/2).
                """)
        var threatModel: ParticipantPolicy.Adversary = .honestButCurious

        @Option(
            help:
                "Aggregators A: a tier of A `veil serve` processes on PostgreSQL runs the round (0: one coordinator here)."
        )
        var aggregators = 0

        @Option(help: "With --aggregators: the members of each group (hierarchy.group_size).")
        var groupSize = 1_000

        @Option(help: "With --aggregators: a JSON file of PostgreSQL settings (serve.json's postgres object).")
        var postgres: String?

        @OptionGroup var output: OutputOptions

        // The child process's role: hidden.
        @Option(help: .hidden) var participantsFor: String?
        @Option(help: .hidden) var port: Int = 0
        @Option(help: .hidden) var features: Int = 0
        /// A tier's child: the aggregators' ports (participant i starts at the (i mod A)-th and
        /// knows the others), and the number of its first participant.
        @Option(help: .hidden) var ports: String?
        @Option(help: .hidden) var first: Int = 1

        func validate() throws {
            guard aggregators >= 0 else { throw ValidationError("--aggregators must be at least 0") }
            if aggregators > 0 {
                guard postgres != nil || participantsFor != nil else {
                    throw ValidationError("--aggregators needs --postgres: the tier shares its rounds in PostgreSQL")
                }
                guard groupSize >= 2 else { throw ValidationError("--group-size must be at least 2") }
            }
            guard clients >= 2 else { throw ValidationError("--clients must be at least 2") }
            guard dimension >= 22 else { throw ValidationError("--dim must be at least 22") }
            guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        }

        func run() async throws {
            if let directory = participantsFor { return try await runParticipants(directory: directory) }
            if aggregators > 0 { return try await runTier() }
            try await runCoordinator()
        }

        static let classes = 10

        func runCoordinator() async throws {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "veil-bench-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: directory) }
            let features = max(1, (dimension - 1 + Self.classes - 1) / Self.classes - 1)
            let progress = ProgressBar(total: rounds)
            FileHandle.standardError.write(Data("issuing \(clients + 1) certificates…\n".utf8))
            let ca = try FederationCA.create(in: directory)
            _ = try ca.issue(id: "coordinator", role: .coordinator)
            for i in 1...clients { _ = try ca.issue(id: "p\(i)", role: .participant) }
            var serve = ServeConfiguration(tls: TLSFiles(directory: directory.path, id: "coordinator"))
            serve.port = 0
            serve.metricsPort = nil
            serve.state = directory.appendingPathComponent("state.sqlite").path
            serve.rounds = rounds
            serve.minParticipants = clients
            serve.cohortSize = clients
            serve.features = features
            serve.classes = Self.classes
            serve.evaluate = nil
            serve.roundDeadlineSeconds = 120
            serve.trainingDeadlineSeconds = 300
            serve.registrationTimeoutSeconds = 600
            serve.messageBurst = 1e6
            serve.messagesPerSecond = 1e6
            serve.threatModel = threatModel
            let logger = quietLogger(.warning, label: "veil.bench")
            let coordinator = try Coordinator(configuration: serve, logger: logger)
            let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
            let started = ContinuousClock.now
            let result: (FederationSummary, Double, ChildReport) = try await withThrowingTaskGroup(
                of: FederationSummary?.self
            ) { group in
                group.addTask {
                    try await CoordinatorServer.run(
                        coordinator, logger: logger, ready: { portContinuation.yield($0.grpcPort) },
                        progress: { progress.update(round: $0.number, accuracy: nil, loss: nil) })
                }
                var iterator = ports.makeAsyncIterator()
                guard let port = await iterator.next() else { throw ValidationError("the coordinator did not start") }
                let child = Process()
                child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
                child.arguments = [
                    "bench", "federation", "--participants-for", directory.path, "--port", "\(port)", "--clients",
                    "\(clients)", "--features", "\(features)", "--threat-model", threatModel.rawValue,
                ]
                let pipe = Pipe()
                child.standardOutput = pipe
                let spawned = ContinuousClock.now
                try child.run()
                // Registration: until every participant's stream is open.
                while await coordinator.connectedCount < clients {
                    try await Task.sleep(for: .milliseconds(20))
                    if !child.isRunning { throw ValidationError("the participants' process ended early") }
                }
                let registration = ContinuousClock.now - spawned
                var summary: FederationSummary?
                for try await s in group { if let s { summary = s } }
                let report = pipe.fileHandleForReading.readDataToEndOfFile()
                child.waitUntilExit()
                let childReport = try JSONDecoder().decode(ChildReport.self, from: report)
                guard let summary else { throw ValidationError("the coordinator ended without a summary") }
                return (summary, seconds(registration), childReport)
            }
            progress.finish()
            let (summary, registration, child) = result
            let total = seconds(ContinuousClock.now - started)
            guard let round = summary.rounds.last else { throw ValidationError("the federation completed no round") }
            let bytes = summary.rounds.reduce(0) { $0 + $1.bytesIn + $1.bytesOut }
            let serialisation = Self.serialisationSeconds(bytes: round.bytesIn + round.bytesOut, clients: clients)
            let waiting = max(0, round.seconds - round.cryptoSeconds - serialisation)
            let peak = Self.peakResidentBytes()
            let dimension = Self.classes * (features + 1) + 1
            if output.json {
                print(
                    try jsonString([
                        "clients": clients, "dim": dimension, "rounds": summary.completedRounds,
                        "registration_seconds": registration, "round_seconds": round.seconds,
                        "survivors": round.survivors, "coordinator_crypto_seconds": round.cryptoSeconds,
                        "participants_crypto_seconds": child.cryptoSeconds,
                        "participants_training_seconds": child.trainingSeconds,
                        "serialisation_seconds": serialisation, "waiting_seconds": waiting,
                        "coordinator_peak_bytes": peak,
                        "bytes_per_participant": Double(bytes) / Double(clients * summary.rounds.count),
                        "total_seconds": total,
                    ]))
            } else {
                print(
                    "\(clients) participants, d = \(dimension), loopback gRPC with mutual TLS, \(summary.completedRounds) round(s)"
                )
                print(
                    String(
                        format: "registration (process start, %d TLS handshakes, Hello): %.2f s", clients, registration)
                )
                print(String(format: "round: %.2f s, %d/%d survivors", round.seconds, round.survivors, round.cohort))
                print(String(format: "  coordinator cryptography (SecAggServer):  %7.2f s", round.cryptoSeconds))
                print(String(format: "  serialisation (protobuf, all bytes):      %7.2f s", serialisation))
                print(String(format: "  waiting (network, scheduling, clients):   %7.2f s", waiting))
                print(
                    String(
                        format:
                            "participants' cryptography (SecAggClient): %.2f s in all, %.1f ms each; training %.2f s in all",
                        child.cryptoSeconds, 1000 * child.cryptoSeconds / Double(clients), child.trainingSeconds))
                print(String(format: "coordinator peak memory: %.0f MiB", Double(peak) / 1_048_576))
                print(
                    String(
                        format: "protocol bytes per participant per round: %.0f",
                        Double(bytes) / Double(clients * summary.rounds.count)))
            }
        }

        struct ChildReport: Codable {
            var cryptoSeconds: Double
            var trainingSeconds: Double
            var completed: Int
        }

        func runParticipants(directory: String) async throws {
            let logger = quietLogger(.error, label: "veil.bench.participant")
            var generator = Xoshiro256(seed: 7, purpose: .syntheticData)
            let tier = ports?.split(separator: ",").compactMap { Int($0) } ?? []
            let agents = try (first..<(first + clients)).map { i -> ParticipantAgent in
                var join = JoinConfiguration(tls: TLSFiles(directory: directory, id: "p\(i)"))
                join.port = port
                if !tier.isEmpty {
                    let home = i % tier.count
                    join.port = tier[home]
                    join.failoverAddresses = (1..<tier.count).map { "127.0.0.1:\(tier[(home + $0) % tier.count])" }
                }
                join.reconnectAttempts = 2
                join.policy.adversary = threatModel
                let row = (0..<features).map { _ in generator.unit() }
                let data = try Dataset(
                    features: row, labels: [i % Self.classes], featureCount: features, classCount: Self.classes)
                return try ParticipantAgent(configuration: join, data: data, logger: logger)
            }
            let summaries = try await withThrowingTaskGroup(of: ParticipantSummary.self) { group in
                for agent in agents { group.addTask { try await agent.run() } }
                var all: [ParticipantSummary] = []
                for try await s in group { all.append(s) }
                return all
            }
            let report = ChildReport(
                cryptoSeconds: summaries.reduce(0) { $0 + $1.cryptoSeconds },
                trainingSeconds: summaries.reduce(0) { $0 + $1.trainingSeconds },
                completed: summaries.reduce(0) { $0 + $1.roundsCompleted })
            FileHandle.standardOutput.write(try JSONEncoder().encode(report))
        }

        /// Protobuf encoding and decoding of `bytes` bytes carried as `bytes` fields in messages
        /// of about bytes/(4N) each (a round sends each participant about four messages).
        static func serialisationSeconds(bytes: Int, clients: Int) -> Double {
            let size = max(1, bytes / max(4 * clients, 1))
            let count = max(1, bytes / size)
            var message = Veil_V1_ParticipantMessage()
            message.secagg.round = 1
            message.secagg.signed = Data(repeating: 7, count: size)
            let start = ContinuousClock.now
            for _ in 0..<count {
                guard let encoded: [UInt8] = try? message.serializedBytes(),
                    (try? Veil_V1_ParticipantMessage(serializedBytes: encoded)) != nil
                else { continue }
            }
            return seconds(ContinuousClock.now - start)
        }

        /// VmHWM from /proc/self/status: the process's peak resident set.
        static func peakResidentBytes() -> Int {
            guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
                return kilobytes * 1024
            }
            return 0
        }
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

func quietLogger(_ level: Logger.Level, label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}

extension ParticipantPolicy.Adversary: ExpressibleByArgument {}
