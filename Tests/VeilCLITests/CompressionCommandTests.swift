import Foundation
import Testing
import VeilTestSupport

/// `veil simulate --compress-bits`, `--subset` and `--adaptive-compression` (Specs/export.md §5).
@Suite struct CompressionCommandTests {
    func summary(_ arguments: [String]) async throws -> [String: Any] {
        let output = try await VeilProcess.run(["simulate", "--rounds", "3", "--json"] + arguments)
        #expect(output.status == 0, "\(arguments): \(output.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
    }

    @Test func fewerBitsShrinkTheRingAndTheBytesInProcessAndOverTheNetwork() async throws {
        let full = try await summary(["--transport", "in-process", "--secure-sum", "secagg"])
        let eight = try await summary(["--transport", "in-process", "--secure-sum", "secagg", "--compress-bits", "8"])
        // 10 participants: 4 bits of headroom.
        #expect(full["payload_bits"] as? Int == 64 && eight["payload_bits"] as? Int == 12)
        let fullBytes = try #require(full["upload_bytes_per_round"] as? Double)
        let eightBytes = try #require(eight["upload_bytes_per_round"] as? Double)
        #expect(eightBytes < 0.5 * fullBytes, "\(eightBytes) against \(fullBytes)")
        let rounds = try #require(eight["rounds"] as? [[String: Any]])
        #expect(rounds.allSatisfy { $0["payload_bits"] as? Int == 12 && $0["subset"] as? Double == 1 })

        // Over the network the coordinator's ring is the same Z_2^12: fewer protocol bytes.
        let network = try await summary(["--compress-bits", "8"])
        let wide = try await summary([])
        let narrowIn = try #require((network["rounds"] as? [[String: Any]])?.first?["bytes_in"] as? Int)
        let wideIn = try #require((wide["rounds"] as? [[String: Any]])?.first?["bytes_in"] as? Int)
        #expect(
            network["transport"] as? String == "network" && narrowIn < wideIn * 7 / 10, "\(narrowIn) against \(wideIn)")
        let networkRounds = try #require(network["rounds"] as? [[String: Any]])
        #expect(networkRounds.allSatisfy { $0["payload_bits"] as? Int == 12 && $0["subset"] as? Double == 1 })

        // A quarter of the coordinates over the network: the coordinator sends each round's
        // public seed, every participant the same quarter, and the rounds carry fewer bytes.
        let quarter = try await summary(["--subset", "0.25"])
        let quarterRounds = try #require(quarter["rounds"] as? [[String: Any]])
        let quarterIn = try #require(quarterRounds.first?["bytes_in"] as? Int)
        #expect(quarter["transport"] as? String == "network" && quarter["completed_rounds"] as? Int == 3)
        #expect(quarterRounds.allSatisfy { abs(($0["subset"] as? Double ?? 0) - 0.25) < 0.01 }, "\(quarterRounds)")
        // Ten masked inputs of 164 values instead of 651, 8 bytes each; the rest of the protocol
        // (keys, shares, signatures) is the same.
        let saved = wideIn - quarterIn
        #expect(abs(saved - 10 * (651 - 164) * 8) < 1000, "\(quarterIn) against \(wideIn)")
    }

    /// A subset under distributed DP (Specs/export.md §5.4), in-process and over the network:
    /// each round sends a quarter of the coordinates under a mechanism for them, the run spends
    /// no more than its ε, and over the network the masked inputs shrink from 1,024 padded
    /// values to 256 (3 bytes each in Z_2^20, four participants).
    @Test func aSubsetRunsUnderDistributedDP() async throws {
        let arguments = ["--clients", "4", "--dp", "ddg", "--epsilon", "50"]
        var bytesIn: [Int] = []
        for transport in ["in-process", "network"] {
            for subset in ["0.25", "1"] {
                let run = try await summary(["--transport", transport, "--subset", subset] + arguments)
                let spent = try #require((run["privacy"] as? [String: Any])?["epsilon_spent"] as? Double)
                #expect(spent <= 50 * (1 + 1e-9) && spent > 49, "\(transport) \(subset): ε \(spent)")
                let rounds = try #require(run["rounds"] as? [[String: Any]])
                let fraction = subset == "1" ? 1 : 163.0 / 650
                #expect(
                    rounds.count == 3 && rounds.allSatisfy { abs(($0["subset"] as? Double ?? 0) - fraction) < 1e-9 })
                if transport == "network" {
                    #expect(rounds.allSatisfy { $0["payload_bits"] as? Int == 20 }, "\(rounds)")
                    bytesIn.append(try #require(rounds.first?["bytes_in"] as? Int))
                }
            }
        }
        #expect(bytesIn.count == 2 && bytesIn[1] - bytesIn[0] == 4 * (1024 - 256) * 3, "\(bytesIn)")
    }

    @Test func refusals() async throws {
        let cases: [([String], String)] = [
            (["--compress-bits", "1"], "--compress-bits must be in 2…56"),
            (
                ["--transport", "in-process", "--compress-bits", "2", "--dp", "central", "--epsilon", "8"],
                "--compress-bits is for runs without --dp"
            ),
            (["--compress-bits", "8", "--compress-clip", "0"], "--compress-clip must be positive"),
            (["--transport", "in-process", "--subset", "0"], "--subset must be in (0, 1]"),
            (["--transport", "in-process", "--subset", "0.5", "--algorithm", "scaffold"], "not scaffold"),
            (["--transport", "network", "--adaptive-compression", "8"], "--adaptive-compression is simulated"),
            (["--transport", "in-process", "--adaptive-compression", "8"], "give --devices and --deadline"),
            (["--transport", "in-process", "--adaptive-compression", "x"], "--adaptive-compression B[:F]"),
            (
                ["--transport", "in-process", "--adaptive-compression", "8", "--compress-bits", "8"],
                "not with --compress-bits"
            ),
        ]
        for (arguments, message) in cases {
            let output = try await VeilProcess.run(["simulate", "--rounds", "1"] + arguments)
            #expect(output.status == 64, "\(arguments): \(output.status) \(output.stderr)")
            #expect(output.stderr.contains(message), "\(arguments): \(output.stderr)")
        }
    }
}
