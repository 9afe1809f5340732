import CGMP

/// Damgård–Jurik–Nielsen encryption: c = (1 + n)^m · h_s^α mod n^(s+1), with
/// h_s = (−y²)^(n^s) mod n^(s+1) for a random y, and α a random exponent of ⌈|n|/2⌉ bits —
/// half the length of the n-bit exponent r^n needs (for Paillier, s = 1: c = (1 + m·n)·h_s^α mod n²). With a fixed-base table the exponentiation becomes ⌈|α|/w⌉
/// multiplications of table entries, selected in constant time (`mpn_sec_tabselect`).
public struct DJNEncryptor: Sendable {
    public let publicKey: PaillierPublicKey
    /// h_s: public.
    public let base: BigInt
    /// |α| = ⌈|n|/2⌉.
    public let exponentBits: Int
    let table: FixedBaseTable?

    /// Prepares an encryptor: draws y, computes h_s, and optionally the table.
    /// - Parameters:
    ///   - publicKey: the key.
    ///   - precomputeTable: build the fixed-base table (about ⌈|n|/2w⌉ · 2^w entries of |n²| bits).
    ///   - window: w, the table's window in bits.
    public init(publicKey: PaillierPublicKey, precomputeTable: Bool, window: Int = 6) {
        let y = publicKey.freshRandomness()
        let h = (publicKey.n - (y * y).modulo(publicKey.n)).modulo(publicKey.n)
        self.init(
            publicKey: publicKey,
            base: h.declassified().power(publicKey.plaintextModulus, modulo: publicKey.ciphertextModulus),
            precomputeTable: precomputeTable, window: window)
    }

    /// An encryptor with a given h_s (for vectors and for sharing one precomputation).
    public init(publicKey: PaillierPublicKey, base: BigInt, precomputeTable: Bool, window: Int = 6) {
        self.publicKey = publicKey
        self.base = base.declassified()
        exponentBits = (publicKey.bits + 1) / 2
        table =
            precomputeTable
            ? FixedBaseTable(
                base: self.base, modulus: publicKey.ciphertextModulus, exponentBits: exponentBits, window: window)
            : nil
    }

    /// Encrypts a residue m ∈ 0..<n^s with a fresh α.
    public func encrypt(residue m: BigInt) throws(PaillierError) -> PaillierCiphertext {
        try encrypt(residue: m, exponent: BigInt.random(bits: exponentBits))
    }

    /// Encrypts with a given α < 2^⌈|n|/2⌉ (secret: it reveals m).
    public func encrypt(residue m: BigInt, exponent alpha: BigInt) throws(PaillierError) -> PaillierCiphertext {
        guard m.signum >= 0, m < publicKey.plaintextModulus else { throw .plaintextOutOfRange }
        let alpha = alpha.asSecret()
        let mask = table?.power(alpha) ?? base.securePower(alpha, modulo: publicKey.ciphertextModulus)
        return publicKey.wrap((publicKey.gPower(m) * mask).modulo(publicKey.ciphertextModulus).declassified())
    }
}

/// base^e mod m for a fixed base, by windows: T[i][j] = base^(j · 2^(w·i)) · u_i, so that
/// base^e = U · Π_i T[i][digit_i(e)] with U = (Π_i u_i)^(−1). Entries are stored as limb
/// arrays of equal length so that `mpn_sec_tabselect` can read a secret digit's entry without
/// a secret-dependent address.
///
/// The public blinding factors u_i (uniform in Z*_m) are what keep the multiplications'
/// running time independent of the digits: without them T[i][0] is the integer 1, which GMP
/// stores in one limb, and a zero digit multiplies about five times faster than any other —
/// a timing leak of the secret exponent, window by window. With them every entry, and the
/// accumulator from its first value U, is a full-size residue.
final class FixedBaseTable: @unchecked Sendable {
    // Immutable after init.
    let modulus: BigInt
    let window: Int
    let windows: Int
    let limbs: Int
    /// U = (Π u_i)^(−1) mod m: the accumulator's first value.
    private let unblinding: BigInt
    private let entries: UnsafeMutablePointer<mp_limb_t>

    init(base: BigInt, modulus: BigInt, exponentBits: Int, window: Int) {
        precondition((1...12).contains(window), "window of 1...12 bits")
        self.modulus = modulus
        self.window = window
        windows = (exponentBits + window - 1) / window
        limbs = veil_mpz_size(modulus.pointer)
        let perWindow = 1 << window
        let table = UnsafeMutablePointer<mp_limb_t>.allocate(capacity: windows * perWindow * limbs)
        table.initialize(repeating: 0, count: windows * perWindow * limbs)
        func store(_ value: BigInt, at offset: Int) {
            let size = veil_mpz_size(value.pointer)
            // mpz_limbs_read returns the limb array of an initialised mpz, never NULL.
            let source = veil_mpz_limbs_read(value.pointer)!
            for k in 0..<size { table[offset + k] = source[k] }
        }
        var step = base.modulo(modulus)  // base^(2^(w·i))
        var blindings = BigInt(1)
        for i in 0..<windows {
            let blinding = Self.unit(modulo: modulus)
            blindings = (blindings * blinding).modulo(modulus)
            // The blinded entries directly, one product each: base^(j · 2^(w·i)) · u_i.
            var entry = blinding
            for j in 0..<perWindow {
                store(entry, at: (i * perWindow + j) * limbs)
                entry = (entry * step).modulo(modulus)
            }
            // base^(2^(w·(i+1))) by w squarings, not the 2^w products an unblinded row gives
            // for free: half the table's cost, which dominates a small batch at s > 1.
            for _ in 0..<window { step = (step * step).modulo(modulus) }
        }
        entries = table
        unblinding = blindings.inverse(modulo: modulus)!  // a product of units is a unit
    }

    deinit { entries.deallocate() }

    /// A uniform unit of Z_m of full size (public: it hides nothing, it only fills limbs).
    private static func unit(modulo m: BigInt) -> BigInt {
        while true {
            let candidate = BigInt.random(below: m, secret: false)
            if veil_mpz_size(candidate.pointer) == veil_mpz_size(m.pointer), BigInt.gcd(candidate, m) == BigInt(1) {
                return candidate
            }
        }
    }

    /// The number of significant limbs of each entry, for tests: all equal `limbs` when no
    /// entry is shorter than the modulus's limb count.
    func entrySizes() -> [Int] {
        (0..<(windows << window)).map { e in
            var size = limbs
            while size > 0 && entries[e * limbs + size - 1] == 0 { size -= 1 }
            return size
        }
    }

    /// base^e mod m for 0 ≤ e < 2^(w·windows). Each window's entry is selected straight into
    /// the limbs of a scratch integer by `mpn_sec_tabselect`, which reads every entry.
    func power(_ e: BigInt) -> BigInt {
        let perWindow = 1 << window
        return BigInt(secret: true) { acc in
            veil_mpz_set(acc, unblinding.pointer)
            let entry = BigInt(secret: true) { _ in }
            let product = BigInt(secret: true) { _ in }
            for i in 0..<windows {
                var digit = 0
                for b in 0..<window { digit |= Int(veil_mpz_tstbit(e.pointer, mp_bitcnt_t(i * window + b))) << b }
                // mpz_limbs_write reallocates (GMP aborts when it cannot) and never returns NULL.
                let limbsOut = veil_mpz_limbs_write(entry.pointer, limbs)!
                veil_mpn_sec_tabselect(limbsOut, entries + i * perWindow * limbs, limbs, perWindow, digit)
                veil_mpz_limbs_finish(entry.pointer, limbs)
                veil_mpz_mul(product.pointer, acc, entry.pointer)
                veil_mpz_mod(acc, product.pointer, modulus.pointer)
            }
        }
    }
}
