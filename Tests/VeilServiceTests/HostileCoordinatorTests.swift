import Crypto
import Foundation
import Logging
import SwiftASN1
import Testing
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilTestSupport
import VeilTransport
import VeilWire
import X509

@testable import VeilSecAgg
@testable import VeilService

/// A coordinator that deviates — holding the coordinator's real credentials and speaking the
/// real wire protocol (``HostileCoordinator``) — against unmodified participants and key
/// holders. Each test runs one attack of the outside review (issue 10) and requires that it
/// learns nothing about an individual input, and that the honest parties say why.
@Suite(.serialized) struct HostileCoordinatorTests {
    /// A CA, the coordinator's credentials and `clients` participants' (certificates, data).
    func federation(clients: Int, paillierBits: Int? = nil, threshold: (t: Int, l: Int)? = nil) throws -> (
        NetworkSimulation, URL
    ) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-hostile-coordinator")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = 1
        c.partition = .iid
        let network = try NetworkSimulation(
            configuration: c, directory: directory, roundDeadlineSeconds: 10, paillierBits: paillierBits,
            thresholdHolders: threshold)
        return (network, directory)
    }

    /// A CA with `clients` participants, a hostile coordinator holding the coordinator's
    /// credentials, and the participants `joining` (by index) connected to it.
    struct Stage {
        let network: NetworkSimulation
        let directory: URL
        let coordinator: HostileCoordinator
        let agents: [Task<ParticipantSummary, any Error>]
        let ids: [FederationIdentity]

        func close() {
            agents.forEach { $0.cancel() }
            coordinator.finish()
            try? FileManager.default.removeItem(at: directory)
        }
    }

    func stage(
        clients: Int, joining: [Int]? = nil, paillierBits: Int? = nil, threshold: (t: Int, l: Int)? = nil,
        _ edit: (inout JoinConfiguration) -> Void = { _ in }
    ) async throws -> Stage {
        let (network, directory) = try federation(clients: clients, paillierBits: paillierBits, threshold: threshold)
        let coordinator = try await HostileCoordinator(tls: network.serve.tls)
        let joining = joining ?? Array(0..<clients)
        let agents = try join(network, joining, port: coordinator.port, edit)
        let ids = try identities(network)
        let stage = Stage(network: network, directory: directory, coordinator: coordinator, agents: agents, ids: ids)
        do { try await coordinator.waitFor(joining.map { ids[$0].id }) } catch {
            stage.close()
            throw error
        }
        return stage
    }

    /// Starts the honest participants against the hostile coordinator.
    func join(
        _ network: NetworkSimulation, _ indices: [Int], port: Int, _ edit: (inout JoinConfiguration) -> Void = { _ in }
    )
        throws -> [Task<ParticipantSummary, any Error>]
    {
        try indices.map { i in
            var join = network.participants[i].join
            join.port = port
            join.reconnectAttempts = 0
            edit(&join)
            let agent = try ParticipantAgent(
                configuration: join, data: network.participants[i].data, logger: quietLogger())
            return Task { try await agent.run() }
        }
    }

    /// A masking session over the stage's whole roster, bound to the plan of
    /// ``basicAssignment(_:round:cohort:)`` for round 1; the server is the hostile coordinator
    /// unless another is named.
    func session(
        _ stage: Stage, _ parameters: SecAggParameters, nonce: UInt8, server: Ed25519.PublicKey? = nil
    ) throws -> SecAggSession {
        try SecAggSession(
            parameters: parameters, serverIdentity: server ?? stage.coordinator.signingKey.publicKey,
            clientIdentities: stage.ids.map(\.signingKey), nonce: [UInt8](repeating: nonce, count: 32),
            context: RoundPlanDigest.of(basicAssignment(stage.network, round: 1, cohort: stage.ids.count)))
    }

    /// Every member's assignment to `session`, in position order.
    func assignments(_ stage: Stage, _ session: SecAggSession) throws -> [Veil_V1_RoundAssignment] {
        try (1...session.parameters.clientCount).map {
            try assignment(
                stage.network, coordinator: stage.coordinator, session: session, cohort: stage.ids, position: $0)
        }
    }

    /// The assignment an honest coordinator would send for a masking round, with the threshold
    /// and threat model the attacker chose.
    func assignment(
        _ network: NetworkSimulation, coordinator: HostileCoordinator, session: SecAggSession,
        cohort: [FederationIdentity],
        position: Int, round: UInt64 = 1
    ) throws -> Veil_V1_RoundAssignment {
        let p = session.parameters
        var description = Veil_V1_SecAggSessionDescription()
        description.clientCount = UInt32(p.clientCount)
        description.threshold = UInt32(p.threshold)
        description.neighborCount = UInt32(p.neighborCount)
        description.bits = UInt32(p.bitWidth.bits)
        description.dimension = UInt32(p.dimension)
        description.adversary = UInt32(p.threatModel.adversary.rawValue)
        description.corruptFraction = 0.05
        description.dropoutFraction = 0.1
        description.securityBits = 40
        description.nonce = Data(session.nonce)
        description.coordinatorCertificate = Data(coordinator.identity.certificateDER)
        description.rosterSigningKeys = cohort.map { Data($0.signingKey.rawRepresentation) }
        description.neighborCertificates = session.graph.neighbors(of: ParticipantID(UInt32(position))).map { v in
            .with {
                $0.position = v.rawValue
                $0.certificate = Data(cohort[Int(v.rawValue) - 1].certificateDER)
            }
        }
        var a = basicAssignment(network, round: round, cohort: cohort.count)
        a.session = description
        a.position = UInt32(position)
        return a
    }

    /// Model, training plan and encoding of an assignment.
    func basicAssignment(_ network: NetworkSimulation, round: UInt64, cohort: Int) -> Veil_V1_RoundAssignment {
        let serve = network.serve
        var a = Veil_V1_RoundAssignment()
        a.round = round
        a.model = .with { $0.vectors = [.with { $0.values = [Double](repeating: 0, count: parameterCount) }] }
        a.training = .with {
            $0.algorithm = "fedavg"
            $0.localEpochs = 1
            $0.batchSize = 32
            $0.learningRate = 0.1
            $0.weightScale = serve.weightScale
            $0.seed = 7
            $0.model = "softmax"
            $0.features = 64
            $0.classes = 10
        }
        let codec = try! RoundTask.codec(serve, addends: cohort)  // the configuration's ring fits
        a.encoding = .with {
            $0.clip = codec.clip
            $0.fractionalBits = UInt32(codec.fractionalBits)
            $0.bits = UInt32(codec.bitWidth.bits)
            $0.maxAddends = UInt32(codec.maxAddends)
        }
        a.roundDeadlineMillis = 10_000
        return a
    }

    /// The participants' certified identities, by index.
    func identities(_ network: NetworkSimulation) throws -> [FederationIdentity] {
        try network.participants.map { try $0.join.tls.credentials(role: .participant).identity }
    }

    /// The participant's Decline, or nil (recording an issue) when it answered otherwise.
    func declineOrRecord(_ coordinator: HostileCoordinator, _ id: String) async throws -> Veil_V1_Decline? {
        let answer = try await coordinator.next(from: id)
        guard case .decline(let decline) = answer.kind else {
            Issue.record("\(id) did not decline: \(answer)")
            return nil
        }
        return decline
    }

    /// Softmax regression on digits: 64 × 10 weights and 10 biases; the payload adds the weight.
    let parameterCount = 650
    var payloadLength: Int { parameterCount + 1 }

    /// Whether `payload` is a participant's FedAvg payload: its last coordinate is n_k / weight scale.
    func isPayload(_ values: [Double], of network: NetworkSimulation, participant i: Int) -> Bool {
        let weight = Double(network.participants[i].data.count) / network.serve.weightScale
        return values.count == payloadLength && abs(values.last! - weight) < 1e-6
    }

    // MARK: - The split view

    /// What the split-view attack got.
    enum SplitOutcome {
        /// Every participant declined the assignment, with these reasons.
        case declined([String: String])
        /// The target's input, unmasked.
        case recovered(ModularVector)
        /// The attack ran but could not unmask; the participants that refused said why.
        case failed(String, refusals: [String: String])
    }

    /// Runs R0–R2 honestly, then shows `groupA` the lists in which `target` survived and
    /// `groupB` the lists in which it dropped, collects both groups' reveals, and tries to
    /// reconstruct the target's self-mask seed (from A) and masking key (from B).
    func splitView(
        _ coordinator: HostileCoordinator, session: SecAggSession, cohort: [FederationIdentity],
        assignments: [Veil_V1_RoundAssignment], target: ParticipantID, groupA: [ParticipantID], groupB: [ParticipantID]
    ) async throws -> SplitOutcome {
        let n = session.parameters.clientCount
        let t = session.parameters.threshold
        let ids = cohort.map(\.id)
        func id(_ p: ParticipantID) -> String { ids[Int(p.rawValue) - 1] }
        let everyone = session.participants
        func send(_ round: SecAggRound, to p: ParticipantID, _ body: [UInt8]) {
            let m = SignedMessage(
                body: body, sessionID: session.id, round: round, sender: 0, recipient: p.rawValue,
                signedWith: coordinator.signingKey)
            coordinator.send(
                .with {
                    $0.secagg = .with {
                        $0.round = 1; $0.signed = Data(m.encoded)
                    }
                }, to: id(p))
        }
        var refusals: [String: String] = [:]
        /// The next protocol message of `p`, or nil when it declined or went silent.
        func next(_ p: ParticipantID, timeout: Double = 120) async -> SignedMessage? {
            guard let message = try? await coordinator.next(from: id(p), timeout: timeout) else {
                refusals[id(p)] = refusals[id(p)] ?? "silent"
                return nil
            }
            switch message.kind {
            case .secagg(let s): return try? SignedMessage(encoded: Array(s.signed))
            case .decline(let d):
                refusals[id(p)] = d.reason
                return nil
            default: return await next(p, timeout: timeout)
            }
        }

        for (i, a) in assignments.enumerated() { coordinator.send(.with { $0.assignment = a }, to: ids[i]) }
        // R0.
        var advertisements: [ParticipantID: SignedMessage] = [:]
        for p in everyone { if let m = await next(p) { advertisements[p] = m } }
        guard advertisements.count == n else { return .declined(refusals) }
        // R1: every neighbour's advertisement, honestly.
        for p in everyone {
            let others = everyone.filter { $0 != p }.map { advertisements[$0]! }
            send(.shareKeys, to: p, KeysBroadcastBody(advertisements: others).encoded)
        }
        var shares: [ParticipantID: ShareKeysBody] = [:]
        for p in everyone {
            if let m = await next(p) { shares[p] = try ShareKeysBody(decoding: m.body) }
        }
        guard shares.count == n else { return .failed("R1", refusals: refusals) }
        // R2: each participant's shares, honestly.
        for v in everyone {
            let forwarded = everyone.filter { $0 != v }.map { u in
                let entry = shares[u]!.shares.first { $0.peer == v.rawValue }!
                return EncryptedShares(
                    peer: u.rawValue, recipientKey: entry.recipientKey, nonce: entry.nonce,
                    ciphertext: entry.ciphertext,
                    signature: entry.signature)
            }
            send(.maskedInputCollection, to: v, SharesForwardBody(shares: forwarded).encoded)
        }
        var masked: [ParticipantID: ModularVector] = [:]
        for p in everyone {
            if let m = await next(p) {
                masked[p] = try MaskedInputBody.decode(
                    try MaskedInputBody(decoding: m.body).vector, bitWidth: session.parameters.bitWidth,
                    dimension: session.parameters.dimension)
            }
        }
        guard masked.count == n else { return .failed("R2", refusals: refusals) }
        // R3: the split. A sees the target survive, B sees it drop.
        let views: [(members: [ParticipantID], survivors: [ParticipantID], dropped: [ParticipantID])] = [
            (groupA, everyone, []), (groupB, everyone.filter { $0 != target }, [target]),
        ]
        var reveals: [ShareKind: [ShamirShare]] = [:]
        for view in views {
            let lists = SurvivorListBody(
                survivors: ParticipantBitmap(clientCount: n, members: view.survivors),
                dropped: ParticipantBitmap(clientCount: n, members: view.dropped))
            for p in view.members { send(.consistencyCheck, to: p, lists.encoded) }
            var signatures: [ParticipantID: [UInt8]] = [:]
            for p in view.members { if let m = await next(p) { signatures[p] = m.signature } }
            // R4: each member gets up to t − 1 signatures of the others who saw the same lists.
            for p in view.members where signatures[p] != nil {
                let others = signatures.keys.sorted().filter { $0 != p }.prefix(t - 1).map {
                    SignaturesForwardBody.Entry(signer: $0.rawValue, signature: signatures[$0]!)
                }
                send(.unmasking, to: p, SignaturesForwardBody(signatures: Array(others)).encoded)
            }
            for p in view.members where signatures[p] != nil {
                guard let m = await next(p, timeout: 15) else { continue }
                for entry in try UnmaskingSharesBody(decoding: m.body).shares where entry.owner == target.rawValue {
                    reveals[entry.kind, default: []].append(entry.share)
                }
            }
        }
        let shamir = try ShamirSecretSharing(threshold: t, shareCount: n)
        let seedShares = reveals[.selfMaskSeed] ?? []
        let keyShares = reveals[.maskingKey] ?? []
        guard seedShares.count >= t, keyShares.count >= t else {
            return .failed(
                "\(seedShares.count) shares of the target's self-mask seed and \(keyShares.count) of its masking key; \(t) of each are needed",
                refusals: refusals)
        }
        let seed = try shamir.reconstruct(Array(seedShares.prefix(t)))
        let maskingKey = try X25519.PrivateKey(rawRepresentation: try shamir.reconstruct(Array(keyShares.prefix(t))))
        // Both secrets: unmask the target's input as the server would for each half.
        var input = masked[target]!
        try SecAggKeys.selfMask(seed: seed, sessionID: session.id, bitWidth: session.parameters.bitWidth)
            .apply(.subtract, to: &input)
        for v in everyone where v != target {
            let peerKey = try AdvertiseKeysBody(decoding: advertisements[v]!.body).maskingKey
            let pairwise = try SecAggKeys.pairwiseSeed(
                own: maskingKey, peer: peerKey, sessionID: session.id, target, v)
            try SecAggKeys.pairwiseMask(seed: pairwise, sessionID: session.id, bitWidth: session.parameters.bitWidth)
                .apply(SecAggKeys.adds(target, v) ? .subtract : .add, to: &input)
        }
        return .recovered(input)
    }

    /// The finding: at n = 10 a coordinator that hands out t = 3 under an honest-but-curious
    /// model, runs R0–R2 honestly and splits the survivor lists in R3 (A = the target and two
    /// others, B = the other seven) receives the target's self-mask seed from A and its masking
    /// key from B, and unmasks its input. Participants that insist on their own policy
    /// (malicious model: t > (n + n_C)/2 = 6) decline the assignment.
    @Test func theSplitViewAtALowThresholdIsDeclined() async throws {
        let n = 10
        let stage = try await stage(clients: n)
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)

        let threat = try ThreatModel(adversary: .honestButCuriousServer, corruptFraction: 0, dropoutFraction: 0)
        let parameters = try SecAggParameters(
            clientCount: n, threshold: 3, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
            threatModel: threat)
        let session = try session(stage, parameters, nonce: 7)
        let assignments = try assignments(stage, session)
        let participants = session.participants
        let outcome = try await splitView(
            coordinator, session: session, cohort: ids, assignments: assignments, target: participants[0],
            groupA: Array(participants[0..<3]), groupB: Array(participants[3...]))
        switch outcome {
        case .recovered(let input):
            let codec = try RoundTask.codec(network.serve, addends: n)
            let values = try codec.decode(input)
            Issue.record(
                "the split view unmasked participant 1's input (its weight coordinate \(values.last!); a payload: \(isPayload(values, of: network, participant: 0)))"
            )
        case .failed(let why, let refusals):
            Issue.record("the participants accepted t = 3 and the split failed only later: \(why) \(refusals)")
        case .declined(let reasons):
            #expect(reasons.count == n, "\(reasons)")
            for (id, reason) in reasons {
                #expect(reason.contains("threshold 3"), "\(id): \(reason)")
            }
        }
    }

    /// The machinery the participants now insist on: at n = 10 their own policy (malicious
    /// model, γ = 5%: n_C = 1) requires t = 6. A coordinator that accepts that and still tries
    /// the split cannot gather six matching signatures on both sides (6 + 6 − n_C > 10): the
    /// short side refuses to reveal and says why, and the target's masking key never leaves.
    @Test func theSplitViewFailsAtTheThresholdTheParticipantsRequire() async throws {
        let n = 10
        let stage = try await stage(clients: n)
        defer { stage.close() }
        let (coordinator, ids) = (stage.coordinator, stage.ids)
        let session = try session(
            stage,
            try SecAggParameters(
                clientCount: n, threshold: 6, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
                threatModel: .malicious),
            nonce: 8)
        let assignments = try assignments(stage, session)
        let p = session.participants
        // The attacker's best split: the target and five others see it survive, four see it drop.
        let outcome = try await splitView(
            coordinator, session: session, cohort: ids, assignments: assignments, target: p[0],
            groupA: Array(p[0..<6]), groupB: Array(p[6...]))
        switch outcome {
        case .recovered:
            Issue.record("the split view unmasked participant 1's input at t = 6")
        case .declined(let reasons):
            Issue.record("the participants declined t = 6, which their policy allows: \(reasons)")
        case .failed(let why, let refusals):
            #expect(why.hasPrefix("6 shares of the target's self-mask seed and 0 of its masking key"), "\(why)")
            for id in ids[6...].map(\.id) {
                #expect(
                    refusals[id]?.contains("matching consistency signatures, 6 needed") == true,
                    "\(id): \(refusals[id] ?? "-")")
            }
        }
    }

    /// t = 1 on the wire (the finding: every cohort under 20 got t = 1 at γ = 5%), and t = 2
    /// for three participants: both below what the participants' policy requires.
    @Test(arguments: [1, 2]) func aLowThresholdForASmallCohortIsDeclined(threshold: Int) async throws {
        let n = 3
        let stage = try await stage(clients: n, joining: [0])
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)
        let session = try session(
            stage,
            try SecAggParameters(
                clientCount: n, threshold: 2, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
                threatModel: .honestButCurious),
            nonce: 5)
        var a = try assignment(network, coordinator: coordinator, session: session, cohort: ids, position: 1)
        a.session.threshold = UInt32(threshold)
        coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
        let decline = try await declineOrRecord(coordinator, ids[0].id)
        #expect(decline?.code == .declinePolicy, "\(String(describing: decline))")
        #expect(decline?.reason.contains("threshold \(threshold)") == true, "\(decline?.reason ?? "")")
    }

    /// The finding: any coordinator-role certificate was accepted as the session's server. A
    /// second coordinator of the same CA (another federation's, or one stolen) is refused: the
    /// server must be the coordinator the participant connected to.
    @Test func anotherCoordinatorsCertificateIsRefused() async throws {
        let n = 3
        let stage = try await stage(clients: n, joining: [0])
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)
        _ = try FederationCA(directory: stage.directory).issue(id: "rogue-coordinator", role: .coordinator)
        let rogue = try TLSFiles(directory: stage.directory.path, id: "rogue-coordinator").credentials(
            role: .coordinator)
        let session = try session(
            stage,
            try SecAggParameters(
                clientCount: n, threshold: 3, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
                threatModel: .malicious),
            nonce: 4, server: rogue.signingKey.publicKey)
        var a = try assignment(network, coordinator: coordinator, session: session, cohort: ids, position: 1)
        a.session.coordinatorCertificate = Data(rogue.identity.certificateDER)
        coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
        let decline = try await declineOrRecord(coordinator, ids[0].id)
        #expect(decline?.code == .declineCoordinator, "\(String(describing: decline))")
        #expect(decline?.reason.contains("rogue-coordinator") == true)
    }

    // MARK: - Paillier

    /// A Paillier plan as an honest coordinator would build it, for a key and signature the
    /// attacker chose.
    /// The session such a plan announces, when the key and the key holder's certificate parse.
    func paillierSession(_ a: Veil_V1_RoundAssignment, coordinator: HostileCoordinator) -> PaillierSession? {
        let plan = a.paillier
        guard let key = try? PaillierPublicKey(bigEndian: Array(plan.modulus)),
            let holder = try? FederationIdentity(der: Array(plan.keyHolderCertificate), ca: coordinator.ca),
            let roster = try? plan.rosterCertificates.map({ try FederationIdentity(der: Array($0), ca: coordinator.ca) }
            ),
            let packing = try? PaillierPacking(
                bitWidth: BitWidth(64), maxAddends: Int(plan.maxAddends), keyBits: key.bits)
        else { return nil }
        return try? PaillierSession(
            publicKey: key, packing: packing, dimension: Int(plan.dimension), round: a.round, nonce: Array(plan.nonce),
            keyHolder: holder.signingKey, coordinator: coordinator.signingKey.publicKey,
            roster: roster.map(\.signingKey),
            context: RoundPlanDigest.of(a))
    }

    /// A Paillier assignment as the coordinator would sign it; `training` may change the plan first.
    func paillierAssignment(
        _ network: NetworkSimulation, coordinator: HostileCoordinator, modulus: [UInt8], signature: [UInt8],
        keyHolderCertificate: [UInt8], roster: [FederationIdentity], position: Int, round: UInt64 = 1,
        nonce: [UInt8] = [UInt8](repeating: 6, count: 32), training: (inout Veil_V1_TrainingPlan) -> Void = { _ in }
    ) -> Veil_V1_RoundAssignment {
        var a = basicAssignment(network, round: round, cohort: roster.count)
        training(&a.training)
        a.position = UInt32(position)
        a.paillier = .with {
            $0.modulus = Data(modulus)
            $0.bits = 64
            $0.maxAddends = UInt32(roster.count)
            $0.dimension = UInt32(payloadLength)
            $0.keySignature = Data(signature)
            $0.keyHolderCertificate = Data(keyHolderCertificate)
            $0.nonce = Data(nonce)
            $0.coordinatorCertificate = Data(coordinator.identity.certificateDER)
            $0.rosterCertificates = roster.map { Data($0.certificateDER) }
        }
        if let session = paillierSession(a, coordinator: coordinator) {
            a.paillier.coordinatorSignature = Data(coordinator.signingKey.signature(for: session.announcement))
        }
        return a
    }

    /// The finding: participants encrypted under whatever modulus the assignment carried, so a
    /// coordinator that substituted its own key decrypted a participant's update alone. Each
    /// substitution is declined: an unsigned key, a key signed by the coordinator's own
    /// certificate, and the real key holder's signature over a key that is too short.
    @Test func aSubstitutedPaillierKeyIsRefused() async throws {
        let stage = try await stage(clients: 3, joining: [0], paillierBits: 1024) { $0.policy.paillierMinBits = 2048 }
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)
        let holder = try #require(network.keyHolders.first).tls.credentials(role: .keyHolder)
        let ownKey = try PaillierPrivateKey.generate(bits: 2048)
        let shortKey = try PaillierPrivateKey.generate(bits: 1024)
        let signedByCoordinator = PaillierKeyStatement(signing: ownKey.publicKey, with: coordinator.signingKey)
        let signedByHolder = PaillierKeyStatement(signing: shortKey.publicKey, with: holder.signingKey)
        let attempts: [(String, [UInt8], [UInt8], [UInt8], String)] = [
            (
                "unsigned", ownKey.publicKey.bigEndianBytes, [UInt8](repeating: 0, count: 64),
                holder.identity.certificateDER,
                "is not the one the key holder key-holder signed"
            ),
            (
                "signed by the coordinator", ownKey.publicKey.bigEndianBytes, signedByCoordinator.signature,
                coordinator.identity.certificateDER, "the key holder's certificate"
            ),
            (
                "too short", shortKey.publicKey.bigEndianBytes, signedByHolder.signature,
                holder.identity.certificateDER,
                "a 1024-bit modulus; this participant accepts 2048 bits or more"
            ),
        ]
        for (round, attempt) in attempts.enumerated() {
            let (name, modulus, signature, certificate, expected) = attempt
            let a = paillierAssignment(
                network, coordinator: coordinator, modulus: modulus, signature: signature,
                keyHolderCertificate: certificate, roster: ids, position: 1, round: UInt64(round + 1))
            coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
            let answer = try await coordinator.next(from: ids[0].id)
            switch answer.kind {
            case .paillier:
                Issue.record("\(name): the participant encrypted under a key the key holder did not sign for it")
            case .decline(let decline):
                #expect(decline.code == .declinePaillierKey, "\(name): \(decline)")
                #expect(decline.reason.contains(expected), "\(name): \(decline.reason)")
            default:
                Issue.record("\(name): unexpected answer \(answer)")
            }
        }
    }

    /// A threshold Paillier assignment (`Specs/paillier.md` §6.3) for a key encoding and holders
    /// the attacker chose, its announcement signed when the session parses.
    func thresholdAssignment(
        _ network: NetworkSimulation, coordinator: HostileCoordinator, key: ThresholdPaillierPublicKey,
        holders: [Veil_V1_ThresholdHolder], roster: [FederationIdentity], position: Int, round: UInt64
    ) -> Veil_V1_RoundAssignment {
        var a = basicAssignment(network, round: round, cohort: roster.count)
        a.position = UInt32(position)
        a.paillier = .with {
            $0.modulus = Data(key.publicKey.bigEndianBytes)
            $0.bits = 64
            $0.maxAddends = UInt32(roster.count)
            $0.dimension = UInt32(payloadLength)
            $0.thresholdKey = Data(key.canonicalEncoding)
            $0.thresholdHolders = holders
            $0.nonce = Data(repeating: 6, count: 32)
            $0.coordinatorCertificate = Data(coordinator.identity.certificateDER)
            $0.rosterCertificates = roster.map { Data($0.certificateDER) }
        }
        var signingKeys: [Int: Ed25519.PublicKey] = [:]
        for holder in holders {
            if let identity = try? FederationIdentity(der: Array(holder.certificate), ca: coordinator.ca) {
                signingKeys[Int(holder.holder)] = identity.signingKey
            }
        }
        if let packing = try? PaillierPacking(
            bitWidth: BitWidth(64), maxAddends: roster.count, keyBits: key.publicKey.bits),
            let session = try? PaillierSession(
                publicKey: key.publicKey, packing: packing, dimension: payloadLength, round: round,
                nonce: Array(a.paillier.nonce),
                decryptors: .threshold(ThresholdKeyHolders(key: key, signingKeys: signingKeys)),
                coordinator: coordinator.signingKey.publicKey, roster: roster.map(\.signingKey),
                context: RoundPlanDigest.of(a))
        {
            a.paillier.coordinatorSignature = Data(coordinator.signingKey.signature(for: session.announcement))
        }
        return a
    }

    /// The attacks on a participant whose policy names three threshold key holders: the
    /// coordinator offers one key holder's key, a key it dealt itself (under the real holders'
    /// certificates and signatures, and under its own certificate), a key of which one holder
    /// alone decrypts, fewer than t holders, and a holder under another's number. Each is
    /// declined by name; the honest plan is taken.
    @Test func aThresholdKeyOrItsHoldersCannotBeSubstituted() async throws {
        let stage = try await stage(clients: 3, joining: [0], paillierBits: 1024, threshold: (2, 3))
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)
        let key = try #require(try network.serve.loadThresholdKey())
        let holders = try network.keyHolders.map { configuration in
            let agent = try KeyHolderAgent(configuration: configuration, logger: quietLogger())
            let share = agent.hello().thresholdShare
            return Veil_V1_ThresholdHolder.with {
                $0.holder = share.holder
                $0.certificate = Data(agent.identity.certificateDER)
                $0.signature = share.signature
            }
        }
        let (ownKey, _) = try ThresholdPaillierDealer.deal(bits: 1024, threshold: 2, holders: 3)
        let (oneOfThree, _) = try ThresholdPaillierDealer.deal(bits: 1024, threshold: 1, holders: 3)
        let coordinatorAsHolder = Veil_V1_ThresholdHolder.with {
            $0.holder = 1
            $0.certificate = Data(coordinator.identity.certificateDER)
            $0.signature = Data(
                coordinator.signingKey.signature(
                    for: Array("veil/v1/paillier/threshold-share".utf8) + [0] + SHA256.hash(ownKey.canonicalEncoding)
                        + [1, 0, 0, 0]))
        }
        var swapped = holders[0]
        swapped.holder = 2
        let attempts: [(String, ThresholdPaillierPublicKey, [Veil_V1_ThresholdHolder], String)] = [
            (
                "the coordinator's own key, the holders' signatures", ownKey, holders,
                "did not sign share 1 of this threshold key"
            ),
            (
                "the coordinator's own key under its own certificate", ownKey, [coordinatorAsHolder, holders[1]],
                "threshold holder 1's certificate"
            ),
            (
                "one holder decrypts alone", oneOfThree, holders,
                "a 1-of-3 key; this participant requires 3 holders, at least 2 of them to decrypt"
            ),
            ("fewer than t", key, [holders[0]], "1 threshold holders named; a 2-of-3 key needs 2 to decrypt"),
            ("another's number", key, [swapped, holders[2]], "threshold holder 2 is key-holder-1, not key-holder-2"),
        ]
        for (round, attempt) in attempts.enumerated() {
            let (name, offered, named, expected) = attempt
            let a = thresholdAssignment(
                network, coordinator: coordinator, key: offered, holders: named, roster: ids, position: 1,
                round: UInt64(round + 1))
            coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
            let answer = try await coordinator.next(from: ids[0].id)
            guard case .decline(let decline) = answer.kind else {
                Issue.record("\(name): the participant did not decline: \(answer)")
                continue
            }
            #expect(decline.code == .declinePaillierKey, "\(name): \(decline)")
            #expect(decline.reason.contains(expected), "\(name): \(decline.reason)")
        }
        // One key holder's key, signed by one of the threshold holders: not a threshold session.
        let single = try PaillierPrivateKey.generate(bits: 1024).publicKey
        let holderCredentials = try network.keyHolders[0].tls.credentials(role: .keyHolder)
        let a = paillierAssignment(
            network, coordinator: coordinator, modulus: single.bigEndianBytes,
            signature: PaillierKeyStatement(signing: single, with: holderCredentials.signingKey).signature,
            keyHolderCertificate: holderCredentials.identity.certificateDER, roster: ids, position: 1, round: 9)
        coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
        let answer = try await coordinator.next(from: ids[0].id)
        #expect(
            answer.decline.reason.contains("one key holder's key; this participant's policy requires a threshold key"),
            "\(answer)")
        // The honest plan: the real key, two holders of three, each signed.
        let honest = thresholdAssignment(
            network, coordinator: coordinator, key: key, holders: [holders[0], holders[2]], roster: ids, position: 1,
            round: 10)
        coordinator.send(.with { $0.assignment = honest }, to: ids[0].id)
        let contributed = try await coordinator.next(from: ids[0].id)
        guard case .paillier = contributed.kind else {
            Issue.record("the honest threshold plan was not taken: \(contributed)")
            return
        }
    }

    /// A Paillier federation run by the hostile coordinator: the real key holder and three
    /// honest participants connected to it.
    struct PaillierScene {
        let stage: Stage
        let holder: KeyHolderAgent
        let holding: Task<Int, any Error>
        let key: PaillierPublicKey
        let keySignature: [UInt8]
        let record: String
        var coordinator: HostileCoordinator { stage.coordinator }
        var ids: [FederationIdentity] { stage.ids }

        func close() {
            holding.cancel()
            stage.close()
        }
    }

    func paillierScene() async throws -> PaillierScene {
        let stage = try await stage(clients: 3, paillierBits: 1024) { $0.policy.paillierMinBits = 1024 }
        do {
            var configuration = try #require(stage.network.keyHolders.first)
            configuration.port = stage.coordinator.port
            configuration.minimumContributors = 3
            configuration.maxAddends = 1000
            configuration.reconnectAttempts = 0
            let holder = try KeyHolderAgent(configuration: configuration, logger: quietLogger())
            let holding = Task { try await holder.run() }
            let hello = try await stage.coordinator.waitFor([holder.identity.id])[holder.identity.id]!
            return PaillierScene(
                stage: stage, holder: holder, holding: holding,
                key: try PaillierPublicKey(bigEndian: Array(hello.paillierKey.modulus)),
                keySignature: Array(hello.paillierKey.signature), record: configuration.record)
        } catch {
            stage.close()
            throw error
        }
    }

    /// Sends each participant (by index) its Paillier assignment; returns what each answered.
    func assign(
        _ scene: PaillierScene, _ indices: [Int], nonce: [UInt8],
        training: @escaping (Int, inout Veil_V1_TrainingPlan) -> Void = { _, _ in }
    ) async throws -> [Int: Veil_V1_ParticipantMessage] {
        for i in indices {
            let a = paillierAssignment(
                scene.stage.network, coordinator: scene.coordinator, modulus: scene.key.bigEndianBytes,
                signature: scene.keySignature, keyHolderCertificate: scene.holder.identity.certificateDER,
                roster: scene.ids, position: i + 1, nonce: nonce
            ) { training(i, &$0) }
            scene.coordinator.send(.with { $0.assignment = a }, to: scene.ids[i].id)
        }
        var answers: [Int: Veil_V1_ParticipantMessage] = [:]
        for i in indices { answers[i] = try await scene.coordinator.next(from: scene.ids[i].id) }
        return answers
    }

    func contributions(_ answers: [Int: Veil_V1_ParticipantMessage]) throws -> [Int: Veil_V1_PaillierContribution] {
        try answers.mapValues { answer in
            guard case .paillier(let contribution) = answer.kind else {
                throw ConfigurationError("no contribution: \(answer)")
            }
            return contribution
        }
    }

    /// The coordinator's request for `ciphertexts` under the session of participant `planOf`'s
    /// plan, signed, with the receipts of `receipts`.
    func request(
        _ scene: PaillierScene, ciphertexts: [PaillierCiphertext], nonce: [UInt8],
        receipts: [(position: Int, contribution: Veil_V1_PaillierContribution)],
        training: (inout Veil_V1_TrainingPlan) -> Void = { _ in }
    ) throws -> Veil_V1_DecryptRequest {
        let a = paillierAssignment(
            scene.stage.network, coordinator: scene.coordinator, modulus: scene.key.bigEndianBytes,
            signature: scene.keySignature, keyHolderCertificate: scene.holder.identity.certificateDER,
            roster: scene.ids,
            position: 1, nonce: nonce, training: training)
        let session = try #require(paillierSession(a, coordinator: scene.coordinator))
        return try .with {
            $0.round = 1
            $0.ciphertexts = ciphertexts.map { Data($0.bigEndianBytes()) }
            $0.dimension = UInt32(payloadLength)
            $0.bits = 64
            $0.maxAddends = 3
            $0.nonce = Data(nonce)
            $0.coordinatorCertificate = Data(scene.coordinator.identity.certificateDER)
            $0.rosterCertificates = scene.ids.map { Data($0.certificateDER) }
            $0.planDigest = Data(session.context)
            $0.coordinatorSignature = Data(
                scene.coordinator.signingKey.signature(for: session.decryptionRequest(ciphertexts)))
            $0.receipts = try receipts.map { position, c in
                let parsed = try c.ciphertexts.map { try scene.key.ciphertext(bigEndian: Array($0)) }
                return .with {
                    $0.position = UInt32(position)
                    $0.ciphertextDigest = Data(PaillierReceipt.digest(parsed))
                    $0.signature = c.receiptSignature
                }
            }
        }
    }

    func ask(_ scene: PaillierScene, _ request: Veil_V1_DecryptRequest) async throws -> Veil_V1_DecryptResult {
        scene.coordinator.send(.with { $0.decrypt = request }, to: scene.holder.identity.id)
        guard case .decrypted(let result) = try await scene.coordinator.next(from: scene.holder.identity.id).kind else {
            throw ConfigurationError("the key holder did not answer")
        }
        return result
    }

    func ciphertexts(_ scene: PaillierScene, _ c: Veil_V1_PaillierContribution) throws -> [PaillierCiphertext] {
        try c.ciphertexts.map { try scene.key.ciphertext(bigEndian: Array($0)) }
    }

    /// Whether a decryption is participant `i`'s FedAvg payload (its weight coordinate n_k/scale).
    func revealsPayload(_ scene: PaillierScene, _ result: Veil_V1_DecryptResult, of i: Int) throws -> Bool {
        let codec = try RoundTask.codec(scene.stage.network.serve, addends: 3)
        let values = try codec.decode(try ModularVector(elements: result.sum, bitWidth: BitWidth(64)))
        return isPayload(values, of: scene.stage.network, participant: i)
    }

    /// A participant that pins the key holder's key (`policy.paillier_fingerprint`) encrypts
    /// under that key only — even one the certified key holder signed is refused otherwise.
    @Test func aPinnedFingerprintIsEnforced() async throws {
        let scene = try await paillierScene()
        defer { scene.close() }
        let other = try PaillierPrivateKey.generate(bits: 1024).publicKey
        let stage = scene.stage
        for (i, pin) in [
            (1, PaillierKeyStatement.fingerprint(other)), (2, PaillierKeyStatement.fingerprint(scene.key)),
        ] {
            // Participant i again, on a second stream, now with a pin (the newer stream replaces the first).
            let streams = scene.coordinator.streamCount(scene.ids[i].id)
            let agents = try join(stage.network, [i], port: scene.coordinator.port) {
                $0.policy.paillierMinBits = 1024
                $0.policy.paillierFingerprint = pin
            }
            defer { agents.forEach { $0.cancel() } }
            #expect(await eventually { scene.coordinator.streamCount(scene.ids[i].id) > streams })
            let answers = try await assign(scene, [i], nonce: [UInt8](repeating: UInt8(10 + i), count: 32))
            switch answers[i]!.kind {
            case .decline(let decline) where i == 1:
                #expect(
                    decline.code == .declinePaillierKey && decline.reason.contains("not the pinned one"), "\(decline)")
            case .paillier where i == 2:
                break
            default:
                Issue.record("participant \(i + 1) with pin \(pin.prefix(8)): \(answers[i]!)")
            }
        }
    }

    /// The finding: the key holder's minimum-contributors rule trusted a count written by the
    /// coordinator, so one ciphertext labelled "1000 contributors" came back decrypted. Now:
    /// honest participants contribute to a session the attacker runs with the real key
    /// holder's key; the attacker hands the key holder one participant's ciphertexts — first
    /// with only that participant's receipt, then with all three. The first is refused; the
    /// second decrypts to that participant's input under a mask nobody but the participants
    /// could remove; the same request again gets the same answer, any other request for the
    /// round is refused, and the key holder's record says what it did (once). A request the coordinator did not sign is refused as well.
    @Test func theKeyHolderDoesNotDecryptOneParticipantsCiphertexts() async throws {
        let scene = try await paillierScene()
        defer { scene.close() }
        let nonce = [UInt8](repeating: 1, count: 32)
        let c = try contributions(try await assign(scene, [0, 1, 2], nonce: nonce))
        let all = [(1, c[0]!), (2, c[1]!), (3, c[2]!)]
        let first = try ciphertexts(scene, c[0]!)
        // 0. Unsigned: refused before anything else.
        var unsigned = try request(scene, ciphertexts: first, nonce: nonce, receipts: all)
        unsigned.coordinatorSignature = Data(repeating: 0, count: 64)
        #expect(try await ask(scene, unsigned).refusal.contains("not signed by the coordinator"))
        // 1. Only the target's own receipt: the key holder counts the receipts itself.
        let lone = try await ask(scene, try request(scene, ciphertexts: first, nonce: nonce, receipts: [all[0]]))
        #expect(lone.sum.isEmpty && lone.refusal.contains("no receipt from position 2"), "\(lone.refusal)")
        // 2. Every receipt, the target's ciphertexts alone: what comes back is masked.
        let masked = try await ask(scene, try request(scene, ciphertexts: first, nonce: nonce, receipts: all))
        #expect(masked.refusal.isEmpty, "\(masked.refusal)")
        #expect(try !revealsPayload(scene, masked, of: 0), "participant 1's payload came through unmasked")
        // 3. The very same request again (as after a lost answer): the very same sum, nothing new.
        let same = try await ask(scene, try request(scene, ciphertexts: first, nonce: nonce, receipts: all))
        #expect(same.refusal.isEmpty && same.sum == masked.sum, "\(same.refusal)")
        // 4. Any other aggregate for the same round (here the next participant's): refused.
        let second = try ciphertexts(scene, c[1]!)
        let again = try await ask(scene, try request(scene, ciphertexts: second, nonce: nonce, receipts: all))
        #expect(again.sum.isEmpty && again.refusal.contains("decrypted already"), "\(again.refusal)")
        let log = try String(contentsOfFile: scene.record, encoding: .utf8)
        #expect(log.split(separator: "\n").count == 1 && log.contains("\"round\":1"), "\(log)")
    }

    /// The second review's first finding: sending a member the same session twice — the second
    /// time with a plan that zeroes its update — gave two ciphertexts under the same mask, whose
    /// quotient decrypted to its exact input. Now the plan is in the session id (a revised plan
    /// is another session, with other masks), a member contributes to a session once, and its
    /// randomness for a session is fixed by its own key (a replay trains identically).
    @Test func aReplayedOrRevisedSessionYieldsNothing() async throws {
        let scene = try await paillierScene()
        defer { scene.close() }
        let nonce = [UInt8](repeating: 2, count: 32)
        let c = try contributions(try await assign(scene, [0, 1, 2], nonce: nonce))
        // The identical session again: declined.
        let replay = try await assign(scene, [0], nonce: nonce)[0]!
        guard case .decline(let decline) = replay.kind else {
            Issue.record("participant 1 contributed twice to one session: \(replay)")
            return
        }
        #expect(decline.reason.contains("already contributed to this session"), "\(decline.reason)")
        // The same nonce and roster with a plan that silences the update: another session.
        let silenced: (inout Veil_V1_TrainingPlan) -> Void = {
            $0.learningRate = 0; $0.weightScale = 1e15
        }
        let revised = try contributions(try await assign(scene, [0], nonce: nonce) { _, plan in silenced(&plan) })[0]!
        let original = try ciphertexts(scene, c[0]!)
        let zeroed = try ciphertexts(scene, revised)
        let quotient = try zip(original, zeroed).map { a, b in
            try scene.key.add(a, try scene.key.multiply(b, by: BigInt(-1)))
        }
        let result = try await ask(
            scene,
            try request(scene, ciphertexts: quotient, nonce: nonce, receipts: [(1, c[0]!), (2, c[1]!), (3, c[2]!)]))
        #expect(result.refusal.isEmpty, "\(result.refusal)")
        #expect(try !revealsPayload(scene, result, of: 0), "the quotient of two contributions decrypted unmasked")
    }

    /// The second review's second finding, on Paillier: the victim gets the real plan, the
    /// others a plan that zeroes their updates, so the whole-roster "sum" is the victim's
    /// input. Their sessions now differ (the plan is in the session id): whichever session the
    /// coordinator names, some receipts do not verify and the key holder refuses.
    @Test func membersGivenDifferentPlansCannotBeDecryptedTogether() async throws {
        let scene = try await paillierScene()
        defer { scene.close() }
        let nonce = [UInt8](repeating: 3, count: 32)
        let silenced: (inout Veil_V1_TrainingPlan) -> Void = {
            $0.learningRate = 0; $0.weightScale = 1e15
        }
        let c = try contributions(
            try await assign(scene, [0, 1, 2], nonce: nonce) { i, plan in if i != 0 { silenced(&plan) } })
        let parts = try [0, 1, 2].map { try ciphertexts(scene, c[$0]!) }
        let product = try zip(zip(parts[0], parts[1]), parts[2]).map { ab, c in
            try scene.key.add(try scene.key.add(ab.0, ab.1), c)
        }
        let receipts = [(1, c[0]!), (2, c[1]!), (3, c[2]!)]
        let asVictims = try await ask(scene, try request(scene, ciphertexts: product, nonce: nonce, receipts: receipts))
        #expect(asVictims.sum.isEmpty && asVictims.refusal.contains("receipt of position 2"), "\(asVictims.refusal)")
        let asOthers = try await ask(
            scene, try request(scene, ciphertexts: product, nonce: nonce, receipts: receipts, training: silenced))
        #expect(asOthers.sum.isEmpty && asOthers.refusal.contains("receipt of position 1"), "\(asOthers.refusal)")
    }

    /// The same attack on a masking round: the members' session ids differ, so the victim's
    /// advertisement does not verify for the others (nor theirs for it), and everyone stops.
    @Test func aMaskingRoundWithDifferentPlansStopsAtTheFirstMessage() async throws {
        let n = 3
        let stage = try await stage(clients: n)
        defer { stage.close() }
        let (coordinator, ids) = (stage.coordinator, stage.ids)
        let session = try session(
            stage,
            try SecAggParameters(
                clientCount: n, threshold: n, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
                threatModel: .malicious),
            nonce: 3)
        var assignments = try assignments(stage, session)
        for i in 1..<n { assignments[i].training.learningRate = 0; assignments[i].training.weightScale = 1e15 }
        let outcome = try await splitView(
            coordinator, session: session, cohort: ids, assignments: assignments, target: session.participants[0],
            groupA: session.participants, groupB: [])
        guard case .failed(let stage, let refusals) = outcome else {
            Issue.record("the round went on: \(outcome)")
            return
        }
        #expect(stage == "R1", "\(stage)")
        for id in ids.map(\.id) {
            let reason = refusals[id] ?? ""
            #expect(reason.contains("another session") || reason.contains("does not verify"), "\(id): \(reason)")
        }
    }

    /// The second review's third finding: another coordinator-role certificate of the same CA
    /// passed TLS because it named 127.0.0.1 (NIOSSL matches an IP name against the peer's
    /// address before the expected server name). Coordinator certificates now name DNS names
    /// only, so a participant connecting to "coordinator" refuses a server that is not it; and
    /// a Paillier plan the coordinator did not sign is declined.
    @Test func onlyTheCoordinatorCanServeOrOpenAPaillierSession() async throws {
        let (network, directory) = try federation(clients: 3, paillierBits: 1024)
        defer { try? FileManager.default.removeItem(at: directory) }
        let ca = try FederationCA(directory: directory)
        #expect(throws: CredentialError.self) {
            try ca.issue(id: "by-address", role: .coordinator, hosts: ["127.0.0.1"])
        }
        #expect(throws: CredentialError.self) {
            try ca.issue(id: "by-name", role: .coordinator, hosts: ["coordinator"])
        }
        // Coordinator-role certificates of the same CA that are not the coordinator: an ordinary
        // one, and two the CA should not have made (an old one naming 127.0.0.1, and one naming
        // "coordinator" as a host, as the third review made). None may serve the participants.
        _ = try ca.issue(id: "rogue-coordinator", role: .coordinator)
        try mintCoordinator(
            ca, directory: directory, id: "old-style",
            names: [.dnsName("old-style"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
        try mintCoordinator(
            ca, directory: directory, id: "impostor", names: [.dnsName("impostor"), .dnsName("coordinator")])
        for rogueID in ["rogue-coordinator", "old-style", "impostor"] {
            let rogue = try await HostileCoordinator(tls: TLSFiles(directory: directory.path, id: rogueID))
            defer { rogue.finish() }
            let agents = try join(network, [0], port: rogue.port)
            defer { agents.forEach { $0.cancel() } }
            let id = try identities(network)[0].id
            if (try? await rogue.waitFor([id], timeout: 3)) != nil {
                Issue.record("\(rogueID): a participant registered with a server that is not its coordinator")
                continue
            }
            guard case .failure = await agents[0].result else {
                Issue.record("\(rogueID): the participant's connection did not fail")
                continue
            }
        }
        // The real coordinator's connection, a plan without its signature.
        let scene = try await paillierScene()
        defer { scene.close() }
        var a = paillierAssignment(
            scene.stage.network, coordinator: scene.coordinator, modulus: scene.key.bigEndianBytes,
            signature: scene.keySignature, keyHolderCertificate: scene.holder.identity.certificateDER,
            roster: scene.ids,
            position: 1, nonce: [UInt8](repeating: 4, count: 32))
        a.paillier.coordinatorSignature = Data(repeating: 1, count: 64)
        scene.coordinator.send(.with { $0.assignment = a }, to: scene.ids[0].id)
        let decline = try await declineOrRecord(scene.coordinator, scene.ids[0].id)
        #expect(
            decline?.code == .declineCoordinator && decline?.reason.contains("not signed by the coordinator") == true)
    }

    /// A coordinator-role certificate with arbitrary subject alternative names, signed with the
    /// CA's key as a careless CA operator (or an older version) could have: its key files are
    /// written beside it for a ``HostileCoordinator``.
    func mintCoordinator(_ ca: FederationCA, directory: URL, id: String, names: [GeneralName]) throws {
        let caKey = try P256.Signing.PrivateKey(
            pemRepresentation: try String(contentsOf: directory.appendingPathComponent("ca.key.pem"), encoding: .utf8))
        let tlsKey = P256.Signing.PrivateKey()
        let signing = Ed25519.PrivateKey()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(tlsKey.publicKey),
            notValidBefore: Date().addingTimeInterval(-300), notValidAfter: Date().addingTimeInterval(3600),
            issuer: ca.certificate.subject, subject: try DistinguishedName { CommonName(id) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
                Certificate.Extension(oid: VeilExtensions.role, critical: false, value: try utf8("coordinator"))
                Certificate.Extension(
                    oid: VeilExtensions.signingKey, critical: false,
                    value: try octets(signing.publicKey.rawRepresentation))
            },
            issuerPrivateKey: .init(caKey))
        try (try certificate.serializeAsPEM().pemString + "\n").write(
            to: directory.appendingPathComponent("\(id).cert.pem"), atomically: true, encoding: .utf8)
        try FederationCA.writeSecret(tlsKey.pemRepresentation, to: directory.appendingPathComponent("\(id).key.pem"))
        try FederationCA.writeSecret(
            Hex.encode(signing.seed.unsafeExposedBytes()) + "\n",
            to: directory.appendingPathComponent("\(id).signing.key"))
    }

    // MARK: - Differential privacy

    /// A distributed-DP plan for `clients` (ε = 8, every one of them a noise share) and a
    /// masking session of its padded dimension with t = n.
    func distributedSession(_ stage: Stage, clients n: Int, nonce: UInt8) throws -> (
        ServicePrivacyPlan, DistributedDP, SecAggSession
    ) {
        var settings = ServicePrivacy(epsilon: 8, mode: .ddg)
        settings.minContributors = n
        let plan = try ServicePrivacyPlan(
            settings, rounds: 1, updateLength: parameterCount, minParticipants: n, cohortSize: n)
        let mechanism = try #require(plan.distributed)
        let session = try session(
            stage,
            try SecAggParameters(
                clientCount: n, threshold: n, neighborCount: n - 1, bitWidth: mechanism.bitWidth,
                dimension: mechanism.paddedDimension, threatModel: .malicious),
            nonce: nonce)
        return (plan, mechanism, session)
    }

    /// The finding: a participant's budget was consulted only when the assignment carried a
    /// distributed-DP plan, so a coordinator that omitted the plan got noise-free updates and
    /// the participant recorded ε = 0. A budgeted participant now declines a round without a
    /// plan, a round whose noise the coordinator says it will add itself (central DP: the
    /// participant cannot check it), and a round whose plan costs more than its per-round cap.
    @Test func roundsABudgetedParticipantCannotCostAreDeclined() async throws {
        let n = 3
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent(
            "veil-ledger-\(UUID().uuidString).json"
        ).path
        defer { try? FileManager.default.removeItem(atPath: ledger) }
        let stage = try await stage(clients: n, joining: [0]) {
            $0.privacyBudget = ParticipantBudget(epsilon: 100, ledger: ledger, maxRoundEpsilon: 2)
        }
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)
        let (plan, mechanism, session) = try distributedSession(stage, clients: n, nonce: 9)
        // Without a plan, a session of the payload's own length: what an honest round without
        // noise looks like (the distributed-DP session is of the plan's padded length).
        let plain = try self.session(
            stage,
            try SecAggParameters(
                clientCount: n, threshold: n, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
                threatModel: .malicious),
            nonce: 10)
        let base = try assignment(network, coordinator: coordinator, session: plain, cohort: ids, position: 1)
        var central = base
        central.training.dpClip = 1
        var expensive = try assignment(network, coordinator: coordinator, session: session, cohort: ids, position: 1)
        expensive.distributedDp = plan.plan(mechanism)
        for (round, (name, a, expected)) in [
            ("no plan", base, "no distributed-DP privacy plan"),
            ("central noise", central, "no distributed-DP privacy plan"),
            ("ε = 8 in one round", expensive, "over the per-round cap 2"),
        ].enumerated() {
            var a = a
            a.round = UInt64(round + 1)
            coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
            let answer = try await coordinator.next(from: ids[0].id)
            switch answer.kind {
            case .decline(let decline):
                #expect(decline.code == .declinePrivacy, "\(name): \(decline)")
                #expect(decline.reason.contains(expected), "\(name): \(decline.reason)")
            case .secagg:
                Issue.record("\(name): the budgeted participant joined a round it cannot cost")
            default:
                Issue.record("\(name): unexpected answer \(answer)")
            }
        }
        // Nothing was spent.
        #expect(
            try ParticipantLedger(ParticipantBudget(epsilon: 100, ledger: ledger, maxRoundEpsilon: 2)).spent(ids[0].id)
                == 0)
    }

    /// Without a subset a masking session sums the whole payload, the update then the weight:
    /// a session of another length is declined as the coordinator's doing, before any training
    /// (review, helper-53: the browser trained for a 50,000,000-value session, then declined).
    @Test func aSessionOfAnotherLengthThanThePayloadIsDeclinedBeforeTraining() async throws {
        let n = 3
        let stage = try await stage(clients: n, joining: [0])
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)
        for (round, dimension) in [payloadLength + 1, payloadLength - 1, 50_000_000].enumerated() {
            let parameters = try SecAggParameters(
                clientCount: n, threshold: n, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: dimension,
                threatModel: .malicious)
            var a = try assignment(
                network, coordinator: coordinator, session: try session(stage, parameters, nonce: UInt8(30 + round)),
                cohort: ids, position: 1)
            a.round = UInt64(round + 1)
            coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
            let answer = try await coordinator.next(from: ids[0].id)
            guard case .decline(let decline) = answer.kind else {
                Issue.record("d = \(dimension): unexpected answer \(answer)")
                continue
            }
            #expect(decline.code == .declinePolicy, "d = \(dimension): \(decline)")
            #expect(decline.reason.contains("the session sums \(dimension) values"), "\(decline.reason)")
        }
    }

    /// A coordinate subset scales each value sent by (d − 1)/k (Specs/export.md §5.2); under
    /// differential privacy the participant clips what it scaled (ParticipantPolicyTests), and
    /// the noise must be for exactly the k values it sends. A coordinator that lies about the
    /// pairing — a distributed-DP plan for every coordinate beside a subset of k, a session
    /// that sums another length — or sends a malformed subset is declined before training, as
    /// the coordinator's doing; a plan for the k values, on a session of their padded length,
    /// is taken part in.
    @Test func aSubsetUnderDifferentialPrivacyMustFitItsPlan() async throws {
        let n = 3
        let stage = try await stage(clients: n, joining: [0])
        defer { stage.close() }
        let (network, coordinator, ids) = (stage.network, stage.coordinator, stage.ids)
        let (plan, mechanism, session) = try distributedSession(stage, clients: n, nonce: 11)
        let k = parameterCount / 10
        var base = try assignment(network, coordinator: coordinator, session: session, cohort: ids, position: 1)
        base.encoding.subsetSize = UInt32(k)
        base.encoding.subsetSeed = Data(CoordinateSubset.seed(runSeed: 1, round: 1))
        var central = base  // the session sums the DP-padded length, not k + 1
        central.training.dpClip = 1
        var everyCoordinate = base
        everyCoordinate.distributedDp = plan.plan(mechanism)
        // Malformed subsets, without DP.
        var shortSeed = base
        shortSeed.encoding.subsetSeed = Data(repeating: 1, count: 31)
        var tooMany = base
        tooMany.encoding.subsetSize = UInt32(parameterCount + 1)
        // The honest pairing: a mechanism for the k values, a session of their padded length.
        let subsetMechanism = try DistributedDP.calibrate(dominatedBy: mechanism, dimension: k, maximumParticipants: n)
        let subsetSession = try self.session(
            stage,
            try SecAggParameters(
                clientCount: n, threshold: n, neighborCount: n - 1, bitWidth: subsetMechanism.bitWidth,
                dimension: subsetMechanism.paddedDimension, threatModel: .malicious),
            nonce: 12)
        var honest = try assignment(network, coordinator: coordinator, session: subsetSession, cohort: ids, position: 1)
        honest.encoding.subsetSize = UInt32(k)
        honest.encoding.subsetSeed = base.encoding.subsetSeed
        honest.distributedDp = plan.plan(subsetMechanism)
        // A scale whose scaled values 64-bit integers cannot hold (its local variance is 1): the
        // participant trapped converting them; now the plan is refused.
        var hugeScale = honest
        hugeScale.distributedDp.unitScale = 0x1p63
        hugeScale.distributedDp.unitLocalStddev = 0x1p-63
        for (round, (name, a, expected, code)) in [
            (
                "a plan for every coordinate", everyCoordinate,
                "the distributed-DP plan is for \(parameterCount) values", Veil_V1_DeclineCode.declinePolicy
            ),
            ("a session of another length", central, "the session sums", .declinePolicy),
            ("a 31-byte seed", shortSeed, "malformed coordinate subset", .declinePolicy),
            ("k = d", tooMany, "malformed coordinate subset", .declinePolicy),
            ("a scale of 2^63", hugeScale, "at most 2^62", .declinePrivacy),
            ("the plan for the subset", honest, nil, .declinePolicy),
        ].enumerated() {
            var a = a
            a.round = UInt64(round + 1)
            coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
            let answer = try await coordinator.next(from: ids[0].id)
            switch (answer.kind, expected) {
            case (.decline(let decline), let expected?):
                #expect(decline.code == code, "\(name): \(decline)")
                #expect(decline.reason.contains(expected), "\(name): \(decline.reason)")
            case (.secagg, nil): break
            default: Issue.record("\(name): unexpected answer \(answer)")
            }
        }
    }
}
