import Foundation
import VeilCore
import VeilCrypto

/// The masking backend of ``SecureSum``: each round is a whole secure-aggregation session
/// among the round's participants, run in this process with the parameters `Specs/secagg.md`
/// recommends for their number under the threat model (by default the malicious model that
/// participants assume).
public struct SecAggSecureSum: SecureSum {
    public let threatModel: ThreatModel
    /// The probability that a participant goes offline in each of `dropRounds`.
    public let dropoutProbability: Double
    public let dropRounds: Set<SecAggRound>
    public let seed: UInt64

    public var name: String { "secagg" }
    public var hidesIndividualContributions: Bool { true }

    /// Five exchanges (R0–R4) and, besides the masked vector, two public keys and a signature
    /// (R0), an encrypted pair of shares for each peer (R1), a signature (R3) and a share for
    /// each peer (R4) — `Specs/orchestration.md` §1.3 gives the byte counts.
    public func uploadCost(elements: Int, bitWidth: BitWidth, cohort: Int) -> UploadCost {
        let peers = max(cohort - 1, 0)
        return UploadCost(bytes: elements * bitWidth.byteCount + 128 + 120 * peers + 64 + 40 * peers, exchanges: 5)
    }

    /// - Parameter threatModel: nil: a malicious server with 5% corrupt participants (what a
    ///   participant assumes by default) and the dropout fraction the simulation will cause,
    ///   1 − (1 − p)^|dropRounds|.
    public init(
        threatModel: ThreatModel? = nil, dropoutProbability: Double = 0,
        dropRounds: Set<SecAggRound> = Set(SecAggRound.allCases), seed: UInt64 = 0
    ) {
        let expected = 1 - pow(1 - min(max(dropoutProbability, 0), 1), Double(dropRounds.count))
        self.threatModel =
            threatModel
            ?? (try? ThreatModel(
                adversary: .maliciousServer, corruptFraction: 0.05, dropoutFraction: min(expected, 0.9)))
            ?? .malicious
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
                // cohort is the sorted keys of contributions.
                dropRounds: dropRounds, inputs: cohort.map { contributions[$0]! }))
        guard let result = report.result else {
            throw SecureSumError.tooFewSurvivors(report.abort.map(\.description) ?? "no result")
        }
        return SecureSumResult(sum: result.sum, survivors: result.survivors.map { cohort[Int($0.rawValue) - 1] })
    }
}
