import Foundation
import VeilLearning
import VeilPrivacy

/// `veil join --config FILE`.
public struct JoinConfiguration: Codable, Hashable, Sendable {
    /// The coordinator's address.
    public var host = "127.0.0.1"
    public var port = 7443
    /// Further addresses of the same coordinator, `host:port` — the other `veil serve`
    /// processes of a tier on one PostgreSQL store (`Specs/wire.md` §6.2) — tried in turn,
    /// after `host`:`port`, whenever a connection ends without the federation's end. Every one
    /// must present the coordinator's certificate, as the first must.
    public var failoverAddresses: [String] = []
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
    /// A folder (relative to the configuration file) where it keeps, for every masking session
    /// it takes part in, what it sent and received and the coordinator's receipt for the
    /// round's audit record (`Specs/audit.md` §6); nil: it keeps none.
    public var auditJournal: String?
    /// Reveal the broadcast model's loss on this participant's rows each round, for Oort's
    /// statistical utility (`Specs/orchestration.md` §5.1); nil: reveal nothing.
    public var lossReport: LossReportSettings?
    /// Local training by the user's own program (`Specs/trainer.md`) instead of Veil's trainer
    /// on `dataset`; nil: Veil's.
    public var trainer: TrainerConfiguration?
    /// Example-level DP in Veil's own trainer (DP-SGD, `Specs/privacy.md` §8), with this
    /// participant's example-level ledger; nil: plain SGD.
    public var dpSgd: DPSGDSettings?
    /// Asynchronous federations (`Specs/wire.md` §4.4): a folder (relative to the configuration
    /// file) where it keeps the last model offered and the update it holds, so that it trains
    /// while offline and contributes after a restart; nil: both are kept in memory only.
    public var offlineState: String?
    /// Send the coordinator a `ResourceReport` after each round it took part in (`Specs/wire.md`
    /// §9.2): what this process used (CPU, memory, protocol throughput) and the machine's battery
    /// and GPU readings. false: report nothing beyond the Hello's declared resources.
    public var reportResources = true

    public init(tls: TLSFiles) { self.tls = tls }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, failoverAddresses, coordinator, tls, dataset, partition, clients, index, seed, cores,
            memoryBytes, battery
        case linkBitsPerSecond, reconnectAttempts, privacyBudget, policy, auditJournal, lossReport, trainer, dpSgd
        case offlineState, reportResources
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "the configuration")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(tls: try c.decode(TLSFiles.self, forKey: .tls))
        try c.take(.host, &host); try c.take(.port, &port); try c.take(.failoverAddresses, &failoverAddresses);
        try c.take(.coordinator, &coordinator)
        try c.take(.dataset, &dataset); try c.take(.partition, &partition)
        try c.take(.clients, &clients); try c.take(.index, &index); try c.take(.seed, &seed)
        cores = try c.decodeIfPresent(Int.self, forKey: .cores)
        memoryBytes = try c.decodeIfPresent(UInt64.self, forKey: .memoryBytes)
        battery = try c.decodeIfPresent(Double.self, forKey: .battery)
        linkBitsPerSecond = try c.decodeIfPresent(UInt64.self, forKey: .linkBitsPerSecond)
        try c.take(.reconnectAttempts, &reconnectAttempts)
        privacyBudget = try c.decodeIfPresent(ParticipantBudget.self, forKey: .privacyBudget)
        try c.take(.policy, &policy)
        auditJournal = try c.decodeIfPresent(String.self, forKey: .auditJournal)
        lossReport = try c.decodeIfPresent(LossReportSettings.self, forKey: .lossReport)
        trainer = try c.decodeIfPresent(TrainerConfiguration.self, forKey: .trainer)
        dpSgd = try c.decodeIfPresent(DPSGDSettings.self, forKey: .dpSgd)
        offlineState = try c.decodeIfPresent(String.self, forKey: .offlineState)
        try c.take(.reportResources, &reportResources)
        if trainer != nil, let key = [CodingKeys.dataset, .partition, .clients, .index, .seed].first(where: c.contains)
        {
            throw ConfigurationError(
                "\(snakeCase(key.stringValue)) is not used with a trainer: the trainer reads its own data (trainer.data)"
            )
        }
    }

    /// Every address of the coordinator, in the order they are tried: `host`:`port`, then
    /// `failover_addresses`.
    public var addresses: [(host: String, port: Int)] {
        [(host, port)] + failoverAddresses.compactMap(Self.address)
    }

    /// `host:port` (an IPv6 host in brackets, the port in decimal digits), or nil.
    public static func address(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let digits = text[text.index(after: colon)...]
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ ("0"..."9").contains($0) }),
            let port = Int(digits), (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            return nil  // an IPv6 address without brackets: which colon ends it?
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == " " || $0 == "[" || $0 == "]" }) else {
            return nil
        }
        return (host, port)
    }

    public static func load(path: String) throws -> JoinConfiguration {
        var configuration: JoinConfiguration = try decodeFile(path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        configuration.tls = configuration.tls.resolved(against: base)
        guard configuration.clients >= 1 else { throw ConfigurationError("clients must be at least 1") }
        guard (0..<configuration.clients).contains(configuration.index) else {
            throw ConfigurationError("index must be in 0..<clients")
        }
        guard (1...65535).contains(configuration.port) else { throw ConfigurationError("port must be in 1...65535") }
        guard configuration.failoverAddresses.count <= 64 else {
            throw ConfigurationError("failover_addresses: at most 64")
        }
        for (i, address) in configuration.failoverAddresses.enumerated() where Self.address(address) == nil {
            throw ConfigurationError("failover_addresses.\(i): \"\(address)\" is not host:port (a port in 1...65535)")
        }
        if let cores = configuration.cores, !(1...1_048_576).contains(cores) {
            throw ConfigurationError("cores must be in 1...1048576")
        }
        if let battery = configuration.battery, !(battery == -1 || (0...1).contains(battery)) {
            throw ConfigurationError("battery must be in [0, 1], or -1 (mains power)")
        }
        guard configuration.reconnectAttempts >= 0 else {
            throw ConfigurationError("reconnect_attempts must be at least 0")
        }
        try configuration.policy.validate()
        if let folder = configuration.offlineState {
            guard !folder.isEmpty else { throw ConfigurationError("offline_state must name a folder") }
            configuration.offlineState = base.resolving(folder)
        }
        if let journal = configuration.auditJournal {
            guard !journal.isEmpty else { throw ConfigurationError("audit_journal must name a folder") }
            configuration.auditJournal = base.resolving(journal)
        }
        if let report = configuration.lossReport {
            try report.validate()
            guard configuration.privacyBudget == nil else {
                throw ConfigurationError(
                    "loss_report and privacy_budget are exclusive: the loss is revealed outside the secure sum, and the budget's ledger does not account for it"
                )
            }
        }
        if var trainer = configuration.trainer {
            try trainer.validate()
            guard configuration.lossReport == nil else {
                throw ConfigurationError(
                    "loss_report needs Veil's own trainer: an external trainer's loss is not Veil's to compute")
            }
            trainer.workDirectory = trainer.workDirectory.map(base.resolving)
            trainer.runDirectory = base.path
            configuration.trainer = trainer
        }
        if var settings = configuration.dpSgd {
            try settings.validate()
            guard configuration.trainer == nil else {
                throw ConfigurationError(
                    "dp_sgd is for Veil's own trainer: an external trainer applies its own example-level privacy")
            }
            guard configuration.lossReport == nil else {
                throw ConfigurationError(
                    "loss_report and dp_sgd are exclusive: the loss is revealed outside DP-SGD's accounting")
            }
            settings.ledger = base.resolving(settings.ledger)
            configuration.dpSgd = settings
        }
        if var budget = configuration.privacyBudget {
            try budget.validate()
            budget.ledger = base.resolving(budget.ledger)
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

/// join.json's `dp_sgd`: DP-SGD in local training (`Specs/privacy.md` §8) — per-example clipping
/// to `clip`, Gaussian noise of σ = `noise_multiplier` times it, Poisson-sampled batches — and
/// the example-level (ε, δ) this participant has spent, kept in `ledger`; with `epsilon`, a
/// round that would take it past that is declined.
public struct DPSGDSettings: Codable, Hashable, Sendable {
    public var noiseMultiplier: Double
    public var clip = 1.0
    public var delta = 1e-5
    /// The example-level budget; nil: spending is kept and reported, never refused.
    public var epsilon: Double?
    /// The JSON file of the example-level ledger (relative to the configuration file).
    public var ledger = "example-ledger.json"

    public init(
        noiseMultiplier: Double, clip: Double = 1, delta: Double = 1e-5, epsilon: Double? = nil,
        ledger: String = "example-ledger.json"
    ) {
        self.noiseMultiplier = noiseMultiplier
        self.clip = clip
        self.delta = delta
        self.epsilon = epsilon
        self.ledger = ledger
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case noiseMultiplier, clip, delta, epsilon, ledger }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "dp_sgd")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        noiseMultiplier = try c.decode(Double.self, forKey: .noiseMultiplier)
        try c.take(.clip, &clip); try c.take(.delta, &delta); try c.take(.ledger, &ledger)
        epsilon = try c.decodeIfPresent(Double.self, forKey: .epsilon)
    }

    /// Refuses a setting out of range, by its key.
    public func validate() throws {
        guard noiseMultiplier >= 0.1, noiseMultiplier <= 1000 else {
            throw ConfigurationError("dp_sgd.noise_multiplier must be in [0.1, 1000]")
        }
        guard clip > 0, clip.isFinite else { throw ConfigurationError("dp_sgd.clip must be positive") }
        guard delta > 0, delta < 1 else { throw ConfigurationError("dp_sgd.delta must be in (0, 1)") }
        if let epsilon {
            guard epsilon > 0, epsilon.isFinite else { throw ConfigurationError("dp_sgd.epsilon must be positive") }
        }
        guard !ledger.isEmpty else { throw ConfigurationError("dp_sgd.ledger must name a file") }
    }

    public var privacy: ExampleLevelPrivacy { ExampleLevelPrivacy(noiseMultiplier: noiseMultiplier, clip: clip) }
}

/// join.json's `loss_report`: the participant reveals, each round, the broadcast model's mean
/// loss on its own rows, clipped to [0, `clip`], on a grid of 2⁻¹⁶, with discrete Gaussian
/// noise of standard deviation `noise` (in loss units; 0: none) — `Specs/orchestration.md` §5.1.
public struct LossReportSettings: Codable, Hashable, Sendable {
    public var clip = 10.0
    public var noise = 0.0
    /// The most reports this participant process sends (one per round number); past it, it
    /// reveals nothing more.
    public var maxReports = 100

    public init(clip: Double = 10, noise: Double = 0, maxReports: Int = 100) {
        self.clip = clip
        self.noise = noise
        self.maxReports = maxReports
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case clip, noise, maxReports }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "loss_report")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.take(.clip, &clip); try c.take(.noise, &noise); try c.take(.maxReports, &maxReports)
    }

    /// The report's grid: 2⁻¹⁶ of a loss unit.
    static let gridScale = 65536.0

    func validate() throws {
        guard clip > 0, clip <= 1_000_000 else { throw ConfigurationError("loss_report.clip must be in (0, 1000000]") }
        // The sampler's σ is at least one grid step (a smaller one rounds to no variance) and
        // at most 2^26 of them.
        guard noise == 0 || (noise >= 1 / Self.gridScale && noise <= 1024) else {
            throw ConfigurationError("loss_report.noise must be 0 or in [2^-16, 1024]")
        }
        guard maxReports >= 1 else { throw ConfigurationError("loss_report.max_reports must be at least 1") }
    }

    /// What is revealed for a mean loss `loss` under a clip C (the smaller of `clip` and the
    /// assignment's): ⌊clamp(loss, 0, C) · 2¹⁶⌉ plus a discrete Gaussian draw of variance
    /// (noise · 2¹⁶)², over 2¹⁶. A loss that is not a number counts as C. Its sensitivity is
    /// ⌈C · 2¹⁶⌉ grid steps, so one report is ρ-zCDP with ρ = ⌈C · 2¹⁶⌉² / (2 (noise · 2¹⁶)²)
    /// (Canonne, Kamath and Steinke 2020).
    func report(_ loss: Double, clip: Double, using generator: inout some RandomNumberGenerator) -> Double {
        let clipped = loss.isNaN ? clip : min(max(loss, 0), clip)
        var steps = (clipped * Self.gridScale).rounded()
        if noise > 0 {
            let variance = (noise * Self.gridScale) * (noise * Self.gridScale)
            // validate() keeps the variance within the sampler's range.
            steps += Double(try! DiscreteGaussian(variance: variance).sample(using: &generator))
        }
        return steps / Self.gridScale
    }
}
