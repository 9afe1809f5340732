import Foundation
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilSecAgg
import VeilWire

/// What a participant checks before it trains or sends anything (`Specs/wire.md` §3.1): who
/// the session's server is, who is in the roster, whether the parameters meet its own policy,
/// whose key it would encrypt under, and what the round costs its privacy budget. Every
/// refusal is a ``Declined`` with the code and reason the coordinator is told.
extension ParticipantAgent {
    struct PreparedRound {
        var client: SecAggClient<SystemRandom>
    }

    /// A certificate checked against the CA and required to have `role`, remembered by its
    /// bytes: the same neighbours come back round after round, and verifying is the expensive part.
    func verifiedIdentity(_ der: [UInt8], _ role: FederationRole) throws -> FederationIdentity {
        let digest = SHA256.hash(der)
        if let known = verified.lookup(digest) { return try known.requiring(role) }
        let identity = try FederationIdentity(der: der, ca: ca)
        verified.store(digest, identity)
        return try identity.requiring(role)
    }

    /// The session's server must be the coordinator this participant connected to — the one
    /// TLS verified under `configuration.coordinator` — not just any coordinator-role certificate.
    func checkCoordinator(_ der: Data) throws(Declined) -> FederationIdentity {
        let coordinator: FederationIdentity
        do { coordinator = try verifiedIdentity(Array(der), .coordinator) } catch {
            throw Declined(.declineCoordinator, "the session's coordinator certificate: \(error)")
        }
        guard coordinator.id == configuration.coordinator else {
            throw Declined(
                .declineCoordinator,
                "the session names coordinator \(coordinator.id), but this participant connected to \(configuration.coordinator)"
            )
        }
        return coordinator
    }

    /// A masking round: checks the assignment against the policy, trains, encodes, and builds
    /// the secure-sum client.
    func prepare(_ a: Veil_V1_RoundAssignment) throws(Declined) -> PreparedRound {
        let d = a.session
        let coordinator = try checkCoordinator(d.coordinatorCertificate)
        var keys: [Ed25519.PublicKey] = []
        for raw in d.rosterSigningKeys {
            guard let key = try? Ed25519.PublicKey(rawRepresentation: Array(raw)) else {
                throw Declined(.declineRoster, "a roster key is not an Ed25519 public key")
            }
            keys.append(key)
        }
        let position = ParticipantID(a.position)
        guard a.position >= 1, Int(a.position) <= keys.count, keys[Int(a.position) - 1] == identity.signingKey else {
            throw Declined(.declineRoster, "the roster does not list this participant's key at position \(a.position)")
        }
        // The parameters against this participant's own policy: its adversary, γ, δ, σ, smallest
        // cohort and release floor. Whatever threat model the coordinator announces, n, t and k
        // must meet these.
        let policy = try! configuration.policy.secAgg()  // validated when the configuration was loaded
        let (n, t, k) = (Int(d.clientCount), Int(d.threshold), Int(d.neighborCount))
        guard keys.count == n else { throw Declined(.declineRoster, "\(keys.count) roster keys for \(n) participants") }
        do { try policy.check(clientCount: n, threshold: t, neighborCount: k) } catch {
            throw Declined(.declinePolicy, "n = \(n), threshold \(t), k = \(k): \(error)")
        }
        guard let adversary = ThreatModel.Adversary(rawValue: UInt8(clamping: d.adversary)) else {
            throw Declined(.declinePolicy, "unknown adversary \(d.adversary)")
        }
        let session: SecAggSession
        do {
            // The adversary's byte enters the session id; the rest of the model is this
            // participant's own, already checked.
            let model = try ThreatModel(
                adversary: adversary, corruptFraction: policy.threatModel.corruptFraction,
                dropoutFraction: policy.threatModel.dropoutFraction, securityBits: policy.threatModel.securityBits)
            let parameters = try SecAggParameters(
                clientCount: n, threshold: t, neighborCount: k, bitWidth: BitWidth(Int(d.bits)),
                dimension: Int(d.dimension), threatModel: model)
            session = try SecAggSession(
                parameters: parameters, serverIdentity: coordinator.signingKey, clientIdentities: keys,
                nonce: Array(d.nonce), context: RoundPlanDigest.of(a))
        } catch {
            throw Declined(.declinePolicy, "the session: \(error)")
        }
        // Every neighbour's key must be bound to a distinct participant of this federation by a
        // certificate: this participant verifies messages from its neighbours only.
        let neighbors = Set(session.graph.neighbors(of: position))
        var ids: Set<String> = [identity.id]
        var covered: Set<ParticipantID> = []
        for entry in d.neighborCertificates {
            let neighbor = ParticipantID(entry.position)
            guard neighbors.contains(neighbor), !covered.contains(neighbor) else {
                throw Declined(.declineRoster, "a certificate for position \(entry.position), not a neighbour")
            }
            let holder: FederationIdentity
            do { holder = try verifiedIdentity(Array(entry.certificate), .participant) } catch {
                throw Declined(.declineRoster, "the certificate at position \(entry.position): \(error)")
            }
            guard holder.signingKey == keys[Int(entry.position) - 1], ids.insert(holder.id).inserted else {
                throw Declined(
                    .declineRoster, "the certificate at position \(entry.position) does not match the roster")
            }
            covered.insert(neighbor)
        }
        guard covered == neighbors else {
            throw Declined(.declineRoster, "certificates missing for \(neighbors.count - covered.count) neighbours")
        }

        try checkPayloadLength(a)
        try checkAsynchronous(a)
        var distributed: (mechanism: DistributedDP, rotation: RandomizedHadamard)?
        var cost: RDPAccountant?
        if a.hasDistributedDp {
            // The participant adds the noise, so it checks the plan itself: the sum can be
            // unmasked only with at least `threshold` inputs, each carrying a noise share, and
            // the cost is what this mechanism costs, whatever the coordinator's ledger says.
            let mechanism: DistributedDP
            do { mechanism = try ServicePrivacyPlan.checked(a.distributedDp, against: session.parameters) } catch {
                throw Declined(.declinePrivacy, "\(error)")
            }
            let participation = ServicePrivacyPlan.participation(mechanism)
            try admit(participation)
            do { distributed = (mechanism, try ServicePrivacyPlan.rotation(a.distributedDp)) } catch {
                throw Declined(.declinePrivacy, "the distributed-DP plan's rotation: \(error)")
            }
            cost = participation
        } else {
            try admit(nil)
        }
        // One set of keys per session: a second R0 in the same session (an assignment sent
        // again) would let the server show different keys to different neighbours.
        guard contributedSessions.insert(session.id) else {
            throw Declined(.declinePolicy, "this participant has already taken part in this session")
        }
        var randomness = roundRandomness(session.id)
        // An asynchronous round trains nothing: it spends the held update, charged now.
        let exampleLevel = a.hasAsynchronous ? try heldExampleLevelCost() : try exampleLevelCost(a.training)
        let input = try training { try trainAndEncode(a, distributed: distributed, randomness: &randomness) }
        try chargeExampleLevel(exampleLevel)
        // Charged as soon as the noisy input exists, before anything of it leaves: a round that
        // fails later is over-counted, never under-counted.
        if let cost {
            do { try ledger?.charge(identity.id, cost) } catch {
                throw Declined(.declinePrivacy, "cannot record the round in the privacy ledger: \(error)")
            }
        }
        do {
            let client = try SecAggClient(
                session: session, id: position, identityKey: signingKey, input: input, generator: SystemRandom())
            return PreparedRound(client: client)
        } catch {
            throw Declined(.declineTraining, "the encoded input does not fit the session: \(error)")
        }
    }

    /// The key a Paillier plan encrypts under and who may decrypt it, checked against this
    /// participant's policy: the one key holder it names, having signed the modulus — or, with
    /// `key_holders`, a threshold key of exactly those holders with t at least
    /// `min_key_holder_threshold`, at least t of them named, each certified and having signed
    /// its share of that key (`Specs/paillier.md` §6.3); then the size and the pin.
    func paillierKey(_ plan: Veil_V1_PaillierPlan) throws(Declined) -> (PaillierPublicKey, PaillierDecryptors) {
        let policy = configuration.policy
        let key: PaillierPublicKey
        let decryptors: PaillierDecryptors
        let fingerprint: String
        if let expected = policy.keyHolders {
            guard !plan.thresholdKey.isEmpty else {
                throw Declined(
                    .declinePaillierKey,
                    "one key holder's key; this participant's policy requires a threshold key of \(expected.joined(separator: ", "))"
                )
            }
            let thresholdKey: ThresholdPaillierPublicKey
            do { thresholdKey = try ThresholdPaillierPublicKey(canonicalEncoding: Array(plan.thresholdKey)) } catch {
                throw Declined(.declinePaillierKey, "the threshold key: \(error)")
            }
            guard thresholdKey.holders == expected.count, thresholdKey.threshold >= policy.minKeyHolderThreshold,
                thresholdKey.hasIntersectingQuorums
            else {
                throw Declined(
                    .declinePaillierKey,
                    "a \(thresholdKey.threshold)-of-\(thresholdKey.holders) key; this participant requires \(expected.count) holders, at least \(max(policy.minKeyHolderThreshold, expected.count / 2 + 1)) of them to decrypt (more than half, so that two quorums share a holder)"
                )
            }
            guard Array(plan.modulus) == thresholdKey.publicKey.bigEndianBytes else {
                throw Declined(.declinePaillierKey, "the modulus is not the threshold key's n")
            }
            var signingKeys: [Int: Ed25519.PublicKey] = [:]
            for entry in plan.thresholdHolders {
                let number = Int(entry.holder)
                guard (1...expected.count).contains(number), signingKeys[number] == nil else {
                    throw Declined(.declinePaillierKey, "threshold holder \(number) is out of range or named twice")
                }
                let holder: FederationIdentity
                do { holder = try verifiedIdentity(Array(entry.certificate), .keyHolder) } catch {
                    throw Declined(.declinePaillierKey, "threshold holder \(number)'s certificate: \(error)")
                }
                guard holder.id == expected[number - 1] else {
                    throw Declined(
                        .declinePaillierKey,
                        "threshold holder \(number) is \(holder.id), not \(expected[number - 1]) as this participant's policy says"
                    )
                }
                guard
                    ThresholdShareStatement(key: thresholdKey, holder: number, signature: Array(entry.signature))
                        .isSigned(by: holder.signingKey)
                else {
                    throw Declined(
                        .declinePaillierKey, "\(holder.id) did not sign share \(number) of this threshold key")
                }
                signingKeys[number] = holder.signingKey
            }
            guard signingKeys.count >= thresholdKey.threshold else {
                throw Declined(
                    .declinePaillierKey,
                    "\(signingKeys.count) threshold holders named; a \(thresholdKey.threshold)-of-\(thresholdKey.holders) key needs \(thresholdKey.threshold) to decrypt"
                )
            }
            key = thresholdKey.publicKey
            decryptors = .threshold(ThresholdKeyHolders(key: thresholdKey, signingKeys: signingKeys))
            fingerprint = thresholdKey.fingerprint
        } else {
            guard plan.thresholdKey.isEmpty, plan.thresholdHolders.isEmpty else {
                throw Declined(
                    .declinePaillierKey,
                    "a threshold key; this participant's policy names one key holder, \(policy.keyHolder)")
            }
            let holder: FederationIdentity
            do { holder = try verifiedIdentity(Array(plan.keyHolderCertificate), .keyHolder) } catch {
                throw Declined(.declinePaillierKey, "the key holder's certificate: \(error)")
            }
            guard holder.id == policy.keyHolder else {
                throw Declined(
                    .declinePaillierKey, "the key is signed by \(holder.id), not by the key holder \(policy.keyHolder)")
            }
            do { key = try PaillierPublicKey(bigEndian: Array(plan.modulus)) } catch {
                throw Declined(.declinePaillierKey, "the modulus: \(error)")
            }
            guard
                PaillierKeyStatement(publicKey: key, signature: Array(plan.keySignature)).isSigned(
                    by: holder.signingKey)
            else {
                throw Declined(.declinePaillierKey, "the modulus is not the one the key holder \(holder.id) signed")
            }
            decryptors = .keyHolder(holder.signingKey)
            fingerprint = PaillierKeyStatement.fingerprint(key)
        }
        guard key.bits >= policy.paillierMinBits else {
            throw Declined(
                .declinePaillierKey,
                "a \(key.bits)-bit modulus; this participant accepts \(policy.paillierMinBits) bits or more")
        }
        if let pin = policy.paillierFingerprint, pin.lowercased() != fingerprint {
            throw Declined(.declinePaillierKey, "the key's fingerprint is not the pinned one")
        }
        return (key, decryptors)
    }

    /// A Paillier round (`Specs/paillier.md` §6.1): checks the key holder's signature on the
    /// key, the key's size and pin, the coordinator and every member of the roster; then
    /// trains, encodes, packs, masks, encrypts and signs the receipt.
    func contribute(_ a: Veil_V1_RoundAssignment) throws(Declined) -> (
        contribution: Veil_V1_PaillierContribution, session: PaillierSession, digest: [UInt8]
    ) {
        let plan = a.paillier
        let policy = configuration.policy
        let coordinator = try checkCoordinator(plan.coordinatorCertificate)
        let (key, decryptors) = try paillierKey(plan)
        // The roster: every member a distinct participant of this federation, this one at its position.
        var members: [Ed25519.PublicKey] = []
        var ids: Set<String> = []
        for (i, der) in plan.rosterCertificates.enumerated() {
            let member: FederationIdentity
            do { member = try verifiedIdentity(Array(der), .participant) } catch {
                throw Declined(.declineRoster, "the certificate at position \(i + 1): \(error)")
            }
            guard ids.insert(member.id).inserted else {
                throw Declined(.declineRoster, "\(member.id) appears twice in the roster")
            }
            members.append(member.signingKey)
        }
        guard a.position >= 1, Int(a.position) <= members.count, members[Int(a.position) - 1] == identity.signingKey
        else {
            throw Declined(.declineRoster, "the roster does not list this participant at position \(a.position)")
        }
        // A Paillier sum covers the whole roster (its masks cancel only there): the roster is the release.
        let floor = max(policy.minCohort, policy.minContributors)
        guard members.count >= floor else {
            throw Declined(
                .declinePolicy, "a roster of \(members.count); this participant's policy requires at least \(floor)")
        }
        try checkPayloadLength(a)
        try checkAsynchronous(a)
        try admit(nil)
        let session: PaillierSession
        do {
            let packing = try PaillierPacking(
                bitWidth: BitWidth(Int(plan.bits)), maxAddends: Int(plan.maxAddends), keyBits: key.bits)
            session = try PaillierSession(
                publicKey: key, packing: packing, dimension: Int(plan.dimension), round: a.round,
                nonce: Array(plan.nonce), decryptors: decryptors, coordinator: coordinator.signingKey,
                roster: members, context: RoundPlanDigest.of(a))
        } catch {
            throw Declined(.declinePolicy, "the session: \(error)")
        }
        // Only the coordinator itself — its signing key, not merely its public certificate —
        // can open a session.
        guard coordinator.signingKey.isValidSignature(Array(plan.coordinatorSignature), for: session.announcement)
        else {
            throw Declined(.declineCoordinator, "the session is not signed by the coordinator \(coordinator.id)")
        }
        // One contribution per session: the masks are the session's, and two contributions under
        // the same masks would let their quotient be decrypted unmasked.
        guard contributedSessions.insert(session.id) else {
            throw Declined(.declinePolicy, "this participant has already contributed to this session")
        }
        var randomness = roundRandomness(session.id)
        // An asynchronous round trains nothing: it spends the held update, charged now.
        let exampleLevel = a.hasAsynchronous ? try heldExampleLevelCost() : try exampleLevelCost(a.training)
        let input = try training { try trainAndEncode(a, randomness: &randomness) }
        try chargeExampleLevel(exampleLevel)
        do {
            let contributor = MaskedPaillierContributor(
                session: session, position: ParticipantID(a.position), signingKey: signingKey,
                encryptor: encryptors.encryptor(for: key))
            let (ciphertexts, receipt) = try contributor.contribute(input)
            let contribution = Veil_V1_PaillierContribution.with {
                $0.round = a.round
                $0.ciphertexts = ciphertexts.map { Data($0.bigEndianBytes()) }
                $0.receiptSignature = Data(receipt.signature)
            }
            return (contribution, session, receipt.ciphertextDigest)
        } catch {
            throw Declined(.declineTraining, "the payload does not fit the round's packing: \(error)")
        }
    }

    /// What the session sums against what this participant will send, checked before any
    /// training. Without a subset, a masking session sums the whole payload (the update, then
    /// the weight). With a coordinate subset (`Specs/export.md` §5.2): k within the payload this
    /// participant computes from the plan, a 32-byte seed, and a session that sums k + 1
    /// values — or, with a distributed-DP plan, a plan for exactly the k values (their weight
    /// is not sent) whose padded length the session sums. Whatever the subset, this participant
    /// clips what it scaled to the DP clip (``trainAndEncode``), so a subset cannot raise what
    /// the release reveals of its update beyond what the plan costs.
    func checkPayloadLength(_ a: Veil_V1_RoundAssignment) throws(Declined) {
        let e = a.encoding
        let plan = a.training
        // A plan whose model cannot be built is declined by training, with its own reason.
        guard
            let model = try? FederatedModel(plan.model, featureCount: Int(plan.features), classCount: Int(plan.classes))
        else { return }
        // The FedAvg family's payload: the update, then the weight.
        let updates = model.parameterCount
        guard e.subsetSize > 0 else {
            // A masking round without a subset sums the whole payload. Checked before training,
            // so that a session of another length — 50,000,000 values, say — costs nothing
            // (review, helper-53); a distributed-DP session's length is its plan's, checked there.
            if !a.hasPaillier, !a.hasDistributedDp, Int(a.session.dimension) != updates + 1 {
                throw Declined(
                    .declinePolicy,
                    "the session sums \(a.session.dimension) values, but this model's payload is \(updates + 1)")
            }
            return
        }
        guard e.subsetSeed.count == CoordinateSubset.seedByteCount, Int(e.subsetSize) <= updates else {
            throw Declined(
                .declinePolicy,
                "a malformed coordinate subset: k = \(e.subsetSize) of \(updates) update coordinates, a \(e.subsetSeed.count)-byte seed"
            )
        }
        if a.hasDistributedDp, !a.hasPaillier {  // a Paillier round carries no distributed-DP plan
            guard a.distributedDp.dimension == e.subsetSize else {
                throw Declined(
                    .declinePolicy,
                    "the distributed-DP plan is for \(a.distributedDp.dimension) values, but a subset of \(e.subsetSize) coordinates sends \(e.subsetSize)"
                )
            }
            return  // the session's length is the plan's padded one, checked with the plan
        }
        let dimension = a.hasPaillier ? a.paillier.dimension : a.session.dimension
        guard Int(dimension) == Int(e.subsetSize) + 1 else {
            throw Declined(
                .declinePolicy,
                "the session sums \(dimension) values, but a subset of \(e.subsetSize) coordinates sends \(Int(e.subsetSize) + 1)"
            )
        }
    }

    /// With a budget: the round's cost against the ledger and the per-round cap. Nil — no
    /// distributed-DP plan, whatever else the coordinator says it will do — costs ε = ∞.
    func admit(_ cost: RDPAccountant?) throws(Declined) {
        guard let ledger, let budget = configuration.privacyBudget else { return }
        guard let cost else {
            throw Declined(
                .declinePrivacy,
                "no distributed-DP privacy plan: this participant has a budget and cannot cost a round whose noise it does not add itself (it counts as ε = ∞)"
            )
        }
        if let cap = budget.maxRoundEpsilon {
            let epsilon = cost.epsilon(delta: budget.delta).epsilon
            guard epsilon <= cap else {
                throw Declined(
                    .declinePrivacy,
                    String(format: "this round would cost ε = %.4g, over the per-round cap %.4g", epsilon, cap))
            }
        }
        do { try ledger.admit(identity.id, cost) } catch {
            throw Declined(.declinePrivacy, "\(error)")
        }
    }

    /// DP-SGD's cost of this round's local training on this participant's rows (`Specs/privacy.md`
    /// §8), from the plan's batch size and epochs, or nil without DP-SGD. A round that would take
    /// the example-level ε past `dp_sgd.epsilon` is declined before any training.
    func exampleLevelCost(_ plan: Veil_V1_TrainingPlan) throws(Declined) -> (cost: RDPAccountant, steps: Int)? {
        guard let settings = configuration.dpSgd, let data else { return nil }
        return try exampleLevelCost(
            settings.privacy, examples: data.count, batchSize: Int(plan.batchSize), epochs: Int(plan.localEpochs))
    }

    /// The cost of spending the held update (an asynchronous round, `Specs/wire.md` §4.4): its
    /// DP-SGD training's, charged when it is released rather than when it was trained, so that
    /// offers that are never summed cost nothing. nil without DP-SGD or without a held update
    /// (the round is then declined for that); one trained without DP-SGD cannot be spent by a
    /// participant that now requires it.
    func heldExampleLevelCost() throws(Declined) -> (cost: RDPAccountant, steps: Int)? {
        guard configuration.dpSgd != nil, let held = asynchronous.held else { return nil }
        guard let training = held.exampleLevel else {
            throw Declined(
                .declinePrivacy, "the held update was trained without DP-SGD, which this participant now requires")
        }
        return try exampleLevelCost(
            training.privacy, examples: held.examples, batchSize: training.batchSize, epochs: training.epochs)
    }

    private func exampleLevelCost(_ privacy: ExampleLevelPrivacy, examples: Int, batchSize batch: Int, epochs: Int)
        throws(Declined) -> (cost: RDPAccountant, steps: Int)?
    {
        guard let settings = configuration.dpSgd, let exampleLedger else { return nil }
        let steps = ExampleLevelPrivacy.schedule(examples: examples, batchSize: batch, epochs: epochs).steps
        let cost = privacy.cost(examples: examples, batchSize: batch, epochs: epochs)
        if let budget = settings.epsilon {
            let after = exampleLedger.epsilon(adding: cost)
            guard after <= budget else {
                throw Declined(
                    .declinePrivacy,
                    String(
                        format:
                            "DP-SGD: this round's %d steps would take the example-level ε to %.4g, over its budget %.4g",
                        steps, after, budget))
            }
        }
        return (cost, steps)
    }

    /// Charged once trained, before anything of the update leaves: a round that fails later is
    /// over-counted, never under-counted.
    func chargeExampleLevel(_ charge: (cost: RDPAccountant, steps: Int)?) throws(Declined) {
        guard let charge, let exampleLedger else { return }
        do { try exampleLedger.charge(charge.cost, steps: charge.steps) } catch {
            throw Declined(.declinePrivacy, "cannot record the round in the example-level ledger: \(error)")
        }
        logger.info(
            "DP-SGD",
            metadata: [
                "example_epsilon": "\(exampleLedger.epsilon())", "steps": "\(exampleLedger.steps)",
                "rounds": "\(exampleLedger.rounds)",
            ])
    }

    /// This participant's randomness for one session: a generator keyed from its signing key
    /// and the session id. Secret to everyone else; different for every session (a retry, a
    /// renumbered round); the same for the same session, so that a replayed session yields the
    /// same input and differencing two contributions reveals nothing.
    func roundRandomness(_ sessionID: [UInt8]) -> ChaCha20Generator {
        try! ChaCha20Generator(  // a 32-byte derivation
            seed: VeilKDF.derive32(.participantRound, from: signingKey.seed, salt: sessionID))
    }

    /// The most local epochs a plan may ask for: more is a coordinator keeping the participant
    /// busy, not training.
    static let maxLocalEpochs: UInt32 = 1000

    /// Training and encoding failures are this participant's, not the coordinator's.
    func training<T>(_ body: () throws -> T) throws(Declined) -> T {
        do { return try body() } catch {
            throw Declined(.declineTraining, "\(error)")
        }
    }

    /// The loss report for `a` (`Specs/orchestration.md` §5.1) when join.json asks for one and
    /// the assignment wants one: the broadcast model's mean loss on this participant's rows,
    /// before training, clipped and noised as `loss_report` says. A round number already
    /// reported gets the same report again (no fresh noise to average); past `max_reports`
    /// nothing more is revealed. nil when nothing is to be sent or the model does not fit.
    func lossReport(_ a: Veil_V1_RoundAssignment) -> Veil_V1_LossReport? {
        guard let settings = configuration.lossReport, let data, a.lossClip > 0, a.lossClip.isFinite else { return nil }
        return lossReports.report(round: a.round, limit: settings.maxReports) {
            let plan = a.training
            guard
                let model = try? makeModel(
                    plan.model, featureCount: Int(plan.features), classCount: Int(plan.classes)),
                let global = a.model.vectors.first?.values, global.count == model.parameterCount,
                data.featureCount == Int(plan.features)
            else { return nil }
            let loss = model.evaluate(Array(global), on: data).loss
            var noise = NoiseSource.system().generator(
                party: identity.id + "/loss", round: Int(truncatingIfNeeded: a.round))
            return Veil_V1_LossReport.with {
                $0.round = a.round
                $0.loss = settings.report(loss, clip: min(settings.clip, a.lossClip), using: &noise)
            }
        }
    }

    /// Local training (the FedAvg family's client rule, by Veil's trainer or the user's) — or, in
    /// an asynchronous round, the update this participant holds, weighted by its staleness —
    /// and the fixed-point encoding.
    /// - Parameter distributed: the round's distributed-DP mechanism and rotation, if the
    ///   participant adds the noise (`Specs/wire.md` §4.3).
    /// - Parameter randomness: the session's generator (``roundRandomness(_:)``): the minibatch
    ///   order and the encoding's rounding.
    func trainAndEncode(
        _ a: Veil_V1_RoundAssignment, distributed: (mechanism: DistributedDP, rotation: RandomizedHadamard)? = nil,
        randomness: inout ChaCha20Generator
    ) throws -> ModularVector {
        let plan = a.training
        // DP weighs every participant alike (a sample-count weight has no bound).
        let uniformWeight = plan.dpClip > 0 || distributed != nil
        let trained: HeldUpdate
        var weight: Double
        if a.hasAsynchronous {
            (trained, weight) = try spendHeldUpdate(a)
        } else {
            // The minibatch order: the participant's own session randomness, salted with the
            // round's seed. A coordinator that repeats a round (an attempt, or a "new" round on
            // the same model) cannot make the participant train identically and difference the
            // two sums exactly.
            trained = try train(plan, model: a.model, round: a.round, seed: plan.seed ^ randomness.next())
            weight = 1
        }
        weight *= uniformWeight ? 1 : Double(trained.examples) / plan.weightScale
        var payload = trained.delta.map { weight * $0 } + [weight]
        let e = a.encoding
        if e.subsetSize > 0 {
            // The public subset every member sends (checked by checkPayloadLength), scaled by
            // (d − 1)/k; with DP the scaled values are clipped below, after the scaling, so that
            // what is released is within the clip the noise is calibrated to (Specs/export.md §5.4).
            let subset = try CoordinateSubset(
                length: payload.count, size: Int(e.subsetSize), seed: Array(e.subsetSeed))
            payload = subset.compress(payload)
        }
        if let (mechanism, rotation) = distributed {
            let clip = a.distributedDp.clip
            guard clip > 0, clip.isFinite else {
                throw ParticipantError.session("the distributed-DP clip must be positive")
            }
            let update = L2Clipping.clip(Array(payload.dropLast()), to: clip).clipped
            var noise = NoiseSource.system().generator(party: identity.id, round: Int(truncatingIfNeeded: a.round))
            return try mechanism.encode(
                update, bound: clip, rotation: rotation, rounding: &randomness, noiseGenerator: &noise)
        }
        let codec = try FixedPointCodec(
            clip: e.clip, fractionalBits: Int(e.fractionalBits), bitWidth: BitWidth(Int(e.bits)),
            maxAddends: Int(e.maxAddends))
        if plan.dpClip > 0 {
            // Central DP (Specs/wire.md §4.2): the update, with weight 1, clipped so that after
            // rounding its norm is still within C; the weight coordinate is the coordinator's.
            let slack = ServicePrivacyPlan.slack(length: payload.count, fractionalBits: codec.fractionalBits)
            guard slack < plan.dpClip else {
                throw ParticipantError.session("the DP clip \(plan.dpClip) is below the payload's rounding slack")
            }
            payload = L2Clipping.clip(Array(payload.dropLast()), to: plan.dpClip - slack).clipped + [0]
        }
        return try codec.encode(payload, using: &randomness)
    }

    /// Trains on `model` as `plan` says, by Veil's trainer or the user's: the unweighted
    /// difference w − w_global and the examples trained on.
    func train(_ plan: Veil_V1_TrainingPlan, model global: Veil_V1_Model, round: UInt64, seed: UInt64) throws
        -> HeldUpdate
    {
        let model = try FederatedModel(plan.model, featureCount: Int(plan.features), classCount: Int(plan.classes))
        guard let start = global.vectors.first?.values, start.count == model.parameterCount else {
            throw ParticipantError.session("the broadcast model does not fit \(plan.model)")
        }
        guard start.allSatisfy(\.isFinite) else {
            throw ParticipantError.session("the broadcast model holds a value that is not finite")
        }
        guard plan.batchSize >= 1, (1...Self.maxLocalEpochs).contains(plan.localEpochs) else {
            throw ParticipantError.session(
                "the plan's batch size \(plan.batchSize) and local epochs \(plan.localEpochs): need a batch of at least 1 and 1 to \(Self.maxLocalEpochs) epochs"
            )
        }
        if let trainer {
            return try trainExternally(
                plan, global: Array(start), round: round, trainer: trainer, schema: model.schema, seed: seed)
        }
        guard let model = model.veil else {
            throw ParticipantError.session(
                "the model is known by its tensors only: it is trained by the participant's own trainer (join.json trainer), not Veil's"
            )
        }
        return try trainWithVeil(plan, global: global, round: round, model: model, seed: seed)
    }

    /// Veil's own trainer on this participant's rows: the FedAvg family's client rule, at
    /// weight 1 (the caller weights the difference).
    private func trainWithVeil(
        _ plan: Veil_V1_TrainingPlan, global: Veil_V1_Model, round: UInt64, model: any Model, seed: UInt64
    ) throws -> HeldUpdate {
        guard let data else { throw ParticipantError.session("no data for Veil's trainer") }
        guard data.featureCount == Int(plan.features) else {
            throw ParticipantError.session(
                "this participant's data has \(data.featureCount) features, the model \(plan.features)")
        }
        let algorithm = FedAvgFamily(
            name: plan.algorithm, initial: Array(global.vectors[0].values), proximalMu: plan.proximalMu)
        let stream = SHA256.hash(Array(identity.id.utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var context = ClientContext(
            id: ParticipantID(1), data: data, model: model, epochs: Int(plan.localEpochs),
            batchSize: Int(plan.batchSize),
            optimizer: SGD(learningRate: plan.learningRate, momentum: plan.momentum, weightDecay: plan.weightDecay),
            weightScale: Double(max(data.count, 1)), generator: Xoshiro256(seed: seed, stream: stream), state: [:])
        if let settings = configuration.dpSgd {
            // The noise protects the examples: from the operating system, never from the plan.
            context.privateTraining = (
                settings.privacy,
                NoiseSource.system().generator(party: identity.id + "/dp-sgd", round: Int(truncatingIfNeeded: round))
            )
        }
        let payload = algorithm.clientUpdate(global.vectors.map { Array($0.values) }, &context)
        // p̃ = n/n = 1 exactly: the difference as it is.
        return HeldUpdate(
            baseVersion: 0, model: plan.model, offerDigest: "", delta: Array(payload.dropLast()), examples: data.count)
    }

    /// The user's trainer (`Specs/trainer.md`): it returns its parameters after local training
    /// and its example count n; the caller weights w − w_global by p̃ = n / weight_scale (1
    /// under DP), exactly as for Veil's own trainer.
    private func trainExternally(
        _ plan: Veil_V1_TrainingPlan, global: [Double], round: UInt64, trainer: ExternalTrainer,
        schema: TensorSchema, seed: UInt64
    ) throws -> HeldUpdate {
        let request = TrainingRequest(
            round: round, seed: seed & (1 << 53 - 1), model: plan.model, features: Int(plan.features),
            classes: Int(plan.classes), algorithm: plan.algorithm, localEpochs: Int(plan.localEpochs),
            batchSize: Int(plan.batchSize), learningRate: plan.learningRate, momentum: plan.momentum,
            weightDecay: plan.weightDecay, proximalMu: plan.proximalMu, data: trainer.configuration.data,
            schema: schema, global: global)
        let trained = try trainer.train(request)
        if !trained.metrics.isEmpty {
            logger.info(
                "trainer metrics",
                metadata: ["round": "\(round)", "metrics": "\(trained.metrics.sorted { $0.key < $1.key })"])
        }
        return HeldUpdate(
            baseVersion: 0, model: plan.model, offerDigest: "", delta: zip(trained.parameters, global).map { $0 - $1 },
            examples: Int(trained.examples))
    }

    /// An asynchronous round against this participant's own policy (`Specs/wire.md` §4.4): the
    /// update it holds may be at most `policy.max_staleness` versions behind the plan's — the
    /// plan every member's session binds — so that no member's weight is below 1/√(1 + that)
    /// of its own p̃, whatever versions the coordinator told whom.
    /// Every member of the session trained on the one offer the plan names — the same model and
    /// training plan, like a synchronous round's — so that no member's update can be made to
    /// vanish by an offer of its own (review, helper-36).
    func checkAsynchronous(_ a: Veil_V1_RoundAssignment) throws(Declined) {
        guard a.hasAsynchronous, let held = asynchronous.held else { return }
        let version = a.asynchronous.version
        guard held.baseVersion == a.asynchronous.baseVersion,
            held.offerDigest == Hex.encode(Array(a.asynchronous.offerDigest))
        else {
            throw Declined(
                .declinePolicy,
                "the round sums updates trained on another offer (version \(a.asynchronous.baseVersion)) than this participant's (version \(held.baseVersion))"
            )
        }
        guard held.baseVersion <= version, version - held.baseVersion <= UInt64(configuration.policy.maxStaleness)
        else {
            throw Declined(
                .declinePolicy,
                "the held update (version \(held.baseVersion)) is not within this participant's max_staleness \(configuration.policy.maxStaleness) of version \(version)"
            )
        }
    }

    /// An asynchronous round's input (`Specs/wire.md` §4.4): the held update, given up before it
    /// is used so that no other session gets it, and its staleness weight s(τ) = 1/√(1 + τ),
    /// τ = the plan's version − the update's base version. One that does not fit the round's
    /// model is dropped (it never will), so that the next offer trains again.
    func spendHeldUpdate(_ a: Veil_V1_RoundAssignment) throws -> (HeldUpdate, Double) {
        let plan = a.asynchronous
        let length = try FederatedModel(
            a.training.model, featureCount: Int(a.training.features), classCount: Int(a.training.classes)
        ).parameterCount
        guard let held = asynchronous.held else {
            throw ParticipantError.session("an asynchronous round, and no update is held")
        }
        guard held.delta.count == length, held.model == a.training.model else {
            try asynchronous.discard()
            throw ParticipantError.session(
                "the held update (\(held.delta.count) values) was trained for another model than the round's (\(length)): dropped"
            )
        }
        guard held.baseVersion <= plan.version, plan.version - held.baseVersion <= UInt64(plan.maxStaleness) else {
            throw ParticipantError.session(
                "the held update (version \(held.baseVersion)) is not within staleness \(plan.maxStaleness) of version \(plan.version)"
            )
        }
        guard let taken = try asynchronous.take(if: { $0 == held }) else {
            throw ParticipantError.session("the held update was replaced while the round was checked")
        }
        return (taken, ServiceAsynchrony.weight(staleness: plan.version - taken.baseVersion))
    }
}
