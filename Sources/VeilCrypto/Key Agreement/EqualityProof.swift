import CSodium

/// A Chaum–Pedersen proof that two ristretto255 elements share one discrete logarithm:
/// X = x·B and K = x·Y for the prover's secret x, the generator B and a public element Y —
/// without revealing x (`Specs/primitives.md` §12).
///
/// In SecAgg a participant that cannot open the shares a neighbour encrypted to it reveals
/// their shared element K = c_v·C_u and proves it with this, so that the server can open the
/// ciphertext itself and learn whose fault it was; nothing else that v or u holds is revealed.
///
/// The prover's nonce is derived from its secret and the statement (as EdDSA derives its
/// nonces), so proofs are deterministic: no generator is needed and vectors are exact.
public struct EqualityProof: Hashable, Sendable {
    /// The challenge c and the response s, each a 32-byte scalar below ℓ.
    public let challenge: [UInt8]
    public let response: [UInt8]

    /// c ‖ s.
    public static var byteCount: Int { 2 * Ristretto255.scalarByteCount }

    public var rawRepresentation: [UInt8] { challenge + response }

    /// Splits 64 bytes into c and s; their ranges are checked by ``verify``.
    /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)``.
    public init(rawRepresentation: [UInt8]) throws(CryptoError) {
        try checkLength("equality proof", rawRepresentation.count, Self.byteCount)
        challenge = Array(rawRepresentation[0..<Ristretto255.scalarByteCount])
        response = Array(rawRepresentation[Ristretto255.scalarByteCount...])
    }

    init(challenge: [UInt8], response: [UInt8]) {
        self.challenge = challenge
        self.response = response
    }

    static let nonceLabel = Array("veil/v1/dleq/nonce".utf8) + [0]
    static let challengeLabel = Array("veil/v1/dleq/challenge".utf8) + [0]

    /// LE_4(|context|) ‖ context.
    private static func framed(_ context: [UInt8]) -> [UInt8] {
        withUnsafeBytes(of: UInt32(context.count).littleEndian, Array.init) + context
    }

    /// c = SHA-512(challenge label ‖ X ‖ Y ‖ K ‖ A₁ ‖ A₂ ‖ LE_4(|ctx|) ‖ ctx) mod ℓ.
    private static func challenge(
        x: [UInt8], y: [UInt8], k: [UInt8], a1: [UInt8], a2: [UInt8], context: [UInt8]
    ) -> [UInt8] {
        Ristretto255.reduce(SHA512.hash(challengeLabel, x, y, k, a1, a2, framed(context)))
    }

    /// Proves log_B(X) = log_Y(K) for X = `secret`·B, returning K = `secret`·Y and the proof.
    ///
    /// r = SHA-512(nonce label ‖ x ‖ Y ‖ LE_4(|ctx|) ‖ ctx) mod ℓ; A₁ = r·B, A₂ = r·Y;
    /// c as in ``challenge``; s = r − c·x mod ℓ.
    /// - Throws: ``CryptoError/weakPublicKey`` only if r is zero (probability 2^−252).
    public static func prove(
        secret: Ristretto255.PrivateKey, base y: Ristretto255.PublicKey, context: [UInt8]
    ) throws(CryptoError) -> (shared: SecureBytes, proof: EqualityProof) {
        let shared = try secret.sharedSecret(with: y)
        let r = nonce(secret: secret, y: y, context: context)
        let a1 = try Ristretto255.multiplyBase(r)
        var a2 = [UInt8](repeating: 0, count: Ristretto255.elementByteCount)
        let code = a2.withUnsafeMutableBytes { q in Ristretto255.multiply(r, y.rawRepresentation, into: q) }
        try Sodium.check(code, "crypto_scalarmult_ristretto255", failure: .weakPublicKey)
        let c = challenge(
            x: secret.publicKey.rawRepresentation, y: y.rawRepresentation, k: shared.unsafeExposedBytes(), a1: a1,
            a2: a2, context: context)
        // s = r − c·x: computed in SecureBytes, then released — s is public, x and r are not.
        var s = SecureBytes(zeros: Ristretto255.scalarByteCount)
        var cx = SecureBytes(zeros: Ristretto255.scalarByteCount)
        cx.withUnsafeMutableBytes { out in
            secret.rawRepresentation.withUnsafeBytes { x in
                crypto_core_ristretto255_scalar_mul(
                    out.baseAddress!.assumingMemoryBound(to: UInt8.self), c,
                    x.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        s.withUnsafeMutableBytes { out in
            r.withUnsafeBytes { rr in
                cx.withUnsafeBytes { p in
                    crypto_core_ristretto255_scalar_sub(
                        out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        rr.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        p.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return (shared, EqualityProof(challenge: c, response: s.unsafeExposedBytes()))
    }

    /// r = Reduce(SHA-512(nonce label ‖ x ‖ Y ‖ frame(ctx))), hashed and reduced without a copy
    /// of x or of the digest outside ``SecureBytes``: r reveals x, given the proof.
    private static func nonce(secret: Ristretto255.PrivateKey, y: Ristretto255.PublicKey, context: [UInt8])
        -> SecureBytes
    {
        Sodium.ensureInitialized()
        var state = crypto_hash_sha512_state()
        var digest = SecureBytes(zeros: SHA512.digestByteCount)
        Sodium.checkCannotFail(crypto_hash_sha512_init(&state), "crypto_hash_sha512_init")
        let tail = y.rawRepresentation + framed(context)
        let code = secret.rawRepresentation.withUnsafeBytes { x in
            crypto_hash_sha512_update(&state, nonceLabel, UInt64(nonceLabel.count))
                | crypto_hash_sha512_update(
                    &state, x.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(x.count))
                | crypto_hash_sha512_update(&state, tail, UInt64(tail.count))
        }
        Sodium.checkCannotFail(code, "crypto_hash_sha512_update")
        digest.withUnsafeMutableBytes { out in
            Sodium.checkCannotFail(
                crypto_hash_sha512_final(&state, out.baseAddress!.assumingMemoryBound(to: UInt8.self)),
                "crypto_hash_sha512_final")
        }
        withUnsafeMutableBytes(of: &state) { sodium_memzero($0.baseAddress!, $0.count) }
        return Ristretto255.reduce(digest)
    }

    /// Whether this proves log_B(`x`) = log_`y`(`k`) under `context`: with c and s below ℓ,
    /// A₁ = s·B + c·X and A₂ = s·Y + c·K give back the challenge c.
    public func verify(
        x: Ristretto255.PublicKey, base y: Ristretto255.PublicKey, shared k: [UInt8], context: [UInt8]
    ) -> Bool {
        guard k.count == Ristretto255.elementByteCount, (try? Ristretto255.PublicKey(rawRepresentation: k)) != nil,
            Ristretto255.isCanonical(SecureBytes(copying: challenge)),
            Ristretto255.isCanonical(SecureBytes(copying: response))
        else { return false }
        // Any scalar multiple that is the identity (s or c zero) is refused: an honest proof
        // has neither but with probability 2^−252.
        guard let sB = try? Ristretto255.multiplyBase(SecureBytes(copying: response)),
            let cX = try? Ristretto255.multiply(challenge, x.rawRepresentation),
            let a1 = try? Ristretto255.add(sB, cX),
            let sY = try? Ristretto255.multiply(response, y.rawRepresentation),
            let cK = try? Ristretto255.multiply(challenge, k),
            let a2 = try? Ristretto255.add(sY, cK)
        else { return false }
        let expected = Self.challenge(
            x: x.rawRepresentation, y: y.rawRepresentation, k: k, a1: a1, a2: a2, context: context)
        return SecureBytes(copying: expected) == SecureBytes(copying: challenge)
    }
}
