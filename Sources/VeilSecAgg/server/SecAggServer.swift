import VeilCore
import VeilCrypto

/// What the network code must do after the server handled an event.
public enum ServerAction: Hashable, Sendable {
    /// Send this message to `message.recipient`.
    case send(SignedMessage)
    /// A participant is out of the session from now on — silent past the deadline, or its
    /// message failed a check. The blast radius is that participant; the round goes on.
    case dropped(ParticipantID, DropReason)
    /// A participant's own signed messages show a fault (`Specs/secagg.md`, "Complaints and
    /// attribution"): a neighbour proved that its R1 shares do not open (it is also dropped,
    /// and its masked input taken back out of the sum), it complained falsely or with a bad
    /// proof (also dropped), it revealed a share in R4 its owner did not endorse (also
    /// dropped), or the shares it endorsed do not give its secret consistently (decoded around
    /// when decoding can; else the round aborts).
    case attributed(SecAggEvidence)
    /// The round finished: the survivors' sum.
    case completed(SecureSumResult)
    /// The round cannot finish; nothing more will be sent.
    case aborted(SecAggAbort)
}

/// Why the server dropped a participant. ``code`` names each for vectors and metrics.
public enum DropReason: Error, Hashable, Sendable, CustomStringConvertible {
    case noResponse
    case malformed(String)
    case senderMismatch(claimed: UInt32)
    case wrongSession
    case wrongRound(expected: SecAggRound, received: SecAggRound)
    case wrongRecipient(UInt32)
    case invalidSignature
    case weakKey
    case invalidKeyProof
    case unexpectedShares(String)
    case wrongSurvivorDigest
    case invalidReveal(String)
    /// A complaint whose proof does not verify, or about a participant it cannot accuse.
    case invalidComplaint(String)
    /// A complaint about shares that open and are valid, or are signed as the complaint says
    /// they are not.
    case falseComplaint(accused: UInt32)
    /// The participant's shares were proved bad (``ServerAction/convicted(_:accuser:evidence:)``).
    case convicted

    public var code: String {
        switch self {
        case .noResponse: "noResponse"
        case .malformed: "malformed"
        case .senderMismatch: "senderMismatch"
        case .wrongSession: "wrongSession"
        case .wrongRound: "wrongRound"
        case .wrongRecipient: "wrongRecipient"
        case .invalidSignature: "invalidSignature"
        case .weakKey: "weakKey"
        case .invalidKeyProof: "invalidKeyProof"
        case .unexpectedShares: "unexpectedShares"
        case .wrongSurvivorDigest: "wrongSurvivorDigest"
        case .invalidReveal: "invalidReveal"
        case .invalidComplaint: "invalidComplaint"
        case .falseComplaint: "falseComplaint"
        case .convicted: "convicted"
        }
    }

    public var description: String {
        switch self {
        case .noResponse: "no response before the round closed"
        case .malformed(let why): why
        case .senderMismatch(let claimed): "the message claims to come from party \(claimed)"
        case .wrongSession: "the message belongs to another session"
        case .wrongRound(let expected, let received): "a message of \(received) during \(expected)"
        case .wrongRecipient(let party): "the message is addressed to party \(party)"
        case .invalidSignature: "the signature does not verify"
        case .weakKey: "an advertised key has small order"
        case .invalidKeyProof: "the proof that it knows its encryption key does not verify"
        case .unexpectedShares(let why): "encrypted shares for the wrong neighbours: \(why)"
        case .wrongSurvivorDigest: "the signed survivor digest is not the one the server sent"
        case .invalidReveal(let why): "revealed shares do not match the participant's neighbourhood: \(why)"
        case .invalidComplaint(let why): "an invalid complaint: \(why)"
        case .falseComplaint(let accused):
            "complained about participant \(accused)'s shares, which open and are valid"
        case .convicted: "its R1 shares to a neighbour were proved not to open"
        }
    }

    /// Whether the participant's own signed message proves it misbehaved (as opposed to
    /// falling silent, which an honest device does): what attribution records and counts.
    public var isAttributable: Bool {
        switch self {
        case .invalidComplaint, .falseComplaint: true
        default: false
        }
    }
}

/// The server of one secure-aggregation session, as a sans-IO state machine: it takes
/// participants' messages (with the identity the transport authenticated) and the end of
/// each round's deadline, and returns what to send, whom it dropped, and the result.
///
/// States and transitions (the full table is in `Specs/secagg.md`):
///
///     advertiseKeys ──all of U0 answered, or closeRound()──▶ shareKeys ──…──▶ maskedInputCollection
///        ──…──▶ consistencyCheck ──…──▶ unmasking ──…──▶ completed(sum, survivors)
///     after any round with fewer than t participants left ──▶ aborted
///
/// A round closes as soon as every expected participant has answered, or when the driver
/// calls ``closeRound()`` at its deadline; whoever has not answered is dropped. A message
/// that fails any check drops its sender and nobody else.
public struct SecAggServer {
    private struct Advertisement {
        let message: SignedMessage
        let keys: AdvertiseKeysBody
    }

    /// An R1 message, as signed, and its body.
    private struct Dealt {
        let message: SignedMessage
        let body: ShareKeysBody
    }

    private struct ShareKeysState {
        let advertised: [ParticipantID: Advertisement]
        var received: [ParticipantID: Dealt] = [:]
    }

    private struct MaskedInputState {
        let advertised: [ParticipantID: Advertisement]
        /// U2 and each member's commitment to its self-mask seed.
        let commitments: [ParticipantID: [UInt8]]
        /// U2's R1 messages: the ciphertexts a complaint is checked against.
        let dealt: [ParticipantID: Dealt]
        var sum: ModularVector
        var contributors: Set<ParticipantID> = []
        /// Each contributor's encoded masked input, kept until the round closes so that a
        /// conviction can take it back out of the sum.
        var inputs: [ParticipantID: ArraySlice<UInt8>] = [:]
        /// Proven complaints, by accuser; and the participants they convicted.
        var accusations: [ParticipantID: Set<ParticipantID>] = [:]
        var convicted: Set<ParticipantID> = []
    }

    private struct ConsistencyState {
        let advertised: [ParticipantID: Advertisement]
        let commitments: [ParticipantID: [UInt8]]
        let accusations: [ParticipantID: Set<ParticipantID>]
        let sum: ModularVector
        let survivors: ParticipantBitmap
        let dropped: ParticipantBitmap
        let digest: [UInt8]
        var signatures: [ParticipantID: [UInt8]] = [:]
    }

    private struct UnmaskingState {
        let advertised: [ParticipantID: Advertisement]
        let commitments: [ParticipantID: [UInt8]]
        let accusations: [ParticipantID: Set<ParticipantID>]
        let sum: ModularVector
        let survivors: ParticipantBitmap
        let dropped: ParticipantBitmap
        let expected: Set<ParticipantID>
        /// Revealed shares, by owner, and each holder's R4 message (the evidence of a wrong share).
        var shares: [ParticipantID: [ShamirShare]] = [:]
        var reveals: [ParticipantID: SignedMessage] = [:]
        var responded: Set<ParticipantID> = []
    }

    private enum State {
        case advertiseKeys([ParticipantID: Advertisement])
        case shareKeys(ShareKeysState)
        case maskedInputCollection(MaskedInputState)
        case consistencyCheck(ConsistencyState)
        case unmasking(UnmaskingState)
        case completed(SecureSumResult)
        case aborted(SecAggAbort)
    }

    private let session: SecAggSession
    private let identity: Ed25519.PrivateKey
    private var state: State
    /// Participants dropped during the current round for a bad message.
    private var excluded: Set<ParticipantID> = []
    /// Set with a drop reason that the sender's own message proves.
    private var blame: SecAggEvidence?

    /// How many threads check R4's endorsements and remove the masks (default: every core).
    /// The sum does not depend on it.
    public var workers = MaskWork.availableWorkers

    /// Creates the server of a session.
    /// - Throws: ``SecAggSessionError/identityMismatch(_:)`` when the key is not the session's server key.
    public init(session: SecAggSession, identityKey: Ed25519.PrivateKey) throws(SecAggSessionError) {
        guard identityKey.publicKey == session.serverIdentity else { throw .identityMismatch(SignedMessage.server) }
        self.session = session
        self.identity = identityKey
        self.state = .advertiseKeys([:])
    }

    /// A server that replays a recorded session to check it (``SecAggAudit``): the same
    /// decisions from the same messages, without the server's key — what it would send is
    /// signed with a throwaway key, and compared without its signature.
    init(replaying session: SecAggSession) {
        self.session = session
        self.identity = Ed25519.PrivateKey()
        self.state = .advertiseKeys([:])
    }

    /// The session's parameters.
    public var parameters: SecAggParameters { session.parameters }

    /// The round being collected, nil once finished.
    public var round: SecAggRound? {
        switch state {
        case .advertiseKeys: .advertiseKeys
        case .shareKeys: .shareKeys
        case .maskedInputCollection: .maskedInputCollection
        case .consistencyCheck: .consistencyCheck
        case .unmasking: .unmasking
        case .completed, .aborted: nil
        }
    }

    /// The participants the current round waits for (Uᵣ), ascending.
    public var expected: [ParticipantID] {
        switch state {
        case .advertiseKeys: session.participants
        case .shareKeys(let s): s.advertised.keys.sorted()
        case .maskedInputCollection(let s): s.commitments.keys.sorted()
        case .consistencyCheck(let s): s.survivors.members
        case .unmasking(let s): s.expected.sorted()
        case .completed, .aborted: []
        }
    }

    /// The participants that have answered the current round.
    public var responded: Set<ParticipantID> {
        switch state {
        case .advertiseKeys(let received): Set(received.keys)
        case .shareKeys(let s): Set(s.received.keys)
        case .maskedInputCollection(let s): s.contributors
        case .consistencyCheck(let s): Set(s.signatures.keys)
        case .unmasking(let s): s.responded
        case .completed, .aborted: []
        }
    }

    // MARK: - Events

    /// Handles bytes received from `sender`, the identity the transport authenticated.
    public mutating func receive(encoded: [UInt8], from sender: ParticipantID) -> [ServerAction] {
        guard round != nil, expectsMessage(from: sender) else { return [] }
        do throws(SecAggWireError) {
            return receive(try SignedMessage(encoded: encoded), from: sender)
        } catch {
            return drop(sender, .malformed(error.description))
        }
    }

    /// Handles a message received from `sender`, the identity the transport authenticated.
    /// Messages from participants the round does not wait for (late, dropped, repeated) are ignored.
    public mutating func receive(_ message: SignedMessage, from sender: ParticipantID) -> [ServerAction] {
        guard let round, expectsMessage(from: sender) else { return [] }
        if let reason = envelopeProblem(message, from: sender, round: round) { return drop(sender, reason) }
        let convictions: [ServerAction]
        do throws(DropReason) {
            blame = nil
            convictions = try accept(message, from: sender)
        } catch {
            let evidence = blame.map { [ServerAction.attributed($0)] } ?? []
            blame = nil
            return evidence + drop(sender, error)
        }
        return convictions + (roundIsComplete ? advance() : [])
    }

    /// The round's deadline has passed: drop whoever has not answered and move on.
    public mutating func closeRound() -> [ServerAction] {
        guard round != nil else { return [] }
        let silent = Set(expected).subtracting(responded).subtracting(excluded).sorted()
        return silent.map { ServerAction.dropped($0, .noResponse) } + advance()
    }

    // MARK: - Accepting one message

    private func expectsMessage(from sender: ParticipantID) -> Bool {
        !responded.contains(sender) && !excluded.contains(sender) && expected.contains(sender)
    }

    /// Every participant the round waits for has answered or been dropped.
    private var roundIsComplete: Bool { Set(expected).subtracting(excluded) == responded }

    private func envelopeProblem(_ message: SignedMessage, from sender: ParticipantID, round: SecAggRound)
        -> DropReason?
    {
        guard message.sender == sender.rawValue else { return .senderMismatch(claimed: message.sender) }
        guard message.sessionID == session.id else { return .wrongSession }
        guard message.round == round else { return .wrongRound(expected: round, received: message.round) }
        guard message.recipient == SignedMessage.server else { return .wrongRecipient(message.recipient) }
        // Only roster members are expected, and every one has an identity.
        guard message.isSigned(by: session.identity(of: sender.rawValue)!) else { return .invalidSignature }
        return nil
    }

    /// Checks one message and takes what it carries; returns the convictions its complaints proved.
    private mutating func accept(_ message: SignedMessage, from sender: ParticipantID) throws(DropReason)
        -> [ServerAction]
    {
        let body = message.body
        switch state {
        case .advertiseKeys(var received):
            // The encryption key is a ristretto255 element other than the identity by decoding.
            let keys = try decode { () throws(SecAggWireError) in try AdvertiseKeysBody(decoding: body) }
            guard !keys.maskingKey.hasSmallOrder else { throw .weakKey }
            guard keys.provesPossession(sessionID: session.id, owner: sender) else { throw .invalidKeyProof }
            // Kept as signed: participants check their neighbours' signatures themselves.
            received[sender] = Advertisement(message: message, keys: keys)
            state = .advertiseKeys(received)
            return []
        case .shareKeys(var current):
            let shares = try decode { () throws(SecAggWireError) in try ShareKeysBody(decoding: body) }
            let expectedPeers = session.graph.neighbors(of: sender).filter { current.advertised[$0] != nil }.map(
                \.rawValue)
            guard shares.shares.map(\.peer) == expectedPeers else {
                throw .unexpectedShares("expected one entry for each of \(expectedPeers), ascending")
            }
            // Sealed to the key each recipient advertised: shares sealed to another key would
            // get the recipient's complaint judged a false report, and the recipient dropped.
            for entry in shares.shares
            where entry.recipientKey
                != current.advertised[ParticipantID(entry.peer)]?.keys.encryptionKey.rawRepresentation
            {
                throw .unexpectedShares("the entry for \(entry.peer) is sealed to another key than it advertised")
            }
            current.received[sender] = Dealt(message: message, body: shares)
            state = .shareKeys(current)
            return []
        case .maskedInputCollection(var current):
            let parameters = session.parameters
            let decoded = try decode { () throws(SecAggWireError) in try MaskedInputBody(decoding: body) }
            let masked = try decode { () throws(SecAggWireError) in
                try MaskedInputBody.decode(
                    decoded.vector, bitWidth: parameters.bitWidth, dimension: parameters.dimension)
            }
            // Every complaint is checked before anything is taken: one false complaint drops
            // the sender and convicts nobody.
            var accused: Set<ParticipantID> = []
            for complaint in decoded.complaints where !accused.insert(ParticipantID(complaint.accused)).inserted {
                blame = SecAggEvidence(
                    fault: .invalidComplaint, participant: sender, counterpart: ParticipantID(complaint.accused),
                    messages: [message])
                throw .invalidComplaint("two complaints about participant \(complaint.accused)")
            }
            for complaint in decoded.complaints { try check(complaint, in: message, current) }
            state = .advertiseKeys([:])  // release the running sum so that adding does not copy it
            var actions: [ServerAction] = []
            for complaint in decoded.complaints {
                let culprit = ParticipantID(complaint.accused)
                guard current.convicted.insert(culprit).inserted else { continue }
                if current.contributors.remove(culprit) != nil, let input = current.inputs.removeValue(forKey: culprit)
                {
                    // Stored as accepted: decodes as before.
                    let taken = try! MaskedInputBody.decode(
                        input, bitWidth: parameters.bitWidth, dimension: parameters.dimension)
                    try! current.sum.subtract(taken)
                }
                // Dropped once: it may have been dropped for a bad message of its own already.
                if excluded.insert(culprit).inserted { actions.append(.dropped(culprit, .convicted)) }
                actions.append(
                    .attributed(evidence(complaint, by: sender, in: message, fault: .invalidShares, current)))
            }
            if !accused.isEmpty { current.accusations[sender] = accused }
            try! current.sum.add(masked)  // same ring and length: decoded with the session's b and d
            current.contributors.insert(sender)
            current.inputs[sender] = decoded.vector
            state = .maskedInputCollection(current)
            return actions
        case .consistencyCheck(var current):
            guard body == current.digest else { throw .wrongSurvivorDigest }
            current.signatures[sender] = message.signature
            state = .consistencyCheck(current)
            return []
        case .unmasking(var current):
            let reveal = try decode { () throws(SecAggWireError) in try UnmaskingSharesBody(decoding: body) }
            // A complainer holds no shares of those it accused.
            let accused = current.accusations[sender] ?? []
            let holders =
                (session.graph.neighbors(of: sender).filter {
                    current.commitments[$0] != nil && !accused.contains($0)
                } + [sender]).sorted()
            guard reveal.shares.map(\.owner) == holders.map(\.rawValue) else {
                throw .invalidReveal("expected one share for each of \(holders.map(\.rawValue)), ascending")
            }
            for entry in reveal.shares {
                let owner = ParticipantID(entry.owner)
                let kind: ShareKind = current.survivors.contains(owner) ? .selfMaskSeed : .maskingKey
                guard entry.kind == kind else { throw .invalidReveal("wrong kind of share for participant \(owner)") }
                guard entry.share.index == sender.rawValue,
                    entry.share.secretByteCount == SecAggKeys.sharedSecretByteCount
                else {
                    throw .invalidReveal("a share of participant \(owner) carries index \(entry.share.index)")
                }
            }
            // Every share must carry its owner's endorsement: one that does not was not dealt to
            // the sender — its own signed message proves it (`Specs/secagg.md` §7).
            // Checked on all cores: a round has n·(k + 1) of them.
            let checks = reveal.shares.map { entry in
                // Every owner is a neighbour that dealt shares, or the sender: on the roster.
                EndorsedShare(share: entry.share, endorsement: entry.endorsement).endorsementCheck(
                    by: session.identity(of: entry.owner)!, owner: ParticipantID(entry.owner), kind: entry.kind,
                    sessionID: session.id)
            }
            if let failed = SignatureBatch.verify(checks, workers: workers).firstIndex(of: false) {
                let owner = ParticipantID(reveal.shares[failed].owner)
                blame = SecAggEvidence(fault: .wrongShare, participant: sender, counterpart: owner, messages: [message])
                throw .invalidReveal("the share of participant \(owner) is not endorsed by it")
            }
            for entry in reveal.shares { current.shares[ParticipantID(entry.owner), default: []].append(entry.share) }
            current.reveals[sender] = message
            current.responded.insert(sender)
            state = .unmasking(current)
            return []
        case .completed, .aborted:
            return []
        }
    }

    /// A complaint stands when its proof verifies and the ciphertext it is about, opened with
    /// the element the proof vouches for, fails authentication or does not hold two shares for
    /// the complainer. Otherwise the complainer is at fault, and ``blame`` says how.
    private mutating func check(_ complaint: ShareComplaint, in message: SignedMessage, _ current: MaskedInputState)
        throws(DropReason)
    {
        let sender = ParticipantID(message.sender)
        let accused = ParticipantID(complaint.accused)
        guard accused != sender, session.graph.areNeighbors(sender, accused), let dealt = current.dealt[accused],
            // Both sent R1, so both advertised keys in R0.
            let accuserKey = current.advertised[sender]?.keys.encryptionKey,
            let accusedKey = current.advertised[accused]?.keys.encryptionKey
        else {
            blame = SecAggEvidence(
                fault: .invalidComplaint, participant: sender, counterpart: accused, messages: [message])
            throw .invalidComplaint("participant \(accused) sent this participant no shares")
        }
        switch SecAggEvidence.judge(
            complaint, accuser: sender, accuserKey: accuserKey, accusedKey: accusedKey,
            // Every roster member has an identity.
            accusedIdentity: session.identity(of: accused.rawValue)!, dealt: dealt.body, sessionID: session.id)
        {
        case .invalidShares:
            return
        case .invalidComplaint:
            blame = SecAggEvidence(
                fault: .invalidComplaint, participant: sender, counterpart: accused, messages: [message])
            throw .invalidComplaint("the proof about participant \(accused) does not verify")
        case let verdict:
            blame = evidence(complaint, by: sender, in: message, fault: verdict, current)
            throw .falseComplaint(accused: complaint.accused)
        }
    }

    /// The evidence of a judged complaint: both advertisements, the accused's R1 message and
    /// the accuser's R2 message that carries the complaint.
    private func evidence(
        _ complaint: ShareComplaint, by accuser: ParticipantID, in message: SignedMessage,
        fault: SecAggEvidence.Fault, _ current: MaskedInputState
    ) -> SecAggEvidence {
        let accused = ParticipantID(complaint.accused)
        // check() found all three before the complaint was judged.
        return SecAggEvidence(
            fault: fault, participant: fault == .invalidShares ? accused : accuser,
            counterpart: fault == .invalidShares ? accuser : accused,
            messages: [
                current.advertised[accuser]!.message, current.advertised[accused]!.message,
                current.dealt[accused]!.message, message,
            ],
            complaint: complaint)
    }

    // MARK: - Closing a round

    private mutating func advance() -> [ServerAction] {
        let remaining = responded
        excluded = []
        guard remaining.count >= session.parameters.threshold else {
            return abort(.tooFewSurvivors(have: remaining.count, need: session.parameters.threshold))
        }
        switch state {
        case .advertiseKeys(let advertised):
            state = .shareKeys(ShareKeysState(advertised: advertised))
            return advertised.keys.sorted().map { recipient in
                let peers = session.graph.neighbors(of: recipient).compactMap { advertised[$0] }
                return .send(
                    message(.shareKeys, to: recipient, KeysBroadcastBody(advertisements: peers.map(\.message)).encoded))
            }
        case .shareKeys(let current):
            state = .maskedInputCollection(
                MaskedInputState(
                    advertised: current.advertised, commitments: current.received.mapValues(\.body.selfMaskCommitment),
                    dealt: current.received,
                    sum: ModularVector(zeros: session.parameters.dimension, bitWidth: session.parameters.bitWidth)))
            return current.received.keys.sorted().map { recipient in
                let forwarded = session.graph.neighbors(of: recipient).compactMap { sender -> EncryptedShares? in
                    guard
                        let entry = current.received[sender]?.body.shares.first(where: { $0.peer == recipient.rawValue }
                        )
                    else {
                        return nil
                    }
                    return EncryptedShares(
                        peer: sender.rawValue, recipientKey: entry.recipientKey, nonce: entry.nonce,
                        ciphertext: entry.ciphertext, signature: entry.signature)
                }
                return .send(
                    message(.maskedInputCollection, to: recipient, SharesForwardBody(shares: forwarded).encoded))
            }
        case .maskedInputCollection(let current):
            let n = session.parameters.clientCount
            let survivors = ParticipantBitmap(clientCount: n, members: current.contributors)
            let dropped = ParticipantBitmap(
                clientCount: n, members: current.commitments.keys.filter { !current.contributors.contains($0) })
            let lists = SurvivorListBody(survivors: survivors, dropped: dropped)
            state = .consistencyCheck(
                ConsistencyState(
                    advertised: current.advertised, commitments: current.commitments,
                    accusations: current.accusations, sum: current.sum,
                    survivors: survivors,
                    dropped: dropped,
                    digest: SecAggKeys.survivorDigest(sessionID: session.id, survivors: survivors, dropped: dropped)))
            return current.contributors.sorted().map { .send(message(.consistencyCheck, to: $0, lists.encoded)) }
        case .consistencyCheck(let current):
            let signers = current.signatures.keys.sorted()
            state = .unmasking(
                UnmaskingState(
                    advertised: current.advertised, commitments: current.commitments,
                    accusations: current.accusations, sum: current.sum,
                    survivors: current.survivors, dropped: current.dropped, expected: Set(signers)))
            // t − 1 others' signatures complete each participant's quorum of t.
            let others = session.consistencyQuorum - 1
            return signers.map { recipient in
                let chosen = signers.filter { $0 != recipient }.prefix(others).map {
                    // signers are the keys of current.signatures.
                    SignaturesForwardBody.Entry(signer: $0.rawValue, signature: current.signatures[$0]!)
                }
                return .send(
                    message(.unmasking, to: recipient, SignaturesForwardBody(signatures: Array(chosen)).encoded))
            }
        case .unmasking(let current):
            return finish(current)
        case .completed, .aborted:
            return []
        }
    }

    /// R4 done: reconstruct every survivor's self-mask seed and every dropped participant's
    /// masking key, check them, and remove all remaining masks from the sum.
    ///
    /// Every share carries its owner's endorsement (checked when it arrived), so whatever is
    /// wrong with the shares is the owner's doing. Each secret is first interpolated from the t
    /// lowest-indexed shares; when that does not match the owner's commitment (or advertised
    /// key), all its shares are decoded, setting aside up to ⌊(N − t)/2⌋ off the polynomial;
    /// an owner whose endorsed shares needed that, or do not give its secret at all, is named.
    private mutating func finish(_ current: UnmaskingState) -> [ServerAction] {
        let parameters = session.parameters
        let shamir = session.shamir
        var coefficients: [[UInt32]: LagrangeCoefficients] = [:]
        var faults: [ServerAction] = []
        func inconsistent(_ owner: ParticipantID) -> ServerAction {
            .attributed(
                SecAggEvidence(fault: .inconsistentSecret, participant: owner, counterpart: owner, messages: []))
        }
        func reconstruct(_ owner: ParticipantID, accepting accepts: (SecureBytes) -> Bool) throws(AbortReason)
            -> SecureBytes
        {
            let shares = (current.shares[owner] ?? []).sorted { $0.index < $1.index }
            guard shares.count >= parameters.threshold else {
                throw .cannotReconstruct(owner: owner, have: shares.count, need: parameters.threshold)
            }
            let chosen = Array(shares.prefix(parameters.threshold))
            let indices = chosen.map(\.index)
            if let lagrange = try? coefficients[indices] ?? shamir.lagrangeCoefficients(for: indices) {
                coefficients[indices] = lagrange
                if let secret = try? shamir.reconstruct(chosen, using: lagrange), accepts(secret) { return secret }
            }
            // The owner endorsed shares that are not all on one polynomial of its secret.
            guard let decoded = try? shamir.decode(shares), accepts(decoded.secret) else {
                faults.append(inconsistent(owner))
                throw .reconstructionMismatch(owner: owner)
            }
            if !decoded.wrongIndices.isEmpty { faults.append(inconsistent(owner)) }
            return decoded.secret
        }
        var jobs: [MaskWork.Job] = []
        var owners: [ParticipantID] = []  // whose secret each job rests on
        do throws(AbortReason) {
            for owner in current.survivors.members {
                let seed = try reconstruct(owner) { seed in
                    SecAggKeys.selfMaskCommitment(seed: seed, sessionID: session.id, owner: owner)
                        == current.commitments[owner]
                }
                jobs.append(
                    MaskWork.Job(
                        expander: SecAggKeys.selfMask(seed: seed, sessionID: session.id, bitWidth: parameters.bitWidth),
                        mode: .subtract))
                owners.append(owner)
            }
            for owner in current.dropped.members {
                // The survivors that masked with it: not those that proved its shares bad.
                let maskedWith = session.graph.neighbors(of: owner).filter {
                    current.survivors.contains($0) && current.accusations[$0]?.contains(owner) != true
                }
                // Convicted by every survivor neighbour: no mask with it is in the sum.
                if maskedWith.isEmpty { continue }
                let secret = try reconstruct(owner) { secret in
                    (try? X25519.PrivateKey(rawRepresentation: secret))?.publicKey
                        == current.advertised[owner]?.keys.maskingKey
                }
                guard let masking = try? X25519.PrivateKey(rawRepresentation: secret) else {
                    throw .reconstructionMismatch(owner: owner)  // not reached: accepted above
                }
                for peer in maskedWith {
                    // Survivors advertised keys in R0, or they would not be survivors.
                    let key = current.advertised[peer]!.keys.maskingKey
                    let session = session
                    // The survivor added its mask if its id is lower; take it away.
                    jobs.append(
                        MaskWork.Job(mode: SecAggKeys.adds(peer, owner) ? .subtract : .add) {
                            guard
                                let seed = try? SecAggKeys.pairwiseSeed(
                                    own: masking, peer: key, sessionID: session.id, owner, peer)
                            else { return nil }
                            return SecAggKeys.pairwiseMask(
                                seed: seed, sessionID: session.id, bitWidth: parameters.bitWidth)
                        })
                    owners.append(owner)
                }
            }
        } catch {
            return faults + abort(error)
        }
        var sum = current.sum
        state = .advertiseKeys([:])  // release the stored sum so that unmasking does not copy it
        if let failed = MaskWork.apply(jobs, to: &sum, workers: workers).first {
            // A key that passed the R0 check cannot fail agreement; refuse rather than guess.
            return faults + abort(.reconstructionMismatch(owner: owners[failed]))
        }
        let result = SecureSumResult(sum: sum, survivors: current.survivors.members)
        state = .completed(result)
        return faults + [.completed(result)]
    }

    // MARK: - Helpers

    private mutating func drop(_ participant: ParticipantID, _ reason: DropReason) -> [ServerAction] {
        excluded.insert(participant)
        var actions: [ServerAction] = [.dropped(participant, reason)]
        if roundIsComplete { actions += advance() }
        return actions
    }

    private mutating func abort(_ reason: AbortReason) -> [ServerAction] {
        let abort = SecAggAbort(round: round ?? .unmasking, reason: reason)
        state = .aborted(abort)
        return [.aborted(abort)]
    }

    private func decode<T>(_ body: () throws(SecAggWireError) -> T) throws(DropReason) -> T {
        do { return try body() } catch { throw .malformed(error.description) }
    }

    private func message(_ round: SecAggRound, to recipient: ParticipantID, _ body: [UInt8]) -> SignedMessage {
        SignedMessage(
            body: body, sessionID: session.id, round: round, sender: SignedMessage.server,
            recipient: recipient.rawValue,
            signedWith: identity)
    }
}
