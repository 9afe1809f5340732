import Foundation
import Testing
import VeilTestSupport

@Suite struct SimulateCommandTests {
    @Test func reportsEveryRoundAndASummaryAsJSON() async throws {
        let output = try await VeilProcess.run(["simulate", "--rounds", "5", "--json"])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let rounds = try #require(object["rounds"] as? [[String: Any]])
        #expect(rounds.count == 5)
        #expect(rounds.allSatisfy { ($0["accuracy"] as? Double) != nil && ($0["loss"] as? Double) != nil })
        let final = try #require(object["final_accuracy"] as? Double)
        #expect(final == rounds.last?["accuracy"] as? Double)
        // Five rounds over the network (each session's randomness is fresh, so runs differ):
        // well above chance (0.1 for ten digits), not a tuned figure.
        #expect(final > 0.5)
        #expect(object["final_loss"] as? Double == rounds.last?["loss"] as? Double)
        #expect(object["secure_sum"] as? String == "secagg")
        #expect(output.stderr.contains("round 5/5"))
    }

    /// `--algorithm fedbuff` runs over the network as the service's asynchronous mode: each
    /// round a buffer of `--buffer` held updates, with each member's staleness reported;
    /// `--concurrency`, which only the in-process clock has, sends it in-process with a line.
    @Test func fedBuffRunsOverTheNetworkWithEachBuffersStaleness() async throws {
        let output = try await VeilProcess.run([
            "simulate", "--algorithm", "fedbuff", "--rounds", "4", "--clients", "6", "--buffer", "3", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(object["transport"] as? String == "network" && object["algorithm"] as? String == "fedbuff")
        let rounds = try #require(object["rounds"] as? [[String: Any]])
        #expect(rounds.count == 4 && rounds.allSatisfy { $0["survivors"] as? Int == 3 })
        let staleness = rounds.compactMap { $0["staleness"] as? [String: Int] }
        #expect(staleness.count == 4 && staleness.allSatisfy { $0.count == 3 }, "\(rounds)")
        #expect(staleness.dropFirst().contains { $0.values.contains { $0 > 0 } }, "\(staleness)")
        let text = try await VeilProcess.run([
            "simulate", "--algorithm", "fedbuff", "--rounds", "2", "--clients", "4", "--buffer", "2",
        ])
        #expect(text.status == 0 && text.stdout.contains("staleness (mean, max)"), "\(text.stdout)")
        let inProcess = try await VeilProcess.run([
            "simulate", "--algorithm", "fedbuff", "--rounds", "2", "--concurrency", "4",
        ])
        #expect(inProcess.status == 0 && inProcess.stderr.contains("--concurrency is simulated in-process"))
    }

    /// `--trainer`: the NumPy example trains every participant over the network; what would
    /// run in-process is refused rather than trained silently by Veil's own trainer.
    @Test func theTrainerOptionRunsTheUsersProgramOverTheNetwork() async throws {
        let command = "python3 examples/numpy-logistic/train.py"
        let output = try await VeilProcess.run([
            "simulate", "--rounds", "2", "--clients", "3", "--trainer", command, "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(object["trainer"] as? String == command && object["transport"] as? String == "network")
        let rounds = try #require(object["rounds"] as? [[String: Any]])
        #expect(rounds.count == 2 && rounds.allSatisfy { $0["survivors"] as? Int == 3 })
        let inProcess = try await VeilProcess.run(["simulate", "--trainer", command, "--transport", "in-process"])
        #expect(inProcess.status == 64 && inProcess.stderr.contains("--trainer runs over the network"))
        let plain = try await VeilProcess.run(["simulate", "--trainer", command, "--secure-sum", "plain"])
        #expect(plain.status == 64 && plain.stderr.contains("--trainer runs over the network, and"), "\(plain.stderr)")
    }

    /// `--dp-sgd`: every participant trains by DP-SGD and reports its example-level ε.
    @Test func dpSGDReportsEachParticipantsExampleLevelEpsilon() async throws {
        let output = try await VeilProcess.run([
            "simulate", "--rounds", "2", "--clients", "3", "--dp-sgd", "1.2:0.5", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let dpsgd = try #require(object["dp_sgd"] as? [String: Any])
        #expect(dpsgd["noise_multiplier"] as? Double == 1.2 && dpsgd["clip"] as? Double == 0.5)
        let epsilons = try #require(dpsgd["example_epsilon"] as? [String: Double])
        #expect(epsilons.count == 3 && epsilons.values.allSatisfy { $0 > 0 && $0.isFinite })
        #expect(dpsgd["max_example_epsilon"] as? Double == epsilons.values.max())
        let text = try await VeilProcess.run(["simulate", "--rounds", "1", "--clients", "3", "--dp-sgd", "1.2"])
        #expect(text.stdout.contains("DP-SGD (σ 1.2, per-example clip 1): example-level ε at most"), "\(text.stdout)")
        for (arguments, message) in [
            (["--dp-sgd", "0.01"], "dp_sgd.noise_multiplier must be in [0.1, 1000]"),
            (["--dp-sgd", "x"], "--dp-sgd must be σ or σ:C"),
            (["--dp-sgd", "1", "--transport", "in-process"], "--dp-sgd runs over the network"),
        ] {
            let refused = try await VeilProcess.run(["simulate"] + arguments)
            #expect(refused.status == 64 && refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
    }

    @Test func localTestSetsReportTheSpreadOfAccuracyOverParticipants() async throws {
        let output = try await VeilProcess.run([
            "simulate", "--rounds", "3", "--clients", "10", "--algorithm", "qfedavg", "--secure-sum", "plain",
            "--local-test", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let final = try #require(object["final_participant_accuracy"] as? [String: Double])
        #expect(Set(final.keys) == ["mean", "worst_10", "best_10", "std"])
        #expect(final["worst_10"]! <= final["mean"]! && final["mean"]! <= final["best_10"]!)
        let rounds = try #require(object["rounds"] as? [[String: Any]])
        #expect((rounds.last?["participant_accuracy"] as? [String: Double]) == final)
        let text = try await VeilProcess.run([
            "simulate", "--rounds", "2", "--clients", "5", "--secure-sum", "plain", "--local-test",
        ])
        #expect(text.stdout.contains("on the participants' own test rows: mean"), "\(text.stdout)")
        let synthetic = try await VeilProcess.run([
            "simulate", "--rounds", "2", "--dataset", "synthetic:1,1", "--secure-sum", "plain", "--local-test",
        ])
        #expect(synthetic.status != 0 && synthetic.stderr.contains("--local-test splits each participant's rows"))
    }

    @Test func devicesAndOortReportSimulatedTimeAndParticipation() async throws {
        let output = try await VeilProcess.run([
            "simulate", "--rounds", "30", "--clients", "20", "--fraction", "0.25", "--secure-sum", "secagg",
            "--devices", "heterogeneous", "--selection", "oort", "--overcommit", "1.4", "--max-gap", "8",
            "--target-accuracy", "0.5", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stderr.contains("in-process: devices, overcommitment"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let rounds = try #require(object["rounds"] as? [[String: Any]])
        let seconds = rounds.compactMap { $0["simulated_seconds"] as? Double }
        #expect(seconds.count == 30 && seconds.allSatisfy { $0 > 0 })
        #expect(rounds.allSatisfy { ($0["selected"] as? Int).map { $0 <= 7 } == true })
        #expect(rounds.allSatisfy { ($0["survivors"] as? Int).map { $0 <= 5 } == true })
        let participation = try #require(object["participation"] as? [Int])
        #expect(
            participation.count == 20
                && participation.reduce(0, +) == rounds.reduce(0) { $0 + ($1["selected"] as! Int) })
        let jain = try #require(object["participation_jain"] as? Double)
        let doubles = participation.map(Double.init)
        let expected = pow(doubles.reduce(0, +), 2) / (20 * doubles.reduce(0) { $0 + $1 * $1 })
        #expect(abs(jain - expected) < 1e-9)
        #expect(abs((object["simulated_seconds"] as? Double ?? 0) - seconds.reduce(0, +)) < 1e-6)
        #expect(object["selection"] as? String == "oort")
        #expect(object["devices"] as? String == "heterogeneous")
        // Accuracy 0.5 is passed within 30 rounds; the time is the simulated seconds up to that round.
        let reached = try #require(object["rounds_to_accuracy"] as? Int)
        let time = try #require(object["time_to_accuracy"] as? Double)
        #expect(abs(time - seconds.prefix(reached).reduce(0, +)) < 1e-6)
    }

    @Test func orchestrationOptionsAreRefusedWhereTheyCannotHold() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "veil-devices-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("devices.json")
        try Data(
            #"{"version": 1, "devices": [{"examples_per_second": 1, "downlink_mbps": 1, "uplink_mbps": 1, "round_trip_ms": 1, "availability": 2}]}"#
                .utf8
        ).write(to: file)
        for (arguments, message) in [
            (["--devices", "heterogeneous", "--transport", "network"], "--transport network: devices, overcommitment"),
            (["--devices", file.path], "devices[0].availability must be in (0, 1]"),
            (["--selection", "greedy"], "--selection must be random or oort"),
            (["--overcommit", "1.5"], "--overcommit and --deadline act on simulated arrival times: give --devices"),
            (
                ["--selection", "oort", "--dp", "central", "--epsilon", "1"],
                "--dp's accountant assumes uniform Poisson sampling"
            ),
            (
                ["--devices", "heterogeneous", "--algorithm", "fedbuff"],
                "fedbuff schedules participants by its own clock"
            ),
            (["--max-gap", "0"], "--max-gap must be at least 1 round"),
        ] {
            let output = try await VeilProcess.run(["simulate", "--rounds", "1", "--secure-sum", "plain"] + arguments)
            #expect(output.status == 64, "\(arguments)")
            #expect(output.stderr.contains(message), "\(arguments): \(output.stderr)")
        }
    }

    @Test func textOutputHasATableAndAFinalLine() async throws {
        let output = try await VeilProcess.run([
            "simulate", "--rounds", "3", "--secure-sum", "plain", "--algorithm", "fedadam",
        ])
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("fedadam on digits (10 participants, dirichlet:0.5)") == true)
        #expect(lines.count == 6)
        #expect(lines.last?.hasPrefix("final: accuracy ") == true)
    }

    @Test func robustAggregationOnASecureSumIsRefusedWithTheReason() async throws {
        let output = try await VeilProcess.run(["simulate", "--algorithm", "krum", "--rounds", "1"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("the krum aggregator needs every participant's own update"))
        let plain = try await VeilProcess.run([
            "simulate", "--algorithm", "krum", "--rounds", "1", "--secure-sum", "plain",
        ])
        #expect(plain.status == 0)
    }

    @Test func aThresholdKeyIsForPaillierOverTheNetworkAndTOfL() async throws {
        for (arguments, message) in [
            (["--threshold-key", "2-of-3"], "--threshold-key is for --secure-sum paillier over the network"),
            (
                ["--secure-sum", "paillier", "--transport", "in-process", "--threshold-key", "2-of-3"],
                "--threshold-key is for --secure-sum paillier over the network"
            ),
            (
                ["--secure-sum", "paillier", "--threshold-key", "1-of-3"],
                "--threshold-key must be T-of-L with 2 ≤ T ≤ L"
            ),
            (
                ["--secure-sum", "paillier", "--threshold-key", "3-of-2"],
                "--threshold-key must be T-of-L with 2 ≤ T ≤ L"
            ),
            (["--secure-sum", "paillier", "--threshold-key", "2/3"], "--threshold-key must be T-of-L with 2 ≤ T ≤ L"),
            (["--secure-sum", "paillier", "--threshold-key", "2-of-4"], "and 2T > L (any two quorums share a holder)"),
        ] {
            let output = try await VeilProcess.run(["simulate", "--rounds", "1"] + arguments)
            #expect(output.status == 64, "\(arguments): \(output.stderr)")
            #expect(output.stderr.contains(message), "\(arguments): \(output.stderr)")
        }
    }

    @Test func badDataIsNamedByRowAndColumn() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("data.csv")
        try "1,2,0\n3,4\n".write(to: file, atomically: true, encoding: .utf8)
        let output = try await VeilProcess.run(["simulate", "--dataset", "csv:\(file.path)", "--rounds", "1"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("row 2 has 2 columns, expected 3"))
        let unknown = try await VeilProcess.run(["simulate", "--algorithm", "fedsgd"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("unknown algorithm \"fedsgd\""))
    }
}
