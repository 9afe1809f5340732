import Foundation
import Logging
import VeilCrypto
import VeilLearning
import VeilSecAgg
import VeilWire
import X509

/// `veil join`: connects to the coordinator with its certificate, registers, and for each
/// round it is assigned checks the roster against the CA, trains locally on its own data,
/// encodes its update and runs the secure-aggregation client (``SecAggClient``).
public struct ParticipantAgent: Sendable {
    public private(set) var configuration: JoinConfiguration
    public let identity: FederationIdentity
    let ca: Certificate
    let signingKey: Ed25519.PrivateKey
    /// Its rows for Veil's own trainer; nil when the user's trainer trains (join.json's `trainer`).
    let data: Dataset?
    let trainer: ExternalTrainer?
    let logger: Logger
    /// Fault injection for tests and benchmarks: in round `round`, after sending `messages`
    /// secure-sum messages, the participant goes silent and disconnects for good, as if killed.
    public var failure: (round: UInt64, messages: Int)?
    /// After its injected failure, reconnect and take part again instead of leaving for good
    /// (`veil simulate --drop-participant`: a dropout the federation recovers from).
    public var rejoinsAfterFailure = false
    /// Misbehaviour for tests of hostile peers: the participant runs the real protocol but
    /// changes its own messages, signing them with its own key, as a rogue with a valid
    /// certificate would.
    public var misbehaviour: Misbehaviour?

    public enum Misbehaviour: Sendable {
        /// In R1, garbage ciphertexts for every neighbour, each entry signed as its shares.
        case garbageShares
        /// In R4, a wrong share of every secret it holds.
        case wrongShares

        func apply(to message: SignedMessage, signingKey: Ed25519.PrivateKey) -> SignedMessage {
            let body: [UInt8]?
            switch (self, message.round) {
            case (.garbageShares, .shareKeys):
                body = try? SecAggForgery.shareKeysBodyWithGarbageShares(
                    message.body, sessionID: message.sessionID, sender: message.sender, by: signingKey)
            case (.wrongShares, .unmasking):
                body = try? SecAggForgery.unmaskingBodyWithWrongShares(message.body)
            default:
                body = nil
            }
            return body.map { SecAggForgery.resigned(message, body: $0, by: signingKey) } ?? message
        }
    }

    let verified = VerifiedCertificates()
    /// The Paillier sessions this participant has contributed to (one contribution each).
    let contributedSessions = SessionRecord()
    let encryptors = EncryptorCache()
    /// The loss reports sent (join.json's `loss_report`).
    let lossReports = LossReportRecord()
    /// This participant's own privacy ledger, when its configuration sets a budget.
    let ledger: ParticipantLedger?
    /// Its example-level ledger, when it trains by DP-SGD.
    let exampleLedger: ExampleLedger?
    /// Asynchronous federations: the last model offered and the update it holds.
    let asynchronous: AsynchronousState

    /// The coordinator's port (a coordinator that picked a free port tells it late).
    public var port: Int {
        get { configuration.port }
        set { configuration.port = newValue }
    }

    public init(configuration: JoinConfiguration, data: Dataset? = nil, logger: Logger? = nil) throws {
        self.configuration = configuration
        (ca, identity, signingKey) = try configuration.tls.credentials(role: .participant)
        let logger = logger ?? Logger(label: "veil.join.\(identity.id)")
        self.logger = logger
        trainer = configuration.trainer.map { ExternalTrainer(configuration: $0, logger: logger) }
        self.data = trainer == nil ? try data ?? Self.loadData(configuration) : nil
        ledger = try configuration.privacyBudget.map { try ParticipantLedger($0) }
        exampleLedger = try configuration.dpSgd.map { try ExampleLedger($0) }
        asynchronous = try AsynchronousState(folder: configuration.offlineState)
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

    /// Takes part over `link` until the coordinator finishes the federation; reconnects after a
    /// lost connection (up to `reconnectAttempts` times).
    package func run(over link: some CoordinatorLink) async throws -> ParticipantSummary {
        // Training and masking are CPU-bound: off the cooperative pool (``ComputeThreads``).
        try await withTaskExecutorPreference(ComputeThreads.shared.taskExecutor()) { try await runSessions(link) }
    }

    private func runSessions(_ link: some CoordinatorLink) async throws -> ParticipantSummary {
        let tally = Tally()
        var failures = 0
        // Which of the coordinator's addresses the next connection tries: the next one after
        // each connection that ended before the federation did (a tier's leader may have
        // changed, §6.2).
        let addresses = configuration.addresses
        var address = 0
        // An overloaded aggregator's hint: these first, after its delay (`Specs/wire.md` §6.3).
        var hinted: [(host: String, port: Int)] = []
        var delay: Duration? = nil
        while true {
            trainOffline(tally: tally)
            let target: (host: String, port: Int)
            let fromHint = !hinted.isEmpty
            if hinted.isEmpty {
                target = addresses[address]
                address = (address + 1) % addresses.count
            } else {
                target = hinted.removeFirst()
            }
            do {
                let outcome = try await session(tally: tally, link: link, address: target)
                if let reason = outcome.finished {
                    return ParticipantSummary(
                        id: identity.id, roundsAssigned: tally.assigned, roundsCompleted: tally.completed,
                        finishedReason: reason, trainingSeconds: tally.trainingSeconds,
                        cryptoSeconds: tally.cryptoSeconds, privacyNotice: tally.privacyNotice,
                        privacySpent: ledger?.spent(identity.id), exampleEpsilon: exampleLedger?.epsilon(),
                        exampleRounds: exampleLedger?.rounds, exampleSteps: exampleLedger?.steps,
                        declines: tally.declines, lastDecline: tally.lastDecline)
                }
                failures = 0
            } catch {
                // The transport may wrap what the response handler threw; the tally knows what happened.
                if tally.injected, rejoinsAfterFailure {
                    tally.injected = false
                    logger.info("failure injected: reconnecting")
                } else if tally.injected {
                    return ParticipantSummary(
                        id: identity.id, roundsAssigned: tally.assigned, roundsCompleted: tally.completed,
                        finishedReason: "failure injected", trainingSeconds: tally.trainingSeconds,
                        cryptoSeconds: tally.cryptoSeconds)
                }
                if let refusal = tally.refusal { throw ParticipantError.refused(refusal) }
                // An address an aggregator hinted is the hint's, not the federation's: that it
                // fails says nothing of the coordinator's own addresses, and a lying hint must
                // not use up the reconnect attempts (the participant would leave for good).
                if fromHint {
                    logger.info("hinted address failed", metadata: ["error": "\(error)"])
                    continue
                }
                failures += 1
                logger.info("connection lost", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                if failures > configuration.reconnectAttempts { throw error }
            }
            if let hint = tally.takeRetry() {
                hinted = hint.addresses
                delay = hint.after
            }
            // Refused for load, the participant waits as asked and is not failing: the tier is.
            if let wait = delay {
                delay = nil
                try await Task.sleep(for: wait)
            } else {
                try await Task.sleep(for: .milliseconds(min(5000, 200 * (1 << min(failures, 5)))))
            }
        }
    }

    /// One connection.
    func session(tally: Tally, link: some CoordinatorLink, address: (host: String, port: Int)) async throws
        -> SessionOutcome
    {
        let c = configuration
        let agent = self
        return try await link.open(
            tls: c.tls, host: address.host, port: address.port, coordinator: c.coordinator, hello: hello()
        ) { messages, send in
            var state = AgentState(agent: agent, tally: tally, send: send)
            // A session cut short by the connection is journalled too: what was sent is what matters.
            defer { state.journal(result: nil) }
            for try await message in messages {
                if try state.handle(message) { break }
            }
            return state.outcome
        }
    }

    func hello() -> Veil_V1_Hello {
        var hello = Veil_V1_Hello()
        hello.protocolVersion = 1
        hello.sampleCount = trainer?.configuration.examples ?? UInt64(data?.count ?? 0)
        hello.policy = configuration.policy.declaration(requiresPrivacyPlan: ledger != nil)
        hello.resources = .with {
            $0.cores = UInt32(configuration.cores ?? ProcessInfo.processInfo.activeProcessorCount)
            $0.memoryBytes = configuration.memoryBytes ?? ProcessInfo.processInfo.physicalMemory
            $0.battery = configuration.battery ?? -1
            $0.linkBitsPerSecond = configuration.linkBitsPerSecond ?? 0
        }
        return hello
    }
}
