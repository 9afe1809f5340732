import CSodium

/// Ed25519 signatures (RFC 8032), on libsodium's `crypto_sign_ed25519`.
///
/// Verification is libsodium's: it rejects non-canonical S (malleability), non-canonical or
/// small-order public keys and R, and signatures of the wrong length.
public enum Ed25519 {
    /// The seed (RFC 8032 private key) size.
    public static var seedByteCount: Int { Int(crypto_sign_seedbytes()) }
    /// The public key size.
    public static var publicKeyByteCount: Int { Int(crypto_sign_publickeybytes()) }
    /// The signature size.
    public static var signatureByteCount: Int { Int(crypto_sign_bytes()) }

    /// A signing key: the RFC 8032 32-byte seed and libsodium's expanded form.
    public struct PrivateKey: Sendable {
        /// The 32-byte RFC 8032 private key.
        public let seed: SecureBytes
        /// libsodium's 64-byte secret key (seed ‖ public key).
        private let expanded: SecureBytes
        /// The matching public key.
        public let publicKey: PublicKey

        /// A fresh key from the system generator.
        public init() {
            self.init(validSeed: SecureBytes.random(count: Ed25519.seedByteCount))
        }

        /// A key whose seed is drawn from an injected generator.
        public init(using generator: inout some RandomNumberGenerator) {
            self.init(validSeed: SecureBytes.random(count: Ed25519.seedByteCount, using: &generator))
        }

        /// The key for an RFC 8032 seed.
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``.
        public init(seed: SecureBytes) throws(CryptoError) {
            try checkLength("Ed25519 seed", seed.count, Ed25519.seedByteCount)
            self.init(validSeed: seed)
        }

        private init(validSeed seed: SecureBytes) {
            Sodium.ensureInitialized()
            var expanded = SecureBytes(zeros: Int(crypto_sign_secretkeybytes()))
            var publicKey = [UInt8](repeating: 0, count: Ed25519.publicKeyByteCount)
            // crypto_sign_seed_keypair always succeeds for a 32-byte seed.
            let code = seed.withUnsafeBytes { s in
                expanded.withUnsafeMutableBytes { sk in
                    crypto_sign_seed_keypair(
                        &publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        s.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
            Sodium.checkCannotFail(code, "crypto_sign_seed_keypair")
            self.seed = seed
            self.expanded = expanded
            self.publicKey = PublicKey(unchecked: publicKey)
        }

        /// Signs a message (deterministic, RFC 8032 section 5.1.6).
        public func signature(for message: some Collection<UInt8>) -> [UInt8] {
            var signature = [UInt8](repeating: 0, count: Ed25519.signatureByteCount)
            let bytes = Array(message)
            // crypto_sign_detached cannot fail for a well-formed secret key.
            let code = expanded.withUnsafeBytes { sk in
                crypto_sign_detached(
                    &signature, nil, bytes, UInt64(bytes.count), sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            Sodium.checkCannotFail(code, "crypto_sign_detached")
            return signature
        }
    }

    /// A verification key.
    public struct PublicKey: Hashable, Sendable {
        /// The 32-byte encoding.
        public let rawRepresentation: [UInt8]

        /// Wraps 32 bytes received from a peer (their validity is checked at verification).
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``.
        public init(rawRepresentation: [UInt8]) throws(CryptoError) {
            try checkLength("Ed25519 public key", rawRepresentation.count, Ed25519.publicKeyByteCount)
            self.rawRepresentation = rawRepresentation
        }

        init(unchecked bytes: [UInt8]) { rawRepresentation = bytes }

        /// Whether `signature` is a valid signature of `message` under this key. A signature
        /// of the wrong length is simply invalid.
        public func isValidSignature(_ signature: [UInt8], for message: some Collection<UInt8>) -> Bool {
            guard signature.count == Ed25519.signatureByteCount else { return false }
            Sodium.ensureInitialized()
            let bytes = Array(message)
            return crypto_sign_verify_detached(signature, bytes, UInt64(bytes.count), rawRepresentation) == 0
        }
    }
}

// MARK: - The same key for X25519 agreement

extension Ed25519.PrivateKey {
    /// The X25519 scalar of this key's curve point (`crypto_sign_ed25519_sk_to_curve25519`:
    /// the clamped first half of SHA-512(seed)). A certified signing key can thereby agree
    /// keys with its peers without a second certified key; Thormarker (2021, "On using the
    /// same key pair for Ed25519 and an X25519 based KEM") shows the joint use secure.
    /// `Specs/paillier.md` §6.1 uses it for pairwise masks.
    public func agreementKey() throws(CryptoError) -> X25519.PrivateKey {
        var scalar = SecureBytes(zeros: X25519.keyByteCount)
        let code = expanded.withUnsafeBytes { sk in
            scalar.withUnsafeMutableBytes { out in
                crypto_sign_ed25519_sk_to_curve25519(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        try Sodium.check(code, "crypto_sign_ed25519_sk_to_curve25519")
        return try X25519.PrivateKey(rawRepresentation: scalar)
    }
}

extension Ed25519.PublicKey {
    /// The Montgomery u-coordinate of this Edwards point (`crypto_sign_ed25519_pk_to_curve25519`).
    /// - Throws: ``CryptoError/libsodiumFailure(function:code:)`` when the bytes are not a
    ///   point of the prime-order subgroup (libsodium refuses small-order and non-canonical points).
    public func agreementKey() throws(CryptoError) -> X25519.PublicKey {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: X25519.keyByteCount)
        try Sodium.check(
            crypto_sign_ed25519_pk_to_curve25519(&out, rawRepresentation), "crypto_sign_ed25519_pk_to_curve25519")
        return X25519.PublicKey(unchecked: out)
    }
}
