import Foundation
import Synchronization
import VeilPaillier
import VeilPrivacy
import VeilWire

/// A participant's own privacy ledger, kept in a JSON file (written atomically after each
/// charge) so that a restart does not forget what was spent.
final class ParticipantLedger: Sendable {
    private let path: String
    private let ledger: Mutex<PrivacyLedger>

    init(_ budget: ParticipantBudget) throws {
        path = budget.ledger
        let policy = PrivacyLedger.Policy(epsilon: budget.epsilon, delta: budget.delta)
        if let data = FileManager.default.contents(atPath: path) {
            let stored: PrivacyLedger
            do { stored = try JSONDecoder().decode(PrivacyLedger.self, from: data) } catch {
                throw ConfigurationError("the privacy ledger \(path) is not a ledger: \(error)")
            }
            guard stored.policy.epsilon == policy.epsilon, stored.policy.delta == policy.delta else {
                throw ConfigurationError(
                    "the privacy ledger \(path) has budget ε = \(stored.policy.epsilon), δ = \(stored.policy.delta); the configuration says ε = \(policy.epsilon), δ = \(policy.delta)"
                )
            }
            ledger = Mutex(stored)
        } else {
            ledger = Mutex(PrivacyLedger(policy: policy))
        }
    }

    /// ε spent so far by `id`.
    func spent(_ id: String) -> Double { ledger.withLock { $0.spent(by: id) } }

    /// Throws when one more round costing `round` would take `id` past its budget.
    func admit(_ id: String, _ round: RDPAccountant) throws {
        if case .refused(let refusal) = ledger.withLock({ $0.admit(id, round: round) }) {
            throw ParticipantError.session(
                String(
                    format: "one more round would take %@ to ε = %.4g, over its own budget ε = %.4g (spent %.4g)",
                    id, refusal.wouldSpend, refusal.budget, refusal.spent))
        }
    }

    func charge(_ id: String, _ round: RDPAccountant) throws {
        let data: Data = try ledger.withLock {
            $0.charge([id], round: round)
            return try JSONEncoder().encode($0)
        }
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// A participant's example-level ledger (DP-SGD, `Specs/privacy.md` §8): the RDP composition
/// of every local training it ran under DP-SGD, kept in a JSON file written atomically after
/// each charge, so that a restart does not forget what was spent.
final class ExampleLedger: Sendable {
    struct Record: Codable, Hashable {
        var delta: Double
        var rounds = 0
        var steps = 0
        var accountant = RDPAccountant()
    }

    private let path: String
    private let record: Mutex<Record>

    init(_ settings: DPSGDSettings) throws {
        path = settings.ledger
        // Only a ledger that does not exist starts from zero: one that cannot be read is an
        // error, never a fresh budget.
        if FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("the example-level ledger \(path) cannot be read")
            }
            let stored: Record
            do { stored = try JSONDecoder().decode(Record.self, from: data) } catch {
                throw ConfigurationError("the example-level ledger \(path) is not a ledger: \(error)")
            }
            guard stored.accountant.orders == RDPAccountant.defaultOrders,
                stored.accountant.rdp.allSatisfy({ $0 >= 0 && !$0.isNaN }), stored.rounds >= 0, stored.steps >= 0
            else {
                throw ConfigurationError(
                    "the example-level ledger \(path) is not a ledger: its orders are not the accountant's, or a value is negative"
                )
            }
            guard stored.delta == settings.delta else {
                throw ConfigurationError(
                    "the example-level ledger \(path) is kept at δ = \(stored.delta); the configuration says δ = \(settings.delta)"
                )
            }
            record = Mutex(stored)
        } else {
            record = Mutex(Record(delta: settings.delta))
        }
    }

    /// The example-level ε spent so far, and after one more local training costing `cost`.
    func epsilon(adding cost: RDPAccountant? = nil) -> Double {
        record.withLock { record in
            var accountant = record.accountant
            if let cost { accountant.compose(cost) }
            return accountant.epsilon(delta: record.delta).epsilon
        }
    }

    var rounds: Int { record.withLock { $0.rounds } }
    var steps: Int { record.withLock { $0.steps } }

    func charge(_ cost: RDPAccountant, steps: Int) throws {
        let data: Data = try record.withLock {
            $0.accountant.compose(cost)
            $0.rounds += 1
            $0.steps += steps
            return try JSONEncoder().encode($0)
        }
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Certificates already verified, by SHA-256 of their DER; an entry is used only while its
/// certificate is still valid.
final class VerifiedCertificates: Sendable {
    private let entries = Mutex<[[UInt8]: FederationIdentity]>([:])

    func lookup(_ digest: [UInt8]) -> FederationIdentity? {
        entries.withLock {
            guard let identity = $0[digest], Date() <= identity.notValidAfter else { return nil }
            return identity
        }
    }

    func store(_ digest: [UInt8], _ identity: FederationIdentity) {
        entries.withLock { $0[digest] = identity }
    }
}

/// The loss reports this participant process has sent, by round number
/// (`Specs/orchestration.md` §5.1): a round asked again gets the same report, never fresh noise.
final class LossReportRecord: Sendable {
    private let reports = Mutex<[UInt64: Veil_V1_LossReport]>([:])

    /// The report already sent for `round`; else, while fewer than `limit` were sent, the one
    /// `make` builds (kept); else nil. One lock around all of it: two sessions asking at once
    /// cannot draw two noises for one round, nor pass the limit.
    func report(
        round: UInt64, limit: Int, make: () -> Veil_V1_LossReport?
    ) -> Veil_V1_LossReport? {
        reports.withLock { sent in
            if let known = sent[round] { return known }
            guard sent.count < limit, let report = make() else { return nil }
            sent[round] = report
            return report
        }
    }
}

/// Session ids seen, each at most once.
final class SessionRecord: Sendable {
    private let ids = Mutex<Set<[UInt8]>>([])

    /// True the first time `id` is inserted.
    func insert(_ id: [UInt8]) -> Bool { ids.withLock { $0.insert(id).inserted } }
}

/// DJN encryptors with their fixed-base tables, by modulus: the key stays the same for a
/// federation, and the table is the expensive part.
final class EncryptorCache: Sendable {
    private let encryptors = Mutex<[[UInt8]: DJNEncryptor]>([:])

    func encryptor(for key: PaillierPublicKey) -> DJNEncryptor {
        if let known = encryptors.withLock({ $0[key.bigEndianBytes] }) { return known }
        // Built outside the lock, which would otherwise stall every other lookup; two racing
        // builders make the same table, and the second simply replaces the first.
        let encryptor = DJNEncryptor(publicKey: key, precomputeTable: true)
        encryptors.withLock { $0[key.bigEndianBytes] = encryptor }
        return encryptor
    }
}
