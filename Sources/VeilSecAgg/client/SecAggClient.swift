import VeilCore
import VeilCrypto

/// What the network code must do after a participant handled an event.
public enum ClientAction: Hashable, Sendable {
    /// Send this message to the server.
    case send(SignedMessage)
    /// The participant stopped; nothing more will be sent. The reason is for logs and metrics.
    case aborted(SecAggAbort)
    /// The participant has already finished or aborted; the message changes nothing.
    case ignored
}

/// A participant of one secure-aggregation session, as a sans-IO state machine: it takes the
/// server's messages and returns what to send. It does no I/O, reads no clock, and draws all
/// its randomness from the injected generator, so that a seeded run is reproducible.
///
/// States and transitions (`Specs/secagg.md` has the full table of state × event → action):
///
///     advertiseKeys ──start()──▶ shareKeys ──KeysBroadcast──▶ maskedInputCollection
///        ──SharesForward──▶ consistencyCheck ──SurvivorList──▶ unmasking
///        ──SignaturesForward──▶ completed
///     any state ──a failed check──▶ aborted
///
/// The state names the round whose server message the participant waits for. Every message
/// is checked (session, round, sender, recipient, signature) before anything in it is used.
public struct SecAggClient<Generator: RandomNumberGenerator> {
    private struct Keys {
        let encryption: Ristretto255.PrivateKey
        let masking: X25519.PrivateKey
    }

    /// The shares a participant holds of one owner's two secrets, each with the owner's endorsement.
    private struct HeldShares {
        let maskingKey: EndorsedShare
        let selfMaskSeed: EndorsedShare
    }

    private struct ShareKeysState {
        let input: ModularVector
        let keys: Keys
    }

    private struct MaskedInputState {
        let input: ModularVector
        let keys: Keys
        /// The neighbours that advertised keys (U1 ∩ N(u)).
        let peers: [ParticipantID: AdvertiseKeysBody]
        /// The AEAD key shared with each of them (the same in both directions).
        let shareKeys: [ParticipantID: XChaCha20Poly1305.Key]
        let selfMaskSeed: SecureBytes
        let ownShares: HeldShares
    }

    private struct ConsistencyState {
        /// Shares held, by owner: from each neighbour whose shares opened, and own.
        let held: [ParticipantID: HeldShares]
        /// The neighbours the server forwarded shares from (U2 ∩ N(u)), whether they opened or not.
        let sent: Set<ParticipantID>
        /// The neighbours this participant complained about: not masked with, owed no reveal.
        let accused: Set<ParticipantID>
    }

    private struct UnmaskingState {
        let held: [ParticipantID: HeldShares]
        let survivors: ParticipantBitmap
        let dropped: ParticipantBitmap
        let digest: [UInt8]
    }

    private enum State {
        case advertiseKeys(ModularVector)
        case shareKeys(ShareKeysState)
        case maskedInputCollection(MaskedInputState)
        case consistencyCheck(ConsistencyState)
        case unmasking(UnmaskingState)
        case completed
        case aborted(SecAggAbort)
    }

    /// This participant.
    public let id: ParticipantID
    /// The session, as this participant accepted it (its id, the server's key).
    public let session: SecAggSession
    private let identity: Ed25519.PrivateKey
    private var generator: Generator
    private var state: State

    /// Creates a participant.
    /// - Parameters:
    ///   - session: the session, as the coordinator announced it.
    ///   - id: this participant's roster position.
    ///   - identityKey: the Ed25519 key whose public half the roster lists for `id`.
    ///   - input: the vector to sum, over Z_(2^b) with d elements.
    ///   - generator: the source of every random choice.
    /// - Throws: ``SecAggSessionError`` when `id`, the key or the input do not fit the session.
    public init(
        session: SecAggSession, id: ParticipantID, identityKey: Ed25519.PrivateKey, input: ModularVector,
        generator: Generator
    ) throws(SecAggSessionError) {
        guard session.isParticipant(id.rawValue) else { throw .unknownParticipant(id.rawValue) }
        guard session.identity(of: id.rawValue) == identityKey.publicKey else { throw .identityMismatch(id.rawValue) }
        let parameters = session.parameters
        guard input.bitWidth == parameters.bitWidth, input.count == parameters.dimension else {
            throw .inputShape(
                expectedBits: parameters.bitWidth.bits, expectedDimension: parameters.dimension,
                bits: input.bitWidth.bits, dimension: input.count)
        }
        self.id = id
        self.session = session
        self.identity = identityKey
        self.generator = generator
        self.state = .advertiseKeys(input)
    }

    /// How many threads check R2's endorsements and fold the masks into the input (default:
    /// every core). The masked input does not depend on it.
    public var workers = MaskWork.availableWorkers

    /// Whether the participant has sent its last message.
    public var isCompleted: Bool {
        if case .completed = state { return true }
        return false
    }

    /// Why the participant aborted, if it did.
    public var abort: SecAggAbort? {
        if case .aborted(let abort) = state { return abort }
        return nil
    }

    /// The round whose server message the participant waits for, nil once finished.
    public var awaitedRound: SecAggRound? {
        switch state {
        case .advertiseKeys: .advertiseKeys
        case .shareKeys: .shareKeys
        case .maskedInputCollection: .maskedInputCollection
        case .consistencyCheck: .consistencyCheck
        case .unmasking: .unmasking
        case .completed, .aborted: nil
        }
    }

    // MARK: - Events

    /// R0: draws the encryption key pair (ristretto255) and the masking key pair (X25519) and
    /// advertises their public halves.
    public mutating func start() -> ClientAction {
        guard case .advertiseKeys(let input) = state else { return .ignored }
        let encryption = Ristretto255.PrivateKey(using: &generator)
        let keys = Keys(encryption: encryption, masking: X25519.PrivateKey(using: &generator))
        state = .shareKeys(ShareKeysState(input: input, keys: keys))
        // With Y = B the proof cannot fail: B is an accepted element and c_u is not zero.
        let possession = try! EqualityProof.prove(
            secret: encryption, base: Ristretto255.generator,
            context: SecAggKeys.possessionContext(sessionID: session.id, owner: id)
        ).proof
        let body = AdvertiseKeysBody(
            encryptionKey: keys.encryption.publicKey, maskingKey: keys.masking.publicKey, possession: possession)
        return .send(message(.advertiseKeys, body.encoded))
    }

    /// Handles a message from the server, as received on the wire.
    public mutating func handle(encoded: [UInt8]) -> ClientAction {
        guard let round = awaitedRound else { return .ignored }
        do throws(SecAggWireError) {
            return handle(try SignedMessage(encoded: encoded))
        } catch {
            return fail(round, .malformed(error.description))
        }
    }

    /// Handles a message from the server.
    public mutating func handle(_ message: SignedMessage) -> ClientAction {
        guard let round = awaitedRound else { return .ignored }
        if let reason = envelopeProblem(message, expected: round) { return fail(round, reason) }
        do throws(AbortReason) {
            switch state {
            case .shareKeys(let current): return .send(try shareKeys(current, message.body))
            case .maskedInputCollection(let current): return .send(try maskedInput(current, message.body))
            case .consistencyCheck(let current): return .send(try consistency(current, message.body))
            case .unmasking(let current): return .send(try unmask(current, message.body))
            case .advertiseKeys: throw .wrongRound(expected: .advertiseKeys, received: message.round)
            case .completed, .aborted: return .ignored
            }
        } catch {
            return fail(round, error)
        }
    }

    // MARK: - Rounds

    /// R1: check the neighbours' signed keys, deal shares of s_u and b_u, encrypt them to each neighbour.
    private mutating func shareKeys(_ current: ShareKeysState, _ body: [UInt8]) throws(AbortReason) -> SignedMessage {
        let broadcast = try decode { () throws(SecAggWireError) in try KeysBroadcastBody(decoding: body) }
        var peers: [ParticipantID: AdvertiseKeysBody] = [:]
        for advertisement in broadcast.advertisements {
            let peer = ParticipantID(advertisement.sender)
            guard advertisement.sessionID == session.id else { throw .wrongSession }
            guard advertisement.round == .advertiseKeys else {
                throw .wrongRound(expected: .advertiseKeys, received: advertisement.round)
            }
            guard advertisement.recipient == SignedMessage.server else {
                throw .wrongRecipient(advertisement.recipient)
            }
            guard session.graph.areNeighbors(id, peer), peers[peer] == nil else { throw .unexpectedPeer(peer.rawValue) }
            guard let key = session.identity(of: peer.rawValue), advertisement.isSigned(by: key) else {
                throw .invalidSignature(signer: peer.rawValue)
            }
            let keys = try decode { () throws(SecAggWireError) in try AdvertiseKeysBody(decoding: advertisement.body) }
            // The server checked it; a key whose owner cannot prove it knows its logarithm
            // would make this participant's complaints reveal another pair's key.
            guard keys.provesPossession(sessionID: session.id, owner: peer) else {
                throw .invalidKeyProof(peer.rawValue)
            }
            peers[peer] = keys
        }
        try requireNeighbourhood(peers.count + 1)

        let holders = (Array(peers.keys) + [id]).sorted()
        let selfMaskSeed = SecureBytes.random(count: MaskExpander.seedByteCount, using: &generator)
        let shamir = session.shamir
        let indices = holders.map(\.rawValue)
        let maskingShares: [ShamirShare]
        let seedShares: [ShamirShare]
        do {
            maskingShares = try shamir.split(current.keys.masking.rawRepresentation, at: indices, using: &generator)
            seedShares = try shamir.split(selfMaskSeed, at: indices, using: &generator)
        } catch {
            throw .malformed("cannot deal shares: \(error)")  // unreachable: indices are distinct, in range, ≥ t
        }
        var own: HeldShares?
        var encrypted: [EncryptedShares] = []
        var shareKeys: [ParticipantID: XChaCha20Poly1305.Key] = [:]
        for (position, holder) in holders.enumerated() {
            // Each share endorsed: its holder can show it came from this participant, and
            // cannot show one that did not (`Specs/secagg.md` §4).
            let shares = HeldShares(
                maskingKey: EndorsedShare(
                    maskingShares[position], kind: .maskingKey, owner: id, sessionID: session.id, key: identity),
                selfMaskSeed: EndorsedShare(
                    seedShares[position], kind: .selfMaskSeed, owner: id, sessionID: session.id, key: identity))
            guard holder != id else {
                own = shares
                continue
            }
            let key: XChaCha20Poly1305.Key
            do {
                key = try SecAggKeys.shareKey(
                    // holders are peers' keys plus this participant, which the guard above skips.
                    own: current.keys.encryption, peer: peers[holder]!.encryptionKey, sessionID: session.id, id, holder)
            } catch { throw .weakPeerKey(holder.rawValue) }
            shareKeys[holder] = key
            let nonce = XChaCha20Poly1305.Nonce(using: &generator)
            let plaintext = SharePlaintext.encode(maskingKey: shares.maskingKey, selfMaskSeed: shares.selfMaskSeed)
            let ad = SecAggKeys.sharesAssociatedData(sessionID: session.id, sender: id, recipient: holder)
            let ciphertext = XChaCha20Poly1305.seal(plaintext, using: key, nonce: nonce, authenticating: ad)
            let recipientKey = peers[holder]!.encryptionKey.rawRepresentation
            let signed = SecAggKeys.sharesSignedBytes(
                sessionID: session.id, sender: id, recipient: holder, recipientKey: recipientKey, nonce: nonce,
                ciphertext: ciphertext)
            encrypted.append(
                EncryptedShares(
                    peer: holder.rawValue, recipientKey: recipientKey, nonce: nonce, ciphertext: ciphertext,
                    signature: identity.signature(for: signed)))
        }
        state = .maskedInputCollection(
            MaskedInputState(
                input: current.input, keys: current.keys, peers: peers, shareKeys: shareKeys,
                selfMaskSeed: selfMaskSeed,
                // holders includes this participant's id, so the loop set own.
                ownShares: own!))
        let commitment = SecAggKeys.selfMaskCommitment(seed: selfMaskSeed, sessionID: session.id, owner: id)
        return message(.shareKeys, ShareKeysBody(selfMaskCommitment: commitment, shares: encrypted).encoded)
    }

    /// R2: decrypt the neighbours' shares — complaining, with proof, about each neighbour whose
    /// shares do not open or are not shares for this participant — then mask the input with
    /// b_u and a pairwise mask for every neighbour whose shares opened.
    private mutating func maskedInput(_ current: MaskedInputState, _ body: [UInt8]) throws(AbortReason) -> SignedMessage
    {
        let forward = try decode { () throws(SecAggWireError) in try SharesForwardBody(decoding: body) }
        var held: [ParticipantID: HeldShares] = [id: current.ownShares]
        var sent: Set<ParticipantID> = []
        var complaints: [ShareComplaint] = []
        // Open every entry first; then check the endorsements of all that opened at once, on
        // all cores (2k signatures); then hold or complain, in entry order.
        var opened: [ParticipantID: (maskingKey: EndorsedShare, selfMaskSeed: EndorsedShare)] = [:]
        for entry in forward.shares {
            let peer = ParticipantID(entry.peer)
            guard let key = current.shareKeys[peer], sent.insert(peer).inserted else {
                throw .unexpectedPeer(entry.peer)
            }
            let ad = SecAggKeys.sharesAssociatedData(sessionID: session.id, sender: peer, recipient: id)
            if let plaintext = try? XChaCha20Poly1305.open(
                entry.ciphertext, using: key, nonce: entry.nonce, authenticating: ad),
                let shares = SharePlaintext.parse(plaintext, for: id)
            {
                opened[peer] = shares
            }
        }
        let owners = opened.keys.sorted()
        var checks: [SignatureBatch.Item] = []
        for owner in owners {
            // Every sender passed the check above: a neighbour, on the roster.
            let key = self.session.identity(of: owner.rawValue)!
            let shares = opened[owner]!
            let sessionID = self.session.id
            checks.append(
                shares.maskingKey.endorsementCheck(by: key, owner: owner, kind: .maskingKey, sessionID: sessionID))
            checks.append(
                shares.selfMaskSeed.endorsementCheck(by: key, owner: owner, kind: .selfMaskSeed, sessionID: sessionID))
        }
        let endorsed = SignatureBatch.verify(checks, workers: workers)
        for (index, owner) in owners.enumerated() where endorsed[2 * index] && endorsed[2 * index + 1] {
            held[owner] = HeldShares(maskingKey: opened[owner]!.maskingKey, selfMaskSeed: opened[owner]!.selfMaskSeed)
        }
        for entry in forward.shares where held[ParticipantID(entry.peer)] == nil {
            let peer = ParticipantID(entry.peer)
            if let key = session.identity(of: peer.rawValue),
                entry.recipientKey == current.keys.encryption.publicKey.rawRepresentation,
                entry.isSigned(by: key, sessionID: session.id, sender: peer, recipient: id)
            {
                complaints.append(try complaint(about: peer, current))
            } else {
                // Not as the neighbour signed it: the server may have changed it, so report it
                // and reveal nothing.
                complaints.append(ShareComplaint(accused: entry.peer, evidence: .unsigned))
            }
        }
        try requireNeighbourhood(held.count)

        var masked = current.input
        // Not the accused: the server leaves a convicted neighbour out of the sum, and only
        // those who did not complain hold the shares that take its masks away.
        let peers = held.keys.sorted().filter { $0 != id }
        let jobs = MaskWork.participantJobs(
            id: id, selfMaskSeed: current.selfMaskSeed, masking: current.keys.masking,
            // peers is drawn from the keys of current.peers.
            peers: peers.map { ($0, current.peers[$0]!.maskingKey) }, sessionID: session.id,
            bitWidth: session.parameters.bitWidth)
        if let failed = MaskWork.apply(jobs, to: &masked, workers: workers).first {
            throw .weakPeerKey(peers[failed - 1].rawValue)
        }
        state = .consistencyCheck(
            ConsistencyState(held: held, sent: sent, accused: Set(complaints.map { ParticipantID($0.accused) })))
        return message(.maskedInputCollection, MaskedInputBody(complaints: complaints, vector: masked).encoded)
    }

    /// The complaint about `peer`'s shares: K = c_u·C_peer and the proof that it is.
    private func complaint(about peer: ParticipantID, _ current: MaskedInputState) throws(AbortReason)
        -> ShareComplaint
    {
        let context = SecAggKeys.complaintContext(sessionID: session.id, accuser: id, accused: peer)
        do {
            // shareKeys has an entry only for peers that advertised keys.
            let (shared, proof) = try EqualityProof.prove(
                secret: current.keys.encryption, base: current.peers[peer]!.encryptionKey, context: context)
            // K opens only this pair's channel, and the neighbour signed what does not open.
            return ShareComplaint(
                accused: peer.rawValue, evidence: .undecryptable(shared: shared.unsafeExposedBytes(), proof: proof))
        } catch { throw .weakPeerKey(peer.rawValue) }  // unreachable: the key agreed in R1
    }

    /// R3: check the server's survivor and dropped lists against what this participant saw,
    /// then sign their digest.
    private mutating func consistency(_ current: ConsistencyState, _ body: [UInt8]) throws(AbortReason) -> SignedMessage
    {
        let n = session.parameters.clientCount
        let lists = try decode { () throws(SecAggWireError) in try SurvivorListBody(decoding: body, clientCount: n) }
        if lists.survivors.intersects(lists.dropped) {
            let both = lists.survivors.members.first { lists.dropped.contains($0) }!
            throw .survivorListsOverlap(both)
        }
        guard lists.survivors.contains(id) else { throw .listedAsDropped }
        // The release floor: no sum over fewer than t inputs is unmasked with this participant's
        // help, on a sparse graph too (where its own neighbourhood may look large enough).
        let survivorCount = lists.survivors.members.count
        guard survivorCount >= session.parameters.threshold else {
            throw .tooFewSurvivors(have: survivorCount, need: session.parameters.threshold)
        }
        var surviving = 1
        for peer in session.graph.neighbors(of: id) {
            let sentShares = current.sent.contains(peer)
            let survived = lists.survivors.contains(peer)
            let dropped = lists.dropped.contains(peer)
            if sentShares && !survived && !dropped {
                throw .inconsistentSurvivorLists("neighbour \(peer) sent shares but is in neither list")
            }
            if !sentShares && (survived || dropped) {
                throw .inconsistentSurvivorLists("neighbour \(peer) never sent shares but is listed")
            }
            // A neighbour proved to have sent bad shares must be out of the sum: nobody who
            // complained masked with it, and nobody holds its self-mask seed.
            if survived && current.accused.contains(peer) {
                throw .inconsistentSurvivorLists(
                    "neighbour \(peer), whose shares did not open, is listed as a survivor")
            }
            if survived { surviving += 1 }
        }
        try requireNeighbourhood(surviving)
        let digest = SecAggKeys.survivorDigest(
            sessionID: session.id, survivors: lists.survivors, dropped: lists.dropped)
        state = .unmasking(
            UnmaskingState(held: current.held, survivors: lists.survivors, dropped: lists.dropped, digest: digest))
        return message(.consistencyCheck, digest)
    }

    /// R4: verify that at least t participants signed the same lists, then reveal, for each
    /// owner, the self-mask share if it survived or the masking-key share if it dropped —
    /// never both.
    private mutating func unmask(_ current: UnmaskingState, _ body: [UInt8]) throws(AbortReason) -> SignedMessage {
        let forward = try decode { () throws(SecAggWireError) in try SignaturesForwardBody(decoding: body) }
        var signers: Set<UInt32> = [id.rawValue]
        for entry in forward.signatures {
            guard entry.signer != id.rawValue, session.isParticipant(entry.signer),
                current.survivors.contains(ParticipantID(entry.signer)), signers.insert(entry.signer).inserted
            else { throw .unexpectedPeer(entry.signer) }
            let claimed = SignedMessage(
                sessionID: session.id, round: .consistencyCheck, sender: entry.signer, recipient: SignedMessage.server,
                body: current.digest, signature: entry.signature)
            // The signer is a survivor (checked above), so on the roster.
            guard claimed.isSigned(by: session.identity(of: entry.signer)!) else {
                throw .invalidSignature(signer: entry.signer)
            }
        }
        guard signers.count >= session.consistencyQuorum else {
            throw .notEnoughConsistencySignatures(have: signers.count, need: session.consistencyQuorum)
        }
        var revealed: [UnmaskingSharesBody.Entry] = []
        for owner in current.held.keys.sorted() {
            // owner is one of current.held's keys.
            let shares = current.held[owner]!
            if current.survivors.contains(owner) {
                revealed.append(
                    .init(
                        owner: owner.rawValue, kind: .selfMaskSeed, share: shares.selfMaskSeed.share,
                        endorsement: shares.selfMaskSeed.endorsement))
            } else if current.dropped.contains(owner) {
                revealed.append(
                    .init(
                        owner: owner.rawValue, kind: .maskingKey, share: shares.maskingKey.share,
                        endorsement: shares.maskingKey.endorsement))
            }
        }
        state = .completed
        return message(.unmasking, UnmaskingSharesBody(shares: revealed).encoded)
    }

    // MARK: - Checks and helpers

    /// The checks every server message must pass before its body is read.
    private func envelopeProblem(_ message: SignedMessage, expected round: SecAggRound) -> AbortReason? {
        guard message.sessionID == session.id else { return .wrongSession }
        guard message.round == round else { return .wrongRound(expected: round, received: message.round) }
        guard message.sender == SignedMessage.server else { return .wrongSender(message.sender) }
        guard message.recipient == id.rawValue else { return .wrongRecipient(message.recipient) }
        guard message.isSigned(by: session.serverIdentity) else {
            return .invalidSignature(signer: SignedMessage.server)
        }
        return nil
    }

    /// Fewer than t of the closed neighbourhood left means the round cannot be both private
    /// and correct: stop rather than reveal anything more.
    private func requireNeighbourhood(_ remaining: Int) throws(AbortReason) {
        guard remaining >= session.parameters.threshold else {
            throw .notEnoughNeighbors(have: remaining, need: session.parameters.threshold)
        }
    }

    private func decode<T>(_ body: () throws(SecAggWireError) -> T) throws(AbortReason) -> T {
        do { return try body() } catch { throw .malformed(error.description) }
    }

    private func message(_ round: SecAggRound, _ body: [UInt8]) -> SignedMessage {
        SignedMessage(
            body: body, sessionID: session.id, round: round, sender: id.rawValue, recipient: SignedMessage.server,
            signedWith: identity)
    }

    private mutating func fail(_ round: SecAggRound, _ reason: AbortReason) -> ClientAction {
        let abort = SecAggAbort(round: round, reason: reason)
        state = .aborted(abort)
        return .aborted(abort)
    }
}
