import VeilCore
import VeilCrypto

/// Forged, replayed and tampered messages: what a malicious server or participant could send.
/// Vectors and tests build their invalid cases with these and check that every party refuses
/// them; nothing in a real session calls them.
public enum SecAggForgery {
    /// `message` with some fields replaced, signed again by `key` (the party it claims to be,
    /// or a different one).
    public static func resigned(
        _ message: SignedMessage, sessionID: [UInt8]? = nil, round: SecAggRound? = nil, sender: UInt32? = nil,
        recipient: UInt32? = nil, body: [UInt8]? = nil, by key: Ed25519.PrivateKey
    ) -> SignedMessage {
        SignedMessage(
            body: body ?? message.body, sessionID: sessionID ?? message.sessionID, round: round ?? message.round,
            sender: sender ?? message.sender, recipient: recipient ?? message.recipient, signedWith: key)
    }

    /// The advertisements (signed R0 messages) of an R1 KeysBroadcast body.
    public static func advertisements(inKeysBroadcast body: [UInt8]) throws -> [SignedMessage] {
        try KeysBroadcastBody(decoding: body).advertisements
    }

    /// An R1 KeysBroadcast body carrying `advertisements`, in that order.
    public static func keysBroadcastBody(_ advertisements: [SignedMessage]) -> [UInt8] {
        KeysBroadcastBody(advertisements: advertisements).encoded
    }

    /// `message` with the lowest bit of its signature flipped.
    public static func withFlippedSignature(_ message: SignedMessage) -> SignedMessage {
        var signature = message.signature
        signature[0] ^= 1
        return SignedMessage(
            sessionID: message.sessionID, round: message.round, sender: message.sender, recipient: message.recipient,
            body: message.body, signature: signature)
    }

    /// The survivor and dropped lists of an R3 SurvivorList message.
    public static func survivorLists(of message: SignedMessage, clientCount: Int) throws -> (
        survivors: [ParticipantID], dropped: [ParticipantID]
    ) {
        let body = try SurvivorListBody(decoding: message.body, clientCount: clientCount)
        return (body.survivors.members, body.dropped.members)
    }

    /// An R3 SurvivorList body.
    public static func survivorListBody(clientCount: Int, survivors: [ParticipantID], dropped: [ParticipantID])
        -> [UInt8]
    {
        SurvivorListBody(
            survivors: ParticipantBitmap(clientCount: clientCount, members: survivors),
            dropped: ParticipantBitmap(clientCount: clientCount, members: dropped)
        ).encoded
    }

    /// An R4 SignaturesForward body.
    public static func signaturesForwardBody(_ entries: [(ParticipantID, [UInt8])]) -> [UInt8] {
        SignaturesForwardBody(signatures: entries.map { .init(signer: $0.0.rawValue, signature: $0.1) }).encoded
    }

    /// An R1 ShareKeys body without its last encrypted share.
    public static func shareKeysBodyWithoutLastShare(_ body: [UInt8]) throws -> [UInt8] {
        var decoded = try ShareKeysBody(decoding: body)
        decoded.shares.removeLast()
        return decoded.encoded
    }

    /// An R1 ShareKeys body whose ciphertexts for `recipients` (all, when nil) are garbage,
    /// each entry signed by `key` as a sender signs its shares: a rogue participant, not the network.
    public static func shareKeysBodyWithGarbageShares(
        _ body: [UInt8], sessionID: [UInt8], sender: UInt32, recipients: Set<UInt32>? = nil, by key: Ed25519.PrivateKey
    ) throws -> [UInt8] {
        var decoded = try ShareKeysBody(decoding: body)
        for i in decoded.shares.indices where recipients?.contains(decoded.shares[i].peer) ?? true {
            var entry = decoded.shares[i]
            entry.ciphertext = entry.ciphertext.map { $0 ^ 0x5A }
            entry.signature = key.signature(
                for: SecAggKeys.sharesSignedBytes(
                    sessionID: sessionID, sender: ParticipantID(sender), recipient: ParticipantID(entry.peer),
                    recipientKey: entry.recipientKey, nonce: entry.nonce, ciphertext: entry.ciphertext))
            decoded.shares[i] = entry
        }
        return decoded.encoded
    }

    /// An R1 ShareKeys body whose entry for `recipient` names another encryption key than the
    /// recipient advertised (the group's generator) over garbage, signed by `key` as its shares:
    /// a rogue trying to have its victim's complaint judged a false report.
    public static func shareKeysBodyWithWrongRecipientKey(
        _ body: [UInt8], sessionID: [UInt8], sender: UInt32, recipient: UInt32, by key: Ed25519.PrivateKey
    ) throws -> [UInt8] {
        var decoded = try ShareKeysBody(decoding: body)
        guard let i = decoded.shares.firstIndex(where: { $0.peer == recipient }) else {
            throw SecAggWireError.malformed("no entry for \(recipient)")
        }
        var entry = decoded.shares[i]
        entry.recipientKey = Ristretto255.generator.rawRepresentation
        entry.ciphertext = entry.ciphertext.map { $0 ^ 0x5A }
        entry.signature = key.signature(
            for: SecAggKeys.sharesSignedBytes(
                sessionID: sessionID, sender: ParticipantID(sender), recipient: ParticipantID(recipient),
                recipientKey: entry.recipientKey, nonce: entry.nonce, ciphertext: entry.ciphertext))
        decoded.shares[i] = entry
        return decoded.encoded
    }

    /// An R1 ShareKeys body whose entry for `recipient` still opens, to two valid shares, but
    /// whose endorsement of the masking-key share is not the sender's (one bit flipped) —
    /// re-sealed with the pair's key, which the sender's encryption key (drawn first from its
    /// generator, `Specs/secagg.md` §4) gives, and signed again: a rogue dealer whose shares
    /// open yet could be disowned in R4.
    public static func shareKeysBodyWithUnendorsedShare(
        _ body: [UInt8], sessionID: [UInt8], sender: UInt32, recipient: UInt32, senderGenerator seed: SecureBytes,
        by key: Ed25519.PrivateKey
    ) throws -> [UInt8] {
        var decoded = try ShareKeysBody(decoding: body)
        guard let i = decoded.shares.firstIndex(where: { $0.peer == recipient }) else {
            throw SecAggWireError.malformed("no entry for \(recipient)")
        }
        var entry = decoded.shares[i]
        var generator = try ChaCha20Generator(seed: seed)
        let encryption = Ristretto255.PrivateKey(using: &generator)
        let pairKey = try SecAggKeys.shareKey(
            own: encryption, peer: try Ristretto255.PublicKey(rawRepresentation: entry.recipientKey),
            sessionID: sessionID, ParticipantID(sender), ParticipantID(recipient))
        let ad = SecAggKeys.sharesAssociatedData(
            sessionID: sessionID, sender: ParticipantID(sender), recipient: ParticipantID(recipient))
        var plaintext = try XChaCha20Poly1305.open(
            entry.ciphertext, using: pairKey, nonce: entry.nonce, authenticating: ad
        )
        .unsafeExposedBytes()
        plaintext[2 * SharePlaintext.shareByteCount] ^= 1  // the first endorsement's first byte
        entry.ciphertext = XChaCha20Poly1305.seal(
            SecureBytes(copying: plaintext), using: pairKey, nonce: entry.nonce, authenticating: ad)
        entry.signature = key.signature(
            for: SecAggKeys.sharesSignedBytes(
                sessionID: sessionID, sender: ParticipantID(sender), recipient: ParticipantID(recipient),
                recipientKey: entry.recipientKey, nonce: entry.nonce, ciphertext: entry.ciphertext))
        decoded.shares[i] = entry
        return decoded.encoded
    }

    /// An R2 SharesForward body whose first entry (from `sender`) is garbage that `sender`
    /// signed for `recipient`: what the server forwards from a rogue participant.
    public static func sharesForwardBodyWithSignedGarbage(
        _ body: [UInt8], sessionID: [UInt8], sender: Ed25519.PrivateKey, recipient: UInt32
    ) throws -> [UInt8] {
        var decoded = try SharesForwardBody(decoding: body)
        var entry = decoded.shares[0]
        entry.ciphertext = entry.ciphertext.map { $0 ^ 0x5A }
        entry.signature = sender.signature(
            for: SecAggKeys.sharesSignedBytes(
                sessionID: sessionID, sender: ParticipantID(entry.peer), recipient: ParticipantID(recipient),
                recipientKey: entry.recipientKey, nonce: entry.nonce, ciphertext: entry.ciphertext))
        decoded.shares[0] = entry
        return decoded.encoded
    }

    /// The commitment to a self-mask seed (`Specs/secagg.md` §4).
    public static func selfMaskCommitment(seed: SecureBytes, sessionID: [UInt8], owner: ParticipantID) -> [UInt8] {
        SecAggKeys.selfMaskCommitment(seed: seed, sessionID: sessionID, owner: owner)
    }

    /// An R1 ShareKeys body committing to another self-mask seed than the one it shares.
    public static func shareKeysBody(_ body: [UInt8], committingTo commitment: [UInt8]) throws -> [UInt8] {
        var decoded = try ShareKeysBody(decoding: body)
        decoded.selfMaskCommitment = commitment
        return decoded.encoded
    }

    /// An R0 AdvertiseKeys body made of another participant's encryption key and possession
    /// proof with this one's masking key: a rogue copying a key whose logarithm it does not know.
    public static func advertiseKeysBody(_ body: [UInt8], copyingEncryptionKeyOf other: [UInt8]) throws -> [UInt8] {
        let own = try AdvertiseKeysBody(decoding: body)
        let copied = try AdvertiseKeysBody(decoding: other)
        return AdvertiseKeysBody(
            encryptionKey: copied.encryptionKey, maskingKey: own.maskingKey, possession: copied.possession
        ).encoded
    }

    /// An R2 MaskedInput body with `complaint` added before its own.
    public static func maskedInputBody(_ body: [UInt8], adding complaint: ShareComplaint) throws -> [UInt8] {
        var decoded = try MaskedInputBody(decoding: body)
        decoded.complaints.insert(complaint, at: 0)
        return decoded.encoded
    }

    /// The complaints of an R2 MaskedInput body.
    public static func complaints(inMaskedInput body: [UInt8]) throws -> [ShareComplaint] {
        try MaskedInputBody(decoding: body).complaints
    }

    /// An R2 SharesForward body with one byte of its first ciphertext flipped.
    public static func sharesForwardBodyWithFlippedCiphertext(_ body: [UInt8]) throws -> [UInt8] {
        var decoded = try SharesForwardBody(decoding: body)
        decoded.shares[0].ciphertext[0] ^= 1
        return decoded.encoded
    }

    /// An R4 UnmaskingShares body whose first entry claims the other kind of share.
    public static func unmaskingBodyWithWrongKind(_ body: [UInt8]) throws -> [UInt8] {
        var decoded = try UnmaskingSharesBody(decoding: body)
        decoded.shares[0].kind = decoded.shares[0].kind == .selfMaskSeed ? .maskingKey : .selfMaskSeed
        return decoded.encoded
    }

    /// An R4 UnmaskingShares body whose entries carry shares moved off their polynomials (the
    /// first value of each plus one, mod p): well formed, of the right owners and kinds, wrong —
    /// and no longer what their owners endorsed.
    public static func unmaskingBodyWithWrongShares(_ body: [UInt8]) throws -> [UInt8] {
        var decoded = try UnmaskingSharesBody(decoding: body)
        for i in decoded.shares.indices { decoded.shares[i].share = decoded.shares[i].share.movedOffPolynomial() }
        return decoded.encoded
    }

    /// An R4 UnmaskingShares body whose share of `owner`'s secret is moved off its polynomial
    /// and endorsed again by the owner's key: what a holder reveals when the owner dealt it a
    /// wrong share, endorsed (`Specs/secagg.md` §7, "Robust reconstruction").
    public static func unmaskingBody(
        _ body: [UInt8], withWrongShareEndorsedBy ownerKey: Ed25519.PrivateKey, owner: ParticipantID,
        sessionID: [UInt8]
    ) throws -> [UInt8] {
        var decoded = try UnmaskingSharesBody(decoding: body)
        for i in decoded.shares.indices where decoded.shares[i].owner == owner.rawValue {
            let wrong = EndorsedShare(
                decoded.shares[i].share.movedOffPolynomial(), kind: decoded.shares[i].kind, owner: owner,
                sessionID: sessionID, key: ownerKey)
            decoded.shares[i].share = wrong.share
            decoded.shares[i].endorsement = wrong.endorsement
        }
        return decoded.encoded
    }

    /// An R0 AdvertiseKeys body with its masking or encryption key replaced (by a point of
    /// small order, say).
    public static func advertiseKeysBody(_ body: [UInt8], maskingKey: [UInt8]? = nil, encryptionKey: [UInt8]? = nil)
        throws -> [UInt8]
    {
        let decoded = try AdvertiseKeysBody(decoding: body)
        return try AdvertiseKeysBody(
            encryptionKey: encryptionKey.map { try Ristretto255.PublicKey(rawRepresentation: $0) }
                ?? decoded.encryptionKey,
            maskingKey: maskingKey.map { try X25519.PublicKey(rawRepresentation: $0) } ?? decoded.maskingKey,
            possession: decoded.possession
        )
        .encoded
    }

    /// The digest a participant signs in R3 for given lists.
    public static func survivorDigest(
        sessionID: [UInt8], clientCount: Int, survivors: [ParticipantID], dropped: [ParticipantID]
    )
        -> [UInt8]
    {
        SecAggKeys.survivorDigest(
            sessionID: sessionID, survivors: ParticipantBitmap(clientCount: clientCount, members: survivors),
            dropped: ParticipantBitmap(clientCount: clientCount, members: dropped))
    }
}
