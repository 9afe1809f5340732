import Foundation
import VeilPrivacy

/// The coordinator's side of central differential privacy (`Specs/wire.md` §4.2): the noise
/// calibrated once for the run, the cost of one round to a contributor, and where the noise
/// comes from. The ledger of what each participant has spent lives in the coordinator's store.
struct CentralPrivacy: Sendable {
    let settings: ServicePrivacy
    /// z: the noise on each coordinate of a round's sum is N(0, (z·C)²).
    let noiseMultiplier: Double
    /// One round, to a participant that contributed to it: the Gaussian mechanism at z, no
    /// amplification (the coordinator chose the cohort, so it knows who was in it).
    let participation: RDPAccountant
    /// Fresh system randomness, expanded by ChaCha20 (`Specs/privacy.md` §3).
    let noise = NoiseSource.system()

    init(_ settings: ServicePrivacy, rounds: Int) throws {
        self.settings = settings
        do {
            noiseMultiplier = try NoiseCalibration.noiseMultiplier(
                epsilon: settings.epsilon, delta: settings.delta, samplingRate: 1, steps: rounds)
        } catch {
            throw ConfigurationError("privacy: no noise meets ε = \(settings.epsilon) over \(rounds) rounds: \(error)")
        }
        var one = RDPAccountant()
        one.compose(.gaussian(noiseMultiplier: noiseMultiplier))
        participation = one
    }

    /// The policy of the ledger this configuration keeps.
    var policy: PrivacyLedger.Policy {
        .init(epsilon: settings.budget, delta: settings.delta, alertFraction: settings.alertFraction)
    }

    /// The standard deviation of the noise on each summed coordinate.
    var standardDeviation: Double { noiseMultiplier * settings.clip }

    /// The fixed-point rounding slack √L·2^−f of a payload of `length` values: participants clip
    /// to C minus it, so that the encoded update's norm stays within C.
    static func slack(length: Int, fractionalBits: Int) -> Double {
        Double(length).squareRoot() * pow(2, -Double(fractionalBits))
    }

    /// Adds the round's noise to the decoded sum and replaces the weight coordinate by the
    /// cohort size — DP-FedAvg's fixed denominator, so the estimate's sensitivity is C / cohort.
    func release(sum: [Double], cohort: Int, round: Int) -> [Double] {
        let d = sum.count - 1
        var generator = noise.generator(party: "coordinator", round: round)
        let gaussian = GaussianNoise.samples(d, standardDeviation: standardDeviation, using: &generator)
        return zip(sum.prefix(d), gaussian).map { $0 + $1 } + [Double(cohort)]
    }
}
