import Foundation
import VeilCore
import VeilCrypto
import VeilPrivacy

/// The project's `VEIL-DP` file: sampler draws from the deterministic generator, the
/// Hadamard rotation, a participant's distributed-DP share, and the distributed mechanisms'
/// ε, the heuristic scale, and the refusals of every parameter rule — each recomputed by
/// `Specs/reference/privacy_reference.py`.
enum PrivacyProjectRunner: VectorRunner {
    static let algorithm = "VEIL-DP"
    static let relativeTolerance = 1e-9

    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// discreteGaussian, skellam, rotation, encodeShare, distributedEpsilon, scale, calibrate,
        /// dominated.
        var operation: String
        var variance: Double?
        var seed: String?
        var samples: [Int64]?
        var dimension: Int?
        var x: [Double]?
        var rotated: [Double]?
        // encodeShare
        var noise: String?
        var bound: Double?
        var unitScale: Double?
        var unitLocalStandardDeviation: Double?
        var bits: Int?
        var minimumParticipants: Int?
        var beta: Double?
        var roundingSeed: String?
        var noiseSeed: String?
        var share: [String]?
        // distributedEpsilon
        var localVariance: Double?
        var participants: Int?
        var l2Sensitivity: Double?
        var l1Sensitivity: Double?
        var samplingRate: Double?
        var steps: Int?
        var delta: Double?
        var epsilon: Double?
        var order: Double?
        /// distributedEpsilon: the RDP orders (absent: `RDPAccountant.defaultOrders`).
        var orders: [Double]?
        // scale (§4.4): unitLocalStandardDeviation, bits, participants, dimension (m) and k give unitScale.
        var kStddevs: Double?
        // calibrate (§5.4; with `noise`, §4.5): the target and schedule give the noise multiplier.
        var noiseMultiplier: Double?
        // dominated (§4.7): the reference mechanism (noise, bits, minimumParticipants, beta and
        // these), the new dimension, the rates and n_max (participants) give unitScale and
        // unitLocalStandardDeviation.
        var referenceDimension: Int?
        var referenceUnitScale: Double?
        var referenceUnitLocalStandardDeviation: Double?
        var samplingRates: [Double]?
    }

    struct Missing: Error, CustomStringConvertible {
        let field: String
        var description: String { "missing field \(field)" }
    }

    static func required<T>(_ value: T?, _ field: String) throws -> T {
        guard let value else { throw Missing(field: field) }
        return value
    }

    static func generator(_ seed: String?, _ field: String) throws -> ChaCha20Generator {
        try ChaCha20Generator(publicSeed: hex(try required(seed, field), field))
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try run(data, subsampledBound: PoissonSubsampledRDP.rdp)
    }

    /// Runs the file with another subsampling bound in the accountant: the seam through which
    /// a test shows that a broken bound fails the distributed-DP vectors.
    static func run(_ data: Data, subsampledBound: SubsampledRDPBound) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in judge(test) { try check(test, subsampledBound: subsampledBound) } }
        }
    }

    static func close(_ actual: Double, _ expected: Double, _ field: String) throws(Mismatch) {
        guard abs(actual - expected) <= relativeTolerance * abs(expected) else {
            throw Mismatch("\(field) \(actual) differs from \(expected)")
        }
    }

    static func check(_ t: Test, subsampledBound: SubsampledRDPBound = PoissonSubsampledRDP.rdp) throws {
        switch t.operation {
        case "discreteGaussian":
            var g = try generator(t.seed, "seed")
            let expected = try required(t.samples, "samples")
            let drawn = try DiscreteGaussian(variance: try required(t.variance, "variance")).samples(
                expected.count, using: &g)
            try expectEqual(drawn, expected, "samples")
        case "skellam":
            var g = try generator(t.seed, "seed")
            let expected = try required(t.samples, "samples")
            let drawn = try Skellam(variance: try required(t.variance, "variance")).samples(expected.count, using: &g)
            try expectEqual(drawn, expected, "samples")
        case "rotation":
            var g = try generator(t.seed, "seed")
            let x = try required(t.x, "x")
            let rotation = RandomizedHadamard(dimension: x.count, using: &g)
            try expectEqual(rotation.rotate(x), try required(t.rotated, "rotated"), "rotated")
        case "encodeShare":
            let mechanism = try DistributedDP(
                noise: DistributedDP.Noise(rawValue: try required(t.noise, "noise")) ?? .discreteGaussian,
                dimension: try required(t.x, "x").count, bitWidth: BitWidth(try required(t.bits, "bits")),
                minimumParticipants: try required(t.minimumParticipants, "minimumParticipants"),
                beta: try required(t.beta, "beta"), unitScale: try required(t.unitScale, "unitScale"),
                unitLocalStandardDeviation: try required(t.unitLocalStandardDeviation, "unitLocalStandardDeviation"))
            var rotationGenerator = try generator(t.seed, "seed")
            var rounding = try generator(t.roundingSeed, "roundingSeed")
            var noise = try generator(t.noiseSeed, "noiseSeed")
            let rotation = RandomizedHadamard(dimension: mechanism.dimension, using: &rotationGenerator)
            let share = try mechanism.encode(
                try required(t.x, "x"), bound: try required(t.bound, "bound"), rotation: rotation, rounding: &rounding,
                noiseGenerator: &noise)
            try expectEqual(share.elements, try required(t.share, "share").map { try decimal($0, "share") }, "share")
        case "distributedEpsilon":
            let variance = try required(t.localVariance, "localVariance")
            let sum = DistributedNoiseSum(
                noise: t.noise == "skellam"
                    ? .skellam(localVariance: variance) : .discreteGaussian(localVariance: variance),
                participants: try required(t.participants, "participants"),
                dimension: try required(t.dimension, "dimension"),
                l2Sensitivity: try required(t.l2Sensitivity, "l2Sensitivity"),
                l1Sensitivity: try required(t.l1Sensitivity, "l1Sensitivity"))
            let (epsilon, order) = try RDPAccountant.epsilon(
                of: .poissonSampledNoiseSum(samplingRate: try required(t.samplingRate, "samplingRate"), sum),
                steps: try required(t.steps, "steps"), delta: try required(t.delta, "delta"),
                orders: t.orders ?? RDPAccountant.defaultOrders, subsampledBound: subsampledBound)
            try close(epsilon, try required(t.epsilon, "epsilon"), "epsilon")
            try expectEqual(order, try required(t.order, "order"), "order")
        case "scale":
            let scale = try DistributedDP.scale(
                localStandardDeviation: try required(t.unitLocalStandardDeviation, "unitLocalStandardDeviation"),
                bits: try required(t.bits, "bits"), participants: try required(t.participants, "participants"),
                paddedDimension: try required(t.dimension, "dimension"), kStddevs: try required(t.kStddevs, "kStddevs"))
            try close(scale, try required(t.unitScale, "unitScale"), "unitScale")
        case "calibrate":
            let (epsilon, delta) = (try required(t.epsilon, "epsilon"), try required(t.delta, "delta"))
            let (q, steps) = (try required(t.samplingRate, "samplingRate"), try required(t.steps, "steps"))
            if let noise = t.noise {
                guard let family = DistributedDP.Noise(rawValue: noise) else {
                    throw VectorError.malformedField(tcId: nil, field: "noise", detail: "unknown noise \(noise)")
                }
                let mechanism = try DistributedDP.calibrate(
                    noise: family, epsilon: epsilon, delta: delta, samplingRate: q, rounds: steps,
                    minimumParticipants: try required(t.participants, "participants"),
                    dimension: try required(t.dimension, "dimension"), bits: try required(t.bits, "bits"))
                try close(
                    mechanism.unitLocalStandardDeviation, try required(t.noiseMultiplier, "noiseMultiplier"),
                    "noiseMultiplier")
            } else {
                let sigma = try NoiseCalibration.noiseMultiplier(
                    epsilon: epsilon, delta: delta, samplingRate: q, steps: steps)
                try close(sigma, try required(t.noiseMultiplier, "noiseMultiplier"), "noiseMultiplier")
            }
        case "dominated":
            let noise = try required(t.noise, "noise")
            guard let family = DistributedDP.Noise(rawValue: noise) else {
                throw VectorError.malformedField(tcId: nil, field: "noise", detail: "unknown noise \(noise)")
            }
            let reference = try DistributedDP(
                noise: family, dimension: try required(t.referenceDimension, "referenceDimension"),
                bitWidth: BitWidth(try required(t.bits, "bits")),
                minimumParticipants: try required(t.minimumParticipants, "minimumParticipants"),
                beta: try required(t.beta, "beta"), unitScale: try required(t.referenceUnitScale, "referenceUnitScale"),
                unitLocalStandardDeviation: try required(
                    t.referenceUnitLocalStandardDeviation, "referenceUnitLocalStandardDeviation"))
            let mechanism = try DistributedDP.calibrate(
                dominatedBy: reference, dimension: try required(t.dimension, "dimension"),
                samplingRates: try required(t.samplingRates, "samplingRates"),
                maximumParticipants: try required(t.participants, "participants"))
            try close(mechanism.unitScale, try required(t.unitScale, "unitScale"), "unitScale")
            try close(
                mechanism.unitLocalStandardDeviation,
                try required(t.unitLocalStandardDeviation, "unitLocalStandardDeviation"), "unitLocalStandardDeviation")
        default:
            throw VectorError.unreadable("unknown operation \(t.operation)")
        }
    }
}
