/// A ciphertext: an element of Z*_(n²), and the n it belongs to.
public struct PaillierCiphertext: Hashable, Sendable {
    /// c.
    public let value: BigInt
    /// The n of the key that made it.
    public let modulus: BigInt

    init(value: BigInt, modulus: BigInt) {
        self.value = value
        self.modulus = modulus
    }

    /// The fixed-width big-endian encoding (⌈|n²| / 8⌉ bytes).
    public func bigEndianBytes() -> [UInt8] {
        try! value.bigEndianBytes(width: (2 * modulus.bitWidth + 7) / 8)  // c < n² by construction
    }

    /// The decimal encoding used in JSON and on the command line.
    public var decimal: String { value.decimal }
}

extension PaillierPublicKey {
    /// c = (1 + m·n) · r^n mod n² for a residue m ∈ 0..<n and r ∈ Z*_n; r^n is computed in
    /// constant time (`mpz_powm_sec`), since r reveals m.
    /// - Throws: ``PaillierError/plaintextOutOfRange`` when m ∉ 0..<n, ``PaillierError/ciphertextOutOfRange``
    ///   when r ∉ Z*_n.
    public func encrypt(residue m: BigInt, randomness r: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard m.signum >= 0, m < n else { throw .plaintextOutOfRange }
        guard r.signum > 0, r < n, BigInt.gcd(r, n) == 1 else { throw .ciphertextOutOfRange }
        let rn = r.asSecret().securePower(n, modulo: nSquared)
        return PaillierCiphertext(value: (gPower(m) * rn).modulo(nSquared).declassified(), modulus: n)
    }

    /// Encrypts a residue with fresh randomness r ∈ Z*_n from libsodium.
    public func encrypt(residue m: BigInt) throws(PaillierError) -> PaillierCiphertext {
        try encrypt(residue: m, randomness: freshRandomness())
    }

    /// Encrypts a signed value (its residue m mod n).
    public func encrypt(signed m: BigInt) throws(PaillierError) -> PaillierCiphertext {
        try encrypt(residue: residue(signed: m))
    }

    /// g^m = 1 + m·n mod n².
    func gPower(_ m: BigInt) -> BigInt { (m * n + 1).modulo(nSquared) }

    func freshRandomness() -> BigInt {
        while true {
            let r = BigInt.random(below: n)
            if r.signum > 0, BigInt.gcd(r, n) == 1 { return r }
        }
    }

    /// E(a) · E(b) = E(a + b mod n).
    public func add(_ a: PaillierCiphertext, _ b: PaillierCiphertext) throws(PaillierError) -> PaillierCiphertext {
        guard a.modulus == n, b.modulus == n else { throw .keyMismatch }
        return PaillierCiphertext(value: (a.value * b.value).modulo(nSquared), modulus: n)
    }

    /// E(a) · g^k = E(a + k mod n), for a public k.
    public func add(_ a: PaillierCiphertext, plaintext k: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard a.modulus == n else { throw .keyMismatch }
        return PaillierCiphertext(value: (a.value * gPower(k.modulo(n))).modulo(nSquared), modulus: n)
    }

    /// E(a)^k = E(k·a mod n), for a public scalar k (negative scalars through k mod n).
    public func multiply(_ a: PaillierCiphertext, by k: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard a.modulus == n else { throw .keyMismatch }
        return PaillierCiphertext(value: a.value.power(k.modulo(n), modulo: nSquared), modulus: n)
    }

    /// E(a) · r^n: the same plaintext under fresh randomness, unlinkable to the input.
    public func rerandomize(_ a: PaillierCiphertext) throws(PaillierError) -> PaillierCiphertext {
        try rerandomize(a, with: freshRandomness())
    }

    /// E(a) · r^n for a given r ∈ Z*_n: what an auditor recomputes from a published r
    /// (`Specs/audit.md` §7.3).
    /// - Throws: ``PaillierError/ciphertextOutOfRange`` when r ∉ Z*_n.
    public func rerandomize(_ a: PaillierCiphertext, with r: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard a.modulus == n else { throw .keyMismatch }
        guard r.signum > 0, r < n, BigInt.gcd(r, n) == 1 else { throw .ciphertextOutOfRange }
        let rn = r.asSecret().securePower(n, modulo: nSquared)
        return PaillierCiphertext(value: (a.value * rn).modulo(nSquared).declassified(), modulus: n)
    }

    /// E(0) with the given randomness: the identity of homomorphic addition when r = 1.
    public var zero: PaillierCiphertext { PaillierCiphertext(value: 1, modulus: n) }
}
