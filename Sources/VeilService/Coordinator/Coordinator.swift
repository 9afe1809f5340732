import Foundation
import Logging
import SwiftProtobuf
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilSecAgg
import VeilWire
import X509

/// What a federation run ended with.
public struct FederationSummary: Sendable {
    public let completedRounds: Int
    public let attempts: Int
    public let finalAccuracy: Double?
    public let rounds: [RoundSummary]
    /// Why the federation ended before `rounds` completed (the participants' privacy budgets
    /// are spent, or the coordinator was stopped); nil when it ran them all.
    public var stopReason: String? = nil
    /// Whether it stopped because a round kept failing (`max_round_attempts`): a failure, not
    /// an ending.
    public var gaveUp = false
    /// The participants' own summaries, when they ran in this process (``NetworkSimulation``).
    public var participants: [ParticipantSummary] = []
}

/// One secure-aggregation round as the coordinator saw it.
public struct RoundSummary: Sendable {
    public let number: Int
    public let attempt: Int
    public let completed: Bool
    public let cohort: Int
    public let survivors: Int
    public let abortReason: String?
    public let seconds: Double
    public let bytesIn: Int
    public let bytesOut: Int
    public let accuracy: Double?
    public let loss: Double?
    /// Time spent in the secure-sum state machine (cryptography), and training plus waiting.
    public let cryptoSeconds: Double
    /// The fewest contributors the round's sum could be released over: the masking session's
    /// t, or a Paillier round's whole roster; nil when the round did not start.
    public var threshold: Int? = nil
    /// With `privacy`: the most ε any participant has spent after this round (at the configured δ).
    public var epsilon: Double? = nil
    /// With `privacy`: what the participants left out for their budget were told, and who
    /// passed the alert fraction of theirs in this round.
    public var budgetRefusals: [String] = []
    public var budgetAlerts: [String] = []
}

/// The coordinator: registration, cohort selection, each round's secure sum through the
/// sans-IO ``SecAggServer`` with a deadline per protocol round, the model update, durable
/// checkpoints, metrics. The gRPC service (``FederationService``) feeds it connections and
/// messages; everything it sends goes out through each connection's outbox.
public actor Coordinator {
    public let configuration: ServeConfiguration
    let ca: Certificate
    let identity: FederationIdentity
    private let signingKey: Ed25519.PrivateKey
    let store: CoordinatorStore
    public nonisolated let metrics: Metrics
    private let logger: Logger
    private let model: any Model
    private var algorithm: FedAvgFamily
    private var evaluation: Dataset?
    private var completedRounds = 0
    private var summaries: [RoundSummary] = []
    private var lastAccuracy: Double?

    struct Connection {
        let identity: FederationIdentity
        let outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
        var hello: Veil_V1_Hello
        let generation: Int
        /// The masking policy the participant declared: rounds are planned to meet it (the
        /// participant checks every assignment against its own copy anyway).
        var policy: SecAggPolicy? { hello.hasPolicy ? hello.policy.declared : nil }
    }

    private var connections: [String: Connection] = [:]
    /// Each holder's token bucket, by id: kept across reconnections, so that reconnecting
    /// does not refill it.
    private var buckets: [String: TokenBucket] = [:]
    private var generations = 0
    private var connectionWaiters: [CheckedContinuation<Void, Never>] = []

    private struct ActiveRound {
        let number: Int
        let attempt: Int
        /// position − 1 → participant id.
        let cohort: [String]
        let positions: [String: ParticipantID]
        /// The secure-aggregation server (masking rounds) or the Paillier aggregation (Paillier rounds).
        var server: SecAggServer?
        var paillier: PaillierRound?
        let codec: FixedPointCodec
        /// Distributed DP: the participants' mechanism and the round's rotation (the sum is
        /// their encoding, not the codec's).
        var distributed: (mechanism: DistributedDP, rotation: RandomizedHadamard)? = nil
        let started: ContinuousClock.Instant
        var protocolRound: SecAggRound?
        var deadlineGeneration = 0
        var transcript: [UInt8]
        var bytesIn = 0
        var bytesOut = 0
        var cryptoSeconds = 0.0
        /// Participants who declined the round: dropouts as soon as nobody else is awaited.
        var declined: Set<ParticipantID> = []
        /// The release floor: t, or the Paillier roster.
        var threshold: Int { server?.parameters.threshold ?? cohort.count }
        var finish: CheckedContinuation<RoundEnd, Never>?
        var ended: RoundEnd?
    }

    /// A Paillier round: collecting every member's masked ciphertexts and receipt, then
    /// waiting for the key holder.
    struct PaillierRound {
        let session: PaillierSession
        var aggregator: PaillierAggregator
        var receipts: [ParticipantID: PaillierReceipt] = [:]
        var decrypting = false
        /// The roster's certificates, in position order: the key holder checks the receipts
        /// against them.
        let rosterCertificates: [Data]
        var contributed: Set<ParticipantID> { Set(receipts.keys) }
    }

    private enum RoundEnd {
        case completed(SecureSumResult)
        case aborted(String)
    }

    private var active: ActiveRound?
    private var stopping = false
    /// Paillier: the key holder's stream and the public key it announced, signed.
    private var keyHolderConnection: Connection?
    private var paillierKey: PaillierKeyStatement?
    /// Paillier: the members who did not contribute to the last aborted attempt of a round,
    /// left out of the next attempt (a Paillier sum needs every member).
    private var absentLastAttempt: (round: Int, ids: Set<String>) = (0, [])
    /// Differential privacy: the calibrated mechanism, and what each participant has spent
    /// (kept in the store).
    private let privacy: ServicePrivacyPlan?
    private var ledger: PrivacyLedger?
    /// Participants already told that their budget keeps them out (told once per connection).
    private var toldOverBudget: Set<String> = []
    private var stopReason: String?

    /// Loads the coordinator's certificate and keys, opens the store and resumes from its
    /// last checkpoint.
    public init(configuration: ServeConfiguration, logger: Logger = Logger(label: "veil.coordinator")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        (ca, identity, signingKey) = try configuration.tls.credentials(role: .coordinator)
        store = try CoordinatorStore(path: configuration.state)
        metrics = Metrics()
        model = try makeModel(
            configuration.model, featureCount: configuration.features, classCount: configuration.classes)
        var initGenerator = Xoshiro256(seed: configuration.seed, stream: 2)
        let initial = model.initialParameters(using: &initGenerator)
        if let (round, state) = try store.latestCheckpoint() {
            guard state.parameters.count == initial.count, state.name == configuration.algorithm else {
                throw ConfigurationError(
                    "the store's checkpoint (round \(round), \(state.name), \(state.parameters.count) parameters) does not fit this configuration"
                )
            }
            algorithm = state
            completedRounds = round
            logger.info("resuming", metadata: ["completed_rounds": "\(round)"])
        } else {
            algorithm = Self.makeAlgorithm(configuration, initial: initial)
        }
        metrics.set("veil_rounds_completed", Double(completedRounds))
        if let settings = configuration.privacy {
            let plan = try ServicePrivacyPlan(
                settings, rounds: configuration.rounds, updateLength: model.parameterCount,
                minParticipants: configuration.minParticipants, cohortSize: configuration.cohortSize)
            privacy = plan
            if let stored = try store.ledger() {
                // A budget is a promise to the participants: changing it under a running
                // federation is refused rather than silently applied.
                guard stored.policy == plan.policy else {
                    throw ConfigurationError(
                        "the store's privacy ledger has budget ε = \(stored.policy.epsilon), δ = \(stored.policy.delta), alert \(stored.policy.alertFraction); this configuration says ε = \(plan.policy.epsilon), δ = \(plan.policy.delta), alert \(plan.policy.alertFraction)"
                    )
                }
                ledger = stored
            } else {
                ledger = PrivacyLedger(policy: plan.policy)
            }
        } else {
            privacy = nil
            ledger = nil
        }
        if let settings = privacy?.settings, settings.mode == .central {
            // Participants clip to C less the rounding slack; the largest cohort has the
            // coarsest precision, and the slack must leave most of C to the update.
            let codec = try Self.codec(configuration, addends: configuration.cohortSize)
            let slack = ServicePrivacyPlan.slack(length: algorithm.payloadLength, fractionalBits: codec.fractionalBits)
            guard slack < settings.clip / 2 else {
                throw ConfigurationError(
                    "privacy.clip \(settings.clip) is too small for the payload's precision (2^-\(codec.fractionalBits) per value over \(algorithm.payloadLength) values): raise payload_bits or lower payload_clip"
                )
            }
        }
        if configuration.evaluate == "digits" {
            var c = FederatedConfiguration()
            c.seed = configuration.seed
            evaluation = try FederatedSimulation(configuration: c).data.test
        }
    }

    static func makeAlgorithm(_ c: ServeConfiguration, initial: [Double]) -> FedAvgFamily {
        switch c.algorithm {
        case "fedavgm":
            FedAvgFamily(
                name: c.algorithm, initial: initial, serverOptimizer: .momentum(learningRate: 1, beta: c.serverMomentum)
            )
        case "fedprox": FedAvgFamily(name: c.algorithm, initial: initial, proximalMu: c.proximalMu)
        case "fedadagrad":
            FedAvgFamily(
                name: c.algorithm, initial: initial,
                serverOptimizer: .adagrad(learningRate: c.serverLearningRate, tau: 1e-3))
        case "fedadam":
            FedAvgFamily(
                name: c.algorithm, initial: initial,
                serverOptimizer: .adam(learningRate: c.serverLearningRate, beta1: 0.9, beta2: 0.99, tau: 1e-3))
        case "fedyogi":
            FedAvgFamily(
                name: c.algorithm, initial: initial,
                serverOptimizer: .yogi(learningRate: c.serverLearningRate, beta1: 0.9, beta2: 0.99, tau: 1e-3))
        default: FedAvgFamily(name: "fedavg", initial: initial)
        }
    }

    // MARK: - Connections

    /// Registers a participant's stream. A second stream under the same id replaces the first,
    /// which is told so and closed.
    func connect(
        identity: FederationIdentity, hello: Veil_V1_Hello, outbox: AsyncStream<Veil_V1_CoordinatorMessage>.Continuation
    ) -> Int {
        generations += 1
        if identity.role == .keyHolder {
            // The key participants will encrypt under: the key holder's own, signed by the key
            // its certificate binds (participants check the same signature).
            let announced = try? PaillierPublicKey(bigEndian: Array(hello.paillierKey.modulus))
            guard let key = announced,
                PaillierKeyStatement(publicKey: key, signature: Array(hello.paillierKey.signature))
                    .isSigned(by: identity.signingKey)
            else {
                outbox.yield(
                    .failure(.failureMalformed, "the key holder's Hello must carry its Paillier key, signed by its certified key"))
                outbox.finish()
                return generations
            }
            keyHolderConnection?.outbox.yield(
                .failure(.failureDuplicateConnection, "a newer connection of the key holder replaced this one"))
            keyHolderConnection?.outbox.finish()
            paillierKey = PaillierKeyStatement(publicKey: key, signature: Array(hello.paillierKey.signature))
            keyHolderConnection = Connection(identity: identity, outbox: outbox, hello: hello, generation: generations)
            outbox.yield(
                .with {
                    $0.welcome = .with {
                        $0.participantID = identity.id
                        $0.federation = configuration.federation
                        $0.nextRound = UInt64(completedRounds + 1)
                    }
                })
            logger.info(
                "key holder connected",
                metadata: ["id": "\(identity.id)", "fingerprint": "\(PaillierKeyStatement.fingerprint(key))"])
            if stopping { outbox.yield(.with { $0.finished = finished() }); outbox.finish() }
            wakeConnectionWaiters()
            return generations
        }
        if let old = connections[identity.id] {
            old.outbox.yield(
                .failure(.failureDuplicateConnection, "a newer connection under the same id replaced this one"))
            old.outbox.finish()
        }
        connections[identity.id] = Connection(identity: identity, outbox: outbox, hello: hello, generation: generations)
        toldOverBudget.remove(identity.id)  // a new stream is told again
        let r = hello.resources
        try? store.recordParticipant(
            id: identity.id, cores: Int(r.cores), memoryBytes: r.memoryBytes, battery: r.battery,
            linkBitsPerSecond: r.linkBitsPerSecond, sampleCount: hello.sampleCount)
        metrics.increment("veil_participants_registered_total")
        metrics.set("veil_participants_connected", Double(connections.count))
        var welcome = Veil_V1_Welcome()
        welcome.participantID = identity.id
        welcome.federation = configuration.federation
        welcome.nextRound = UInt64(completedRounds + 1)
        outbox.yield(.with { $0.welcome = welcome })
        logger.info("participant connected", metadata: ["id": "\(identity.id)", "connected": "\(connections.count)"])
        if stopping { outbox.yield(.with { $0.finished = finished() }); outbox.finish() }
        wakeConnectionWaiters()
        return generations
    }

    /// A participant's stream ended.
    func disconnect(id: String, generation: Int) {
        if let holder = keyHolderConnection, holder.identity.id == id, holder.generation == generation {
            keyHolderConnection = nil
            paillierKey = nil
            holder.outbox.finish()
            logger.info("key holder disconnected", metadata: ["id": "\(id)"])
            return
        }
        guard let connection = connections[id], connection.generation == generation else { return }
        connections[id] = nil
        connection.outbox.finish()
        metrics.set("veil_participants_connected", Double(connections.count))
        logger.info("participant disconnected", metadata: ["id": "\(id)"])
        closeRoundIfOnlyAbsenteesRemain()
    }

    /// Closes the current protocol round early when everyone it still waits for has
    /// disconnected or declined: waiting for the deadline would change nothing.
    private func closeRoundIfOnlyAbsenteesRemain() {
        guard var round = active, round.ended == nil else { return }
        guard var server = round.server else {
            if let paillier = round.paillier, !paillier.decrypting {
                let waiting = Set(round.positions.values).subtracting(paillier.contributed)
                let absent = waiting.allSatisfy {
                    round.declined.contains($0) || connections[round.cohort[Int($0.rawValue) - 1]] == nil
                }
                if absent { closePaillierCollection() }
            }
            return
        }
        let waiting = Set(server.expected).subtracting(server.responded)
        let absent = waiting.allSatisfy {
            round.declined.contains($0) || connections[round.cohort[Int($0.rawValue) - 1]] == nil
        }
        guard !waiting.isEmpty, absent else { return }
        closeProtocolRound(&round, server: &server)
    }

    /// Closes the current protocol round of a masking round (its laggards become dropouts).
    private func closeProtocolRound(_ round: inout ActiveRound, server: inout SecAggServer) {
        let start = ContinuousClock.now
        let actions = server.closeRound()
        round.server = server
        round.cryptoSeconds += seconds(since: start)
        active = round
        apply(actions)
    }

    /// Takes a token from `id`'s bucket, before its message is even decoded; false (and the
    /// sender told, the refusal counted) when there is none. The bucket outlives the stream.
    func admitMessage(from id: String, generation: Int) -> Bool {
        var bucket =
            buckets[id] ?? TokenBucket(rate: configuration.messagesPerSecond, burst: configuration.messageBurst)
        defer { buckets[id] = bucket }
        guard bucket.take() else {
            metrics.increment("veil_refused_messages_total", labels: ["reason": "rate_limited"])
            let connection = connections[id] ?? keyHolderConnection.flatMap { $0.identity.id == id ? $0 : nil }
            if let connection, connection.generation == generation {
                connection.outbox.yield(
                    .failure(.failureRateLimited, "more than \(configuration.messagesPerSecond) messages a second"))
            }
            return false
        }
        return true
    }

    /// A message on a participant's stream (already admitted by ``admitMessage(from:generation:)``).
    func receive(_ message: Veil_V1_ParticipantMessage, from id: String, generation: Int) {
        if let holder = keyHolderConnection, holder.identity.id == id, holder.generation == generation {
            if case .decrypted(let result) = message.kind { receiveDecryption(result) }
            return
        }
        guard let connection = connections[id], connection.generation == generation else { return }
        switch message.kind {
        case .secagg(let secagg):
            guard var round = active, round.ended == nil, UInt64(round.number) == secagg.round,
                let position = round.positions[id], var server = round.server
            else {
                metrics.increment("veil_refused_messages_total", labels: ["reason": "out_of_round"])
                return
            }
            round.bytesIn += secagg.signed.count
            round.transcript = SHA256.hash(round.transcript, Array(secagg.signed))
            metrics.increment("veil_bytes_received_total", by: Double(secagg.signed.count))
            let start = ContinuousClock.now
            let actions = server.receive(encoded: Array(secagg.signed), from: position)
            round.server = server
            round.cryptoSeconds += seconds(since: start)
            active = round
            apply(actions)
            closeRoundIfOnlyAbsenteesRemain()
        case .decline(let decline):
            // The reason is the participant's text: bounded and on one line before it is logged.
            metrics.increment("veil_declines_total", labels: ["code": decline.code.name])
            logger.info(
                "participant declined",
                metadata: ["id": "\(id)", "code": "\(decline.code.name)", "reason": "\(loggable(decline.reason))"])
            if var round = active, round.ended == nil, UInt64(round.number) == decline.round,
                let position = round.positions[id]
            {
                round.declined.insert(position)
                active = round
                closeRoundIfOnlyAbsenteesRemain()
            }
        case .paillier(let contribution):
            receiveContribution(contribution, from: id)
        case .decrypted:
            metrics.increment("veil_refused_messages_total", labels: ["reason": "malformed"])
            connection.outbox.yield(.failure(.failureMalformed, "only the key holder decrypts"))
        case .hello:
            metrics.increment("veil_refused_messages_total", labels: ["reason": "malformed"])
            connection.outbox.yield(.failure(.failureMalformed, "Hello is only the first message"))
        case nil:
            metrics.increment("veil_refused_messages_total", labels: ["reason": "malformed"])
            connection.outbox.yield(.failure(.failureMalformed, "an empty message"))
        }
    }

    /// Carries out the secure-sum server's actions.
    private func apply(_ actions: [ServerAction]) {
        guard var round = active else { return }
        for action in actions {
            switch action {
            case .send(let message):
                let encoded = message.encoded
                round.bytesOut += encoded.count
                round.transcript = SHA256.hash(round.transcript, encoded)
                metrics.increment("veil_bytes_sent_total", by: Double(encoded.count))
                let id = round.cohort[Int(message.recipient) - 1]
                var secagg = Veil_V1_SecAggMessage()
                secagg.round = UInt64(round.number)
                secagg.signed = Data(encoded)
                connections[id]?.outbox.yield(.with { $0.secagg = secagg })
            case .dropped(let position, let reason):
                let id = round.cohort[Int(position.rawValue) - 1]
                let protocolRound = round.protocolRound?.description ?? "none"
                metrics.increment(
                    "veil_dropouts_total", labels: ["protocol_round": protocolRound, "reason": reason.code])
                logger.info(
                    "participant dropped",
                    metadata: ["id": "\(id)", "round": "\(round.number)", "reason": "\(reason.code)"])
                if case .noResponse = reason {
                } else {
                    connections[id]?.outbox.yield(
                        .failure(.failureDropped, "dropped from round \(round.number): \(reason)"))
                }
            case .completed(let result):
                round.ended = .completed(result)
            case .aborted(let abort):
                round.ended = .aborted("\(abort)")
            }
        }
        // A new protocol round starts its deadline.
        if round.ended == nil, let server = round.server, server.round != round.protocolRound {
            round.protocolRound = server.round
            round.deadlineGeneration += 1
            scheduleDeadline(
                round: round.number, generation: round.deadlineGeneration, protocolRound: round.protocolRound)
        }
        if let ended = round.ended, let finish = round.finish {
            round.finish = nil
            finish.resume(returning: ended)
        }
        active = round
    }

    private func scheduleDeadline(round number: Int, generation: Int, protocolRound: SecAggRound?) {
        let seconds =
            protocolRound == .advertiseKeys ? configuration.trainingDeadlineSeconds : configuration.roundDeadlineSeconds
        Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            await self?.deadlineExpired(round: number, generation: generation)
        }
    }

    private func deadlineExpired(round number: Int, generation: Int) {
        guard var round = active, round.number == number, round.deadlineGeneration == generation, round.ended == nil
        else { return }
        logger.info(
            "protocol round deadline",
            metadata: ["round": "\(number)", "protocol_round": "\(round.protocolRound?.description ?? "-")"])
        guard var server = round.server else {
            // Paillier: stop collecting, or give up on the key holder.
            if round.paillier?.decrypting == true {
                finishRound(.aborted("the key holder did not answer before the deadline"))
            } else {
                closePaillierCollection()
            }
            return
        }
        closeProtocolRound(&round, server: &server)
    }

    private func wakeConnectionWaiters() {
        let waiters = connectionWaiters
        connectionWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until at least `count` participants are connected, or the timeout passes.
    /// Whether rounds can be planned for this participant: not when it declared that it needs a
    /// distributed-DP plan to cost a round (`requires_privacy_plan`, a budget of its own) and
    /// this coordinator has none — it would decline every round.
    private func isPlannable(_ connection: Connection) -> Bool {
        privacy?.distributed != nil || !connection.hello.policy.requiresPrivacyPlan
    }

    private func waitForParticipants(_ count: Int, timeout: Double) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        // A Paillier round cannot start without the key holder.
        while connections.values.count(where: isPlannable) < count
            || (configuration.secureSum == "paillier" && keyHolderConnection == nil)
        {
            if ContinuousClock.now >= deadline || stopping { return false }
            Task { [weak self] in
                try? await Task.sleep(for: .milliseconds(500))
                await self?.wakeConnectionWaiters()
            }
            await withCheckedContinuation { connectionWaiters.append($0) }
        }
        return true
    }

    // MARK: - The federation

    /// Runs rounds until `configuration.rounds` have completed (counting those already in the
    /// store), then tells everyone the federation is finished.
    public func run(progress: @escaping @Sendable (RoundSummary) -> Void = { _ in }) async throws -> FederationSummary {
        var attempts = 0
        var abortedInARow = 0
        var gaveUp = false
        while completedRounds < configuration.rounds {
            guard
                await waitForParticipants(
                    configuration.minParticipants, timeout: configuration.registrationTimeoutSeconds)
            else {
                if stopping { break }
                let holder =
                    configuration.secureSum == "paillier" && keyHolderConnection == nil
                    ? " (and the key holder is not connected)" : ""
                let plannable = connections.values.count(where: isPlannable)
                let unplanned =
                    plannable < connections.count
                    ? " (\(connections.count - plannable) more declare a privacy budget, which needs a distributed-DP plan this coordinator does not run)"
                    : ""
                throw ConfigurationError(
                    "only \(plannable) of the \(configuration.minParticipants) participants needed connected within \(configuration.registrationTimeoutSeconds) s\(unplanned)\(holder)"
                )
            }
            guard let summary = try await runRound(completedRounds + 1) else { break }
            attempts += 1
            summaries.append(summary)
            progress(summary)
            if stopping { break }
            abortedInARow = summary.completed ? 0 : abortedInARow + 1
            if abortedInARow >= configuration.maxRoundAttempts {
                stopReason =
                    "round \(summary.number) was aborted \(abortedInARow) times in a row; the last time: \(summary.abortReason ?? "-")"
                logger.error("giving up", metadata: ["reason": "\(stopReason!)"])
                gaveUp = true
                break
            }
        }
        stopping = true
        for connection in connections.values + (keyHolderConnection.map { [$0] } ?? []) {
            connection.outbox.yield(.with { $0.finished = finished() })
            connection.outbox.finish()
        }
        if stopReason == nil && completedRounds < configuration.rounds { stopReason = "the coordinator was stopped" }
        return FederationSummary(
            completedRounds: completedRounds, attempts: attempts, finalAccuracy: lastAccuracy, rounds: summaries,
            stopReason: stopReason, gaveUp: gaveUp)
    }

    /// Stops after the current round.
    public func stop() {
        stopping = true
        wakeConnectionWaiters()
    }

    private func finished() -> Veil_V1_Finished {
        var f = Veil_V1_Finished()
        f.rounds = UInt64(completedRounds)
        f.reason =
            completedRounds >= configuration.rounds
            ? "all rounds completed" : stopReason ?? "the coordinator is stopping"
        return f
    }

    /// Runs one attempt at round `number`; nil when the privacy budgets leave too few
    /// participants to run it (`stopReason` says so).
    private func runRound(_ number: Int) async throws -> RoundSummary? {
        let c = configuration
        var selection = Xoshiro256(seed: c.seed, stream: UInt64(10_000_000 + number))
        let completed = (try? store.roundsCompleted()) ?? [:]
        var candidates = connections.values.filter(isPlannable).map {
            CohortSelection.Candidate(
                id: $0.identity.id, resources: $0.hello.resources, roundsCompleted: completed[$0.identity.id] ?? 0)
        }
        let budgets = admitWithinBudget(&candidates)
        // A Paillier attempt fails unless every member contributes: the next attempt of the same
        // round leaves out those who did not, while enough others remain.
        if absentLastAttempt.round == number {
            let present = candidates.filter { !absentLastAttempt.ids.contains($0.id) }
            if present.count >= c.minParticipants { candidates = present }
        }
        guard candidates.count >= c.minParticipants else {
            stopReason =
                "the privacy budgets are spent: \(candidates.count) of the \(connections.count) connected participants may contribute another round, \(c.minParticipants) are needed"
            logger.warning("stopping", metadata: ["reason": "\(stopReason!)"])
            return nil
        }
        let cohort = CohortSelection.select(
            candidates, count: c.cohortSize, strategy: c.selection, generator: &selection)
        let alerts = budgetAlerts(cohort)
        let started = ContinuousClock.now
        let attempt = try store.beginRound(number, cohort: cohort.count)
        metrics.set("veil_round_cohort", Double(cohort.count))

        func end(
            _ completed: Bool, survivors: Int, reason: String?, accuracy: Double?, round: ActiveRound?,
            loss: Double? = nil
        ) -> RoundSummary {
            let elapsed = seconds(since: started)
            metrics.increment("veil_rounds_total", labels: ["outcome": completed ? "completed" : "aborted"])
            metrics.set("veil_round_seconds", elapsed)
            metrics.increment("veil_round_seconds_total", by: elapsed)
            metrics.set("veil_round_survivors", Double(survivors))
            if let reason { metrics.increment("veil_aborts_total", labels: ["reason": String(reason.prefix(80))]) }
            let epsilon = ledger.map { ledger in ledger.balances.map(\.epsilon).max() ?? 0 }
            if let epsilon { metrics.set("veil_privacy_epsilon_max", epsilon) }
            return RoundSummary(
                number: number, attempt: attempt, completed: completed, cohort: cohort.count, survivors: survivors,
                abortReason: reason, seconds: elapsed, bytesIn: round?.bytesIn ?? 0, bytesOut: round?.bytesOut ?? 0,
                accuracy: accuracy, loss: loss, cryptoSeconds: round?.cryptoSeconds ?? 0, threshold: round?.threshold,
                epsilon: epsilon,
                budgetRefusals: budgets, budgetAlerts: alerts)
        }

        do {
            if configuration.secureSum == "paillier" {
                try startPaillierRound(number: number, attempt: attempt, cohort: cohort, started: started)
            } else {
                try startSecAggRound(number: number, attempt: attempt, cohort: cohort, started: started)
            }
        } catch {
            let reason = "the round could not start with \(cohort.count) participants: \(error)"
            try store.finishRound(
                number, attempt: attempt,
                record: .init(
                    outcome: "aborted", survivors: 0, abortReason: reason, transcriptHash: [], bytesIn: 0, bytesOut: 0,
                    contributors: []),
                checkpoint: nil, accuracy: nil, ledger: nil)
            logger.warning("round aborted", metadata: ["round": "\(number)", "reason": "\(reason)"])
            try? await Task.sleep(for: .seconds(1))
            return end(false, survivors: 0, reason: reason, accuracy: nil, round: nil)
        }

        let outcome: RoundEnd = await withCheckedContinuation { continuation in
            if let ended = active?.ended {
                continuation.resume(returning: ended)
            } else {
                active?.finish = continuation
            }
        }
        let round = active!
        active = nil
        let transcriptHash = round.transcript

        switch outcome {
        case .completed(let result):
            let contributors = result.survivors.map { round.cohort[Int($0.rawValue) - 1] }
            var sum: [Double]
            if let (mechanism, rotation) = round.distributed {
                // The sum already carries every contributor's noise share; the fixed denominator
                // as in the central mode.
                let decoded = try mechanism.decode(result.sum, bound: privacy!.settings.clip, rotation: rotation)
                sum = Array(decoded.prefix(mechanism.dimension)) + [Double(cohort.count)]
            } else {
                sum = try round.codec.decode(result.sum)
                if let privacy {
                    // The only release of this round's sum is the noisy one.
                    sum = privacy.release(sum: sum, cohort: cohort.count, round: number)
                }
            }
            if let privacy { ledger?.charge(contributors, round: privacy.participation) }
            algorithm.serverUpdate(sum: sum, contributors: result.survivors.count)
            let evaluated = evaluation.map { algorithm.evaluate(model: model, on: $0) }
            let accuracy = evaluated?.accuracy
            lastAccuracy = accuracy ?? lastAccuracy
            try store.finishRound(
                number, attempt: attempt,
                record: .init(
                    outcome: "completed", survivors: result.survivors.count, abortReason: nil,
                    transcriptHash: transcriptHash, bytesIn: round.bytesIn, bytesOut: round.bytesOut,
                    contributors: contributors),
                checkpoint: algorithm, accuracy: accuracy, ledger: ledger)
            completedRounds = number
            metrics.set("veil_rounds_completed", Double(completedRounds))
            if let accuracy { metrics.set("veil_model_accuracy", accuracy) }
            broadcastResult(
                round, completed: true, survivors: result.survivors.count, reason: nil, hash: transcriptHash)
            logger.info(
                "round completed",
                metadata: [
                    "round": "\(number)", "survivors": "\(result.survivors.count)/\(cohort.count)",
                    "accuracy": "\(accuracy.map { String(format: "%.4f", $0) } ?? "-")",
                ])
            return end(
                true, survivors: result.survivors.count, reason: nil, accuracy: accuracy, round: round,
                loss: evaluated?.loss)
        case .aborted(let reason):
            try store.finishRound(
                number, attempt: attempt,
                record: .init(
                    outcome: "aborted", survivors: 0, abortReason: reason, transcriptHash: transcriptHash,
                    bytesIn: round.bytesIn, bytesOut: round.bytesOut, contributors: []),
                checkpoint: nil, accuracy: nil, ledger: nil)
            broadcastResult(round, completed: false, survivors: 0, reason: reason, hash: transcriptHash)
            logger.warning("round aborted", metadata: ["round": "\(number)", "reason": "\(reason)"])
            return end(false, survivors: 0, reason: reason, accuracy: nil, round: round)
        }
    }

    /// The session's parameters for a cohort of n: the coordinator's recommendation (its own
    /// threat model), raised until every member's declared policy is met — the complete graph
    /// when a member requires the malicious model, t the largest threshold any member, the
    /// coordinator or the distributed-DP noise floor requires. (A sparse graph caps t at k + 1:
    /// a sum needs t responders among one participant's neighbours.) Members whose smallest
    /// cohort exceeds n are not planned for; they will decline.
    /// - Throws: ``ConfigurationError`` when no threshold meets them all.
    static func sessionParameters(
        clientCount n: Int, bitWidth: BitWidth, dimension: Int, threatModel: ThreatModel, policies: [SecAggPolicy],
        noiseShares: Int?
    ) throws -> SecAggParameters {
        if let noiseShares, noiseShares > n {
            throw ConfigurationError("privacy.min_contributors \(noiseShares) exceeds the cohort of \(n)")
        }
        let recommended = try SecAggParameters.recommended(
            clientCount: n, bitWidth: bitWidth, dimension: dimension, threatModel: threatModel)
        let planned = policies.filter { n >= $0.minimumCohort }
        func requirement(_ k: Int) -> Int? {
            guard var t = SecAggParameters.minimumThreshold(clientCount: n, neighborCount: k, threatModel: threatModel)
            else { return nil }
            for policy in planned {
                guard let required = policy.requiredThreshold(clientCount: n, neighborCount: k) else { return nil }
                t = max(t, required)
            }
            t = max(t, noiseShares ?? 0)
            return t <= k + 1 ? t : nil
        }
        var k = recommended.neighborCount
        var t = requirement(k)
        if t == nil && k < n - 1 {
            k = n - 1
            t = requirement(k)
        }
        guard let t else {
            throw ConfigurationError(
                "no threshold for \(n) participants meets the coordinator's threat model, every member's declared policy and the noise floor \(noiseShares ?? 0)"
            )
        }
        return try SecAggParameters(
            clientCount: n, threshold: t, neighborCount: k, bitWidth: bitWidth, dimension: dimension,
            threatModel: threatModel)
    }

    /// Sets up a masking round: parameters for the cohort, the session from the roster's
    /// certificates, the assignments; the first deadline starts.
    private func startSecAggRound(
        number: Int, attempt: Int, cohort: [String], started: ContinuousClock.Instant
    ) throws {
        let c = configuration
        // The session: parameters for this cohort, the roster from the certificates.
        let payloadLength = algorithm.payloadLength
        let parameters: SecAggParameters
        let session: SecAggSession
        let codec: FixedPointCodec
        let threat = try ThreatModel(
            adversary: c.threatModel == "malicious" ? .maliciousServer : .honestButCuriousServer,
            corruptFraction: c.corruptFraction, dropoutFraction: c.dropoutFraction, securityBits: c.securityBits)
        let distributed = privacy?.distributed
        parameters = try Self.sessionParameters(
            clientCount: cohort.count, bitWidth: BitWidth(distributed?.bitWidth.bits ?? c.payloadBits),
            dimension: distributed?.paddedDimension ?? payloadLength, threatModel: threat,
            policies: cohort.compactMap { connections[$0]!.policy }, noiseShares: distributed?.minimumParticipants)
        codec = try Self.codec(c, addends: cohort.count)
        let plan = trainingPlan(number)
        let encoding = payloadEncoding(codec)
        let broadcast = broadcastModel()
        let dpPlan = distributed.map { privacy!.plan($0) }
        session = try SecAggSession(
            parameters: parameters, serverIdentity: signingKey.publicKey,
            clientIdentities: cohort.map { connections[$0]!.identity.signingKey },
            nonce: SecureBytes.random(count: 32).unsafeExposedBytes(),
            context: RoundPlanDigest.of(model: broadcast, training: plan, encoding: encoding, distributedDP: dpPlan))

        var description = Veil_V1_SecAggSessionDescription()
        description.clientCount = UInt32(parameters.clientCount)
        description.threshold = UInt32(parameters.threshold)
        description.neighborCount = UInt32(parameters.neighborCount)
        description.bits = UInt32(parameters.bitWidth.bits)
        description.dimension = UInt32(parameters.dimension)
        description.adversary = UInt32(parameters.threatModel.adversary.rawValue)
        description.corruptFraction = parameters.threatModel.corruptFraction
        description.dropoutFraction = parameters.threatModel.dropoutFraction
        description.securityBits = UInt32(parameters.threatModel.securityBits)
        description.nonce = Data(session.nonce)
        description.coordinatorCertificate = Data(identity.certificateDER)
        description.rosterSigningKeys = cohort.map { Data(connections[$0]!.identity.signingKey.rawRepresentation) }
        let certificates = cohort.map { Data(connections[$0]!.identity.certificateDER) }

        var positions: [String: ParticipantID] = [:]
        for (i, id) in cohort.enumerated() { positions[id] = ParticipantID(UInt32(i + 1)) }
        active = ActiveRound(
            number: number, attempt: attempt, cohort: cohort, positions: positions,
            server: try SecAggServer(session: session, identityKey: signingKey), codec: codec,
            distributed: try dpPlan.map { (distributed!, try ServicePrivacyPlan.rotation($0)) }, started: started,
            transcript: session.id)
        logger.info(
            "round started",
            metadata: [
                "round": "\(number)", "attempt": "\(attempt)", "cohort": "\(cohort.count)",
                "parameters": "\(parameters)",
            ])
        for (id, position) in positions {
            var assignment = Veil_V1_RoundAssignment()
            assignment.round = UInt64(number)
            assignment.session = description
            assignment.session.neighborCertificates = session.graph.neighbors(of: position).map { neighbor in
                Veil_V1_PositionedCertificate.with {
                    $0.position = neighbor.rawValue
                    $0.certificate = certificates[Int(neighbor.rawValue) - 1]
                }
            }
            assignment.position = position.rawValue
            assignment.model = broadcast
            assignment.training = plan
            assignment.encoding = encoding
            if let dpPlan { assignment.distributedDp = dpPlan }
            assignment.roundDeadlineMillis = UInt32(c.roundDeadlineSeconds * 1000)
            connections[id]?.outbox.yield(.with { $0.assignment = assignment })
        }
        // The first protocol round's deadline (training happens before it).
        apply([])
    }

    // MARK: - Paillier rounds

    /// Sets up a masked Paillier session (`Specs/paillier.md` §6.1): the key the key holder
    /// announced, the packing (K = the cohort size bound), a fresh nonce, the roster's
    /// certificates; the collection deadline starts.
    private func startPaillierRound(number: Int, attempt: Int, cohort: [String], started: ContinuousClock.Instant)
        throws
    {
        let c = configuration
        guard let holder = keyHolderConnection, let statement = paillierKey else {
            throw ConfigurationError("the key holder \(c.keyHolder) is not connected")
        }
        let key = statement.publicKey
        let codec = try Self.codec(c, addends: cohort.count)
        let packing = try PaillierPacking(
            bitWidth: BitWidth(c.payloadBits), maxAddends: c.cohortSize, keyBits: key.bits)
        let dimension = algorithm.payloadLength
        let members = cohort.map { connections[$0]!.identity }
        let nonce = SecureBytes.random(count: 32).unsafeExposedBytes()
        let broadcast = broadcastModel()
        let training = trainingPlan(number)
        let encoding = payloadEncoding(codec)
        let planDigest = RoundPlanDigest.of(model: broadcast, training: training, encoding: encoding, distributedDP: nil)
        let session = try PaillierSession(
            publicKey: key, packing: packing, dimension: dimension, round: UInt64(number), nonce: nonce,
            keyHolder: holder.identity.signingKey, coordinator: signingKey.publicKey, roster: members.map(\.signingKey),
            context: planDigest)
        var positions: [String: ParticipantID] = [:]
        for (i, id) in cohort.enumerated() { positions[id] = ParticipantID(UInt32(i + 1)) }
        let rosterCertificates = members.map { Data($0.certificateDER) }
        var plan = Veil_V1_PaillierPlan()
        plan.modulus = Data(key.bigEndianBytes)
        plan.bits = UInt32(c.payloadBits)
        plan.maxAddends = UInt32(c.cohortSize)
        plan.dimension = UInt32(dimension)
        plan.keySignature = Data(statement.signature)
        plan.keyHolderCertificate = Data(holder.identity.certificateDER)
        plan.nonce = Data(nonce)
        plan.coordinatorCertificate = Data(identity.certificateDER)
        plan.rosterCertificates = rosterCertificates
        plan.coordinatorSignature = Data(signingKey.signature(for: session.announcement))
        var round = ActiveRound(
            number: number, attempt: attempt, cohort: cohort, positions: positions, server: nil,
            paillier: PaillierRound(
                session: session,
                aggregator: PaillierAggregator(publicKey: key, packing: packing, dimension: dimension),
                rosterCertificates: rosterCertificates),
            codec: codec, started: started, transcript: session.id)
        logger.info(
            "round started",
            metadata: ["round": "\(number)", "attempt": "\(attempt)", "cohort": "\(cohort.count)", "sum": "paillier"])
        for (id, position) in positions {
            var assignment = Veil_V1_RoundAssignment()
            assignment.round = UInt64(number)
            assignment.paillier = plan
            assignment.position = position.rawValue
            assignment.model = broadcast
            assignment.training = training
            assignment.encoding = encoding
            assignment.roundDeadlineMillis = UInt32(c.roundDeadlineSeconds * 1000)
            connections[id]?.outbox.yield(.with { $0.assignment = assignment })
        }
        round.deadlineGeneration = 1
        active = round
        scheduleDeadline(round: number, generation: 1, protocolRound: .advertiseKeys)
    }

    /// A member's ciphertexts and receipt: checked and added to the aggregate, or — malformed,
    /// or a receipt that is not the member's — its sender dropped.
    private func receiveContribution(_ contribution: Veil_V1_PaillierContribution, from id: String) {
        guard var round = active, round.ended == nil, var paillier = round.paillier, !paillier.decrypting,
            UInt64(round.number) == contribution.round, let position = round.positions[id],
            !paillier.contributed.contains(position), !round.declined.contains(position)
        else {
            metrics.increment("veil_refused_messages_total", labels: ["reason": "out_of_round"])
            return
        }
        let bytes = contribution.ciphertexts.reduce(0) { $0 + $1.count }
        round.bytesIn += bytes
        metrics.increment("veil_bytes_received_total", by: Double(bytes))
        let start = ContinuousClock.now
        do {
            let key = paillier.aggregator.publicKey
            let ciphertexts = try contribution.ciphertexts.map { try key.ciphertext(bigEndian: Array($0)) }
            let receipt = PaillierReceipt(
                position: position, ciphertextDigest: PaillierReceipt.digest(ciphertexts),
                signature: Array(contribution.receiptSignature))
            guard receipt.isValid(in: paillier.session) else {
                throw PaillierSessionError.invalidReceipt(position: position.rawValue)
            }
            try paillier.aggregator.add(ciphertexts, from: position)
            paillier.receipts[position] = receipt
            for c in contribution.ciphertexts { round.transcript = SHA256.hash(round.transcript, Array(c)) }
        } catch {
            round.declined.insert(position)
            metrics.increment("veil_dropouts_total", labels: ["protocol_round": "paillier", "reason": "malformed"])
            connections[id]?.outbox.yield(.failure(.failureDropped, "dropped from round \(round.number): \(error)"))
        }
        round.cryptoSeconds += seconds(since: start)
        round.paillier = paillier
        active = round
        closeRoundIfOnlyAbsenteesRemain()
    }

    /// Collection is over (everyone answered, or the deadline). The masks cancel only over the
    /// whole roster, so the aggregate goes to the key holder only when every member
    /// contributed; otherwise the attempt ends, and the next one leaves the absent out.
    private func closePaillierCollection() {
        guard let round = active, round.ended == nil, let paillier = round.paillier, !paillier.decrypting else {
            return
        }
        let missing = round.cohort.filter { !paillier.contributed.contains(round.positions[$0]!) }
        guard missing.isEmpty else {
            absentLastAttempt = (round.number, Set(missing))
            return finishRound(
                .aborted(
                    "\(missing.count) of \(round.cohort.count) members did not contribute (\(missing.sorted().joined(separator: ", "))): a Paillier round needs the whole roster, whose masks cancel only together"
                ))
        }
        requestDecryption()
    }

    /// The rerandomised aggregate goes to the key holder with the session and every receipt.
    private func requestDecryption() {
        guard var round = active, round.ended == nil, var paillier = round.paillier, !paillier.decrypting else {
            return
        }
        guard let holder = keyHolderConnection else { return finishRound(.aborted("the key holder is not connected")) }
        let start = ContinuousClock.now
        let aggregate: EncryptedAggregate
        do { aggregate = try paillier.aggregator.aggregate() } catch { return finishRound(.aborted("\(error)")) }
        round.cryptoSeconds += seconds(since: start)
        paillier.decrypting = true
        let session = paillier.session
        var request = Veil_V1_DecryptRequest()
        request.round = UInt64(round.number)
        request.ciphertexts = aggregate.ciphertexts.map { Data($0.bigEndianBytes()) }
        request.dimension = UInt32(aggregate.dimension)
        request.bits = UInt32(session.packing.bitWidth.bits)
        request.maxAddends = UInt32(session.packing.maxAddends)
        request.nonce = Data(session.nonce)
        request.coordinatorCertificate = Data(identity.certificateDER)
        request.rosterCertificates = paillier.rosterCertificates
        request.planDigest = Data(session.context)
        request.coordinatorSignature = Data(signingKey.signature(for: session.decryptionRequest(aggregate.ciphertexts)))
        request.receipts = paillier.receipts.keys.sorted().map { position in
            let receipt = paillier.receipts[position]!
            return .with {
                $0.position = position.rawValue
                $0.ciphertextDigest = Data(receipt.ciphertextDigest)
                $0.signature = Data(receipt.signature)
            }
        }
        let bytes = request.ciphertexts.reduce(0) { $0 + $1.count }
        round.bytesOut += bytes
        metrics.increment("veil_bytes_sent_total", by: Double(bytes))
        for c in request.ciphertexts { round.transcript = SHA256.hash(round.transcript, Array(c)) }
        holder.outbox.yield(.with { $0.decrypt = request })
        round.paillier = paillier
        round.deadlineGeneration += 1
        active = round
        scheduleDeadline(round: round.number, generation: round.deadlineGeneration, protocolRound: nil)
    }

    /// The key holder's answer.
    private func receiveDecryption(_ result: Veil_V1_DecryptResult) {
        guard let round = active, round.ended == nil, let paillier = round.paillier, paillier.decrypting,
            UInt64(round.number) == result.round
        else { return }
        guard result.refusal.isEmpty else {
            return finishRound(.aborted("the key holder refused: \(loggable(result.refusal))"))
        }
        do {
            let sum = try ModularVector(elements: result.sum, bitWidth: paillier.aggregator.packing.bitWidth)
            guard sum.count == paillier.aggregator.dimension else {
                return finishRound(
                    .aborted("the key holder returned \(sum.count) values, not \(paillier.aggregator.dimension)"))
            }
            finishRound(.completed(SecureSumResult(sum: sum, survivors: Array(paillier.contributed).sorted())))
        } catch {
            finishRound(.aborted("the key holder's sum is malformed: \(error)"))
        }
    }

    private func finishRound(_ end: RoundEnd) {
        guard var round = active, round.ended == nil else { return }
        round.ended = end
        let finish = round.finish
        round.finish = nil
        active = round
        finish?.resume(returning: end)
    }

    // MARK: - Privacy budgets

    /// Removes from `candidates` those whose budget one more round would exceed, telling each
    /// (once per connection) why; returns what they were told.
    private func admitWithinBudget(_ candidates: inout [CohortSelection.Candidate]) -> [String] {
        guard let ledger, let privacy else { return [] }
        var refusals: [String] = []
        candidates.removeAll { candidate in
            guard case .refused(let refusal) = ledger.admit(candidate.id, round: privacy.participation) else {
                return false
            }
            refusals.append(refusal.description)
            if let connection = connections[candidate.id], !toldOverBudget.contains(candidate.id) {
                toldOverBudget.insert(candidate.id)
                connection.outbox.yield(.failure(.failurePrivacyBudget, refusal.description))
                metrics.increment("veil_privacy_refusals_total")
                logger.info("not selected: privacy budget", metadata: ["participant": "\(candidate.id)"])
            }
            return true
        }
        return refusals
    }

    /// The cohort members this round takes past the alert fraction of their budget.
    private func budgetAlerts(_ cohort: [String]) -> [String] {
        guard let ledger, let privacy else { return [] }
        let alerts = cohort.filter {
            if case .admitted(_, alert: true) = ledger.admit($0, round: privacy.participation) { return true }
            return false
        }
        for id in alerts {
            metrics.increment("veil_privacy_alerts_total")
            logger.warning(
                "privacy budget alert",
                metadata: [
                    "participant": "\(id)",
                    "fraction": "\(privacy.settings.alertFraction)",
                    "budget": "\(privacy.settings.budget)",
                ])
        }
        return alerts
    }

    // MARK: - Assignments

    /// The round's training plan. Its seed only salts the participants' own randomness, which
    /// already differs for every session (``ParticipantAgent/roundRandomness(_:)``).
    func trainingPlan(_ number: Int) -> Veil_V1_TrainingPlan {
        let c = configuration
        var plan = Veil_V1_TrainingPlan()
        plan.algorithm = c.algorithm
        plan.localEpochs = UInt32(c.localEpochs)
        plan.batchSize = UInt32(c.batchSize)
        plan.learningRate = c.learningRate
        plan.momentum = c.momentum
        plan.weightDecay = c.weightDecay
        plan.proximalMu = algorithm.proximalMu
        plan.weightScale = c.weightScale
        plan.seed = c.seed &+ UInt64(number) &* 1_000_003
        plan.model = c.model
        plan.features = UInt32(c.features)
        plan.classes = UInt32(c.classes)
        plan.dpClip = privacy?.settings.mode == .central ? privacy!.settings.clip : 0
        return plan
    }

    func payloadEncoding(_ codec: FixedPointCodec) -> Veil_V1_PayloadEncoding {
        var encoding = Veil_V1_PayloadEncoding()
        encoding.clip = codec.clip
        encoding.fractionalBits = UInt32(codec.fractionalBits)
        encoding.bits = UInt32(codec.bitWidth.bits)
        encoding.maxAddends = UInt32(codec.maxAddends)
        return encoding
    }

    func broadcastModel() -> Veil_V1_Model {
        var broadcast = Veil_V1_Model()
        broadcast.vectors = algorithm.broadcast().map { v in Veil_V1_Vector.with { $0.values = v } }
        return broadcast
    }

    private func broadcastResult(_ round: ActiveRound, completed: Bool, survivors: Int, reason: String?, hash: [UInt8])
    {
        var result = Veil_V1_RoundResult()
        result.round = UInt64(round.number)
        result.completed = completed
        result.survivors = UInt32(survivors)
        result.abortReason = reason ?? ""
        result.transcriptHash = Data(hash)
        for id in round.cohort { connections[id]?.outbox.yield(.with { $0.result = result }) }
    }

    /// The payload codec for `addends` contributions: the configured ring and clip, the most
    /// fractional bits (at most 32) that cannot wrap.
    static func codec(_ c: ServeConfiguration, addends: Int) throws -> FixedPointCodec {
        let bitWidth = try BitWidth(c.payloadBits)
        for bits in stride(from: 32, through: 0, by: -1) {
            if let codec = try? FixedPointCodec(
                clip: c.payloadClip, fractionalBits: bits, bitWidth: bitWidth, maxAddends: max(addends, 1))
            {
                return codec
            }
        }
        throw ConfigurationError("no fixed-point precision fits \(addends) addends in \(c.payloadBits) bits")
    }

    /// A snapshot for the status page.
    public func status() -> String {
        var lines = [
            "federation \(configuration.federation): \(completedRounds)/\(configuration.rounds) rounds completed",
            "connected participants: \(connections.count) (\(connections.keys.sorted().joined(separator: ", ")))",
        ]
        if let round = active {
            lines.append(
                "round \(round.number) (attempt \(round.attempt)): \(round.cohort.count) selected, protocol round \(round.protocolRound?.description ?? "-")"
            )
        }
        if let accuracy = lastAccuracy { lines.append(String(format: "test accuracy %.4f", accuracy)) }
        if let privacy, let ledger {
            lines.append(
                String(
                    format:
                        "privacy: %@ noise, σ = %.4g per coordinate of the sum; the most any participant has spent: ε = %.4g of %.4g (δ = %.0e)",
                    privacy.settings.mode.rawValue, privacy.standardDeviation,
                    ledger.balances.map(\.epsilon).max() ?? 0, privacy.settings.budget, privacy.settings.delta))
        }
        return lines.joined(separator: "\n")
    }

    /// The number of completed rounds.
    public var roundsCompleted: Int { completedRounds }

    /// The number of participants with an open stream.
    public var connectedCount: Int { connections.count }
}

extension Veil_V1_CoordinatorMessage {
    static func failure(_ code: Veil_V1_FailureCode, _ message: String) -> Self {
        .with {
            $0.failure = .with {
                $0.code = code
                $0.message = message
            }
        }
    }
}

/// Text another party wrote, made safe to log: at most `limit` characters, on one line
/// (control characters shown as escapes, so that a peer cannot forge log lines or fill a disk).
func loggable(_ text: String, limit: Int = 200) -> String {
    var out = ""
    for scalar in text.unicodeScalars.prefix(limit) {
        if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format {
            out += scalar.escaped(asASCII: true)
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return text.unicodeScalars.count > limit ? out + "… (\(text.utf8.count) bytes)" : out
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
}

/// Reads an Ed25519 signing key file (the hex seed `veil ca issue` writes).
func loadSigningKey(_ path: String) throws -> Ed25519.PrivateKey {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw CredentialError.unreadable(path: path, why: "cannot read the file")
    }
    let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard let bytes = try? Hex.decode(text), bytes.count == 32,
        let key = try? Ed25519.PrivateKey(seed: SecureBytes(copying: bytes))
    else {
        throw CredentialError.unreadable(path: path, why: "not a 32-byte hex Ed25519 seed")
    }
    return key
}
