import VeilCore
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
/// what the public key does. With the dealer's verification keys, every partial decryption
/// carries a proof that it is c^(2Δ·s_i) for the holder's share, and a holder whose proof fails
/// is named and left out. `Specs/paillier.md` ("Threshold decryption", §6.2).
public struct ThresholdPaillierPublicKey: Hashable, Sendable {
    public let publicKey: PaillierPublicKey
    /// t.
    public let threshold: Int
    /// ℓ.
    public let holders: Int
    /// Δ = ℓ!.
    public let delta: BigInt
    /// v and v_1 … v_ℓ, when the dealer published them: without them nothing checks a partial.
    public let verification: ThresholdVerificationKeys?

    /// The largest ℓ: Δ = ℓ! must stay far below the primes.
    public static let maxHolders = 64

    /// Wraps a dealt key's public part.
    /// - Throws: ``PaillierError/invalidThresholdParameters(_:)`` unless 1 ≤ t ≤ ℓ ≤ 64 and the
    ///   verification keys, if given, are ℓ + 1 units mod n^(s+1).
    public init(
        publicKey: PaillierPublicKey, threshold: Int, holders: Int, verification: ThresholdVerificationKeys? = nil
    ) throws(PaillierError) {
        guard (1...Self.maxHolders).contains(holders), (1...holders).contains(threshold) else {
            throw .invalidThresholdParameters(
                "need 1 ≤ t ≤ ℓ ≤ \(Self.maxHolders), got t = \(threshold), ℓ = \(holders)")
        }
        // Δ = ℓ! and k! for k ≤ s must be units mod n: the combination divides by 4Δ² and the
        // logarithm by k!. A dealt n has two large prime factors; a wrapped one might not.
        let small = (1...max(holders, publicKey.s, 2)).reduce(BigInt(1)) { $0 * BigInt($1) }
        guard BigInt.gcd(publicKey.n, small * 2) == 1 else {
            throw .invalidThresholdParameters("n has a prime factor of at most \(max(holders, publicKey.s, 2))")
        }
        if let verification {
            guard verification.holderKeys.count == holders else {
                throw .invalidThresholdParameters(
                    "\(verification.holderKeys.count) verification keys for \(holders) holders")
            }
            for value in [verification.v] + verification.holderKeys {
                guard publicKey.isInCiphertextRange(value), BigInt.gcd(value, publicKey.n) == 1 else {
                    throw .invalidThresholdParameters("a verification key is not in Z*_(n^(s+1))")
                }
            }
            // v of order 1 or 2 (v = ±1, say) makes every v_i = 1 and any exponent "proved"
            // (review, helper-21); a dealt v generates the squares, of order n^s·p′q′.
            let modulus = publicKey.ciphertextModulus
            guard verification.v.power(BigInt(2), modulo: modulus) != 1, !verification.holderKeys.contains(1) else {
                throw .invalidThresholdParameters(
                    "v is of order at most 2, or some v_i = 1: no proof would mean anything")
            }
        }
        self.publicKey = publicKey
        self.threshold = threshold
        self.holders = holders
        self.verification = verification
        delta = (1...max(holders, 1)).reduce(BigInt(1)) { $0 * BigInt($1) }
    }

    /// Combines at least t partial decryptions of `c` (the t with the lowest indices among
    /// those whose proofs hold).
    /// - Returns: the plaintext residue in 0..<n^s.
    /// - Throws: ``PaillierError`` for fewer than t, duplicates, unknown holders, another key, or
    ///   too few correct partials (naming the holders whose proofs fail).
    public func combine(_ partials: [PartialDecryption], of c: PaillierCiphertext) throws(PaillierError) -> BigInt {
        try decrypt(partials, of: c).plaintext
    }

    /// Checks each partial decryption of `c` and combines t correct ones. Malformed partials
    /// (a stranger, twice, of another ciphertext, outside Z*_(n^(s+1))) are refused outright;
    /// with verification keys, a partial without a proof or with a failing one is left out and
    /// its holder named in the result, so t honest holders decrypt despite the others.
    /// - Throws: ``PaillierError/incorrectPartialDecryptions(holders:)`` when fewer than t
    ///   correct partials remain because some failed; ``PaillierError/notEnoughPartialDecryptions(have:need:)``
    ///   when fewer than t were given.
    public func decrypt(_ partials: [PartialDecryption], of c: PaillierCiphertext) throws(PaillierError)
        -> ThresholdDecryption
    {
        guard publicKey.owns(c) else { throw .keyMismatch }
        if verification != nil { return try decryptVerified(partials, of: c) }
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
        return try combination(of: partials, rejected: [])
    }

    /// With verification keys, every partial is judged alone: one that is malformed (a
    /// stranger's number, another ciphertext's, outside Z*_(n^(s+1))), has no proof or a
    /// failing one is left out and the holder number it claims named, and of several claiming
    /// one number the first correct one counts — so no holder, by any partial, stops t honest
    /// ones (review, helper-21).
    private func decryptVerified(_ partials: [PartialDecryption], of c: PaillierCiphertext) throws(PaillierError)
        -> ThresholdDecryption
    {
        guard partials.count >= threshold else {
            throw .notEnoughPartialDecryptions(have: partials.count, need: threshold)
        }
        // Each proof costs two exponentiations: checked on every core.
        let key = self
        let verdicts = try! partials.parallelMap { key.verify($0, of: c) }  // cannot throw
        var accepted: [Int: PartialDecryption] = [:]
        var rejected = Set<Int>()
        for (partial, correct) in zip(partials, verdicts) {
            if !correct {
                rejected.insert(partial.holder)
            } else if accepted[partial.holder] == nil {
                accepted[partial.holder] = partial
            }
        }
        guard accepted.count >= threshold else {
            if rejected.isEmpty { throw .notEnoughPartialDecryptions(have: accepted.count, need: threshold) }
            throw .incorrectPartialDecryptions(holders: rejected.sorted())
        }
        return try combination(of: Array(accepted.values), rejected: rejected.sorted())
    }

    /// Combines the t lowest-numbered of `partials` (distinct holders, already checked).
    private func combination(of partials: [PartialDecryption], rejected: [Int]) throws(PaillierError)
        -> ThresholdDecryption
    {
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
        // c′ = (1 + n)^(4Δ²·m) is 1 mod n; anything else means a partial was wrong, which a key
        // without verification keys cannot tell apart — it can refuse, not name.
        guard combined.modulo(publicKey.n) == 1 else {
            throw .invalidPartialDecryption("the partials do not combine to (1 + n)^x: at least one is wrong")
        }
        let l = PaillierPrivateKey.logarithm(combined, base: publicKey.n, s: publicKey.s)
        // ℓ! is coprime to n: its primes are far smaller.
        let scale = (delta * delta * 4).inverse(modulo: publicKey.plaintextModulus)!
        return ThresholdDecryption(plaintext: (l * scale).modulo(publicKey.plaintextModulus), rejected: rejected)
    }

    /// The bit length of a prover's r: (s + 2)·|n| + 512, so that r hides e·Δ·s_i (below
    /// 2^(256 + |Δ| + (s+1)·|n|)) to within 2^−(|n| + 258 − |Δ|), at least 2^−218 for ℓ ≤ 64.
    public var proofRandomnessBits: Int { (publicKey.s + 2) * publicKey.bits + 512 }

    /// Whether `partial` carries a proof that log_(c⁴)(c_i²) = log_v(v_i), i.e. that its value
    /// is c^(2Δ·s_i) for the share behind v_i (Shoup 2000; Damgård–Jurik 2001 §5): with the
    /// proof (e, z), a = c^(4z)·c_i^(−2e), b = v^z·v_i^(−e), and e must be the challenge of
    /// (c⁴, c_i², v, v_i, a, b). False without verification keys, without a proof, or for a
    /// response outside 0..<2^(B+257) (B the bits of r), which no honest prover exceeds.
    public func verify(_ partial: PartialDecryption, of c: PaillierCiphertext) -> Bool {
        guard let verification, let proof = partial.proof, (1...holders).contains(partial.holder),
            partial.ciphertext == c.value, publicKey.isInCiphertextRange(partial.value),
            BigInt.gcd(partial.value, publicKey.n) == 1,
            proof.challenge.signum >= 0, proof.challenge.bitWidth <= 256,
            proof.response.signum >= 0, proof.response.bitWidth <= proofRandomnessBits + 257
        else { return false }
        let modulus = publicKey.ciphertextModulus
        let c4 = c.value.power(BigInt(4), modulo: modulus)
        let ci2 = partial.value.power(BigInt(2), modulo: modulus)
        let vi = verification.holderKeys[partial.holder - 1]
        // c_i and v_i are units (checked), so their inverses exist.
        let a =
            (c4.power(proof.response, modulo: modulus)
            * ci2.inverse(modulo: modulus)!.power(proof.challenge, modulo: modulus)).modulo(modulus)
        let b =
            (verification.v.power(proof.response, modulo: modulus)
            * vi.inverse(modulo: modulus)!.power(proof.challenge, modulo: modulus)).modulo(modulus)
        let e = challenge(holder: partial.holder, c4: c4, ci2: ci2, v: verification.v, vi: vi, a: a, b: b)
        return e == proof.challenge
    }

    /// e = SHA-256("veil/v1/paillier/partial-decryption" ‖ 0x00 ‖ LE_4(i) ‖ LE_4(W) ‖ c⁴ ‖ c_i² ‖ v ‖
    /// v_i ‖ a ‖ b) read big-endian, each value W = ⌈(s + 1)·|n|/8⌉ bytes big-endian.
    func challenge(holder: Int, c4: BigInt, ci2: BigInt, v: BigInt, vi: BigInt, a: BigInt, b: BigInt) -> BigInt {
        let width = publicKey.ciphertextByteCount
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/paillier/partial-decryption".utf8))
        writer.u8(0)
        writer.u32(UInt32(holder))
        writer.u32(UInt32(width))
        // Each value is below n^(s+1), so it fits the width.
        for value in [c4, ci2, v, vi, a, b] { writer.raw(try! value.bigEndianBytes(width: width)) }
        return BigInt(bigEndian: SHA256.hash(writer.bytes))
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

    /// c^(2Δ·s_i) mod n^(s+1), in constant time in s_i, with a proof of it when the key has
    /// verification keys (r fresh from libsodium).
    public func partiallyDecrypt(_ c: PaillierCiphertext) throws(PaillierError) -> PartialDecryption {
        try partiallyDecrypt(c, proofRandomness: BigInt.random(bits: thresholdKey.proofRandomnessBits))
    }

    /// The same with a given r of ``ThresholdPaillierPublicKey/proofRandomnessBits`` bits
    /// (secret: with the proof it reveals s_i), for vectors: a = c^(4r), b = v^r,
    /// e = the challenge, z = r + e·Δ·s_i.
    public func partiallyDecrypt(_ c: PaillierCiphertext, proofRandomness r: BigInt) throws(PaillierError)
        -> PartialDecryption
    {
        let key = thresholdKey
        guard key.publicKey.owns(c) else { throw .keyMismatch }
        let modulus = key.publicKey.ciphertextModulus
        let exponent = secret * key.delta * 2
        let value = c.value.securePower(exponent, modulo: modulus).declassified()
        guard let verification = key.verification else {
            return PartialDecryption(holder: holder, ciphertext: c.value, value: value)
        }
        let r = r.asSecret()
        let c4 = c.value.power(BigInt(4), modulo: modulus)
        let ci2 = value.power(BigInt(2), modulo: modulus)
        let a = c4.securePower(r, modulo: modulus).declassified()
        let b = verification.v.securePower(r, modulo: modulus).declassified()
        let vi = verification.holderKeys[holder - 1]
        let e = key.challenge(holder: holder, c4: c4, ci2: ci2, v: verification.v, vi: vi, a: a, b: b)
        let z = (r + e * key.delta * secret).declassified()
        return PartialDecryption(
            holder: holder, ciphertext: c.value, value: value,
            proof: PartialDecryptionProof(challenge: e, response: z))
    }
}

/// A partial decryption: public, and useless without t − 1 others.
public struct PartialDecryption: Hashable, Sendable {
    public let holder: Int
    /// The ciphertext it belongs to.
    public let ciphertext: BigInt
    public let value: BigInt
    /// The proof that `value` is c^(2Δ·s_i), when the key has verification keys.
    public let proof: PartialDecryptionProof?

    /// Wraps a partial decryption received from a key holder.
    public init(holder: Int, ciphertext: BigInt, value: BigInt, proof: PartialDecryptionProof? = nil) {
        self.holder = holder
        self.ciphertext = ciphertext
        self.value = value
        self.proof = proof
    }
}

/// A non-interactive proof of equal discrete logarithms (Fiat–Shamir with SHA-256): challenge
/// e < 2^256 and response z = r + e·Δ·s_i. Public.
public struct PartialDecryptionProof: Hashable, Sendable {
    public let challenge: BigInt
    public let response: BigInt

    public init(challenge: BigInt, response: BigInt) {
        self.challenge = challenge
        self.response = response
    }
}

/// The dealer's public values for checking partial decryptions: v, a random square mod
/// n^(s+1), and v_i = v^(Δ·s_i) mod n^(s+1) for holder i.
public struct ThresholdVerificationKeys: Hashable, Sendable {
    public let v: BigInt
    /// v_1 … v_ℓ: holder i's at index i − 1.
    public let holderKeys: [BigInt]

    public init(v: BigInt, holderKeys: [BigInt]) {
        self.v = v
        self.holderKeys = holderKeys
    }
}

/// A threshold decryption: the plaintext residue, and the holders whose partials were left
/// out because their proofs failed.
public struct ThresholdDecryption: Hashable, Sendable {
    public let plaintext: BigInt
    /// Holder numbers, ascending.
    public let rejected: [Int]
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
        var p = safePrime(bits: bits / 2, using: &generator)
        var q = safePrime(bits: bits / 2, using: &generator)
        while p == q || (p * q).bitWidth != bits {
            p = safePrime(bits: bits / 2, using: &generator)
            q = safePrime(bits: bits / 2, using: &generator)
        }
        return try deal(p: p, q: q, threshold: t, holders: l, s: s, using: &generator)
    }

    /// Deals from given safe primes p ≠ q (vectors, and a ceremony that brings its own): the
    /// shares' coefficients, then v, drawn from `generator`.
    /// - Throws: ``PaillierError`` unless p and q are distinct safe primes and 1 ≤ t ≤ ℓ ≤ 64.
    public static func deal(
        p: BigInt, q: BigInt, threshold t: Int, holders l: Int, s: Int = 1,
        using generator: inout some RandomNumberGenerator
    ) throws(PaillierError) -> (ThresholdPaillierPublicKey, [ThresholdKeyShare]) {
        guard (1...ThresholdPaillierPublicKey.maxHolders).contains(l), (1...l).contains(t) else {
            throw .invalidThresholdParameters(
                "need 1 ≤ t ≤ ℓ ≤ \(ThresholdPaillierPublicKey.maxHolders), got t = \(t), ℓ = \(l)")
        }
        guard PaillierPublicKey.degrees.contains(s) else { throw .unsupportedDegree(s) }
        guard p != q, p.isProbablePrime(), q.isProbablePrime(), ((p - 1) / 2).isProbablePrime(),
            ((q - 1) / 2).isProbablePrime()
        else { throw .invalidThresholdParameters("p and q must be distinct safe primes") }
        let n = (p * q).declassified()
        let publicKey = try PaillierPublicKey(n: n, s: s)
        let m = ((p - 1) / 2) * ((q - 1) / 2)
        // d ≡ 0 (mod m), d ≡ 1 (mod n^s): d = m · (m⁻¹ mod n^s).
        let d = m * m.inverse(modulo: publicKey.plaintextModulus)!  // gcd(m, n) = 1 for distinct safe primes
        let order = publicKey.plaintextModulus * m
        let coefficients = [d] + (1..<t).map { _ in randomBelow(order, using: &generator) }
        let values = (1...l).map { i in
            let x = BigInt(i)
            return coefficients.reversed().reduce(BigInt(0)) { ($0 * x + $1).modulo(order) }
        }
        // v = x² for x drawn after the coefficients (so the shares do not depend on it), redrawn
        // until it is a unit; v_i = v^(Δ·s_i).
        let modulus = publicKey.ciphertextModulus
        var x = randomBelow(modulus, using: &generator)
        while x.signum == 0 || BigInt.gcd(x, publicKey.n) != 1 { x = randomBelow(modulus, using: &generator) }
        let v = (x * x).modulo(modulus).declassified()
        let delta = (1...l).reduce(BigInt(1)) { $0 * BigInt($1) }
        let verification = ThresholdVerificationKeys(
            v: v, holderKeys: values.map { v.securePower(delta * $0, modulo: modulus).declassified() })
        let key = try ThresholdPaillierPublicKey(
            publicKey: publicKey, threshold: t, holders: l, verification: verification)
        let shares = try values.enumerated().map { index, value throws(PaillierError) in
            try ThresholdKeyShare(holder: index + 1, thresholdKey: key, secret: value)
        }
        return (key, shares)
    }

    /// A prime p = 2p′ + 1 of exactly `bits` bits with p′ prime. Secret.
    public static func safePrime(bits: Int, using generator: inout some RandomNumberGenerator) -> BigInt {
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
