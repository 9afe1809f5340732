import VeilCrypto

/// Threshold decryption, t of ℓ key holders, with a trusted dealer (Shoup 2000, as adapted to
/// Paillier by Damgård and Jurik 2001 and Fouque, Poupard and Stern 2000).
///
/// The dealer picks safe primes p = 2p′ + 1, q = 2q′ + 1, sets m = p′q′ and d with
/// d ≡ 0 (mod m), d ≡ 1 (mod n^s), shares d with a random polynomial f of degree t − 1 over
/// Z_(n^s·m): holder i gets s_i = f(i). With Δ = ℓ!, holder i's partial decryption of c is
/// c_i = c^(2Δ·s_i) mod n^(s+1). Any t of them combine: c′ = Π c_i^(2μ_i) with
/// μ_i = Δ · Π_{j≠i} j / (j − i) ∈ Z, so c′ = c^(4Δ²·d) = (1 + n)^(4Δ²·m_plain) (mod n^(s+1)),
/// and the plaintext is log_(1+n)(c′) · (4Δ²)^(−1) mod n^s (for s = 1, L(c′) = (c′ − 1)/n in
/// place of the logarithm). Fewer than t partial decryptions reveal nothing about d beyond
/// what the public key does. `Specs/paillier.md` ("Threshold decryption").
public struct ThresholdPaillierPublicKey: Hashable, Sendable {
    public let publicKey: PaillierPublicKey
    /// t.
    public let threshold: Int
    /// ℓ.
    public let holders: Int
    /// Δ = ℓ!.
    public let delta: BigInt

    /// The largest ℓ: Δ = ℓ! must stay far below the primes.
    public static let maxHolders = 64

    /// Wraps a dealt key's public part.
    /// - Throws: ``PaillierError/invalidThresholdParameters(_:)`` unless 1 ≤ t ≤ ℓ ≤ 64.
    public init(publicKey: PaillierPublicKey, threshold: Int, holders: Int) throws(PaillierError) {
        guard (1...Self.maxHolders).contains(holders), (1...holders).contains(threshold) else {
            throw .invalidThresholdParameters(
                "need 1 ≤ t ≤ ℓ ≤ \(Self.maxHolders), got t = \(threshold), ℓ = \(holders)")
        }
        self.publicKey = publicKey
        self.threshold = threshold
        self.holders = holders
        delta = (1...max(holders, 1)).reduce(BigInt(1)) { $0 * BigInt($1) }
    }

    /// Combines at least t partial decryptions of `c` (the t with the lowest indices are used).
    /// - Returns: the plaintext residue in 0..<n.
    /// - Throws: ``PaillierError`` for fewer than t, duplicates, unknown holders or another key.
    public func combine(_ partials: [PartialDecryption], of c: PaillierCiphertext) throws(PaillierError) -> BigInt {
        guard publicKey.owns(c) else { throw .keyMismatch }
        var seen = Set<Int>()
        for partial in partials {
            guard (1...holders).contains(partial.holder) else {
                throw .invalidPartialDecryption("unknown holder \(partial.holder)")
            }
            guard seen.insert(partial.holder).inserted else {
                throw .invalidPartialDecryption("holder \(partial.holder) appears twice")
            }
            guard partial.ciphertext == c.value else {
                throw .invalidPartialDecryption("holder \(partial.holder) decrypted another ciphertext")
            }
            guard publicKey.isInCiphertextRange(partial.value), BigInt.gcd(partial.value, publicKey.n) == 1 else {
                throw .invalidPartialDecryption("holder \(partial.holder)'s value is not in Z*_(n^(s+1))")
            }
        }
        guard partials.count >= threshold else {
            throw .notEnoughPartialDecryptions(have: partials.count, need: threshold)
        }
        let chosen = partials.sorted { $0.holder < $1.holder }.prefix(threshold)
        let ciphertextModulus = publicKey.ciphertextModulus
        var combined = BigInt(1)
        for partial in chosen {
            // μ_i = Δ · Π_{j ≠ i} j / (j − i): an integer because Δ = ℓ! absorbs the denominator.
            var numerator = delta
            var denominator = BigInt(1)
            for other in chosen where other.holder != partial.holder {
                numerator = numerator * BigInt(other.holder)
                denominator = denominator * BigInt(other.holder - partial.holder)
            }
            let mu = numerator / denominator
            let exponent = mu * 2
            // The partial is in Z*_(n²) (checked above), so it has an inverse.
            let base = exponent.signum < 0 ? partial.value.inverse(modulo: ciphertextModulus)! : partial.value
            let magnitude = exponent.signum < 0 ? -exponent : exponent
            combined = (combined * base.power(magnitude, modulo: ciphertextModulus)).modulo(ciphertextModulus)
        }
        let l = PaillierPrivateKey.logarithm(combined, base: publicKey.n, s: publicKey.s)
        // ℓ! is coprime to n: its primes are far smaller.
        let scale = (delta * delta * 4).inverse(modulo: publicKey.plaintextModulus)!
        return (l * scale).modulo(publicKey.plaintextModulus)
    }

    /// The signed reading of ``combine(_:of:)``.
    public func combineSigned(_ partials: [PartialDecryption], of c: PaillierCiphertext) throws(PaillierError) -> BigInt
    {
        publicKey.signed(residue: try combine(partials, of: c))
    }
}

/// One key holder's share s_i of d. Secret.
public struct ThresholdKeyShare: Sendable {
    public let holder: Int
    public let thresholdKey: ThresholdPaillierPublicKey
    let secret: BigInt

    /// Wraps a share received from the dealer.
    /// - Throws: ``PaillierError/invalidThresholdParameters(_:)`` for a holder outside 1…ℓ.
    public init(holder: Int, thresholdKey: ThresholdPaillierPublicKey, secret: BigInt) throws(PaillierError) {
        guard (1...thresholdKey.holders).contains(holder) else {
            throw .invalidThresholdParameters("holder \(holder) outside 1...\(thresholdKey.holders)")
        }
        self.holder = holder
        self.thresholdKey = thresholdKey
        self.secret = secret.asSecret()
    }

    /// The share's value, for the dealer's files and for vectors. Secret.
    public var secretValue: BigInt { secret }

    /// c^(2Δ·s_i) mod n^(s+1), in constant time in s_i.
    public func partiallyDecrypt(_ c: PaillierCiphertext) throws(PaillierError) -> PartialDecryption {
        guard thresholdKey.publicKey.owns(c) else { throw .keyMismatch }
        let exponent = secret * thresholdKey.delta * 2
        return PartialDecryption(
            holder: holder, ciphertext: c.value,
            value: c.value.securePower(exponent, modulo: thresholdKey.publicKey.ciphertextModulus).declassified())
    }
}

/// A partial decryption: public, and useless without t − 1 others.
public struct PartialDecryption: Hashable, Sendable {
    public let holder: Int
    /// The ciphertext it belongs to.
    public let ciphertext: BigInt
    public let value: BigInt

    /// Wraps a partial decryption received from a key holder.
    public init(holder: Int, ciphertext: BigInt, value: BigInt) {
        self.holder = holder
        self.ciphertext = ciphertext
        self.value = value
    }
}

/// The trusted dealer: generates the key and the shares, then forgets d.
public enum ThresholdPaillierDealer {
    /// Deals a t-of-ℓ key of `bits` bits (Damgård–Jurik's s: 1 is Paillier).
    /// - Throws: ``PaillierError`` unless 1 ≤ t ≤ ℓ ≤ 64, the size is supported and s is in 1…4.
    public static func deal(bits: Int, threshold t: Int, holders l: Int, s: Int = 1) throws(PaillierError)
        -> (ThresholdPaillierPublicKey, [ThresholdKeyShare])
    {
        var generator = SystemRandom()
        return try deal(bits: bits, threshold: t, holders: l, s: s, using: &generator)
    }

    /// Deals from an injected generator (reproducible keys for vectors and tests). The primes
    /// and coefficients drawn do not depend on s; the order they are reduced in does.
    public static func deal(
        bits: Int, threshold t: Int, holders l: Int, s: Int = 1, using generator: inout some RandomNumberGenerator
    )
        throws(PaillierError) -> (ThresholdPaillierPublicKey, [ThresholdKeyShare])
    {
        guard (1...ThresholdPaillierPublicKey.maxHolders).contains(l), (1...l).contains(t) else {
            throw .invalidThresholdParameters(
                "need 1 ≤ t ≤ ℓ ≤ \(ThresholdPaillierPublicKey.maxHolders), got t = \(t), ℓ = \(l)")
        }
        guard bits % 2 == 0, (PaillierPublicKey.minimumBits...8192).contains(bits) else {
            throw .unsupportedKeySize(bits)
        }
        guard PaillierPublicKey.degrees.contains(s) else { throw .unsupportedDegree(s) }
        var p = randomSafePrime(bits: bits / 2, using: &generator)
        var q = randomSafePrime(bits: bits / 2, using: &generator)
        while p == q || (p * q).bitWidth != bits {
            p = randomSafePrime(bits: bits / 2, using: &generator)
            q = randomSafePrime(bits: bits / 2, using: &generator)
        }
        let n = (p * q).declassified()
        let publicKey = try PaillierPublicKey(n: n, s: s)
        let m = ((p - 1) / 2) * ((q - 1) / 2)
        // d ≡ 0 (mod m), d ≡ 1 (mod n^s): d = m · (m⁻¹ mod n^s).
        let d = m * m.inverse(modulo: publicKey.plaintextModulus)!  // gcd(m, n) = 1 for distinct safe primes
        let order = publicKey.plaintextModulus * m
        let coefficients = [d] + (1..<t).map { _ in randomBelow(order, using: &generator) }
        let key = try ThresholdPaillierPublicKey(publicKey: publicKey, threshold: t, holders: l)
        let shares = try (1...l).map { i throws(PaillierError) in
            let x = BigInt(i)
            let value = coefficients.reversed().reduce(BigInt(0)) { ($0 * x + $1).modulo(order) }
            return try ThresholdKeyShare(holder: i, thresholdKey: key, secret: value)
        }
        return (key, shares)
    }

    /// A prime p = 2p′ + 1 of exactly `bits` bits with p′ prime.
    static func randomSafePrime(bits: Int, using generator: inout some RandomNumberGenerator) -> BigInt {
        while true {
            let candidate = PaillierPrivateKey.randomPrime(bits: bits - 1, using: &generator)
            let safe = candidate * 2 + 1
            if safe.bitWidth == bits, safe.isProbablePrime() { return safe.asSecret() }
        }
    }
}

/// Uniform in 0..<bound by rejection on ⌈log₂ bound⌉-bit draws.
func randomBelow(_ bound: BigInt, using generator: inout some RandomNumberGenerator) -> BigInt {
    while true {
        let candidate = BigInt.random(bits: bound.bitWidth, using: &generator).asSecret()
        if candidate < bound { return candidate }
    }
}
