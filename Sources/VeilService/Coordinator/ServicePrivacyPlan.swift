import Foundation
import VeilCore
import VeilCrypto
import VeilPrivacy
import VeilSecAgg
import VeilWire

/// Differential privacy in the service, calibrated once for the run (`Specs/wire.md` §4.2,
/// §4.3): the mechanism, the cost of one round to a contributor, and where the coordinator's
/// noise comes from. The ledger of what each participant has spent lives in the store.
struct ServicePrivacyPlan: Sendable {
    enum Mechanism: Sendable {
        /// The coordinator adds N(0, (z·C)²) to each coordinate of the decoded sum.
        case central(noiseMultiplier: Double)
        /// Each participant adds its share of integer noise inside Z_2^bits.
        case distributed(DistributedDP)
    }

    let settings: ServicePrivacy
    let mechanism: Mechanism
    /// The distributed mechanisms of coordinate-subset rounds, by k: each costs at most
    /// ``distributed``'s round at every Rényi order (`Specs/privacy.md` §4.7).
    let subsetMechanisms: [Int: DistributedDP]
    /// One round, to a participant that contributed to it, with no amplification: the
    /// coordinator chose the cohort, so it knows who was in it. A subset round costs at most this.
    let participation: RDPAccountant
    /// Fresh system randomness, expanded by ChaCha20 (`Specs/privacy.md` §3).
    let noise = NoiseSource.system()

    /// Calibrates the noise so that a participant in all `rounds` rounds spends (ε, δ).
    /// - Parameters:
    ///   - updateLength: d, the model's parameter count.
    ///   - minParticipants, cohortSize: the serve configuration's; the distributed modes size
    ///     the noise for `min_contributors` shares and the modulus for a whole cohort.
    ///   - subsetSizes: the k of every coordinate subset a round may send (serve.json's
    ///     `subset` or `adaptive_compression`); the distributed modes calibrate one mechanism each.
    init(
        _ settings: ServicePrivacy, rounds: Int, updateLength: Int, minParticipants: Int, cohortSize: Int,
        subsetSizes: Set<Int> = []
    ) throws {
        self.settings = settings
        do {
            switch settings.mode {
            case .central:
                mechanism = .central(
                    noiseMultiplier: try NoiseCalibration.noiseMultiplier(
                        epsilon: settings.epsilon, delta: settings.delta, samplingRate: 1, steps: rounds))
            case .ddg, .skellam:
                mechanism = .distributed(
                    try DistributedDP.calibrate(
                        noise: settings.mode == .ddg ? .discreteGaussian : .skellam, epsilon: settings.epsilon,
                        delta: settings.delta, samplingRate: 1, rounds: rounds,
                        minimumParticipants: settings.minContributors ?? minParticipants,
                        maximumParticipants: cohortSize, dimension: updateLength, bits: settings.bits))
            }
        } catch {
            throw ConfigurationError("privacy: no noise meets ε = \(settings.epsilon) over \(rounds) rounds: \(error)")
        }
        switch mechanism {
        case .central(let z):
            var one = RDPAccountant()
            one.compose(.gaussian(noiseMultiplier: z))
            participation = one
        case .distributed(let mechanism): participation = Self.participation(mechanism)
        }
        var subsets: [Int: DistributedDP] = [:]
        if case .distributed(let reference) = mechanism {
            for k in subsetSizes.sorted() {
                do {
                    subsets[k] =
                        k == reference.dimension
                        ? reference
                        : try DistributedDP.calibrate(
                            dominatedBy: reference, dimension: k, maximumParticipants: cohortSize)
                } catch {
                    throw ConfigurationError(
                        "privacy: no noise lets a round of \(k) coordinates cost no more than a full round: \(error)")
                }
            }
        }
        subsetMechanisms = subsets
    }

    /// The distributed mechanism of a round that sends `subsetSize` coordinates (nil: all),
    /// if the participants add the noise.
    func distributed(subsetSize: Int?) throws -> DistributedDP? {
        guard let reference = distributed, let k = subsetSize else { return distributed }
        guard let mechanism = subsetMechanisms[k] else {
            // Every size a round can choose was calibrated at start (ServeConfiguration.subsetSizes).
            throw ConfigurationError(
                "privacy: no distributed mechanism was calibrated for a subset of \(k) of \(reference.dimension)")
        }
        return mechanism
    }

    /// The policy of the ledger this configuration keeps.
    var policy: PrivacyLedger.Policy {
        .init(epsilon: settings.budget, delta: settings.delta, alertFraction: settings.alertFraction)
    }

    /// The distributed mechanism, if the participants add the noise.
    var distributed: DistributedDP? {
        if case .distributed(let mechanism) = mechanism { return mechanism }
        return nil
    }

    // MARK: - Central

    /// The fixed-point rounding slack √L·2^−f of a payload of `length` values: participants clip
    /// to C minus it, so that the encoded update's norm stays within C.
    static func slack(length: Int, fractionalBits: Int) -> Double {
        Double(length).squareRoot() * pow(2, -Double(fractionalBits))
    }

    /// The standard deviation of the noise on each summed coordinate, in real units.
    var standardDeviation: Double {
        switch mechanism {
        case .central(let z): z * settings.clip
        case .distributed(let mechanism): mechanism.centralStandardDeviation(bound: settings.clip)
        }
    }

    /// Central: adds the round's noise to the decoded sum and replaces the weight coordinate
    /// by the cohort size — DP-FedAvg's fixed denominator, so the estimate's sensitivity is
    /// C / cohort.
    func release(sum: [Double], cohort: Int, round: Int) -> [Double] {
        let d = sum.count - 1
        var generator = noise.generator(party: "coordinator", round: round)
        let gaussian = GaussianNoise.samples(d, standardDeviation: standardDeviation, using: &generator)
        return zip(sum.prefix(d), gaussian).map { $0 + $1 } + [Double(cohort)]
    }

    // MARK: - Distributed

    /// One round of `mechanism` to a participant in it: the participant computes this itself
    /// from the plan it is sent, so a coordinator cannot understate the cost.
    static func participation(_ mechanism: DistributedDP) -> RDPAccountant {
        var one = RDPAccountant()
        one.compose(.poissonSampledNoiseSum(samplingRate: 1, mechanism.noiseSum))
        return one
    }

    /// A distributed-DP plan against the session it is sent with, as a participant checks it
    /// before adding its noise and an auditor checks it afterwards (`Specs/wire.md` §4.3): the
    /// sum can be unmasked only with at least `threshold` inputs, each carrying a noise share,
    /// on the mechanism's ring and padded length. Returns the mechanism.
    static func checked(_ plan: Veil_V1_DistributedDPPlan, against parameters: SecAggParameters) throws
        -> DistributedDP
    {
        let mechanism: DistributedDP
        do { mechanism = try Self.mechanism(plan) } catch {
            throw ConfigurationError("the distributed-DP plan: \(error)")
        }
        guard parameters.threshold >= mechanism.minimumParticipants else {
            throw ConfigurationError(
                "the session's threshold \(parameters.threshold) is below the \(mechanism.minimumParticipants) noise shares the plan's privacy assumes"
            )
        }
        guard parameters.bitWidth == mechanism.bitWidth, parameters.dimension == mechanism.paddedDimension else {
            throw ConfigurationError("the session's ring or length does not fit the distributed-DP plan")
        }
        return mechanism
    }

    /// The round's plan for the participants, with a fresh public rotation seed.
    func plan(_ mechanism: DistributedDP) -> Veil_V1_DistributedDPPlan {
        var plan = Veil_V1_DistributedDPPlan()
        plan.noise = mechanism.noise.rawValue
        plan.clip = settings.clip
        plan.bits = UInt32(mechanism.bitWidth.bits)
        plan.dimension = UInt32(mechanism.dimension)
        plan.minimumParticipants = UInt32(mechanism.minimumParticipants)
        plan.beta = mechanism.beta
        plan.unitScale = mechanism.unitScale
        plan.unitLocalStddev = mechanism.unitLocalStandardDeviation
        plan.rotationSeed = Data(SecureBytes.random(count: ChaCha20Generator.seedByteCount).unsafeExposedBytes())
        return plan
    }

    /// The mechanism a plan describes (checked by `DistributedDP`'s own validation).
    static func mechanism(_ plan: Veil_V1_DistributedDPPlan) throws -> DistributedDP {
        guard let noise = DistributedDP.Noise(rawValue: plan.noise) else {
            throw ConfigurationError("unknown distributed noise \(plan.noise)")
        }
        return try DistributedDP(
            noise: noise, dimension: Int(plan.dimension), bitWidth: BitWidth(Int(plan.bits)),
            minimumParticipants: Int(plan.minimumParticipants), beta: plan.beta, unitScale: plan.unitScale,
            unitLocalStandardDeviation: plan.unitLocalStddev)
    }

    /// The round's rotation: random signs from ChaCha20Generator(publicSeed: seed).
    static func rotation(_ plan: Veil_V1_DistributedDPPlan) throws -> RandomizedHadamard {
        guard plan.rotationSeed.count == ChaCha20Generator.seedByteCount, plan.dimension >= 1 else {
            throw ConfigurationError(
                "the rotation seed must be \(ChaCha20Generator.seedByteCount) bytes and the dimension positive")
        }
        var generator = try ChaCha20Generator(publicSeed: Array(plan.rotationSeed))
        return RandomizedHadamard(dimension: Int(plan.dimension), using: &generator)
    }
}
