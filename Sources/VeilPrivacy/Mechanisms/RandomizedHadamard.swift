import Foundation

/// The randomised Walsh–Hadamard rotation x ↦ H·D·x/√m (m the length padded to a power of
/// two, D a diagonal of random signs): it keeps L2 norms and spreads a vector's mass evenly
/// over the coordinates, so that rounding and the modulus treat every coordinate alike
/// (Kairouz, Liu, Steinke 2021, §4.2; Agarwal et al. 2021, §4). The signs are public
/// randomness shared by the participants and the server, fixed per round.
public struct RandomizedHadamard: Hashable, Sendable {
    /// The original length.
    public let dimension: Int
    /// The padded length, the smallest power of two ≥ dimension.
    public let paddedDimension: Int
    /// true where D has −1.
    let negated: [Bool]

    /// A rotation whose signs come from `generator`: sign i is bit (i mod 64) of word ⌊i/64⌋,
    /// a set bit meaning −1.
    public init(dimension: Int, using generator: inout some RandomNumberGenerator) {
        precondition(dimension >= 1, "an empty vector")
        self.dimension = dimension
        var padded = 1
        while padded < dimension { padded <<= 1 }
        paddedDimension = padded
        var signs: [Bool] = []
        signs.reserveCapacity(padded)
        while signs.count < padded {
            let word = generator.next()
            for bit in 0..<64 where signs.count < padded { signs.append(word >> UInt64(bit) & 1 == 1) }
        }
        negated = signs
    }

    /// H·D·x/√m, with x zero-padded to m.
    public func rotate(_ x: [Double]) -> [Double] {
        precondition(x.count == dimension, "a vector of the wrong length")
        var y = x + [Double](repeating: 0, count: paddedDimension - dimension)
        for i in y.indices where negated[i] { y[i] = -y[i] }
        Self.transform(&y)
        return y
    }

    /// The inverse, D·H·y/√m, truncated to the original length.
    public func unrotate(_ y: [Double]) -> [Double] {
        precondition(y.count == paddedDimension, "a vector of the wrong length")
        var x = y
        Self.transform(&x)
        for i in x.indices where negated[i] { x[i] = -x[i] }
        return Array(x.prefix(dimension))
    }

    /// The orthonormal fast Walsh–Hadamard transform in place (H/√m is its own inverse).
    static func transform(_ v: inout [Double]) {
        var half = 1
        while half < v.count {
            var start = 0
            while start < v.count {
                for i in start..<(start + half) {
                    let (a, b) = (v[i], v[i + half])
                    v[i] = a + b
                    v[i + half] = a - b
                }
                start += 2 * half
            }
            half <<= 1
        }
        let norm = 1 / Double(v.count).squareRoot()
        for i in v.indices { v[i] *= norm }
    }
}
