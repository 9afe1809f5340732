import Testing
import VeilCore
import VeilCrypto
import VeilSecAgg
import VeilTestSupport

/// Complaints in R2 (`Specs/secagg.md` §6.4): the audit's finding was that one participant
/// sending garbage shares in R1 made every neighbour abort in R2, so that nobody learned who
/// it was and the round could not complete.
@Suite struct ComplaintTests {
    /// A clean run, recorded, and the cast that made it.
    func recorded(_ configuration: SecAggSimulation.Configuration) throws -> (
        SecAggSimulation.Report, SecAggSimulation.Cast
    ) {
        var configuration = configuration
        configuration.recordsTranscript = true
        let clean = try SecAggSimulation.run(configuration)
        #expect(clean.sumCorrect && clean.attributions.isEmpty)
        return (clean, try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed))
    }

    /// The run again, with `sender`'s message of `round` replaced by `forge(honest)`.
    func substituting(
        _ round: SecAggRound, from sender: UInt32, _ configuration: SecAggSimulation.Configuration,
        _ forge: (SignedMessage, SecAggSimulation.Cast) throws -> SignedMessage
    ) throws -> SecAggSimulation.Report {
        let (clean, cast) = try recorded(configuration)
        let index = try #require(clean.transcript.firstIndex { $0.round == round && $0.sender == sender })
        let honest = try SignedMessage(encoded: clean.transcript[index].encoded)
        var configuration = configuration
        configuration.substitution = .init(
            transcriptIndex: index, deliveries: [try forge(honest, cast).encoded], continues: true)
        return try SecAggSimulation.run(configuration)
    }

    /// Participant 3 signs garbage ciphertexts for `recipients` (everyone when nil).
    func garbageShares(to recipients: Set<UInt32>?, n: Int = 7, t: Int = 4) throws -> SecAggSimulation.Report {
        try substituting(.shareKeys, from: 3, .init(parameters: try parameters(n: n, t: t), seed: seed(21))) {
            honest, cast in
            let key = cast.clientKeys[2]
            return SecAggForgery.resigned(
                honest,
                body: try SecAggForgery.shareKeysBodyWithGarbageShares(
                    honest.body, sessionID: cast.session.id, sender: 3, recipients: recipients, by: key),
                by: key)
        }
    }

    @Test func aRogueSendingGarbageSharesToEveryoneIsConvictedAndTheRoundCompletes() throws {
        let report = try garbageShares(to: nil)
        #expect(report.abort == nil, "\(String(describing: report.abort))")
        #expect(report.clientAborts.isEmpty, "\(report.clientAborts)")
        #expect(report.sumCorrect)
        #expect(report.result?.survivors.map(\.rawValue) == [1, 2, 4, 5, 6, 7])
        #expect(report.attributions.map(\.fault) == [.invalidShares])
        #expect(report.attributions.map(\.participant) == [ParticipantID(3)])
        #expect(report.dropped.map { $0.2.code } == ["convicted"])
    }

    /// Garbage to two of six: the other four hold valid shares of its masking key, which the
    /// server reconstructs to take its masks with them out of the sum; the two complainers
    /// never masked with it.
    @Test func garbageToSomeNeighboursStillCompletes() throws {
        let report = try garbageShares(to: [1, 2])
        #expect(report.abort == nil, "\(String(describing: report.abort))")
        #expect(report.sumCorrect)
        #expect(report.result?.survivors.map(\.rawValue) == [1, 2, 4, 5, 6, 7])
        #expect(report.attributions.map(\.participant) == [ParticipantID(3)])
    }

    /// The limit, stated: valid shares to fewer than t neighbours (here one) leave the masks
    /// of those few with the rogue unremovable. The attempt aborts — but the rogue is
    /// convicted with evidence first, and the coordinator excludes it from later attempts.
    @Test func validSharesToFewerThanTNeighboursAbortTheAttemptButConvict() throws {
        let report = try garbageShares(to: [2, 4, 5, 6, 7])
        #expect(report.abort?.reason.code == "cannotReconstruct", "\(String(describing: report.abort))")
        #expect(report.attributions.map(\.participant) == [ParticipantID(3)])
    }

    @Test func theEvidenceConvictsOffline() throws {
        let report = try garbageShares(to: nil)
        let cast = try SecAggSimulation.Cast(parameters: try parameters(n: 7, t: 4), seed: seed(21))
        let evidence = try #require(report.attributions.first)
        #expect(evidence.verify(in: cast.session))
        let decoded = try SecAggEvidence(decoding: evidence.encoded)
        #expect(decoded == evidence)
        // Naming the complainer instead, or another session, does not verify.
        var blamed = evidence
        blamed.participant = evidence.counterpart
        #expect(!blamed.verify(in: cast.session))
        let other = try SecAggSimulation.Cast(parameters: try parameters(n: 7, t: 4), seed: seed(22))
        #expect(!evidence.verify(in: other.session))
        // One changed byte of the proof, or of the revealed element, fails.
        guard case .undecryptable(let shared, let proof)? = evidence.complaint?.evidence else {
            Issue.record("expected a proved complaint: \(String(describing: evidence.complaint))")
            return
        }
        var bent = evidence
        var element = shared
        element[0] ^= 1
        bent.complaint?.evidence = .undecryptable(shared: element, proof: proof)
        #expect(!bent.verify(in: cast.session))
        var bytes = proof.rawRepresentation
        bytes[40] ^= 1
        bent.complaint?.evidence = .undecryptable(shared: shared, proof: try EqualityProof(rawRepresentation: bytes))
        #expect(!bent.verify(in: cast.session))
    }

    /// The attack the design must stop: a server that changes a ciphertext it forwards, to
    /// make the recipient reveal the key of that pair (and so, pair by pair, open everything
    /// it holds and sent). The recipient reports the entry as unsigned and reveals nothing.
    @Test func aServerTamperedShareIsReportedWithoutRevealingTheKey() throws {
        let configuration = SecAggSimulation.Configuration(
            parameters: try parameters(n: 5, t: 3), seed: seed(23), recordsTranscript: true)
        let clean = try SecAggSimulation.run(configuration)
        let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
        let index = try #require(
            clean.transcript.firstIndex { $0.round == .maskedInputCollection && $0.recipient == 1 })
        let forward = try SignedMessage(encoded: clean.transcript[index].encoded)
        let tampered = SecAggForgery.resigned(
            forward, body: try SecAggForgery.sharesForwardBodyWithFlippedCiphertext(forward.body), by: cast.serverKey)
        var substituted = configuration
        substituted.substitution = .init(transcriptIndex: index, deliveries: [tampered.encoded])
        let report = try SecAggSimulation.run(substituted)
        guard case .participant(let actions)? = report.substitutionOutcome, case .send(let reply)? = actions.first
        else {
            Issue.record("participant 1 did not answer: \(String(describing: report.substitutionOutcome))")
            return
        }
        let complaints = try SecAggForgery.complaints(inMaskedInput: reply.body)
        #expect(complaints == [ShareComplaint(accused: 2, evidence: .unsigned)])
    }

    /// A participant that complains about honest shares is dropped and named; the round goes on.
    @Test func aFalseComplaintCostsTheComplainer() throws {
        let report = try substituting(
            .maskedInputCollection, from: 2, .init(parameters: try parameters(n: 7, t: 4), seed: seed(24))
        ) { honest, cast in
            SecAggForgery.resigned(
                honest,
                body: try SecAggForgery.maskedInputBody(
                    honest.body, adding: ShareComplaint(accused: 5, evidence: .unsigned)),
                by: cast.clientKeys[1])
        }
        #expect(report.abort == nil, "\(String(describing: report.abort))")
        #expect(report.sumCorrect)
        #expect(report.result?.survivors.map(\.rawValue) == [1, 3, 4, 5, 6, 7])
        #expect(report.attributions.map(\.fault) == [.falseComplaint])
        #expect(report.attributions.map(\.participant) == [ParticipantID(2)])
        let cast = try SecAggSimulation.Cast(parameters: try parameters(n: 7, t: 4), seed: seed(24))
        #expect(try #require(report.attributions.first).verify(in: cast.session))
    }

    /// A complaint whose proof does not verify also costs the complainer, and reveals nothing
    /// about the accused.
    @Test func aComplaintWithABadProofCostsTheComplainer() throws {
        let report = try substituting(
            .maskedInputCollection, from: 2, .init(parameters: try parameters(n: 7, t: 4), seed: seed(25))
        ) { honest, cast in
            let bogus = ShareComplaint(
                accused: 5,
                evidence: .undecryptable(
                    shared: Ristretto255.PrivateKey().publicKey.rawRepresentation,
                    proof: try EqualityProof(rawRepresentation: [UInt8](repeating: 1, count: EqualityProof.byteCount))))
            return SecAggForgery.resigned(
                honest, body: try SecAggForgery.maskedInputBody(honest.body, adding: bogus), by: cast.clientKeys[1])
        }
        #expect(report.abort == nil)
        #expect(report.sumCorrect)
        #expect(report.attributions.map(\.fault) == [.invalidComplaint])
        #expect(report.dropped.map { $0.2.code } == ["invalidComplaint"])
    }
}
