import Foundation
import VeilPaillier
import VeilSecAgg
import VeilWire

/// What a participant requires of every round it takes part in, whatever the coordinator
/// proposes (`Specs/wire.md` §3.1): `veil join`'s `policy`. The coordinator's parameters are
/// checked against it and declined when they fall short; the coordinator can read the policy
/// (it is declared in Hello so that rounds can be planned to meet it) but cannot weaken it.
public struct ParticipantPolicy: Codable, Hashable, Sendable {
    /// What the participant assumes the coordinator may do.
    public enum Adversary: String, Codable, Hashable, Sendable, CaseIterable {
        case malicious
        case honestButCurious = "honest-but-curious"

        var threatModel: ThreatModel.Adversary { self == .malicious ? .maliciousServer : .honestButCuriousServer }
    }

    public var adversary: Adversary = .malicious
    /// γ: the fraction of any cohort that may be corrupt and collude with the coordinator.
    public var corruptFraction = 0.05
    /// δ: the dropout fraction the sparse-graph rules assume.
    public var dropoutFraction = 0.1
    /// σ.
    public var securityBits = 40
    /// The smallest cohort it joins.
    public var minCohort = 3
    /// The fewest contributors a sum it takes part in may be released over.
    public var minContributors = 3
    /// Paillier: the id of the key holder whose certificate must sign the key.
    public var keyHolder = "key-holder"
    /// Paillier: the shortest modulus accepted.
    public var paillierMinBits = 2048
    /// Paillier: the key's fingerprint (`veil paillier keygen` prints it), when pinned — the
    /// threshold key's (`veil paillier deal` prints it) with `key_holders`.
    public var paillierFingerprint: String?
    /// Paillier with a threshold key (`Specs/paillier.md` §6.3): the ids of its ℓ holders,
    /// holder i at index i − 1. Set, the participant takes part only in threshold sessions of a
    /// key whose holders these are, each of at least t named having signed its share.
    public var keyHolders: [String]?
    /// With `key_holders`: the fewest holders that must cooperate to decrypt (t).
    public var minKeyHolderThreshold = 2
    /// Asynchronous rounds (`Specs/wire.md` §4.4): the stalest update it contributes, whatever
    /// the coordinator allows. Every member of a round is weighted at least 1/√(1 + this) of its
    /// own p̃, so a coordinator cannot make the others' weights vanish and leave one update.
    public var maxStaleness = 10

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case adversary, corruptFraction, dropoutFraction, securityBits, minCohort, minContributors, keyHolder
        case paillierMinBits, paillierFingerprint, keyHolders, minKeyHolderThreshold, maxStaleness
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "policy")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.take(.adversary, &adversary); try c.take(.corruptFraction, &corruptFraction)
        try c.take(.dropoutFraction, &dropoutFraction); try c.take(.securityBits, &securityBits)
        try c.take(.minCohort, &minCohort); try c.take(.minContributors, &minContributors)
        try c.take(.keyHolder, &keyHolder); try c.take(.paillierMinBits, &paillierMinBits)
        paillierFingerprint = try c.decodeIfPresent(String.self, forKey: .paillierFingerprint)
        keyHolders = try c.decodeIfPresent([String].self, forKey: .keyHolders)
        try c.take(.minKeyHolderThreshold, &minKeyHolderThreshold)
        try c.take(.maxStaleness, &maxStaleness)
    }

    /// The masking part, checked.
    /// - Throws: ``ConfigurationError`` naming the key that is out of range.
    public func secAgg() throws -> SecAggPolicy {
        do {
            let model = try ThreatModel(
                adversary: adversary.threatModel, corruptFraction: corruptFraction, dropoutFraction: dropoutFraction,
                securityBits: securityBits)
            return try SecAggPolicy(threatModel: model, minimumCohort: minCohort, minimumContributors: minContributors)
        } catch {
            throw ConfigurationError(
                "policy: \(error) (corrupt_fraction, dropout_fraction, security_bits, min_cohort, min_contributors)")
        }
    }

    /// Checks every value.
    func validate() throws {
        _ = try secAgg()
        guard paillierMinBits >= PaillierPublicKey.minimumBits else {
            throw ConfigurationError("policy.paillier_min_bits must be at least \(PaillierPublicKey.minimumBits)")
        }
        if let pin = paillierFingerprint {
            guard pin.count == 64, pin.allSatisfy(\.isHexDigit) else {
                throw ConfigurationError(
                    "policy.paillier_fingerprint must be 64 hexadecimal digits (veil paillier keygen prints it)")
            }
        }
        try FederationCA.validate(id: keyHolder)
        guard (0...1000).contains(maxStaleness) else {
            throw ConfigurationError("policy.max_staleness must be in 0...1000")
        }
        if let keyHolders {
            guard !keyHolders.isEmpty, Set(keyHolders).count == keyHolders.count else {
                throw ConfigurationError("policy.key_holders must name each holder once")
            }
            for id in keyHolders {
                do { try FederationCA.validate(id: id) } catch {
                    throw ConfigurationError("policy.key_holders: \(error)")
                }
            }
            guard (2...keyHolders.count).contains(minKeyHolderThreshold) else {
                throw ConfigurationError(
                    "policy.min_key_holder_threshold must be in 2...\(keyHolders.count) (the number of key_holders): with 1, any one holder decrypts alone"
                )
            }
        }
    }

    /// The policy as declared in Hello.
    func declaration(requiresPrivacyPlan: Bool) -> Veil_V1_ParticipantPolicy {
        .with {
            $0.adversary = UInt32(adversary.threatModel.rawValue)
            $0.corruptFraction = corruptFraction
            $0.dropoutFraction = dropoutFraction
            $0.securityBits = UInt32(securityBits)
            $0.minimumCohort = UInt32(minCohort)
            $0.minimumContributors = UInt32(minContributors)
            $0.requiresPrivacyPlan = requiresPrivacyPlan
            $0.maxStaleness = UInt32(maxStaleness)
        }
    }
}

extension Veil_V1_ParticipantPolicy {
    /// The masking policy a participant declared, if it is a valid one.
    var declared: SecAggPolicy? {
        guard let adversary = ThreatModel.Adversary(rawValue: UInt8(clamping: adversary)),
            let model = try? ThreatModel(
                adversary: adversary, corruptFraction: corruptFraction, dropoutFraction: dropoutFraction,
                securityBits: Int(securityBits))
        else { return nil }
        return try? SecAggPolicy(
            threatModel: model, minimumCohort: Int(minimumCohort), minimumContributors: Int(minimumContributors))
    }
}

/// A participant's refusal of an assignment, or its withdrawal from a round: the code and
/// the reason travel in `Decline`, and the participant logs and counts them.
public struct Declined: Error, CustomStringConvertible {
    public let code: Veil_V1_DeclineCode
    public let reason: String

    /// The longest reason sent: a reason built from something another party controls (a
    /// trainer's file, a coordinator's plan) cannot grow a message or a log without bound.
    public static let maxReasonLength = 512

    public init(_ code: Veil_V1_DeclineCode, _ reason: String) {
        self.code = code
        self.reason =
            reason.count > Self.maxReasonLength ? String(reason.prefix(Self.maxReasonLength - 1)) + "…" : reason
    }

    public var description: String { "\(code.name): \(reason)" }
}

extension Veil_V1_DeclineCode {
    /// A short name for logs, metrics and summaries.
    public var name: String {
        switch self {
        case .declinePolicy: "policy"
        case .declineCoordinator: "coordinator"
        case .declineRoster: "roster"
        case .declinePaillierKey: "paillier_key"
        case .declinePrivacy: "privacy"
        case .declineTraining: "training"
        case .declineAborted: "aborted"
        case .declineUnspecified, .UNRECOGNIZED: "unspecified"
        }
    }
}
