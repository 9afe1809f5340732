/// The algorithms whose server step needs only the sum of the participants' updates: the ones
/// a secure sum can carry, and so the ones the service runs and checkpoints.
public enum FedAvgFamilyMember: String, CaseIterable, Codable, Hashable, Sendable {
    case fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi
}

/// Every algorithm's settings by name: `veil simulate`'s flags and the service's configuration
/// keys are these, so that a name and its settings become an algorithm in one place
/// (``AlgorithmChoice/init(name:settings:cohort:)``).
public struct AlgorithmSettings: Hashable, Sendable {
    /// FedProx μ.
    public var proximalMu = 0.01
    /// FedAvgM server momentum β.
    public var serverMomentum = 0.9
    /// FedAdagrad/FedAdam/FedYogi server learning rate η, β1, β2 and adaptivity τ.
    public var serverLearningRate = 0.1
    public var beta1 = 0.9
    public var beta2 = 0.99
    public var tau = 1e-3
    /// FedBuff buffer K (default: half the concurrency) and participants training at once
    /// (default: the cohort).
    public var buffer: Int?
    public var concurrency: Int?
    /// IFCA clusters, Ditto λ, q-FedAvg q, the trimmed mean's fraction at each end, Krum's
    /// assumed Byzantine participants.
    public var clusters = 2
    public var lambda = 0.1
    public var q = 1.0
    public var trim = 0.1
    public var byzantine = 1

    public init() {}
}

extension AlgorithmChoice {
    /// The algorithm `name` with `settings`; `cohort` sizes FedBuff's defaults.
    /// - Throws: ``LearningError/invalidConfiguration(_:)`` for an unknown name.
    public init(name: String, settings s: AlgorithmSettings, cohort: Int) throws(LearningError) {
        if let member = FedAvgFamilyMember(rawValue: name) {
            self.init(member, settings: s)
            return
        }
        switch name {
        case "scaffold": self = .scaffold
        case "fednova": self = .fedNova
        case "fedbuff":
            let concurrency = s.concurrency ?? cohort
            self = .fedBuff(buffer: s.buffer ?? max(1, concurrency / 2), concurrency: concurrency)
        case "ifca": self = .ifca(clusters: s.clusters)
        case "ditto": self = .ditto(lambda: s.lambda)
        case "qfedavg": self = .qFedAvg(q: s.q)
        case "median": self = .robust(.median)
        case "trimmed-mean": self = .robust(.trimmedMean(fraction: s.trim))
        case "krum": self = .robust(.krum(byzantine: s.byzantine))
        default:
            throw .invalidConfiguration(
                "unknown algorithm \"\(name)\": use one of \(Self.names.joined(separator: ", "))")
        }
    }

    public init(_ member: FedAvgFamilyMember, settings s: AlgorithmSettings) {
        self =
            switch member {
            case .fedavg: .fedAvg
            case .fedavgm: .fedAvgM(beta: s.serverMomentum)
            case .fedprox: .fedProx(mu: s.proximalMu)
            case .fedadagrad: .fedAdagrad(learningRate: s.serverLearningRate, tau: s.tau)
            case .fedadam: .fedAdam(learningRate: s.serverLearningRate, beta1: s.beta1, beta2: s.beta2, tau: s.tau)
            case .fedyogi: .fedYogi(learningRate: s.serverLearningRate, beta1: s.beta1, beta2: s.beta2, tau: s.tau)
            }
    }

    /// The FedAvg-family member this is, if any.
    public var fedAvgFamilyMember: FedAvgFamilyMember? { FedAvgFamilyMember(rawValue: name) }

    /// The server state of a FedAvg-family member (nil for the others). FedAvg drops
    /// stragglers' partial work; FedProx and the adaptive optimisers accept it.
    public func fedAvgFamily(initial: [Double]) -> FedAvgFamily? {
        switch self {
        case .fedAvg: FedAvgFamily(name: name, initial: initial, dropsStragglers: true)
        case .fedAvgM(let beta):
            FedAvgFamily(name: name, initial: initial, serverOptimizer: .momentum(learningRate: 1, beta: beta))
        case .fedProx(let mu): FedAvgFamily(name: name, initial: initial, proximalMu: mu)
        case .fedAdagrad(let eta, let tau):
            FedAvgFamily(name: name, initial: initial, serverOptimizer: .adagrad(learningRate: eta, tau: tau))
        case .fedAdam(let eta, let b1, let b2, let tau):
            FedAvgFamily(
                name: name, initial: initial, serverOptimizer: .adam(learningRate: eta, beta1: b1, beta2: b2, tau: tau))
        case .fedYogi(let eta, let b1, let b2, let tau):
            FedAvgFamily(
                name: name, initial: initial, serverOptimizer: .yogi(learningRate: eta, beta1: b1, beta2: b2, tau: tau))
        default: nil
        }
    }
}
