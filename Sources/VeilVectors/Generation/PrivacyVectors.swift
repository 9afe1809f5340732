import Foundation
import VeilCore
import VeilCrypto
import VeilPrivacy

extension ProjectVectors {
    static func privacy() throws -> VectorFile<PrivacyProjectRunner.Group> {
        typealias Test = PrivacyProjectRunner.Test
        var inputs = Inputs("dp")
        var tests: [Test] = []
        func add(
            _ operation: String, _ comment: String, _ flags: [String] = ["Normal"], result: ExpectedResult = .valid,
            error: String? = nil, configure: (inout Test) throws -> Void
        ) rethrows {
            var t = Test(
                tcId: tests.count + 1, comment: comment, flags: flags, result: result, error: error,
                operation: operation)
            try configure(&t)
            tests.append(t)
        }
        func generator(_ seed: String) throws -> ChaCha20Generator {
            try ChaCha20Generator(publicSeed: try Hex.decode(seed))
        }

        for (variance, count) in [
            (0.25, 32), (0.81, 32), (1.0, 32), (2.5, 32), (10.0, 32), (1000.0, 32), (123_456.789, 16), (1e6, 16),
        ] {
            let seed = inputs.hex(ChaCha20Generator.seedByteCount)
            var g = try generator(seed)
            let samples = try DiscreteGaussian(variance: variance).samples(count, using: &g)
            add("discreteGaussian", "discrete Gaussian, σ² = \(variance): \(count) draws") {
                $0.variance = variance; $0.seed = seed; $0.samples = samples
            }
        }
        for variance in [0.0, -1.0, 0x1p53] {
            add(
                "discreteGaussian", "discrete Gaussian refuses σ² = \(variance)", ["Refused"], result: .invalid,
                error: "invalidVariance"
            ) {
                $0.variance = variance; $0.seed = inputs.hex(ChaCha20Generator.seedByteCount); $0.samples = [0]
            }
        }
        for variance in [0.5, 3.0, 19.5, 50.0, 1e4, 1e7] {
            let seed = inputs.hex(ChaCha20Generator.seedByteCount)
            var g = try generator(seed)
            let samples = try Skellam(variance: variance).samples(32, using: &g)
            add("skellam", "Skellam, μ = \(variance): 32 draws (Poisson(μ/2) − Poisson(μ/2))") {
                $0.variance = variance; $0.seed = seed; $0.samples = samples
            }
        }
        add("skellam", "Skellam refuses μ = 0", ["Refused"], result: .invalid, error: "invalidVariance") {
            $0.variance = 0; $0.seed = inputs.hex(ChaCha20Generator.seedByteCount); $0.samples = [0]
        }
        for dimension in [1, 3, 8, 13] {
            let seed = inputs.hex(ChaCha20Generator.seedByteCount)
            let x = (0..<dimension).map { _ in (inputs.generator.unit() * 2 - 1).roundedTo(bits: 20) }
            var g = try generator(seed)
            let rotated = RandomizedHadamard(dimension: dimension, using: &g).rotate(x)
            add("rotation", "randomised Hadamard rotation of \(dimension) values (padded to a power of two)") {
                $0.seed = seed; $0.x = x; $0.rotated = rotated
            }
        }
        for (noise, dimension, bits, scale, sigma) in [
            (DistributedDP.Noise.discreteGaussian, 5, 16, 100.0, 0.5), (.discreteGaussian, 13, 20, 1000.0, 0.02),
            (.skellam, 5, 16, 100.0, 0.5), (.skellam, 13, 20, 1000.0, 0.02),
        ] {
            let (seed, rounding, noiseSeed) = (
                inputs.hex(ChaCha20Generator.seedByteCount), inputs.hex(ChaCha20Generator.seedByteCount),
                inputs.hex(ChaCha20Generator.seedByteCount)
            )
            let raw = (0..<dimension).map { _ in inputs.generator.unit() * 2 - 1 }
            let bound = 2.0
            let x = L2Clipping.clip(raw, to: bound * 0.75).clipped.map { $0.roundedTo(bits: 20) }
            let mechanism = try DistributedDP(
                noise: noise, dimension: dimension, bitWidth: BitWidth(bits), minimumParticipants: 10,
                beta: exp(-0.5), unitScale: scale, unitLocalStandardDeviation: sigma)
            var (r, g1, g2) = (try generator(seed), try generator(rounding), try generator(noiseSeed))
            let rotation = RandomizedHadamard(dimension: dimension, using: &r)
            let share = try mechanism.encode(x, bound: bound, rotation: rotation, rounding: &g1, noiseGenerator: &g2)
            add(
                "encodeShare",
                "\(noise.rawValue) share of \(dimension) values, \(bits) bits, s₁ = \(scale), σ₁ = \(sigma)"
            ) {
                $0.noise = noise.rawValue; $0.x = x; $0.bound = bound; $0.unitScale = scale
                $0.unitLocalStandardDeviation = sigma; $0.bits = bits; $0.minimumParticipants = 10
                $0.beta = exp(-0.5); $0.seed = seed; $0.roundingSeed = rounding; $0.noiseSeed = noiseSeed
                $0.share = share.elements.map(String.init)
            }
        }
        add(
            "encodeShare", "a vector three times over its bound cannot be rounded within the rounded bound",
            ["Refused"], result: .invalid, error: "roundingFailed"
        ) {
            $0.noise = "ddg"; $0.x = [3, 0, 0, 0]; $0.bound = 1; $0.unitScale = 100; $0.unitLocalStandardDeviation = 0.5
            $0.bits = 16; $0.minimumParticipants = 10; $0.beta = exp(-0.5);
            $0.seed = inputs.hex(ChaCha20Generator.seedByteCount)
            $0.roundingSeed = inputs.hex(ChaCha20Generator.seedByteCount);
            $0.noiseSeed = inputs.hex(ChaCha20Generator.seedByteCount); $0.share = []
        }
        for (noise, variance, n, dimension, q, steps) in [
            ("ddg", 4.0, 1, 1024, 1.0, 1), ("ddg", 25.0, 10, 1024, 1.0, 50), ("ddg", 0.25, 100, 1024, 0.1, 100),
            ("ddg", 400.0, 100, 65536, 0.01, 1000), ("skellam", 4.0, 1, 1024, 1.0, 1),
            ("skellam", 25.0, 10, 1024, 1.0, 50), ("skellam", 400.0, 100, 65536, 0.01, 1000),
            ("skellam", 1e4, 1000, 16384, 0.05, 200),
        ] {
            let scaledClip = 8 * (variance * Double(n)).squareRoot()
            let l2 = min(
                scaledClip + Double(dimension).squareRoot(),
                (scaledClip * scaledClip + 0.25 * Double(dimension) + (2 * 0.5).squareRoot()
                    * (scaledClip + 0.5 * Double(dimension).squareRoot())).squareRoot())
            let l1 = l2 * min(Double(dimension).squareRoot(), l2)
            let sum = DistributedNoiseSum(
                noise: noise == "ddg" ? .discreteGaussian(localVariance: variance) : .skellam(localVariance: variance),
                participants: n, dimension: dimension, l2Sensitivity: l2, l1Sensitivity: l1)
            var accountant = RDPAccountant()
            accountant.compose(.poissonSampledNoiseSum(samplingRate: q, sum), count: steps)
            let (epsilon, order) = accountant.epsilon(delta: 1e-5)
            add(
                "distributedEpsilon",
                "\(noise): \(n) participants of local variance \(variance), d = \(dimension), q = \(q), \(steps) rounds"
            ) {
                $0.noise = noise; $0.localVariance = variance; $0.participants = n; $0.dimension = dimension
                $0.l2Sensitivity = l2; $0.l1Sensitivity = l1; $0.samplingRate = q; $0.steps = steps; $0.delta = 1e-5
                $0.epsilon = epsilon; $0.order = order
            }
        }
        return VectorFile(
            algorithm: PrivacyProjectRunner.algorithm, generatorVersion: version,
            header: [
                "Specs/privacy.md: exact discrete Gaussian and Skellam draws from the ChaCha20 generator (section 3),",
                "the randomised Hadamard rotation and a participant's distributed-DP share (section 4), and the",
                "distributed mechanisms' epsilon with the default orders at delta 1e-5 (section 5).",
            ],
            notes: [
                "Normal": VectorNote(bugType: "FUNCTIONALITY", description: "must reproduce the listed output"),
                "Refused": VectorNote(bugType: "EDGE_CASE", description: "must be refused with the listed error"),
            ],
            testGroups: [TestGroup(tests: tests)], numberOfTests: tests.count)
    }
}

extension Double {
    /// Rounded to a multiple of 2^−bits, so that the decimal in the JSON file is exact.
    fileprivate func roundedTo(bits: Int) -> Double {
        let scale = Double(UInt64(1) << bits)
        return (self * scale).rounded() / scale
    }
}
