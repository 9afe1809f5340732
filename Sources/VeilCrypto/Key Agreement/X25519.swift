import CSodium

/// X25519 key agreement (RFC 7748), on libsodium's `crypto_scalarmult`.
public enum X25519 {
    /// The size of keys and shared secrets, from libsodium.
    public static var keyByteCount: Int { Int(crypto_scalarmult_bytes()) }

    /// A private scalar, held in ``SecureBytes``.
    public struct PrivateKey: Sendable {
        /// The 32-byte scalar (clamped by X25519 itself when used).
        public let rawRepresentation: SecureBytes

        /// A fresh key from the system generator.
        public init() {
            rawRepresentation = SecureBytes.random(count: X25519.keyByteCount)
        }

        /// A key drawn from an injected generator (deterministic protocol runs).
        public init(using generator: inout some RandomNumberGenerator) {
            rawRepresentation = SecureBytes.random(count: X25519.keyByteCount, using: &generator)
        }

        /// Wraps an existing 32-byte scalar.
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``.
        public init(rawRepresentation: SecureBytes) throws(CryptoError) {
            try checkLength("X25519 private key", rawRepresentation.count, X25519.keyByteCount)
            self.rawRepresentation = rawRepresentation
        }

        /// X25519(k, 9).
        public var publicKey: PublicKey {
            Sodium.ensureInitialized()
            var out = [UInt8](repeating: 0, count: X25519.keyByteCount)
            // Fails only on an all-zero result, impossible for the base point and a clamped scalar.
            let code = rawRepresentation.withUnsafeBytes { k in
                crypto_scalarmult_base(&out, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            Sodium.checkCannotFail(code, "crypto_scalarmult_base")
            return PublicKey(unchecked: out)
        }

        /// X25519(k, u): the raw shared secret. Hash it (``VeilKDF``) before use as a key.
        /// - Throws: ``CryptoError/weakPublicKey`` when the result is all zero (RFC 7748
        ///   section 6.1: the peer sent a point of small order).
        public func sharedSecret(with peer: PublicKey) throws(CryptoError) -> SecureBytes {
            Sodium.ensureInitialized()
            var out = SecureBytes(zeros: X25519.keyByteCount)
            let code = rawRepresentation.withUnsafeBytes { k in
                out.withUnsafeMutableBytes { q in
                    crypto_scalarmult(
                        q.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        k.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        peer.rawRepresentation)
                }
            }
            try Sodium.check(code, "crypto_scalarmult", failure: .weakPublicKey)
            return out
        }
    }

    /// A public u-coordinate (32 bytes, little-endian; the top bit is ignored, RFC 7748 §5).
    public struct PublicKey: Hashable, Sendable {
        /// The 32 bytes as sent on the wire.
        public let rawRepresentation: [UInt8]

        /// Wraps 32 bytes received from a peer.
        /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``.
        public init(rawRepresentation: [UInt8]) throws(CryptoError) {
            try checkLength("X25519 public key", rawRepresentation.count, X25519.keyByteCount)
            self.rawRepresentation = rawRepresentation
        }

        init(unchecked bytes: [UInt8]) { rawRepresentation = bytes }

        /// Whether the point has small order, so that every shared secret with it is all zero
        /// (or refused by libsodium). A server checks advertised keys with this so that one
        /// participant cannot make its neighbours abort.
        public var hasSmallOrder: Bool {
            Sodium.ensureInitialized()
            // Any clamped scalar annihilates a point of order dividing 8; the scalar is public.
            var scalar = [UInt8](repeating: 0x5a, count: X25519.keyByteCount)
            var out = [UInt8](repeating: 0, count: X25519.keyByteCount)
            scalar[0] &= 248
            return crypto_scalarmult(&out, scalar, rawRepresentation) != 0
        }
    }
}
