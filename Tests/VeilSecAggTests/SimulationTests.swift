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

    /// The masks are folded chunk by chunk, the vector split among the workers: one, two or
    /// three of them (splits that do and do not fall on the vector's end) send the same masked
    /// inputs, and the server removes the masks to the same sum, with a dropout to rebuild.
    @Test func theSplitAmongWorkersChangesNoMessageAndNoSum() throws {
        var configuration = SecAggSimulation.Configuration(
            parameters: try parameters(n: 5, t: 3, bits: 24, d: 3 * 1_024 + 5), seed: seed(4),
            forcedDrops: [ParticipantID(3): .maskedInputCollection], recordsTranscript: true)
        configuration.workers = 1
        let reference = try SecAggSimulation.run(configuration)
        #expect(reference.sumCorrect)
        #expect(reference.result?.survivors.count == 4)
        for workers in [2, 3, 8] {
            configuration.workers = workers
            let report = try SecAggSimulation.run(configuration)
            #expect(report.sumCorrect)
            #expect(report.result?.sum == reference.result?.sum, "\(workers) workers")
            #expect(report.transcript.map(\.encoded) == reference.transcript.map(\.encoded), "\(workers) workers")
        }
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

    /// The session of `configuration` with participant `rogue`'s R4 message replaced by one
    /// whose every share is wrong, signed with its own key (a rogue participant, not the
    /// network); the clean run must complete exactly.
    func runWithWrongShares(from rogue: UInt32, _ configuration: SecAggSimulation.Configuration) throws
        -> SecAggSimulation.Report
    {
        var configuration = configuration
        configuration.recordsTranscript = true
        let clean = try SecAggSimulation.run(configuration)
        #expect(clean.sumCorrect && clean.wrongShares.isEmpty)
        let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
        let index = try #require(clean.transcript.firstIndex { $0.round == .unmasking && $0.sender == rogue })
        let honest = try SignedMessage(encoded: clean.transcript[index].encoded)
        let forged = SecAggForgery.resigned(
            honest, body: try SecAggForgery.unmaskingBodyWithWrongShares(honest.body),
            by: cast.clientKeys[Int(rogue) - 1])
        configuration.substitution = .init(transcriptIndex: index, deliveries: [forged.encoded], continues: true)
        return try SecAggSimulation.run(configuration)
    }

    /// The audit's finding: one participant revealing a wrong share in R4 aborted the round
    /// (the server used the t lowest-indexed shares and gave up on a mismatch). Participant 3
    /// reveals a wrong share of every secret it holds, signed with its own key; participant 6
    /// drops before its masked input, so a masking key is reconstructed too. The shares are not
    /// what their owners endorsed: participant 3 is dropped from R4 and named — proven, by its
    /// own R4 message — and the round completes from the others' shares with the exact sum.
    @Test func aWrongShareRevealedInR4IsRefusedAndNamed() throws {
        let report = try runWithWrongShares(
            from: 3,
            .init(
                parameters: try parameters(n: 7, t: 4), seed: seed(9),
                forcedDrops: [ParticipantID(6): .maskedInputCollection]))
        #expect(report.abort == nil, "\(String(describing: report.abort))")
        #expect(report.sumCorrect)
        #expect(report.result?.survivors.map(\.rawValue) == [1, 2, 3, 4, 5, 7])
        // Named at its first unendorsed share (participant 1's seed), with its R4 message.
        #expect(report.wrongShares.map(\.holder) == [ParticipantID(3)])
        #expect(report.wrongShares.map(\.owner) == [ParticipantID(1)])
        let evidence = try #require(report.attributions.first)
        #expect(evidence.fault.isProven && evidence.messages.map(\.round) == [.unmasking])
        #expect(evidence.messages.first?.sender == 3)
    }

    /// A wrong share its owner endorsed: the owner dealt holder 3 a share off its polynomial
    /// (here participant 1, re-endorsing what 3 reveals). Decoding sets it aside and the round
    /// completes; the owner, not the holder, is named — its endorsement proves it dealt it.
    /// Beyond what decoding corrects (n = 5, t = 4: e = 0) the round ends as a mismatch, never a
    /// wrong sum, and the owner is named all the same.
    @Test func aWrongShareItsOwnerEndorsedNamesTheOwner() throws {
        for (n, completes) in [(7, true), (5, false)] {
            var configuration = SecAggSimulation.Configuration(
                parameters: try parameters(n: n, t: 4), seed: seed(UInt8(20 + n)))
            configuration.recordsTranscript = true
            let clean = try SecAggSimulation.run(configuration)
            let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
            let index = try #require(clean.transcript.firstIndex { $0.round == .unmasking && $0.sender == 3 })
            let honest = try SignedMessage(encoded: clean.transcript[index].encoded)
            let body = try SecAggForgery.unmaskingBody(
                honest.body, withWrongShareEndorsedBy: cast.clientKeys[0], owner: ParticipantID(1),
                sessionID: cast.session.id)
            let forged = SecAggForgery.resigned(honest, body: body, by: cast.clientKeys[2])
            configuration.substitution = .init(transcriptIndex: index, deliveries: [forged.encoded], continues: true)
            let report = try SecAggSimulation.run(configuration)
            #expect(report.wrongShares.isEmpty)
            #expect(
                report.attributions.map { "\($0.fault):\($0.participant.rawValue)" } == ["inconsistentSecret:1"],
                "n = \(n)")
            if completes {
                #expect(report.sumCorrect && report.abort == nil, "\(String(describing: report.abort))")
            } else {
                #expect(report.result == nil)
                #expect(report.abort?.reason.code == "reconstructionMismatch", "\(String(describing: report.abort))")
            }
        }
    }
}
