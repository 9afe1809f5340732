import Foundation
import VeilCore
import VeilLearning
import VeilPaillier
import VeilSecAgg

/// How the coordinator picks each round's cohort.
public enum SelectionStrategy: String, Codable, Hashable, Sendable, CaseIterable, ConfigurationName {
    /// Uniformly at random among the connected participants.
    case random
    /// Those who have completed the fewest rounds first (ties by id): everyone takes turns.
    case roundRobin = "round-robin"
    /// Highest score first: cores, memory, battery and link, each normalised (`Specs/wire.md` §5).
    case resourceAware = "resource-aware"
    /// Oort's utility-guided selection on the durations the coordinator measures
    /// (`Specs/orchestration.md` §5).
    case oort
}

/// How each round's updates are summed.
public enum SecureSum: String, Codable, Hashable, Sendable, CaseIterable, ConfigurationName {
    /// Pairwise masking with Shamir dropout recovery (`Specs/secagg.md`).
    case secagg
    /// Encryption under the key holder's Paillier key; it alone decrypts (`Specs/paillier.md`).
    case paillier
}

/// The data the coordinator evaluates the global model on after each round.
public enum EvaluationSet: String, Codable, Hashable, Sendable, CaseIterable, ConfigurationName {
    /// The test split of the bundled digits.
    case digits
}

/// A model the service trains: `softmax`, or `mlp:H1,H2,…` (hidden layer widths).
public enum ModelArchitecture: Hashable, Sendable, Codable, CustomStringConvertible {
    case softmax
    case mlp(hidden: [Int])
    /// The user's architecture, known by its tensors (`Specs/trainer.md` §2.1): trained by
    /// the participants' own trainers, summed by Veil, never evaluated or exported by it.
    case tensors(TensorSchema)

    /// - Throws: ``ConfigurationError`` naming what is wrong with `text`.
    public init(parsing text: String) throws {
        if text.hasPrefix(TensorSchema.prefix) {
            do { self = .tensors(try TensorSchema(parsing: text)) } catch {
                throw ConfigurationError("model: \(error.description)")
            }
            return
        }
        if text == "softmax" {
            self = .softmax
            return
        }
        let widths =
            text.hasPrefix("mlp:") ? text.dropFirst(4).split(separator: ",", omittingEmptySubsequences: false) : []
        let hidden = widths.compactMap { Int($0) }
        guard !widths.isEmpty, hidden.count == widths.count, hidden.allSatisfy({ $0 > 0 }) else {
            throw ConfigurationError(
                "model: \"\(text.prefix(64))\" is not softmax, mlp:H1,H2,… with positive widths, or tensors:NAME=D1xD2x…,…"
            )
        }
        self = .mlp(hidden: hidden)
    }

    public var description: String {
        switch self {
        case .softmax: "softmax"
        case .mlp(let hidden): "mlp:" + hidden.map(String.init).joined(separator: ",")
        case .tensors(let schema): schema.specification
        }
    }

    public init(from decoder: any Decoder) throws {
        try self.init(parsing: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension ParticipantPolicy.Adversary: ConfigurationName {}
extension FedAvgFamilyMember: ConfigurationName {}
extension ServicePrivacy.Mode: ConfigurationName {}

/// `veil serve --config FILE`: every key is optional; the defaults are in `Specs/wire.md` §7.
public struct ServeConfiguration: Codable, Hashable, Sendable {
    public var federation = "veil"
    public var host = "127.0.0.1"
    /// 0 picks a free port (printed at start).
    public var port = 7443
    /// The Prometheus/status HTTP port; nil disables it.
    public var metricsPort: Int? = 9464
    public var tls: TLSFiles
    /// The SQLite file of the coordinator's state (without `postgres`).
    public var state = "coordinator.sqlite"
    /// The coordinator's state in PostgreSQL instead (`Specs/wire.md` §6.1); nil: the SQLite file.
    public var postgres: PostgresSettings?
    /// Hierarchical secure aggregation across a tier on `postgres` (`Specs/wire.md` §6.3); nil:
    /// every round's sum at one coordinator.
    public var hierarchy: ServiceHierarchy?
    /// Completed rounds to run.
    public var rounds = 20
    /// A round starts when at least this many participants are connected.
    public var minParticipants = 3
    /// The cohort size (at most this many per round).
    public var cohortSize = 10
    public var selection: SelectionStrategy = .random
    /// Each protocol round's deadline; training happens before the first and gets `trainingDeadlineSeconds`.
    public var roundDeadlineSeconds = 30.0
    public var trainingDeadlineSeconds = 120.0
    /// How long to wait for enough participants before giving up.
    public var registrationTimeoutSeconds = 300.0
    /// Give up the federation after this many aborted attempts in a row at the same round.
    public var maxRoundAttempts = 10
    /// Leave a participant out of every later cohort once this many faults its own signed
    /// messages prove have been recorded against it (0: never). Wrong R4 shares are recorded
    /// but not counted: their evidence cannot tell the holder's fault from the dealer's.
    public var excludeAfterFaults = 2
    public var model = ModelArchitecture.softmax
    public var features = 64
    public var classes = 10
    public var algorithm = FedAvgFamilyMember.fedavg
    public var localEpochs = 1
    public var batchSize = 32
    public var learningRate = 0.1
    public var momentum = 0.0
    public var weightDecay = 0.0
    public var proximalMu = 0.01
    public var serverMomentum = 0.9
    public var serverLearningRate = 0.1
    /// FedAdam/FedYogi β1, β2; FedAdagrad/FedAdam/FedYogi adaptivity τ.
    public var beta1 = 0.9
    public var beta2 = 0.99
    public var tau = 1e-3
    /// Rows per participant at most (weights are n_k / this).
    public var weightScale = 1000.0
    /// The payload ring Z_2^bits and the clip of each payload entry.
    public var payloadBits = 64
    public var payloadClip = 1024.0
    /// Random-subset compression (`Specs/export.md` §5.2): the share of update coordinates
    /// sent each round; nil: all of them.
    public var subset: Double?
    /// Adaptive compression (`Specs/export.md` §5.3): each round's ring and subset chosen from
    /// the cohort's reported links and the round deadline, within these floors; nil: none.
    public var adaptiveCompression: ServiceAdaptiveCompression?
    /// How rounds are summed: `secagg` (pairwise masking) or `paillier` (encryption under the
    /// key that the key holder `key_holder` announces, signed; it alone decrypts).
    public var secureSum = SecureSum.secagg
    public var keyHolder = "key-holder"
    /// Paillier with a threshold key (`Specs/paillier.md` §6.3), instead of one key holder: the
    /// key file of `veil paillier deal` and the ids of its ℓ holders, holder i at index i − 1.
    /// Each must announce its share of exactly that key; t of them decrypt each round.
    public var thresholdKey: String?
    public var keyHolders: [String]?
    /// The coordinator's own threat model, from which it proposes parameters; each participant
    /// checks them against its own policy, whose default is the malicious model too.
    public var threatModel = ParticipantPolicy.Adversary.malicious
    public var corruptFraction = 0.05
    public var dropoutFraction = 0.1
    public var securityBits = 40
    /// Evaluate the global model after each round on this dataset's test split (digits), or none.
    public var evaluate: EvaluationSet? = .digits
    /// Message limits: the largest message, and each participant's rate (token bucket).
    public var maxMessageBytes = 64 << 20
    public var messagesPerSecond = 200.0
    public var messageBurst = 2000.0
    public var seed: UInt64 = 0
    /// Central differential privacy; nil: none.
    public var privacy: ServicePrivacy?
    /// The fairness floor and how selection uses reputation.
    public var orchestration = ServiceOrchestration()
    /// Buffered asynchronous aggregation (`Specs/wire.md` §4.4); nil: synchronous rounds.
    public var asynchronous: ServiceAsynchrony?
    /// The dashboard's token, alert rules and webhooks (`Specs/wire.md` §9.2–§9.4); nil: the
    /// default alert rules, no webhooks, and the dashboard's data refused.
    public var monitoring: ServiceMonitoring?
    /// The WebSocket binding and the participant page (`Specs/wire.md` §1.1); nil: gRPC only.
    public var browser: ServiceBrowser?

    public init(tls: TLSFiles) { self.tls = tls }

    /// The held-out set each round's model is evaluated on (`evaluate`), if any.
    func evaluationSet() throws -> Dataset? {
        switch evaluate {
        case .digits?:
            var c = FederatedConfiguration()
            c.seed = seed
            return try FederatedSimulation(configuration: c).data.test
        case nil: return nil
        }
    }

    /// Where the state lives: `postgres` when given, else the SQLite file `state`.
    public var store: StoreLocation { postgres.map { .postgres($0) } ?? .sqlite(path: state) }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case federation, host, port, metricsPort, tls, state, rounds, minParticipants, cohortSize, selection
        case roundDeadlineSeconds, trainingDeadlineSeconds, registrationTimeoutSeconds, maxRoundAttempts, model
        case excludeAfterFaults
        case features, classes
        case algorithm, localEpochs, batchSize, learningRate, momentum, weightDecay, proximalMu, serverMomentum
        case beta1, beta2, tau
        case serverLearningRate, weightScale, payloadBits, payloadClip, subset, adaptiveCompression, threatModel,
            corruptFraction, dropoutFraction
        case securityBits, evaluate, maxMessageBytes, messagesPerSecond, messageBurst, seed
        case secureSum, keyHolder, thresholdKey, keyHolders, privacy, orchestration, asynchronous, monitoring, browser
        case postgres, hierarchy
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "the configuration")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(tls: try c.decode(TLSFiles.self, forKey: .tls))
        try c.take(.federation, &federation); try c.take(.host, &host); try c.take(.port, &port)
        if c.contains(.metricsPort) { metricsPort = try c.decodeIfPresent(Int.self, forKey: .metricsPort) }
        try c.take(.state, &state); try c.take(.rounds, &rounds); try c.take(.minParticipants, &minParticipants)
        try c.take(.cohortSize, &cohortSize); try c.take(.selection, &selection)
        try c.take(.roundDeadlineSeconds, &roundDeadlineSeconds);
        try c.take(.trainingDeadlineSeconds, &trainingDeadlineSeconds)
        try c.take(.registrationTimeoutSeconds, &registrationTimeoutSeconds); try c.take(.model, &model)
        try c.take(.maxRoundAttempts, &maxRoundAttempts); try c.take(.excludeAfterFaults, &excludeAfterFaults)
        try c.take(.features, &features); try c.take(.classes, &classes); try c.take(.algorithm, &algorithm)
        try c.take(.localEpochs, &localEpochs); try c.take(.batchSize, &batchSize);
        try c.take(.learningRate, &learningRate)
        try c.take(.momentum, &momentum); try c.take(.weightDecay, &weightDecay); try c.take(.proximalMu, &proximalMu)
        try c.take(.serverMomentum, &serverMomentum); try c.take(.serverLearningRate, &serverLearningRate)
        try c.take(.beta1, &beta1); try c.take(.beta2, &beta2); try c.take(.tau, &tau)
        try c.take(.weightScale, &weightScale); try c.take(.payloadBits, &payloadBits);
        try c.take(.payloadClip, &payloadClip)
        subset = try c.decodeIfPresent(Double.self, forKey: .subset)
        adaptiveCompression = try c.decodeIfPresent(ServiceAdaptiveCompression.self, forKey: .adaptiveCompression)
        try c.take(.threatModel, &threatModel); try c.take(.corruptFraction, &corruptFraction)
        try c.take(.dropoutFraction, &dropoutFraction); try c.take(.securityBits, &securityBits)
        if c.contains(.evaluate) { evaluate = try c.name(EvaluationSet.self, forKey: .evaluate) }
        try c.take(.maxMessageBytes, &maxMessageBytes); try c.take(.messagesPerSecond, &messagesPerSecond)
        try c.take(.messageBurst, &messageBurst); try c.take(.seed, &seed)
        try c.take(.secureSum, &secureSum); try c.take(.keyHolder, &keyHolder)
        thresholdKey = try c.decodeIfPresent(String.self, forKey: .thresholdKey)
        keyHolders = try c.decodeIfPresent([String].self, forKey: .keyHolders)
        privacy = try c.decodeIfPresent(ServicePrivacy.self, forKey: .privacy)
        if adaptiveCompression != nil {
            // With privacy the ring is fixed (privacy.bits; payload_bits in the central mode) and
            // only the subset adapts (Specs/export.md §5.4).
            if privacy == nil, c.contains(.payloadBits) {
                throw ConfigurationError("adaptive_compression chooses each round's ring: not with payload_bits")
            }
            if privacy != nil,
                try c.nestedContainer(keyedBy: ServiceAdaptiveCompression.CodingKeys.self, forKey: .adaptiveCompression)
                    .contains(.minBits)
            {
                throw ConfigurationError(
                    "adaptive_compression.min_bits: with privacy each round's ring is fixed (privacy.bits, or payload_bits in the central mode) and only the subset adapts"
                )
            }
        }
        try c.take(.orchestration, &orchestration)
        asynchronous = try c.decodeIfPresent(ServiceAsynchrony.self, forKey: .asynchronous)
        monitoring = try c.decodeIfPresent(ServiceMonitoring.self, forKey: .monitoring)
        browser = try c.decodeIfPresent(ServiceBrowser.self, forKey: .browser)
        postgres = try c.decodeIfPresent(PostgresSettings.self, forKey: .postgres)
        if postgres != nil, c.contains(.state) {
            throw ConfigurationError("state (a SQLite file) and postgres are two stores: name one")
        }
        hierarchy = try c.decodeIfPresent(ServiceHierarchy.self, forKey: .hierarchy)
    }

    /// Loads a file; relative paths in it are relative to its folder.
    public static func load(path: String) throws -> ServeConfiguration {
        var configuration: ServeConfiguration = try decodeFile(path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        configuration.tls = configuration.tls.resolved(against: base)
        configuration.state = base.resolving(configuration.state)
        configuration.postgres = configuration.postgres?.resolved(against: base)
        if let file = configuration.monitoring?.tokenFile { configuration.monitoring?.tokenFile = base.resolving(file) }
        configuration.thresholdKey = configuration.thresholdKey.map(base.resolving)
        if var browser = configuration.browser {
            browser.certificate = browser.certificate.map(base.resolving)
            browser.key = browser.key.map(base.resolving)
            browser.page = browser.page.map(base.resolving)
            configuration.browser = browser
        }
        try configuration.validate()
        return configuration
    }

    /// The ids of the key holders that may connect: `key_holders`, or the one `key_holder`.
    public var keyHolderIDs: [String] { keyHolders ?? [keyHolder] }

    /// The threshold key of `threshold_key`, checked against `key_holders`, or nil.
    /// - Throws: ``ConfigurationError`` for a file that is not a threshold key with
    ///   verification keys, or whose ℓ is not the number of key holders.
    public func loadThresholdKey() throws -> ThresholdPaillierPublicKey? {
        guard let path = thresholdKey, let keyHolders else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("threshold_key: cannot read \(path)")
        }
        let key: ThresholdPaillierPublicKey
        do { key = try PaillierThresholdFiles.key(from: data) } catch {
            throw ConfigurationError("threshold_key: \(path): \(error)")
        }
        guard key.holders == keyHolders.count else {
            throw ConfigurationError(
                "threshold_key: a key of \(key.holders) holders, but key_holders names \(keyHolders.count)")
        }
        guard key.hasIntersectingQuorums else {
            throw ConfigurationError(
                "threshold_key: a \(key.threshold)-of-\(key.holders) key; masked sessions need 2t > ℓ, so that any two quorums of holders share one (Specs/paillier.md §6.3)"
            )
        }
        guard key.publicKey.s == 1 else {
            throw ConfigurationError(
                "threshold_key: a masked session runs under a Paillier key (s = 1), not s = \(key.publicKey.s)")
        }
        return key
    }

    /// The algorithm with its server settings, built where `veil simulate` builds it.
    public var algorithmChoice: AlgorithmChoice {
        var s = AlgorithmSettings()
        s.proximalMu = proximalMu
        s.serverMomentum = serverMomentum
        s.serverLearningRate = serverLearningRate
        s.beta1 = beta1
        s.beta2 = beta2
        s.tau = tau
        return AlgorithmChoice(algorithm, settings: s)
    }

    /// The algorithm's server state at the start of a federation.
    func initialAlgorithm(_ initial: [Double]) -> FedAvgFamily {
        // Every FedAvgFamilyMember's choice is in the family.
        algorithmChoice.fedAvgFamily(initial: initial)!
    }

    /// The coordinator's own threat model, from which it proposes each session's parameters.
    func coordinatorThreatModel() throws -> ThreatModel {
        try ThreatModel(
            adversary: threatModel.threatModel, corruptFraction: corruptFraction, dropoutFraction: dropoutFraction,
            securityBits: securityBits)
    }

    /// The k of every coordinate subset a round may send, for a payload of `payloadLength`
    /// values: `subset`'s, or each of adaptive compression's fractions below 1.
    func subsetSizes(payloadLength: Int) throws -> Set<Int> {
        let fractions = try subset.map { [$0] } ?? adaptiveCompression?.fractions.filter { $0 < 1 } ?? []
        return Set(fractions.map { CoordinateSubset.size(length: payloadLength, fraction: $0) })
    }

    /// Checks every value; the error names the key.
    public func validate() throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigurationError(why) } }
        func positive(_ value: Double, _ key: String) throws {
            try require(value > 0 && value.isFinite, "\(key) must be positive")
        }
        try require(!federation.isEmpty, "federation must not be empty")
        try require((1...65535).contains(port) || port == 0, "port must be in 0...65535")
        try require(metricsPort.map { (0...65535).contains($0) } ?? true, "metrics_port must be in 0...65535 or null")
        try require(rounds >= 1, "rounds must be at least 1")
        try require(minParticipants >= 2, "min_participants must be at least 2 (a secure sum needs two)")
        try require(cohortSize >= minParticipants, "cohort_size must be at least min_participants")
        if case .tensors = model {
            try require(
                evaluate == nil,
                "evaluate must be null with a tensors: model: the coordinator knows it by its tensors only and cannot run it"
            )
        }
        // Seconds up to a day: a deadline is sent to participants in milliseconds (UInt32).
        func duration(_ value: Double, _ key: String) throws {
            try require(value > 0 && value <= 86_400, "\(key) must be in (0, 86400]")
        }
        try duration(roundDeadlineSeconds, "round_deadline_seconds")
        try duration(trainingDeadlineSeconds, "training_deadline_seconds")
        try duration(registrationTimeoutSeconds, "registration_timeout_seconds")
        try require(maxRoundAttempts >= 1, "max_round_attempts must be at least 1")
        try require(excludeAfterFaults >= 0, "exclude_after_faults must be at least 0 (0: never exclude)")
        try require(features >= 1, "features must be at least 1")
        try require(classes >= 2, "classes must be at least 2")
        try require(localEpochs >= 1, "local_epochs must be at least 1")
        try require(batchSize >= 1, "batch_size must be at least 1")
        try positive(learningRate, "learning_rate")
        try require((0..<1).contains(momentum), "momentum must be in [0, 1)")
        try require(weightDecay >= 0 && weightDecay.isFinite, "weight_decay must be at least 0")
        try require(proximalMu >= 0 && proximalMu.isFinite, "proximal_mu must be at least 0")
        try require((0..<1).contains(serverMomentum), "server_momentum must be in [0, 1)")
        try positive(serverLearningRate, "server_learning_rate")
        try require((0..<1).contains(beta1), "beta1 must be in [0, 1)")
        try require((0..<1).contains(beta2), "beta2 must be in [0, 1)")
        try positive(tau, "tau")
        try positive(weightScale, "weight_scale")
        try require((8...64).contains(payloadBits), "payload_bits must be in 8...64")
        try positive(payloadClip, "payload_clip")
        if let subset {
            try require(subset > 0 && subset <= 1, "subset must be in (0, 1]")
            try require(adaptiveCompression == nil, "adaptive_compression chooses the subset: not with subset")
        }
        try adaptiveCompression?.validate(
            clip: payloadClip, minParticipants: minParticipants, cohortSize: cohortSize, ringIsFixed: privacy != nil)
        do { _ = try coordinatorThreatModel() } catch {
            throw ConfigurationError("corrupt_fraction, dropout_fraction, security_bits: \(error)")
        }
        try require(maxMessageBytes >= 1 << 16, "max_message_bytes must be at least 65536")
        try positive(messagesPerSecond, "messages_per_second")
        try require(messageBurst >= 1, "message_burst must be at least 1")
        do { try FederationCA.validate(id: keyHolder) } catch { throw ConfigurationError("key_holder: \(error)") }
        try require(
            (thresholdKey == nil) == (keyHolders == nil), "threshold_key and key_holders go together, or neither")
        if let keyHolders {
            try require(secureSum == .paillier, "threshold_key and key_holders need secure_sum paillier")
            try require(
                !keyHolders.isEmpty && Set(keyHolders).count == keyHolders.count,
                "key_holders must name each holder once")
            for id in keyHolders {
                do { try FederationCA.validate(id: id) } catch { throw ConfigurationError("key_holders: \(error)") }
            }
        }
        try orchestration.validate()
        try asynchronous?.validate()
        try monitoring?.validate()
        try browser?.validate()
        try postgres?.validate()
        try hierarchy?.validate(self)
        if let browser, browser.port != 0, [metricsPort, port].contains(browser.port) {
            throw ConfigurationError("browser.port \(browser.port) is already the gRPC or the metrics port")
        }
        if let subset, privacy == nil {
            // A subset round's codec clips at payload_clip times the subset's scale (d − 1)/k,
            // which the ring must still hold for a whole cohort: refused here, not every round.
            let length =
                try FederatedModel(model.description, featureCount: features, classCount: classes).parameterCount + 1
            let size = CoordinateSubset.size(length: length, fraction: subset)
            let clip = payloadClip * Double(length - 1) / Double(size)
            do {
                _ = try FixedPointCodec.finest(clip: clip, bitWidth: BitWidth(payloadBits), maxAddends: cohortSize)
            } catch {
                throw ConfigurationError(
                    "subset \(subset): \(size) of \(length - 1) coordinates scaled to payload_clip × \(length - 1)/\(size) do not fit payload_bits \(payloadBits) for \(cohortSize) participants; raise payload_bits, lower payload_clip or raise subset"
                )
            }
        }
        if let privacy {
            try privacy.validate()
            // Every private round builds its codec at payload_bits for the cohort (a subset's
            // values are clipped after scaling, so the clip is not scaled): refused here, not
            // at every round's setup.
            do {
                _ = try FixedPointCodec.finest(
                    clip: payloadClip, bitWidth: BitWidth(payloadBits), maxAddends: cohortSize)
            } catch {
                throw ConfigurationError(
                    "payload_bits \(payloadBits) cannot hold \(cohortSize) payloads clipped to payload_clip \(payloadClip); raise payload_bits or lower payload_clip"
                )
            }
            if privacy.mode != .central {
                try require(
                    secureSum == .secagg,
                    "privacy.mode \(privacy.mode.rawValue) needs secure_sum secagg (the noise shares are summed modulo 2^bits)"
                )
                try require(
                    (privacy.minContributors ?? minParticipants) <= cohortSize,
                    "privacy.min_contributors must be at most cohort_size")
            }
        }
    }
}
