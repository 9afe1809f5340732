import Foundation
import Logging
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilSecAgg
import VeilWire
import X509

/// The coordinator: registration, cohort selection, and the driver of each round's
/// ``RoundMachine`` — it feeds the machine what arrives (messages, lost streams, deadlines
/// from the injected clock) and carries out what the machine asks (sends, deadlines), then
/// applies the sum to the model, checkpoints, and counts. The gRPC service
/// (``FederationService``) feeds it connections and messages; everything it sends goes out
/// through each connection's outbox.
public actor Coordinator {
    public nonisolated let configuration: ServeConfiguration
    package nonisolated let ca: Certificate
    nonisolated let credentials: CoordinatorCredentials
    /// The id of the coordinator's certificate (what the WebSocket binding's challenge is signed for).
    package nonisolated var id: String { credentials.identity.id }
    let store: CoordinatorStore
    public nonisolated let metrics: Metrics
    let logger: Logger
    /// Deadlines and the registration timeout sleep on this clock (tests pass a manual one).
    let clock: any Clock<Duration>
    /// The actor runs on this executor: a thread of ``ComputeThreads/coordinators``, because
    /// the secure sum's server work (unmasking) is CPU-bound and must not wait behind training.
    private nonisolated let executor: any SerialExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    let model: FederatedModel
    var algorithm: FedAvgFamily
    let evaluation: Dataset?
    var completedRounds = 0
    private var summaries: [RoundSummary] = []
    var lastAccuracy: Double?

    var registry: ConnectionRegistry
    var connectionWaiters: [CheckedContinuation<Void, Never>] = []
    private var registrationExpired = false

    /// The current attempt, and the run loop waiting for its end.
    var active: RoundMachine?
    var roundEnded: CheckedContinuation<RoundEnd, Never>?
    /// Time spent inside the machine (the secure sum's cryptography) in the current attempt,
    /// and when its current stage began (the stage latency histogram).
    var cryptoSeconds = 0.0
    /// The same, as the processor time of the thread that ran the machine: what the secure sum
    /// costs, which a loaded machine does not inflate (a tier's measured throughput, §6.3).
    var cryptoCPUSeconds = 0.0
    private var stageBegan: (stage: RoundStage, at: ContinuousClock.Instant)?
    var stopping = false
    /// The members who declined (for their own policy, budget or training, not because their
    /// client aborted), went silent, were dropped for a bad message or (Paillier) did not
    /// contribute in an aborted attempt of a round: the later attempts of that round leave
    /// them out while enough
    /// others remain, so one participant whose policy refuses this round (or whose device keeps
    /// failing) cannot use up `max_round_attempts` by being selected again and again.
    var leftOut: (round: Int, ids: Set<String>) = (0, [])
    /// Asynchronous federations: the offer the current round's members all trained on.
    var currentBuffer: BufferBase?
    /// Who the current attempt has dropped, or named for a fault, so far.
    var droppedThisAttempt: Set<String> = []
    /// Participants with `exclude_after_faults` proven faults on record: never selected again.
    private(set) var faultExcluded: Set<String> = []
    /// Differential privacy: the calibrated mechanism, and what each participant has spent
    /// (kept in the store).
    let privacy: ServicePrivacyPlan?
    var ledger: PrivacyLedger?
    /// Participants already told that their budget keeps them out (told once per connection).
    var toldOverBudget: Set<String> = []
    var stopReason: String?
    /// Reputation, the fairness floor's record and Oort's (`Specs/orchestration.md` §5–§6),
    /// rebuilt from the store; and what the current attempt has measured of its members.
    var book: OrchestrationBook
    var observations = AttemptObservations()
    /// Round health, resource reports and alerts (`Specs/wire.md` §9.2–§9.4), and where the
    /// dashboard and the webhooks hear of changes.
    var monitoring: MonitoringState
    public nonisolated let hub = MonitoringHub()
    let startedAt = Date()
    /// Set once the store is closed: participants still leaving are not written down.
    var storeClosed = false
    /// One of a tier of processes on one store (it leads under a fence): stopped before the
    /// federation's end, it hands over — its streams end without `Finished`, so that the
    /// participants reconnect to the next leader instead of leaving (`Specs/wire.md` §6.2).
    var handsOver: Bool { store.fence != nil }
    /// With hierarchical secure aggregation (`Specs/wire.md` §6.3): the tier this process
    /// aggregates groups for, the groups deposited and not yet ended, and what its heartbeat
    /// reports (connections; the cryptography time per member of its last group, its measured
    /// throughput) and reads (the other aggregators' loads).
    let tier: TierMembership?
    var deposited: [DepositedGroup] = []
    /// How many free participants an aggregator has seen for the open round, since when.
    var gathering: (round: Int, count: Int, since: ContinuousClock.Instant)?
    nonisolated let pulse = TierPulse()
    /// An aggregator's own records of its groups live in a scratch SQLite file, removed when
    /// the store is closed.
    private let scratch: URL?

    /// Loads the coordinator's certificate and keys, opens the store and resumes from its
    /// last checkpoint. `fence`: the lease this process leads under (``LeaderElection``), whose
    /// epoch and holder every write to the store must still find. `tier`: this process
    /// aggregates groups of the tier's rounds instead of running whole rounds (its model and
    /// ledger are the tier's; its own records go to a scratch file).
    public init(
        configuration: ServeConfiguration, logger: Logger = Logger(label: "veil.coordinator"),
        clock: any Clock<Duration> = ContinuousClock(), executor: (any SerialExecutor)? = nil,
        stores: any StoreDriver = SQLiteStoreDriver(), fence: CoordinatorStore.Lease? = nil,
        tier: TierMembership? = nil
    ) throws {
        self.executor = executor ?? ComputeThreads.coordinators.serialExecutor()
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
        let (ca, identity, signingKey) = try configuration.tls.credentials(role: .coordinator)
        self.ca = ca
        credentials = CoordinatorCredentials(identity: identity, signingKey: signingKey)
        self.tier = tier
        let local: CoordinatorStore
        if tier != nil {
            Self.removeAbandonedScratchFiles()
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
                "veil-aggregator-\(getpid())-\(UUID().uuidString).sqlite")
            self.scratch = scratch
            local = try CoordinatorStore(path: scratch.path)
        } else {
            scratch = nil
            local = try CoordinatorStore(configuration.store, driver: stores, fence: fence)
        }
        store = local
        // An aggregator trains the tier's model and admits by the tier's ledger.
        let shared = tier?.store ?? local
        metrics = Metrics()
        registry = ConnectionRegistry(
            messagesPerSecond: configuration.messagesPerSecond, messageBurst: configuration.messageBurst,
            threshold: try configuration.loadThresholdKey().map {
                ConnectionRegistry.ThresholdConfiguration(key: $0, holders: configuration.keyHolders ?? [])
            })
        model = try FederatedModel(
            configuration.model.description, featureCount: configuration.features, classCount: configuration.classes)
        var initGenerator = Xoshiro256(seed: configuration.seed, purpose: .initialParameters)
        let initial = model.initialParameters(using: &initGenerator)
        if let (round, state) = try shared.latestCheckpoint() {
            guard state.parameters.count == initial.count, state.name == configuration.algorithm.rawValue else {
                throw ConfigurationError(
                    "the store's checkpoint (round \(round), \(state.name), \(state.parameters.count) parameters) does not fit this configuration"
                )
            }
            algorithm = state
            completedRounds = round
            logger.info("resuming", metadata: ["completed_rounds": "\(round)"])
        } else {
            algorithm = configuration.initialAlgorithm(initial)
        }
        metrics.set("veil_rounds_completed", Double(completedRounds))
        metrics.sampleProcess()  // the first CPU reading: the next one has an interval
        if let budget = configuration.privacy?.budget { metrics.set("veil_privacy_epsilon_budget", budget) }
        faultExcluded = try Self.excluded(store: store, limit: configuration.excludeAfterFaults)
        metrics.set("veil_excluded_participants", Double(faultExcluded.count))
        (privacy, ledger) = try Self.privacyPlan(configuration, store: shared, updateLength: model.parameterCount)
        let history = try store.participation()
        book = OrchestrationBook(settings: configuration.orchestration, history: history)
        let monitored = try Self.monitoringState(store: store, history: history)
        monitoring = monitored
        if monitored.unreadable > 0 {
            logger.warning("unreadable round health records", metadata: ["count": "\(monitored.unreadable)"])
        }
        if monitored.alertBookUnreadable {
            logger.warning("the stored alert book cannot be read: starting a new one")
        }
        Self.publishReputations(book, to: metrics, at: completedRounds + 1)
        for credit in try store.credits() {
            metrics.increment(
                "veil_participant_credits_total", by: credit.credits, labels: ["participant": credit.participant])
        }
        if let settings = privacy?.settings, settings.mode == .central {
            // Participants clip to C less the rounding slack; the largest cohort has the
            // coarsest precision, and the slack must leave most of C to the update.
            let codec = try RoundTask.codec(configuration, addends: configuration.cohortSize)
            let slack = ServicePrivacyPlan.slack(length: algorithm.payloadLength, fractionalBits: codec.fractionalBits)
            guard slack < settings.clip / 2 else {
                throw ConfigurationError(
                    "privacy.clip \(settings.clip) is too small for the payload's precision (2^-\(codec.fractionalBits) per value over \(algorithm.payloadLength) values): raise payload_bits or lower payload_clip"
                )
            }
        }
        evaluation = try configuration.evaluationSet()
    }

    // MARK: - Driving the round machine

    /// Feeds the current attempt an event and carries out its actions.
    func dispatch(_ event: RoundEvent, refusingOutsideARound sender: String? = nil) {
        guard var machine = active else {
            if let sender { refuse(from: sender, .outOfRound) }
            return
        }
        let start = ContinuousClock.now
        let cpuStart = threadCPUSeconds()
        let received = machine.bytesIn
        let actions = machine.handle(event)
        cryptoSeconds += seconds(since: start)
        cryptoCPUSeconds += threadCPUSeconds() - cpuStart
        // Only what the round accepted counts as received (refused messages are counted apart).
        if machine.bytesIn > received {
            metrics.increment("veil_bytes_received_total", by: Double(machine.bytesIn - received))
            if let sender = event.participantMessageSender { noteArrival(of: sender, stageStarted: stageBegan?.at) }
        }
        active = machine
        execute(actions, of: machine)
    }

    func execute(_ actions: [RoundAction], of machine: RoundMachine) {
        let attempt = (machine.number, machine.attempt)
        for action in actions {
            switch action {
            case .send(let message, let id):
                if case .secagg(let secagg) = message.kind {
                    metrics.increment("veil_bytes_sent_total", by: Double(secagg.signed.count))
                }
                registry.send(message, to: id)
            case .sendToKeyHolder(let message, let id):
                if case .decrypt(let request) = message.kind {
                    metrics.increment(
                        "veil_bytes_sent_total", by: Double(request.ciphertexts.reduce(0) { $0 + $1.count }))
                }
                registry.sendToKeyHolder(message, id: id)
            case .startDeadline(let generation, let after):
                Task { [clock, weak self] in
                    do { try await clock.sleep(for: after) } catch { return }
                    await self?.deadlinePassed(generation: generation, attempt: attempt)
                }
            case .stageStarted(let stage):
                endStage()
                stageBegan = (stage, ContinuousClock.now)
                hub.changed()
            case .deadlinePassed(let stage):
                logger.info(
                    "protocol round deadline",
                    metadata: ["round": "\(machine.number)", "protocol_round": "\(stage?.description ?? "-")"])
            case .dropped(let id, let stage, let code, let notice):
                droppedThisAttempt.insert(id)
                metrics.increment("veil_dropouts_total", labels: ["protocol_round": "\(stage)", "reason": code])
                monitoring.attempt.dropouts.noteDropout(protocolRound: "\(stage)", reason: code)
                logger.info(
                    "participant dropped", metadata: ["id": "\(id)", "round": "\(machine.number)", "reason": "\(code)"])
                if let notice { registry.send(.failure(.failureDropped, notice), to: id) }
            case .attributed(let id, let code, let detail, let evidence):
                noteFault(id, code: code)
                attribute(
                    CoordinatorStore.Attribution(
                        participant: id, round: machine.number, attempt: machine.attempt, fault: code, detail: detail,
                        evidence: evidence))
            case .refused(let id, let reason):
                refuse(from: id, reason)
            case .ended(let end):
                endStage()
                let waiting = roundEnded
                roundEnded = nil
                waiting?.resume(returning: end)
            }
        }
    }

    /// Records a fault with its evidence, and excludes its author once it has
    /// `exclude_after_faults` proven ones on record.
    private func attribute(_ attribution: CoordinatorStore.Attribution) {
        let id = attribution.participant
        metrics.increment("veil_attributed_faults_total", labels: ["fault": attribution.fault])
        logger.warning(
            "fault attributed",
            metadata: [
                "id": "\(id)", "round": "\(attribution.round)", "fault": "\(attribution.fault)",
                "detail": "\(attribution.detail)",
            ])
        recording("record an attribution") { try store.recordAttribution(attribution) }
        // Proven or not, a participant named in an attempt that fails is left out of its retry
        // (§5): one whose secret does not match its commitment stops every attempt it is in.
        droppedThisAttempt.insert(id)
        refreshExclusions()
    }

    /// Reads the proven faults on record and excludes whoever has reached the limit.
    private func refreshExclusions() {
        let limit = configuration.excludeAfterFaults
        guard let now = recording("count attributions", { try Self.excluded(store: store, limit: limit) }) else {
            return
        }
        for id in now.subtracting(faultExcluded).sorted() {
            logger.warning("participant excluded", metadata: ["id": "\(id)", "exclude_after_faults": "\(limit)"])
        }
        faultExcluded.formUnion(now)
        metrics.set("veil_excluded_participants", Double(faultExcluded.count))
    }

    /// Who has at least `limit` proven faults on record (nobody when `limit` is 0).
    static func excluded(store: CoordinatorStore, limit: Int) throws -> Set<String> {
        guard limit > 0 else { return [] }
        let proven = SecAggEvidence.Fault.allCases.filter(\.isProven).map(\.rawValue)
        return Set(try store.attributionCounts(faults: proven).filter { $0.value >= limit }.keys)
    }

    private func refuse(from id: String, _ reason: RefusalReason) {
        metrics.increment("veil_refused_messages_total", labels: ["reason": reason.rawValue])
        logger.debug("message refused", metadata: ["id": "\(id)", "reason": "\(reason.rawValue)"])
    }

    /// Records how long the stage that just ended took.
    private func endStage() {
        guard let (stage, began) = stageBegan else { return }
        let elapsed = seconds(since: began)
        metrics.observe("veil_protocol_round_seconds", elapsed, labels: ["protocol_round": "\(stage)"])
        monitoring.attempt.stageSeconds["\(stage)", default: 0] += elapsed
        stageBegan = nil
    }

    private func deadlinePassed(generation: Int, attempt: (Int, Int)) {
        guard let machine = active, machine.number == attempt.0, machine.attempt == attempt.1 else { return }
        dispatch(.deadline(generation: generation))
    }

    // MARK: - Waiting for participants

    func wakeConnectionWaiters() {
        let waiters = connectionWaiters
        connectionWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// Whether rounds can be planned for this participant: not when it declared that it needs a
    /// distributed-DP plan to cost a round (`requires_privacy_plan`, a budget of its own) and
    /// this coordinator has none — it would decline every round.
    /// Nor for one excluded for its faults.
    func isPlannable(_ connection: ConnectionRegistry.Connection) -> Bool {
        (privacy?.distributed != nil || !connection.hello.policy.requiresPrivacyPlan)
            && !faultExcluded.contains(connection.identity.id)
    }

    private var plannableCount: Int { registry.participants.values.count(where: isPlannable) }
    /// Those a round may be planned with now: in an asynchronous federation, only the
    /// plannable participants holding a usable update trained on the offer most of them hold.
    private var candidateCount: Int {
        configuration.asynchronous == nil
            ? registry.participants.values.count(where: isCandidate) : bufferBase?.count ?? 0
    }

    /// Waits until at least `count` plannable participants are connected (and the key holder,
    /// for Paillier rounds), or the timeout passes on the injected clock.
    private func waitForParticipants(_ count: Int, timeout: Duration) async -> Bool {
        registrationExpired = false
        let timer = Task { [clock] in
            do { try await clock.sleep(for: timeout) } catch { return }
            await self.expireRegistration()
        }
        defer { timer.cancel() }
        while candidateCount < count || (configuration.secureSum == .paillier && registry.keyHolding == nil) {
            if registrationExpired || stopping { return false }
            await withCheckedContinuation { connectionWaiters.append($0) }
        }
        return true
    }

    /// Waits for `min_participants` candidates. In an asynchronous federation the candidates
    /// may hold updates of different offers, none with enough: after each `buffer_wait_seconds`
    /// without a round, whoever holds an update of another offer is offered the current
    /// version with a staleness of 0 — it would answer a plain offer with the update it
    /// holds — so that they converge on that one offer instead of waiting for each other for
    /// ever. Those left out of the round's earlier attempts are candidates again then too: the
    /// others had their chance to form a buffer without them, and when they are the only ones
    /// connected — both members of an aborted attempt reconnecting — the round would otherwise
    /// wait for participants that may never come.
    private func waitForBuffer(registration: Duration) async -> Bool {
        guard let asynchronous = configuration.asynchronous else {
            return await waitForParticipants(configuration.minParticipants, timeout: registration)
        }
        let step = Duration.milliseconds(Int(asynchronous.bufferWaitSeconds * 1000))
        var waited = Duration.zero
        while waited < registration {
            let slice = min(step, registration - waited)
            if await waitForParticipants(configuration.minParticipants, timeout: slice) { return true }
            if stopping { return false }
            waited += slice
            if leftOut.round == completedRounds + 1, !leftOut.ids.isEmpty {
                logger.info(
                    "left out no longer",
                    metadata: [
                        "round": "\(leftOut.round)", "ids": "\(leftOut.ids.sorted().joined(separator: ","))",
                        "reason": "no buffer formed without them within buffer_wait_seconds",
                    ])
                leftOut = (0, [])
            }
            // One offer for all: two groups of the current version (one retrained on the plain
            // offer, one on this) would be split again.
            let retrain = modelOffer(maxStaleness: 0)
            let target = retrain.offer.digest
            let behind = registry.participants.values.filter {
                guard let base = $0.heldBase else { return false }
                return base != modelVersion || $0.heldOffer != target
            }
            if !behind.isEmpty { offerModel(to: behind.map(\.identity.id).sorted(), offer: retrain) }
        }
        return false
    }

    private func expireRegistration() {
        registrationExpired = true
        wakeConnectionWaiters()
    }

    // MARK: - The federation

    /// Runs rounds until `configuration.rounds` have completed (counting those already in the
    /// store), then tells everyone the federation is finished.
    public func run(progress: @escaping @Sendable (RoundSummary) -> Void = { _ in }) async throws -> FederationSummary {
        if let tier, let hierarchy = configuration.hierarchy {
            return try await runAggregator(tier, hierarchy, progress: progress)
        }
        var attempts = 0
        var abortedInARow = 0
        var gaveUp = false
        let registration = Duration.milliseconds(Int(configuration.registrationTimeoutSeconds * 1000))
        do {
            while completedRounds < configuration.rounds && !stopping {
                guard await waitForBuffer(registration: registration) else {
                    if stopping { break }
                    throw ConfigurationError(registrationFailure())
                }
                if let asynchronous = configuration.asynchronous, candidateCount < configuration.cohortSize {
                    // A buffer fills for at most buffer_wait_seconds; then what is held is summed.
                    _ = await waitForParticipants(
                        configuration.cohortSize,
                        timeout: .milliseconds(Int(asynchronous.bufferWaitSeconds * 1000)))
                    if stopping { break }
                }
                guard let summary = try await runRound(completedRounds + 1) else { break }
                attempts += 1
                summaries.append(summary)
                progress(summary)
                abortedInARow = summary.completed ? 0 : abortedInARow + 1
                if !stopping, abortedInARow >= configuration.maxRoundAttempts {
                    stopReason =
                        "round \(summary.number) was aborted \(abortedInARow) times in a row; the last time: \(summary.abortReason ?? "-")"
                    logger.error("giving up", metadata: ["reason": "\(stopReason!)"])
                    gaveUp = true
                    break
                }
            }
        } catch {
            // Whoever is connected learns why the federation ended, whatever ended it.
            stopping = true
            stopReason = "\(error)"
            if handsOver { registry.closeAll() } else { registry.finishAll(finished()) }
            throw error
        }
        stopping = true
        if stopReason == nil && completedRounds < configuration.rounds { stopReason = "the coordinator was stopped" }
        return end(
            handingOver: handsOver && !gaveUp && completedRounds < configuration.rounds, attempts: attempts,
            rounds: summaries, gaveUp: gaveUp)
    }

    /// Ends every stream — without `Finished` when `handingOver`, so that its participants go
    /// on with another process of the tier — and sums the federation up.
    func end(handingOver: Bool, attempts: Int, rounds: [RoundSummary], gaveUp: Bool) -> FederationSummary {
        if handingOver { registry.closeAll() } else { registry.finishAll(finished()) }
        hub.changed()
        return FederationSummary(
            completedRounds: completedRounds, attempts: attempts, finalAccuracy: lastAccuracy, rounds: rounds,
            stopReason: stopReason, gaveUp: gaveUp)
    }

    private func registrationFailure() -> String {
        let holder =
            configuration.secureSum == .paillier && registry.keyHolding == nil
            ? " (and \(registry.keyHoldingShortfall))" : ""
        let connected = registry.participants.count
        let unplanned =
            plannableCount < connected
            ? " (\(connected - plannableCount) more declare a privacy budget, which needs a distributed-DP plan this coordinator does not run)"
            : ""
        if configuration.asynchronous != nil {
            return
                "only \(candidateCount) of the \(configuration.minParticipants) held updates needed were announced within \(configuration.registrationTimeoutSeconds) s (\(plannableCount) participants connected)\(unplanned)\(holder)"
        }
        return
            "only \(plannableCount) of the \(configuration.minParticipants) participants needed connected within \(configuration.registrationTimeoutSeconds) s\(unplanned)\(holder)"
    }

    /// Stops after the current round; with `interrupting`, ends the current round now (it is
    /// recorded as interrupted and its participants are told).
    public func stop(interrupting: Bool = false) {
        stopping = true
        if interrupting, var machine = active {
            let actions = machine.interrupt()
            active = machine
            execute(actions, of: machine)
        }
        wakeConnectionWaiters()
    }

    func finished() -> Veil_V1_Finished {
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
        let completed = recording("read the rounds completed") { try store.roundsCompleted() } ?? [:]
        // An asynchronous buffer: those holding updates of one offer (§4.4).
        let buffer = configuration.asynchronous == nil ? nil : bufferBase?.base
        currentBuffer = buffer
        var candidates = registry.participants.values.filter {
            isCandidate($0) && (buffer == nil || ($0.heldBase == buffer!.version && $0.heldOffer == buffer!.offer))
        }.map {
            CohortSelection.Candidate(
                id: $0.identity.id, resources: $0.hello.resources, roundsCompleted: completed[$0.identity.id] ?? 0)
        }
        let budgets = admitWithinBudget(&candidates)
        if leftOut.round == number {
            let present = candidates.filter { !leftOut.ids.contains($0.id) }
            if present.count >= c.minParticipants { candidates = present }
        }
        candidates = book.admitted(candidates, needed: c.minParticipants, round: number)
        guard candidates.count >= c.minParticipants else {
            stopReason =
                "the privacy budgets are spent: \(candidates.count) of the \(registry.participants.count) connected participants may contribute another round, \(c.minParticipants) are needed"
            logger.warning("stopping", metadata: ["reason": "\(stopReason!)"])
            return nil
        }
        // Each attempt draws its own cohort (the attempt is the stream's second word), so a
        // retried round is not the same cohort again.
        let attempt = try store.nextAttempt(of: number)
        var selection = Xoshiro256(seed: c.seed, purpose: .cohortSelection, round: number, participant: attempt)
        let cohort = book.select(
            candidates, count: c.cohortSize, strategy: c.selection, round: number, generator: &selection)
        let report = try beginAttempt(number, attempt: attempt, cohort: cohort, budgetRefusals: budgets)
        let staleness = configuration.asynchronous == nil ? [:] : staleness(of: cohort)
        if !staleness.isEmpty {
            metrics.set("veil_round_staleness_mean", Double(staleness.values.reduce(0, +)) / Double(staleness.count))
        }

        let machine: RoundMachine
        do {
            let actions: [RoundAction]
            (machine, actions) = try startRound(number: number, attempt: attempt, cohort: cohort)
            active = machine
            logger.info(
                "round started",
                metadata: [
                    "round": "\(number)", "attempt": "\(attempt)", "cohort": "\(cohort.count)",
                    "sum": "\(c.secureSum.rawValue)", "threshold": "\(machine.threshold)",
                    "staleness":
                        "\(staleness.isEmpty ? "-" : cohort.map { staleness[$0].map(String.init) ?? "?" }.joined(separator: ","))",
                ])
            execute(actions, of: machine)
        } catch {
            let abort = RoundAbort(.setup, "the round could not start with \(cohort.count) participants: \(error)")
            try record(report, abort: abort, machine: nil)
            offerAfterRound(cohort: [])
            // Give the participants a moment to (re)connect or change before the next attempt.
            try? await clock.sleep(for: .seconds(1))
            return summarize(report, outcome: .aborted(abort), machine: nil)
        }

        let (outcome, finished) = await attemptEnd()
        if case .aborted = outcome { leaveOut(after: finished) }
        var summary = try conclude(report, outcome: outcome, machine: finished)
        summary.staleness = staleness
        // Every member is offered the model now current: whoever spent its update trains again,
        // whoever still holds one (it declined before using it) says so again.
        offerAfterRound(cohort: cohort)
        return summary
    }

    /// Records attempt `attempt` of round `number` as running and starts its observations.
    func beginAttempt(_ number: Int, attempt: Int, cohort: [String], budgetRefusals: [String]) throws -> RoundReport {
        try store.beginRound(number, attempt: attempt, cohort: cohort.count)
        droppedThisAttempt = []
        monitoring.attempt = MonitoringState.Attempt()
        observations = AttemptObservations()
        observations.round = number
        observations.cohort = Set(cohort)
        for id in cohort {
            observations.examples[id] = Int(
                min(registry.participants[id]?.hello.sampleCount ?? 0, UInt64(AttemptObservations.maxExamples)))
        }
        metrics.set("veil_round_cohort", Double(cohort.count))
        cryptoSeconds = 0
        cryptoCPUSeconds = 0
        return RoundReport(
            number: number, attempt: attempt, cohort: cohort.count, started: .now, budgetRefusals: budgetRefusals,
            budgetAlerts: budgetAlerts(cohort))
    }

    /// Waits for the current attempt's end; returns it with the machine that ran it.
    func attemptEnd() async -> (RoundEnd, RoundMachine) {
        let outcome: RoundEnd = await withCheckedContinuation { continuation in
            if let ended = active?.ended { continuation.resume(returning: ended) } else { roundEnded = continuation }
        }
        let finished = active!
        active = nil
        return (outcome, finished)
    }

    /// After an aborted attempt, the later attempts of its round leave out whoever it dropped,
    /// named or missed. Not those whose client aborted: a rogue member makes its honest
    /// neighbours abort (shares that fail authentication), and must not get them left out that
    /// way. Only an abort that came before its sender was dropped or named counts: a rogue
    /// cannot escape being left out by aborting after its conviction.
    func leaveOut(after finished: RoundMachine) {
        let absent = droppedThisAttempt.union(finished.missingContributors).subtracting(observations.aborted)
        leftOut = (finished.number, leftOut.round == finished.number ? leftOut.ids.union(absent) : absent)
    }

    /// The attempt's machine for `cohort`, with the assignments to send.
    func startRound(number: Int, attempt: Int, cohort: [String]) throws -> (RoundMachine, [RoundAction]) {
        let c = configuration
        let members = cohort.map { registry.participants[$0]!.member }
        // The members a sum survives losing: n − t of the masking session the round will plan
        // (t does not depend on the ring or the dimension); none in a Paillier round.
        let survivable =
            c.secureSum == .secagg
            ? cohort.count
                - ((try? RoundMachine.sessionParameters(
                    clientCount: cohort.count, bitWidth: BitWidth(c.payloadBits),
                    dimension: algorithm.payloadLength, threatModel: c.coordinatorThreatModel(),
                    policies: members.compactMap(\.policy), noiseShares: privacy?.distributed?.minimumParticipants))?
                    .threshold ?? cohort.count)
            : 0
        let compression = try RoundCompression.choose(
            c, round: number, payloadLength: algorithm.payloadLength,
            links: cohort.map { registry.participants[$0]!.hello.resources.linkBitsPerSecond },
            survivable: survivable,
            paillierKeyBits: c.secureSum == .paillier ? registry.keyHolding?.publicKey.bits : nil, privacy: privacy)
        let task = try RoundTask(
            number: number, cohortSize: cohort.count, configuration: c, algorithm: algorithm, privacy: privacy,
            compression: compression, buffer: currentBuffer)
        switch c.secureSum {
        case .secagg:
            return try RoundMachine.masking(
                number: number, attempt: attempt, members: members, task: task,
                threatModel: try c.coordinatorThreatModel(), coordinator: credentials,
                nonce: SecureBytes.random(count: SecAggSession.nonceByteCount).unsafeExposedBytes(),
                deadlines: RoundDeadlines(c))
        case .paillier:
            guard let keyHolding = registry.keyHolding else {
                throw ConfigurationError("\(registry.keyHoldingShortfall)")
            }
            return try RoundMachine.paillier(
                number: number, attempt: attempt, members: members, task: task, maxAddends: c.cohortSize,
                keyHolding: keyHolding, coordinator: credentials,
                nonce: SecureBytes.random(count: PaillierSession.nonceByteCount).unsafeExposedBytes(),
                deadlines: RoundDeadlines(c))
        }
    }

    /// Closes the store once the federation is over (a failure is logged and counted).
    public func closeStore() {
        storeClosed = true
        recording("close the store") { try store.close() }
        if let scratch {
            for suffix in ["", "-wal", "-shm"] {
                try? FileManager.default.removeItem(atPath: scratch.path + suffix)
            }
        }
    }

    // MARK: - Status

    /// A snapshot for the status page.
    public func status() -> String {
        var lines = [
            "federation \(configuration.federation): \(completedRounds)/\(configuration.rounds) rounds completed",
            "connected participants: \(registry.participants.count) (\(registry.participants.keys.sorted().joined(separator: ", ")))",
        ]
        if let round = active {
            lines.append(
                "round \(round.number) (attempt \(round.attempt)): \(round.cohort.count) selected, protocol round \(round.stage?.description ?? "-")"
            )
        }
        if let accuracy = lastAccuracy { lines.append(String(format: "test accuracy %.4f", accuracy)) }
        let reputations = book.reputations.keys.map { ($0, book.reputation(of: $0, at: completedRounds + 1)) }
        if let lowest = reputations.min(by: { ($0.1, $0.0) < ($1.1, $1.0) }) {
            lines.append(
                String(
                    format: "selection %@; reputation of %d participants, lowest %.3f (%@)",
                    configuration.selection.rawValue, reputations.count, lowest.1, lowest.0))
        }
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
    public var connectedCount: Int { registry.participants.count }
}
