import VeilCore
import VeilCrypto

/// A Paillier public key: the modulus n = pq, with g = n + 1 (so g^m = 1 + mn mod n²) — or,
/// with s > 1, a Damgård–Jurik key over the same n: plaintexts are residues mod n^s and
/// ciphertexts units mod n^(s+1), so a ciphertext is only (s + 1)/s times its plaintext's
/// length instead of twice it (`Specs/paillier.md` §9).
public struct PaillierPublicKey: Hashable, Sendable {
    /// n.
    public let n: BigInt
    /// Damgård–Jurik's s, 1…4: 1 is Paillier.
    public let s: Int
    /// n^s: plaintexts are its residues.
    public let plaintextModulus: BigInt
    /// n^(s+1) (n² for Paillier): ciphertexts are its units.
    public let ciphertextModulus: BigInt

    /// The smallest modulus accepted. Keys of 2048 and 3072 bits are the supported sizes;
    /// smaller ones exist for tests and vectors only.
    public static let minimumBits = 256
    /// The largest modulus accepted: a modulus comes from a peer or a file, and testing a
    /// longer one for primality would let its sender hold the reader for seconds or minutes.
    public static let maximumBits = 8192
    /// The values of s supported. Beyond 4 the ciphertext shrinks by under 5 % per step while
    /// every operation works on ever longer numbers.
    public static let degrees = 1...4

    /// Wraps a modulus received from elsewhere.
    /// - Throws: ``PaillierError/invalidModulus(_:)`` unless n is odd, composite-looking and of
    ///   256 to 8192 bits; ``PaillierError/unsupportedDegree(_:)`` unless s is in 1…4.
    public init(n: BigInt, s: Int = 1) throws(PaillierError) {
        guard Self.degrees.contains(s) else { throw .unsupportedDegree(s) }
        guard n.signum > 0, n.bit(0) else { throw .invalidModulus("n must be odd and positive") }
        guard n.bitWidth >= Self.minimumBits else {
            throw .invalidModulus("n has \(n.bitWidth) bits, below \(Self.minimumBits)")
        }
        guard n.bitWidth <= Self.maximumBits else {
            throw .invalidModulus("n has \(n.bitWidth) bits, above \(Self.maximumBits)")
        }
        guard !n.isProbablePrime(rounds: 10) else { throw .invalidModulus("n is prime") }
        self.n = n.declassified()
        self.s = s
        let n = self.n
        plaintextModulus = (1..<s).reduce(n) { power, _ in power * n }
        ciphertextModulus = plaintextModulus * n
    }

    /// The same n with another s: the key files hold n alone, and s is chosen by the user.
    public func withDegree(_ s: Int) throws(PaillierError) -> PaillierPublicKey {
        guard Self.degrees.contains(s) else { throw .unsupportedDegree(s) }
        return try PaillierPublicKey(n: n, s: s)
    }

    /// Decodes n from big-endian bytes (the fixed-width key encoding).
    public init(bigEndian bytes: [UInt8]) throws(PaillierError) {
        try self.init(n: BigInt(bigEndian: bytes))
    }

    /// n as ⌈|n| / 8⌉ big-endian bytes.
    public var bigEndianBytes: [UInt8] { try! n.bigEndianBytes(width: modulusByteCount) }  // n fits its own width

    /// |n| in bits.
    public var bits: Int { n.bitWidth }
    /// g = n + 1.
    public var g: BigInt { n + 1 }
    /// The width of a ciphertext in the fixed-width encoding: ⌈(s + 1)·|n| / 8⌉ bytes
    /// (⌈|n²| / 8⌉ for Paillier).
    public var ciphertextByteCount: Int { ((s + 1) * bits + 7) / 8 }
    /// The width of n: ⌈|n| / 8⌉ bytes.
    public var modulusByteCount: Int { (bits + 7) / 8 }
    /// The largest magnitude of a signed plaintext: ⌊(n^s − 1)/2⌋.
    public var maxSignedMagnitude: BigInt { (plaintextModulus - 1) / 2 }

    /// The residue of a signed plaintext: m mod n^s.
    /// - Throws: ``PaillierError/plaintextOutOfRange`` when |m| > ⌊(n^s − 1)/2⌋.
    public func residue(signed m: BigInt) throws(PaillierError) -> BigInt {
        guard m.signum >= 0 ? m <= maxSignedMagnitude : -m <= maxSignedMagnitude else { throw .plaintextOutOfRange }
        return m.modulo(plaintextModulus)
    }

    /// The signed reading of a residue: r − n^s when r > ⌊(n^s − 1)/2⌋.
    public func signed(residue r: BigInt) -> BigInt { r > maxSignedMagnitude ? r - plaintextModulus : r }

    /// Checks and wraps a ciphertext value: in 1..<n^(s+1) and coprime to n.
    /// - Throws: ``PaillierError/ciphertextOutOfRange``.
    public func ciphertext(_ value: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard isInCiphertextRange(value), BigInt.gcd(value, n) == 1 else { throw .ciphertextOutOfRange }
        return wrap(value.declassified())
    }

    /// A value known to be a ciphertext of this key (computed from its ciphertexts).
    func wrap(_ value: BigInt) -> PaillierCiphertext { PaillierCiphertext(value: value, modulus: n, s: s) }

    /// Whether `c` is a ciphertext of this key: the same n and the same s.
    func owns(_ c: PaillierCiphertext) -> Bool { c.modulus == n && c.s == s }

    /// The first half of the ciphertext rule: `value` in 1..<n^(s+1). The second, coprimality
    /// with n, is ``firstNonUnit(_:)`` for many values at once.
    public func isInCiphertextRange(_ value: BigInt) -> Bool { value.signum > 0 && value < ciphertextModulus }

    /// The index of the first value that shares a factor with n, if any. Every value is a unit
    /// mod n exactly when their product mod n is (a prime factor of n divides the product only
    /// if it divides one of them), so many values cost one gcd and a multiplication each, not a
    /// gcd each — which cost `veil paillier add` more than the additions; the per-value gcds run
    /// only to find the one to name.
    public func firstNonUnit(_ values: [BigInt]) -> Int? {
        let chunks = Array(stride(from: 0, to: values.count, by: 256))
        let products = try! chunks.parallelMap { start in  // cannot throw
            values[start..<min(start + 256, values.count)].reduce(BigInt(1)) { ($0 * $1.modulo(n)).modulo(n) }
        }
        let product = products.reduce(BigInt(1)) { ($0 * $1).modulo(n) }
        guard BigInt.gcd(product, n) != 1 else { return nil }
        return values.firstIndex { BigInt.gcd($0, n) != 1 }
    }

    /// Decodes a fixed-width big-endian ciphertext (``ciphertextByteCount`` bytes).
    public func ciphertext(bigEndian bytes: [UInt8]) throws(PaillierError) -> PaillierCiphertext {
        guard bytes.count == ciphertextByteCount else {
            throw .malformed("a ciphertext is \(ciphertextByteCount) bytes, got \(bytes.count)")
        }
        return try ciphertext(BigInt(bigEndian: bytes))
    }

    /// Parses a decimal ciphertext.
    public func ciphertext(decimal text: String) throws(PaillierError) -> PaillierCiphertext {
        guard let value = BigInt(decimal: text) else {
            throw .malformed("\"\(text.prefix(20))\" is not a decimal integer")
        }
        return try ciphertext(value)
    }
}

/// A Paillier (or Damgård–Jurik) private key: the factors p and q of n, with what CRT
/// decryption precomputes. All of it is secret: wiped on release, never printed.
public struct PaillierPrivateKey: Sendable {
    public let publicKey: PaillierPublicKey
    let p: BigInt
    let q: BigInt
    /// p^(s+1), q^(s+1): the moduli of the two halves of a decryption.
    let pCiphertextModulus: BigInt
    let qCiphertextModulus: BigInt
    /// p^s, q^s: the moduli of the two halves of a plaintext.
    let pPlaintextModulus: BigInt
    let qPlaintextModulus: BigInt
    /// h_p = log_(1+p)((1 + n)^(p−1) mod p^(s+1))^(−1) mod p^s, likewise h_q; for s = 1,
    /// L_p(g^(p−1) mod p²)^(−1) mod p.
    let hp: BigInt
    let hq: BigInt
    /// (q^s)^(−1) mod p^s, for recombination.
    let qInverse: BigInt

    /// Builds the key from its primes.
    /// - Throws: ``PaillierError/invalidPrivateKey(_:)`` unless p ≠ q are primes of equal
    ///   length with gcd(pq, (p − 1)(q − 1)) = 1; ``PaillierError/unsupportedDegree(_:)``
    ///   unless s is in 1…4.
    public init(p: BigInt, q: BigInt, s: Int = 1) throws(PaillierError) {
        guard PaillierPublicKey.degrees.contains(s) else { throw .unsupportedDegree(s) }
        let p = p.asSecret()
        let q = q.asSecret()
        // Before anything computes with them: GMP's primality test reads |p|, and a negative
        // factor would pass it and trap later, in decryption (review, helper-18).
        guard p.signum > 0, q.signum > 0 else { throw .invalidPrivateKey("p and q must be positive") }
        guard p != q else { throw .invalidPrivateKey("p and q are equal") }
        guard p.bitWidth == q.bitWidth else { throw .invalidPrivateKey("p and q differ in length") }
        // Before the primality tests, whose time grows with the cube of the length.
        guard p.bitWidth <= PaillierPublicKey.maximumBits / 2 else {
            throw .invalidPrivateKey("p and q have \(p.bitWidth) bits, above \(PaillierPublicKey.maximumBits / 2)")
        }
        guard p.isProbablePrime(), q.isProbablePrime() else { throw .invalidPrivateKey("p or q is not prime") }
        let n = (p * q)
        guard BigInt.gcd(n, (p - 1) * (q - 1)) == 1 else { throw .invalidPrivateKey("gcd(n, φ(n)) ≠ 1") }
        let publicKey = try PaillierPublicKey(n: n.declassified(), s: s)
        self.publicKey = publicKey
        self.p = p
        self.q = q
        func power(_ base: BigInt, _ exponent: Int) -> BigInt { (1..<exponent).reduce(base) { x, _ in x * base } }
        pPlaintextModulus = power(p, s)
        qPlaintextModulus = power(q, s)
        pCiphertextModulus = pPlaintextModulus * p
        qCiphertextModulus = qPlaintextModulus * q
        func h(_ prime: BigInt, _ plaintextModulus: BigInt, _ ciphertextModulus: BigInt) -> BigInt {
            let g = publicKey.g.securePower(prime - 1, modulo: ciphertextModulus)
            // log_(1+p)(1 + n) ≡ q (mod p) and p − 1 ≡ −1: the product is a unit mod p^s.
            return Self.logarithm(g, base: prime, s: s).inverse(modulo: plaintextModulus)!
        }
        hp = h(p, pPlaintextModulus, pCiphertextModulus)
        hq = h(q, qPlaintextModulus, qCiphertextModulus)
        qInverse = qPlaintextModulus.inverse(modulo: pPlaintextModulus)!  // distinct primes
    }

    /// A fresh key of `bits` bits: two random primes of bits/2 bits each (top two bits set, so
    /// that n has exactly `bits` bits), from libsodium's generator.
    /// - Throws: ``PaillierError/unsupportedKeySize(_:)`` unless bits is even and in 256...8192.
    public static func generate(bits: Int, s: Int = 1) throws(PaillierError) -> PaillierPrivateKey {
        var generator = SystemRandom()
        return try generate(bits: bits, s: s, using: &generator)
    }

    /// A key from an injected generator (reproducible keys for vectors and tests). The primes
    /// do not depend on s.
    public static func generate(bits: Int, s: Int = 1, using generator: inout some RandomNumberGenerator)
        throws(PaillierError) -> PaillierPrivateKey
    {
        guard bits % 2 == 0, (PaillierPublicKey.minimumBits...PaillierPublicKey.maximumBits).contains(bits) else {
            throw .unsupportedKeySize(bits)
        }
        guard PaillierPublicKey.degrees.contains(s) else { throw .unsupportedDegree(s) }
        while true {
            let p = randomPrime(bits: bits / 2, using: &generator)
            let q = randomPrime(bits: bits / 2, using: &generator)
            if let key = try? PaillierPrivateKey(p: p, q: q, s: s), key.publicKey.bits == bits { return key }
        }
    }

    /// The same primes with another s.
    public func withDegree(_ s: Int) throws(PaillierError) -> PaillierPrivateKey {
        try PaillierPrivateKey(p: p, q: q, s: s)
    }

    /// A random prime of exactly `bits` bits: candidates 2^(bits−1) + 2^(bits−2) + (random of
    /// bits − 2 bits), made odd, until one passes `mpz_probab_prime_p` with 40 rounds.
    static func randomPrime(bits: Int, using generator: inout some RandomNumberGenerator) -> BigInt {
        let top = BigInt(3).shiftedLeft(bits - 2)
        while true {
            var candidate = BigInt.random(bits: bits - 2, using: &generator) + top
            if !candidate.bit(0) { candidate = candidate + 1 }
            if candidate.isProbablePrime() { return candidate.asSecret() }
        }
    }

    /// The residue m ∈ 0..<n^s encrypted in `c`, by CRT:
    /// m_p = log_(1+p)(c^(p−1) mod p^(s+1))·h_p mod p^s, m_q likewise,
    /// m = m_q + q^s·((m_p − m_q)·(q^s)^(−1) mod p^s). For s = 1 the logarithm is
    /// L_p(x) = (x − 1)/p. The exponentiations are constant-time (`mpz_powm_sec`).
    /// - Throws: ``PaillierError/keyMismatch`` for a ciphertext of another key.
    public func decrypt(_ c: PaillierCiphertext) throws(PaillierError) -> BigInt {
        guard publicKey.owns(c) else { throw .keyMismatch }
        let s = publicKey.s
        let mp = Self.logarithm(c.value.securePower(p - 1, modulo: pCiphertextModulus), base: p, s: s) * hp
        let mq = Self.logarithm(c.value.securePower(q - 1, modulo: qCiphertextModulus), base: q, s: s) * hq
        let mpReduced = mp.modulo(pPlaintextModulus)
        let mqReduced = mq.modulo(qPlaintextModulus)
        return (mqReduced + qPlaintextModulus * ((mpReduced - mqReduced) * qInverse).modulo(pPlaintextModulus))
            .declassified()
    }

    /// The signed plaintext: the residue read in −⌊(n^s−1)/2⌋…⌊(n^s−1)/2⌋.
    public func decryptSigned(_ c: PaillierCiphertext) throws(PaillierError) -> BigInt {
        publicKey.signed(residue: try decrypt(c))
    }

    /// The factors, for the secret-key file (`veil paillier keygen`). Handle as secrets.
    public var primes: (p: BigInt, q: BigInt) { (p, q) }

    /// i ∈ 0..<b^s with (1 + b)^i ≡ a (mod b^(s+1)), for a in the subgroup 1 + b generates and
    /// b with no prime factor up to s (so that k! is a unit mod b^s for k ≤ s). Damgård and
    /// Jurik's digit-by-digit extraction: with i_(j−1) = i mod b^(j−1) known,
    /// L(a mod b^(j+1)) = i + C(i, 2)·b + … + C(i, j)·b^(j−1) (mod b^j), L(x) = (x − 1)/b, and
    /// every C(i, k)·b^(k−1) with k ≥ 2 is already fixed by i_(j−1), so
    /// i_j = L(a mod b^(j+1)) − Σ_(k=2…j) C(i_(j−1), k)·b^(k−1) (mod b^j).
    /// For s = 1 it is L(a mod b²) mod b.
    static func logarithm(_ a: BigInt, base b: BigInt, s: Int) -> BigInt {
        var i = BigInt(0)
        var bj = b  // b^j
        for j in 1...s {
            let next = bj * b
            var digitSum = (a.modulo(next) - 1).dividedExactly(by: b)
            var product = i  // i·(i − 1)·…·(i − k + 1)
            var factor = i
            var factorial = BigInt(1)
            var bk = BigInt(1)  // b^(k−1)
            if j >= 2 {
                for k in 2...j {
                    factor = factor - 1
                    product = (product * factor).modulo(bj)
                    factorial = factorial * BigInt(k)
                    bk = bk * b
                    // k! < b: a unit mod b^j.
                    digitSum = digitSum - product * bk * factorial.inverse(modulo: bj)!
                }
            }
            i = digitSum.modulo(bj)
            bj = next
        }
        return i
    }
}
