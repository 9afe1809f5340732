import Foundation
import VeilCrypto
import VeilLearning
import VeilSecAgg
import X509

/// Why a configuration file was refused.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The certificate files of one holder, and the federation's CA.
public struct TLSFiles: Codable, Hashable, Sendable {
    /// The federation CA's certificate (PEM).
    public var ca: String
    /// This holder's certificate (PEM).
    public var certificate: String
    /// This holder's P-256 TLS key (PEM).
    public var key: String
    /// This holder's Ed25519 signing key (hex seed).
    public var signingKey: String

    public init(ca: String, certificate: String, key: String, signingKey: String) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
        self.signingKey = signingKey
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case ca, certificate, key, signingKey }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "tls")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(
            ca: c.decode(String.self, forKey: .ca), certificate: c.decode(String.self, forKey: .certificate),
            key: c.decode(String.self, forKey: .key), signingKey: c.decode(String.self, forKey: .signingKey))
    }

    /// The files `veil ca issue` wrote for `id` in `directory`.
    public init(directory: String, id: String) {
        let d = URL(fileURLWithPath: directory)
        self.init(
            ca: d.appendingPathComponent("ca.cert.pem").path,
            certificate: d.appendingPathComponent("\(id).cert.pem").path,
            key: d.appendingPathComponent("\(id).key.pem").path,
            signingKey: d.appendingPathComponent("\(id).signing.key").path)
    }

    /// Loads and checks the holder's credentials: the CA certificate, this holder's certificate
    /// (issued by the CA, valid, with `role`), and the signing key it binds.
    func credentials(role: FederationRole) throws -> (
        ca: Certificate, identity: FederationIdentity, signingKey: Ed25519.PrivateKey
    ) {
        let ca = try FederationCA.loadCertificate(self.ca)
        let identity = try FederationIdentity(certificate: try FederationCA.loadCertificate(certificate), ca: ca)
            .requiring(role)
        let key = try loadSigningKey(signingKey)
        guard key.publicKey == identity.signingKey else {
            throw ConfigurationError("the signing key \(signingKey) does not match the one the certificate binds")
        }
        return (ca, identity, key)
    }

    /// Relative paths are relative to the configuration file's folder.
    func resolved(against base: URL) -> TLSFiles {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") ? path : base.appendingPathComponent(path).standardizedFileURL.path
        }
        return TLSFiles(
            ca: resolve(ca), certificate: resolve(certificate), key: resolve(key), signingKey: resolve(signingKey))
    }
}

/// How the coordinator picks each round's cohort.
public enum SelectionStrategy: String, Codable, Hashable, Sendable, CaseIterable {
    /// Uniformly at random among the connected participants.
    case random
    /// Those who have completed the fewest rounds first (ties by id): everyone takes turns.
    case roundRobin = "round-robin"
    /// Highest score first: cores, memory, battery and link, each normalised (`Specs/wire.md` §5).
    case resourceAware = "resource-aware"
}

/// Differential privacy in the service: participants clip; the coordinator adds Gaussian
/// noise to each round's sum (`central`, `Specs/wire.md` §4.2) or each participant adds its
/// share of integer noise inside the secure sum (`ddg`, `skellam`, §4.3); a ledger in the
/// store keeps what each participant has spent.
public struct ServicePrivacy: Codable, Hashable, Sendable {
    /// Who adds the noise.
    public enum Mode: String, Codable, Hashable, Sendable, CaseIterable {
        case central, ddg, skellam
    }

    public var mode: Mode = .central
    /// The (ε, δ) a participant that contributes to every one of `rounds` rounds ends with:
    /// the noise is calibrated to it, without amplification by sampling (the coordinator
    /// chooses the cohort, so no sampling randomness is hidden from it).
    public var epsilon: Double
    public var delta = 1e-5
    /// C: the L2 bound on each participant's update.
    public var clip = 1.0
    /// Each participant's ε budget (at `delta`), across rounds and runs; nil: `epsilon`.
    public var participantBudget: Double?
    /// Alert when a participant has spent this fraction of its budget.
    public var alertFraction = 0.8
    /// `ddg`/`skellam`: the secure sum's modulus 2^bits.
    public var bits = 20
    /// `ddg`/`skellam`: the fewest noise shares a released sum carries — the secure sum's
    /// threshold is raised to it, so no sum with fewer can be unmasked. nil: `min_participants`.
    public var minContributors: Int?

    public init(epsilon: Double, mode: Mode = .central) {
        self.epsilon = epsilon
        self.mode = mode
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case mode, epsilon, delta, clip, participantBudget, alertFraction, bits, minContributors
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "privacy")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(epsilon: try c.decode(Double.self, forKey: .epsilon))
        try c.take(.mode, &mode); try c.take(.bits, &bits)
        minContributors = try c.decodeIfPresent(Int.self, forKey: .minContributors)
        try c.take(.delta, &delta); try c.take(.clip, &clip)
        participantBudget = try c.decodeIfPresent(Double.self, forKey: .participantBudget)
        try c.take(.alertFraction, &alertFraction)
    }

    /// The budget the ledger applies.
    public var budget: Double { participantBudget ?? epsilon }

    func validate() throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigurationError(why) } }
        try require(epsilon > 0 && epsilon.isFinite, "privacy.epsilon must be positive")
        try require(delta > 0 && delta < 1, "privacy.delta must be in (0, 1)")
        try require(clip > 0 && clip.isFinite, "privacy.clip must be positive")
        try require(budget > 0 && budget.isFinite, "privacy.participant_budget must be positive")
        try require(alertFraction > 0 && alertFraction <= 1, "privacy.alert_fraction must be in (0, 1]")
        try require((8...62).contains(bits), "privacy.bits must be in 8...62")
        try require((minContributors ?? 1) >= 1, "privacy.min_contributors must be at least 1")
    }
}

/// `veil serve --config FILE`: every key is optional; the defaults are in `Specs/wire.md` §7.
public struct ServeConfiguration: Codable, Hashable, Sendable {
    public var federation = "veil"
    public var host = "127.0.0.1"
    /// 0 picks a free port (printed at start).
    public var port = 7443
    /// The Prometheus/status HTTP port; nil disables it.
    public var metricsPort: Int? = 9464
    public var tls: TLSFiles
    /// The SQLite file of the coordinator's state.
    public var state = "coordinator.sqlite"
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
    /// The model: softmax, or mlp:H1,H2,…
    public var model = "softmax"
    public var features = 64
    public var classes = 10
    public var algorithm = "fedavg"
    public var localEpochs = 1
    public var batchSize = 32
    public var learningRate = 0.1
    public var momentum = 0.0
    public var weightDecay = 0.0
    public var proximalMu = 0.01
    public var serverMomentum = 0.9
    public var serverLearningRate = 0.1
    /// Rows per participant at most (weights are n_k / this).
    public var weightScale = 1000.0
    /// The payload ring Z_2^bits and the clip of each payload entry.
    public var payloadBits = 64
    public var payloadClip = 1024.0
    /// How rounds are summed: `secagg` (pairwise masking) or `paillier` (encryption under the
    /// key that the key holder `key_holder` announces, signed; it alone decrypts).
    public var secureSum = "secagg"
    public var keyHolder = "key-holder"
    /// The coordinator's own threat model, from which it proposes parameters; each participant
    /// checks them against its own policy, whose default is the malicious model too.
    public var threatModel = "malicious"
    public var corruptFraction = 0.05
    public var dropoutFraction = 0.1
    public var securityBits = 40
    /// Evaluate the global model after each round on this dataset's test split (digits), or none.
    public var evaluate: String? = "digits"
    /// Message limits: the largest message, and each participant's rate (token bucket).
    public var maxMessageBytes = 64 << 20
    public var messagesPerSecond = 200.0
    public var messageBurst = 2000.0
    public var seed: UInt64 = 0
    /// Central differential privacy; nil: none.
    public var privacy: ServicePrivacy?

    public init(tls: TLSFiles) { self.tls = tls }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case federation, host, port, metricsPort, tls, state, rounds, minParticipants, cohortSize, selection
        case roundDeadlineSeconds, trainingDeadlineSeconds, registrationTimeoutSeconds, maxRoundAttempts, model
        case features, classes
        case algorithm, localEpochs, batchSize, learningRate, momentum, weightDecay, proximalMu, serverMomentum
        case serverLearningRate, weightScale, payloadBits, payloadClip, threatModel, corruptFraction, dropoutFraction
        case securityBits, evaluate, maxMessageBytes, messagesPerSecond, messageBurst, seed
        case secureSum, keyHolder, privacy
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
        try c.take(.maxRoundAttempts, &maxRoundAttempts)
        try c.take(.features, &features); try c.take(.classes, &classes); try c.take(.algorithm, &algorithm)
        try c.take(.localEpochs, &localEpochs); try c.take(.batchSize, &batchSize); try c.take(.learningRate, &learningRate)
        try c.take(.momentum, &momentum); try c.take(.weightDecay, &weightDecay); try c.take(.proximalMu, &proximalMu)
        try c.take(.serverMomentum, &serverMomentum); try c.take(.serverLearningRate, &serverLearningRate)
        try c.take(.weightScale, &weightScale); try c.take(.payloadBits, &payloadBits); try c.take(.payloadClip, &payloadClip)
        try c.take(.threatModel, &threatModel); try c.take(.corruptFraction, &corruptFraction)
        try c.take(.dropoutFraction, &dropoutFraction); try c.take(.securityBits, &securityBits)
        if c.contains(.evaluate) { evaluate = try c.decodeIfPresent(String.self, forKey: .evaluate) }
        try c.take(.maxMessageBytes, &maxMessageBytes); try c.take(.messagesPerSecond, &messagesPerSecond)
        try c.take(.messageBurst, &messageBurst); try c.take(.seed, &seed)
        try c.take(.secureSum, &secureSum); try c.take(.keyHolder, &keyHolder)
        privacy = try c.decodeIfPresent(ServicePrivacy.self, forKey: .privacy)
    }

    /// Loads a file; relative paths in it are relative to its folder.
    public static func load(path: String) throws -> ServeConfiguration {
        var configuration: ServeConfiguration = try decodeFile(path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        configuration.tls = configuration.tls.resolved(against: base)
        if !configuration.state.hasPrefix("/") {
            configuration.state = base.appendingPathComponent(configuration.state).path
        }
        try configuration.validate()
        return configuration
    }

    /// The algorithms the service runs: the FedAvg family, whose state it checkpoints.
    public static let algorithms = ["fedavg", "fedavgm", "fedprox", "fedadagrad", "fedadam", "fedyogi"]

    public func validate() throws {
        func require(_ ok: Bool, _ why: String) throws { if !ok { throw ConfigurationError(why) } }
        try require(rounds >= 1, "rounds must be at least 1")
        try require(minParticipants >= 2, "min_participants must be at least 2 (a secure sum needs two)")
        try require(cohortSize >= minParticipants, "cohort_size must be at least min_participants")
        try require((1...65535).contains(port) || port == 0, "port must be in 0...65535")
        try require(roundDeadlineSeconds > 0 && trainingDeadlineSeconds > 0, "deadlines must be positive")
        try require(maxRoundAttempts >= 1, "max_round_attempts must be at least 1")
        try require(
            Self.algorithms.contains(algorithm), "algorithm must be one of \(Self.algorithms.joined(separator: ", "))")
        try require(
            ["honest-but-curious", "malicious"].contains(threatModel),
            "threat_model must be honest-but-curious or malicious")
        try require((8...64).contains(payloadBits), "payload_bits must be in 8...64")
        try require(maxMessageBytes >= 1 << 16, "max_message_bytes must be at least 65536")
        try require(messagesPerSecond > 0 && messageBurst >= 1, "message limits must be positive")
        try require(features >= 1 && classes >= 2, "features ≥ 1 and classes ≥ 2")
        try require(evaluate == nil || evaluate == "digits", "evaluate must be digits or null")
        try require(["secagg", "paillier"].contains(secureSum), "secure_sum must be secagg or paillier")
        if let privacy {
            try privacy.validate()
            if privacy.mode != .central {
                try require(
                    secureSum == "secagg",
                    "privacy.mode \(privacy.mode.rawValue) needs secure_sum secagg (the noise shares are summed modulo 2^bits)"
                )
                try require(
                    (privacy.minContributors ?? minParticipants) <= cohortSize,
                    "privacy.min_contributors must be at most cohort_size")
            }
        }
    }
}

/// `veil join --config FILE`.
public struct JoinConfiguration: Codable, Hashable, Sendable {
    /// The coordinator's address.
    public var host = "127.0.0.1"
    public var port = 7443
    /// The coordinator's id: its certificate must name it (TLS server name verification).
    public var coordinator = "coordinator"
    public var tls: TLSFiles
    /// This participant's data: `digits` with `partition`, `clients` and `index` (the same split
    /// as `veil simulate`), or `csv:PATH` (the whole file is this participant's).
    public var dataset = "digits"
    public var partition = "dirichlet:0.5"
    public var clients = 10
    public var index = 0
    public var seed: UInt64 = 0
    /// Reported resources; nil: read from this machine (cores, memory), mains power, unknown link.
    public var cores: Int?
    public var memoryBytes: UInt64?
    public var battery: Double?
    public var linkBitsPerSecond: UInt64?
    /// Reconnect after a lost connection, this many times (with backoff).
    public var reconnectAttempts = 20
    /// This participant's own privacy budget (`Specs/wire.md` §4.3): with one, it takes part
    /// only in rounds whose noise it adds itself and can cost; nil: it sets no privacy limit.
    public var privacyBudget: ParticipantBudget?
    /// What it requires of every round (`Specs/wire.md` §3.1).
    public var policy = ParticipantPolicy()

    public init(tls: TLSFiles) { self.tls = tls }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, coordinator, tls, dataset, partition, clients, index, seed, cores, memoryBytes, battery
        case linkBitsPerSecond, reconnectAttempts, privacyBudget, policy
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "the configuration")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(tls: try c.decode(TLSFiles.self, forKey: .tls))
        try c.take(.host, &host); try c.take(.port, &port); try c.take(.coordinator, &coordinator)
        try c.take(.dataset, &dataset); try c.take(.partition, &partition)
        try c.take(.clients, &clients); try c.take(.index, &index); try c.take(.seed, &seed)
        cores = try c.decodeIfPresent(Int.self, forKey: .cores)
        memoryBytes = try c.decodeIfPresent(UInt64.self, forKey: .memoryBytes)
        battery = try c.decodeIfPresent(Double.self, forKey: .battery)
        linkBitsPerSecond = try c.decodeIfPresent(UInt64.self, forKey: .linkBitsPerSecond)
        try c.take(.reconnectAttempts, &reconnectAttempts)
        privacyBudget = try c.decodeIfPresent(ParticipantBudget.self, forKey: .privacyBudget)
        try c.take(.policy, &policy)
    }

    public static func load(path: String) throws -> JoinConfiguration {
        var configuration: JoinConfiguration = try decodeFile(path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        configuration.tls = configuration.tls.resolved(against: base)
        guard (0..<max(configuration.clients, 1)).contains(configuration.index) else {
            throw ConfigurationError("index must be in 0..<clients")
        }
        try configuration.policy.validate()
        if var budget = configuration.privacyBudget {
            try budget.validate()
            if !budget.ledger.hasPrefix("/") { budget.ledger = base.appendingPathComponent(budget.ledger).path }
            configuration.privacyBudget = budget
        }
        return configuration
    }
}

/// A participant's own (ε, δ) budget, enforced by the participant on the mechanism it is
/// asked to run, whatever the coordinator's ledger says; what it has spent is kept in a file.
/// A round it cannot cost — no distributed-DP plan, or noise the coordinator adds after the
/// sum — costs ε = ∞ and is declined.
public struct ParticipantBudget: Codable, Hashable, Sendable {
    public var epsilon: Double
    public var delta = 1e-5
    /// The JSON file of this participant's ledger (relative to the configuration file).
    public var ledger = "privacy-ledger.json"
    /// The most one round may cost (at `delta`); nil: only the total budget limits a round.
    public var maxRoundEpsilon: Double?

    public init(epsilon: Double, delta: Double = 1e-5, ledger: String, maxRoundEpsilon: Double? = nil) {
        self.epsilon = epsilon
        self.delta = delta
        self.ledger = ledger
        self.maxRoundEpsilon = maxRoundEpsilon
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case epsilon, delta, ledger, maxRoundEpsilon }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "privacy_budget")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        epsilon = try c.decode(Double.self, forKey: .epsilon)
        try c.take(.delta, &delta); try c.take(.ledger, &ledger)
        maxRoundEpsilon = try c.decodeIfPresent(Double.self, forKey: .maxRoundEpsilon)
    }

    func validate() throws {
        guard epsilon > 0, epsilon.isFinite else { throw ConfigurationError("privacy_budget.epsilon must be positive") }
        guard delta > 0, delta < 1 else { throw ConfigurationError("privacy_budget.delta must be in (0, 1)") }
        if let cap = maxRoundEpsilon {
            guard cap > 0, cap.isFinite else {
                throw ConfigurationError("privacy_budget.max_round_epsilon must be positive")
            }
        }
    }
}

func decodeFile<T: Decodable>(_ path: String) throws -> T {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConfigurationError("cannot read the configuration file \(path)")
    }
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    do { return try decoder.decode(T.self, from: data) } catch let error as DecodingError {
        throw ConfigurationError("\(path): \(describe(error))")
    }
}

func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "missing key \(path(context).isEmpty ? "" : path(context) + ".")\(key.stringValue)"
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "wrong type at \(path(context)): \(context.debugDescription)"
    case .dataCorrupted(let context): return "invalid \(path(context)): \(context.debugDescription)"
    @unknown default: return "\(error)"
    }
}

extension KeyedDecodingContainer {
    /// Decodes `key` into `value` when the file has it; otherwise `value` keeps its default.
    func take<T: Decodable>(_ key: Key, _ value: inout T) throws {
        if let v = try decodeIfPresent(T.self, forKey: key) { value = v }
    }
}

/// Any key of a JSON object.
private struct AnyKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Refuses an object with a key its type does not know, naming the key as the file spells it.
func refuseUnknownKeys<Keys: CodingKey & CaseIterable>(_ decoder: any Decoder, _: Keys.Type, in section: String) throws {
    let known = Set(Keys.allCases.map(\.stringValue))
    let container = try decoder.container(keyedBy: AnyKey.self)
    if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
        let spelled = unknown.reduce(into: "") { out, c in
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        throw ConfigurationError("\(section): unknown key \"\(spelled)\"")
    }
}

/// `veil keyholder --config FILE`: the party that holds the Paillier secret key.
public struct KeyHolderConfiguration: Codable, Hashable, Sendable {
    public var host = "127.0.0.1"
    public var port = 7443
    public var coordinator = "coordinator"
    public var tls: TLSFiles
    /// The secret key file of `veil paillier keygen`.
    public var secretKey: String
    /// Aggregates of fewer contributions are refused.
    public var minimumContributors = 3
    /// The packing the key holder accepts: b and the most addends K.
    public var bits = 64
    public var maxAddends = 1000
    public var reconnectAttempts = 20
    /// The file of what it has decrypted (JSON lines): read at start, appended before each answer.
    public var record = "decryptions.jsonl"

    public init(tls: TLSFiles, secretKey: String) {
        self.tls = tls
        self.secretKey = secretKey
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, coordinator, tls, secretKey, minimumContributors, bits, maxAddends, reconnectAttempts, record
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "the configuration")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            tls: try c.decode(TLSFiles.self, forKey: .tls), secretKey: try c.decode(String.self, forKey: .secretKey))
        try c.take(.host, &host); try c.take(.port, &port); try c.take(.coordinator, &coordinator)
        try c.take(.minimumContributors, &minimumContributors); try c.take(.bits, &bits); try c.take(.maxAddends, &maxAddends)
        try c.take(.reconnectAttempts, &reconnectAttempts); try c.take(.record, &record)
    }

    public static func load(path: String) throws -> KeyHolderConfiguration {
        var configuration: KeyHolderConfiguration = try decodeFile(path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        configuration.tls = configuration.tls.resolved(against: base)
        if !configuration.secretKey.hasPrefix("/") {
            configuration.secretKey = base.appendingPathComponent(configuration.secretKey).path
        }
        if !configuration.record.hasPrefix("/") {
            configuration.record = base.appendingPathComponent(configuration.record).path
        }
        guard configuration.minimumContributors >= SecAggParameters.thresholdFloor else {
            throw ConfigurationError("minimum_contributors must be at least 2: a sum of one is that one's input")
        }
        return configuration
    }
}
