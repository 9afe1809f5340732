import Foundation
import Testing
import VeilTestSupport

@Suite struct SecAggCommandTests {
    func json(_ output: VeilProcess.Output) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
    }

    @Test func simulateReportsAnExactSumAndPerRoundFigures() async throws {
        let output = try await VeilProcess.run([
            "secagg", "simulate", "--clients", "12", "--dim", "40", "--threshold", "4", "--dropout", "0.1",
            "--threat-model", "honest-but-curious", "--drop-round", "2",
            "--drop-round", "4", "--seed", "5", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try json(output)
        #expect(object["sum_correct"] as? Bool == true)
        #expect(object["aborted"] as? Bool == false)
        #expect(object["abort_reason"] is NSNull)
        let survivors = try #require(object["survivors"] as? [Int])
        #expect(survivors.count == object["survivor_count"] as? Int)
        #expect((4...12).contains(survivors.count))
        let rounds = try #require(object["rounds"] as? [[String: Any]])
        #expect(
            rounds.map { $0["name"] as? String } == [
                "R0AdvertiseKeys", "R1ShareKeys", "R2MaskedInputCollection", "R3ConsistencyCheck", "R4Unmasking",
            ])
        #expect(rounds.allSatisfy { ($0["bytes_to_server"] as? Int ?? 0) > 0 })
    }

    @Test func aRoundThatLosesTooManyParticipantsIsACorrectAbort() async throws {
        let output = try await VeilProcess.run([
            "secagg", "simulate", "--clients", "4", "--dim", "5", "--threshold", "4", "--dropout", "0.9",
            "--drop-round", "1",
            "--seed", "2", "--json",
        ])
        #expect(output.status == 0)
        let object = try json(output)
        #expect(object["aborted"] as? Bool == true)
        #expect(object["sum_correct"] as? Bool == false)
        #expect(object["abort_code"] as? String == "tooFewSurvivors")
        #expect((object["abort_reason"] as? String)?.contains("needed") == true)
    }

    @Test func textOutputEndsWithTheVerdict() async throws {
        let output = try await VeilProcess.run(["secagg", "simulate", "--clients", "6", "--dim", "10", "--seed", "3"])
        #expect(output.status == 0)
        #expect(output.stdout.hasPrefix("secure aggregation: n = 6"))
        #expect(output.stdout.hasSuffix("result: sum exact over 6 of 6 participants\n"))
    }

    @Test func refusesAThresholdBelowTheThreatModel() async throws {
        let output = try await VeilProcess.run([
            "secagg", "simulate", "--clients", "20", "--threshold", "3", "--threat-model", "malicious",
            "--corrupt-fraction", "0.1",
        ])
        #expect(output.status == 64)
        #expect(output.stderr.contains("threshold 3 is below the minimum 12"))
    }

    @Test func parametersPrintsTheRecommendedGraph() async throws {
        // The default is a malicious server (what participants assume): the complete graph.
        let malicious = try json(try await VeilProcess.run(["secagg", "parameters", "--clients", "1000", "--json"]))
        #expect(malicious["neighbors"] as? Int == 999)
        #expect(malicious["threshold"] as? Int == 526)
        #expect(malicious["corrupt_count"] as? Int == 50)
        let output = try await VeilProcess.run([
            "secagg", "parameters", "--clients", "1000", "--threat-model", "honest-but-curious", "--json",
        ])
        #expect(output.status == 0)
        let object = try json(output)
        #expect(object["neighbors"] as? Int == 72)
        #expect(object["threshold"] as? Int == 24)
    }

    @Test func smallCohortsAndSampledCohortsCountCorruptParticipantsHonestly() async throws {
        // n = 3 at γ = 5%: n_C = 1, never 0, so t = 2 even for an honest-but-curious server.
        let small = try await VeilProcess.run([
            "secagg", "parameters", "--clients", "3", "--threat-model", "honest-but-curious",
        ])
        #expect(small.stdout.hasPrefix("n = 3: k = 2 (complete graph), t = 2, n_C = 1"), "\(small.stdout)")
        // A uniform cohort of 100 from 10,000 with 5% corrupt holds more than 5 of them with
        // probability far above 2^-40: the tail is 26.
        let sampled = try json(
            try await VeilProcess.run([
                "secagg", "parameters", "--clients", "100", "--threat-model", "honest-but-curious", "--population",
                "10000", "--json",
            ]))
        #expect(sampled["corrupt_count"] as? Int == 26)
        #expect((sampled["threat_model"] as? String)?.contains("of a population of 10000") == true)
    }

    @Test func benchSecAggReportsTimesBesideTheKeystream() async throws {
        let output = try await VeilProcess.run([
            "bench", "secagg", "--clients", "8", "--dim", "2000", "--dropout", "0.2", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try json(output)
        let times = [
            "client_mask_seconds", "client_keystream_seconds", "client_r2_seconds", "server_unmask_seconds",
            "server_keystream_seconds",
        ]
        for key in times + times.map { $0 + "_one_core" } + ["shamir_seconds"] {
            #expect((object[key] as? Double ?? -1) > 0, "\(key)")
        }
        // Each ratio is its time over the keystream on as many cores.
        for (ratio, time, keystream) in [
            ("client_ratio", "client_mask_seconds", "client_keystream_seconds"),
            ("client_r2_ratio", "client_r2_seconds", "client_keystream_seconds"),
            ("server_ratio", "server_unmask_seconds", "server_keystream_seconds"),
        ] {
            for suffix in ["", "_one_core"] {
                let expected = (object[time + suffix] as? Double ?? 0) / (object[keystream + suffix] as? Double ?? 1)
                #expect(abs((object[ratio + suffix] as? Double ?? -1) - expected) < 1e-9, "\(ratio + suffix)")
            }
        }
        #expect(object["client_masks"] as? Int == 8)
        #expect((object["workers"] as? Int ?? 0) >= 1)
    }
}
