import VeilCore
import VeilCrypto

/// What the server holds against a participant it blames: the signed messages that show the
/// fault, so that the blame can be recorded, shown and checked again later
/// (`Specs/secagg.md`, "Complaints and attribution").
public struct SecAggEvidence: Hashable, Sendable {
    /// The faults a participant's own signed messages can prove.
    public enum Fault: String, Hashable, Sendable, CaseIterable {
        /// Its R1 shares to a neighbour do not open, or are not shares for it: proved by the
        /// neighbour's complaint. The participant is convicted and leaves the round.
        case invalidShares
        /// It complained about shares that open and are valid.
        case falseComplaint
        /// It sent a complaint whose proof does not verify, or about a participant that sent it nothing.
        case invalidComplaint
        /// A share it revealed in R4 lies off the polynomial of the others. Either it changed
        /// the share or the owner dealt it wrong: the evidence alone does not say which.
        case wrongShare

        /// Whether the evidence alone shows it was this participant's doing — what exclusion
        /// counts. A wrong share does not: the owner may have dealt it wrong to frame the holder.
        public var isProven: Bool { self != .wrongShare }
    }

    public var fault: Fault
    /// The participant blamed.
    public var participant: ParticipantID
    /// The other party: the complainer (invalid shares), the accused (a false or invalid
    /// complaint), or the owner of the secret (a wrong share).
    public var counterpart: ParticipantID
    /// The signed messages, as received: for a complaint, the complainer's and the accused's
    /// R0 advertisements and the accused's R1 shares; for an invalid complaint, the
    /// complainer's R2 message; for a wrong share, the holder's R4 message.
    public var messages: [SignedMessage]
    /// The complaint, for ``Fault/invalidShares`` and ``Fault/falseComplaint``.
    public var complaint: ShareComplaint?

    /// `u8 fault index ‖ LE_4(participant) ‖ LE_4(counterpart) ‖ LE_4(count) ‖ (LE_4(len) ‖ message)* ‖ u8 has-complaint
    /// ‖ complaint?` — the form attribution records store.
    public var encoded: [UInt8] {
        var writer = ByteWriter()
        writer.u8(UInt8(Fault.allCases.firstIndex(of: fault)!))  // every fault is in allCases
        writer.u32(participant.rawValue)
        writer.u32(counterpart.rawValue)
        writer.u32(UInt32(messages.count))
        for message in messages { writer.blob(message.encoded) }
        writer.u8(complaint == nil ? 0 : 1)
        if let complaint { complaint.write(to: &writer) }
        return writer.bytes
    }

    public init(
        fault: Fault, participant: ParticipantID, counterpart: ParticipantID, messages: [SignedMessage],
        complaint: ShareComplaint? = nil
    ) {
        self.fault = fault
        self.participant = participant
        self.counterpart = counterpart
        self.messages = messages
        self.complaint = complaint
    }

    public init(decoding bytes: [UInt8]) throws(SecAggWireError) {
        var reader = ByteReader(bytes)
        let index = Int(try reader.u8("fault"))
        guard index < Fault.allCases.count else { throw .malformed("unknown fault \(index)") }
        fault = Fault.allCases[index]
        participant = ParticipantID(try reader.u32("participant"))
        counterpart = ParticipantID(try reader.u32("counterpart"))
        let count = try reader.count("messages", itemBytes: 4)
        var messages: [SignedMessage] = []
        for _ in 0..<count { messages.append(try SignedMessage(encoded: try reader.blob("message"))) }
        self.messages = messages
        switch try reader.u8("has complaint") {
        case 0: complaint = nil
        case 1: complaint = try ShareComplaint.read(from: &reader)
        default: throw .malformed("the complaint flag must be 0 or 1")
        }
        try reader.finish("SecAggEvidence")
    }

    /// Checks a complaint's evidence again, from the session alone: both advertisements and
    /// the accused's R1 message are signed by their senders, the proof verifies, and the
    /// ciphertext fails (``Fault/invalidShares``) or opens to valid shares
    /// (``Fault/falseComplaint``). Other faults need the round's whole transcript.
    public func verify(in session: SecAggSession) -> Bool {
        guard fault == .invalidShares || fault == .falseComplaint, let complaint, messages.count == 3 else {
            return false
        }
        let accuser = ParticipantID(messages[0].sender)
        let accused = ParticipantID(complaint.accused)
        guard (fault == .invalidShares ? accused : accuser) == participant,
            (fault == .invalidShares ? accuser : accused) == counterpart,
            messages[1].sender == accused.rawValue, messages[2].sender == accused.rawValue,
            messages[0].round == .advertiseKeys, messages[1].round == .advertiseKeys, messages[2].round == .shareKeys,
            messages.allSatisfy({ $0.sessionID == session.id && $0.recipient == SignedMessage.server }),
            messages.allSatisfy({ m in session.identity(of: m.sender).map { m.isSigned(by: $0) } ?? false }),
            let accuserKeys = try? AdvertiseKeysBody(decoding: messages[0].body),
            let accusedKeys = try? AdvertiseKeysBody(decoding: messages[1].body),
            let dealt = try? ShareKeysBody(decoding: messages[2].body),
            let accusedIdentity = session.identity(of: accused.rawValue)
        else { return false }
        let stands = SecAggEvidence.complaintStands(
            complaint, accuser: accuser, accuserKey: accuserKeys.encryptionKey, accusedKey: accusedKeys.encryptionKey,
            accusedIdentity: accusedIdentity, dealt: dealt, sessionID: session.id)
        return stands == (fault == .invalidShares)
    }

    /// nil when the complaint's evidence is invalid (a proof that does not verify, shares the
    /// accused never dealt to the accuser); otherwise whether it stands: the shares the accused
    /// dealt are not signed as the accused signs them (``ShareComplaint/Evidence/unsigned``),
    /// or they fail authentication under the proven K or do not hold two shares for the accuser.
    static func complaintStands(
        _ complaint: ShareComplaint, accuser: ParticipantID, accuserKey: Ristretto255.PublicKey,
        accusedKey: Ristretto255.PublicKey, accusedIdentity: Ed25519.PublicKey, dealt: ShareKeysBody,
        sessionID: [UInt8]
    ) -> Bool? {
        let accused = ParticipantID(complaint.accused)
        guard let entry = dealt.shares.first(where: { $0.peer == accuser.rawValue }) else { return nil }
        switch complaint.evidence {
        case .unsigned:
            return !entry.isSigned(by: accusedIdentity, sessionID: sessionID, sender: accused, recipient: accuser)
        case .undecryptable(let shared, let proof):
            let context = SecAggKeys.complaintContext(sessionID: sessionID, accuser: accuser, accused: accused)
            guard proof.verify(x: accuserKey, base: accusedKey, shared: shared, context: context) else { return nil }
            let key = SecAggKeys.shareKey(shared: SecureBytes(copying: shared), sessionID: sessionID, accused, accuser)
            let ad = SecAggKeys.sharesAssociatedData(sessionID: sessionID, sender: accused, recipient: accuser)
            guard
                let plaintext = try? XChaCha20Poly1305.open(
                    entry.ciphertext, using: key, nonce: entry.nonce, authenticating: ad)
            else { return true }
            return SharePlaintext.parse(plaintext, for: accuser) == nil
        }
    }
}
