import Foundation
import VeilCore
import VeilPrivacy

/// What a participant knows when it runs its client rule.
public struct ClientContext {
    public let id: ParticipantID
    /// Its training rows.
    public let data: Dataset
    public let model: any Model
    /// Local epochs this round (stragglers run fewer).
    public let epochs: Int
    public let batchSize: Int
    public let optimizer: SGD
    /// Sample counts are sent as n_k / weightScale ≤ 1, so that payloads stay bounded; the
    /// scale cancels in every weighted average.
    public let weightScale: Double
    public var generator: Xoshiro256
    /// State the participant keeps from round to round (SCAFFOLD's control variate, Ditto's model).
    public var state: [String: [Double]]
    /// Example-level DP (DP-SGD) and its generator (cryptographic and secret: it draws the
    /// batches and the noise), when the participant trains under it (the FedAvg family's client
    /// rule honours it); nil: plain SGD.
    public var privateTraining: (privacy: ExampleLevelPrivacy, noise: NoiseGenerator)?

    /// n_k / weightScale.
    public var weight: Double { Double(data.count) / weightScale }

    public init(
        id: ParticipantID, data: Dataset, model: any Model, epochs: Int, batchSize: Int, optimizer: SGD,
        weightScale: Double, generator: Xoshiro256, state: [String: [Double]]
    ) {
        self.id = id
        self.data = data
        self.model = model
        self.epochs = epochs
        self.batchSize = batchSize
        self.optimizer = optimizer
        self.weightScale = weightScale
        self.generator = generator
        self.state = state
    }
}

/// A federated algorithm as three pieces: what the server broadcasts, the client rule that
/// turns it into a fixed-length payload of reals, and the server rule that updates the global
/// state from the **sum** of the payloads — the only thing a secure-sum backend reveals.
/// `Specs/learning.md` gives each algorithm's rule and payload layout.
public protocol FederatedAlgorithm {
    /// The name used on the command line.
    var name: String { get }
    /// The payload length.
    var payloadLength: Int { get }
    /// Whether stragglers' partial work is discarded (FedAvg, as in the FedProx paper's baseline).
    var dropsStragglers: Bool { get }
    /// The vectors sent to each selected participant.
    func broadcast() -> [[Double]]
    /// The client rule.
    func clientUpdate(_ broadcast: [[Double]], _ client: inout ClientContext) -> [Double]
    /// The server rule on the sum of the survivors' payloads.
    mutating func serverUpdate(sum: [Double], contributors: Int)
    /// The global model's quality on a test set.
    func evaluate(model: any Model, on test: Dataset) -> Evaluation
    /// The global parameters (the first model, for algorithms that keep several).
    var parameters: [Double] { get }
    /// Sets the parameters `keep` marks false to zero in every global model (pruning,
    /// `Specs/export.md` §4); the server's other state is left as it is.
    mutating func prune(keeping keep: [Bool])
}

extension FederatedAlgorithm {
    public var dropsStragglers: Bool { false }
    public func evaluate(model: any Model, on test: Dataset) -> Evaluation { model.evaluate(parameters, on: test) }
}

/// Server-side optimisers on the averaged update Δ (Reddi et al., ICLR 2021, "Adaptive
/// Federated Optimization"): plain (w += η·Δ), momentum (FedAvgM), Adagrad, Adam, Yogi.
public enum ServerOptimizer: Hashable, Sendable, Codable {
    case plain(learningRate: Double)
    case momentum(learningRate: Double, beta: Double)
    case adagrad(learningRate: Double, tau: Double)
    case adam(learningRate: Double, beta1: Double, beta2: Double, tau: Double)
    case yogi(learningRate: Double, beta1: Double, beta2: Double, tau: Double)
}

/// Moments of the server optimiser, one value per parameter.
struct ServerOptimizerState: Hashable, Codable {
    var m: [Double]
    var v: [Double]

    init(count: Int, optimizer: ServerOptimizer) {
        m = [Double](repeating: 0, count: count)
        // Reddi et al. initialise v to τ² so that the first steps are not huge.
        switch optimizer {
        case .adagrad(_, let tau), .adam(_, _, _, let tau), .yogi(_, _, _, let tau):
            v = [Double](repeating: tau * tau, count: count)
        default:
            v = []
        }
    }

    /// Applies Δ to `w`.
    mutating func step(_ w: inout [Double], delta: ArraySlice<Double>, optimizer: ServerOptimizer) {
        let base = delta.startIndex
        switch optimizer {
        case .plain(let eta):
            for i in w.indices { w[i] += eta * delta[base + i] }
        case .momentum(let eta, let beta):
            for i in w.indices {
                m[i] = beta * m[i] + delta[base + i]
                w[i] += eta * m[i]
            }
        case .adagrad(let eta, let tau):
            for i in w.indices {
                let d = delta[base + i]
                m[i] = d
                v[i] += d * d
                w[i] += eta * m[i] / (v[i].squareRoot() + tau)
            }
        case .adam(let eta, let b1, let b2, let tau):
            for i in w.indices {
                let d = delta[base + i]
                m[i] = b1 * m[i] + (1 - b1) * d
                v[i] = b2 * v[i] + (1 - b2) * d * d
                w[i] += eta * m[i] / (v[i].squareRoot() + tau)
            }
        case .yogi(let eta, let b1, let b2, let tau):
            for i in w.indices {
                let d = delta[base + i]
                let d2 = d * d
                m[i] = b1 * m[i] + (1 - b1) * d
                v[i] -= (1 - b2) * d2 * (v[i] - d2 > 0 ? 1 : (v[i] - d2 < 0 ? -1 : 0))
                w[i] += eta * m[i] / (v[i].squareRoot() + tau)
            }
        }
    }
}

/// FedAvg and its relatives, which share one payload: [p̃·(w_k − w), p̃] with p̃ = n_k / scale.
/// The server's Δ = Σ p̃·(w_k − w) / Σ p̃ is the sample-weighted mean update.
///
/// - FedAvg (McMahan et al. 2017): the plain server step; stragglers' partial work is dropped.
/// - FedAvgM (Hsu et al. 2019): server momentum.
/// - FedProx (Li et al. 2020): the client minimises f_k(w) + μ/2·‖w − w_t‖²; stragglers' work is kept.
/// - FedAdagrad, FedAdam, FedYogi (Reddi et al. 2021): adaptive server steps.
/// - Ditto (Li et al. 2021): the same global training; each participant also keeps a personal
///   model v_k trained on f_k(v) + λ/2·‖v − w‖², never sent anywhere.
/// `Codable`, so that a coordinator can checkpoint it and resume (`VeilService`).
public struct FedAvgFamily: FederatedAlgorithm, Codable, Hashable {
    public let name: String
    public private(set) var parameters: [Double]
    public let serverOptimizer: ServerOptimizer
    /// μ of FedProx (0: none).
    public let proximalMu: Double
    /// λ of Ditto (nil: no personal models).
    public let dittoLambda: Double?
    public let dropsStragglers: Bool
    private var optimizerState: ServerOptimizerState

    public init(
        name: String, initial: [Double], serverOptimizer: ServerOptimizer = .plain(learningRate: 1),
        proximalMu: Double = 0,
        dittoLambda: Double? = nil, dropsStragglers: Bool = false
    ) {
        self.name = name
        parameters = initial
        self.serverOptimizer = serverOptimizer
        self.proximalMu = proximalMu
        self.dittoLambda = dittoLambda
        self.dropsStragglers = dropsStragglers
        optimizerState = ServerOptimizerState(count: initial.count, optimizer: serverOptimizer)
    }

    public var payloadLength: Int { parameters.count + 1 }

    public func broadcast() -> [[Double]] { [parameters] }

    public func clientUpdate(_ broadcast: [[Double]], _ client: inout ClientContext) -> [Double] {
        let global = broadcast[0]
        let mu = proximalMu
        let proximal: ((UnsafeMutableBufferPointer<Double>, UnsafeBufferPointer<Double>) -> Void)? =
            mu > 0 ? { g, w in for i in 0..<g.count { g[i] += mu * (w[i] - global[i]) } } : nil
        let result: LocalTrainingResult
        if var (privacy, noise) = client.privateTraining {
            result = trainLocallyPrivately(
                model: client.model, start: global, data: client.data, epochs: client.epochs,
                batchSize: client.batchSize, optimizer: client.optimizer, privacy: privacy, using: &noise,
                adjust: proximal)
            client.privateTraining = (privacy, noise)
        } else {
            result = trainLocally(
                model: client.model, start: global, data: client.data, epochs: client.epochs,
                batchSize: client.batchSize, optimizer: client.optimizer, using: &client.generator, adjust: proximal)
        }
        if let lambda = dittoLambda {
            let personal = client.state["ditto"] ?? global
            let pulled = trainLocally(
                model: client.model, start: personal, data: client.data, epochs: client.epochs,
                batchSize: client.batchSize,
                optimizer: client.optimizer, using: &client.generator,
                adjust: { g, v in for i in 0..<g.count { g[i] += lambda * (v[i] - global[i]) } })
            client.state["ditto"] = pulled.parameters
        }
        let weight = client.weight
        return zip(result.parameters, global).map { weight * ($0 - $1) } + [weight]
    }

    public mutating func serverUpdate(sum: [Double], contributors: Int) {
        let totalWeight = sum[parameters.count]
        guard totalWeight > 0 else { return }
        let delta = sum[0..<parameters.count].map { $0 / totalWeight }
        optimizerState.step(&parameters, delta: delta[...], optimizer: serverOptimizer)
    }
}

/// SCAFFOLD, option II (Karimireddy et al., ICML 2020). The server keeps w and a control
/// variate c; participant i keeps c_i. Locally: y ← y − η_l·(g_i(y) − c_i + c) for K steps;
/// then c_i⁺ = c_i − c + (w − y)/(K·η_l). Payload: [y − w, c_i⁺ − c_i, 1]. Server:
/// w += η_g·Σ(y − w)/|S|, c += Σ(c_i⁺ − c_i)/N.
public struct Scaffold: FederatedAlgorithm {
    public let name = "scaffold"
    public private(set) var parameters: [Double]
    public private(set) var control: [Double]
    public let serverLearningRate: Double
    /// N, the number of participants in the federation.
    public let population: Int

    public init(initial: [Double], population: Int, serverLearningRate: Double = 1) {
        parameters = initial
        control = [Double](repeating: 0, count: initial.count)
        self.population = population
        self.serverLearningRate = serverLearningRate
    }

    public var payloadLength: Int { 2 * parameters.count + 1 }

    public func broadcast() -> [[Double]] { [parameters, control] }

    public func clientUpdate(_ broadcast: [[Double]], _ client: inout ClientContext) -> [Double] {
        let (global, c) = (broadcast[0], broadcast[1])
        let ci = client.state["scaffold"] ?? [Double](repeating: 0, count: global.count)
        let result = trainLocally(
            model: client.model, start: global, data: client.data, epochs: client.epochs, batchSize: client.batchSize,
            optimizer: client.optimizer, using: &client.generator,
            adjust: { g, _ in for i in 0..<g.count { g[i] += c[i] - ci[i] } })
        let steps = Double(max(result.steps, 1))
        let eta = client.optimizer.learningRate
        let ciPlus = (0..<global.count).map { ci[$0] - c[$0] + (global[$0] - result.parameters[$0]) / (steps * eta) }
        client.state["scaffold"] = ciPlus
        return zip(result.parameters, global).map { $0 - $1 } + zip(ciPlus, ci).map { $0 - $1 } + [1]
    }

    public mutating func serverUpdate(sum: [Double], contributors: Int) {
        let count = sum[2 * parameters.count]
        guard count > 0 else { return }
        let p = parameters.count
        for i in 0..<p {
            parameters[i] += serverLearningRate * sum[i] / count
            control[i] += sum[p + i] / Double(population)
        }
    }
}

/// FedNova (Wang et al., NeurIPS 2020) with plain local SGD: participant i takes τ_i steps and
/// sends its normalised update d_i = (w − w_i)/τ_i weighted by p̃_i, with p̃_i·τ_i and p̃_i.
/// Server: τ_eff = Σp̃τ/Σp̃, w ← w − τ_eff·Σp̃d/Σp̃ — each participant counts by its data, not
/// by how many steps it happened to take.
public struct FedNova: FederatedAlgorithm {
    public let name = "fednova"
    public private(set) var parameters: [Double]

    public init(initial: [Double]) { parameters = initial }

    public var payloadLength: Int { parameters.count + 2 }

    public func broadcast() -> [[Double]] { [parameters] }

    public func clientUpdate(_ broadcast: [[Double]], _ client: inout ClientContext) -> [Double] {
        let global = broadcast[0]
        let result = trainLocally(
            model: client.model, start: global, data: client.data, epochs: client.epochs, batchSize: client.batchSize,
            optimizer: client.optimizer, using: &client.generator)
        let tau = Double(max(result.steps, 1))
        let weight = client.weight
        return zip(global, result.parameters).map { weight * ($0 - $1) / tau } + [weight * tau, weight]
    }

    public mutating func serverUpdate(sum: [Double], contributors: Int) {
        let p = parameters.count
        let totalWeight = sum[p + 1]
        guard totalWeight > 0 else { return }
        let tauEffective = sum[p] / totalWeight
        for i in 0..<p { parameters[i] -= tauEffective * sum[i] / totalWeight }
    }
}

/// q-FedAvg (Li, Sanjabi, Beirami, Smith, ICLR 2020), for fairness: with L = 1/η_l, F_k the
/// local loss at w and Δw_k = L·(w − w̄_k): Δ_k = F_k^q·Δw_k, h_k = q·F_k^(q−1)·‖Δw_k‖² + L·F_k^q.
/// Payload [Δ_k, h_k]; server w ← w − ΣΔ_k / Σh_k. Larger q weights poorly served participants more.
public struct QFedAvg: FederatedAlgorithm {
    public let name = "qfedavg"
    public private(set) var parameters: [Double]
    public let q: Double

    public init(initial: [Double], q: Double) {
        parameters = initial
        self.q = q
    }

    public var payloadLength: Int { parameters.count + 1 }

    public func broadcast() -> [[Double]] { [parameters] }

    public func clientUpdate(_ broadcast: [[Double]], _ client: inout ClientContext) -> [Double] {
        let global = broadcast[0]
        let loss = max(client.model.evaluate(global, on: client.data).loss, 1e-10)
        let result = trainLocally(
            model: client.model, start: global, data: client.data, epochs: client.epochs, batchSize: client.batchSize,
            optimizer: client.optimizer, using: &client.generator)
        let lipschitz = 1 / client.optimizer.learningRate
        let deltaW = zip(global, result.parameters).map { lipschitz * ($0 - $1) }
        let norm2 = deltaW.reduce(0) { $0 + $1 * $1 }
        let fq = pow(loss, q)
        let h = q * pow(loss, q - 1) * norm2 + lipschitz * fq
        return deltaW.map { fq * $0 } + [h]
    }

    public mutating func serverUpdate(sum: [Double], contributors: Int) {
        let p = parameters.count
        let h = sum[p]
        guard h > 0 else { return }
        for i in 0..<p { parameters[i] -= sum[i] / h }
    }
}

/// IFCA (Ghosh et al., NeurIPS 2020): k cluster models. Each participant picks the model with
/// the lowest loss on its data and trains it. So that the server does not learn who chose
/// which, every participant contributes to all k sums: its weighted update in its cluster's
/// segment, zeros elsewhere. Payload: k × [p̃·(w_j′ − w_j), p̃·1{chose j}].
public struct IFCA: FederatedAlgorithm {
    public let name = "ifca"
    public private(set) var models: [[Double]]

    public init(initialModels: [[Double]]) { models = initialModels }

    public var parameters: [Double] { models[0] }
    public var payloadLength: Int { models.count * (models[0].count + 1) }

    public func broadcast() -> [[Double]] { models }

    public func clientUpdate(_ broadcast: [[Double]], _ client: inout ClientContext) -> [Double] {
        let losses = broadcast.map { client.model.evaluate($0, on: client.data).loss }
        let chosen = losses.indices.min { losses[$0] < losses[$1] }!
        let result = trainLocally(
            model: client.model, start: broadcast[chosen], data: client.data, epochs: client.epochs,
            batchSize: client.batchSize,
            optimizer: client.optimizer, using: &client.generator)
        let weight = client.weight
        var payload = [Double](repeating: 0, count: payloadLength)
        let width = broadcast[0].count + 1
        for i in 0..<broadcast[0].count {
            payload[chosen * width + i] = weight * (result.parameters[i] - broadcast[chosen][i])
        }
        payload[chosen * width + width - 1] = weight
        return payload
    }

    public mutating func serverUpdate(sum: [Double], contributors: Int) {
        let width = models[0].count + 1
        for j in models.indices {
            let weight = sum[j * width + width - 1]
            guard weight > 0 else { continue }
            for i in 0..<(width - 1) { models[j][i] += sum[j * width + i] / weight }
        }
    }

    /// Each test row is classified by the cluster model most confident about it.
    public func evaluate(model: any Model, on test: Dataset) -> Evaluation {
        var correct = 0
        var loss = 0.0
        let workspace = model.makeWorkspace()
        var z = [Double](repeating: 0, count: model.classCount)
        for row in 0..<test.count {
            var best: (confidence: Double, logSumExp: Double, zy: Double, argmax: Int) = (-.infinity, 0, 0, 0)
            for parameters in models {
                parameters.withUnsafeBufferPointer { p in
                    test.features.withUnsafeBufferPointer { f in
                        z.withUnsafeMutableBufferPointer { out in
                            model.logits(
                                p,
                                features: UnsafeBufferPointer(
                                    rebasing: f[(row * model.featureCount)..<((row + 1) * model.featureCount)]),
                                into: out, workspace: workspace)
                        }
                    }
                }
                let (lse, argmax) = z.withUnsafeBufferPointer { softmaxSummary($0) }
                let confidence = z[argmax] - lse
                if confidence > best.confidence { best = (confidence, lse, z[test.labels[row]], argmax) }
            }
            loss += best.logSumExp - best.zy
            if best.argmax == test.labels[row] { correct += 1 }
        }
        return Evaluation(
            loss: loss / Double(max(test.count, 1)), accuracy: Double(correct) / Double(max(test.count, 1)))
    }
}

/// Aggregators that need every participant's update — coordinate-wise median, trimmed mean,
/// Krum (Blanchard et al. 2017) — exist for plaintext federations only: a secure sum hides the
/// individual updates they work on, and `FederatedSimulation` refuses the combination.
public struct RobustAggregation: Hashable, Sendable {
    public enum Rule: Hashable, Sendable {
        case median
        case trimmedMean(fraction: Double)
        case krum(byzantine: Int)
    }

    public let rule: Rule

    public init(rule: Rule) { self.rule = rule }

    public var name: String {
        switch rule {
        case .median: "median"
        case .trimmedMean: "trimmed-mean"
        case .krum: "krum"
        }
    }

    /// Combines individual (unweighted) updates into one.
    public func combine(_ updates: [[Double]]) -> [Double] {
        precondition(!updates.isEmpty, "no updates to combine")
        let p = updates[0].count
        switch rule {
        case .median, .trimmedMean:
            let trim = { () -> Int in
                if case .trimmedMean(let f) = rule {
                    return min(Int(Double(updates.count) * f), (updates.count - 1) / 2)
                }
                return 0
            }()
            return (0..<p).map { i in
                let column = updates.map { $0[i] }.sorted()
                if case .median = rule {
                    let m = column.count / 2
                    return column.count % 2 == 1 ? column[m] : (column[m - 1] + column[m]) / 2
                }
                let kept = column[trim..<(column.count - trim)]
                return kept.reduce(0, +) / Double(kept.count)
            }
        case .krum(let f):
            // The update with the smallest sum of squared distances to its n − f − 2 closest others.
            let n = updates.count
            let neighbours = max(1, n - f - 2)
            let scores = (0..<n).map { i -> Double in
                let distances = (0..<n).filter { $0 != i }.map { j in
                    zip(updates[i], updates[j]).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                }
                return distances.sorted().prefix(neighbours).reduce(0, +)
            }
            return updates[scores.indices.min { scores[$0] < scores[$1] }!]
        }
    }
}

/// Pruning zeroes the global model's pruned parameters after every server step.
private func zeroing(_ parameters: [Double], _ keep: [Bool]) -> [Double] {
    zip(parameters, keep).map { $1 ? $0 : 0 }
}

extension FedAvgFamily {
    public mutating func prune(keeping keep: [Bool]) { parameters = zeroing(parameters, keep) }
}

extension Scaffold {
    public mutating func prune(keeping keep: [Bool]) { parameters = zeroing(parameters, keep) }
}

extension FedNova {
    public mutating func prune(keeping keep: [Bool]) { parameters = zeroing(parameters, keep) }
}

extension QFedAvg {
    public mutating func prune(keeping keep: [Bool]) { parameters = zeroing(parameters, keep) }
}

extension IFCA {
    public mutating func prune(keeping keep: [Bool]) { models = models.map { zeroing($0, keep) } }
}
