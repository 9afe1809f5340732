/// A ciphertext: an element of Z*_(n^(s+1)) (Z*_(n²) for Paillier), and the key it belongs to.
public struct PaillierCiphertext: Hashable, Sendable {
    /// c.
    public let value: BigInt
    /// The n of the key that made it.
    public let modulus: BigInt
    /// The key's s.
    public let s: Int

    init(value: BigInt, modulus: BigInt, s: Int) {
        self.value = value
        self.modulus = modulus
        self.s = s
    }

    /// The fixed-width big-endian encoding (⌈(s + 1)·|n| / 8⌉ bytes).
    public func bigEndianBytes() -> [UInt8] {
        try! value.bigEndianBytes(width: ((s + 1) * modulus.bitWidth + 7) / 8)  // c < n^(s+1) by construction
    }

    /// The decimal encoding used in JSON and on the command line.
    public var decimal: String { value.decimal }
}

extension PaillierPublicKey {
    /// c = (1 + n)^m · r^(n^s) mod n^(s+1) for a residue m ∈ 0..<n^s and r ∈ Z*_n (for
    /// Paillier, (1 + m·n) · r^n mod n²); r^(n^s) is computed in constant time
    /// (`mpz_powm_sec`), since r reveals m. (r^(n^s) mod n^(s+1) depends only on r mod n, so r
    /// from Z*_n gives the distribution of r from Z*_(n^(s+1)).)
    /// - Throws: ``PaillierError/plaintextOutOfRange`` when m ∉ 0..<n^s, ``PaillierError/ciphertextOutOfRange``
    ///   when r ∉ Z*_n.
    public func encrypt(residue m: BigInt, randomness r: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard m.signum >= 0, m < plaintextModulus else { throw .plaintextOutOfRange }
        guard r.signum > 0, r < n, BigInt.gcd(r, n) == 1 else { throw .ciphertextOutOfRange }
        let rn = r.asSecret().securePower(plaintextModulus, modulo: ciphertextModulus)
        return wrap((gPower(m) * rn).modulo(ciphertextModulus).declassified())
    }

    /// Encrypts a residue with fresh randomness r ∈ Z*_n from libsodium.
    public func encrypt(residue m: BigInt) throws(PaillierError) -> PaillierCiphertext {
        try encrypt(residue: m, randomness: freshRandomness())
    }

    /// Encrypts a signed value (its residue m mod n).
    public func encrypt(signed m: BigInt) throws(PaillierError) -> PaillierCiphertext {
        try encrypt(residue: residue(signed: m))
    }

    /// g^m = (1 + n)^m = Σ_(k=0…s) C(m, k)·n^k mod n^(s+1) — the binomial terms beyond k = s
    /// vanish — so no exponentiation is needed: 1 + m·n mod n² for Paillier.
    func gPower(_ m: BigInt) -> BigInt {
        var sum = BigInt(1)
        var binomial = BigInt(1)  // C(m, k)
        var nPower = BigInt(1)  // n^k
        for k in 1...s {
            // C(m, k) = C(m, k − 1)·(m − k + 1)/k, exactly.
            binomial = (binomial * (m - BigInt(k - 1))).dividedExactly(by: BigInt(k))
            nPower = nPower * n
            sum = sum + binomial * nPower
        }
        return sum.modulo(ciphertextModulus)
    }

    func freshRandomness() -> BigInt {
        while true {
            let r = BigInt.random(below: n)
            if r.signum > 0, BigInt.gcd(r, n) == 1 { return r }
        }
    }

    /// E(a) · E(b) = E(a + b mod n^s).
    public func add(_ a: PaillierCiphertext, _ b: PaillierCiphertext) throws(PaillierError) -> PaillierCiphertext {
        guard owns(a), owns(b) else { throw .keyMismatch }
        return wrap((a.value * b.value).modulo(ciphertextModulus))
    }

    /// E(a) · g^k = E(a + k mod n^s), for a public k.
    public func add(_ a: PaillierCiphertext, plaintext k: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard owns(a) else { throw .keyMismatch }
        return wrap((a.value * gPower(k.modulo(plaintextModulus))).modulo(ciphertextModulus))
    }

    /// E(a)^k = E(k·a mod n^s), for a public scalar k (negative scalars through k mod n^s).
    public func multiply(_ a: PaillierCiphertext, by k: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard owns(a) else { throw .keyMismatch }
        return wrap(a.value.power(k.modulo(plaintextModulus), modulo: ciphertextModulus))
    }

    /// E(a) · r^(n^s): the same plaintext under fresh randomness, unlinkable to the input.
    public func rerandomize(_ a: PaillierCiphertext) throws(PaillierError) -> PaillierCiphertext {
        try rerandomize(a, with: freshRandomness())
    }

    /// E(a) · r^(n^s) for a given r ∈ Z*_n: what an auditor recomputes from a published r
    /// (`Specs/audit.md` §7.3).
    /// - Throws: ``PaillierError/ciphertextOutOfRange`` when r ∉ Z*_n.
    public func rerandomize(_ a: PaillierCiphertext, with r: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard owns(a) else { throw .keyMismatch }
        guard r.signum > 0, r < n, BigInt.gcd(r, n) == 1 else { throw .ciphertextOutOfRange }
        let rn = r.asSecret().securePower(plaintextModulus, modulo: ciphertextModulus)
        return wrap((a.value * rn).modulo(ciphertextModulus).declassified())
    }

    /// E(0) with the given randomness: the identity of homomorphic addition when r = 1.
    public var zero: PaillierCiphertext { wrap(1) }
}
