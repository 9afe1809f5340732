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
        try distributedOrders { try add($0, $1, $2, result: $3, error: $4, configure: $5) }
        try parameterRefusals({ try add($0, $1, $2, result: $3, error: $4, configure: $5) }, inputs: &inputs)
        return VectorFile(
            algorithm: PrivacyProjectRunner.algorithm, generatorVersion: version,
            header: [
                "Specs/privacy.md: exact discrete Gaussian and Skellam draws from the ChaCha20 generator (section 3),",
                "the randomised Hadamard rotation and a participant's distributed-DP share (section 4), and the",
                "distributed mechanisms' epsilon with the default orders at delta 1e-5 (section 5), with noise",
                "multipliers chosen so that the optimal order (`order`) ranges from 3 to 1024; the heuristic scale",
                "(section 4.4); and a refusal for every parameter rule of sections 4.4, 4.5, 5.4 and 5.6.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "FUNCTIONALITY", description: "must reproduce the listed output"),
                "Refused": VectorNote(bugType: "EDGE_CASE", description: "must be refused with the listed error"),
                "HighOrder": VectorNote(
                    bugType: "FUNCTIONALITY",
                    description:
                        "the optimal RDP order is above 2: at q < 1 the subsampling bound terms l >= 3 decide epsilon"),
            ],
            testGroups: [TestGroup(tests: tests)], numberOfTests: tests.count)
    }
}

/// Adds one case to the file being generated.
typealias AddPrivacyCase = (
    _ operation: String, _ comment: String, _ flags: [String], _ result: ExpectedResult, _ error: String?,
    _ configure: (inout PrivacyProjectRunner.Test) throws -> Void
) throws -> Void

extension ProjectVectors {
    /// The rounded sensitivities (§4.2, β = e^{−1/2}) of a scaled clip c in dimension m.
    static func roundedSensitivities(scaledClip c: Double, dimension m: Int) -> (l2: Double, l1: Double) {
        let d = Double(m)
        let l2 = min(
            c + d.squareRoot(), (c * c + 0.25 * d + (2 * 0.5).squareRoot() * (c + 0.5 * d.squareRoot())).squareRoot())
        return (l2, l2 * min(d.squareRoot(), l2))
    }

    /// Distributed-DP ε whose optimal order spans the order list: the scaled clip is the summed
    /// noise's deviation over a noise multiplier z, and small q, large z or few rounds move the
    /// optimum up. Cases at q < 1 with an optimum above 2 are the ones that exercise the terms
    /// l ≥ 3 of the subsampling bound (§5.3).
    static func distributedOrders(_ add: AddPrivacyCase) throws {
        for (noise, variance, n, dimension, z, q, steps) in [
            ("skellam", 100.0, 100, 1024, 0.8, 0.05, 200), ("ddg", 100.0, 100, 1024, 0.8, 0.01, 100),
            ("skellam", 400.0, 50, 4096, 1.0, 0.01, 1000), ("ddg", 100.0, 100, 1024, 1.2, 0.01, 1000),
            ("skellam", 100.0, 100, 1024, 1.5, 0.01, 1000), ("ddg", 100.0, 100, 1024, 2.0, 0.01, 1000),
            ("skellam", 100.0, 100, 1024, 3.0, 0.01, 1000), ("ddg", 100.0, 100, 1024, 4.0, 0.01, 300),
            ("skellam", 1e4, 100, 1024, 5.0, 0.01, 100), ("ddg", 100.0, 100, 1024, 8.0, 0.005, 100),
            ("ddg", 100.0, 100, 1024, 15.0, 0.001, 10), ("skellam", 1e4, 100, 1024, 10.0, 0.002, 50),
            ("skellam", 1e4, 100, 1024, 20.0, 0.01, 10), ("ddg", 1e4, 1000, 1024, 40.0, 1.0, 1),
            ("skellam", 1e4, 1000, 1024, 25.0, 1.0, 1),
        ] {
            let (l2, l1) = roundedSensitivities(
                scaledClip: (variance * Double(n)).squareRoot() / z, dimension: dimension)
            let sum = DistributedNoiseSum(
                noise: noise == "ddg" ? .discreteGaussian(localVariance: variance) : .skellam(localVariance: variance),
                participants: n, dimension: dimension, l2Sensitivity: l2, l1Sensitivity: l1)
            let (epsilon, order) = try RDPAccountant.epsilon(
                of: .poissonSampledNoiseSum(samplingRate: q, sum), steps: steps, delta: 1e-5)
            try add(
                "distributedEpsilon",
                "\(noise): \(n) participants of local variance \(variance), d = \(dimension), noise multiplier \(z), "
                    + "q = \(q), \(steps) rounds: optimal order \(order)", ["Normal", "HighOrder"], .valid, nil
            ) {
                $0.noise = noise; $0.localVariance = variance; $0.participants = n; $0.dimension = dimension
                $0.l2Sensitivity = l2; $0.l1Sensitivity = l1; $0.samplingRate = q; $0.steps = steps; $0.delta = 1e-5
                $0.epsilon = epsilon; $0.order = order
            }
        }
    }

    /// One refusal for every parameter rule (§4.4, §4.5, §5.4, §5.6) and a few accepted scales.
    static func parameterRefusals(_ add: AddPrivacyCase, inputs: inout Inputs) throws {
        func seed() -> String { inputs.hex(ChaCha20Generator.seedByteCount) }
        // The accountant (§5.6), each case breaking one rule of an otherwise valid request.
        let (l2, l1) = roundedSensitivities(scaledClip: 50, dimension: 1024)
        for (why, change) in [
            ("zero local noise", { (t: inout PrivacyProjectRunner.Test) in t.localVariance = 0 }),
            ("negative local noise", { $0.localVariance = -1 }),
            ("a negative sampling rate", { $0.samplingRate = -0.01 }),
            ("a sampling rate above 1", { $0.samplingRate = 1.5 }),
            ("δ = 0", { $0.delta = 0 }), ("δ = 1", { $0.delta = 1 }),
            ("a negative number of rounds", { $0.steps = -1 }),
            ("an empty list of orders", { $0.orders = [] }),
            ("an order of 1", { $0.orders = [1, 2, 4] }),
            ("no participant", { $0.participants = 0 }),
            ("dimension 0", { $0.dimension = 0 }),
            ("a negative L2 sensitivity", { $0.l2Sensitivity = -1 }),
            ("a negative L1 sensitivity", { $0.l1Sensitivity = -1 }),
        ] as [(String, (inout PrivacyProjectRunner.Test) -> Void)] {
            try add("distributedEpsilon", "the accountant refuses \(why)", ["Refused"], .invalid, "invalidParameters") {
                $0.noise = "ddg"; $0.localVariance = 100; $0.participants = 100; $0.dimension = 1024
                $0.l2Sensitivity = l2; $0.l1Sensitivity = l1; $0.samplingRate = 0.01; $0.steps = 1000
                $0.delta = 1e-5; $0.epsilon = 0; $0.order = 0
                change(&$0)
            }
        }
        // A mechanism (§4): DistributedDP's own rules, through a participant's share.
        for (why, change) in [
            ("an empty vector (dimension 0)", { (t: inout PrivacyProjectRunner.Test) in t.x = [] }),
            ("a floor of 0 participants", { $0.minimumParticipants = 0 }),
            ("β = 1", { $0.beta = 1 }), ("a negative β", { $0.beta = -0.5 }),
            ("scale 0", { $0.unitScale = 0 }), ("zero noise", { $0.unitLocalStandardDeviation = 0 }),
            ("negative noise", { $0.unitLocalStandardDeviation = -0.5 }),
            (
                "a scale of 2^63 (local variance 1), whose scaled coordinates 64-bit integers cannot hold",
                {
                    $0.unitScale = 0x1p63; $0.unitLocalStandardDeviation = 0x1p-63
                }
            ),
            (
                "a local variance (s₁σ₁)² = 10^18 beyond the samplers' 2^52",
                {
                    $0.unitScale = 1e6; $0.unitLocalStandardDeviation = 1000
                }
            ),
        ] as [(String, (inout PrivacyProjectRunner.Test) -> Void)] {
            try add("encodeShare", "a mechanism with \(why) is refused", ["Refused"], .invalid, "invalidParameters") {
                $0.noise = "ddg"; $0.x = [0.5, -0.25, 0.125]; $0.bound = 1; $0.unitScale = 100
                $0.unitLocalStandardDeviation = 0.5; $0.bits = 16; $0.minimumParticipants = 10; $0.beta = exp(-0.5)
                $0.seed = seed(); $0.roundingSeed = seed(); $0.noiseSeed = seed(); $0.share = []
                change(&$0)
            }
        }
        // The heuristic scale (§4.4).
        for (sigma, bits, n, m) in [(0.05, 20, 100, 1024), (0.5, 32, 1000, 65536), (0.0, 16, 10, 8), (2.0, 64, 1, 1)] {
            let k = DistributedDP.defaultStddevs(paddedDimension: m)
            let scale = try DistributedDP.scale(
                localStandardDeviation: sigma, bits: bits, participants: n, paddedDimension: m, kStddevs: k)
            try add(
                "scale", "s₁ for σ₁ = \(sigma), b = \(bits), n_max = \(n), m = \(m), default k", ["Normal"], .valid, nil
            ) {
                $0.unitLocalStandardDeviation = sigma; $0.bits = bits; $0.participants = n; $0.dimension = m
                $0.kStddevs = k; $0.unitScale = scale
            }
        }
        for (why, change) in [
            (
                "2^(2b) = 256 ≤ n_max·k² = 1,600 (more bits needed)",
                { (t: inout PrivacyProjectRunner.Test) in
                    t.bits = 4; t.participants = 100; t.kStddevs = 4
                }
            ),
            ("0 bits", { $0.bits = 0 }), ("65 bits", { $0.bits = 65 }), ("n_max = 0", { $0.participants = 0 }),
            ("m = 0", { $0.dimension = 0 }), ("k = 0", { $0.kStddevs = 0 }),
            ("negative noise", { $0.unitLocalStandardDeviation = -1 }),
        ] as [(String, (inout PrivacyProjectRunner.Test) -> Void)] {
            try add("scale", "the scale refuses \(why)", ["Refused"], .invalid, "invalidParameters") {
                $0.unitLocalStandardDeviation = 0.05; $0.bits = 20; $0.participants = 100; $0.dimension = 1024
                $0.kStddevs = 4; $0.unitScale = 0
                change(&$0)
            }
        }
        // Calibration (§5.4 and §4.5): one target met, then each rule broken.
        let sigma = try NoiseCalibration.noiseMultiplier(epsilon: 2, delta: 1e-5, samplingRate: 0.01, steps: 1000)
        try add(
            "calibrate", "the Gaussian noise multiplier for ε = 2, δ = 10⁻⁵, q = 0.01, 1000 steps", ["Normal"], .valid,
            nil
        ) {
            $0.epsilon = 2; $0.delta = 1e-5; $0.samplingRate = 0.01; $0.steps = 1000; $0.noiseMultiplier = sigma
        }
        for noise in [nil, "ddg"] as [String?] {
            let what = noise.map { "the \($0) calibration" } ?? "the Gaussian calibration"
            for (why, change) in [
                ("ε = 0", { (t: inout PrivacyProjectRunner.Test) in t.epsilon = 0 }), ("ε < 0", { $0.epsilon = -1 }),
                ("δ = 0", { $0.delta = 0 }), ("δ = 1", { $0.delta = 1 }), ("q = 0", { $0.samplingRate = 0 }),
                ("q > 1", { $0.samplingRate = 1.5 }), ("0 steps", { $0.steps = 0 }),
            ] as [(String, (inout PrivacyProjectRunner.Test) -> Void)] {
                try add("calibrate", "\(what) refuses \(why)", ["Refused"], .invalid, "invalidTarget") {
                    $0.noise = noise; $0.epsilon = 2; $0.delta = 1e-5; $0.samplingRate = 0.01; $0.steps = 1000
                    $0.noiseMultiplier = 0
                    if noise != nil { $0.participants = 10; $0.dimension = 100; $0.bits = 20 }
                    change(&$0)
                }
            }
        }
        // A mechanism for fewer values, dominated by a run's at every order (§4.7).
        for (noise, q, k) in [
            (DistributedDP.Noise.discreteGaussian, 1.0, 1), (.discreteGaussian, 1.0, 163), (.skellam, 1.0, 40),
            (.discreteGaussian, 0.5, 100),
        ] {
            let reference = try DistributedDP.calibrate(
                noise: noise, epsilon: 4, delta: 1e-5, samplingRate: q, rounds: 10, minimumParticipants: 5,
                maximumParticipants: 8, dimension: 650, bits: 20)
            let rates = q < 1 ? [q, 1] : [1]
            let mechanism = try DistributedDP.calibrate(
                dominatedBy: reference, dimension: k, samplingRates: rates, maximumParticipants: 8)
            try add(
                "dominated",
                "\(noise.rawValue): \(k) of 650 values, rates \(rates), no costlier than the whole at any order",
                ["Normal"], .valid, nil
            ) {
                $0.noise = noise.rawValue; $0.bits = 20; $0.minimumParticipants = 5; $0.beta = reference.beta
                $0.referenceDimension = 650; $0.referenceUnitScale = reference.unitScale
                $0.referenceUnitLocalStandardDeviation = reference.unitLocalStandardDeviation
                $0.dimension = k; $0.samplingRates = rates; $0.participants = 8
                $0.unitScale = mechanism.unitScale; $0.unitLocalStandardDeviation = mechanism.unitLocalStandardDeviation
            }
        }
        for (why, change) in [
            ("dimension 0", { (t: inout PrivacyProjectRunner.Test) in t.dimension = 0 }),
            ("no sampling rate", { $0.samplingRates = [] }), ("a rate of 0", { $0.samplingRates = [0] }),
            ("a rate above 1", { $0.samplingRates = [1, 1.5] }),
        ] as [(String, (inout PrivacyProjectRunner.Test) -> Void)] {
            try add("dominated", "the dominated calibration refuses \(why)", ["Refused"], .invalid, "invalidParameters")
            {
                $0.noise = "ddg"; $0.bits = 20; $0.minimumParticipants = 5; $0.beta = exp(-0.5)
                $0.referenceDimension = 650; $0.referenceUnitScale = 1000; $0.referenceUnitLocalStandardDeviation = 0.5
                $0.dimension = 10; $0.samplingRates = [1]; $0.participants = 8; $0.unitScale = 0
                $0.unitLocalStandardDeviation = 0
                change(&$0)
            }
        }
        for (why, change) in [
            ("a floor of 0 participants", { (t: inout PrivacyProjectRunner.Test) in t.participants = 0 }),
            ("dimension 0", { $0.dimension = 0 }), ("0 bits", { $0.bits = 0 }),
        ] as [(String, (inout PrivacyProjectRunner.Test) -> Void)] {
            try add("calibrate", "the ddg calibration refuses \(why)", ["Refused"], .invalid, "invalidParameters") {
                $0.noise = "ddg"; $0.epsilon = 2; $0.delta = 1e-5; $0.samplingRate = 0.01; $0.steps = 1000
                $0.participants = 10; $0.dimension = 100; $0.bits = 20; $0.noiseMultiplier = 0
                change(&$0)
            }
        }
    }
}

extension Double {
    /// Rounded to a multiple of 2^−bits, so that the decimal in the JSON file is exact.
    fileprivate func roundedTo(bits: Int) -> Double {
        let scale = Double(UInt64(1) << bits)
        return (self * scale).rounded() / scale
    }
}
