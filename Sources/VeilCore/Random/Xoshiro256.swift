/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64: a fast, reproducible,
/// non-cryptographic generator for simulations — data synthesis, shuffling, client
/// selection. Nothing secret is ever drawn from it; keys, masks and noise for privacy use
/// the cryptographic generators of VeilCrypto.
public struct Xoshiro256: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    /// Seeds the state with four SplitMix64 outputs of `seed`.
    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9e37_79b9_7f4a_7c15
            var z = x
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    /// A generator for a numbered sub-stream: the same seed and stream always give the same
    /// output, and two streams of one seed never start from the same state (multiplying by an
    /// odd constant and xoring the seed are both bijections). Simulations name their streams
    /// instead, with ``init(seed:purpose:round:participant:)``.
    public init(seed: UInt64, stream: UInt64) {
        self.init(seed: seed ^ (stream &* 0xd1b5_4a32_d192_ed03))
    }

    public mutating func next() -> UInt64 {
        let result = rotate(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotate(s.3, 45)
        return result
    }

    @inline(__always)
    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

extension RandomNumberGenerator {
    /// A uniform double in [0, 1): 53 random bits times 2^−53.
    @inlinable
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A standard normal deviate (Marsaglia's polar method).
    public mutating func standardNormal() -> Double {
        while true {
            let u = 2 * unit() - 1
            let v = 2 * unit() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 { return u * (-2 * log(s) / s).squareRoot() }
        }
    }

    /// A gamma(shape, 1) deviate (Marsaglia and Tsang 2000; shape < 1 boosted by U^(1/shape)).
    public mutating func gamma(shape: Double) -> Double {
        precondition(shape > 0, "gamma shape must be positive")
        if shape < 1 { return gamma(shape: shape + 1) * pow(unit(), 1 / shape) }
        let d = shape - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = standardNormal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = unit()
            if u < 1 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1 - v + log(v)) { return d * v }
        }
    }

    /// A Dirichlet(α, …, α) draw of `count` proportions.
    public mutating func dirichlet(alpha: Double, count: Int) -> [Double] {
        let draws = (0..<count).map { _ in gamma(shape: alpha) }
        let total = draws.reduce(0, +)
        return total > 0 ? draws.map { $0 / total } : Array(repeating: 1 / Double(count), count: count)
    }

    /// A uniform integer in 0..<bound by rejection (unbiased).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "below needs a positive bound")
        let b = UInt64(bound)
        let rejectBelow = (0 &- b) % b
        while true {
            let v = next()
            if v >= rejectBelow { return Int(v % b) }
        }
    }

    /// Fisher–Yates, with ``below(_:)``.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) { array.swapAt(i, below(i + 1)) }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
