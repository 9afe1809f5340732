import Foundation
import Logging
import VeilLearning
import VeilPaillier
import VeilSecAgg

/// `veil simulate` on the network: a temporary CA, a coordinator and N participants in one
/// process, talking gRPC over loopback with real mutual TLS — the same code `veil serve` and
/// `veil join` run, only started together. The federation is built here; VeilTransport runs it
/// (`run(logger:ready:progress:)`).
public struct NetworkSimulation: Sendable {
    public var serve: ServeConfiguration
    public var participants: [(join: JoinConfiguration, data: Dataset)]
    public let directory: URL
    /// The key holder, in Paillier federations — or the threshold key's ℓ holders.
    public var keyHolders: [KeyHolderConfiguration]
    /// Participants (by index) to fail on purpose: see ``ParticipantAgent/failure``.
    public var failures: [Int: (round: UInt64, messages: Int)] = [:]
    /// Those of `failures` that reconnect after failing, and take part again.
    public var rejoining: Set<Int> = []
    /// Participants (by index) that misbehave: see ``ParticipantAgent/misbehaviour``.
    public var misbehaviours: [Int: ParticipantAgent.Misbehaviour] = [:]

    /// Builds the federation for a learning configuration: issues the certificates, splits the data.
    /// - Throws: ``ConfigurationError`` for what the network path does not run.
    /// - Parameters:
    ///   - paillierBits: sum by Paillier encryption with a key of this size (a key holder
    ///     joins), instead of secure aggregation.
    ///   - thresholdHolders: with `paillierBits`, a t-of-ℓ threshold key dealt here (ℓ key
    ///     holders join, each with its share; `Specs/paillier.md` §6.3) instead of one key holder.
    public init(
        configuration c: FederatedConfiguration, directory: URL, roundDeadlineSeconds: Double = 30,
        paillierBits: Int? = nil, thresholdHolders: (t: Int, l: Int)? = nil
    ) throws {
        if let threshold = thresholdHolders {
            guard paillierBits != nil else {
                throw ConfigurationError("threshold key holders need a Paillier key size")
            }
            guard threshold.t >= 2, 2 * threshold.t > threshold.l, threshold.t <= threshold.l,
                threshold.l <= ThresholdPaillierPublicKey.maxHolders
            else {
                throw ConfigurationError(
                    "threshold key holders: need 2 ≤ t ≤ ℓ ≤ \(ThresholdPaillierPublicKey.maxHolders) and 2t > ℓ, got \(threshold.t) of \(threshold.l)"
                )
            }
        }
        // FedBuff is FedAvg's server rule over buffers of held updates (Specs/wire.md §4.4).
        let buffer: Int?
        if case .fedBuff(let size, _) = c.algorithm { buffer = size } else { buffer = nil }
        guard let algorithm = buffer != nil ? .fedavg : c.algorithm.fedAvgFamilyMember else {
            throw ConfigurationError(
                "the network federation runs the FedAvg family (\(FedAvgFamilyMember.allCases.map(\.rawValue).joined(separator: ", "))), not \(c.algorithm.name)"
            )
        }
        if let why = Self.privacyBlocker(c, paillier: paillierBits != nil) { throw ConfigurationError(why) }
        guard c.stragglerFraction == 0 else { throw ConfigurationError("stragglers run in-process only") }
        guard case .digits = c.dataset else { throw ConfigurationError("the network federation trains on digits") }
        let simulation = try FederatedSimulation(configuration: c)
        let ca = try FederationCA.create(in: directory)
        _ = try ca.issue(id: "coordinator", role: .coordinator)
        let cohort = simulation.cohortSize
        var serve = ServeConfiguration(tls: TLSFiles(directory: directory.path, id: "coordinator"))
        serve.port = 0
        serve.metricsPort = nil
        serve.state = directory.appendingPathComponent("coordinator.sqlite").path
        serve.rounds = c.rounds
        serve.minParticipants = max(buffer ?? cohort, 2)
        serve.cohortSize = max(buffer ?? cohort, 2)
        if buffer != nil { serve.asynchronous = ServiceAsynchrony() }
        serve.roundDeadlineSeconds = roundDeadlineSeconds
        serve.trainingDeadlineSeconds = max(roundDeadlineSeconds, 60)
        serve.registrationTimeoutSeconds = 60
        serve.model = try ModelArchitecture(parsing: c.model)
        serve.features = simulation.data.featureCount
        serve.classes = simulation.data.classCount
        serve.algorithm = algorithm
        serve.localEpochs = c.localEpochs
        serve.batchSize = c.batchSize
        serve.learningRate = c.learningRate
        serve.momentum = c.momentum
        serve.weightDecay = c.weightDecay
        serve.weightScale = Double(simulation.data.clients.map(\.count).max() ?? 1)
        serve.payloadBits = c.payloadBits
        serve.payloadClip = c.payloadClip
        serve.subset = c.subset
        serve.seed = c.seed
        if let p = c.privacy {
            // Everyone every round (q = 1): the service's accounting is the in-process one.
            var privacy = ServicePrivacy(epsilon: p.epsilon, mode: ServicePrivacy.Mode(rawValue: p.mode.rawValue)!)
            privacy.delta = p.delta
            privacy.clip = p.clip
            privacy.participantBudget = p.participantBudget
            // Without --dp-budget the in-process engine sets no limit and raises no alert; the
            // service's budget is then the run's ε, which the calibrated run never passes.
            privacy.alertFraction = p.participantBudget == nil ? 1 : p.alertFraction
            privacy.bits = p.bits
            // As in-process at q = 1: every participant's share in every released sum.
            privacy.minContributors = p.minimumParticipants ?? cohort
            serve.privacy = privacy
        }
        // Every setting of the algorithm goes to the coordinator: a flag the network path
        // dropped would silently run another algorithm than the one asked for.
        switch c.algorithm {
        case .fedProx(let mu): serve.proximalMu = mu
        case .fedAvgM(let beta): serve.serverMomentum = beta
        case .fedAdagrad(let eta, let tau): (serve.serverLearningRate, serve.tau) = (eta, tau)
        case .fedAdam(let eta, let b1, let b2, let tau), .fedYogi(let eta, let b1, let b2, let tau):
            (serve.serverLearningRate, serve.beta1, serve.beta2, serve.tau) = (eta, b1, b2, tau)
        default: break
        }
        var thresholdIDs: [String]?
        if let bits = paillierBits {
            serve.secureSum = .paillier
            var holders: [KeyHolderConfiguration] = []
            if let threshold = thresholdHolders {
                // The trusted dealer of `veil paillier deal`, in-process: the key file and one
                // 0600 share file per holder, then forgotten.
                let (key, shares) = try ThresholdPaillierDealer.deal(
                    bits: bits, threshold: threshold.t, holders: threshold.l)
                let keyPath = directory.appendingPathComponent("threshold.json")
                try PaillierThresholdFiles.keyFile(key).write(to: keyPath)
                let ids = (1...threshold.l).map { "key-holder-\($0)" }
                for (id, share) in zip(ids, shares) {
                    let sharePath = directory.appendingPathComponent("share-\(share.holder).json")
                    try FederationCA.writeSecret(
                        String(decoding: try PaillierThresholdFiles.shareFile(share), as: UTF8.self), to: sharePath)
                    _ = try ca.issue(id: id, role: .keyHolder)
                    var holder = KeyHolderConfiguration(
                        tls: TLSFiles(directory: directory.path, id: id), thresholdKey: keyPath.path,
                        share: sharePath.path)
                    holder.record = directory.appendingPathComponent("decryptions-\(share.holder).jsonl").path
                    holders.append(holder)
                }
                serve.thresholdKey = keyPath.path
                serve.keyHolders = ids
                thresholdIDs = ids
            } else {
                let key = try PaillierPrivateKey.generate(bits: bits)
                let secretPath = directory.appendingPathComponent("paillier.secret.json")
                try FederationCA.writeSecret(
                    String(decoding: try PaillierKeyFiles.secretFile(key), as: UTF8.self), to: secretPath)
                _ = try ca.issue(id: serve.keyHolder, role: .keyHolder)
                var holder = KeyHolderConfiguration(
                    tls: TLSFiles(directory: directory.path, id: serve.keyHolder), secretKey: secretPath.path)
                holder.record = directory.appendingPathComponent("decryptions.jsonl").path
                holders.append(holder)
            }
            keyHolders = holders.map { holder in
                var holder = holder
                holder.minimumContributors = min(SecAggParameters.thresholdFloor, serve.cohortSize)
                holder.bits = serve.payloadBits
                holder.maxAddends = serve.cohortSize
                holder.reconnectAttempts = 3
                return holder
            }
        } else {
            keyHolders = []
        }
        try serve.validate()
        self.serve = serve
        participants = try simulation.data.clients.indices.map { i in
            let id = "participant-\(i + 1)"
            _ = try ca.issue(id: id, role: .participant)
            var join = JoinConfiguration(tls: TLSFiles(directory: directory.path, id: id))
            join.clients = simulation.data.clients.count
            join.index = i
            join.seed = c.seed
            join.reconnectAttempts = 3
            // The participants' own policy is the default (malicious model); only the key size
            // follows the simulation's choice, which may be a small test key.
            join.policy.paillierMinBits = min(join.policy.paillierMinBits, paillierBits ?? .max)
            join.policy.minCohort = min(join.policy.minCohort, serve.cohortSize)
            join.policy.minContributors = min(join.policy.minContributors, serve.cohortSize)
            if let thresholdIDs { join.policy.keyHolders = thresholdIDs }
            return (join, simulation.data.clients[i])
        }
        self.directory = directory
    }

    /// Hands the training of the participants at `indices` to the user's program `command`
    /// (join.json's `trainer`, `Specs/trainer.md`): each one's rows are written to
    /// `data-<i>.csv` in the federation's folder, which its trainer reads as `trainer.data`.
    public mutating func useTrainer(_ command: [String], for indices: some Sequence<Int>) throws {
        for i in indices {
            let data = participants[i].data
            let file = directory.appendingPathComponent("data-\(i + 1).csv")
            try Data(CSVLoader.text(of: data).utf8).write(to: file)
            var trainer = TrainerConfiguration(command: command, data: file.path, examples: UInt64(data.count))
            try trainer.validate()
            trainer.timeoutSeconds = serve.trainingDeadlineSeconds
            participants[i].join.trainer = trainer
        }
    }

    /// Every participant trains by DP-SGD with `settings` (join.json's `dp_sgd`), each keeping
    /// its example-level ledger in `example-ledger-<i>.json` in the federation's folder.
    public mutating func useDPSGD(_ settings: DPSGDSettings) {
        for i in participants.indices {
            var own = settings
            own.ledger = directory.appendingPathComponent("example-ledger-\(i + 1).json").path
            participants[i].join.dpSgd = own
        }
    }

    /// Why a private run cannot go on the network, or nil: the service samples no one at
    /// random (its accounting has no amplification, which equals the in-process one only when
    /// everyone takes part in every round) and keeps the clip fixed.
    public static func privacyBlocker(_ c: FederatedConfiguration, paillier: Bool) -> String? {
        guard let p = c.privacy else { return nil }
        if c.fraction < 1 { return "--dp with --fraction below 1 (Poisson sampling) runs in-process" }
        if p.adaptiveQuantile != nil { return "adaptive clipping runs in-process" }
        if p.mode != .central && paillier { return "distributed noise is summed by secure aggregation, not Paillier" }
        return nil
    }
}
