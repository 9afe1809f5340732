import VeilCore
import VeilCrypto

/// The key derivations and digests of the protocol (`Specs/secagg.md`, "Keys and masks").
enum SecAggKeys {
    /// The size of each secret a participant deals with Shamir — its masking key s_v (an
    /// X25519 scalar) and its self-mask seed b_v, both 32 bytes (a VeilCrypto test holds
    /// them equal) — so that one share size fits both.
    static var sharedSecretByteCount: Int { X25519.keyByteCount }

    /// `LE_4(min(a, b)) ‖ LE_4(max(a, b))`: both ends of a pair derive the same context.
    static func pairContext(_ a: ParticipantID, _ b: ParticipantID) -> [UInt8] {
        var writer = ByteWriter(capacity: 8)
        writer.u32(min(a, b).rawValue)
        writer.u32(max(a, b).rawValue)
        return writer.bytes
    }

    /// The AEAD key for shares between `a` and `b`: VeilKDF(K, "secagg/share-key",
    /// salt = session id, context = pair), K = c_a·C_b = c_b·C_a in ristretto255.
    static func shareKey(
        own: Ristretto255.PrivateKey, peer: Ristretto255.PublicKey, sessionID: [UInt8], _ a: ParticipantID,
        _ b: ParticipantID
    ) throws(CryptoError) -> XChaCha20Poly1305.Key {
        shareKey(shared: try own.sharedSecret(with: peer), sessionID: sessionID, a, b)
    }

    /// The AEAD key from the shared element K itself: how the server opens a ciphertext that a
    /// complaint (``ShareComplaint``) revealed K for.
    static func shareKey(shared: SecureBytes, sessionID: [UInt8], _ a: ParticipantID, _ b: ParticipantID)
        -> XChaCha20Poly1305.Key
    {
        try! XChaCha20Poly1305.Key(  // a 32-byte derivation
            rawRepresentation: VeilKDF.derive32(
                .secAggShareKey, from: shared, salt: sessionID, context: pairContext(a, b)))
    }

    /// The context of the proof of possession of c_u in R0: "veil/v1/secagg/key-possession" ‖
    /// 0x00 ‖ session id ‖ LE_4(owner).
    static func possessionContext(sessionID: [UInt8], owner: ParticipantID) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/secagg/key-possession".utf8) + [0])
        writer.raw(sessionID)
        writer.u32(owner.rawValue)
        return writer.bytes
    }

    /// The context of a complaint's proof: "veil/v1/secagg/complaint" ‖ 0x00 ‖ session id ‖
    /// LE_4(accuser) ‖ LE_4(accused), so that a proof cannot be replayed in another session
    /// or about another pair.
    static func complaintContext(sessionID: [UInt8], accuser: ParticipantID, accused: ParticipantID) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/secagg/complaint".utf8) + [0])
        writer.raw(sessionID)
        writer.u32(accuser.rawValue)
        writer.u32(accused.rawValue)
        return writer.bytes
    }

    /// The seed of the pairwise mask between `a` and `b`:
    /// VeilKDF(X25519(s_a, s_b), "secagg/pairwise-seed", salt = session id, context = pair).
    static func pairwiseSeed(
        own: X25519.PrivateKey, peer: X25519.PublicKey, sessionID: [UInt8], _ a: ParticipantID, _ b: ParticipantID
    ) throws(CryptoError) -> SecureBytes {
        let secret = try own.sharedSecret(with: peer)
        return VeilKDF.derive32(.secAggPairwiseSeed, from: secret, salt: sessionID, context: pairContext(a, b))
    }

    static let selfMaskLabel = Array("veil/v1/secagg/self-mask".utf8) + [0]
    static let pairwiseMaskLabel = Array("veil/v1/secagg/pairwise-mask".utf8) + [0]

    /// The expander of a self mask: seed b_v, label "veil/v1/secagg/self-mask" ‖ 0x00 ‖ session id.
    static func selfMask(seed: SecureBytes, sessionID: [UInt8], bitWidth: BitWidth) -> MaskExpander {
        try! MaskExpander(seed: seed, label: selfMaskLabel + sessionID, bitWidth: bitWidth)  // seeds are 32 bytes
    }

    /// The expander of a pairwise mask: seed s_{a,b}, label "veil/v1/secagg/pairwise-mask" ‖ 0x00 ‖ session id.
    static func pairwiseMask(seed: SecureBytes, sessionID: [UInt8], bitWidth: BitWidth) -> MaskExpander {
        try! MaskExpander(seed: seed, label: pairwiseMaskLabel + sessionID, bitWidth: bitWidth)  // seeds are 32 bytes
    }

    /// Whether participant `a` adds (true) or subtracts its pairwise mask with `b`: the lower id adds.
    static func adds(_ a: ParticipantID, _ b: ParticipantID) -> Bool { a < b }

    /// What an owner signs for each share it deals: "veil/v1/secagg/share" ‖ 0x00 ‖ session id ‖
    /// LE_4(owner) ‖ kind ‖ the share's encoding (which names the holder's index). The holder
    /// reveals the share with this endorsement, so a wrong share is provably the holder's doing
    /// (no endorsement) or the owner's (endorsed, yet off its polynomial).
    static func shareEndorsementBytes(sessionID: [UInt8], owner: ParticipantID, kind: ShareKind, share: ShamirShare)
        -> [UInt8]
    {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/secagg/share".utf8) + [0])
        writer.raw(sessionID)
        writer.u32(owner.rawValue)
        writer.u8(kind.rawValue)
        writer.raw(share.encoded.unsafeExposedBytes())  // signed for its holder, who reveals it in R4
        return writer.bytes
    }

    /// SHA-256("veil/v1/secagg/self-mask-commitment" ‖ 0x00 ‖ session id ‖ LE_4(owner) ‖ b_owner).
    static func selfMaskCommitment(seed: SecureBytes, sessionID: [UInt8], owner: ParticipantID) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/secagg/self-mask-commitment".utf8) + [0])
        writer.raw(sessionID)
        writer.u32(owner.rawValue)
        return seed.withUnsafeBytes { SHA256.hash(writer.bytes, Array($0)) }
    }

    /// SHA-256("veil/v1/secagg/survivors" ‖ 0x00 ‖ session id ‖ survivors bitmap ‖ dropped bitmap):
    /// what every participant signs in R3.
    static func survivorDigest(sessionID: [UInt8], survivors: ParticipantBitmap, dropped: ParticipantBitmap) -> [UInt8]
    {
        SHA256.hash(Array("veil/v1/secagg/survivors".utf8) + [0], sessionID, survivors.bytes, dropped.bytes)
    }

    /// What a sender signs for each neighbour's encrypted shares: "veil/v1/secagg/shares-signed"
    /// ‖ 0x00 ‖ session id ‖ LE_4(sender) ‖ LE_4(recipient) ‖ C_recipient ‖ nonce ‖ ciphertext —
    /// the recipient's key too, so that the signature says which key the shares were sealed for.
    static func sharesSignedBytes(
        sessionID: [UInt8], sender: ParticipantID, recipient: ParticipantID, recipientKey: [UInt8],
        nonce: XChaCha20Poly1305.Nonce, ciphertext: [UInt8]
    ) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/secagg/shares-signed".utf8) + [0])
        writer.raw(sessionID)
        writer.u32(sender.rawValue)
        writer.u32(recipient.rawValue)
        writer.raw(recipientKey)
        writer.raw(nonce.rawRepresentation)
        writer.raw(ciphertext)
        return writer.bytes
    }

    /// The associated data of encrypted shares:
    /// "veil/v1/secagg/shares" ‖ 0x00 ‖ session id ‖ LE_4(sender) ‖ LE_4(recipient).
    static func sharesAssociatedData(sessionID: [UInt8], sender: ParticipantID, recipient: ParticipantID) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/secagg/shares".utf8) + [0])
        writer.raw(sessionID)
        writer.u32(sender.rawValue)
        writer.u32(recipient.rawValue)
        return writer.bytes
    }
}
