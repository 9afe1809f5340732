import Foundation
import VeilCore
import VeilPrivacy

/// User-level differential privacy for a simulated federation: DP-FedAvg (McMahan, Ramage,
/// Talwar, Zhang, ICLR 2018) with the noise added centrally by the server after the sum, or
/// by the participants inside the secure sum (distributed discrete Gaussian, Skellam).
/// `Specs/learning.md` §DP and `Specs/privacy.md` give the rules.
public struct PrivacyConfiguration: Hashable, Sendable {
    /// Who adds the noise.
    public enum Mode: String, Hashable, Sendable, CaseIterable {
        /// The server, after the sum: the participants trust it with the noise.
        case central
        /// Each participant, discrete Gaussian shares inside Z_2^b.
        case ddg
        /// Each participant, Skellam shares inside Z_2^b.
        case skellam
    }

    public var mode: Mode
    /// The (ε, δ) the whole run must meet, for every participant, against whoever sees the
    /// released sums (the server, for the distributed modes; anyone after the server, for central).
    public var epsilon: Double
    public var delta: Double
    /// C: the L2 bound on each participant's update (the initial one, with adaptive clipping).
    public var clip: Double
    /// γ of adaptive clipping (Andrew et al. 2021); nil keeps C fixed.
    public var adaptiveQuantile: Double?
    /// η_C of adaptive clipping.
    public var clipLearningRate = 0.2
    /// σ_b, the noise on the count of unclipped updates (nil: expected cohort / 20, the paper's choice).
    public var countNoise: Double?
    /// The modulus 2^bits of the distributed modes' sum.
    public var bits = 20
    /// The fewest contributions a distributed round may release (nil: all N when everyone is
    /// selected, else the expected cohort less four standard deviations).
    public var minimumParticipants: Int?
    /// A per-participant budget ε (at the same δ) kept in a ledger; nil: no ledger.
    public var participantBudget: Double?
    /// Alert when a participant has spent this fraction of its budget.
    public var alertFraction = 0.8

    public init(mode: Mode, epsilon: Double, delta: Double, clip: Double) {
        self.mode = mode
        self.epsilon = epsilon
        self.delta = delta
        self.clip = clip
    }
}

/// What one round spent.
public struct PrivacyRoundReport: Hashable, Sendable {
    /// ε of the whole run so far (population accountant, with amplification by sampling).
    public let epsilon: Double
    /// ε of this round alone.
    public let roundEpsilon: Double
    /// The largest ε any participant has spent against a party that knows who took part in
    /// each round (the coordinator): its rounds composed without amplification by sampling.
    public let participantEpsilon: Double
    /// The clip bound C used this round.
    public let clip: Double
    /// The standard deviation of the noise on each coordinate of the summed update.
    public let noiseStandardDeviation: Double
    /// Whether a sum was released (a distributed round with too few contributions is not).
    public let released: Bool
    /// Participants sampled but not selected because of their budget, with what they were told.
    public let refusals: [String]
    /// Participants who reached the alert fraction of their budget this round.
    public let alerts: [String]
}

/// The calibrated mechanism of a private run.
public struct PrivateRunPlan: Sendable {
    public let configuration: PrivacyConfiguration
    /// Poisson sampling rate q.
    public let samplingRate: Double
    public let rounds: Int
    /// qN, the fixed denominator of DP-FedAvg.
    public let expectedCohort: Double
    /// Central: σ / (clip·factor); distributed: the summed noise over the record bound.
    public let noiseMultiplier: Double
    /// w: the weight of the clipped-count coordinate, in units of C (0 without adaptive clipping).
    public let countWeight: Double
    /// The distributed mechanism (nil for central).
    public let distributed: DistributedDP?
    /// The payload length (the update, plus the count coordinate with adaptive clipping).
    public let payloadLength: Int
    /// The minimum contributions a released distributed round has.
    public let minimumParticipants: Int
    /// The most contributions the distributed modulus is sized for.
    public let maximumParticipants: Int

    /// The distributed mechanism of a round that sends `length` values (a coordinate
    /// subset's k, plus the count coordinate with adaptive clipping): the plan's own for a
    /// whole payload, else one whose round costs no more than the plan's at every order,
    /// sampled at q and unsampled alike (`Specs/privacy.md` §4.7) — so the run's ε and each
    /// participant's charge are still bounded by what the plan was calibrated for.
    public func distributed(length: Int) throws(LearningError) -> DistributedDP? {
        guard let distributed, length != distributed.dimension else { return distributed }
        do {
            return try DistributedDP.calibrate(
                dominatedBy: distributed, dimension: length, samplingRates: samplingRate < 1 ? [samplingRate, 1] : [1],
                maximumParticipants: maximumParticipants)
        } catch {
            throw .invalidConfiguration(
                "no noise lets a round of \(length) values cost no more than a whole one: \(error)")
        }
    }

    /// R = C·√(1 + w²/4): the bound on a whole payload for clip C.
    public func recordBound(clip: Double) -> Double { clip * (1 + countWeight * countWeight / 4).squareRoot() }

    /// One round as the population accountant sees it.
    public var roundEvent: PrivacyEvent { roundEvent(of: distributed) }

    /// One round of `mechanism` (a subset round's; nil: central) as the population accountant
    /// sees it.
    public func roundEvent(of mechanism: DistributedDP?) -> PrivacyEvent {
        if let mechanism { return .poissonSampledNoiseSum(samplingRate: samplingRate, mechanism.noiseSum) }
        return .poissonSampledGaussian(samplingRate: samplingRate, noiseMultiplier: noiseMultiplier)
    }

    /// One round for a participant that was in it (no amplification).
    public var participationEvent: PrivacyEvent { participationEvent(of: distributed) }

    /// One round of `mechanism` (nil: central) for a participant that was in it.
    public func participationEvent(of mechanism: DistributedDP?) -> PrivacyEvent {
        if let mechanism { return .poissonSampledNoiseSum(samplingRate: 1, mechanism.noiseSum) }
        return .gaussian(noiseMultiplier: noiseMultiplier)
    }

    /// The noise on each summed coordinate for clip C, in real units.
    public func noiseStandardDeviation(clip: Double) -> Double { noiseStandardDeviation(clip: clip, of: distributed) }

    /// The same for a round of `mechanism` (nil: central).
    public func noiseStandardDeviation(clip: Double, of mechanism: DistributedDP?) -> Double {
        if let mechanism { return mechanism.centralStandardDeviation(bound: recordBound(clip: clip)) }
        return noiseMultiplier * recordBound(clip: clip)
    }

    /// Calibrates the noise for a run of `rounds` rounds over `population` participants
    /// sampled at rate `fraction`, with updates of `updateLength` values.
    public static func make(
        _ c: PrivacyConfiguration, population: Int, fraction: Double, rounds: Int, updateLength: Int
    ) throws(LearningError) -> PrivateRunPlan {
        func fail(_ why: String) -> LearningError { .invalidConfiguration(why) }
        guard c.epsilon > 0, c.epsilon.isFinite else { throw fail("--epsilon must be positive") }
        guard c.delta > 0, c.delta < 1 else { throw fail("--delta must be in (0, 1)") }
        guard c.clip > 0, c.clip.isFinite else { throw fail("--clip must be positive") }
        if let gamma = c.adaptiveQuantile, !(0...1).contains(gamma) {
            throw fail("--clip-quantile must be in [0, 1]")
        }
        let q = fraction
        let expected = q * Double(population)
        let z: Double
        do {
            z = try NoiseCalibration.noiseMultiplier(epsilon: c.epsilon, delta: c.delta, samplingRate: q, steps: rounds)
        } catch { throw fail(error.description) }
        var weight = 0.0
        if c.adaptiveQuantile != nil {
            // The count coordinate w·C·(b − ½) shares the vector's noise; its noise in count units
            // is z·√(1 + w²/4)/w, which equals σ_b for w = z/√(σ_b² − z²/4) (Andrew et al.'s split,
            // as a weight). Below σ_b = z/√2 that is unreachable: w = 2 caps the cost at √2.
            let sigmaB = c.countNoise ?? max(expected / 20, 1e-9)
            weight = sigmaB * sigmaB > z * z / 2 ? z / (sigmaB * sigmaB - z * z / 4).squareRoot() : 2
        }
        let length = updateLength + (c.adaptiveQuantile == nil ? 0 : 1)
        let spread = (expected * (1 - q)).squareRoot()
        let minimum =
            c.minimumParticipants ?? (q == 1 ? population : max(1, Int((expected - 4 * spread).rounded(.down))))
        guard minimum >= 1, minimum <= population else {
            throw fail("--dp-min-participants must be in 1...\(population)")
        }
        var distributed: DistributedDP?
        var multiplier = z
        let maximum = min(population, Int((expected + 4 * spread).rounded(.up)))
        if c.mode != .central {
            do {
                distributed = try DistributedDP.calibrate(
                    noise: c.mode == .ddg ? .discreteGaussian : .skellam, epsilon: c.epsilon, delta: c.delta,
                    samplingRate: q, rounds: rounds, minimumParticipants: minimum, maximumParticipants: maximum,
                    dimension: length, bits: c.bits)
            } catch { throw fail(error.description) }
            // Set by the do block above, or it threw.
            multiplier = distributed!.centralStandardDeviation(bound: 1)
        }
        return PrivateRunPlan(
            configuration: c, samplingRate: q, rounds: rounds, expectedCohort: expected, noiseMultiplier: multiplier,
            countWeight: weight, distributed: distributed, payloadLength: length, minimumParticipants: minimum,
            maximumParticipants: max(maximum, minimum))
    }
}

extension FederatedSimulation {
    /// The algorithms DP-FedAvg can run: those whose payload is the FedAvg update.
    static func supportsPrivacy(_ algorithm: AlgorithmChoice) -> Bool {
        switch algorithm {
        case .fedAvg, .fedAvgM, .fedProx, .fedAdagrad, .fedAdam, .fedYogi, .ditto: true
        default: false
        }
    }

    /// The calibrated plan of this simulation's private run, or nil without privacy.
    public func privacyPlan() throws(LearningError) -> PrivateRunPlan? {
        guard let p = configuration.privacy else { return nil }
        return try PrivateRunPlan.make(
            p, population: data.clients.count, fraction: configuration.fraction, rounds: configuration.rounds,
            updateLength: model.parameterCount)
    }

    /// The ring the secure sum works in: the payload ring, or the distributed modulus.
    public var sumBitWidth: Int {
        if let p = configuration.privacy, p.mode != .central { return p.bits }
        return configuration.payloadBits
    }

    /// DP-FedAvg: Poisson sampling at rate q (minus participants out of budget), uniform
    /// weights, updates clipped to C, the sum made noisy centrally or by the participants, the
    /// server step on Σ/(qN), the clip adapted from the noisy count, and every release accounted.
    func runPrivately(
        plan: PrivateRunPlan, secureSum: inout some SecureSum, progress: (RoundReport) -> Void
    ) throws -> SimulationOutcome {
        let c = configuration
        let p = plan.configuration
        var initGenerator = Xoshiro256(seed: c.seed, purpose: .initialParameters)
        let initial = model.initialParameters(using: &initGenerator)
        var algorithm = makeAlgorithm(initial: initial, generator: &initGenerator)
        var states = [[String: [Double]]](repeating: [:], count: data.clients.count)
        var selection = Xoshiro256(seed: c.seed, purpose: .cohortSelection)
        let pooled = data.pooledTraining
        let personal = personalTestSets()
        let noise = NoiseSource.simulation(seed: c.seed)
        var accountant = RDPAccountant()
        let participationCost: RDPAccountant = {
            var a = RDPAccountant()
            a.compose(plan.participationEvent)
            return a
        }()
        let roundEpsilon: Double = {
            var a = RDPAccountant()
            a.compose(plan.roundEvent)
            return a.epsilon(delta: p.delta).epsilon
        }()
        // Without a budget the ledger still measures what each participant spent.
        var ledger = PrivacyLedger(
            policy: .init(epsilon: p.participantBudget ?? .infinity, delta: p.delta, alertFraction: p.alertFraction))
        var clipping = AdaptiveClipping(
            initialBound: p.clip, targetQuantile: p.adaptiveQuantile ?? 0.5, learningRate: p.clipLearningRate)
        let d = model.parameterCount
        var reports: [RoundReport] = []
        // A coordinate subset's rounds send k values (plus the count), each length with its
        // own mechanism (Specs/export.md §5.4).
        var mechanisms: [Int: DistributedDP] = [:]
        let counted = p.adaptiveQuantile == nil ? 0 : 1

        for round in 1...c.rounds {
            let started = ContinuousClock.now
            let clip = clipping.bound
            let subset = try c.subset.map { try coordinateSubset(length: d + 1, fraction: $0, round: round) }
            let sent = subset?.size ?? d
            let mechanism = try mechanisms[sent + counted] ?? plan.distributed(length: sent + counted)
            mechanisms[sent + counted] = mechanism
            var refusals: [String] = []
            var alerts: [String] = []
            // Poisson sampling: each participant independently with probability q.
            var cohort: [Int] = []
            for index in data.clients.indices where plan.samplingRate >= 1 || selection.unit() < plan.samplingRate {
                switch ledger.admit(participantName(index), round: participationCost) {
                case .refused(let refusal):
                    refusals.append(refusal.description)
                    continue
                case .admitted(_, let alert):
                    if alert { alerts.append(participantName(index)) }
                }
                cohort.append(index)
            }
            let broadcast = algorithm.broadcast()
            var payloads: [ParticipantID: [Double]] = [:]
            for index in cohort {
                var epochs = c.localEpochs
                if c.stragglerFraction > 0 && selection.unit() < c.stragglerFraction {
                    if algorithm.dropsStragglers { continue }
                    epochs = c.localEpochs > 1 ? 1 + selection.below(c.localEpochs - 1) : 1
                }
                let rows = data.clients[index]
                // Uniform weights: weightScale = n_k makes the FedAvg payload [Δ, 1].
                var context = ClientContext(
                    id: ParticipantID(UInt32(index + 1)), data: rows, model: model, epochs: epochs,
                    batchSize: c.batchSize,
                    optimizer: SGD(learningRate: c.learningRate, momentum: c.momentum, weightDecay: c.weightDecay),
                    weightScale: Double(max(rows.count, 1)),
                    generator: Xoshiro256(seed: c.seed, purpose: .training, round: round, participant: index + 1),
                    state: states[index])
                let update = Array(algorithm.clientUpdate(broadcast, &context).prefix(d))
                states[index] = context.state
                // A subset's scaled values are clipped after the scaling: the sensitivity stays C.
                let values = subset.map { Array($0.compress(update + [1]).dropLast()) } ?? update
                let (clipped, within) = L2Clipping.clip(values, to: clip)
                payloads[context.id] =
                    p.adaptiveQuantile == nil ? clipped : clipped + [plan.countWeight * clip * (within ? 0.5 : -0.5)]
            }

            var released = false
            var survivors = 0
            let enough = payloads.count >= (plan.distributed == nil ? 1 : plan.minimumParticipants)
            if enough {
                let noisy = try privateSum(
                    payloads, plan: plan, mechanism: mechanism, clip: clip, round: round,
                    noise: noise, secureSum: &secureSum)
                if let (sum, count) = noisy {
                    released = true
                    survivors = count
                    // The round's own mechanism: a subset round's costs at most the plan's.
                    accountant.compose(plan.roundEvent(of: mechanism))
                    var cost = RDPAccountant()
                    cost.compose(plan.participationEvent(of: mechanism))
                    ledger.charge(payloads.keys.map { participantName(Int($0.rawValue) - 1) }, round: cost)
                    let estimate = Array(sum.prefix(sent)) + [plan.expectedCohort]
                    algorithm.serverUpdate(sum: subset.map { $0.expand(estimate) } ?? estimate, contributors: count)
                    if p.adaptiveQuantile != nil {
                        clipping.update(
                            noisyCenteredCount: sum[sent] / (plan.countWeight * clip),
                            expectedReports: plan.expectedCohort)
                    }
                }
            }
            let privacy = PrivacyRoundReport(
                epsilon: accountant.epsilon(delta: p.delta).epsilon, roundEpsilon: roundEpsilon,
                participantEpsilon: ledger.balances.map(\.epsilon).max() ?? 0, clip: clip,
                noiseStandardDeviation: plan.noiseStandardDeviation(clip: clip, of: mechanism), released: released,
                refusals: refusals, alerts: alerts)
            var report = evaluate(
                algorithm, round: round, selected: cohort.count, survivors: survivors, pooled: pooled,
                personal: personal, states: states, started: started, privacy: privacy)
            report.subsetFraction = subset?.fraction ?? 1
            reports.append(report)
            progress(report)
        }
        return SimulationOutcome(reports: reports, parameters: algorithm.parameters)
    }

    func participantName(_ index: Int) -> String { "participant-\(index + 1)" }

    /// The noisy sum of one round and how many it holds, or nil when a distributed round ends
    /// with fewer contributions than its noise needs (nothing is released).
    private func privateSum(
        _ payloads: [ParticipantID: [Double]], plan: PrivateRunPlan, mechanism: DistributedDP?, clip: Double,
        round: Int, noise: NoiseSource, secureSum: inout some SecureSum
    ) throws -> (sum: [Double], contributors: Int)? {
        let c = configuration
        let bound = plan.recordBound(clip: clip)
        let length = payloads.first?.value.count ?? plan.payloadLength
        if let mechanism {
            var rotationGenerator = Xoshiro256(seed: c.seed, purpose: .rotation, round: round)
            let rotation = RandomizedHadamard(dimension: mechanism.dimension, using: &rotationGenerator)
            var shares: [ParticipantID: ModularVector] = [:]
            for (id, x) in payloads {
                var rounding = Xoshiro256(seed: c.seed, purpose: .rounding, round: round, participant: Int(id.rawValue))
                var generator = noise.generator(party: participantName(Int(id.rawValue) - 1), round: round)
                shares[id] = try mechanism.encode(
                    x, bound: bound, rotation: rotation, rounding: &rounding, noiseGenerator: &generator)
            }
            let result = try secureSum.sum(shares, round: round)
            // Dropouts inside the protocol can leave fewer noise shares than the accounting
            // assumed: such a sum must not be used (in a deployment the secure-sum threshold
            // must be at least this minimum, so that it is never even revealed).
            guard result.survivors.count >= plan.minimumParticipants else { return nil }
            return (try mechanism.decode(result.sum, bound: bound, rotation: rotation), result.survivors.count)
        }
        // Central: the fixed-point encoding rounds each entry by less than 2^−f, so clip to
        // R − √len·2^−f first and the encoded vector still has norm ≤ R.
        let codec = try payloadCodec(addends: payloads.count, clip: bound)
        let slack = Double(length).squareRoot() * pow(2, -Double(codec.fractionalBits))
        var contributions: [ParticipantID: ModularVector] = [:]
        for (id, x) in payloads {
            var rounding = Xoshiro256(seed: c.seed, purpose: .rounding, round: round, participant: Int(id.rawValue))
            contributions[id] = try codec.encode(L2Clipping.clip(x, to: bound - slack).clipped, using: &rounding)
        }
        let result = try secureSum.sum(contributions, round: round)
        var generator = noise.generator(party: "server", round: round)
        let sum = try codec.decode(result.sum)
        let gaussian = GaussianNoise.samples(
            sum.count, standardDeviation: plan.noiseStandardDeviation(clip: clip), using: &generator)
        return (zip(sum, gaussian).map { $0 + $1 }, result.survivors.count)
    }
}
