import ArgumentParser
import Foundation
import VeilPrivacy

struct DPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dp",
        abstract: "The privacy accountant: ε of a noise level, or the noise for a target ε.",
        discussion: """
            Rényi-DP accounting with the default orders and (ε, δ) conversion of Google's dp_accounting \
            RdpAccountant (Specs/privacy.md §5). gaussian is the Poisson-subsampled Gaussian mechanism; ddg \
            and skellam are the distributed discrete Gaussian and Skellam mechanisms on a secure sum, for which \
            the noise multiplier is the summed noise's deviation over the clip bound and the scale follows \
            from --bits, --participants and --dim.
            """,
        subcommands: [Epsilon.self, Calibrate.self]
    )

    enum Mechanism: String, ExpressibleByArgument, CaseIterable {
        case gaussian, ddg, skellam
    }

    /// The schedule and, for the distributed mechanisms, the shape of the sum.
    struct Schedule: ParsableArguments {
        @Option(help: "gaussian, ddg or skellam.")
        var mechanism: Mechanism = .gaussian

        @Option(help: "Poisson sampling rate q of each step, in (0, 1].")
        var samplingRate: Double

        @Option(help: "Number of steps (rounds) T.")
        var steps: Int

        @Option(help: "δ, in (0, 1).")
        var delta: Double

        @Option(help: "ddg/skellam: the fewest participants whose noise every released sum carries.")
        var participants = 100

        @Option(name: .customLong("dim"), help: "ddg/skellam: the length of each vector.")
        var dimension = 1000

        @Option(help: "ddg/skellam: the modulus 2^bits of the secure sum.")
        var bits = 20

        func validate() throws {
            guard samplingRate > 0, samplingRate <= 1 else {
                throw ValidationError("--sampling-rate must be in (0, 1]")
            }
            guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
            guard delta > 0, delta < 1 else { throw ValidationError("--delta must be in (0, 1)") }
            guard participants >= 1 else { throw ValidationError("--participants must be at least 1") }
            guard dimension >= 1 else { throw ValidationError("--dim must be at least 1") }
            guard (1...64).contains(bits) else { throw ValidationError("--bits must be in 1...64") }
        }

        var noise: DistributedDP.Noise { mechanism == .skellam ? .skellam : .discreteGaussian }

        /// The distributed mechanism whose summed noise is `multiplier` times the clip bound.
        func distributed(multiplier: Double) throws -> DistributedDP {
            let local = multiplier / Double(participants).squareRoot()
            var padded = 1
            while padded < dimension { padded <<= 1 }
            do {
                let scale = try DistributedDP.scale(
                    localStandardDeviation: local, bits: bits, participants: participants, paddedDimension: padded,
                    kStddevs: DistributedDP.defaultStddevs(paddedDimension: padded))
                return try DistributedDP(
                    noise: noise, dimension: dimension, bitWidth: .init(bits), minimumParticipants: participants,
                    beta: exp(-0.5), unitScale: scale, unitLocalStandardDeviation: local)
            } catch { throw usageError("\(error)") }
        }

        func epsilon(multiplier: Double) throws -> (epsilon: Double, order: Double) {
            var accountant = RDPAccountant()
            switch mechanism {
            case .gaussian:
                accountant.compose(
                    .poissonSampledGaussian(samplingRate: samplingRate, noiseMultiplier: multiplier), count: steps)
            case .ddg, .skellam:
                let sum = try distributed(multiplier: multiplier).noiseSum
                accountant.compose(.poissonSampledNoiseSum(samplingRate: samplingRate, sum), count: steps)
            }
            return accountant.epsilon(delta: delta)
        }
    }

    struct Epsilon: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print ε and the optimal RDP order for a noise multiplier.")

        @OptionGroup var schedule: Schedule

        @Option(help: "Noise standard deviation over the L2 sensitivity (σ).")
        var noiseMultiplier: Double

        @OptionGroup var output: OutputOptions

        func validate() throws {
            guard noiseMultiplier > 0, noiseMultiplier.isFinite else {
                throw ValidationError("--noise-multiplier must be positive")
            }
        }

        func run() throws {
            let (epsilon, order) = try schedule.epsilon(multiplier: noiseMultiplier)
            if output.json {
                print(
                    try jsonString([
                        "epsilon": epsilon.isFinite ? epsilon : "inf", "order": order,
                        "mechanism": schedule.mechanism.rawValue, "delta": schedule.delta,
                        "sampling_rate": schedule.samplingRate, "noise_multiplier": noiseMultiplier,
                        "steps": schedule.steps,
                    ]))
            } else {
                print("epsilon \(epsilon) at order \(order) (delta \(schedule.delta))")
            }
        }
    }

    struct Calibrate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the smallest noise multiplier that meets a target ε.",
            discussion: """
                Searches to an absolute 1e-6 and prints a multiplier whose ε is at most the target. For ddg and \
                skellam it also prints the scale and each participant's noise as `veil simulate --dp` uses them.
                """)

        @Option(help: "The target ε.")
        var epsilon: Double

        @OptionGroup var schedule: Schedule

        @OptionGroup var output: OutputOptions

        func run() throws {
            var result: [String: Any] = [
                "mechanism": schedule.mechanism.rawValue, "epsilon_target": epsilon, "delta": schedule.delta,
                "sampling_rate": schedule.samplingRate, "steps": schedule.steps,
            ]
            let multiplier: Double
            switch schedule.mechanism {
            case .gaussian:
                do {
                    multiplier = try NoiseCalibration.noiseMultiplier(
                        epsilon: epsilon, delta: schedule.delta, samplingRate: schedule.samplingRate,
                        steps: schedule.steps)
                } catch { throw usageError(error.description) }
            case .ddg, .skellam:
                let mechanism: DistributedDP
                do {
                    mechanism = try DistributedDP.calibrate(
                        noise: schedule.noise, epsilon: epsilon, delta: schedule.delta,
                        samplingRate: schedule.samplingRate, rounds: schedule.steps,
                        minimumParticipants: schedule.participants, dimension: schedule.dimension, bits: schedule.bits)
                } catch { throw usageError(error.description) }
                multiplier = mechanism.centralStandardDeviation(bound: 1)
                result["scale_per_unit_clip"] = mechanism.unitScale
                result["local_noise_per_unit_clip"] = mechanism.unitLocalStandardDeviation
                result["local_variance_integer"] = mechanism.localVariance
                result["participants"] = schedule.participants
                result["bits"] = schedule.bits
            }
            let (spent, order) = try schedule.epsilon(multiplier: multiplier)
            result["noise_multiplier"] = multiplier
            result["epsilon"] = spent
            result["order"] = order
            if output.json {
                print(try jsonString(result))
            } else {
                print(
                    "noise multiplier \(multiplier): epsilon \(spent) at order \(order) (target \(epsilon), delta \(schedule.delta))"
                )
                if let scale = result["scale_per_unit_clip"] as? Double,
                    let local = result["local_noise_per_unit_clip"] as? Double
                {
                    print(
                        "scale \(scale) / clip, each participant's noise \(local) × clip (\(schedule.participants) participants, \(schedule.bits) bits)"
                    )
                }
            }
        }
    }
}
