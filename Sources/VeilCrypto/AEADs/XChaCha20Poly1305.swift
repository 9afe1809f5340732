import CSodium

/// XChaCha20-Poly1305 authenticated encryption with associated data
/// (draft-irtf-cfrg-xchacha), on libsodium's `crypto_aead_xchacha20poly1305_ietf`.
///
/// The 192-bit nonce can be drawn at random for every message without a practical risk of
/// reuse, which is why Veil uses this AEAD for the Shamir shares that travel between
/// participants through the server.
public enum XChaCha20Poly1305 {
    /// The key size.
    public static var keyByteCount: Int { Int(crypto_aead_xchacha20poly1305_ietf_keybytes()) }
    /// The nonce size.
    public static var nonceByteCount: Int { Int(crypto_aead_xchacha20poly1305_ietf_npubbytes()) }
    /// The tag size.
    public static var tagByteCount: Int { Int(crypto_aead_xchacha20poly1305_ietf_abytes()) }

    /// A 256-bit key.
    public struct Key: Sendable {
        /// The key bytes.
        public let rawRepresentation: SecureBytes

        /// A fresh key from the system generator.
        public init() { rawRepresentation = SecureBytes.random(count: XChaCha20Poly1305.keyByteCount) }

        /// Wraps 32 key bytes.
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``.
        public init(rawRepresentation: SecureBytes) throws(CryptoError) {
            try checkLength("XChaCha20-Poly1305 key", rawRepresentation.count, XChaCha20Poly1305.keyByteCount)
            self.rawRepresentation = rawRepresentation
        }
    }

    /// A 192-bit nonce.
    public struct Nonce: Hashable, Sendable {
        /// The nonce bytes.
        public let rawRepresentation: [UInt8]

        /// A fresh nonce from the system generator.
        public init() {
            Sodium.ensureInitialized()
            var bytes = [UInt8](repeating: 0, count: XChaCha20Poly1305.nonceByteCount)
            randombytes_buf(&bytes, bytes.count)
            rawRepresentation = bytes
        }

        /// A nonce drawn from an injected generator.
        public init(using generator: inout some RandomNumberGenerator) {
            rawRepresentation = SecureBytes.random(count: XChaCha20Poly1305.nonceByteCount, using: &generator)
                .unsafeExposedBytes()  // a nonce is public
        }

        /// Wraps 24 nonce bytes.
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``.
        public init(rawRepresentation: [UInt8]) throws(CryptoError) {
            try checkLength("XChaCha20-Poly1305 nonce", rawRepresentation.count, XChaCha20Poly1305.nonceByteCount)
            self.rawRepresentation = rawRepresentation
        }
    }

    /// Encrypts and authenticates.
    /// - Returns: ciphertext ‖ tag (plaintext length + 16 bytes).
    public static func seal(
        _ plaintext: SecureBytes, using key: Key, nonce: Nonce, authenticating associatedData: [UInt8] = []
    ) -> [UInt8] {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: plaintext.count + tagByteCount)
        var outLength: UInt64 = 0
        let code = key.rawRepresentation.withUnsafeBytes { k in
            plaintext.withUnsafeBytes { m in
                // Encryption cannot fail for valid sizes, which the types guarantee.
                crypto_aead_xchacha20poly1305_ietf_encrypt(
                    &out, &outLength, m.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(m.count),
                    associatedData, UInt64(associatedData.count), nil, nonce.rawRepresentation,
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        Sodium.checkCannotFail(code, "crypto_aead_xchacha20poly1305_ietf_encrypt")
        return out
    }

    /// Verifies and decrypts.
    /// - Parameter ciphertextAndTag: the output of ``seal(_:using:nonce:authenticating:)``.
    /// - Returns: the plaintext, as a secret.
    /// - Throws: ``CryptoError/authenticationFailure`` when anything was altered or the key,
    ///   nonce or associated data differ; nothing is returned then.
    public static func open(
        _ ciphertextAndTag: [UInt8], using key: Key, nonce: Nonce, authenticating associatedData: [UInt8] = []
    ) throws(CryptoError) -> SecureBytes {
        guard ciphertextAndTag.count >= tagByteCount else { throw .authenticationFailure }
        Sodium.ensureInitialized()
        var plaintext = SecureBytes(zeros: ciphertextAndTag.count - tagByteCount)
        var plaintextLength: UInt64 = 0
        let code = key.rawRepresentation.withUnsafeBytes { k in
            plaintext.withUnsafeMutableBytes { m in
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    m.baseAddress!.assumingMemoryBound(to: UInt8.self), &plaintextLength, nil, ciphertextAndTag,
                    UInt64(ciphertextAndTag.count), associatedData, UInt64(associatedData.count),
                    nonce.rawRepresentation,
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        try Sodium.check(code, "crypto_aead_xchacha20poly1305_ietf_decrypt", failure: .authenticationFailure)
        return plaintext
    }
}
