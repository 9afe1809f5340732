import Foundation
import Logging
import Testing
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilTestSupport
import VeilWire

@testable import VeilSecAgg
@testable import VeilService

/// A coordinator that deviates — holding the coordinator's real credentials and speaking the
/// real wire protocol (``HostileCoordinator``) — against unmodified participants and key
/// holders. Each test runs one attack of the outside review (issue 10) and requires that it
/// learns nothing about an individual input, and that the honest parties say why.
@Suite(.serialized) struct HostileCoordinatorTests {
    /// A CA, the coordinator's credentials and `clients` participants' (certificates, data).
    func federation(clients: Int, paillierBits: Int? = nil) throws -> (NetworkSimulation, URL) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-hostile-coordinator")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = 1
        c.partition = .iid
        let network = try NetworkSimulation(
            configuration: c, directory: directory, roundDeadlineSeconds: 10, paillierBits: paillierBits)
        return (network, directory)
    }

    /// Starts the honest participants against the hostile coordinator.
    func join(_ network: NetworkSimulation, _ indices: [Int], port: Int, _ edit: (inout JoinConfiguration) -> Void = { _ in })
        throws -> [Task<ParticipantSummary, any Error>]
    {
        try indices.map { i in
            var join = network.participants[i].join
            join.port = port
            join.reconnectAttempts = 0
            edit(&join)
            let agent = try ParticipantAgent(configuration: join, data: network.participants[i].data, logger: quietLogger())
            return Task { try await agent.run() }
        }
    }

    /// The assignment an honest coordinator would send for a masking round, with the threshold
    /// and threat model the attacker chose.
    func assignment(
        _ network: NetworkSimulation, coordinator: HostileCoordinator, session: SecAggSession, cohort: [FederationIdentity],
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
        let codec = try! Coordinator.codec(serve, addends: cohort)  // the configuration's ring fits
        a.encoding = .with {
            $0.clip = codec.clip
            $0.fractionalBits = UInt32(codec.fractionalBits)
            $0.bits = UInt32(codec.bitWidth.bits)
            $0.maxAddends = UInt32(codec.maxAddends)
        }
        a.roundDeadlineMillis = 10_000
        return a
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
            coordinator.send(.with { $0.secagg = .with { $0.round = 1; $0.signed = Data(m.encoded) } }, to: id(p))
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
            guard let m = await next(p) else { return .failed("R1", refusals: refusals) }
            shares[p] = try ShareKeysBody(decoding: m.body)
        }
        // R2: each participant's shares, honestly.
        for v in everyone {
            let forwarded = everyone.filter { $0 != v }.map { u in
                let entry = shares[u]!.shares.first { $0.peer == v.rawValue }!
                return EncryptedShares(peer: u.rawValue, nonce: entry.nonce, ciphertext: entry.ciphertext)
            }
            send(.maskedInputCollection, to: v, SharesForwardBody(shares: forwarded).encoded)
        }
        var masked: [ParticipantID: ModularVector] = [:]
        for p in everyone {
            guard let m = await next(p) else { return .failed("R2", refusals: refusals) }
            masked[p] = try MaskedInputBody.decode(
                m.body, bitWidth: session.parameters.bitWidth, dimension: session.parameters.dimension)
        }
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
        let (network, directory) = try federation(clients: n)
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await HostileCoordinator(tls: network.serve.tls)
        defer { coordinator.finish() }
        let agents = try join(network, Array(0..<n), port: coordinator.port)
        defer { agents.forEach { $0.cancel() } }
        let ids = network.participants.map { $0.join.tls }.map { try! $0.credentials(role: .participant).identity }
        try await coordinator.waitFor(ids.map(\.id))

        let threat = try ThreatModel(adversary: .honestButCuriousServer, corruptFraction: 0, dropoutFraction: 0)
        let parameters = try SecAggParameters(
            clientCount: n, threshold: 3, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
            threatModel: threat)
        let session = try SecAggSession(
            parameters: parameters, serverIdentity: coordinator.signingKey.publicKey,
            clientIdentities: ids.map(\.signingKey), nonce: [UInt8](repeating: 7, count: 32))
        let assignments = try (1...n).map {
            try assignment(network, coordinator: coordinator, session: session, cohort: ids, position: $0)
        }
        let participants = session.participants
        let outcome = try await splitView(
            coordinator, session: session, cohort: ids, assignments: assignments, target: participants[0],
            groupA: Array(participants[0..<3]), groupB: Array(participants[3...]))
        switch outcome {
        case .recovered(let input):
            let codec = try Coordinator.codec(network.serve, addends: n)
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

    // MARK: - Paillier

    /// The finding: participants encrypt under whatever modulus the assignment carries, so a
    /// coordinator that substitutes its own key decrypts a participant's update alone.
    @Test func aSubstitutedPaillierKeyIsRefused() async throws {
        let (network, directory) = try federation(clients: 3)
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await HostileCoordinator(tls: network.serve.tls)
        defer { coordinator.finish() }
        let agents = try join(network, [0], port: coordinator.port)
        defer { agents.forEach { $0.cancel() } }
        let target = network.participants[0].join.tls
        let id = try target.credentials(role: .participant).identity.id
        try await coordinator.waitFor([id])

        let ownKey = try PaillierPrivateKey.generate(bits: 2048)
        let packing = try PaillierPacking(bitWidth: BitWidth(64), maxAddends: 3, keyBits: 2048)
        var a = basicAssignment(network, round: 1, cohort: 3)
        a.position = 1
        a.paillier = .with {
            $0.modulus = Data(ownKey.publicKey.bigEndianBytes)
            $0.bits = 64
            $0.maxAddends = 3
            $0.dimension = UInt32(payloadLength)
        }
        coordinator.send(.with { $0.assignment = a }, to: id)
        let answer = try await coordinator.next(from: id)
        switch answer.kind {
        case .paillier(let contribution):
            let ciphertexts = try contribution.ciphertexts.map { try ownKey.publicKey.ciphertext(bigEndian: Array($0)) }
            let holder = PaillierKeyHolder(privateKey: ownKey, packing: packing, minimumContributors: 1)
            let sum = try holder.decrypt(
                EncryptedAggregate(ciphertexts: ciphertexts, dimension: payloadLength, contributors: [ParticipantID(1)])
            ).sum
            let values = try Coordinator.codec(network.serve, addends: 3).decode(sum)
            Issue.record(
                "the participant encrypted under the coordinator's own key: its update decrypted (a payload: \(isPayload(values, of: network, participant: 0)))"
            )
        case .decline(let decline):
            #expect(decline.reason.contains("key holder"), "\(decline.reason)")
        default:
            Issue.record("unexpected answer \(answer)")
        }
    }

    /// The finding: the key holder's minimum-contributors rule trusted a count written by the
    /// coordinator, so one ciphertext labelled "1000 contributors" came back decrypted.
    @Test func theKeyHolderDoesNotDecryptOneCiphertextWithAnInflatedCount() async throws {
        let (network, directory) = try federation(clients: 3, paillierBits: 1024)
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await HostileCoordinator(tls: network.serve.tls)
        defer { coordinator.finish() }
        var holderConfiguration = try #require(network.keyHolder)
        holderConfiguration.port = coordinator.port
        holderConfiguration.minimumContributors = 3
        holderConfiguration.maxAddends = 1000
        holderConfiguration.reconnectAttempts = 0
        let holder = try KeyHolderAgent(configuration: holderConfiguration, logger: quietLogger())
        let running = Task { try await holder.run() }
        defer { running.cancel() }
        try await coordinator.waitFor([holder.identity.id])

        // One participant's ciphertext, as the coordinator receives it in a round.
        let publicKey = try PaillierKeyFiles.publicKey(
            from: try Data(contentsOf: URL(fileURLWithPath: try #require(network.serve.paillierPublicKey))))
        let packing = try PaillierPacking(bitWidth: BitWidth(64), maxAddends: 1000, keyBits: publicKey.bits)
        let secret = try ModularVector(elements: [42, 7, 1_000_000], bitWidth: BitWidth(64))
        let contributor = PaillierContributor(
            encryptor: DJNEncryptor(publicKey: publicKey, precomputeTable: false), packing: packing)
        var request = Veil_V1_DecryptRequest()
        request.round = 1
        request.ciphertexts = try contributor.encrypt(secret).map { Data($0.bigEndianBytes()) }
        request.dimension = 3
        request.contributors = 1000
        request.bits = 64
        request.maxAddends = 1000
        coordinator.send(.with { $0.decrypt = request }, to: holder.identity.id)
        let answer = try await coordinator.next(from: holder.identity.id)
        guard case .decrypted(let result) = answer.kind else {
            Issue.record("unexpected answer \(answer)")
            return
        }
        #expect(result.sum != secret.elements, "the key holder decrypted a single ciphertext: \(result.sum)")
        #expect(result.sum.isEmpty && !result.refusal.isEmpty, "\(result)")
    }

    // MARK: - Differential privacy

    /// The finding: a participant's budget was consulted only when the assignment carried a
    /// distributed-DP plan, so a coordinator that omits the plan gets noise-free updates and
    /// the participant records ε = 0.
    @Test func aRoundWithoutAPrivacyPlanIsDeclinedByABudgetedParticipant() async throws {
        let n = 3
        let (network, directory) = try federation(clients: n)
        defer { try? FileManager.default.removeItem(at: directory) }
        let coordinator = try await HostileCoordinator(tls: network.serve.tls)
        defer { coordinator.finish() }
        let ledger = directory.appendingPathComponent("ledger.json").path
        let agents = try join(network, [0], port: coordinator.port) {
            $0.privacyBudget = ParticipantBudget(epsilon: 1, ledger: ledger)
        }
        defer { agents.forEach { $0.cancel() } }
        let ids = network.participants.map { $0.join.tls }.map { try! $0.credentials(role: .participant).identity }
        try await coordinator.waitFor([ids[0].id])

        let threat = try ThreatModel(adversary: .maliciousServer, corruptFraction: 0.05, dropoutFraction: 0)
        let parameters = try SecAggParameters(
            clientCount: n, threshold: n, neighborCount: n - 1, bitWidth: BitWidth(64), dimension: payloadLength,
            threatModel: threat)
        let session = try SecAggSession(
            parameters: parameters, serverIdentity: coordinator.signingKey.publicKey,
            clientIdentities: ids.map(\.signingKey), nonce: [UInt8](repeating: 9, count: 32))
        var a = try assignment(network, coordinator: coordinator, session: session, cohort: ids, position: 1)
        a.session.adversary = 1
        coordinator.send(.with { $0.assignment = a }, to: ids[0].id)
        let answer = try await coordinator.next(from: ids[0].id)
        switch answer.kind {
        case .decline(let decline):
            #expect(decline.reason.contains("privacy plan"), "\(decline.reason)")
        case .secagg:
            Issue.record("the budgeted participant joined a round without a privacy plan (its update is noise-free)")
        default:
            Issue.record("unexpected answer \(answer)")
        }
    }
}
