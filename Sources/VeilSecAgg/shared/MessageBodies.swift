import VeilCore
import VeilCrypto

// The body of each message, with its canonical encoding (`Specs/secagg.md`, "Messages").

/// R0, participant → server: the ristretto255 encryption key C_u = c_u·B, the X25519 masking
/// key, and a proof that the participant knows c_u. Without it a rogue could advertise another
/// participant's key (or one related to it) and, by sending garbage, make every complainer
/// reveal the element it shares with that other participant (`Specs/secagg.md` §7.1).
struct AdvertiseKeysBody: Hashable {
    var encryptionKey: Ristretto255.PublicKey
    var maskingKey: X25519.PublicKey
    /// An ``EqualityProof`` with Y = B: a Schnorr proof of knowledge of c_u.
    var possession: EqualityProof

    var encoded: [UInt8] {
        encryptionKey.rawRepresentation + maskingKey.rawRepresentation + possession.rawRepresentation
    }

    init(encryptionKey: Ristretto255.PublicKey, maskingKey: X25519.PublicKey, possession: EqualityProof) {
        self.encryptionKey = encryptionKey
        self.maskingKey = maskingKey
        self.possession = possession
    }

    /// Whether the proof shows that `owner` knows the discrete logarithm of its encryption key.
    func provesPossession(sessionID: [UInt8], owner: ParticipantID) -> Bool {
        possession.verify(
            x: encryptionKey, base: Ristretto255.generator, shared: encryptionKey.rawRepresentation,
            context: SecAggKeys.possessionContext(sessionID: sessionID, owner: owner))
    }

    init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        do {
            encryptionKey = try Ristretto255.PublicKey(
                rawRepresentation: try reader.raw(Ristretto255.elementByteCount, "encryption key"))
            maskingKey = try X25519.PublicKey(rawRepresentation: try reader.raw(X25519.keyByteCount, "masking key"))
            possession = try EqualityProof(
                rawRepresentation: try reader.raw(EqualityProof.byteCount, "possession proof"))
        } catch let error as SecAggWireError { throw error } catch { throw .malformed("\(error)") }
        try reader.finish("AdvertiseKeys")
    }
}

/// R1, server → participant: the signed R0 messages of its neighbours that advertised.
struct KeysBroadcastBody: Hashable {
    var advertisements: [SignedMessage]

    var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.u32(UInt32(advertisements.count))
        for message in advertisements { writer.blob(message.encoded) }
        return writer.bytes
    }

    init(advertisements: [SignedMessage]) { self.advertisements = advertisements }

    init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        let count = try reader.count("advertisements", itemBytes: 4)
        var messages: [SignedMessage] = []
        for _ in 0..<count { messages.append(try SignedMessage(encoded: try reader.blob("advertisement"))) }
        try reader.finish("KeysBroadcast")
        advertisements = messages
    }
}

/// Shares of one participant's two secrets, encrypted to one neighbour and signed by the
/// sender on their own, so that the recipient can tell the sender's garbage (complain) from
/// the server's tampering (abort) without trusting the server.
struct EncryptedShares: Hashable {
    /// The other end: the recipient in ShareKeys, the sender in SharesForward.
    var peer: UInt32
    /// The recipient's encryption key C_v as the sender saw it: the shares are sealed to it.
    /// Named and signed, so that a judge can tell shares sealed to a key other than the one the
    /// recipient's advertisement holds (the server or the recipient showed two keys) from
    /// shares that do not open.
    var recipientKey: [UInt8]
    var nonce: XChaCha20Poly1305.Nonce
    var ciphertext: [UInt8]
    /// The sender's Ed25519 signature over ``SecAggKeys/sharesSignedBytes``.
    var signature: [UInt8]

    /// Two encoded 32-byte-secret shares (45 bytes each), their two endorsements, and the tag.
    static var ciphertextByteCount: Int { SharePlaintext.byteCount + XChaCha20Poly1305.tagByteCount }
    static var encodedByteCount: Int {
        4 + Ristretto255.elementByteCount + XChaCha20Poly1305.nonceByteCount + ciphertextByteCount
            + Ed25519.signatureByteCount
    }

    func write(to writer: inout ByteWriter) {
        writer.u32(peer)
        writer.raw(recipientKey)
        writer.raw(nonce.rawRepresentation)
        writer.raw(ciphertext)
        writer.raw(signature)
    }

    static func read(from reader: inout ByteReader) throws(SecAggWireError) -> EncryptedShares {
        let peer = try reader.u32("peer")
        let recipientKey = try reader.raw(Ristretto255.elementByteCount, "recipient key")
        // The read stays outside `try!`: a short body is the sender's error, not a crash.
        let nonceBytes = try reader.raw(XChaCha20Poly1305.nonceByteCount, "nonce")
        let nonce = try! XChaCha20Poly1305.Nonce(rawRepresentation: nonceBytes)  // length read exactly
        let ciphertext = try reader.raw(ciphertextByteCount, "ciphertext")
        return EncryptedShares(
            peer: peer, recipientKey: recipientKey, nonce: nonce, ciphertext: ciphertext,
            signature: try reader.raw(Ed25519.signatureByteCount, "share signature"))
    }

    /// Whether `sender` signed these shares for `recipient`, as they are (sealed to
    /// ``recipientKey``), in this session.
    func isSigned(by key: Ed25519.PublicKey, sessionID: [UInt8], sender: ParticipantID, recipient: ParticipantID)
        -> Bool
    {
        key.isValidSignature(
            signature,
            for: SecAggKeys.sharesSignedBytes(
                sessionID: sessionID, sender: sender, recipient: recipient, recipientKey: recipientKey, nonce: nonce,
                ciphertext: ciphertext))
    }
}

/// A share and its owner's endorsement (`Specs/secagg.md` §4): what a holder keeps and reveals.
struct EndorsedShare {
    let share: ShamirShare
    let endorsement: [UInt8]

    /// `share`, endorsed by its owner.
    init(_ share: ShamirShare, kind: ShareKind, owner: ParticipantID, sessionID: [UInt8], key: Ed25519.PrivateKey) {
        self.share = share
        endorsement = key.signature(
            for: SecAggKeys.shareEndorsementBytes(sessionID: sessionID, owner: owner, kind: kind, share: share))
    }

    init(share: ShamirShare, endorsement: [UInt8]) {
        self.share = share
        self.endorsement = endorsement
    }

    /// What verifying that `owner` (whose identity key is `key`) endorsed this share as one of
    /// `kind` takes: for ``SignatureBatch``.
    func endorsementCheck(by key: Ed25519.PublicKey, owner: ParticipantID, kind: ShareKind, sessionID: [UInt8])
        -> SignatureBatch.Item
    {
        SignatureBatch.Item(
            key: key,
            message: SecAggKeys.shareEndorsementBytes(sessionID: sessionID, owner: owner, kind: kind, share: share),
            signature: endorsement)
    }
}

/// The plaintext of encrypted shares: two encoded shares (masking key s, self-mask seed b),
/// each of a 32-byte secret and at the recipient's index, then the owner's endorsement of each.
enum SharePlaintext {
    static var shareByteCount: Int { ShamirShare.encodedByteCount(secretByteCount: SecAggKeys.sharedSecretByteCount) }
    static var byteCount: Int { 2 * shareByteCount + 2 * Ed25519.signatureByteCount }

    static func encode(maskingKey: EndorsedShare, selfMaskSeed: EndorsedShare) -> SecureBytes {
        maskingKey.share.encoded.appending(selfMaskSeed.share.encoded).appending(
            SecureBytes(copying: maskingKey.endorsement + selfMaskSeed.endorsement))
    }

    /// The two shares, if the plaintext holds two shares for `recipient` (their endorsements
    /// not yet checked): else nil, and the recipient complains.
    static func parse(_ plaintext: SecureBytes, for recipient: ParticipantID) -> (
        maskingKey: EndorsedShare, selfMaskSeed: EndorsedShare
    )? {
        let size = shareByteCount
        let signature = Ed25519.signatureByteCount
        guard plaintext.count == byteCount,
            let masking = try? ShamirShare(encoded: plaintext.slice(0..<size)),
            let seed = try? ShamirShare(encoded: plaintext.slice(size..<(2 * size))),
            masking.index == recipient.rawValue, seed.index == recipient.rawValue,
            masking.secretByteCount == SecAggKeys.sharedSecretByteCount,
            seed.secretByteCount == SecAggKeys.sharedSecretByteCount
        else { return nil }
        let endorsements = plaintext.slice((2 * size)..<byteCount).unsafeExposedBytes()  // signatures: public
        return (
            EndorsedShare(share: masking, endorsement: Array(endorsements[0..<signature])),
            EndorsedShare(share: seed, endorsement: Array(endorsements[signature..<(2 * signature)]))
        )
    }

    /// The two shares, if the plaintext holds two shares for `recipient`, each endorsed by
    /// `owner` (identity key `ownerKey`) as its kind: else nil, and the recipient complains.
    static func parse(
        _ plaintext: SecureBytes, for recipient: ParticipantID, owner: ParticipantID, ownerKey: Ed25519.PublicKey,
        sessionID: [UInt8]
    ) -> (maskingKey: EndorsedShare, selfMaskSeed: EndorsedShare)? {
        guard let shares = parse(plaintext, for: recipient) else { return nil }
        let checks = [
            shares.maskingKey.endorsementCheck(by: ownerKey, owner: owner, kind: .maskingKey, sessionID: sessionID),
            shares.selfMaskSeed.endorsementCheck(by: ownerKey, owner: owner, kind: .selfMaskSeed, sessionID: sessionID),
        ]
        return SignatureBatch.verify(checks, workers: 1).allSatisfy { $0 } ? shares : nil
    }
}

/// R1, participant → server: a commitment to the self-mask seed, and shares for each neighbour.
struct ShareKeysBody: Hashable {
    var selfMaskCommitment: [UInt8]
    var shares: [EncryptedShares]

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 36 + shares.count * EncryptedShares.encodedByteCount)
        writer.raw(selfMaskCommitment)
        writer.u32(UInt32(shares.count))
        for share in shares { share.write(to: &writer) }
        return writer.bytes
    }

    init(selfMaskCommitment: [UInt8], shares: [EncryptedShares]) {
        self.selfMaskCommitment = selfMaskCommitment
        self.shares = shares
    }

    init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        selfMaskCommitment = try reader.raw(SHA256.digestByteCount, "commitment")
        let count = try reader.count("shares", itemBytes: EncryptedShares.encodedByteCount)
        var shares: [EncryptedShares] = []
        for _ in 0..<count { shares.append(try EncryptedShares.read(from: &reader)) }
        try reader.finish("ShareKeys")
        self.shares = shares
    }
}

/// R2, server → participant: the shares its neighbours encrypted to it.
struct SharesForwardBody: Hashable {
    var shares: [EncryptedShares]

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 4 + shares.count * EncryptedShares.encodedByteCount)
        writer.u32(UInt32(shares.count))
        for share in shares { share.write(to: &writer) }
        return writer.bytes
    }

    init(shares: [EncryptedShares]) { self.shares = shares }

    init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        let count = try reader.count("shares", itemBytes: EncryptedShares.encodedByteCount)
        var shares: [EncryptedShares] = []
        for _ in 0..<count { shares.append(try EncryptedShares.read(from: &reader)) }
        try reader.finish("SharesForward")
        self.shares = shares
    }
}

/// R2: a participant's complaint that the shares a neighbour encrypted to it are bad.
///
/// Shares whose signature does not verify are reported as such (``Evidence/unsigned``):
/// nothing secret is revealed, since the server — which forwarded them — may have changed
/// them itself. Shares the neighbour did sign that do not open, or do not hold two shares
/// for the complainer, are proved bad (``Evidence/undecryptable(shared:proof:)``) by revealing
/// the element the two share, K = c_v·C_u, with a proof that it is c_v times the neighbour's
/// key: the server opens the ciphertext itself and learns whose fault it was. K opens only
/// the channel between the two, whose contents the neighbour — who signed garbage — knows.
public struct ShareComplaint: Hashable, Sendable {
    public enum Evidence: Hashable, Sendable {
        case unsigned
        case undecryptable(shared: [UInt8], proof: EqualityProof)
    }

    /// The neighbour whose shares failed.
    public var accused: UInt32
    public var evidence: Evidence

    public init(accused: UInt32, evidence: Evidence) {
        self.accused = accused
        self.evidence = evidence
    }

    /// The largest encoding: LE_4(accused) ‖ 0x01 ‖ K ‖ proof (an unsigned report is LE_4 ‖ 0x00).
    static var maxEncodedByteCount: Int { 5 + Ristretto255.elementByteCount + EqualityProof.byteCount }

    func write(to writer: inout ByteWriter) {
        writer.u32(accused)
        switch evidence {
        case .unsigned:
            writer.u8(0)
        case .undecryptable(let shared, let proof):
            writer.u8(1)
            writer.raw(shared)
            writer.raw(proof.rawRepresentation)
        }
    }

    static func read(from reader: inout ByteReader) throws(SecAggWireError) -> ShareComplaint {
        let accused = try reader.u32("accused")
        switch try reader.u8("complaint kind") {
        case 0:
            return ShareComplaint(accused: accused, evidence: .unsigned)
        case 1:
            let shared = try reader.raw(Ristretto255.elementByteCount, "shared element")
            let proofBytes = try reader.raw(EqualityProof.byteCount, "proof")  // a short body throws here
            let proof = try! EqualityProof(rawRepresentation: proofBytes)  // length read exactly
            return ShareComplaint(accused: accused, evidence: .undecryptable(shared: shared, proof: proof))
        case let kind:
            throw .malformed("unknown complaint kind \(kind)")
        }
    }
}

/// R2, participant → server: its complaints about neighbours' shares (usually none), then the
/// masked input, d elements of ⌈b/8⌉ bytes, little-endian.
struct MaskedInputBody {
    var complaints: [ShareComplaint]
    /// The encoded masked input.
    var vector: ArraySlice<UInt8>

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 4 + complaints.count * ShareComplaint.maxEncodedByteCount + vector.count)
        writer.u32(UInt32(complaints.count))
        for complaint in complaints { complaint.write(to: &writer) }
        writer.raw(Array(vector))
        return writer.bytes
    }

    init(complaints: [ShareComplaint], vector: ModularVector) {
        self.complaints = complaints
        self.vector = Self.encode(vector)[...]
    }

    /// Reads the complaints; the vector's length is checked when it is decoded.
    init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        let count = try reader.count("complaints", itemBytes: 5)
        var complaints: [ShareComplaint] = []
        for _ in 0..<count { complaints.append(try ShareComplaint.read(from: &reader)) }
        self.complaints = complaints
        vector = bytes[reader.offset...]
    }

    /// Each element in ⌈b/8⌉ little-endian bytes: the lanes' bytes themselves when they are
    /// that wide (the lanes are little-endian, see ``ModularVector``), else each lane's low bytes.
    static func encode(_ vector: ModularVector) -> [UInt8] {
        let width = vector.bitWidth.byteCount
        let lane = vector.bitWidth.laneByteCount
        return [UInt8](unsafeUninitializedCapacity: vector.count * width) { out, initialized in
            vector.withUnsafeLaneBytes { lanes in
                if width == lane {
                    UnsafeMutableRawBufferPointer(out).copyMemory(from: lanes)
                } else {
                    for i in 0..<vector.count {
                        for j in 0..<width { out[i * width + j] = lanes[i * lane + j] }
                    }
                }
            }
            initialized = vector.count * width
        }
    }

    static func decode(_ bytes: ArraySlice<UInt8>, bitWidth: BitWidth, dimension: Int) throws(SecAggWireError)
        -> ModularVector
    {
        let width = bitWidth.byteCount
        let lane = bitWidth.laneByteCount
        guard bytes.count == dimension * width else {
            throw .malformed("masked input of \(bytes.count) bytes, expected \(dimension) × \(width)")
        }
        var vector = ModularVector(zeros: dimension, bitWidth: bitWidth)
        bytes.withUnsafeBytes { input in
            vector.withUnsafeMutableLaneBytes { lanes in
                if width == lane {
                    lanes.copyMemory(from: input)
                } else {
                    for i in 0..<dimension {
                        for j in 0..<width { lanes[i * lane + j] = input[i * width + j] }
                    }
                }
            }
        }
        // Only the top byte of an element can hold bits above b.
        let top = UInt8(truncatingIfNeeded: bitWidth.mask >> UInt64(8 * (width - 1)))
        if top != 0xFF {
            let index = bytes.withUnsafeBytes { input in
                (0..<dimension).first { input[$0 * width + width - 1] & ~top != 0 }
            }
            if let index { throw .malformed("masked input element \(index) exceeds 2^\(bitWidth.bits)") }
        }
        return vector
    }
}

/// R3, server → participant: who survived R2 (their masked inputs are in the sum) and who
/// dropped after sending shares, as two bitmaps over the roster.
struct SurvivorListBody: Hashable {
    var survivors: ParticipantBitmap
    var dropped: ParticipantBitmap

    var encoded: [UInt8] { survivors.bytes + dropped.bytes }

    init(survivors: ParticipantBitmap, dropped: ParticipantBitmap) {
        self.survivors = survivors
        self.dropped = dropped
    }

    init(decoding bytes: [UInt8], clientCount: Int) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        let size = (clientCount + 7) / 8
        survivors = try ParticipantBitmap(clientCount: clientCount, bytes: try reader.raw(size, "survivors"))
        dropped = try ParticipantBitmap(clientCount: clientCount, bytes: try reader.raw(size, "dropped"))
        try reader.finish("SurvivorList")
    }
}

/// R4, server → participant: other participants' R3 signatures on the same survivor digest.
struct SignaturesForwardBody: Hashable {
    struct Entry: Hashable {
        var signer: UInt32
        var signature: [UInt8]
    }
    var signatures: [Entry]

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 4 + 68 * signatures.count)
        writer.u32(UInt32(signatures.count))
        for entry in signatures {
            writer.u32(entry.signer)
            writer.raw(entry.signature)
        }
        return writer.bytes
    }

    init(signatures: [Entry]) { self.signatures = signatures }

    init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        let count = try reader.count("signatures", itemBytes: 68)
        var entries: [Entry] = []
        for _ in 0..<count {
            entries.append(Entry(signer: try reader.u32("signer"), signature: try reader.raw(64, "signature")))
        }
        try reader.finish("SignaturesForward")
        signatures = entries
    }
}

/// Which of a participant's two secrets a revealed share belongs to.
public enum ShareKind: UInt8, Hashable, Sendable {
    /// b_v, the self-mask seed: revealed for participants that survived.
    case selfMaskSeed = 0
    /// s_v, the masking private key: revealed for participants that dropped.
    case maskingKey = 1
}

/// R4, participant → server: one share per neighbour (and itself), of the kind its status calls for.
struct UnmaskingSharesBody {
    struct Entry {
        var owner: UInt32
        var kind: ShareKind
        var share: ShamirShare
        /// The owner's endorsement of the share (`Specs/secagg.md` §4).
        var endorsement: [UInt8]
    }
    var shares: [Entry]

    static var entryByteCount: Int { 5 + SharePlaintext.shareByteCount + Ed25519.signatureByteCount }

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 4 + shares.count * Self.entryByteCount)
        writer.u32(UInt32(shares.count))
        for entry in shares {
            writer.u32(entry.owner)
            writer.u8(entry.kind.rawValue)
            writer.raw(entry.share.encoded.unsafeExposedBytes())  // revealing it is the point of R4
            writer.raw(entry.endorsement)
        }
        return writer.bytes
    }

    init(shares: [Entry]) { self.shares = shares }

    init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        let count = try reader.count("shares", itemBytes: Self.entryByteCount)
        var entries: [Entry] = []
        for _ in 0..<count {
            let owner = try reader.u32("owner")
            guard let kind = ShareKind(rawValue: try reader.u8("kind")) else { throw .malformed("unknown share kind") }
            let encoded = try reader.raw(SharePlaintext.shareByteCount, "share")
            let endorsement = try reader.raw(Ed25519.signatureByteCount, "endorsement")
            do {
                entries.append(
                    Entry(
                        owner: owner, kind: kind, share: try ShamirShare(encoded: SecureBytes(copying: encoded)),
                        endorsement: endorsement))
            } catch { throw .malformed("\(error)") }
        }
        try reader.finish("UnmaskingShares")
        shares = entries
    }
}
