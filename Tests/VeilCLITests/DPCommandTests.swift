import Foundation
import Testing
import VeilTestSupport

@Suite struct DPCommandTests {
    func json(_ arguments: [String]) async throws -> [String: Any] {
        let output = try await VeilProcess.run(arguments + ["--json"])
        #expect(output.status == 0, "\(output.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
    }

    @Test func epsilonGivesTheIssuesReferencePoints() async throws {
        let first = try await json([
            "dp", "epsilon", "--mechanism", "gaussian", "--sampling-rate", "0.01", "--noise-multiplier", "1.0",
            "--steps", "1000", "--delta", "1e-5",
        ])
        #expect(abs((first["epsilon"] as! Double) - 2.10137) < 5e-6)
        #expect(first["order"] as? Double == 7.8)
        let second = try await json([
            "dp", "epsilon", "--sampling-rate", "0.1", "--noise-multiplier", "1.5", "--steps", "1000", "--delta",
            "1e-5",
        ])
        #expect(abs((second["epsilon"] as! Double) - 13.6185) < 5e-5)
        #expect(second["order"] as? Double == 2.8)
        let text = try await VeilProcess.run([
            "dp", "epsilon", "--sampling-rate", "0.01", "--noise-multiplier", "1", "--steps", "1000", "--delta", "1e-5",
        ])
        #expect(text.stdout.hasPrefix("epsilon 2.10136652542") && text.stdout.contains("at order 7.8"))
    }

    @Test func calibrateFindsTheNoiseThatMeetsTheTarget() async throws {
        let result = try await json([
            "dp", "calibrate", "--epsilon", "1", "--delta", "1e-5", "--sampling-rate", "0.01", "--steps", "1000",
        ])
        let sigma = try #require(result["noise_multiplier"] as? Double)
        // dp_accounting's calibrate_dp_mechanism gives 1.5131221642 (Vectors/dp).
        #expect(abs(sigma - 1.5131221642023396) < 2e-6)
        #expect((result["epsilon"] as! Double) <= 1)
        let back = try await json([
            "dp", "epsilon", "--sampling-rate", "0.01", "--noise-multiplier", "\(sigma)", "--steps", "1000",
            "--delta", "1e-5",
        ])
        #expect((back["epsilon"] as! Double) <= 1)
    }

    @Test func distributedMechanismsCalibrateToo() async throws {
        for mechanism in ["ddg", "skellam"] {
            let result = try await json([
                "dp", "calibrate", "--mechanism", mechanism, "--epsilon", "4", "--delta", "1e-5", "--sampling-rate",
                "1",
                "--steps", "50", "--participants", "10", "--dim", "650", "--bits", "20",
            ])
            #expect((result["epsilon"] as! Double) <= 4)
            #expect((result["scale_per_unit_clip"] as! Double) > 1000)
            // Without sampling the discrete mechanisms need almost exactly the Gaussian's noise.
            #expect(abs((result["noise_multiplier"] as! Double) - 8.185247) / 8.185247 < 0.01)
        }
    }

    @Test func badArgumentsAreRefusedWithTheReason() async throws {
        let output = try await VeilProcess.run([
            "dp", "epsilon", "--sampling-rate", "1.5", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5",
        ])
        #expect(output.status != 0 && output.stderr.contains("--sampling-rate must be in (0, 1]"))
        let missing = try await VeilProcess.run([
            "dp", "calibrate", "--delta", "1e-5", "--sampling-rate", "1", "--steps", "1",
        ])
        #expect(missing.status != 0 && missing.stderr.contains("--epsilon"))
    }

    @Test func simulateReportsTheBudgetPerRoundAndInTotal() async throws {
        let result = try await json([
            "simulate", "--dp", "ddg", "--epsilon", "4", "--rounds", "3", "--local-epochs", "2", "--secure-sum",
            "plain",
        ])
        let privacy = try #require(result["privacy"] as? [String: Any])
        #expect(privacy["mode"] as? String == "ddg")
        let spent = try #require(privacy["epsilon_spent"] as? Double)
        #expect(spent <= 4 && spent > 3.99)
        let rounds = try #require(result["rounds"] as? [[String: Any]])
        #expect(rounds.compactMap { $0["epsilon"] as? Double }.count == 3)
        #expect(rounds.last?["epsilon"] as? Double == spent)
        let refused = try await VeilProcess.run([
            "simulate", "--dp", "central", "--epsilon", "4", "--algorithm", "scaffold",
        ])
        #expect(refused.status != 0 && refused.stderr.contains("DP-FedAvg"))
        let noEpsilon = try await VeilProcess.run(["simulate", "--dp", "central"])
        #expect(noEpsilon.status != 0 && noEpsilon.stderr.contains("--epsilon"))
    }

    @Test func simulateRunsDPOverTheNetworkWhenEveryoneTakesPartEveryRound() async throws {
        let result = try await json([
            "simulate", "--dp", "skellam", "--epsilon", "4", "--rounds", "3", "--local-epochs", "2",
        ])
        #expect(result["transport"] as? String == "network")
        let privacy = try #require(result["privacy"] as? [String: Any])
        #expect(privacy["mode"] as? String == "skellam")
        let spent = try #require(privacy["epsilon_spent"] as? Double)
        #expect(spent <= 4 && spent > 3.99)
        let rounds = try #require(result["rounds"] as? [[String: Any]])
        #expect(rounds.compactMap { $0["epsilon"] as? Double }.count == 3)
        #expect(rounds.last?["epsilon"] as? Double == spent)
        // Poisson sampling (and its amplification) is the in-process engine's.
        let sampled = try await VeilProcess.run([
            "simulate", "--dp", "central", "--epsilon", "4", "--rounds", "2", "--fraction", "0.5",
        ])
        #expect(sampled.status == 0)
        #expect(sampled.stderr.contains("in-process: --dp with --fraction below 1"), "\(sampled.stderr)")
        let refused = try await VeilProcess.run([
            "simulate", "--dp", "central", "--epsilon", "4", "--rounds", "2", "--fraction", "0.5", "--transport",
            "network",
        ])
        #expect(refused.status == 64 && refused.stderr.contains("--fraction below 1"))
    }

    @Test func benchDPReportsSamplersBesideTheirWords() async throws {
        let result = try await json(["bench", "dp", "--dim", "64", "--repetitions", "1"])
        for name in ["discrete_gaussian", "skellam", "share"] {
            let entry = try #require(result[name] as? [String: Any])
            #expect((entry["words"] as! Int) >= 64)
            #expect((entry["ratio"] as! Double) > 0)
        }
    }
}
