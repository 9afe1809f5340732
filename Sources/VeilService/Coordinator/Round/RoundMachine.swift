import Foundation
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilSecAgg
import VeilWire

/// One attempt at one round, from the assignments to the sum, as a sans-IO state machine:
/// ``handle(_:)`` takes what happened (a participant's message, a disconnection, a deadline)
/// and returns what to do (messages to send, a deadline to start, a dropout to record, the
/// end). It owns no socket, no clock and no store; the ``Coordinator`` actor executes its
/// actions, so every path of a round — including those that only a deadline or a lost
/// connection reaches — runs in a unit test.
///
/// The secure sum is one of two backends: a masking session (``SecAggServer``) or a masked
/// Paillier collection followed by the key holder's decryption (`Specs/paillier.md` §6).
struct RoundMachine {
    enum Backend {
        case masking(Masking)
        case paillier(PaillierCollection)
    }

    /// A masking round: the secure-aggregation server, and — with distributed DP — the
    /// participants' mechanism and the round's rotation (the sum is their encoding, not the codec's).
    struct Masking {
        var server: SecAggServer
        let distributed: DistributedRelease?
    }

    struct DistributedRelease {
        let mechanism: DistributedDP
        let rotation: RandomizedHadamard
    }

    /// A Paillier round: every member's masked ciphertexts and receipt, then the key holder —
    /// or t of the threshold key holders, each answer checked on its own.
    struct PaillierCollection {
        let session: PaillierSession
        var aggregator: PaillierAggregator
        var receipts: [ParticipantID: PaillierReceipt] = [:]
        /// The roster's certificates, in position order: the key holder checks the receipts
        /// against them.
        let rosterCertificates: [Data]
        /// The coordinator's certificate and key: the decryption request is signed, so that the
        /// key holder decrypts only what the coordinator of this session asked for.
        let coordinatorCertificate: Data
        let signingKey: Ed25519.PrivateKey
        /// The key holders the session names, by number (the one key holder is number 1).
        let keyHolders: [Int: String]
        /// The threshold holders as the decryption request names them (threshold sessions).
        let wireHolders: [Veil_V1_ThresholdHolder]
        /// The key holders whose streams are open (the round is planned only when enough are).
        var connectedHolders: Set<String>
        /// The decryption request, once sent: sent again, unchanged, to a key holder that
        /// reconnects before answering (it answers the same request twice, nothing else).
        var request: Veil_V1_DecryptRequest?
        var aggregate: [PaillierCiphertext] = []
        /// For the audit record (`Specs/audit.md` §7): each accepted contribution's ciphertexts
        /// as received, the r_j that re-randomised the aggregate, and the sum the key holder
        /// signed, with its signature — or each threshold holder's signed partials.
        var ciphertexts: [ParticipantID: [Data]] = [:]
        var rerandomizers: [BigInt] = []
        var released: (sum: [UInt64], signature: [UInt8])?
        /// Threshold holders' answers: their partials (checked when t are in), refusals, and
        /// the holders left out — for a failing proof (attributed) or a malformed answer.
        var answers: [Int: ThresholdAnswer] = [:]
        var refusals: [Int: String] = [:]
        var leftOut: [Int: String] = [:]
        /// The answers the released sum was combined from (the audit record names them).
        var combinedFrom: [Int] = []
        var contributed: Set<ParticipantID> { Set(receipts.keys) }

        init(
            session: PaillierSession, aggregator: PaillierAggregator, rosterCertificates: [Data],
            coordinatorCertificate: Data, signingKey: Ed25519.PrivateKey, keyHolders: [Int: String],
            wireHolders: [Veil_V1_ThresholdHolder]
        ) {
            self.session = session
            self.aggregator = aggregator
            self.rosterCertificates = rosterCertificates
            self.coordinatorCertificate = coordinatorCertificate
            self.signingKey = signingKey
            self.keyHolders = keyHolders
            self.wireHolders = wireHolders
            connectedHolders = Set(keyHolders.values)
        }

        /// How many key holders must answer: 1, or the threshold key's t.
        var needed: Int { session.thresholdHolders?.key.threshold ?? 1 }

        func number(of id: String) -> Int? { keyHolders.first { $0.value == id }?.key }
    }

    /// A threshold holder's signed answer: its partials decoded, and as sent.
    struct ThresholdAnswer {
        let partials: [PartialDecryption]
        let result: Veil_V1_DecryptResult
    }

    let number: Int
    let attempt: Int
    /// position − 1 → participant id.
    let cohort: [String]
    let positions: [String: ParticipantID]
    let codec: FixedPointCodec
    /// The round's coordinate subset: the sum is of these coordinates only.
    let subset: CoordinateSubset?

    /// The distributed-DP mechanism the members encoded with, in a masking round that has one.
    var distributedMechanism: DistributedDP? {
        if case .masking(let masking) = backend { return masking.distributed?.mechanism }
        return nil
    }
    let deadlines: RoundDeadlines
    private(set) var backend: Backend
    /// Where the round is; each new stage starts a deadline.
    private(set) var stage: RoundStage?
    /// Counts the deadlines started: one that fires for an earlier stage is stale.
    private(set) var deadlineGeneration = 0
    /// SHA-256 chain over the session id and every protocol message, in the order handled.
    private(set) var transcript: [UInt8]
    private(set) var bytesIn = 0
    private(set) var bytesOut = 0
    /// Masking rounds: every participant message given to the server, every deadline and every
    /// server message, in order — the log of the audit record (`Specs/audit.md`) — with the
    /// session it belongs to and the faults attributed.
    private(set) var auditLog: [SecAggAuditEvent] = []
    var auditedSession: AuditedSession?
    /// Paillier rounds: the session as the audit record names it (`Specs/audit.md` §7).
    var auditedPaillier: AuditedPaillierSession?
    private(set) var auditedFaults: [String] = []
    /// Members who declined, or whose stream closed: dropouts as soon as nobody else is awaited.
    private(set) var declined: Set<ParticipantID> = []
    /// Members who declined because their secure-sum client aborted (`DECLINE_ABORTED`): often
    /// for another member's fault (shares that fail authentication), so not theirs to carry.
    private(set) var aborted: Set<String> = []
    private(set) var disconnected: Set<ParticipantID> = []
    private(set) var ended: RoundEnd?

    init(
        number: Int, attempt: Int, cohort: [String], codec: FixedPointCodec, subset: CoordinateSubset?,
        deadlines: RoundDeadlines, backend: Backend, sessionID: [UInt8]
    ) {
        self.number = number
        self.attempt = attempt
        self.cohort = cohort
        var positions: [String: ParticipantID] = [:]
        for (i, id) in cohort.enumerated() { positions[id] = ParticipantID(UInt32(i + 1)) }
        self.positions = positions
        self.codec = codec
        self.subset = subset
        self.deadlines = deadlines
        self.backend = backend
        transcript = sessionID
    }

    /// The release floor: the masking session's t, or the whole Paillier roster.
    var threshold: Int {
        if case .masking(let masking) = backend { return masking.server.parameters.threshold }
        return cohort.count
    }

    /// Paillier: the members who have not contributed (the next attempt leaves them out).
    var missingContributors: [String] {
        guard case .paillier(let collection) = backend else { return [] }
        return cohort.filter { !collection.contributed.contains(positions[$0]!) }
    }

    /// The id of the session the audit record names (the masking or the Paillier session id):
    /// what the coordinator's receipt for the record signs.
    var auditedSessionID: [UInt8]? {
        switch backend {
        case .masking: auditedSession?.session.id
        case .paillier(let collection): auditedPaillier == nil ? nil : collection.session.id
        }
    }

    func id(of position: ParticipantID) -> String { cohort[Int(position.rawValue) - 1] }

    /// The first stage and its deadline: call once, after the assignments are sent.
    mutating func start() -> [RoundAction] {
        var actions: [RoundAction] = []
        enterCurrentStage(&actions)
        return actions
    }

    mutating func handle(_ event: RoundEvent) -> [RoundAction] {
        var actions: [RoundAction] = []
        guard ended == nil else {
            if let sender = event.participantMessageSender { actions.append(.refused(from: sender, .outOfRound)) }
            return actions
        }
        switch event {
        case .secagg(let message, let id): receiveMasked(message, from: id, &actions)
        case .contribution(let contribution, let id): receiveContribution(contribution, from: id, &actions)
        case .declined(let decline, let id):
            if decline.round == UInt64(number), let position = positions[id] {
                declined.insert(position)
                if decline.code == .declineAborted { aborted.insert(id) }
            }
        case .decryption(let result, let id): receiveDecryption(result, from: id, &actions)
        case .disconnected(let id):
            if let position = positions[id] { disconnected.insert(position) }
        case .keyHolderConnected(let id): setKeyHolder(id, connected: true, &actions)
        case .keyHolderDisconnected(let id): setKeyHolder(id, connected: false, &actions)
        case .deadline(let generation):
            guard generation == deadlineGeneration else { return actions }
            deadlinePassed(&actions)
        }
        // The stage first (a message may have advanced the session), then an early close of
        // that stage, then the stage that close leads to: each drop is labelled with its stage.
        if ended == nil { enterCurrentStage(&actions) }
        if ended == nil { closeIfOnlyAbsenteesRemain(&actions) }
        if ended == nil { enterCurrentStage(&actions) }
        if ended == nil { endIfThresholdUnreachable(&actions) }
        return actions
    }

    /// The coordinator is stopping: the attempt ends now, recorded as interrupted — unless
    /// the key holder is decrypting it: it decrypts a round once, so an answer thrown away
    /// would block the round for good; that attempt ends by its answer or its deadline.
    mutating func interrupt() -> [RoundAction] {
        var actions: [RoundAction] = []
        guard stage != .decrypting else { return actions }
        end(.aborted(RoundAbort(.interrupted, "the coordinator was stopped during the round")), &actions)
        return actions
    }

    // MARK: - Masking

    private mutating func receiveMasked(
        _ message: Veil_V1_SecAggMessage, from id: String, _ actions: inout [RoundAction]
    ) {
        guard case .masking(var masking) = backend, message.round == UInt64(number), let position = positions[id]
        else { return actions.append(.refused(from: id, .outOfRound)) }
        bytesIn += message.signed.count
        transcript = SHA256.hash(transcript, Array(message.signed))
        auditLog.append(.received(position, Array(message.signed)))
        let serverActions = masking.server.receive(encoded: Array(message.signed), from: position)
        backend = .masking(masking)
        apply(serverActions, &actions)
    }

    /// Closes the current protocol round: its laggards become dropouts.
    private mutating func closeProtocolRound(_ actions: inout [RoundAction]) {
        guard case .masking(var masking) = backend else { return }
        auditLog.append(.deadline)
        let serverActions = masking.server.closeRound()
        backend = .masking(masking)
        apply(serverActions, &actions)
    }

    private mutating func apply(_ serverActions: [ServerAction], _ actions: inout [RoundAction]) {
        for action in serverActions {
            switch action {
            case .send(let message):
                let encoded = message.encoded
                bytesOut += encoded.count
                transcript = SHA256.hash(transcript, encoded)
                auditLog.append(.sent(encoded))
                let secagg = Veil_V1_SecAggMessage.with {
                    $0.round = UInt64(number)
                    $0.signed = Data(encoded)
                }
                actions.append(.send(.with { $0.secagg = secagg }, to: id(of: ParticipantID(message.recipient))))
            case .dropped(let position, let reason):
                // A silent participant is not told (it is not listening); one whose message
                // failed a check is, with the reason.
                let silent = reason == .noResponse
                actions.append(
                    .dropped(
                        id: id(of: position), stage: stage ?? .masking(.advertiseKeys), code: reason.code,
                        notice: silent ? nil : "dropped from round \(number): \(reason)"))
            case .attributed(let evidence):
                auditedFaults.append(
                    "\(evidence.fault.rawValue):\(evidence.participant.rawValue):\(evidence.counterpart.rawValue)")
                actions.append(
                    .attributed(
                        id: id(of: evidence.participant), code: evidence.fault.rawValue,
                        detail: detail(of: evidence), evidence: evidence.encoded))
            case .completed(let result):
                end(.completed(result), &actions)
            case .aborted(let abort):
                end(.aborted(RoundAbort(.secureSum, "\(abort)")), &actions)
            }
        }
    }

    /// What a log line and the attribution record say about a fault.
    private func detail(of evidence: SecAggEvidence) -> String {
        let other = id(of: evidence.counterpart)
        return switch evidence.fault {
        case .invalidShares: "its encrypted shares for \(other) do not open, as \(other) proved"
        case .falseComplaint: "proved that \(other)'s shares do not open, but they open and are valid"
        case .falseReport:
            "reported \(other)'s shares as unsigned, but they are signed for it (or the keys it was shown differ)"
        case .inconsistentSecret:
            "the shares it endorsed do not lie on one polynomial, or do not give its own committed secret or key"
        case .invalidComplaint: "sent a complaint about \(other) whose proof does not verify"
        case .wrongShare: "revealed a share of \(other)'s secret that \(other) did not endorse"
        }
    }

    // MARK: - Paillier

    /// A member's ciphertexts and receipt: checked and added to the aggregate, or — malformed,
    /// or a receipt that is not the member's — its sender dropped.
    private mutating func receiveContribution(
        _ contribution: Veil_V1_PaillierContribution, from id: String, _ actions: inout [RoundAction]
    ) {
        guard case .paillier(var collection) = backend, stage == .collecting,
            contribution.round == UInt64(number), let position = positions[id],
            !collection.contributed.contains(position), !declined.contains(position)
        else { return actions.append(.refused(from: id, .outOfRound)) }
        bytesIn += contribution.ciphertexts.reduce(0) { $0 + $1.count }
        do {
            let key = collection.aggregator.publicKey
            let ciphertexts = try contribution.ciphertexts.map { try key.ciphertext(bigEndian: Array($0)) }
            let receipt = PaillierReceipt(
                position: position, ciphertextDigest: PaillierReceipt.digest(ciphertexts),
                signature: Array(contribution.receiptSignature))
            guard receipt.isValid(in: collection.session) else {
                throw PaillierSessionError.invalidReceipt(position: position.rawValue)
            }
            try collection.aggregator.add(ciphertexts, from: position)
            collection.receipts[position] = receipt
            collection.ciphertexts[position] = contribution.ciphertexts
            for c in contribution.ciphertexts { transcript = SHA256.hash(transcript, Array(c)) }
        } catch {
            declined.insert(position)
            actions.append(
                .dropped(
                    id: id, stage: .collecting, code: "malformed", notice: "dropped from round \(number): \(error)"))
        }
        backend = .paillier(collection)
    }

    /// Collection is over (everyone answered, or the deadline). The masks cancel only over the
    /// whole roster, so the aggregate goes to the key holder only when every member
    /// contributed; otherwise the attempt ends.
    private mutating func closeCollection(_ actions: inout [RoundAction]) {
        guard case .paillier(var collection) = backend, stage == .collecting else { return }
        let missing = missingContributors
        guard missing.isEmpty else {
            return end(
                .aborted(
                    RoundAbort(
                        .missingContributions,
                        "\(missing.count) of \(cohort.count) members did not contribute (\(missing.sorted().joined(separator: ", "))): a Paillier round needs the whole roster, whose masks cancel only together"
                    )), &actions)
        }
        guard collection.connectedHolders.count >= collection.needed else {
            let why =
                collection.session.thresholdHolders == nil
                ? "the key holder is not connected"
                : "\(collection.connectedHolders.count) of the \(collection.needed) threshold key holders needed are connected"
            return end(.aborted(RoundAbort(.keyHolderAbsent, why)), &actions)
        }
        // Re-randomised by r_j the audit record publishes, so that anyone can check that the
        // aggregate is the product of the receipted contributions (`Specs/audit.md` §7.3).
        let aggregate: EncryptedAggregate
        let rerandomizers = collection.aggregator.freshRerandomizers()
        do { aggregate = try collection.aggregator.aggregate(rerandomizedBy: rerandomizers) } catch {
            return end(.aborted(RoundAbort(.secureSum, "\(error)")), &actions)
        }
        collection.rerandomizers = rerandomizers
        collection.aggregate = aggregate.ciphertexts
        let request = decryptRequest(collection, aggregate)
        collection.request = request
        backend = .paillier(collection)
        for c in request.ciphertexts { transcript = SHA256.hash(transcript, Array(c)) }
        for id in collection.connectedHolders.sorted() {
            bytesOut += request.ciphertexts.reduce(0) { $0 + $1.count }
            actions.append(.sendToKeyHolder(.with { $0.decrypt = request }, id: id))
        }
        stage = .decrypting
        startDeadline(for: .decrypting, &actions)
    }

    private func decryptRequest(_ collection: PaillierCollection, _ aggregate: EncryptedAggregate)
        -> Veil_V1_DecryptRequest
    {
        let session = collection.session
        var request = Veil_V1_DecryptRequest()
        request.round = UInt64(number)
        request.ciphertexts = aggregate.ciphertexts.map { Data($0.bigEndianBytes()) }
        request.dimension = UInt32(aggregate.dimension)
        request.bits = UInt32(session.packing.bitWidth.bits)
        request.maxAddends = UInt32(session.packing.maxAddends)
        request.nonce = Data(session.nonce)
        request.coordinatorCertificate = collection.coordinatorCertificate
        request.rosterCertificates = collection.rosterCertificates
        request.planDigest = Data(session.context)
        request.receipts = collection.receipts.keys.sorted().map { position in
            let receipt = collection.receipts[position]!
            return .with {
                $0.position = position.rawValue
                $0.ciphertextDigest = Data(receipt.ciphertextDigest)
                $0.signature = Data(receipt.signature)
            }
        }
        request.coordinatorSignature = Data(
            collection.signingKey.signature(for: session.decryptionRequest(aggregate.ciphertexts)))
        request.thresholdHolders = collection.wireHolders
        return request
    }

    /// A key holder's answer: the one key holder's signed sum, or a threshold holder's partials.
    private mutating func receiveDecryption(
        _ result: Veil_V1_DecryptResult, from id: String, _ actions: inout [RoundAction]
    ) {
        // The nonce names the attempt: a late answer to an earlier attempt of this round (a
        // slow or deviating key holder) is not this attempt's sum.
        guard case .paillier(let collection) = backend, stage == .decrypting, result.round == UInt64(number),
            let request = collection.request, result.nonce == request.nonce, let holder = collection.number(of: id)
        else { return }
        if collection.session.thresholdHolders != nil {
            return receivePartials(result, holder: holder, id: id, &actions)
        }
        guard result.refusal.isEmpty else {
            return end(
                .aborted(RoundAbort(.keyHolderRefused, "the key holder refused: \(loggable(result.refusal))")),
                &actions)
        }
        do {
            let sum = try ModularVector(elements: result.sum, bitWidth: collection.aggregator.packing.bitWidth)
            guard sum.count == collection.aggregator.dimension else {
                return end(
                    .aborted(
                        RoundAbort(
                            .keyHolderMalformed,
                            "the key holder returned \(sum.count) values, not \(collection.aggregator.dimension)")),
                    &actions)
            }
            // The key holder signs the sum it releases for this aggregate (`Specs/paillier.md`
            // §6.1): the coordinator can hold it to that sum, and takes no other.
            let released = collection.session.decryptionResult(
                aggregateDigest: PaillierSession.aggregateDigest(request.ciphertexts.map { Array($0) }), sum: result.sum
            )
            guard case .keyHolder(let keyHolder) = collection.session.decryptors,
                keyHolder.isValidSignature(Array(result.signature), for: released)
            else {
                return end(
                    .aborted(RoundAbort(.keyHolderMalformed, "the key holder's signature on the sum does not verify")),
                    &actions)
            }
            var collection = collection
            collection.released = (result.sum, Array(result.signature))
            backend = .paillier(collection)
            let survivors = collection.contributed.sorted()
            end(.completed(SecureSumResult(sum: sum, survivors: survivors)), &actions)
        } catch {
            end(.aborted(RoundAbort(.keyHolderMalformed, "the key holder's sum is malformed: \(error)")), &actions)
        }
    }

    /// A threshold holder's answer (`Specs/paillier.md` §6.3): a refusal, or one signed, proved
    /// partial decryption per ciphertext. Once t answers are in, they are combined; a holder
    /// whose proofs fail is named (a fault with its signed answer as evidence) and left out,
    /// and the round waits for the others — no holder can stop t honest ones.
    private mutating func receivePartials(
        _ result: Veil_V1_DecryptResult, holder: Int, id: String, _ actions: inout [RoundAction]
    ) {
        guard case .paillier(var collection) = backend, let holders = collection.session.thresholdHolders,
            collection.answers[holder] == nil, collection.refusals[holder] == nil, collection.leftOut[holder] == nil
        else { return }
        defer { backend = .paillier(collection) }
        guard result.refusal.isEmpty else {
            collection.refusals[holder] = loggable(result.refusal)
            return
        }
        let key = holders.key
        let partials: [PartialDecryption]
        do {
            guard result.holder == UInt32(holder), result.partials.count == collection.aggregate.count else {
                throw PaillierError.invalidPartialDecryption(
                    "holder \(result.holder) with \(result.partials.count) partials, from holder \(holder) for \(collection.aggregate.count) ciphertexts"
                )
            }
            partials = try zip(result.partials, collection.aggregate).map { bytes, c throws(PaillierError) in
                try key.decodePartial(Array(bytes), holder: holder, of: c)
            }
            let signed = collection.session.partialDecryptionResult(
                aggregateDigest: PaillierSession.aggregateDigest(collection.aggregate.map { $0.bigEndianBytes() }),
                holder: holder, partials: result.partials.map { Array($0) })
            guard holders.signingKeys[holder]!.isValidSignature(Array(result.signature), for: signed) else {
                throw PaillierError.invalidPartialDecryption("the signature on the partials does not verify")
            }
        } catch {
            collection.leftOut[holder] = "\(id): a malformed answer (\(error))"
            return
        }
        collection.answers[holder] = ThresholdAnswer(partials: partials, result: result)
        guard collection.answers.count >= collection.needed else { return }
        do {
            let (sum, rejected) = try collection.session.combine(
                collection.answers.mapValues(\.partials), of: collection.aggregate)
            leaveOut(rejected, of: &collection, &actions)
            collection.combinedFrom = collection.answers.keys.sorted()
            backend = .paillier(collection)
            end(.completed(SecureSumResult(sum: sum, survivors: collection.contributed.sorted())), &actions)
        } catch PaillierError.incorrectPartialDecryptions(let rejected) {
            leaveOut(rejected, of: &collection, &actions)
        } catch {
            backend = .paillier(collection)
            end(.aborted(RoundAbort(.keyHolderMalformed, "the partial decryptions do not combine: \(error)")), &actions)
        }
    }

    /// Threshold holders whose signed partials fail their proofs: a proven fault each, with the
    /// signed answer as evidence; their answers are set aside.
    private mutating func leaveOut(
        _ rejected: [Int], of collection: inout PaillierCollection, _ actions: inout [RoundAction]
    ) {
        for holder in rejected {
            guard let answer = collection.answers.removeValue(forKey: holder) else { continue }
            let id = collection.keyHolders[holder]!
            collection.leftOut[holder] = "\(id): a partial decryption whose proof fails"
            auditedFaults.append("wrong_partial_decryption:\(holder)")
            actions.append(
                .attributed(
                    id: id, code: "wrong_partial_decryption",
                    detail:
                        "threshold key holder \(holder) signed a partial decryption whose proof of correctness fails",
                    evidence: (try? answer.result.serializedBytes() as [UInt8]) ?? []))
        }
    }

    /// Ends a threshold decryption that can no longer reach t answers: too many refused or
    /// were left out.
    private mutating func endIfThresholdUnreachable(_ actions: inout [RoundAction]) {
        guard case .paillier(let collection) = backend, stage == .decrypting, collection.session.thresholdHolders != nil
        else { return }
        let possible = collection.keyHolders.count - collection.refusals.count - collection.leftOut.count
        guard possible < collection.needed else { return }
        let reasons =
            collection.refusals.sorted { $0.key < $1.key }.map {
                "\(collection.keyHolders[$0.key]!) refused: \($0.value)"
            }
            + collection.leftOut.sorted { $0.key < $1.key }.map(\.value)
        end(
            .aborted(
                RoundAbort(
                    collection.refusals.isEmpty ? .keyHolderMalformed : .keyHolderRefused,
                    "fewer than the \(collection.needed) threshold key holders needed can decrypt: \(reasons.joined(separator: "; "))"
                )), &actions)
    }

    private mutating func setKeyHolder(_ id: String, connected: Bool, _ actions: inout [RoundAction]) {
        guard case .paillier(var collection) = backend, collection.number(of: id) != nil else { return }
        if connected { collection.connectedHolders.insert(id) } else { collection.connectedHolders.remove(id) }
        backend = .paillier(collection)
        // Decrypting, a lost stream does not end the attempt at once: the key holder may have
        // recorded the round already (it decrypts a round once), and its answer may still
        // come; the deadline decides. Back before it passes, it is asked again — the same
        // request, which it answers again with the same sum.
        if connected, stage == .decrypting, let request = collection.request {
            bytesOut += request.ciphertexts.reduce(0) { $0 + $1.count }
            actions.append(.sendToKeyHolder(.with { $0.decrypt = request }, id: id))
        }
    }

    // MARK: - Stages and deadlines

    private mutating func deadlinePassed(_ actions: inout [RoundAction]) {
        actions.append(.deadlinePassed(stage))
        switch stage {
        case .masking: closeProtocolRound(&actions)
        case .collecting: closeCollection(&actions)
        case .decrypting:
            guard case .paillier(let collection) = backend else { return }
            guard collection.session.thresholdHolders != nil else {
                guard !collection.connectedHolders.isEmpty else {
                    return end(
                        .aborted(RoundAbort(.keyHolderAbsent, "the key holder disconnected and did not answer")),
                        &actions)
                }
                return end(
                    .aborted(RoundAbort(.keyHolderSilent, "the key holder did not answer before the deadline")),
                    &actions)
            }
            let answered = Set(collection.answers.keys).union(collection.refusals.keys).union(collection.leftOut.keys)
            let silent = collection.keyHolders.filter { !answered.contains($0.key) }.sorted { $0.key < $1.key }.map(
                \.value)
            end(
                .aborted(
                    RoundAbort(
                        .keyHolderSilent,
                        "\(collection.answers.count) of the \(collection.needed) threshold key holders needed answered correctly before the deadline (silent: \(silent.joined(separator: ", ")))"
                    )), &actions)
        case nil: break
        }
    }

    /// Closes the current stage early when everyone it still waits for has disconnected or
    /// declined (or, collecting Paillier contributions, when nobody is left to wait for).
    private mutating func closeIfOnlyAbsenteesRemain(_ actions: inout [RoundAction]) {
        let gone = declined.union(disconnected)
        switch backend {
        case .masking(let masking):
            let waiting = Set(masking.server.expected).subtracting(masking.server.responded)
            if !waiting.isEmpty, waiting.isSubset(of: gone) { closeProtocolRound(&actions) }
        case .paillier(let collection):
            guard stage == .collecting else { return }
            let waiting = Set(positions.values).subtracting(collection.contributed)
            if waiting.isSubset(of: gone) { closeCollection(&actions) }
        }
    }

    /// A masking session that moved to a new protocol round starts that round's deadline.
    private mutating func enterCurrentStage(_ actions: inout [RoundAction]) {
        let current: RoundStage?
        switch backend {
        case .masking(let masking): current = masking.server.round.map { .masking($0) }
        case .paillier: current = stage ?? .collecting
        }
        guard let current, current != stage else { return }
        stage = current
        startDeadline(for: current, &actions)
    }

    private mutating func startDeadline(for stage: RoundStage, _ actions: inout [RoundAction]) {
        deadlineGeneration += 1
        // Training happens before the first message: that stage has the training deadline.
        let after = stage.includesTraining ? deadlines.training : deadlines.protocolRound
        actions.append(.stageStarted(stage))
        actions.append(.startDeadline(generation: deadlineGeneration, after: after))
    }

    private mutating func end(_ end: RoundEnd, _ actions: inout [RoundAction]) {
        guard ended == nil else { return }
        ended = end
        actions.append(.ended(end))
    }
}
