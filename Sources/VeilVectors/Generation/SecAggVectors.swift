import Foundation
import VeilCore
import VeilCrypto
import VeilSecAgg

extension ProjectVectors {
    /// A run to record: parameters, seed byte, and who goes offline when.
    struct SecAggScenario {
        var comment: String
        var flags: [String]
        var clients: Int
        var threshold: Int
        var neighbors: Int
        var bits = 32
        var dim = 6
        var adversary = "honest-but-curious"
        var corruptFraction = 0.0
        var dropoutFraction = 0.0
        var seedByte: UInt8
        var drops: [(UInt32, SecAggRound)] = []
        /// A participant that misbehaves, signing with its own key.
        var rogue: Rogue?

        enum Rogue {
            /// Signs garbage ciphertexts for these recipients in R1 (everyone when nil).
            case garbageShares(UInt32, to: Set<UInt32>?)
            /// Adds an unsigned-shares complaint about an honest neighbour to its R2 message.
            case falseComplaint(UInt32, about: UInt32)
            /// Reveals a wrong share of every secret it holds in R4.
            case wrongShares(UInt32)
            /// The owner dealt the holder a wrong share and endorsed it: the holder reveals it in R4.
            case dealtWrongShare(owner: UInt32, holder: UInt32)
            /// Deals this recipient shares that open but whose endorsement is not its own.
            case unendorsedShares(UInt32, to: UInt32)
            /// Seals this recipient's shares to another key than it advertised.
            case wrongRecipientKey(UInt32, to: UInt32)
            /// Commits in R1 to another self-mask seed than the one it shares.
            case otherCommitment(UInt32)

            var sender: UInt32 {
                switch self {
                case .garbageShares(let u, _), .falseComplaint(let u, _), .wrongShares(let u), .otherCommitment(let u),
                    .dealtWrongShare(_, let u), .unendorsedShares(let u, _), .wrongRecipientKey(let u, _):
                    u
                }
            }

            var round: SecAggRound {
                switch self {
                case .garbageShares, .otherCommitment, .unendorsedShares, .wrongRecipientKey: .shareKeys
                case .falseComplaint: .maskedInputCollection
                case .wrongShares, .dealtWrongShare: .unmasking
                }
            }

            func forge(_ honest: SignedMessage, _ cast: SecAggSimulation.Cast) throws -> SignedMessage {
                let key = cast.clientKeys[Int(sender) - 1]
                let body: [UInt8] =
                    switch self {
                    case .garbageShares(let u, let recipients):
                        try SecAggForgery.shareKeysBodyWithGarbageShares(
                            honest.body, sessionID: cast.session.id, sender: u, recipients: recipients, by: key)
                    case .falseComplaint(_, let accused):
                        try SecAggForgery.maskedInputBody(
                            honest.body, adding: ShareComplaint(accused: accused, evidence: .unsigned))
                    case .wrongShares:
                        try SecAggForgery.unmaskingBodyWithWrongShares(honest.body)
                    case .wrongRecipientKey(let u, let recipient):
                        try SecAggForgery.shareKeysBodyWithWrongRecipientKey(
                            honest.body, sessionID: cast.session.id, sender: u, recipient: recipient, by: key)
                    case .unendorsedShares(let u, let recipient):
                        try SecAggForgery.shareKeysBodyWithUnendorsedShare(
                            honest.body, sessionID: cast.session.id, sender: u, recipient: recipient,
                            senderGenerator: cast.generatorSeeds[Int(u) - 1], by: key)
                    case .dealtWrongShare(let owner, _):
                        try SecAggForgery.unmaskingBody(
                            honest.body, withWrongShareEndorsedBy: cast.clientKeys[Int(owner) - 1],
                            owner: ParticipantID(owner), sessionID: cast.session.id)
                    case .otherCommitment(let u):
                        try SecAggForgery.shareKeysBody(
                            honest.body,
                            committingTo: SecAggForgery.selfMaskCommitment(
                                seed: SecureBytes(zeros: 32), sessionID: cast.session.id, owner: ParticipantID(u)))
                    }
                return SecAggForgery.resigned(honest, body: body, by: key)
            }
        }

        func group(tests: [SecAggRunner.Test]) -> SecAggRunner.Group {
            SecAggRunner.Group(
                clients: clients, threshold: threshold, neighbors: neighbors, bits: bits, dim: dim,
                adversary: adversary,
                corruptFraction: corruptFraction, dropoutFraction: dropoutFraction, securityBits: 40,
                seed: Hex.encode([UInt8](repeating: seedByte, count: 32)),
                drops: drops.map { .init(participant: $0.0, round: $0.1.rawValue) }, tests: tests)
        }
    }

    static func secAgg() throws -> VectorFile<SecAggRunner.Group> {
        var tcId = 0
        var groups: [SecAggRunner.Group] = []
        func transcriptTest(_ scenario: SecAggScenario) throws -> SecAggRunner.Test {
            var configuration = try SecAggRunner.configuration(scenario.group(tests: []))
            configuration.recordsTranscript = true
            var substituted: (index: Int, message: SignedMessage)?
            if let rogue = scenario.rogue {
                let clean = try SecAggSimulation.run(configuration).transcript
                let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
                guard let index = clean.firstIndex(where: { $0.round == rogue.round && $0.sender == rogue.sender })
                else { throw VectorError.unreadable("participant \(rogue.sender) sends nothing in \(rogue.round)") }
                let forged = try rogue.forge(try SignedMessage(encoded: clean[index].encoded), cast)
                substituted = (index, forged)
                configuration.substitution = .init(
                    transcriptIndex: index, deliveries: [forged.encoded], continues: true)
            }
            let report = try SecAggSimulation.run(configuration)
            tcId += 1
            return SecAggRunner.Test(
                tcId: tcId, comment: scenario.comment, flags: scenario.flags, result: .valid, error: nil,
                kind: "transcript",
                transcript: report.transcript.map {
                    .init(
                        round: $0.round.rawValue, sender: $0.sender, recipient: $0.recipient,
                        message: Hex.encode($0.encoded))
                },
                survivors: report.result?.survivors.map(\.rawValue),
                sum: report.result?.sum.elements.map { String($0) },
                abort: report.abort?.reason.code, substitutedIndex: substituted?.index,
                substitutedMessage: substituted.map { Hex.encode($0.message.encoded) },
                attributions: report.attributions.isEmpty ? nil : report.attributions.map(SecAggRunner.describe))
        }

        let base = SecAggScenario(
            comment: "complete graph, 5 participants, t = 3, nobody drops", flags: ["CompleteGraph"], clients: 5,
            threshold: 3,
            neighbors: 4, seedByte: 1)
        var scenarios = [base]
        for round in SecAggRound.allCases {
            var scenario = base
            scenario.comment = "complete graph, 5 participants, t = 3, participant 2 goes offline in \(round)"
            scenario.flags = ["CompleteGraph", "Dropout"]
            scenario.seedByte = 2 + round.rawValue
            scenario.drops = [(2, round)]
            scenarios.append(scenario)
        }
        scenarios += [
            SecAggScenario(
                comment: "Harary graph, 8 participants with 4 neighbours, t = 3; participant 3 offline in R2, 6 in R4",
                flags: ["SparseGraph", "Dropout"], clients: 8, threshold: 3, neighbors: 4, seedByte: 10,
                drops: [(3, .maskedInputCollection), (6, .unmasking)]),
            SecAggScenario(
                comment: "Harary graph with odd k: 6 participants with 3 neighbours (ring and diameters), t = 2",
                flags: ["SparseGraph"], clients: 6, threshold: 2, neighbors: 3, seedByte: 11),
            SecAggScenario(
                comment: "b = 7, d = 5: elements of one byte, masked modulo 128; participant 4 offline in R2",
                flags: ["CompleteGraph", "Dropout", "SmallRing"], clients: 4, threshold: 2, neighbors: 3, bits: 7,
                dim: 5,
                seedByte: 12, drops: [(4, .maskedInputCollection)]),
            SecAggScenario(
                comment: "b = 64: full 64-bit elements; participant 1 offline in R3 (its input stays in the sum)",
                flags: ["CompleteGraph", "Dropout"], clients: 4, threshold: 2, neighbors: 3, bits: 64, dim: 4,
                seedByte: 13,
                drops: [(1, .consistencyCheck)]),
            SecAggScenario(
                comment:
                    "malicious-server threat model with 20% corrupt: n = 5 needs t > (5 + 1)/2, so t = 4; one R2 dropout",
                flags: ["Malicious", "Dropout"], clients: 5, threshold: 4, neighbors: 4, adversary: "malicious",
                corruptFraction: 0.2, seedByte: 14, drops: [(5, .maskedInputCollection)]),
            SecAggScenario(
                comment: "two of 4 participants offline in R1 leave 2 < t = 3: the server aborts after R1",
                flags: ["Abort"], clients: 4, threshold: 3, neighbors: 3, seedByte: 15,
                drops: [(1, .shareKeys), (4, .shareKeys)]),
            SecAggScenario(
                comment: "participants offline in R2 and R4 leave 2 < t = 3 answers to R4: the server aborts",
                flags: ["Abort"], clients: 4, threshold: 3, neighbors: 3, seedByte: 16,
                drops: [(2, .maskedInputCollection), (3, .unmasking)]),
            SecAggScenario(
                comment: "Harary graph with k = 2 and t = 3: when participant 5 goes offline in R4, its two neighbours "
                    + "lack its share to unmask each other, so the server aborts although 7 ≥ t answered",
                flags: ["Abort", "SparseGraph"], clients: 8, threshold: 3, neighbors: 2, seedByte: 17,
                drops: [(5, .unmasking)]),
        ]
        // Rogue participants (the audit's finding: one could stop every round): each is named,
        // and the round completes over the others.
        scenarios += [
            SecAggScenario(
                comment: "participant 3 signs garbage share ciphertexts for everyone in R1: every neighbour proves it "
                    + "with a complaint, 3 is convicted and taken out of the sum",
                flags: ["Rogue", "Complaint"], clients: 5, threshold: 3, neighbors: 4, seedByte: 18,
                rogue: .garbageShares(3, to: nil)),
            SecAggScenario(
                comment: "participant 2 signs garbage share ciphertexts for participants 1 and 4 only: the other three "
                    + "hold valid shares of its masking key, which the server reconstructs to remove their masks with it",
                flags: ["Rogue", "Complaint", "SparseGraph"], clients: 7, threshold: 3, neighbors: 4, seedByte: 19,
                rogue: .garbageShares(2, to: [1, 4])),
            SecAggScenario(
                comment: "participant 4 complains that participant 1's shares are unsigned, which they are not: "
                    + "4 is dropped in R2 and named, the round completes without it",
                flags: ["Rogue", "FalseComplaint"], clients: 5, threshold: 3, neighbors: 4, seedByte: 20,
                rogue: .falseComplaint(4, about: 1)),
            SecAggScenario(
                comment: "participant 3 reveals a wrong share of every secret it holds in R4 and participant 6 goes "
                    + "offline in R2: the shares are not what their owners endorsed, so 3 is dropped from R4 and "
                    + "named, and the others' shares give the exact sum",
                flags: ["Rogue", "WrongShare", "Dropout"], clients: 7, threshold: 4, neighbors: 6, seedByte: 21,
                drops: [(6, .maskedInputCollection)], rogue: .wrongShares(3)),
            SecAggScenario(
                comment: "participant 1 dealt participant 3 a wrong share of its self-mask seed and endorsed it; 3 "
                    + "reveals it in R4: decoding sets it aside, names the owner 1, and the sum is exact",
                flags: ["Rogue", "InconsistentSecret"], clients: 7, threshold: 4, neighbors: 6, seedByte: 23,
                rogue: .dealtWrongShare(owner: 1, holder: 3)),
            SecAggScenario(
                comment: "participant 2's shares for participant 4 open but one endorsement is not 2's: 4 complains "
                    + "with proof, the server opens the entry, finds it unendorsed, convicts 2 and the round completes",
                flags: ["Rogue", "UnendorsedShares"], clients: 5, threshold: 3, neighbors: 4, seedByte: 24,
                rogue: .unendorsedShares(2, to: 4)),
            SecAggScenario(
                comment: "participant 5 seals participant 1's shares to another key than 1 advertised (signed "
                    + "garbage): the server refuses its R1 (unexpectedShares), 1 is not made to complain, and the "
                    + "round completes without 5",
                flags: ["Rogue", "WrongRecipientKey"], clients: 5, threshold: 3, neighbors: 4, seedByte: 25,
                rogue: .wrongRecipientKey(5, to: 1)),
            SecAggScenario(
                comment: "participant 5 commits in R1 to another self-mask seed than the one it shares: its seed "
                    + "reconstructs consistently but fails its commitment, the server aborts and names 5",
                flags: ["Rogue", "InconsistentSecret", "Abort"], clients: 5, threshold: 3, neighbors: 4, seedByte: 22,
                rogue: .otherCommitment(5)),
        ]
        for scenario in scenarios { groups.append(scenario.group(tests: [try transcriptTest(scenario)])) }

        // Forged and replayed messages, against the run of each base: the complete graph with
        // every case; then a sparse graph and a run with a dropout, with every case whose
        // forgery does not write the complete graph's survivor lists.
        var sparse = SecAggScenario(
            comment: "Harary graph, 8 participants with 4 neighbours, t = 3, nobody drops", flags: ["HararyGraph"],
            clients: 8, threshold: 3, neighbors: 4, seedByte: 30)
        // The graph's labelling comes from the seed: the first seed byte from 30 whose graph
        // makes 2 and 3 neighbours of 1, as the cases assume.
        while try !Set(
            SecAggSimulation.Cast(
                parameters: SecAggRunner.configuration(sparse.group(tests: [])).parameters,
                seed: [UInt8](repeating: sparse.seedByte, count: 32)
            ).session.graph.neighbors(of: ParticipantID(1))
        ).isSuperset(of: [ParticipantID(2), ParticipantID(3)]) {
            sparse.seedByte += 1
        }
        // A dropout in each protocol round: participant 5, whom no case forges or reads.
        let dropouts = SecAggRound.allCases.map { round in
            var dropout = base
            dropout.comment = "complete graph, 5 participants, t = 3, participant 5 goes offline in \(round)"
            dropout.flags = ["CompleteGraph", "Dropout"]
            dropout.seedByte = round == .maskedInputCollection ? 31 : 40 + round.rawValue
            dropout.drops = [(5, round)]
            return dropout
        }
        for (base, complete) in [(base, true), (sparse, false)] + dropouts.map({ ($0, false) }) {
            var configuration = try SecAggRunner.configuration(base.group(tests: []))
            configuration.recordsTranscript = true
            let clean = try SecAggSimulation.run(configuration).transcript
            let cast = try SecAggSimulation.Cast(parameters: configuration.parameters, seed: configuration.seed)
            let n = base.clients
            // The cases speak of participant 1 and its neighbours 2 and 3.
            guard
                Set(cast.session.graph.neighbors(of: ParticipantID(1))).isSuperset(of: [
                    ParticipantID(2), ParticipantID(3),
                ])
            else { throw VectorError.unreadable("participant 1's neighbours in \(base.comment) leave out 2 or 3") }
            func at(_ round: SecAggRound, _ sender: UInt32, _ recipient: UInt32) -> (Int, SignedMessage) {
                let index = clean.firstIndex { $0.round == round && $0.sender == sender && $0.recipient == recipient }!
                return (index, try! SignedMessage(encoded: clean[index].encoded))  // recorded by the run above
            }
            let otherSession = SHA256.hash(Array("another session".utf8))
            let server = cast.serverKey
            let three = cast.clientKeys[2]
            var tamperings: [SecAggRunner.Test] = []
            func refuse(
                _ comment: String, _ flag: String, _ target: (Int, SignedMessage), _ deliveries: [SignedMessage],
                code: String,
                party: UInt32
            ) {
                refuseBytes(comment, flag, target, deliveries.map(\.encoded), code: code, party: party)
            }
            func refuseBytes(
                _ comment: String, _ flag: String, _ target: (Int, SignedMessage), _ deliveries: [[UInt8]],
                code: String,
                party: UInt32
            ) {
                tcId += 1
                tamperings.append(
                    SecAggRunner.Test(
                        tcId: tcId, comment: comment, flags: [flag], result: .invalid, error: code,
                        kind: "substitution",
                        index: target.0, deliveries: deliveries.map { Hex.encode($0) }, party: party,
                        dropped: party == 0 ? target.1.sender : nil))
            }
            /// A delivery participant 1 must answer, with these complaints in its reply.
            func complain(
                _ comment: String, _ flag: String, _ target: (Int, SignedMessage), _ deliveries: [SignedMessage],
                complaints: [String]
            ) {
                tcId += 1
                tamperings.append(
                    SecAggRunner.Test(
                        tcId: tcId, comment: comment, flags: [flag], result: .valid, error: nil, kind: "substitution",
                        index: target.0, deliveries: deliveries.map { Hex.encode($0.encoded) }, party: 1,
                        complaints: complaints))
            }

            // A participant's checks.
            let keys1 = at(.shareKeys, 0, 1)
            let forward1 = at(.maskedInputCollection, 0, 1)
            let lists1 = at(.consistencyCheck, 0, 1)
            let signatures1 = at(.unmasking, 0, 1)
            let everyone = (1...UInt32(n)).map { ParticipantID($0) }
            refuse(
                "R1: the server's KeysBroadcast to participant 1 with one signature bit flipped", "BadSignature", keys1,
                [SecAggForgery.withFlippedSignature(keys1.1)], code: "invalidSignature", party: 1)
            refuse(
                "R2: participant 1 receives its R1 KeysBroadcast again instead of SharesForward (a replay)", "Replay",
                forward1,
                [keys1.1], code: "wrongRound", party: 1)
            refuse(
                "R2: SharesForward signed by the server for another session", "OtherSession", forward1,
                [SecAggForgery.resigned(forward1.1, sessionID: otherSession, by: server)], code: "wrongSession",
                party: 1)
            refuse(
                "R2: SharesForward addressed to participant 2 delivered to participant 1", "WrongRecipient", forward1,
                [at(.maskedInputCollection, 0, 2).1], code: "wrongRecipient", party: 1)
            let tamperedForward = SecAggForgery.resigned(
                forward1.1, body: try SecAggForgery.sharesForwardBodyWithFlippedCiphertext(forward1.1.body), by: server)
            complain(
                "R2: a share ciphertext altered by the server (re-signed by it): participant 2's signature on the entry "
                    + "fails, so participant 1 reports it unsigned and reveals no key",
                "TamperedShare", forward1, [tamperedForward], complaints: ["2:unsigned"])
            complain(
                "R2: participant 2 signed garbage for participant 1: 1 proves it with the element they share and a proof",
                "SignedGarbage", forward1,
                [
                    SecAggForgery.resigned(
                        forward1.1,
                        body: try SecAggForgery.sharesForwardBodyWithSignedGarbage(
                            forward1.1.body, sessionID: cast.session.id, sender: cast.clientKeys[1], recipient: 1),
                        by: server)
                ],
                complaints: ["2:undecryptable"])
            refuse(
                "R2+R3: participant 1 reported participant 2's shares, then the server lists 2 as a survivor",
                "AccusedSurvivor", forward1, [tamperedForward, lists1.1], code: "inconsistentSurvivorLists", party: 1)
            // The split-view attack: participant 1 is told 2 dropped (it would reveal 2's masking
            // key) while the others were told 2 survived (they reveal 2's self-mask seed). The
            // consistency check catches it: the others' signatures are over a different digest.
            let othersSignatures = [3, 4].map { signer in
                (ParticipantID(UInt32(signer)), at(.consistencyCheck, UInt32(signer), 0).1.signature)
            }
            if complete {
                refuse(
                    "R3: participant 2 listed both as survivor and as dropped: the server asks for both of its shares",
                    "OverlappingLists", lists1,
                    [
                        SecAggForgery.resigned(
                            lists1.1,
                            body: SecAggForgery.survivorListBody(
                                clientCount: n, survivors: everyone, dropped: [ParticipantID(2)]),
                            by: server)
                    ],
                    code: "survivorListsOverlap", party: 1)
                refuse(
                    "R3: the server lists participant 1 itself as dropped", "ListedAsDropped", lists1,
                    [
                        SecAggForgery.resigned(
                            lists1.1,
                            body: SecAggForgery.survivorListBody(
                                clientCount: n, survivors: everyone.filter { $0.rawValue != 1 },
                                dropped: [ParticipantID(1)]),
                            by: server)
                    ],
                    code: "listedAsDropped", party: 1)
                refuse(
                    "R3+R4: split views — participant 1 is told participant 2 dropped while the others were told it survived; "
                        + "the others' R3 signatures do not verify over participant 1's lists, so it reveals nothing",
                    "SplitView", lists1,
                    [
                        SecAggForgery.resigned(
                            lists1.1,
                            body: SecAggForgery.survivorListBody(
                                clientCount: n, survivors: everyone.filter { $0.rawValue != 2 },
                                dropped: [ParticipantID(2)]),
                            by: server),
                        SecAggForgery.resigned(
                            signatures1.1, body: SecAggForgery.signaturesForwardBody(othersSignatures), by: server),
                    ],
                    code: "invalidSignature", party: 1)
            }
            // The participant's remaining refusals (the second audit found no vector for them).
            let advertised = try SecAggForgery.advertisements(inKeysBroadcast: keys1.1.body)
            refuse(
                "R1: a KeysBroadcast that claims to come from participant 3 (re-signed by 3)", "WrongSender", keys1,
                [SecAggForgery.resigned(keys1.1, sender: 3, by: three)], code: "wrongSender", party: 1)
            refuse(
                "R1: participant 2's advertisement twice in one KeysBroadcast", "UnexpectedPeer", keys1,
                [
                    SecAggForgery.resigned(
                        keys1.1, body: SecAggForgery.keysBroadcastBody(advertised + [advertised[0]]), by: server)
                ],
                code: "unexpectedPeer", party: 1)
            refuse(
                "R1: a KeysBroadcast with one neighbour's keys where t = 3 needs two", "NotEnoughNeighbors", keys1,
                [
                    SecAggForgery.resigned(
                        keys1.1, body: SecAggForgery.keysBroadcastBody(Array(advertised.prefix(1))), by: server)
                ],
                code: "notEnoughNeighbors", party: 1)
            let two = cast.clientKeys[1]
            let weakTwo = SecAggForgery.resigned(
                advertised[0],
                body: try SecAggForgery.advertiseKeysBody(
                    advertised[0].body, maskingKey: [UInt8](repeating: 0, count: X25519.keyByteCount)),
                by: two)
            refuse(
                "R1+R2: participant 2's masking key replaced by a point of small order (u = 0), re-signed by 2; "
                    + "participant 1 refuses when it masks with it",
                "WeakPeerKey", keys1,
                [
                    SecAggForgery.resigned(
                        keys1.1, body: SecAggForgery.keysBroadcastBody([weakTwo] + advertised.dropFirst()), by: server),
                    forward1.1,
                ],
                code: "weakPeerKey", party: 1)
            let copyingTwo = SecAggForgery.resigned(
                advertised[0],
                body: try SecAggForgery.advertiseKeysBody(
                    advertised[0].body, copyingEncryptionKeyOf: at(.advertiseKeys, 3, 0).1.body),
                by: two)
            refuse(
                "R1: participant 2's advertisement carries participant 3's encryption key and proof, re-signed by 2",
                "CopiedKey", keys1,
                [
                    SecAggForgery.resigned(
                        keys1.1, body: SecAggForgery.keysBroadcastBody([copyingTwo] + advertised.dropFirst()),
                        by: server)
                ],
                code: "invalidKeyProof", party: 1)
            if complete {
                refuse(
                    "R3: participant 2 sent shares but is in neither list", "InconsistentLists", lists1,
                    [
                        SecAggForgery.resigned(
                            lists1.1,
                            body: SecAggForgery.survivorListBody(
                                clientCount: n, survivors: everyone.filter { $0.rawValue != 2 }, dropped: []),
                            by: server)
                    ],
                    code: "inconsistentSurvivorLists", party: 1)
                refuse(
                    "R4: only one other signature where t = 3 needs two", "TooFewSignatures", signatures1,
                    [
                        SecAggForgery.resigned(
                            signatures1.1, body: SecAggForgery.signaturesForwardBody([othersSignatures[0]]), by: server)
                    ],
                    code: "notEnoughConsistencySignatures", party: 1)

            }
            // The server's checks, on participant 3's messages.
            let r0 = at(.advertiseKeys, 3, 0)
            let r1 = at(.shareKeys, 3, 0)
            let r2 = at(.maskedInputCollection, 3, 0)
            let r3 = at(.consistencyCheck, 3, 0)
            let r4 = at(.unmasking, 3, 0)
            refuse(
                "R0: participant 3's AdvertiseKeys with one signature bit flipped", "BadSignature", r0,
                [SecAggForgery.withFlippedSignature(r0.1)], code: "invalidSignature", party: 0)
            refuse(
                "R0: participant 4's AdvertiseKeys arriving on participant 3's authenticated channel", "SenderMismatch",
                r0,
                [at(.advertiseKeys, 4, 0).1], code: "senderMismatch", party: 0)
            refuse(
                "R0: participant 3 advertises a masking key of small order (u = 0)", "WeakKey", r0,
                [
                    SecAggForgery.resigned(
                        r0.1,
                        body: try SecAggForgery.advertiseKeysBody(
                            r0.1.body, maskingKey: [UInt8](repeating: 0, count: X25519.keyByteCount)),
                        by: three)
                ],
                code: "weakKey", party: 0)
            refuse(
                "R0: participant 3's encryption key is not a canonical ristretto255 encoding (all bytes 0xff)",
                "InvalidPoint", r0,
                [
                    SecAggForgery.resigned(
                        r0.1,
                        body: [UInt8](repeating: 0xFF, count: Ristretto255.elementByteCount)
                            + r0.1.body.dropFirst(Ristretto255.elementByteCount),
                        by: three)
                ],
                code: "malformed", party: 0)
            refuse(
                "R0: participant 3 advertises participant 4's encryption key with 4's proof of possession (bound to 4)",
                "CopiedKey", r0,
                [
                    SecAggForgery.resigned(
                        r0.1,
                        body: try SecAggForgery.advertiseKeysBody(
                            r0.1.body, copyingEncryptionKeyOf: at(.advertiseKeys, 4, 0).1.body),
                        by: three)
                ],
                code: "invalidKeyProof", party: 0)
            refuse(
                "R1: participant 3 sends its R0 message again instead of ShareKeys (a replay)", "Replay", r1, [r0.1],
                code: "wrongRound", party: 0)
            refuse(
                "R1: participant 3's shares leave out one neighbour", "MissingShares", r1,
                [
                    SecAggForgery.resigned(
                        r1.1, body: try SecAggForgery.shareKeysBodyWithoutLastShare(r1.1.body), by: three)
                ],
                code: "unexpectedShares", party: 0)
            refuse(
                "R2: participant 3's masked input signed for another session", "OtherSession", r2,
                [SecAggForgery.resigned(r2.1, sessionID: otherSession, by: three)], code: "wrongSession", party: 0)
            func withComplaints(_ complaints: [ShareComplaint]) throws -> SignedMessage {
                var body = r2.1.body
                for complaint in complaints.reversed() {
                    body = try SecAggForgery.maskedInputBody(body, adding: complaint)
                }
                return SecAggForgery.resigned(r2.1, body: body, by: three)
            }
            refuse(
                "R2: participant 3 reports participant 1's shares unsigned, but they are signed and open: a false complaint",
                "FalseComplaint", r2, [try withComplaints([ShareComplaint(accused: 1, evidence: .unsigned)])],
                code: "falseComplaint", party: 0)
            let someElement = Array(r0.1.body.prefix(Ristretto255.elementByteCount))  // 3's own encryption key
            refuse(
                "R2: participant 3 claims participant 1's shares do not open, with a proof that does not verify",
                "BadProof", r2,
                [
                    try withComplaints([
                        ShareComplaint(
                            accused: 1,
                            evidence: .undecryptable(
                                shared: someElement,
                                proof: try EqualityProof(
                                    rawRepresentation: [UInt8](repeating: 1, count: EqualityProof.byteCount))))
                    ])
                ],
                code: "invalidComplaint", party: 0)
            refuse(
                "R2: participant 3 complains about itself", "SelfComplaint", r2,
                [try withComplaints([ShareComplaint(accused: 3, evidence: .unsigned)])], code: "invalidComplaint",
                party: 0)
            refuse(
                "R2: participant 3 complains twice about participant 1", "DuplicateComplaint", r2,
                [
                    try withComplaints([
                        ShareComplaint(accused: 1, evidence: .unsigned),
                        ShareComplaint(accused: 1, evidence: .unsigned),
                    ])
                ],
                code: "invalidComplaint", party: 0)
            refuseBytes(
                "R2: participant 3's message cut short by 10 bytes", "Malformed", r2,
                [Array(r2.1.encoded.dropLast(10))],
                code: "malformed", party: 0)
            refuse(
                "R3: participant 3 signs a digest other than the one the server sent", "WrongDigest", r3,
                [SecAggForgery.resigned(r3.1, body: SHA256.hash(Array("other lists".utf8)), by: three)],
                code: "wrongSurvivorDigest", party: 0)
            refuse(
                "R4: participant 3 reveals the masking-key share of a survivor instead of its self-mask share",
                "WrongShareKind",
                r4,
                [
                    SecAggForgery.resigned(
                        r4.1, body: try SecAggForgery.unmaskingBodyWithWrongKind(r4.1.body), by: three)
                ],
                code: "invalidReveal", party: 0)
            groups.append(base.group(tests: tamperings))
        }

        return VectorFile(
            algorithm: SecAggRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's masking protocol (Specs/secagg.md). Each group is a session: parameters, a 32-byte simulation seed from which",
                "every identity, input, key and nonce derives (Specs/secagg.md, Simulation), and who goes offline in which round.",
                "\"transcript\" tests hold every message of the run, in order (hex of the canonical encoding), and the result:",
                "implementations replay the run and must produce the same bytes. \"substitution\" tests deliver other bytes in place",
                "of message `index` of the same run; the last delivery must be refused by `party` (0: the server, which drops",
                "`dropped`) with the reason `error`; a valid substitution must be answered, its reply carrying `complaints`.",
                "Transcripts with `substitutedIndex` had that message replaced by a rogue participant's (signed with its own",
                "key) before the run went on; `attributions` lists the faults the server named (fault:participant:counterpart).",
                "Project vectors, generated by `veil vectors generate`; Specs/reference/ replays every transcript.",
            ],
            notes: [
                "CompleteGraph": VectorNote(bugType: "BASIC", description: "k = n - 1 (Bonawitz et al. 2017)."),
                "SparseGraph": VectorNote(
                    bugType: "BASIC", description: "A Harary graph with k < n - 1 (Bell et al. 2020)."),
                "Dropout": VectorNote(
                    bugType: "BASIC", description: "Participants go offline; the sum covers the survivors."),
                "SmallRing": VectorNote(bugType: "EDGE_CASE", description: "A bit width below one byte."),
                "Malicious": VectorNote(
                    bugType: "BASIC", description: "Parameters validated against a malicious server."),
                "Abort": VectorNote(
                    bugType: "DEFINED", description: "Too few participants remain: the server must abort."),
                "BadSignature": VectorNote(bugType: "AUTH_BYPASS", description: "A signature that does not verify."),
                "Replay": VectorNote(
                    bugType: "AUTH_BYPASS", description: "An earlier, validly signed message sent again."),
                "OtherSession": VectorNote(
                    bugType: "AUTH_BYPASS", description: "A message signed for another session."),
                "WrongRecipient": VectorNote(
                    bugType: "AUTH_BYPASS", description: "A message addressed to someone else."),
                "TamperedShare": VectorNote(
                    bugType: "AUTH_BYPASS", description: "Encrypted shares altered in transit."),
                "OverlappingLists": VectorNote(
                    bugType: "CONFIDENTIALITY", description: "One participant both survived and dropped."),
                "ListedAsDropped": VectorNote(
                    bugType: "DEFINED", description: "The recipient itself listed as dropped."),
                "SplitView": VectorNote(
                    bugType: "CONFIDENTIALITY", description: "Different survivor lists shown to different participants."
                ),
                "TooFewSignatures": VectorNote(
                    bugType: "CONFIDENTIALITY", description: "Fewer than t consistency signatures."),
                "SenderMismatch": VectorNote(
                    bugType: "AUTH_BYPASS", description: "A message on another party's channel."),
                "WeakKey": VectorNote(bugType: "DEFINED", description: "An advertised key of small order."),
                "MissingShares": VectorNote(bugType: "DEFINED", description: "Shares for the wrong set of neighbours."),
                "Malformed": VectorNote(bugType: "DEFINED", description: "Bytes that do not parse."),
                "WrongDigest": VectorNote(bugType: "DEFINED", description: "A consistency signature over other lists."),
                "WrongShareKind": VectorNote(
                    bugType: "CONFIDENTIALITY", description: "The other secret's share revealed."),
                "WrongSender": VectorNote(
                    bugType: "AUTH_BYPASS", description: "A server message claiming another sender."),
                "UnexpectedPeer": VectorNote(
                    bugType: "DEFINED", description: "An advertisement from a non-neighbour, or one twice."),
                "NotEnoughNeighbors": VectorNote(
                    bugType: "CONFIDENTIALITY", description: "Fewer than t of the neighbourhood left."),
                "WeakPeerKey": VectorNote(
                    bugType: "DEFINED", description: "A neighbour's key of small order, validly signed."),
                "Rogue": VectorNote(
                    bugType: "DEFINED",
                    description: "A participant misbehaves with its own key: it is named, the round completes."
                ),
                "Complaint": VectorNote(bugType: "DEFINED", description: "Shares proved bad by their recipients."),
                "FalseComplaint": VectorNote(
                    bugType: "DEFINED", description: "A complaint about shares that are signed and open."),
                "WrongShare": VectorNote(bugType: "DEFINED", description: "A wrong share revealed in R4."),
                "SignedGarbage": VectorNote(
                    bugType: "DEFINED", description: "Shares their sender signed that do not open: proved bad."),
                "AccusedSurvivor": VectorNote(
                    bugType: "CONFIDENTIALITY", description: "A participant proved bad listed as a survivor."),
                "CopiedKey": VectorNote(
                    bugType: "CONFIDENTIALITY",
                    description: "An encryption key whose advertiser cannot prove it knows its logarithm."),
                "InconsistentSecret": VectorNote(
                    bugType: "DEFINED", description: "A secret that does not match its owner's commitment."),
                "InvalidPoint": VectorNote(
                    bugType: "DEFINED", description: "Bytes that are not a canonical ristretto255 element."),
                "BadProof": VectorNote(
                    bugType: "AUTH_BYPASS", description: "A complaint's proof that does not verify."),
                "SelfComplaint": VectorNote(bugType: "DEFINED", description: "A complaint about oneself."),
                "DuplicateComplaint": VectorNote(
                    bugType: "DEFINED", description: "Two complaints about one neighbour."),
                "InconsistentLists": VectorNote(
                    bugType: "CONFIDENTIALITY", description: "Lists that disagree with the shares received."),
            ],
            testGroups: groups, numberOfTests: tcId)
    }
}
