import Foundation
import VeilCore
import VeilCrypto
import VeilSecAgg

/// What both kinds of record share: their place in the chain and how the attempt ended
/// (`Specs/audit.md` §2, §7.1).
protocol ChainedRecord {
    var version: Int { get }
    var sequence: Int { get }
    var previous: String { get }
    var round: Int { get }
    var attempt: Int { get }
    var outcome: String { get }
    var abort: String? { get }
    var canonicalBytes: [UInt8] { get }
}

/// The coordinator's signed account of one attempt at a masking round, chained to the record
/// before it (`Specs/audit.md`). Its bytes are canonical JSON (sorted keys, no spaces), so
/// that anyone can hash and check exactly what was signed.
public struct RoundAuditRecord: Codable, Sendable, Equatable, ChainedRecord {
    public struct Member: Codable, Sendable, Equatable {
        /// The participant's id, its roster position's Ed25519 key (hex), and its certificate (DER, base64).
        public var id: String
        public var key: String
        public var certificate: String
    }

    /// What fixes the session: its parameters, nonce, context, server key and roster. The
    /// session id every message carries is recomputed from these.
    public struct Session: Codable, Sendable, Equatable {
        public var clients: Int
        public var threshold: Int
        public var neighbors: Int
        public var bits: Int
        public var dimension: Int
        public var adversary: UInt8
        public var corruptFraction: Double
        public var dropoutFraction: Double
        public var securityBits: Int
        public var nonce: String
        public var context: String
        public var serverKey: String
        public var roster: [Member]
    }

    public var version = 1
    public var federation: String
    /// The record's place in the chain: 1 for the first, then one more each.
    public var sequence: Int
    /// SHA-256 of the previous record's bytes (hex); 64 zeros for the first.
    public var previous: String
    public var round: Int
    public var attempt: Int
    /// Seconds since 1970 when the record was made: the time certificates are checked at.
    public var recorded: Double
    /// `completed` or `aborted`.
    public var outcome: String
    public var abort: String?
    public var session: Session
    /// The coordinator's certificate (DER, base64), whose key signs the record.
    public var coordinatorCertificate: String
    /// The survivors' roster positions and SHA-256 of the sum they released (hex), when completed.
    public var survivors: [UInt32]
    public var sumDigest: String?
    /// The faults attributed in this attempt, as "fault:participant:counterpart" positions.
    public var attributions: [String]
    /// ``SecAggAuditEvent/digest(_:)`` of the log, and how many events it has.
    public var eventsDigest: String
    public var eventCount: Int

    /// The canonical bytes: what is signed and chained.
    public var canonicalBytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8]((try? encoder.encode(self)) ?? Data())  // plain values: encoding cannot fail
    }

    /// SHA-256 of the canonical bytes: what the next record names as `previous`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] { SHA256.hash(bytes) }

    static let signatureContext = Array("veil/v1/audit/record".utf8) + [0]

    /// The coordinator's Ed25519 signature over "veil/v1/audit/record" ‖ 0x00 ‖ the bytes.
    static func sign(_ bytes: [UInt8], with key: Ed25519.PrivateKey) -> [UInt8] {
        key.signature(for: signatureContext + bytes)
    }

    static func isSigned(_ bytes: [UInt8], signature: [UInt8], by key: Ed25519.PublicKey) -> Bool {
        key.isValidSignature(signature, for: signatureContext + bytes)
    }

    static let receiptContext = Array("veil/v1/audit/receipt".utf8) + [0]

    /// The coordinator's receipt to a member of a session: Ed25519 over
    /// "veil/v1/audit/receipt" ‖ 0x00 ‖ session id ‖ SHA-256(record). With it a participant holds
    /// the coordinator to one record for the session it took part in (`Specs/audit.md` §6).
    static func receipt(sessionID: [UInt8], recordHash: [UInt8], by key: Ed25519.PrivateKey) -> [UInt8] {
        key.signature(for: receiptContext + sessionID + recordHash)
    }

    static func isReceipt(
        _ signature: [UInt8], sessionID: [UInt8], recordHash: [UInt8], by key: Ed25519.PublicKey
    ) -> Bool {
        key.isValidSignature(signature, for: receiptContext + sessionID + recordHash)
    }

    /// SHA-256 of the sum's encoding: d elements of ⌈b/8⌉ bytes, little-endian.
    public static func sumDigest(_ sum: ModularVector) -> [UInt8] {
        let width = sum.bitWidth.byteCount
        var bytes: [UInt8] = []
        bytes.reserveCapacity(sum.count * width)
        for element in sum.elements {
            var value = element
            for _ in 0..<width {
                bytes.append(UInt8(truncatingIfNeeded: value))
                value >>= 8
            }
        }
        return SHA256.hash(Array("veil/v1/audit/sum".utf8) + [0], bytes)
    }
}

/// The session of a masking round, as the round machine records it for its audit record.
struct AuditedSession: Sendable {
    let session: SecAggSession
    let members: [(id: String, certificateDER: [UInt8])]
    /// The round plan's encoding, whose digest is the session's context.
    let plan: [UInt8]
}
