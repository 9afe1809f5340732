import CSodium

/// Diffie–Hellman in ristretto255 (RFC 9496), a group of prime order ℓ = 2^252 +
/// 27742317777372353535851937790883648493, on libsodium's `crypto_scalarmult_ristretto255`
/// and `crypto_core_ristretto255_*`.
///
/// Why a prime-order group beside X25519: a participant that receives shares it cannot
/// decrypt must prove to the server which key it used, without revealing its private key.
/// That proof (``EqualityProof``, Chaum–Pedersen) needs every encoding to name exactly one
/// group element and no small subgroup to hide in — what ristretto255 gives and X25519's
/// u-coordinates do not (`Specs/primitives.md` §12).
public enum Ristretto255 {
    /// The size of an encoded element and of a scalar, from libsodium.
    public static var elementByteCount: Int { Int(crypto_core_ristretto255_bytes()) }
    public static var scalarByteCount: Int { Int(crypto_core_ristretto255_scalarbytes()) }
    /// The size of the uniform strings reduced to scalars.
    static var wideScalarByteCount: Int { Int(crypto_core_ristretto255_nonreducedscalarbytes()) }

    /// A private scalar in [1, ℓ), held in ``SecureBytes``.
    public struct PrivateKey: Sendable {
        /// The 32-byte little-endian scalar, reduced mod ℓ.
        public let rawRepresentation: SecureBytes

        /// A fresh key from the system generator.
        public init() {
            var generator = SystemRandom()
            self.init(using: &generator)
        }

        /// A key drawn from an injected generator: 64 bytes, reduced mod ℓ, drawn again in the
        /// (probability 2^−252) case that the result is zero.
        public init(using generator: inout some RandomNumberGenerator) {
            while true {
                let wide = SecureBytes.random(count: Ristretto255.wideScalarByteCount, using: &generator)
                let scalar = Ristretto255.reduce(wide)
                if !Ristretto255.isZero(scalar) {
                    rawRepresentation = scalar
                    return
                }
            }
        }

        /// Wraps an existing scalar.
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``, or
        ///   ``CryptoError/invalidScalar`` when it is zero or not reduced mod ℓ.
        public init(rawRepresentation: SecureBytes) throws(CryptoError) {
            try checkLength("ristretto255 scalar", rawRepresentation.count, Ristretto255.scalarByteCount)
            guard Ristretto255.isCanonical(rawRepresentation), !Ristretto255.isZero(rawRepresentation) else {
                throw .invalidScalar
            }
            self.rawRepresentation = rawRepresentation
        }

        /// k·B, B the ristretto255 generator.
        public var publicKey: PublicKey {
            Sodium.ensureInitialized()
            var out = [UInt8](repeating: 0, count: Ristretto255.elementByteCount)
            // Fails only for k = 0, which init excludes.
            let code = rawRepresentation.withUnsafeBytes { k in
                crypto_scalarmult_ristretto255_base(&out, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            Sodium.checkCannotFail(code, "crypto_scalarmult_ristretto255_base")
            return PublicKey(unchecked: out)
        }

        /// k·P, encoded: the raw shared element. Hash it (``VeilKDF``) before use as a key.
        /// - Throws: ``CryptoError/weakPublicKey`` when the result is the identity (only when
        ///   P is the identity, which ``PublicKey`` already refuses).
        public func sharedSecret(with peer: PublicKey) throws(CryptoError) -> SecureBytes {
            var out = SecureBytes(zeros: Ristretto255.elementByteCount)
            let code = out.withUnsafeMutableBytes { q in
                Ristretto255.multiply(rawRepresentation, peer.rawRepresentation, into: q)
            }
            try Sodium.check(code, "crypto_scalarmult_ristretto255", failure: .weakPublicKey)
            return out
        }
    }

    /// B, the generator: base for proofs of possession (an ``EqualityProof`` with Y = B is a
    /// Schnorr proof of knowledge of x for X = x·B).
    public static var generator: PublicKey {
        var one = SecureBytes(zeros: scalarByteCount)
        one.withUnsafeMutableBytes { $0[0] = 1 }
        return try! PrivateKey(rawRepresentation: one).publicKey  // 1 is a valid scalar
    }

    /// An encoded group element other than the identity (RFC 9496 §4.3.1 decoding succeeds).
    public struct PublicKey: Hashable, Sendable {
        /// The 32 bytes as sent on the wire: the canonical encoding.
        public let rawRepresentation: [UInt8]

        /// Wraps 32 bytes received from a peer.
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``, or
        ///   ``CryptoError/invalidPoint`` when they are not a canonical encoding or encode the identity.
        public init(rawRepresentation: [UInt8]) throws(CryptoError) {
            try checkLength("ristretto255 element", rawRepresentation.count, Ristretto255.elementByteCount)
            Sodium.ensureInitialized()
            guard crypto_core_ristretto255_is_valid_point(rawRepresentation) == 1,
                rawRepresentation.contains(where: { $0 != 0 })  // the identity encodes as 32 zero bytes
            else { throw .invalidPoint }
            self.rawRepresentation = rawRepresentation
        }

        init(unchecked bytes: [UInt8]) { rawRepresentation = bytes }
    }

    // MARK: - Scalar and group arithmetic, each libsodium code checked

    /// A 64-byte string reduced mod ℓ, as a 32-byte scalar.
    public static func reduce(_ wide: SecureBytes) -> SecureBytes {
        Sodium.ensureInitialized()
        var out = SecureBytes(zeros: scalarByteCount)
        wide.withUnsafeBytes { w in
            out.withUnsafeMutableBytes { r in
                crypto_core_ristretto255_scalar_reduce(
                    r.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    w.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return out
    }

    static func reduce(_ wide: [UInt8]) -> [UInt8] {
        reduce(SecureBytes(copying: wide)).unsafeExposedBytes()  // public values: hashes of public data
    }

    static func isZero(_ scalar: SecureBytes) -> Bool {
        scalar.withUnsafeBytes { sodium_is_zero($0.baseAddress!.assumingMemoryBound(to: UInt8.self), $0.count) == 1 }
    }

    /// Whether a 32-byte little-endian scalar is below ℓ: reducing its zero-extension changes nothing.
    static func isCanonical(_ scalar: SecureBytes) -> Bool {
        var wide = SecureBytes(zeros: wideScalarByteCount)
        wide.withUnsafeMutableBytes { w in
            scalar.withUnsafeBytes { w.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        return reduce(wide) == scalar
    }

    /// n·P into `q`, n a scalar and P an encoded element; libsodium's code (−1: the result is
    /// the identity), for the caller to check.
    static func multiply(_ n: SecureBytes, _ p: [UInt8], into q: UnsafeMutableRawBufferPointer) -> Int32 {
        Sodium.ensureInitialized()
        return n.withUnsafeBytes { scalar in
            crypto_scalarmult_ristretto255(
                q.baseAddress!.assumingMemoryBound(to: UInt8.self),
                scalar.baseAddress!.assumingMemoryBound(to: UInt8.self), p)
        }
    }

    /// n·P for public n (proof verification).
    static func multiply(_ n: [UInt8], _ p: [UInt8]) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: elementByteCount)
        let code = out.withUnsafeMutableBytes { q in multiply(SecureBytes(copying: n), p, into: q) }
        try Sodium.check(code, "crypto_scalarmult_ristretto255", failure: .weakPublicKey)
        return out
    }

    static func multiplyBase(_ n: SecureBytes) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: elementByteCount)
        let code = n.withUnsafeBytes {
            crypto_scalarmult_ristretto255_base(&out, $0.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        try Sodium.check(code, "crypto_scalarmult_ristretto255_base", failure: .weakPublicKey)
        return out
    }

    static func add(_ p: [UInt8], _ q: [UInt8]) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: elementByteCount)
        try Sodium.check(
            crypto_core_ristretto255_add(&out, p, q), "crypto_core_ristretto255_add", failure: .invalidPoint)
        return out
    }
}
