import VeilCore
import VeilCrypto

/// The masking backend of ``SecureSum``: each round is a whole secure-aggregation session
/// among the round's participants, run in this process with the parameters `Specs/secagg.md`
/// recommends for their number under the threat model.
public struct SecAggSecureSum: SecureSum {
    public let threatModel: ThreatModel
    /// The probability that a participant goes offline in each of `dropRounds`.
    public let dropoutProbability: Double
    public let dropRounds: Set<SecAggRound>
    public let seed: UInt64

    public var name: String { "secagg" }
    public var hidesIndividualContributions: Bool { true }

    public init(
        threatModel: ThreatModel = .malicious, dropoutProbability: Double = 0,
        dropRounds: Set<SecAggRound> = Set(SecAggRound.allCases), seed: UInt64 = 0
    ) {
        self.threatModel = threatModel
        self.dropoutProbability = dropoutProbability
        self.dropRounds = dropRounds
        self.seed = seed
    }

    public mutating func sum(_ contributions: [ParticipantID: ModularVector], round: Int) throws -> SecureSumResult {
        guard let first = contributions.values.first else { throw SecureSumError.noContributions }
        let cohort = contributions.keys.sorted()
        guard cohort.count >= 2 else {
            throw SecureSumError.tooFewSurvivors("secure aggregation needs at least 2 participants")
        }
        let parameters = try SecAggParameters.recommended(
            clientCount: cohort.count, bitWidth: first.bitWidth, dimension: first.count, threatModel: threatModel)
        var context = ByteWriter()
        context.raw(Array("veil/v1/secagg/secure-sum".utf8) + [0])
        context.u32(UInt32(truncatingIfNeeded: seed))
        context.u32(UInt32(truncatingIfNeeded: seed >> 32))
        context.u32(UInt32(truncatingIfNeeded: round))
        let report = try SecAggSimulation.run(
            .init(
                parameters: parameters, seed: SHA256.hash(context.bytes), dropoutProbability: dropoutProbability,
                dropRounds: dropRounds, inputs: cohort.map { contributions[$0]! }))
        guard let result = report.result else {
            throw SecureSumError.tooFewSurvivors(report.abort.map(\.description) ?? "no result")
        }
        return SecureSumResult(sum: result.sum, survivors: result.survivors.map { cohort[Int($0.rawValue) - 1] })
    }
}
