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
        #expect(report.attributions.map(\.fault) == [.falseReport])
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

    /// CI's fuzz smoke found this one: a complaint cut short inside its proof trapped the server
    /// (the short read sat inside a `try!`), so one participant could crash the coordinator.
    /// The sender is now dropped as malformed and the round completes without it.
    @Test func aComplaintCutShortInItsProofDropsOnlyItsSender() throws {
        let report = try substituting(
            .maskedInputCollection, from: 2, .init(parameters: try parameters(n: 7, t: 4), seed: seed(26))
        ) { honest, cast in
            var body: [UInt8] = [1, 0, 0, 0, 5, 0, 0, 0, 1]  // one complaint about 5, with evidence
            body += Ristretto255.PrivateKey().publicKey.rawRepresentation
            body += [UInt8](repeating: 7, count: EqualityProof.byteCount - 1)  // one byte short
            return SecAggForgery.resigned(honest, body: body, by: cast.clientKeys[1])
        }
        #expect(report.abort == nil)
        #expect(report.sumCorrect)
        #expect(report.dropped.map { $0.0.rawValue } == [2])
        #expect(report.dropped.map { $0.2.code } == ["malformed"])
    }

    /// Every prefix of a body holding an evidence complaint either decodes or throws.
    @Test func everyPrefixOfAComplaintDecodesOrThrows() throws {
        let complaint = ShareComplaint(
            accused: 5,
            evidence: .undecryptable(
                shared: Ristretto255.PrivateKey().publicKey.rawRepresentation,
                proof: try EqualityProof(rawRepresentation: [UInt8](repeating: 1, count: EqualityProof.byteCount))))
        let full = try SecAggForgery.maskedInputBody([0, 0, 0, 0], adding: complaint)
        var refused = 0
        for length in 0..<full.count {
            do { _ = try SecAggForgery.complaints(inMaskedInput: Array(full.prefix(length))) } catch { refused += 1 }
        }
        #expect(refused == full.count)  // every proper prefix is short of the one complaint it counts
        #expect(try SecAggForgery.complaints(inMaskedInput: full) == [complaint])
    }
}

/// The review's attacks on complaints (an attacker session's findings), each now refused.
@Suite struct ComplaintReviewTests {
    /// F1, a break of privacy: a rogue advertised an honest participant's encryption key
    /// (or a multiple of it) and signed garbage; every complainer then revealed K = c_u·C_x —
    /// the element of the pair (u, x) — and the server opened t of x's shares of both secrets.
    /// A key now comes with a proof that its owner knows its logarithm, bound to the owner's
    /// position: the copied key (with x's own proof) is refused in R0.
    @Test func aCopiedEncryptionKeyIsRefusedInR0() throws {
        let configuration = SecAggSimulation.Configuration(
            parameters: try parameters(n: 5, t: 3), seed: seed(71), recordsTranscript: true)
        let clean = try SecAggSimulation.run(configuration)
        let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
        let index = try #require(clean.transcript.firstIndex { $0.round == .advertiseKeys && $0.sender == 5 })
        let target = try SignedMessage(
            encoded: try #require(clean.transcript.first { $0.round == .advertiseKeys && $0.sender == 1 }).encoded)
        let honest = try SignedMessage(encoded: clean.transcript[index].encoded)
        let forged = SecAggForgery.resigned(
            honest, body: try SecAggForgery.advertiseKeysBody(honest.body, copyingEncryptionKeyOf: target.body),
            by: cast.clientKeys[4])
        var substituted = configuration
        substituted.substitution = .init(transcriptIndex: index, deliveries: [forged.encoded])
        let report = try SecAggSimulation.run(substituted)
        guard case .server(let deliveries)? = report.substitutionOutcome else {
            Issue.record("the server did not receive it: \(String(describing: report.substitutionOutcome))")
            return
        }
        #expect(deliveries.last?.contains(.dropped(ParticipantID(5), .invalidKeyProof)) == true, "\(deliveries)")
    }

    /// F2, framing: evidence of a false complaint used to be the two advertisements, the
    /// accused's R1 and a complaint nobody signed — anyone holding those wrote it for an
    /// honest participant. The complaint must now be inside the complainer's signed R2, and a
    /// false *unsigned* report is not a proven fault at all (the server may have changed what
    /// it forwarded).
    @Test func complaintEvidenceCannotBeWrittenForSomeoneElse() throws {
        let configuration = SecAggSimulation.Configuration(
            parameters: try parameters(n: 5, t: 3), seed: seed(72), recordsTranscript: true)
        let clean = try SecAggSimulation.run(configuration)
        let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
        func message(_ round: SecAggRound, from sender: UInt32) throws -> SignedMessage {
            try SignedMessage(
                encoded: try #require(clean.transcript.first { $0.round == round && $0.sender == sender }).encoded)
        }
        let messages = [
            try message(.advertiseKeys, from: 2), try message(.advertiseKeys, from: 4),
            try message(.shareKeys, from: 4),
        ]
        for fault in [SecAggEvidence.Fault.falseComplaint, .falseReport] {
            let complaint = ShareComplaint(accused: 4, evidence: .unsigned)
            let without = SecAggEvidence(
                fault: fault, participant: ParticipantID(2), counterpart: ParticipantID(4), messages: messages,
                complaint: complaint)
            #expect(!without.verify(in: cast.session), "\(fault) without the complainer's R2")
            let withHonestR2 = SecAggEvidence(
                fault: fault, participant: ParticipantID(2), counterpart: ParticipantID(4),
                messages: messages + [try message(.maskedInputCollection, from: 2)], complaint: complaint)
            #expect(!withHonestR2.verify(in: cast.session), "\(fault) with an R2 that carries no complaint")
        }
        #expect(!SecAggEvidence.Fault.falseReport.isProven && !SecAggEvidence.Fault.invalidComplaint.isProven)
    }

    /// F3, a denial of service that named nobody: a rogue that committed to another self-mask
    /// seed than the one it shared made every attempt abort `reconstructionMismatch`, with
    /// nobody dropped or blamed, so the coordinator selected it again. It is now named
    /// (`inconsistentSecret`, not proven), and the coordinator leaves it out of the retry.
    @Test func aSecretThatDoesNotMatchItsCommitmentNamesItsOwner() throws {
        let configuration = SecAggSimulation.Configuration(
            parameters: try parameters(n: 5, t: 3), seed: seed(73), recordsTranscript: true)
        let clean = try SecAggSimulation.run(configuration)
        let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
        let index = try #require(clean.transcript.firstIndex { $0.round == .shareKeys && $0.sender == 5 })
        let honest = try SignedMessage(encoded: clean.transcript[index].encoded)
        let forged = SecAggForgery.resigned(
            honest,
            body: try SecAggForgery.shareKeysBody(
                honest.body,
                committingTo: SecAggForgery.selfMaskCommitment(
                    seed: SecureBytes(zeros: 32), sessionID: cast.session.id, owner: ParticipantID(5))),
            by: cast.clientKeys[4])
        var substituted = configuration
        substituted.substitution = .init(transcriptIndex: index, deliveries: [forged.encoded], continues: true)
        let report = try SecAggSimulation.run(substituted)
        #expect(report.abort?.reason.code == "reconstructionMismatch")
        #expect(report.attributions.map(\.fault) == [.inconsistentSecret])
        #expect(report.attributions.map(\.participant) == [ParticipantID(5)])
    }
}
