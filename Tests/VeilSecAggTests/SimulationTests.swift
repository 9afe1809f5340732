import Testing
import VeilCore
import VeilCrypto
import VeilSecAgg
import VeilTestSupport

/// A threat model that accepts any threshold from 2 (nobody corrupt but the floor of one, no dropouts): for exercising the protocol's mechanics.
let permissive = try! ThreatModel(adversary: .honestButCuriousServer, corruptFraction: 0, dropoutFraction: 0)

func parameters(n: Int, t: Int, k: Int? = nil, bits: Int = 32, d: Int = 16, model: ThreatModel = permissive) throws
    -> SecAggParameters
{
    try SecAggParameters(
        clientCount: n, threshold: t, neighborCount: k ?? n - 1, bitWidth: BitWidth(bits), dimension: d,
        threatModel: model)
}

func seed(_ value: UInt8) -> [UInt8] { [UInt8](repeating: value, count: 32) }

@Suite struct SimulationTests {
    @Test func completesWithTheExactSumWithoutDropouts() throws {
        let report = try SecAggSimulation.run(.init(parameters: parameters(n: 5, t: 3), seed: seed(1)))
        #expect(report.abort == nil, "\(String(describing: report.abort))")
        #expect(report.sumCorrect)
        #expect(report.result?.survivors.map(\.rawValue) == [1, 2, 3, 4, 5])
        #expect(report.clientAborts.isEmpty)
    }

    @Test(arguments: SecAggRound.allCases)
    func toleratesADropoutInEveryRound(_ round: SecAggRound) throws {
        let config = SecAggSimulation.Configuration(
            parameters: try parameters(n: 6, t: 3), seed: seed(2), forcedDrops: [ParticipantID(2): round])
        let report = try SecAggSimulation.run(config)
        #expect(report.abort == nil, "\(String(describing: report.abort))")
        #expect(report.sumCorrect)
        let included = report.result?.survivors.contains(ParticipantID(2)) ?? false
        // Dropping after the masked input was sent keeps the input in the sum.
        #expect(included == (round >= .consistencyCheck))
    }
}

@Suite struct SparseGraphSimulationTests {
    @Test func sparseGraphWithDropoutsInEveryRound() throws {
        let config = SecAggSimulation.Configuration(
            parameters: try parameters(n: 60, t: 6, k: 14, d: 50), seed: seed(3), dropoutProbability: 0.05,
            dropRounds: Set(SecAggRound.allCases))
        let report = try SecAggSimulation.run(config)
        #expect(report.abort == nil, "\(String(describing: report.abort))")
        #expect(report.sumCorrect)
        #expect(!report.offline.isEmpty)
        #expect((report.result?.survivors.count ?? 0) < 60)
    }
}
