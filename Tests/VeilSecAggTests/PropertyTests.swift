import Testing
import VeilCore
import VeilCrypto
import VeilSecAgg
import VeilTestSupport

@Suite struct PropertyTests {
    /// A random session: n, a valid k, any 2 ≤ t ≤ k + 1, d, b, and for each participant either no
    /// dropout or a random round to go offline in.
    static func randomConfiguration(_ generator: inout SplitMix64) throws -> SecAggSimulation.Configuration {
        let n = Int(generator.next() % 10) + 3
        // k ≥ 2: a 1-regular graph is a set of pairs, whose sums a server would learn (and validation refuses it).
        var k = Int(generator.next() % UInt64(n - 2)) + 2
        if k % 2 == 1 && n % 2 == 1 && k != n - 1 { k += 1 }
        let t = Int(generator.next() % UInt64(k)) + 2  // 2 ≤ t ≤ k + 1
        let d = Int(generator.next() % 20) + 1
        let bits = Int(generator.next() % 64) + 1
        var drops: [ParticipantID: SecAggRound] = [:]
        for id in 1...n where generator.next() % 4 == 0 {
            drops[ParticipantID(UInt32(id))] = SecAggRound(rawValue: UInt8(generator.next() % 5))!
        }
        var seedBytes = [UInt8](repeating: 0, count: 32)
        for i in 0..<8 { seedBytes[i] = UInt8(truncatingIfNeeded: generator.next()) }
        return .init(
            parameters: try parameters(n: n, t: t, k: k, bits: bits, d: d), seed: seedBytes, forcedDrops: drops)
    }

    @Test(arguments: 0..<8)
    func exactSumOrAnAbortBecauseTooFewRemain(_ batch: Int) async throws {
        var generator = SplitMix64(seed: UInt64(batch) &* 0x9e37_79b9)
        let configurations = try (0..<25).map { _ in try Self.randomConfiguration(&generator) }
        // The runs return (none hangs); they run off the test pool (OffPool.swift).
        let reports = try await offCooperativePool { try configurations.map(SecAggSimulation.run) }
        for (configuration, report) in zip(configurations, reports) {
            let p = configuration.parameters
            if let result = report.result {
                #expect(report.sumCorrect, "wrong sum: \(p), drops \(configuration.forcedDrops)")
                // Only participants that sent their masked input can be in the sum.
                for id in result.survivors {
                    if let round = configuration.forcedDrops[id] { #expect(round > .maskedInputCollection) }
                }
                #expect(result.survivors.count >= p.threshold)
            } else {
                let reason = try #require(report.abort).reason
                switch reason {
                case .tooFewSurvivors(let have, let need), .cannotReconstruct(_, let have, let need):
                    #expect(have < need)
                default:
                    Issue.record("unexpected abort \(reason): \(p), drops \(configuration.forcedDrops)")
                }
                #expect(!configuration.forcedDrops.isEmpty || p.neighborCount < p.clientCount - 1)
            }
            // Participants abort only because their neighbourhood fell below t.
            for (_, abort) in report.clientAborts {
                guard case .notEnoughNeighbors(let have, let need) = abort.reason else {
                    Issue.record("participant abort \(abort)")
                    continue
                }
                #expect(have < need)
            }
        }
    }

    @Test func withoutDropoutsEveryValidSessionCompletes() async throws {
        var generator = SplitMix64(seed: 77)
        let configurations = try (0..<40).map { _ in
            var configuration = try Self.randomConfiguration(&generator)
            configuration.forcedDrops = [:]
            return configuration
        }
        let reports = try await offCooperativePool { try configurations.map(SecAggSimulation.run) }
        for (configuration, report) in zip(configurations, reports) {
            #expect(report.sumCorrect, "\(configuration.parameters)")
            #expect(report.result?.survivors.count == configuration.parameters.clientCount)
        }
    }

    @Test func sameSeedSameTranscriptDifferentSeedDifferentBytes() throws {
        var configuration = SecAggSimulation.Configuration(
            parameters: try parameters(n: 6, t: 3, k: 4), seed: seed(5),
            forcedDrops: [ParticipantID(3): .maskedInputCollection],
            recordsTranscript: true)
        let first = try SecAggSimulation.run(configuration).transcript
        let second = try SecAggSimulation.run(configuration).transcript
        #expect(first == second)
        #expect(first.count > 30)
        configuration.seed = seed(6)
        let other = try SecAggSimulation.run(configuration).transcript
        #expect(zip(first, other).allSatisfy { $0.encoded != $1.encoded })
    }

    @Test func randomDropoutsAtScaleOnARecommendedGraph() async throws {
        let model = try ThreatModel(adversary: .honestButCuriousServer, corruptFraction: 0.05, dropoutFraction: 0.1)
        let p = try SecAggParameters.recommended(
            clientCount: 300, bitWidth: BitWidth(20), dimension: 4, threatModel: model)
        #expect(!p.isCompleteGraph)
        let report = try await offCooperativePool {
            try SecAggSimulation.run(
                .init(parameters: p, seed: seed(9), dropoutProbability: 0.02, dropRounds: Set(SecAggRound.allCases)))
        }
        #expect(report.sumCorrect)
        #expect(report.offline.count > 0)
    }
}
