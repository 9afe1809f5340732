import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier

/// The coordinator's signed account of one attempt at a Paillier round (`Specs/audit.md` §7.1),
/// in the same chain as the masking records: who contributed (each contribution's digest and its
/// member's receipt), the aggregate it asked the key holder to decrypt, and the sum the key
/// holder signed. Canonical JSON like ``RoundAuditRecord``; `secureSum` tells the kinds apart.
public struct PaillierAuditRecord: Codable, Sendable, Equatable, ChainedRecord {
    /// What fixes the Paillier session id (`Specs/paillier.md` §6.1), and the signatures that
    /// bind the key to the key holder and the session to the coordinator.
    public struct Session: Codable, Sendable, Equatable {
        /// N, big-endian in ⌈|N|/8⌉ bytes (hex), and the key holder's signature of it (hex).
        public var modulus: String
        public var modulusSignature: String?
        /// The key holder's certificate (DER, base64).
        public var keyHolderCertificate: String?
        /// Threshold sessions instead (`Specs/paillier.md` §6.3): the threshold key's canonical
        /// encoding (hex) and the holders the session names.
        public var thresholdKey: String?
        public var thresholdHolders: [ThresholdHolder]?
        /// The packing: b, K, and d.
        public var bits: Int
        public var capacity: Int
        public var dimension: Int
        public var nonce: String
        public var context: String
        /// The coordinator's Ed25519 key, and its signature of the session's announcement (hex).
        public var serverKey: String
        public var assignmentSignature: String
        public var roster: [RoundAuditRecord.Member]
    }

    /// A threshold holder a session names: its number, certificate (DER, base64) and its
    /// signature of its share statement (hex).
    public struct ThresholdHolder: Codable, Sendable, Equatable {
        public var holder: Int
        public var certificate: String
        public var signature: String
    }

    /// A threshold holder's signed partial decryptions the sum was combined from: its number,
    /// SHA-256 of its partials in their wire form, and its signature (hex).
    public struct Partials: Codable, Sendable, Equatable {
        public var holder: Int
        public var digest: String
        public var signature: String
    }

    /// A contribution the coordinator accepted: its member's position, SHA-256 of its
    /// ciphertexts and the member's receipt (hex).
    public struct Contribution: Codable, Sendable, Equatable {
        public var position: UInt32
        public var digest: String
        public var receipt: String
    }

    public var version = 1
    public var secureSum = "paillier"
    public var federation: String
    public var sequence: Int
    public var previous: String
    public var round: Int
    public var attempt: Int
    public var recorded: Double
    public var outcome: String
    public var abort: String?
    public var session: Session
    public var coordinatorCertificate: String
    public var contributions: [Contribution]
    /// SHA-256 of the aggregate asked for and the coordinator's signature of the request (hex),
    /// when it asked.
    public var aggregateDigest: String?
    public var requestSignature: String?
    /// The released sum's digest (``RoundAuditRecord/sumDigest(_:)``) and the key holder's
    /// signature of the sum (hex), when it released one.
    public var sumDigest: String?
    public var resultSignature: String?
    /// Threshold sessions: the t answers the sum was combined from, instead of `resultSignature`.
    public var partials: [Partials]?
    public var survivors: [UInt32]

    public var canonicalBytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8]((try? encoder.encode(self)) ?? Data())  // plain values: encoding cannot fail
    }
}

/// What a Paillier record's verification needs beyond the record (`Specs/audit.md` §7.2): the
/// contributions' ciphertexts, the re-randomisers, the aggregate and the sum, all hex.
public struct PaillierAuditEvidence: Codable, Sendable, Equatable {
    public struct Contribution: Codable, Sendable, Equatable {
        public var position: UInt32
        public var ciphertexts: [String]
    }

    public var contributions: [Contribution] = []
    /// r_j, big-endian in ⌈|N|/8⌉ bytes: aggregate_j = (Π c_j) · r_j^N mod N².
    public var rerandomization: [String] = []
    public var aggregate: [String] = []
    /// LE_8 of each of the d elements.
    public var sum = ""
    /// Threshold sessions: each combined holder's partials in their wire form, by holder.
    public var partials: [HolderPartials]?

    public struct HolderPartials: Codable, Sendable, Equatable {
        public var holder: Int
        public var values: [String]
    }

    var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [UInt8]((try? encoder.encode(self)) ?? Data())  // plain values: encoding cannot fail
    }

    /// LE_8 of each element, hex: the bytes the key holder's signature covers.
    static func encodeSum(_ elements: [UInt64]) -> String {
        var writer = ByteWriter(capacity: 8 * elements.count)
        for element in elements { writer.u64(element) }
        return Hex.encode(writer.bytes)
    }
}

/// The session of a Paillier round, as the round machine records it for its audit record.
struct AuditedPaillierSession: Sendable {
    let keyHolding: KeyHolding
    let assignmentSignature: [UInt8]
    let members: [(id: String, certificateDER: [UInt8])]
    /// The round plan's encoding, whose digest is the session's context.
    let plan: [UInt8]
}
