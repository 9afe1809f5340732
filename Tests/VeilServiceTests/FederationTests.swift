import Foundation
import Logging
import Testing
import VeilLearning
import VeilTestSupport
import VeilTransport
import VeilWire

@testable import VeilService

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Federations over loopback with real mutual TLS: the coordinator and participants of
/// `veil serve` and `veil join`, in this process.
@Suite(.serialized) struct FederationTests {
    func federation(clients: Int = 4, rounds: Int = 3, _ body: (inout NetworkSimulation) throws -> Void = { _ in })
        throws -> (NetworkSimulation, URL)
    {
        let directory = try RepositoryPaths.temporaryDirectory("veil-federation")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = rounds
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 20)
        try body(&network)
        return (network, directory)
    }

    var quiet: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    @Test func aFederationCompletesOverMutualTLS() async throws {
        let (network, directory) = try federation()
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 3 && summary.attempts == 3)
        #expect(summary.rounds.allSatisfy { $0.completed && $0.survivors == 4 && $0.bytesIn > 0 && $0.bytesOut > 0 })
        #expect((summary.finalAccuracy ?? 0) > 0.6)
        let store = try CoordinatorStore(path: network.serve.state)
        #expect(try store.journalMode == "wal")
        #expect(try store.rounds().map(\.outcome) == ["completed", "completed", "completed"])
        #expect(try store.latestCheckpoint()?.round == 3)
        #expect(try store.roundsCompleted().values.allSatisfy { $0 == 3 })

        // `veil model export --config`: the store's latest round as an ONNX file, which Veil
        // reads back and evaluates on the federation's test set to the accuracy it reported.
        let model = try network.serve.latestModel()
        let stored = try store.latestCheckpoint()?.state.parameters
        #expect(model.round == 3 && model.parameters == stored)
        let config = directory.appendingPathComponent("serve.json")
        let tls = network.serve.tls
        try JSONSerialization.data(withJSONObject: [
            "state": network.serve.state,
            "tls": ["ca": tls.ca, "certificate": tls.certificate, "key": tls.key, "signing_key": tls.signingKey],
        ]).write(to: config)
        let onnx = directory.appendingPathComponent("model.onnx").path
        let export = try await VeilProcess.run(["model", "export", "--config", config.path, "--out", onnx])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.hasPrefix("wrote \(onnx): softmax from round 3, onnx float32, "))
        let evaluation = try await VeilProcess.run(["model", "evaluate", "--model", onnx, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(evaluation.stdout.utf8)) as? [String: Any]
        let accuracy = try #require(object?["accuracy"] as? Double)
        // float32 weights: at most one of the 359 test examples changes class.
        #expect(abs(accuracy - (summary.finalAccuracy ?? -1)) <= 1.0 / 359, "\(accuracy)")
    }

    /// Adaptive compression over the network (Specs/export.md §5.3): the coordinator chooses
    /// each round's ring and subset from the links the participants report in their Hello and
    /// the round deadline, and the participants send exactly that. At 1 kb/s a 651-value
    /// payload fits 20 s in 3 bytes per value (ring 18: 16 bits and 2 of headroom), not in 4;
    /// at 50 b/s nothing fits and the round takes the floors, 4 bits and a quarter.
    @Test(arguments: [(UInt64(1000), 18, 1.0), (UInt64(50), 8, 0.25)])
    func adaptiveCompressionFollowsTheReportedLinks(link: UInt64, bits: Int, subset: Double) async throws {
        let (network, directory) = try federation(rounds: 2) { network in
            network.serve.adaptiveCompression = ServiceAdaptiveCompression(minBits: 4, minSubset: 0.25)
            network.serve.payloadClip = 1
            for i in network.participants.indices { network.participants[i].join.linkBitsPerSecond = link }
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 2)
        #expect(
            summary.rounds.allSatisfy { $0.payloadBits == bits && abs(($0.subsetFraction ?? 0) - subset) < 0.01 },
            "\(summary.rounds.map { ($0.payloadBits, $0.subsetFraction) })")
        #expect((summary.finalAccuracy ?? 0) > 0.5, "\(summary.finalAccuracy ?? 0)")
    }

    /// The same with Paillier: the payload is ciphertexts, 2|n| bits each, so a narrower ring
    /// (more values per plaintext) and a subset mean fewer of them; the key holder, which
    /// accepts rings up to its `bits`, decrypts the narrower packing the round announced.
    @Test func adaptiveCompressionPacksPaillierRoundsTighter() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-paillier-adaptive")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 4
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(
            configuration: c, directory: directory, roundDeadlineSeconds: 20, paillierBits: 1024)
        network.serve.adaptiveCompression = ServiceAdaptiveCompression(minBits: 4, minSubset: 0.5)
        network.serve.payloadClip = 1
        for i in network.participants.indices { network.participants[i].join.linkBitsPerSecond = 1000 }
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 2 && summary.rounds.allSatisfy(\.completed))
        let bits = Set(summary.rounds.compactMap(\.payloadBits))
        // 32 bits and 2 of headroom would be 24 ciphertexts of 256 bytes: 49 kbit, over 20 s at 1 kb/s.
        #expect(bits.count == 1 && bits.first! < 34, "\(bits)")
        #expect((summary.finalAccuracy ?? 0) > 0.5, "\(summary.finalAccuracy ?? 0)")
        let record = try DecryptionRecord(path: network.keyHolders[0].record)
        #expect(record.entry(round: 1) != nil && record.entry(round: 2) != nil)
    }

    @Test func exportingFromAStoreWithNoCompletedRoundIsRefused() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-export")
        defer { try? FileManager.default.removeItem(at: directory) }
        let state = directory.appendingPathComponent("state.sqlite").path
        _ = try CoordinatorStore(path: state)
        var serve = ServeConfiguration(tls: .init(ca: "", certificate: "", key: "", signingKey: ""))
        serve.state = state
        let refusal = ConfigurationError("the store at \(state) has no completed round yet: nothing to export")
        #expect(throws: refusal) { try serve.latestModel() }
        serve.state = directory.appendingPathComponent("missing.sqlite").path
        #expect(throws: ConfigurationError.self) { try serve.latestModel() }
    }

    /// The review's finding: the README's federation of 3 ran with t = 1. With the defaults —
    /// the coordinator's malicious model and the participants' own policy — a cohort of 3 runs
    /// at t = 3 and one of 10 at t = 6 (t > (n + n_C)/2 with n_C = 1).
    @Test(arguments: [(3, 3), (10, 6)])
    func theDefaultFederationsRunAtTheMaliciousThreshold(clients: Int, threshold: Int) async throws {
        let (network, directory) = try federation(clients: clients, rounds: 2)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(network.serve.threatModel == .malicious)
        #expect(network.participants.allSatisfy { $0.join.policy.adversary == .malicious })
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 2)
        #expect(
            summary.rounds.allSatisfy { $0.threshold == threshold && $0.survivors == clients },
            "\(summary.rounds.map(\.threshold))")
    }

    @Test func aParticipantKilledMidRoundIsADropoutAndTheRoundCompletes() async throws {
        // Participant 3 sends its keys in round 2, then goes silent for good.
        let (network, directory) = try federation(clients: 4, rounds: 3) { network in
            network.serve.minParticipants = 3
            network.serve.cohortSize = 4
            network.failures = [2: (round: 2, messages: 1)]
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quiet)
        #expect(summary.completedRounds == 3)
        let second = try #require(summary.rounds.first { $0.number == 2 })
        #expect(second.completed && second.cohort == 4 && second.survivors == 3)
        let third = try #require(summary.rounds.first { $0.number == 3 })
        #expect(third.cohort == 3 && third.survivors == 3)
    }

    /// The review's finding: every attempt of a round drew the same cohort, so members whose
    /// policy refuses the round made it abort until `max_round_attempts` ran out. Two of five
    /// refuse any cohort under 10; the cohort is all five, so any attempt with one of them
    /// can fall short of its threshold. Each aborted attempt leaves out whoever declined it, so
    /// the round completes with the three others. Twenty attempts leave room for a loaded
    /// machine, where participants connect between attempts: while only three are connected, a
    /// decliner among them cannot be left out (two would remain), and such attempts end in
    /// milliseconds — a clean-clone CI run once spent five of them before the last two had
    /// registered (before, once all five were connected they were drawn every time and the
    /// federation gave up).
    @Test func aRetriedRoundLeavesOutTheMembersWhoDeclined() async throws {
        let (network, directory) = try federation(clients: 5, rounds: 1) { network in
            network.serve.minParticipants = 3
            network.serve.cohortSize = 5
            network.serve.maxRoundAttempts = 20
            for i in [3, 4] { network.participants[i].join.policy.minCohort = 10 }
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quiet)
        let attempts = "\(summary.rounds.map { ($0.cohort, $0.survivors, $0.abortReason ?? "completed") })"
        #expect(summary.completedRounds == 1 && !summary.gaveUp, "\(attempts)")
        let last = try #require(summary.rounds.last)
        // Only the three who accept can survive (a decliner that connected late may still be in
        // the last cohort, which then completes without it).
        #expect(last.completed && last.survivors == 3, "\(attempts)")
        #expect(summary.rounds.dropLast().allSatisfy { !$0.completed }, "\(attempts)")
    }

    @Test func metricsAndTheDashboardPageAreServedOverHTTP() async throws {
        let (network, directory) = try federation(clients: 3, rounds: 40) { network in
            network.serve.metricsPort = 0
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let (endpoints, running) = try await network.started(logger: quiet)
        let metricsPort = try #require(endpoints.metricsPort)
        var text = ""
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(50))
            let url = URL(string: "http://127.0.0.1:\(metricsPort)/metrics")!
            if let (data, response) = try? await URLSession.shared.data(from: url),
                (response as? HTTPURLResponse)?.statusCode == 200
            {
                text = String(decoding: data, as: UTF8.self)
                if text.contains("veil_rounds_total{outcome=\"completed\"}") { break }
            }
        }
        #expect(text.contains("# TYPE veil_rounds_total counter"))
        #expect(text.contains("veil_rounds_total{outcome=\"completed\"}"), "\(text)")
        #expect(text.contains("veil_participants_connected 3"))
        let (page, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(metricsPort)/")!)
        #expect(String(decoding: page, as: UTF8.self).contains("<title>Veil monitoring</title>"))
        let (_, missing) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(metricsPort)/nope")!)
        #expect((missing as? HTTPURLResponse)?.statusCode == 404)
        #expect(try await running.value.completedRounds == 40)
    }
}

@Suite(.serialized) struct PaillierFederationTests {
    @Test func aPaillierFederationCompletesWithAKeyHolder() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-paillier-federation")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 4
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(
            configuration: c, directory: directory, roundDeadlineSeconds: 20, paillierBits: 1024)
        network.serve.minParticipants = 3
        // Participant 4 never sends its ciphertexts in round 2 and disconnects: the masks cancel
        // only over the whole roster, so that attempt is aborted and the next one, without it,
        // completes.
        network.failures = [3: (round: 2, messages: 0)]
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 2)
        // Round 1 may start with three or four (min_participants is 3); round 2's first attempt
        // has all four, loses participant 4, and is run again with the other three.
        let completed = summary.rounds.filter(\.completed)
        #expect(
            completed.count == 2 && completed.allSatisfy { $0.survivors == $0.cohort },
            "\(summary.rounds.map(\.survivors))")
        let aborted = try #require(summary.rounds.first { !$0.completed })
        #expect(
            aborted.number == 2 && aborted.abortReason?.contains("did not contribute (participant-4)") == true,
            "\(aborted)")
        #expect(summary.rounds.last?.survivors == 3)
        #expect(completed.allSatisfy { $0.bytesIn > 0 && $0.bytesOut > 0 })
        #expect((summary.finalAccuracy ?? 0) > 0.5)
        // The key holder decrypted each round once, and recorded it.
        let record = try DecryptionRecord(path: network.keyHolders[0].record)
        #expect(record.entry(round: 1) != nil && record.entry(round: 2) != nil)
    }

    @Test func theKeyHolderRefusesAggregatesOfTooFewContributions() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-paillier-refusal")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 3
        c.rounds = 1
        c.partition = .iid
        var network = try NetworkSimulation(
            configuration: c, directory: directory, roundDeadlineSeconds: 20, paillierBits: 1024)
        network.keyHolders[0].minimumContributors = 5
        network.serve.rounds = 1
        // Listening means the coordinator has created and migrated its store: open it only then.
        let (_, coordinator) = try await network.started(logger: quietLogger())
        let store = try CoordinatorStore(path: network.serve.state)
        // At least one attempt must have been refused and recorded before the coordinator stops.
        _ = try await eventually { try store.rounds().contains { $0.outcome == "aborted" } }
        coordinator.cancel()
        let attempts = try store.rounds()
        #expect(!attempts.isEmpty && attempts.allSatisfy { $0.outcome != "completed" }, "\(attempts)")
        let refused = try #require(attempts.first { $0.outcome == "aborted" })
        // The key holder counted the roster itself (three certified members), not a number it was told.
        #expect(refused.abortReason?.contains("the key holder refused") == true, "\(refused)")
        #expect(refused.abortReason?.contains("3 members; at least 5 are needed") == true, "\(refused)")
        // Nothing was decrypted, so nothing was recorded.
        let record = try DecryptionRecord(path: network.keyHolders[0].record)
        #expect(record.entry(round: 1) == nil)
    }
}

extension NetworkSimulation {
    /// Starts the federation in the background and returns once its coordinator listens, with
    /// the ports it was given (it asks for port 0: no port is guessed and raced for).
    func started(logger: Logger) async throws -> (
        endpoints: CoordinatorServer.Endpoints, run: Task<FederationSummary, any Error>
    ) {
        let (ports, continuation) = AsyncStream.makeStream(of: CoordinatorServer.Endpoints.self)
        let network = self
        let run = Task {
            defer { continuation.finish() }
            return try await network.run(logger: logger, ready: { continuation.yield($0) })
        }
        var iterator = ports.makeAsyncIterator()
        guard let endpoints = await iterator.next() else {
            _ = try await run.value
            throw ConfigurationError("the federation ended before its coordinator listened")
        }
        return (endpoints, run)
    }
}
