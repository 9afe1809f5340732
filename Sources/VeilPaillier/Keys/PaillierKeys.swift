import VeilCore
import VeilCrypto

/// A Paillier public key: the modulus n = pq, with g = n + 1 (so g^m = 1 + mn mod n²).
public struct PaillierPublicKey: Hashable, Sendable {
    /// n.
    public let n: BigInt
    /// n².
    public let nSquared: BigInt

    /// The smallest modulus accepted. Keys of 2048 and 3072 bits are the supported sizes;
    /// smaller ones exist for tests and vectors only.
    public static let minimumBits = 256
    /// The largest modulus accepted: a modulus comes from a peer or a file, and testing a
    /// longer one for primality would let its sender hold the reader for seconds or minutes.
    public static let maximumBits = 8192

    /// Wraps a modulus received from elsewhere.
    /// - Throws: ``PaillierError/invalidModulus(_:)`` unless n is odd, composite-looking and of
    ///   256 to 8192 bits.
    public init(n: BigInt) throws(PaillierError) {
        guard n.signum > 0, n.bit(0) else { throw .invalidModulus("n must be odd and positive") }
        guard n.bitWidth >= Self.minimumBits else {
            throw .invalidModulus("n has \(n.bitWidth) bits, below \(Self.minimumBits)")
        }
        guard n.bitWidth <= Self.maximumBits else {
            throw .invalidModulus("n has \(n.bitWidth) bits, above \(Self.maximumBits)")
        }
        guard !n.isProbablePrime(rounds: 10) else { throw .invalidModulus("n is prime") }
        self.n = n.declassified()
        self.nSquared = self.n * self.n
    }

    /// Decodes n from big-endian bytes (the fixed-width key encoding).
    public init(bigEndian bytes: [UInt8]) throws(PaillierError) {
        try self.init(n: BigInt(bigEndian: bytes))
    }

    /// n as ⌈|n| / 8⌉ big-endian bytes.
    public var bigEndianBytes: [UInt8] { try! n.bigEndianBytes(width: plaintextByteCount) }  // n fits its own width

    /// |n| in bits.
    public var bits: Int { n.bitWidth }
    /// g = n + 1.
    public var g: BigInt { n + 1 }
    /// The width of a ciphertext in the fixed-width encoding: ⌈|n²| / 8⌉ bytes.
    public var ciphertextByteCount: Int { (2 * bits + 7) / 8 }
    /// The width of a plaintext residue: ⌈|n| / 8⌉ bytes.
    public var plaintextByteCount: Int { (bits + 7) / 8 }
    /// The largest magnitude of a signed plaintext: ⌊(n − 1)/2⌋.
    public var maxSignedMagnitude: BigInt { (n - 1) / 2 }

    /// The residue of a signed plaintext: m mod n.
    /// - Throws: ``PaillierError/plaintextOutOfRange`` when |m| > ⌊(n − 1)/2⌋.
    public func residue(signed m: BigInt) throws(PaillierError) -> BigInt {
        guard m.signum >= 0 ? m <= maxSignedMagnitude : -m <= maxSignedMagnitude else { throw .plaintextOutOfRange }
        return m.modulo(n)
    }

    /// The signed reading of a residue: r − n when r > ⌊(n − 1)/2⌋.
    public func signed(residue r: BigInt) -> BigInt { r > maxSignedMagnitude ? r - n : r }

    /// Checks and wraps a ciphertext value: in 1..<n² and coprime to n.
    /// - Throws: ``PaillierError/ciphertextOutOfRange``.
    public func ciphertext(_ value: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard isInCiphertextRange(value), BigInt.gcd(value, n) == 1 else { throw .ciphertextOutOfRange }
        return PaillierCiphertext(value: value.declassified(), modulus: n)
    }

    /// The first half of the ciphertext rule: `value` in 1..<n². The second, coprimality with
    /// n, is ``firstNonUnit(_:)`` for many values at once.
    public func isInCiphertextRange(_ value: BigInt) -> Bool { value.signum > 0 && value < nSquared }

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

/// A Paillier private key: the factors p and q of n, with what CRT decryption precomputes.
/// All of it is secret: wiped on release, never printed.
public struct PaillierPrivateKey: Sendable {
    public let publicKey: PaillierPublicKey
    let p: BigInt
    let q: BigInt
    let pSquared: BigInt
    let qSquared: BigInt
    /// h_p = L_p(g^(p−1) mod p²)^(−1) mod p, likewise h_q.
    let hp: BigInt
    let hq: BigInt
    /// q^(−1) mod p, for recombination.
    let qInverse: BigInt

    /// Builds the key from its primes.
    /// - Throws: ``PaillierError/invalidPrivateKey(_:)`` unless p ≠ q are primes of equal
    ///   length with gcd(pq, (p − 1)(q − 1)) = 1.
    public init(p: BigInt, q: BigInt) throws(PaillierError) {
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
        self.publicKey = try PaillierPublicKey(n: n.declassified())
        self.p = p
        self.q = q
        pSquared = p * p
        qSquared = q * q
        let g = publicKey.g
        func h(_ prime: BigInt, _ square: BigInt) -> BigInt {
            let lValue = (g.securePower(prime - 1, modulo: square) - 1).dividedExactly(by: prime)
            return lValue.inverse(modulo: prime)!  // L_p(g^(p−1)) = −q mod p, invertible since q ≠ p
        }
        hp = h(p, pSquared)
        hq = h(q, qSquared)
        qInverse = q.inverse(modulo: p)!  // distinct primes
    }

    /// A fresh key of `bits` bits: two random primes of bits/2 bits each (top two bits set, so
    /// that n has exactly `bits` bits), from libsodium's generator.
    /// - Throws: ``PaillierError/unsupportedKeySize(_:)`` unless bits is even and in 256...8192.
    public static func generate(bits: Int) throws(PaillierError) -> PaillierPrivateKey {
        var generator = SystemRandom()
        return try generate(bits: bits, using: &generator)
    }

    /// A key from an injected generator (reproducible keys for vectors and tests).
    public static func generate(bits: Int, using generator: inout some RandomNumberGenerator) throws(PaillierError)
        -> PaillierPrivateKey
    {
        guard bits % 2 == 0, (PaillierPublicKey.minimumBits...PaillierPublicKey.maximumBits).contains(bits) else {
            throw .unsupportedKeySize(bits)
        }
        while true {
            let p = randomPrime(bits: bits / 2, using: &generator)
            let q = randomPrime(bits: bits / 2, using: &generator)
            if let key = try? PaillierPrivateKey(p: p, q: q), key.publicKey.bits == bits { return key }
        }
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

    /// The residue m ∈ 0..<n encrypted in `c`, by CRT:
    /// m_p = L_p(c^(p−1) mod p²)·h_p mod p, m_q likewise, m = m_q + q·((m_p − m_q)·q^(−1) mod p).
    /// The exponentiations are constant-time (`mpz_powm_sec`).
    /// - Throws: ``PaillierError/keyMismatch`` for a ciphertext of another key.
    public func decrypt(_ c: PaillierCiphertext) throws(PaillierError) -> BigInt {
        guard c.modulus == publicKey.n else { throw .keyMismatch }
        let mp = (c.value.securePower(p - 1, modulo: pSquared) - 1).dividedExactly(by: p).modulo(p) * hp
        let mq = (c.value.securePower(q - 1, modulo: qSquared) - 1).dividedExactly(by: q).modulo(q) * hq
        let mpReduced = mp.modulo(p)
        let mqReduced = mq.modulo(q)
        return (mqReduced + q * ((mpReduced - mqReduced) * qInverse).modulo(p)).declassified()
    }

    /// The signed plaintext: the residue read in −⌊(n−1)/2⌋…⌊(n−1)/2⌋.
    public func decryptSigned(_ c: PaillierCiphertext) throws(PaillierError) -> BigInt {
        publicKey.signed(residue: try decrypt(c))
    }

    /// The factors, for the secret-key file (`veil paillier keygen`). Handle as secrets.
    public var primes: (p: BigInt, q: BigInt) { (p, q) }
}
