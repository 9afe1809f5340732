/// Arithmetic in the prime field GF(p), p = 2^61 − 1 (a Mersenne prime), the field of
/// Veil's Shamir secret sharing.
///
/// Reduction needs no division: 2^61 ≡ 1 (mod p), so a 122-bit product folds into 61 bits
/// with shifts and adds. Elements are `UInt64` values in 0..<p.
public enum Mersenne61 {
    /// The modulus 2^61 − 1.
    public static let p: UInt64 = (1 << 61) - 1

    @inlinable
    static func reduce(_ x: UInt64) -> UInt64 {
        // x < 2^64: fold once to < 2^61 + 8, then subtract p at most once.
        let folded = (x & p) &+ (x >> 61)
        return folded >= p ? folded &- p : folded
    }

    @inlinable
    public static func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let s = a &+ b  // < 2^62, no overflow
        return s >= p ? s &- p : s
    }

    @inlinable
    public static func subtract(_ a: UInt64, _ b: UInt64) -> UInt64 {
        a >= b ? a &- b : a &+ p &- b
    }

    @inlinable
    public static func multiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (high, low) = a.multipliedFullWidth(by: b)  // product < 2^122, so high < 2^58
        // product = high·2^64 + low ≡ high·2^3 + (low >> 61) + (low & p)  (mod p)
        let folded = (low & p) &+ (low >> 61) &+ (high << 3)  // < 2^61 + 8 + 2^61
        return reduce(folded)
    }

    /// a^(p−2) = a^(−1) for a ≠ 0 (Fermat). The caller guarantees a ≠ 0.
    @inlinable
    public static func inverse(_ a: UInt64) -> UInt64 {
        var result: UInt64 = 1
        var base = a
        var exponent = p - 2
        while exponent > 0 {
            if exponent & 1 == 1 { result = multiply(result, base) }
            base = multiply(base, base)
            exponent >>= 1
        }
        return result
    }

    /// A uniform element drawn by rejection: the low 61 bits of `next()`, redrawn while equal
    /// to p (probability 2^−61).
    @inlinable
    public static func random(using generator: inout some RandomNumberGenerator) -> UInt64 {
        while true {
            let candidate = generator.next() & p
            if candidate < p { return candidate }
        }
    }
}
