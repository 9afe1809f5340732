import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilSecAgg
import VeilWire
import X509

/// What a participant did in a federation.
public struct ParticipantSummary: Sendable {
    public let id: String
    public let roundsAssigned: Int
    public let roundsCompleted: Int
    public let finishedReason: String?
    /// Local training and encoding, and the secure-sum client's work, in seconds.
    public let trainingSeconds: Double
    public let cryptoSeconds: Double
    /// What the coordinator said when this participant's privacy budget kept it out, if it did.
    public var privacyNotice: String? = nil
    /// With a budget of its own: the ε this participant's ledger says it has spent.
    public var privacySpent: Double? = nil
    /// The rounds it declined or withdrew from, by ``Veil_V1_DeclineCode/name``, and the
    /// last reason it gave.
    public var declines: [String: Int] = [:]
    public var lastDecline: String? = nil
}

/// Why the participant stopped.
public enum ParticipantError: Error, CustomStringConvertible {
    case refused(String)
    case session(String)
    /// ``ParticipantAgent/failure`` struck.
    case failureInjected

    public var description: String {
        switch self {
        case .failureInjected: "failure injected"
        case .refused(let why): "the coordinator refused this participant: \(why)"
        case .session(let why): why
        }
    }
}

/// `veil join`: connects to the coordinator with its certificate, registers, and for each
/// round it is assigned checks the roster against the CA, trains locally on its own data,
/// encodes its update and runs the secure-aggregation client (``SecAggClient``).
public struct ParticipantAgent: Sendable {
    public private(set) var configuration: JoinConfiguration
    public let identity: FederationIdentity
    let ca: Certificate
    let signingKey: Ed25519.PrivateKey
    let data: Dataset
    let logger: Logger
    /// Fault injection for tests and benchmarks: in round `round`, after sending `messages`
    /// secure-sum messages, the participant goes silent and disconnects for good, as if killed.
    public var failure: (round: UInt64, messages: Int)?

    let verified = VerifiedCertificates()
    /// The Paillier sessions this participant has contributed to (one contribution each).
    let contributedSessions = SessionRecord()
    let encryptors = EncryptorCache()
    /// This participant's own privacy ledger, when its configuration sets a budget.
    let ledger: ParticipantLedger?

    /// The coordinator's port (a coordinator that picked a free port tells it late).
    public var port: Int {
        get { configuration.port }
        set { configuration.port = newValue }
    }

    public init(configuration: JoinConfiguration, data: Dataset? = nil, logger: Logger? = nil) throws {
        self.configuration = configuration
        (ca, identity, signingKey) = try configuration.tls.credentials(role: .participant)
        self.data = try data ?? Self.loadData(configuration)
        self.logger = logger ?? Logger(label: "veil.join.\(identity.id)")
        ledger = try configuration.privacyBudget.map { try ParticipantLedger($0) }
    }

    /// The participant's rows: its shard of a federated split, or a whole CSV file.
    static func loadData(_ c: JoinConfiguration) throws -> Dataset {
        if c.dataset.hasPrefix("csv:") { return try CSVLoader.load(path: String(c.dataset.dropFirst(4))) }
        var f = FederatedConfiguration()
        f.dataset = try DatasetSource(parsing: c.dataset)
        f.partition = try Partition(parsing: c.partition)
        f.clients = c.clients
        f.seed = c.seed
        return try FederatedSimulation(configuration: f).data.clients[c.index]
    }

    /// Takes part until the coordinator finishes the federation; reconnects after a lost
    /// connection (up to `reconnectAttempts` times).
    public func run() async throws -> ParticipantSummary {
        // Training and masking are CPU-bound: off the cooperative pool (``ComputeThreads``).
        try await withTaskExecutorPreference(ComputeThreads.shared.taskExecutor()) { try await runSessions() }
    }

    private func runSessions() async throws -> ParticipantSummary {
        let tally = Tally()
        var failures = 0
        while true {
            do {
                let outcome = try await session(tally: tally)
                if let reason = outcome.finished {
                    return ParticipantSummary(
                        id: identity.id, roundsAssigned: tally.assigned, roundsCompleted: tally.completed,
                        finishedReason: reason, trainingSeconds: tally.trainingSeconds,
                        cryptoSeconds: tally.cryptoSeconds, privacyNotice: tally.privacyNotice,
                        privacySpent: ledger?.spent(identity.id), declines: tally.declines,
                        lastDecline: tally.lastDecline)
                }
                failures = 0
            } catch {
                // gRPC may wrap what the response handler threw; the tally knows what happened.
                if tally.injected {
                    return ParticipantSummary(
                        id: identity.id, roundsAssigned: tally.assigned, roundsCompleted: tally.completed,
                        finishedReason: "failure injected", trainingSeconds: tally.trainingSeconds,
                        cryptoSeconds: tally.cryptoSeconds)
                }
                if let refusal = tally.refusal { throw ParticipantError.refused(refusal) }
                failures += 1
                logger.info("connection lost", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                if failures > configuration.reconnectAttempts { throw error }
            }
            try await Task.sleep(for: .milliseconds(min(5000, 200 * (1 << min(failures, 5)))))
        }
    }

    /// Rounds assigned and completed, across reconnections.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var counts = (assigned: 0, completed: 0)
        private var flags: (injected: Bool, refusal: String?, privacyNotice: String?) = (false, nil, nil)
        private var times = (training: 0.0, crypto: 0.0)
        var trainingSeconds: Double { lock.withLock { times.training } }
        var cryptoSeconds: Double { lock.withLock { times.crypto } }
        func add(training: Double = 0, crypto: Double = 0) {
            lock.withLock {
                times.training += training
                times.crypto += crypto
            }
        }
        var assigned: Int { lock.withLock { counts.assigned } }
        var completed: Int { lock.withLock { counts.completed } }
        var injected: Bool {
            get { lock.withLock { flags.injected } }
            set { lock.withLock { flags.injected = newValue } }
        }
        var refusal: String? {
            get { lock.withLock { flags.refusal } }
            set { lock.withLock { flags.refusal = newValue } }
        }
        var privacyNotice: String? {
            get { lock.withLock { flags.privacyNotice } }
            set { lock.withLock { flags.privacyNotice = newValue } }
        }
        func add(assigned: Int = 0, completed: Int = 0) {
            lock.withLock {
                counts.assigned += assigned
                counts.completed += completed
            }
        }
        private var declined: (counts: [String: Int], last: String?) = ([:], nil)
        var declines: [String: Int] { lock.withLock { declined.counts } }
        var lastDecline: String? { lock.withLock { declined.last } }
        func decline(_ declined: Declined) {
            lock.withLock {
                self.declined.counts[declined.code.name, default: 0] += 1
                self.declined.last = declined.description
            }
        }
    }

    struct SessionOutcome: Sendable {
        var finished: String?
    }

    /// One connection.
    func session(tally: Tally) async throws -> SessionOutcome {
        let c = configuration
        let agent = self
        return try await FederationStream.open(
            tls: c.tls, host: c.host, port: c.port, coordinator: c.coordinator, hello: hello()
        ) { messages, send in
            var state = AgentState(agent: agent, tally: tally, send: send)
            for try await message in messages {
                if try state.handle(message) { break }
            }
            return state.outcome
        }
    }

    func hello() -> Veil_V1_Hello {
        var hello = Veil_V1_Hello()
        hello.protocolVersion = 1
        hello.sampleCount = UInt64(data.count)
        hello.policy = configuration.policy.declaration(requiresPrivacyPlan: ledger != nil)
        hello.resources = .with {
            $0.cores = UInt32(configuration.cores ?? ProcessInfo.processInfo.activeProcessorCount)
            $0.memoryBytes = configuration.memoryBytes ?? ProcessInfo.processInfo.physicalMemory
            $0.battery = configuration.battery ?? -1
            $0.linkBitsPerSecond = configuration.linkBitsPerSecond ?? 0
        }
        return hello
    }

    /// The participant's side of one round: the secure-sum client and what it needs.
    struct RoundState {
        let number: UInt64
        var client: SecAggClient<SystemRandom>
    }

    /// Handles the coordinator's messages on one connection.
    struct AgentState {
        let agent: ParticipantAgent
        let tally: Tally
        let send: (Veil_V1_ParticipantMessage) -> Void
        var outcome = SessionOutcome()
        var round: RoundState?
        var sentThisRound = 0
        /// The Paillier round this participant sent its ciphertexts for.
        var contributed: UInt64?

        /// Returns true when the federation is finished.
        mutating func handle(_ message: Veil_V1_CoordinatorMessage) throws -> Bool {
            switch message.kind {
            case .welcome(let welcome):
                agent.logger.info(
                    "registered",
                    metadata: ["federation": "\(welcome.federation)", "next_round": "\(welcome.nextRound)"])
            case .assignment(let assignment) where assignment.hasPaillier:
                tally.add(assigned: 1)
                round = nil
                do {
                    let preparing = ContinuousClock.now
                    let contribution = try agent.contribute(assignment)
                    tally.add(training: seconds(since: preparing))
                    if let failure = agent.failure, failure.round == assignment.round {
                        tally.injected = true
                        throw ParticipantError.failureInjected
                    }
                    contributed = assignment.round
                    send(.with { $0.paillier = contribution })
                } catch let declined as Declined {
                    decline(assignment.round, declined)
                }
            case .assignment(let assignment):
                tally.add(assigned: 1)
                sentThisRound = 0
                do {
                    let preparing = ContinuousClock.now
                    var prepared = try agent.prepare(assignment)
                    tally.add(training: seconds(since: preparing))
                    let starting = ContinuousClock.now
                    let action = prepared.client.start()
                    tally.add(crypto: seconds(since: starting))
                    round = RoundState(number: assignment.round, client: prepared.client)
                    try forward(action, round: assignment.round)
                } catch let declined as Declined {
                    round = nil
                    decline(assignment.round, declined)
                }
            case .secagg(let secagg):
                guard var current = round, current.number == secagg.round else { return false }
                let handling = ContinuousClock.now
                let action = current.client.handle(encoded: Array(secagg.signed))
                tally.add(crypto: seconds(since: handling))
                round = current
                try forward(action, round: secagg.round)
            case .result(let result):
                if result.completed,
                    (round?.number == result.round && round?.client.isCompleted == true) || contributed == result.round
                {
                    tally.add(completed: 1)
                }
                contributed = nil
                agent.logger.info(
                    "round result",
                    metadata: [
                        "round": "\(result.round)", "completed": "\(result.completed)",
                        "survivors": "\(result.survivors)",
                    ])
                round = nil
            case .failure(let failure):
                agent.logger.warning(
                    "coordinator says", metadata: ["code": "\(failure.code)", "message": "\(failure.message)"])
                if failure.code == .failurePrivacyBudget { tally.privacyNotice = failure.message }
                if failure.code == .failureNotAParticipant || failure.code == .failureProtocolVersion {
                    tally.refusal = failure.message
                    throw ParticipantError.refused(failure.message)
                }
            case .finished(let finished):
                outcome.finished = finished.reason
                return true
            case .decrypt:
                break  // for the key holder only
            case nil:
                break
            }
            return false
        }

        /// Tells the coordinator that this participant will not take part in `number` (or stops
        /// taking part), why, and counts it.
        func decline(_ number: UInt64, _ declined: Declined) {
            agent.logger.warning(
                "declining a round",
                metadata: ["round": "\(number)", "code": "\(declined.code.name)", "reason": "\(declined.reason)"])
            tally.decline(declined)
            send(
                .with {
                    $0.decline = .with {
                        $0.round = number
                        $0.code = declined.code
                        $0.reason = declined.reason
                    }
                })
        }

        mutating func forward(_ action: ClientAction, round number: UInt64) throws {
            if let failure = agent.failure, failure.round == number, sentThisRound >= failure.messages {
                agent.logger.info("failure injected: going silent", metadata: ["round": "\(number)"])
                tally.injected = true
                throw ParticipantError.failureInjected
            }
            switch action {
            case .send(let message):
                sentThisRound += 1
                send(
                    .with {
                        $0.secagg = .with {
                            $0.round = number
                            $0.signed = Data(message.encoded)
                        }
                    })
            case .aborted(let abort):
                // Said, not only logged: the coordinator learns why, and closes the round without
                // waiting for a deadline.
                decline(number, Declined(.declineAborted, abort.description))
            case .ignored:
                break
            }
        }
    }
}

/// A participant's own privacy ledger, kept in a JSON file (written atomically after each
/// charge) so that a restart does not forget what was spent.
final class ParticipantLedger: @unchecked Sendable {
    private let lock = NSLock()
    private let path: String
    private var ledger: PrivacyLedger

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
            ledger = stored
        } else {
            ledger = PrivacyLedger(policy: policy)
        }
    }

    /// ε spent so far by `id`.
    func spent(_ id: String) -> Double { lock.withLock { ledger.spent(by: id) } }

    /// Throws when one more round costing `round` would take `id` past its budget.
    func admit(_ id: String, _ round: RDPAccountant) throws {
        if case .refused(let refusal) = lock.withLock({ ledger.admit(id, round: round) }) {
            throw ParticipantError.session(
                String(
                    format: "one more round would take %@ to ε = %.4g, over its own budget ε = %.4g (spent %.4g)",
                    id, refusal.wouldSpend, refusal.budget, refusal.spent))
        }
    }

    func charge(_ id: String, _ round: RDPAccountant) throws {
        let data: Data = try lock.withLock {
            ledger.charge([id], round: round)
            return try JSONEncoder().encode(ledger)
        }
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// Certificates already verified, by SHA-256 of their DER; an entry is used only while its
/// certificate is still valid.
final class VerifiedCertificates: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [[UInt8]: FederationIdentity] = [:]

    func lookup(_ digest: [UInt8]) -> FederationIdentity? {
        lock.withLock {
            guard let identity = entries[digest], Date() <= identity.notValidAfter else { return nil }
            return identity
        }
    }

    func store(_ digest: [UInt8], _ identity: FederationIdentity) {
        lock.withLock { entries[digest] = identity }
    }
}

/// Session ids seen, each at most once.
final class SessionRecord: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: Set<[UInt8]> = []

    /// True the first time `id` is inserted.
    func insert(_ id: [UInt8]) -> Bool { lock.withLock { ids.insert(id).inserted } }
}

/// DJN encryptors with their fixed-base tables, by modulus: the key stays the same for a
/// federation, and the table is the expensive part.
final class EncryptorCache: @unchecked Sendable {
    private let lock = NSLock()
    private var encryptors: [[UInt8]: DJNEncryptor] = [:]

    func encryptor(for key: PaillierPublicKey) -> DJNEncryptor {
        if let known = lock.withLock({ encryptors[key.bigEndianBytes] }) { return known }
        let encryptor = DJNEncryptor(publicKey: key, precomputeTable: true)
        lock.withLock { encryptors[key.bigEndianBytes] = encryptor }
        return encryptor
    }
}
