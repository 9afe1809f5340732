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
    private let signingKey: Ed25519.PrivateKey
    let data: Dataset
    let logger: Logger
    /// Fault injection for tests and benchmarks: in round `round`, after sending `messages`
    /// secure-sum messages, the participant goes silent and disconnects for good, as if killed.
    public var failure: (round: UInt64, messages: Int)?

    let verified = VerifiedCertificates()
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
                        privacySpent: ledger?.spent(identity.id))
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
                    let ciphertexts = try agent.encryptContribution(assignment)
                    tally.add(training: seconds(since: preparing))
                    if let failure = agent.failure, failure.round == assignment.round {
                        tally.injected = true
                        throw ParticipantError.failureInjected
                    }
                    contributed = assignment.round
                    send(
                        .with {
                            $0.paillier = .with {
                                $0.round = assignment.round; $0.ciphertexts = ciphertexts
                            }
                        })
                } catch ParticipantError.failureInjected {
                    throw ParticipantError.failureInjected
                } catch {
                    agent.logger.warning(
                        "declining a round", metadata: ["round": "\(assignment.round)", "reason": "\(error)"])
                    send(
                        .with {
                            $0.decline = .with {
                                $0.round = assignment.round; $0.reason = "\(error)"
                            }
                        })
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
                } catch ParticipantError.failureInjected {
                    throw ParticipantError.failureInjected
                } catch {
                    agent.logger.warning(
                        "declining a round", metadata: ["round": "\(assignment.round)", "reason": "\(error)"])
                    round = nil
                    send(
                        .with {
                            $0.decline = .with {
                                $0.round = assignment.round; $0.reason = "\(error)"
                            }
                        })
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
                agent.logger.info("secure sum aborted", metadata: ["round": "\(number)", "reason": "\(abort)"])
            case .ignored:
                break
            }
        }
    }

    struct PreparedRound {
        var client: SecAggClient<SystemRandom>
    }

    /// A participant certificate checked against the CA, remembered by its bytes: the same
    /// neighbours come back round after round, and verifying is the expensive part.
    func verifiedIdentity(_ der: [UInt8]) throws -> FederationIdentity {
        let digest = SHA256.hash(der)
        if let known = verified.lookup(digest) { return known }
        let identity = try FederationIdentity(der: der, ca: ca).requiring(.participant)
        verified.store(digest, identity)
        return identity
    }

    /// Checks the assignment, trains, encodes, and builds the secure-sum client.
    func prepare(_ a: Veil_V1_RoundAssignment) throws -> PreparedRound {
        let d = a.session
        let coordinator = try FederationIdentity(der: Array(d.coordinatorCertificate), ca: ca).requiring(.coordinator)
        let keys = try d.rosterSigningKeys.map { raw in
            guard let key = try? Ed25519.PublicKey(rawRepresentation: Array(raw)) else {
                throw ParticipantError.session("a roster key is not an Ed25519 public key")
            }
            return key
        }
        let position = ParticipantID(a.position)
        guard a.position >= 1, Int(a.position) <= keys.count, keys[Int(a.position) - 1] == identity.signingKey else {
            throw ParticipantError.session("the roster does not list this participant's key at position \(a.position)")
        }
        guard let adversary = ThreatModel.Adversary(rawValue: UInt8(clamping: d.adversary)) else {
            throw ParticipantError.session("unknown adversary \(d.adversary)")
        }
        let threat = try ThreatModel(
            adversary: adversary, corruptFraction: d.corruptFraction, dropoutFraction: d.dropoutFraction,
            securityBits: Int(d.securityBits))
        // SecAggParameters re-checks the threshold against the threat model: a coordinator
        // cannot hand out a threshold the participant would not accept.
        let parameters = try SecAggParameters(
            clientCount: Int(d.clientCount), threshold: Int(d.threshold), neighborCount: Int(d.neighborCount),
            bitWidth: BitWidth(Int(d.bits)), dimension: Int(d.dimension), threatModel: threat)
        let session = try SecAggSession(
            parameters: parameters, serverIdentity: coordinator.signingKey, clientIdentities: keys,
            nonce: Array(d.nonce))
        // Every neighbour's key must be bound to a distinct participant of this federation by a
        // certificate: this participant verifies messages from its neighbours only.
        let neighbors = Set(session.graph.neighbors(of: position))
        var ids: Set<String> = [identity.id]
        var covered: Set<ParticipantID> = []
        for entry in d.neighborCertificates {
            let neighbor = ParticipantID(entry.position)
            guard neighbors.contains(neighbor), !covered.contains(neighbor) else {
                throw ParticipantError.session("a certificate for position \(entry.position), not a neighbour")
            }
            let holder = try verifiedIdentity(Array(entry.certificate))
            guard holder.signingKey == keys[Int(entry.position) - 1], ids.insert(holder.id).inserted else {
                throw ParticipantError.session(
                    "the certificate at position \(entry.position) does not match the roster")
            }
            covered.insert(neighbor)
        }
        guard covered == neighbors else {
            throw ParticipantError.session("certificates missing for \(neighbors.count - covered.count) neighbours")
        }

        var distributed: (mechanism: DistributedDP, rotation: RandomizedHadamard)?
        var cost: RDPAccountant?
        if a.hasDistributedDp {
            // The participant adds the noise, so it checks the plan itself: the sum can be
            // unmasked only with at least `threshold` inputs, each carrying a noise share, and
            // the cost is what this mechanism costs, whatever the coordinator's ledger says.
            let mechanism = try ServicePrivacyPlan.mechanism(a.distributedDp)
            guard parameters.threshold >= mechanism.minimumParticipants else {
                throw ParticipantError.session(
                    "the session's threshold \(parameters.threshold) is below the \(mechanism.minimumParticipants) noise shares the plan's privacy assumes"
                )
            }
            guard parameters.bitWidth == mechanism.bitWidth, parameters.dimension == mechanism.paddedDimension else {
                throw ParticipantError.session("the session's ring or length does not fit the distributed-DP plan")
            }
            let participation = ServicePrivacyPlan.participation(mechanism)
            try ledger?.admit(identity.id, participation)
            distributed = (mechanism, try ServicePrivacyPlan.rotation(a.distributedDp))
            cost = participation
        }
        let input = try trainAndEncode(a, distributed: distributed)
        // Charged as soon as the noisy input exists, before anything of it leaves: a round that
        // fails later is over-counted, never under-counted.
        if let cost { try ledger?.charge(identity.id, cost) }
        let client = try SecAggClient(
            session: session, id: ParticipantID(a.position), identityKey: signingKey, input: input,
            generator: SystemRandom())
        return PreparedRound(client: client)
    }

    /// A Paillier round: train, encode, pack and encrypt under the round's public key.
    func encryptContribution(_ a: Veil_V1_RoundAssignment) throws -> [Data] {
        let plan = a.paillier
        let key = try PaillierPublicKey(bigEndian: Array(plan.modulus))
        let packing = try PaillierPacking(
            bitWidth: BitWidth(Int(plan.bits)), maxAddends: Int(plan.maxAddends), keyBits: key.bits)
        let input = try trainAndEncode(a)
        guard input.bitWidth == packing.bitWidth, input.count == Int(plan.dimension) else {
            throw ParticipantError.session("the payload does not fit the round's packing")
        }
        let contributor = PaillierContributor(encryptor: encryptors.encryptor(for: key), packing: packing)
        return try contributor.encrypt(input).map { Data($0.bigEndianBytes()) }
    }

    /// Local training (the FedAvg family's client rule) and the fixed-point encoding.
    /// - Parameter distributed: the round's distributed-DP mechanism and rotation, if the
    ///   participant adds the noise (`Specs/wire.md` §4.3).
    func trainAndEncode(
        _ a: Veil_V1_RoundAssignment, distributed: (mechanism: DistributedDP, rotation: RandomizedHadamard)? = nil
    ) throws -> ModularVector {
        let plan = a.training
        let model = try makeModel(plan.model, featureCount: Int(plan.features), classCount: Int(plan.classes))
        guard let global = a.model.vectors.first?.values, global.count == model.parameterCount else {
            throw ParticipantError.session("the broadcast model does not fit \(plan.model)")
        }
        guard data.featureCount == Int(plan.features) else {
            throw ParticipantError.session(
                "this participant's data has \(data.featureCount) features, the model \(plan.features)")
        }
        let algorithm = FedAvgFamily(name: plan.algorithm, initial: Array(global), proximalMu: plan.proximalMu)
        // The minibatch order's stream: the round's seed and this participant's id.
        let stream = SHA256.hash(Array(identity.id.utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var context = ClientContext(
            id: ParticipantID(a.position), data: data, model: model, epochs: Int(plan.localEpochs),
            batchSize: Int(plan.batchSize),
            optimizer: SGD(learningRate: plan.learningRate, momentum: plan.momentum, weightDecay: plan.weightDecay),
            // DP weighs every participant alike (a sample-count weight has no bound).
            weightScale: plan.dpClip > 0 || distributed != nil ? Double(max(data.count, 1)) : plan.weightScale,
            generator: Xoshiro256(seed: plan.seed, stream: stream),
            state: [:])
        var payload = algorithm.clientUpdate(a.model.vectors.map { Array($0.values) }, &context)
        if let (mechanism, rotation) = distributed {
            let clip = a.distributedDp.clip
            guard clip > 0, clip.isFinite else {
                throw ParticipantError.session("the distributed-DP clip must be positive")
            }
            let update = L2Clipping.clip(Array(payload.dropLast()), to: clip).clipped
            var rounding = SystemRandom()
            var noise = NoiseSource.system().generator(party: identity.id, round: Int(a.round))
            return try mechanism.encode(
                update, bound: clip, rotation: rotation, rounding: &rounding, noiseGenerator: &noise)
        }
        let e = a.encoding
        let codec = try FixedPointCodec(
            clip: e.clip, fractionalBits: Int(e.fractionalBits), bitWidth: BitWidth(Int(e.bits)),
            maxAddends: Int(e.maxAddends))
        if plan.dpClip > 0 {
            // Central DP (Specs/wire.md §4.2): the update, with weight 1, clipped so that after
            // rounding its norm is still within C; the weight coordinate is the coordinator's.
            let slack = ServicePrivacyPlan.slack(length: payload.count, fractionalBits: codec.fractionalBits)
            guard slack < plan.dpClip else {
                throw ParticipantError.session("the DP clip \(plan.dpClip) is below the payload's rounding slack")
            }
            payload = L2Clipping.clip(Array(payload.dropLast()), to: plan.dpClip - slack).clipped + [0]
        }
        var rounding = SystemRandom()
        return try codec.encode(payload, using: &rounding)
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
