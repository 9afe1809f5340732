import ArgumentParser
import Foundation
import Synchronization
import VeilPostgres
import VeilService

extension BenchCommand.Federation {
    /// A serve process of the tier, its ports, and the most memory it has held.
    final class TierProcess: Sendable {
        let process: Process
        let port: Int
        let stdout: URL
        let stderr: URL
        private let peak = Mutex(0)

        init(process: Process, port: Int, stdout: URL, stderr: URL) {
            self.process = process
            self.port = port
            self.stdout = stdout
            self.stderr = stderr
        }

        var peakBytes: Int { peak.withLock { $0 } }
        var output: String { (try? String(contentsOf: stdout, encoding: .utf8)) ?? "" }
        var errors: String { (try? String(contentsOf: stderr, encoding: .utf8)) ?? "" }
        /// How the tier names this process (host and process id, as its heartbeat does).
        var holder: String { "\(ProcessInfo.processInfo.hostName):\(process.processIdentifier)" }

        /// VmHWM of the running process: it only grows, so the last reading is the peak.
        func sample() {
            guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
            else { return }
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let bytes = (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
                peak.withLock { $0 = max($0, bytes) }
            }
        }
    }

    /// `--aggregators A`: the round runs on a tier of A `veil serve` processes on PostgreSQL
    /// with hierarchical secure aggregation (`Specs/wire.md` §6.3), its participants in child
    /// processes of at most 2,500 each.
    func runTier() async throws {
        guard let postgres else { throw ValidationError("--aggregators needs --postgres (a settings file)") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var settings = try decoder.decode(PostgresSettings.self, from: Data(contentsOf: URL(fileURLWithPath: postgres)))
        let database = "veil_bench_\(UInt32.random(in: 0...UInt32.max))"
        try await PostgresAdministration.execute("CREATE DATABASE \(database)", on: settings)
        let admin = settings
        settings.database = database
        settings.leaseSeconds = 3  // heartbeats every second: registration is timed to within one
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("veil-bench-\(UUID().uuidString)")
        var tier: [TierProcess] = []
        var children: [Process] = []
        defer {
            for process in tier.map(\.process) + children where process.isRunning { process.terminate() }
            try? FileManager.default.removeItem(at: directory)
        }
        let features = max(1, (dimension - 1 + Self.classes - 1) / Self.classes - 1)
        // Each aggregator holds N/A participants: groups of at most --group-size that split
        // them evenly (1,250 → two of 625, not 1,000 and a remainder below the minimum).
        let perAggregator = clients / aggregators
        let groupsEach = max(1, (perAggregator + groupSize - 1) / groupSize)
        let group = max(2, (perAggregator + groupsEach - 1) / groupsEach)
        let minGroup = max(2, group / 2)
        let minParticipants = max(minGroup, clients * 9 / 10)
        FileHandle.standardError.write(Data("issuing \(clients + 1) certificates…\n".utf8))
        let ca = try FederationCA.create(in: directory)
        _ = try ca.issue(id: "coordinator", role: .coordinator)
        for i in 1...clients { _ = try ca.issue(id: "p\(i)", role: .participant) }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let store = String(decoding: try encoder.encode(settings), as: UTF8.self)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let ports = try (0..<aggregators).map { _ in try Self.freePort() }
        for (i, port) in ports.enumerated() {
            let config = directory.appendingPathComponent("tier\(i).json")
            try """
            {"tls": {"ca": "ca.cert.pem", "certificate": "coordinator.cert.pem", "key": "coordinator.key.pem",
                     "signing_key": "coordinator.signing.key"},
             "port": \(port), "metrics_port": null, "rounds": \(rounds), "min_participants": \(minParticipants),
             "cohort_size": \(clients), "features": \(features), "classes": \(Self.classes), "evaluate": null,
             "round_deadline_seconds": 600, "training_deadline_seconds": 900, "messages_per_second": 1000000,
             "message_burst": 1000000, "threat_model": "\(threatModel.rawValue)", "postgres": \(store),
             "hierarchy": {"group_size": \(group), "min_group_size": \(minGroup), "round_seconds": 3600}}
            """.write(to: config, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = executable
            process.arguments = ["serve", "--config", config.path, "--advertise", "127.0.0.1:\(port)"]
            let out = directory.appendingPathComponent("tier\(i).out")
            let err = directory.appendingPathComponent("tier\(i).err")
            FileManager.default.createFile(atPath: out.path, contents: nil)
            FileManager.default.createFile(atPath: err.path, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            try process.run()
            tier.append(TierProcess(process: process, port: port, stdout: out, stderr: err))
            // The first leads: the others start once it does, so the roles are known.
            if i == 0 { try await Self.waitFor("leading under epoch", in: tier[0]) }
        }
        for process in tier { try await Self.waitFor("aggregating on", in: process) }
        // Interrupted, the bench takes its processes and its database with it.
        let everyone = Mutex<[Process]>(tier.map(\.process))
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler {
                for process in everyone.withLock({ $0 }) where process.isRunning { process.terminate() }
                try? FileManager.default.removeItem(at: directory)
                FileHandle.standardError.write(Data("interrupted; the database \(database) is left to drop\n".utf8))
                Foundation.exit(130)
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        let sampled = tier
        let sampling = Task {
            while !Task.isCancelled {
                for process in sampled { process.sample() }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { sampling.cancel() }

        let shared = try CoordinatorStore(electingAt: .postgres(settings), driver: PostgresStoreDriver())
        let spawned = ContinuousClock.now
        let chunk = 2_500
        var pipes: [Pipe] = []
        for first in stride(from: 1, through: clients, by: chunk) {
            let child = Process()
            child.executableURL = executable
            child.arguments = [
                "bench", "federation", "--participants-for", directory.path, "--ports",
                ports.map(String.init).joined(separator: ","), "--first", "\(first)", "--clients",
                "\(min(chunk, clients - first + 1))", "--features", "\(features)", "--threat-model",
                threatModel.rawValue,
            ]
            let pipe = Pipe()
            child.standardOutput = pipe
            try child.run()
            children.append(child)
            everyone.withLock { $0.append(child) }
            pipes.append(pipe)
        }
        // Registration: until the heartbeats (every second) count every participant connected —
        // or, for a round shorter than that, until the participants are done.
        while try shared.aggregators(liveness: 3).reduce(0, { $0 + $1.connections }) < clients {
            if let failed = children.first(where: { !$0.isRunning && $0.terminationStatus != 0 }) {
                throw ValidationError("a participants' process failed (status \(failed.terminationStatus))")
            }
            if children.allSatisfy({ !$0.isRunning }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let registration = seconds(ContinuousClock.now - spawned)
        for process in tier {
            while process.process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            process.sample()
        }
        let reports = try pipes.map { pipe in
            try JSONDecoder().decode(ChildReport.self, from: pipe.fileHandleForReading.readDataToEndOfFile())
        }
        for child in children { child.waitUntilExit() }
        sampling.cancel()
        let total = seconds(ContinuousClock.now - spawned)

        // What each process did, from the store and its own lines.
        guard let leader = tier.first(where: { $0.errors.contains("leading under epoch 1 ") }) else {
            throw ValidationError("no process led")
        }
        guard let round = try shared.tierRound(rounds), round.status == "committed" else {
            throw ValidationError("round \(rounds) was not committed: \(leader.errors.suffix(2000))")
        }
        var groups: [CoordinatorStore.TierGroup] = []
        for number in 1...rounds {
            let attempt = try shared.tierRound(number)?.attempt ?? 1
            groups += try shared.tierGroups(round: number, attempt: attempt, liveness: 0).filter { $0.status == "done" }
        }
        let combine = try (1...rounds).map { try shared.combineSeconds($0) ?? 0 }.reduce(0, +)
        let roundSeconds = Self.leaderRoundSeconds(leader.output)
        let contributors = groups.reduce(0) { $0 + $1.contributors.count }
        let bytes = tier.map { Self.groupBytes($0.output) }.reduce(0, +)
        let perProcess: [[String: Any]] = tier.map { process in
            let own = groups.filter { $0.holder == process.holder }
            return [
                "role": process === leader ? "leader+aggregator" : "aggregator", "groups": own.count,
                "members": own.reduce(0) { $0 + $1.members.count },
                "crypto_cpu_seconds": own.reduce(0) { $0 + $1.cryptoSeconds }, "peak_bytes": process.peakBytes,
            ]
        }
        let aggregatorCrypto = groups.reduce(0) { $0 + $1.cryptoSeconds }
        let perParticipant = aggregatorCrypto / Double(max(1, contributors))
        // From the measured cost per participant: the aggregator cores 10^6 participants a round
        // need, if a round may take a minute, or ten.
        let budgets = [60, 600]
        let needed = budgets.map { Int((1e6 * perParticipant / Double($0)).rounded(.up)) }
        let projection: [[String: Int]] = zip(budgets, needed).map { ["round_seconds": $0, "aggregators": $1] }
        let participantsCrypto = reports.reduce(0) { $0 + $1.cryptoSeconds }
        let training = reports.reduce(0) { $0 + $1.trainingSeconds }
        let dimension = Self.classes * (features + 1) + 1
        try? await PostgresAdministration.execute("DROP DATABASE IF EXISTS \(database) WITH (FORCE)", on: admin)
        if output.json {
            print(
                try jsonString([
                    "clients": clients, "aggregators": aggregators, "group_size": group, "groups": groups.count,
                    "dim": dimension, "rounds": rounds, "registration_seconds": registration,
                    "round_seconds": roundSeconds, "contributors": contributors,
                    "leader_combine_seconds": combine, "aggregators_crypto_cpu_seconds": aggregatorCrypto,
                    "aggregator_crypto_cpu_seconds_per_participant": perParticipant, "processes": perProcess,
                    "participants_crypto_seconds": participantsCrypto, "participants_training_seconds": training,
                    "bytes_per_participant": Double(bytes) / Double(max(1, contributors)),
                    "projection_1m": projection, "total_seconds": total,
                ]))
        } else {
            print(
                "\(clients) participants, \(aggregators) aggregator process(es), groups of \(group), d = \(dimension), \(rounds) round(s) on PostgreSQL"
            )
            print(String(format: "registration (%d TLS handshakes, Hello): %.2f s", clients, registration))
            print(
                String(
                    format: "round: %.2f s, %d contributors in %d groups; the leader combined in %.3f s",
                    roundSeconds, contributors, groups.count, combine))
            for (i, process) in perProcess.enumerated() {
                print(
                    String(
                        format:
                            "  process %d (%@): %d groups, %d members, cryptography %.2f s of processor time, peak memory %.0f MiB",
                        i,
                        process["role"] as! String, process["groups"] as! Int, process["members"] as! Int,
                        process["crypto_cpu_seconds"] as! Double, Double(process["peak_bytes"] as! Int) / 1_048_576))
            }
            print(
                String(
                    format: "aggregators' cryptography: %.2f s of processor time in all, %.2f ms per participant",
                    aggregatorCrypto,
                    1000 * perParticipant))
            print(
                String(
                    format: "participants' cryptography: %.2f s in all, %.1f ms each; training %.2f s in all",
                    participantsCrypto, 1000 * participantsCrypto / Double(clients), training))
            print(
                String(
                    format: "protocol bytes per participant per round: %.0f",
                    Double(bytes) / Double(max(1, contributors))))
            print(
                "projection: 1,000,000 participants a round need "
                    + zip(needed, budgets).map { "\($0) aggregator cores in \($1) s" }
                    .joined(separator: ", ") + " (measured cost per participant; groups of \(group))")
        }
    }

    /// The rounds' seconds on the leader's round lines (`round N completed … S s`), summed.
    static func leaderRoundSeconds(_ output: String) -> Double {
        output.split(separator: "\n").filter { $0.hasPrefix("round ") && $0.contains(" completed ") }.compactMap {
            line in
            let words = line.split(separator: " ")
            return words.firstIndex(of: "s").flatMap { $0 > 0 ? Double(words[$0 - 1]) : nil }
        }.reduce(0, +)
    }

    /// The protocol bytes in and out on an aggregator's group lines.
    static func groupBytes(_ output: String) -> Int {
        output.split(separator: "\n").filter { $0.hasPrefix("group of round ") && $0.contains(" deposited ") }.map {
            line in
            let words = line.split(separator: " ")
            return words.indices.filter { words[$0] == "B" && $0 > 0 }.compactMap { Int(words[$0 - 1]) }.reduce(0, +)
        }.reduce(0, +)
    }

    static func waitFor(_ text: String, in process: TierProcess, timeout: Duration = .seconds(120)) async throws {
        let end = ContinuousClock.now + timeout
        while !process.errors.contains(text) {
            guard process.process.isRunning, ContinuousClock.now < end else {
                throw ValidationError("a serve process did not say \"\(text)\": \(process.errors.suffix(2000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A loopback port nobody listens on now.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw ValidationError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
