/// A failed cryptographic operation. Messages name sizes and functions, never key material.
public enum CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A key, nonce, seed or signature of the wrong size.
    case invalidLength(what: String, expected: Int, actual: Int)
    /// An AEAD ciphertext failed authentication (wrong key, nonce, associated data, or tampered).
    case authenticationFailure
    /// X25519 produced the all-zero shared secret: the peer's public key has small order.
    case weakPublicKey
    /// 32 bytes that are not the canonical encoding of a ristretto255 element other than the identity.
    case invalidPoint
    /// A ristretto255 scalar that is zero or not reduced mod ℓ.
    case invalidScalar
    /// A libsodium call returned a failure code.
    case libsodiumFailure(function: String, code: Int32)

    public var description: String {
        switch self {
        case .invalidLength(let what, let expected, let actual):
            "\(what) must be \(expected) bytes, got \(actual)"
        case .authenticationFailure:
            "authentication failed: the ciphertext, nonce, key or associated data do not match"
        case .invalidPoint:
            "not the canonical encoding of a ristretto255 element other than the identity"
        case .invalidScalar:
            "a ristretto255 scalar must be non-zero and below the group order"
        case .weakPublicKey:
            "the peer's X25519 public key has small order (all-zero shared secret)"
        case .libsodiumFailure(let function, let code):
            "libsodium \(function) failed with code \(code)"
        }
    }
}

@inline(__always)
func checkLength(_ what: String, _ actual: Int, _ expected: Int) throws(CryptoError) {
    guard actual == expected else { throw .invalidLength(what: what, expected: expected, actual: actual) }
}
