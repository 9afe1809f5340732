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
        /// It proved, with the element it shares with the accused, that shares which open and
        /// are valid do not: only it could have made that proof.
        case falseComplaint
        /// It reported shares as unsigned that the accused signed for it — or the server showed
        /// the two different keys, or changed what it forwarded: not its doing for certain.
        case falseReport
        /// It sent a complaint whose proof does not verify, twice about one neighbour, or about
        /// one the server may have forwarded nothing from.
        case invalidComplaint
        /// It revealed a share in R4 that its owner did not endorse: not the share it was dealt.
        /// Its own signed R4 message shows it; it is dropped from the round.
        case wrongShare
        /// The shares it endorsed do not lie on one polynomial, or do not give the secret it
        /// committed to (or the masking key it advertised): it dealt them wrong. When they do
        /// not give its secret, the round cannot finish.
        case inconsistentSecret

        /// Whether the participant's own signatures show it was its doing — what exclusion
        /// counts. A false report or an invalid complaint could be a server's making.
        public var isProven: Bool {
            self == .invalidShares || self == .falseComplaint || self == .wrongShare || self == .inconsistentSecret
        }
    }

    public var fault: Fault
    /// The participant blamed.
    public var participant: ParticipantID
    /// The other party: the complainer (invalid shares), the accused (a false or invalid
    /// complaint), the owner of the share (a wrong share), or itself (an inconsistent secret).
    public var counterpart: ParticipantID
    /// The signed messages, as received: for a judged complaint, the complainer's and the
    /// accused's R0 advertisements, the accused's R1 shares and the complainer's R2 message
    /// that carries the complaint; for an invalid complaint, the complainer's R2 message; for
    /// a wrong share, the holder's R4 message; for an inconsistent secret, none (it takes the
    /// round's whole transcript: every revealed share and the owner's commitment).
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
        guard fault == .invalidShares || fault == .falseComplaint || fault == .falseReport, let complaint,
            messages.count == 4
        else { return false }
        let accuser = ParticipantID(messages[0].sender)
        let accused = ParticipantID(complaint.accused)
        guard (fault == .invalidShares ? accused : accuser) == participant,
            (fault == .invalidShares ? accuser : accused) == counterpart,
            messages[1].sender == accused.rawValue, messages[2].sender == accused.rawValue,
            messages[3].sender == accuser.rawValue,
            messages[0].round == .advertiseKeys, messages[1].round == .advertiseKeys, messages[2].round == .shareKeys,
            messages[3].round == .maskedInputCollection,
            // The complaint is the complainer's own: in the R2 message it signed.
            (try? MaskedInputBody(decoding: messages[3].body))?.complaints.contains(complaint) == true,
            messages.allSatisfy({ $0.sessionID == session.id && $0.recipient == SignedMessage.server }),
            messages.allSatisfy({ m in session.identity(of: m.sender).map { m.isSigned(by: $0) } ?? false }),
            let accuserKeys = try? AdvertiseKeysBody(decoding: messages[0].body),
            let accusedKeys = try? AdvertiseKeysBody(decoding: messages[1].body),
            let dealt = try? ShareKeysBody(decoding: messages[2].body),
            let accusedIdentity = session.identity(of: accused.rawValue)
        else { return false }
        let verdict = SecAggEvidence.judge(
            complaint, accuser: accuser, accuserKey: accuserKeys.encryptionKey, accusedKey: accusedKeys.encryptionKey,
            accusedIdentity: accusedIdentity, dealt: dealt, sessionID: session.id)
        return verdict == fault
    }

    /// The verdict on a complaint (`Specs/secagg.md` §7.1): ``Fault/invalidShares`` when it
    /// stands (the accused is at fault), ``Fault/falseComplaint`` or ``Fault/falseReport`` when
    /// it does not, ``Fault/invalidComplaint`` when its proof does not verify or the accused
    /// dealt the accuser nothing.
    static func judge(
        _ complaint: ShareComplaint, accuser: ParticipantID, accuserKey: Ristretto255.PublicKey,
        accusedKey: Ristretto255.PublicKey, accusedIdentity: Ed25519.PublicKey, dealt: ShareKeysBody,
        sessionID: [UInt8]
    ) -> Fault {
        let accused = ParticipantID(complaint.accused)
        guard let entry = dealt.shares.first(where: { $0.peer == accuser.rawValue }) else { return .invalidComplaint }
        // Sealed to another key than the accuser's advertisement holds: the two were shown
        // different keys (by the server, or by an accuser that signed two), nobody's fault proven.
        guard entry.recipientKey == accuserKey.rawRepresentation else { return .falseReport }
        let signed = entry.isSigned(by: accusedIdentity, sessionID: sessionID, sender: accused, recipient: accuser)
        switch complaint.evidence {
        case .unsigned:
            return signed ? .falseReport : .invalidShares
        case .undecryptable(let shared, let proof):
            let context = SecAggKeys.complaintContext(sessionID: sessionID, accuser: accuser, accused: accused)
            guard proof.verify(x: accuserKey, base: accusedKey, shared: shared, context: context) else {
                return .invalidComplaint
            }
            // An honest complainer proves only entries signed for its key: otherwise the server
            // showed the two different keys, and nobody's fault is proven.
            guard signed else { return .falseReport }
            let key = SecAggKeys.shareKey(shared: SecureBytes(copying: shared), sessionID: sessionID, accused, accuser)
            let ad = SecAggKeys.sharesAssociatedData(sessionID: sessionID, sender: accused, recipient: accuser)
            guard
                let plaintext = try? XChaCha20Poly1305.open(
                    entry.ciphertext, using: key, nonce: entry.nonce, authenticating: ad),
                SharePlaintext.parse(
                    plaintext, for: accuser, owner: accused, ownerKey: accusedIdentity, sessionID: sessionID) != nil
            else { return .invalidShares }
            return .falseComplaint
        }
    }
}
