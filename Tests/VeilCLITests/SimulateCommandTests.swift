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
