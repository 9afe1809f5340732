import VeilCore
import VeilCrypto

/// One entry of a session's audit log, in the order the server saw it (`Specs/audit.md`).
public enum SecAggAuditEvent: Hashable, Sendable {
    /// A participant's message, as received, with the roster position the transport authenticated.
    case received(ParticipantID, [UInt8])
    /// A protocol round's deadline passed (`SecAggServer.closeRound()`).
    case deadline
    /// A message the server sent, as sent.
    case sent([UInt8])

    /// The event's digest contribution: u8 kind (0 received, 1 deadline, 2 sent) ‖ LE_4(party)
    /// ‖ LE_4(|bytes|) ‖ bytes.
    public var encoded: [UInt8] {
        var writer = ByteWriter()
        switch self {
        case .received(let party, let bytes):
            writer.u8(0)
            writer.u32(party.rawValue)
            writer.blob(bytes)
        case .deadline:
            writer.u8(1)
            writer.u32(0)
            writer.blob([])
        case .sent(let bytes):
            writer.u8(2)
            writer.u32(0)
            writer.blob(bytes)
        }
        return writer.bytes
    }

    /// SHA-256 over "veil/v1/audit/events" ‖ 0x00 and every event's encoding, in order.
    public static func digest(_ events: [SecAggAuditEvent]) -> [UInt8] {
        var digest = SHA256.hash(Array("veil/v1/audit/events".utf8) + [0])
        for event in events { digest = SHA256.hash(digest, event.encoded) }
        return digest
    }
}

/// What a replayed session ended with.
public struct SecAggAuditOutcome: Sendable {
    /// The survivors and their sum, when the session completed.
    public var result: SecureSumResult?
    /// The abort code, when it aborted.
    public var abort: String?
    /// The faults the server attributed, in order.
    public var attributions: [SecAggEvidence] = []
    /// The survivor lists the server sent (one value when every participant saw the same).
    public var survivorLists: Set<[UInt8]> = []
}

/// Why a recorded session does not check.
public struct SecAggAuditError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Checks a recorded session from its log alone: every server message must be signed by the
/// session's server key and be exactly what the server state machine sends when it is given
/// the recorded participant messages and deadlines, in order. The participants' messages are
/// checked by that machine as the live server checked them (signatures, sessions, rounds,
/// complaints, reveals), and the unmasking is recomputed from the masked inputs and the
/// revealed shares: the outcome is the sum the session released.
public enum SecAggAudit {
    public static func replay(_ events: [SecAggAuditEvent], session: SecAggSession) throws(SecAggAuditError)
        -> SecAggAuditOutcome
    {
        var server = SecAggServer(replaying: session)
        var owed: [SignedMessage] = []
        var outcome = SecAggAuditOutcome()
        for (index, event) in events.enumerated() {
            let actions: [ServerAction]
            switch event {
            case .received(let party, let bytes):
                guard session.isParticipant(party.rawValue) else {
                    throw SecAggAuditError("event \(index): party \(party) is not on the roster")
                }
                actions = server.receive(encoded: bytes, from: party)
            case .deadline:
                actions = server.closeRound()
            case .sent(let bytes):
                let recorded: SignedMessage
                do { recorded = try SignedMessage(encoded: bytes) } catch {
                    throw SecAggAuditError("event \(index): a server message that does not parse: \(error)")
                }
                guard recorded.sender == SignedMessage.server, recorded.isSigned(by: session.serverIdentity) else {
                    throw SecAggAuditError("event \(index): a server message not signed by the session's server key")
                }
                guard !owed.isEmpty else {
                    throw SecAggAuditError("event \(index): the server sent a message the protocol did not call for")
                }
                let expected = owed.removeFirst()
                guard
                    expected.sessionID == recorded.sessionID, expected.round == recorded.round,
                    expected.recipient == recorded.recipient, expected.body == recorded.body
                else {
                    throw SecAggAuditError(
                        "event \(index): the server's \(recorded.round) message to \(recorded.recipient) is not the one the recorded messages call for"
                    )
                }
                if recorded.round == .consistencyCheck { outcome.survivorLists.insert(recorded.body) }
                continue
            }
            for action in actions {
                switch action {
                case .send(let message): owed.append(message)
                case .dropped: break
                case .attributed(let evidence): outcome.attributions.append(evidence)
                case .completed(let result): outcome.result = result
                case .aborted(let abort): outcome.abort = abort.reason.code
                }
            }
        }
        guard owed.isEmpty else {
            throw SecAggAuditError(
                "the log ends before the server sent \(owed.count) message(s) the protocol called for")
        }
        guard outcome.survivorLists.count <= 1 else {
            throw SecAggAuditError("participants were shown \(outcome.survivorLists.count) different survivor lists")
        }
        return outcome
    }
}
