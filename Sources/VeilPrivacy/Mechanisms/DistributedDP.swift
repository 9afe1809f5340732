import Foundation
import VeilCore

/// Distributed DP on a secure sum: each participant rotates, scales and rounds its clipped
/// vector, adds its own share of integer noise, and reduces modulo 2^b; the secure sum adds
/// the shares, so the coordinator only ever sees a sum that already carries the full noise
/// (Kairouz, Liu, Steinke, ICML 2021 for the discrete Gaussian; Agarwal, Kairouz, Liu,
/// NeurIPS 2021 for Skellam). `Specs/privacy.md` §4 is the specification.
///
/// The parameters are held per unit of clip bound: with bound C, the scale is s = s₁/C and
/// the local noise deviation (in real units) σ₁·C, so the integer-domain mechanism — and so
/// the privacy spent per round — is the same for every C, which lets adaptive clipping move C.
public struct DistributedDP: Hashable, Sendable {
    /// The noise family.
    public enum Noise: String, Hashable, Sendable, CaseIterable {
        case discreteGaussian = "ddg"
        case skellam = "skellam"
    }

    /// Why a configuration cannot be built or a vector cannot be encoded.
    public enum DistributedDPError: Error, Hashable, Sendable, CustomStringConvertible {
        case invalidParameters(String)
        case calibration(NoiseCalibration.CalibrationError)
        case roundingFailed(attempts: Int)
        case wrongLength(expected: Int, actual: Int)

        public var description: String {
            switch self {
            case .invalidParameters(let why): "invalid distributed-DP parameters: \(why)"
            case .calibration(let error): error.description
            case .roundingFailed(let attempts):
                "conditional rounding found no rounding within the norm bound in \(attempts) attempts: "
                    + "the vector was not clipped to the bound it was encoded for"
            case .wrongLength(let expected, let actual): "expected a vector of \(expected) values, got \(actual)"
            }
        }
    }

    public let noise: Noise
    /// The length of the vectors before padding.
    public let dimension: Int
    /// The modulus is 2^bits.
    public let bitWidth: BitWidth
    /// The fewest participants whose noise the released sum must carry.
    public let minimumParticipants: Int
    /// β of conditional rounding: each rounding attempt exceeds the bound with probability ≤ β.
    public let beta: Double
    /// s₁: the scale when the clip bound is 1.
    public let unitScale: Double
    /// σ₁: each participant's noise deviation, in real units, when the clip bound is 1.
    public let unitLocalStandardDeviation: Double

    public init(
        noise: Noise, dimension: Int, bitWidth: BitWidth, minimumParticipants: Int, beta: Double, unitScale: Double,
        unitLocalStandardDeviation: Double
    ) throws(DistributedDPError) {
        guard dimension >= 1 else { throw .invalidParameters("the dimension must be at least 1") }
        guard minimumParticipants >= 1 else { throw .invalidParameters("at least one participant") }
        guard (0..<1).contains(beta) else { throw .invalidParameters("β must be in [0, 1)") }
        guard unitScale > 0, unitScale.isFinite, unitLocalStandardDeviation > 0, unitLocalStandardDeviation.isFinite
        else { throw .invalidParameters("the scale and the noise must be positive") }
        // A clipped vector's scaled coordinates are at most s₁ in magnitude: at most 2^62, they
        // round to 64-bit integers (a plan's scale is the coordinator's to choose).
        guard unitScale <= 0x1p62 else { throw .invalidParameters("the scale must be at most 2^62") }
        self.noise = noise
        self.dimension = dimension
        self.bitWidth = bitWidth
        self.minimumParticipants = minimumParticipants
        self.beta = beta
        self.unitScale = unitScale
        self.unitLocalStandardDeviation = unitLocalStandardDeviation
        let variance = localVariance
        switch noise {
        case .discreteGaussian:
            guard (try? DiscreteGaussian(variance: variance)) != nil else {
                throw .invalidParameters("local variance \(variance) is outside the sampler's range")
            }
        case .skellam:
            guard (try? Skellam(variance: variance)) != nil else {
                throw .invalidParameters("local variance \(variance) is outside the sampler's range")
            }
        }
    }

    /// The padded length m (a power of two).
    public var paddedDimension: Int { Self.padded(dimension) }

    /// Each participant's noise variance in the integer domain, (s₁σ₁)².
    public var localVariance: Double {
        (unitScale * unitLocalStandardDeviation) * (unitScale * unitLocalStandardDeviation)
    }

    /// The L2 bound after conditional rounding (Kairouz et al. Theorem 1 / Proposition 22):
    /// min(c + √m, √(c² + m/4 + √(2·ln(1/β))·(c + √m/2))) with c = s₁.
    public var l2Sensitivity: Double { Self.roundedL2Bound(unitScale, beta: beta, dimension: paddedDimension) }

    /// Δ₁ ≤ Δ₂·min(√m, Δ₂): on the integer grid, |x| ≤ x².
    public var l1Sensitivity: Double { l2Sensitivity * min(Double(paddedDimension).squareRoot(), l2Sensitivity) }

    /// One round's release, for the accountant.
    public var noiseSum: DistributedNoiseSum {
        let v = localVariance
        return DistributedNoiseSum(
            noise: noise == .discreteGaussian ? .discreteGaussian(localVariance: v) : .skellam(localVariance: v),
            participants: minimumParticipants, dimension: paddedDimension, l2Sensitivity: l2Sensitivity,
            l1Sensitivity: l1Sensitivity)
    }

    /// The standard deviation of the summed noise in real units, for clip bound C.
    public func centralStandardDeviation(bound: Double) -> Double {
        (Double(minimumParticipants)).squareRoot() * unitLocalStandardDeviation * bound
    }

    static func roundedL2Bound(_ c: Double, beta: Double, dimension m: Int) -> Double {
        let d = Double(m)
        let first = c + d.squareRoot()
        if beta == 0 { return first }
        let second = (c * c + 0.25 * d + (2 * log(1 / beta)).squareRoot() * (c + 0.5 * d.squareRoot())).squareRoot()
        return min(first, second)
    }

    /// The scale s₁ for which k standard deviations of the aggregate fit in 2^b, assuming
    /// sub-Gaussian coordinates after the rotation (Kairouz et al. §4.2 and §4.4): the solution of
    /// 2^b = 2k·√(n²c²/m + n·(1/(4s²) + σ²))·s with c = 1.
    /// - Throws: ``DistributedDPError/invalidParameters(_:)`` unless 1 ≤ b ≤ 64, n ≥ 1, m ≥ 1,
    ///   k > 0, σ ≥ 0 (finite) and 2^{2b} > n·k².
    public static func scale(
        localStandardDeviation sigma: Double, bits: Int, participants n: Int, paddedDimension m: Int, kStddevs k: Double
    ) throws(DistributedDPError) -> Double {
        guard (1...64).contains(bits) else { throw .invalidParameters("the modulus needs 1 to 64 bits, got \(bits)") }
        guard n >= 1, m >= 1 else { throw .invalidParameters("at least one participant and one coordinate") }
        guard k > 0, k.isFinite else { throw .invalidParameters("k must be positive and finite") }
        guard sigma >= 0, sigma.isFinite else {
            throw .invalidParameters("the local noise must be finite, not negative")
        }
        let nd = Double(n)
        let room = pow(2, 2 * Double(bits)) - nd * k * k
        guard room > 0 else {
            throw .invalidParameters(
                "\(bits) bits cannot hold \(k) standard deviations of a sum over \(n) participants: use more bits")
        }
        return room.squareRoot() / (2 * k * (nd * nd / Double(m) + nd * sigma * sigma).squareRoot())
    }

    /// The default k: a sum of sub-Gaussian coordinates leaves [−kσ, kσ] in any of m
    /// coordinates with probability at most 2m·e^{−k²/2}; k = √(2·ln(2m/0.01)) makes that 1%.
    public static func defaultStddevs(paddedDimension m: Int) -> Double { (2 * log(2 * Double(m) / 0.01)).squareRoot() }

    /// The smallest noise, and the scale it implies, for which `rounds` rounds — each a
    /// Poisson sample at rate q of a population, with at least `minimumParticipants` noise
    /// shares in every released sum — are (ε, δ)-DP. The scale keeps k standard deviations of
    /// a sum of up to `maximumParticipants` vectors inside the modulus. Alternates the scale
    /// (which depends on the noise through the modulus) and the noise (which depends on the
    /// scale through the rounding) until the scale settles, then fixes the noise for the final scale.
    public static func calibrate(
        noise: Noise, epsilon: Double, delta: Double, samplingRate q: Double, rounds: Int, minimumParticipants n: Int,
        maximumParticipants: Int? = nil, dimension: Int, bits: Int, beta: Double = exp(-0.5), kStddevs: Double? = nil,
        orders: [Double] = RDPAccountant.defaultOrders
    ) throws(DistributedDPError) -> DistributedDP {
        do { try NoiseCalibration.validate(epsilon: epsilon, delta: delta, samplingRate: q, steps: rounds) } catch {
            throw .calibration(error)
        }
        guard n >= 1, dimension >= 1 else { throw .invalidParameters("at least one participant and one value") }
        let bitWidth: BitWidth
        do { bitWidth = try BitWidth(bits) } catch { throw .invalidParameters("\(error)") }
        let m = padded(dimension)
        let k = kStddevs ?? defaultStddevs(paddedDimension: m)
        let most = max(maximumParticipants ?? n, n)
        let gaussianMultiplier: Double
        do {
            gaussianMultiplier = try NoiseCalibration.noiseMultiplier(
                epsilon: epsilon, delta: delta, samplingRate: q, steps: rounds, orders: orders)
        } catch { throw .calibration(error) }

        func spent(scale: Double, sigma: Double) -> Double {
            guard
                let mechanism = try? DistributedDP(
                    noise: noise, dimension: dimension, bitWidth: bitWidth, minimumParticipants: n, beta: beta,
                    unitScale: scale, unitLocalStandardDeviation: sigma)
            else { return .infinity }
            var accountant = RDPAccountant(orders: orders)
            accountant.compose(.poissonSampledNoiseSum(samplingRate: q, mechanism.noiseSum), count: rounds)
            return accountant.epsilon(delta: delta).epsilon
        }
        func sigma(for scale: Double, guess: Double) throws(DistributedDPError) -> Double {
            do {
                // Searched in units of the guess, so that the tolerance is relative.
                return guess
                    * (try NoiseCalibration.smallestMeeting(epsilon: epsilon, tolerance: 1e-7) {
                        spent(scale: scale, sigma: $0 * guess)
                    })
            } catch { throw .calibration(error) }
        }

        let (scale1, sigma1) = try settle(
            from: gaussianMultiplier / Double(n).squareRoot(), bits: bits, participants: most, paddedDimension: m,
            kStddevs: k, sigma: sigma(for:guess:))
        return try DistributedDP(
            noise: noise, dimension: dimension, bitWidth: bitWidth, minimumParticipants: n, beta: beta,
            unitScale: scale1, unitLocalStandardDeviation: sigma1)
    }

    /// The alternation both calibrations share (`Specs/privacy.md` §4.5, §4.7): from σ₁⁰, the
    /// scale of §4.4 for σ₁ and then `sigma(scale, guess)` for that scale, until the scale
    /// changes by at most 10⁻⁹ (at most 20 passes); then σ₁ once more for the last scale. The
    /// pair must be §4.4's: the scale of the final σ₁ within 10⁻⁶ of the one it was calibrated
    /// at. In a ring too narrow for the noise the two never settle — each pass shrinks the
    /// scale and raises σ₁ — and what the last pass left would wrap the sum.
    static func settle(
        from sigma0: Double, bits: Int, participants: Int, paddedDimension m: Int, kStddevs k: Double,
        sigma: (_ scale: Double, _ guess: Double) throws(DistributedDPError) -> Double
    ) throws(DistributedDPError) -> (scale: Double, sigma: Double) {
        func scaleFor(_ sigma: Double) throws(DistributedDPError) -> Double {
            try scale(
                localStandardDeviation: sigma, bits: bits, participants: participants, paddedDimension: m, kStddevs: k)
        }
        var sigma1 = sigma0
        var scale1 = try scaleFor(sigma1)
        for _ in 0..<20 {
            sigma1 = try sigma(scale1, sigma1)
            let next = try scaleFor(sigma1)
            let settled = abs(next - scale1) <= 1e-9 * scale1
            scale1 = next
            if settled { break }
        }
        sigma1 = try sigma(scale1, sigma1)
        guard abs(try scaleFor(sigma1) - scale1) <= 1e-6 * scale1 else {
            throw .invalidParameters(
                "\(bits) bits cannot hold the noise of \(participants) participants over \(m) values: the scale does not settle; use more bits"
            )
        }
        return (scale1, sigma1)
    }

    /// m: the smallest power of two ≥ `dimension` (the rotation's padded length).
    static func padded(_ dimension: Int) -> Int {
        var m = 1
        while m < dimension { m <<= 1 }
        return m
    }

    /// The mechanism for `dimension` values whose one round, Poisson-sampled at each of
    /// `samplingRates`, costs no more than one round of `reference` sampled alike, at every
    /// Rényi order of `orders` (`Specs/privacy.md` §4.7): same noise family, ring, β and n_min;
    /// the scale for the new padded length, and the smallest σ₁ that keeps every order's RDP
    /// at or below the reference's. Rounds of the two can then be mixed in any order and the
    /// total never exceeds what as many rounds of the reference cost — which is what a
    /// coordinator calibrated its run for.
    public static func calibrate(
        dominatedBy reference: DistributedDP, dimension: Int, samplingRates: [Double] = [1],
        maximumParticipants: Int? = nil,
        kStddevs: Double? = nil, orders: [Double] = RDPAccountant.defaultOrders
    ) throws(DistributedDPError) -> DistributedDP {
        guard dimension >= 1 else { throw .invalidParameters("at least one value") }
        guard !samplingRates.isEmpty, samplingRates.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
            throw .invalidParameters("sampling rates must be in (0, 1]")
        }
        let n = reference.minimumParticipants
        let m = padded(dimension)
        let k = kStddevs ?? defaultStddevs(paddedDimension: m)
        let most = max(maximumParticipants ?? n, n)
        // Each rate's RDP at every order, one after the other.
        func rdp(_ mechanism: DistributedDP) -> [Double] {
            samplingRates.flatMap { q in
                var accountant = RDPAccountant(orders: orders)
                accountant.compose(.poissonSampledNoiseSum(samplingRate: q, mechanism.noiseSum))
                return accountant.rdp
            }
        }
        let bound = rdp(reference)
        // The largest ratio of the candidate's RDP to the reference's over the orders: at most
        // 1 means dominated. An order at which the reference is unbounded bounds nothing.
        func excess(scale: Double, sigma: Double) -> Double {
            guard
                let candidate = try? DistributedDP(
                    noise: reference.noise, dimension: dimension, bitWidth: reference.bitWidth, minimumParticipants: n,
                    beta: reference.beta, unitScale: scale, unitLocalStandardDeviation: sigma)
            else { return .infinity }
            var worst = 0.0
            for (spent, allowed) in zip(rdp(candidate), bound) where allowed.isFinite {
                worst = max(worst, allowed > 0 ? spent / allowed : (spent > 0 ? .infinity : 0))
            }
            return worst
        }
        func sigma(for scale: Double, guess: Double) throws(DistributedDPError) -> Double {
            do {
                return guess
                    * (try NoiseCalibration.smallestMeeting(epsilon: 1, tolerance: 1e-7) {
                        excess(scale: scale, sigma: $0 * guess)
                    })
            } catch { throw .calibration(error) }
        }
        let (scale1, sigma1) = try settle(
            from: reference.unitLocalStandardDeviation, bits: reference.bitWidth.bits, participants: most,
            paddedDimension: m, kStddevs: k, sigma: sigma(for:guess:))
        return try DistributedDP(
            noise: reference.noise, dimension: dimension, bitWidth: reference.bitWidth, minimumParticipants: n,
            beta: reference.beta, unitScale: scale1, unitLocalStandardDeviation: sigma1)
    }

    /// The most rounding attempts before giving up; each fails with probability ≤ β for a
    /// vector within its bound, so reaching it means the vector was not clipped.
    public static let maxRoundingAttempts = 1000

    /// A participant's share: rotate, scale by s₁/C, round conditionally, add local noise,
    /// reduce modulo 2^b.
    /// - Parameters:
    ///   - x: the clipped vector, ‖x‖₂ ≤ bound.
    ///   - rotation: the round's public rotation.
    ///   - rounding: randomness for rounding (need not be secret).
    ///   - noiseGenerator: a cryptographic generator known only to this participant.
    public func encode(
        _ x: [Double], bound: Double, rotation: RandomizedHadamard, rounding: inout some RandomNumberGenerator,
        noiseGenerator: inout some RandomNumberGenerator
    ) throws(DistributedDPError) -> ModularVector {
        guard x.count == dimension, rotation.dimension == dimension else {
            throw .wrongLength(expected: dimension, actual: x.count)
        }
        let s = unitScale / bound
        let scaled = rotation.rotate(x).map { $0 * s }
        let limit = l2Sensitivity
        var rounded: [Int64]?
        for _ in 0..<Self.maxRoundingAttempts {
            var candidate = [Int64](repeating: 0, count: scaled.count)
            var squared = 0.0
            for i in scaled.indices {
                let floor = scaled[i].rounded(.down)
                let up = rounding.unit() < scaled[i] - floor
                let value = floor + (up ? 1 : 0)
                candidate[i] = Int64(value)
                squared += value * value
            }
            if squared.squareRoot() <= limit {
                rounded = candidate
                break
            }
        }
        guard let rounded else { throw .roundingFailed(attempts: Self.maxRoundingAttempts) }
        let shares: [Int64]
        // The initializer refused every local variance the samplers would: these cannot throw.
        switch noise {
        case .discreteGaussian:
            shares = try! DiscreteGaussian(variance: localVariance).samples(rounded.count, using: &noiseGenerator)
        case .skellam:
            shares = try! Skellam(variance: localVariance).samples(rounded.count, using: &noiseGenerator)
        }
        return ModularVector(
            reducing: zip(rounded, shares).map { bitWidth.element($0 &+ $1) }, bitWidth: bitWidth)
    }

    /// The server's decoding of a sum of shares: centre modulo 2^b, divide by the scale,
    /// rotate back. The result carries the summed noise.
    public func decode(_ sum: ModularVector, bound: Double, rotation: RandomizedHadamard) throws(DistributedDPError)
        -> [Double]
    {
        guard sum.count == paddedDimension else { throw .wrongLength(expected: paddedDimension, actual: sum.count) }
        let s = unitScale / bound
        return rotation.unrotate(sum.elements.map { Double(bitWidth.signed($0)) / s })
    }
}
