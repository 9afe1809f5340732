import CSodium

/// HKDF with HMAC-SHA-256 (RFC 5869), on libsodium's `crypto_auth_hmacsha256`.
///
/// Debian 12's libsodium 1.0.18 predates `crypto_kdf_hkdf_sha256_*`; HKDF is built here from
/// its streaming HMAC, and checked against the RFC's own test cases in `Vectors/kdf/`.
public enum HKDFSHA256 {
    /// The hash output size, 32 bytes.
    public static var hashByteCount: Int { Int(crypto_auth_hmacsha256_bytes()) }
    /// The largest output HKDF can produce: 255 blocks.
    public static var maxOutputByteCount: Int { 255 * hashByteCount }

    /// HKDF-Extract then HKDF-Expand.
    /// - Parameters:
    ///   - ikm: the input keying material.
    ///   - salt: the salt; empty means HashLen zero bytes, which HMAC treats identically.
    ///   - info: the context and application specific information.
    ///   - outputByteCount: L, 1...8160.
    /// - Throws: ``KDFError/outputLengthOutOfRange(_:)``.
    public static func deriveKey(
        ikm: SecureBytes, salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws(KDFError) -> SecureBytes {
        guard (1...maxOutputByteCount).contains(outputByteCount) else {
            throw .outputLengthOutOfRange(outputByteCount)
        }
        Sodium.ensureInitialized()
        return expand(prk: extract(salt: salt, ikm: ikm), info: info, outputByteCount: outputByteCount)
    }

    /// HKDF-Extract: PRK = HMAC-SHA-256(salt, IKM).
    static func extract(salt: [UInt8], ikm: SecureBytes) -> SecureBytes {
        salt.withUnsafeBytes { saltBytes in
            hmac(key: saltBytes) { state in
                ikm.withUnsafeBytes { update(&state, $0) }
            }
        }
    }

    /// HKDF-Expand: T(i) = HMAC-SHA-256(PRK, T(i−1) ‖ info ‖ i), output the first L bytes.
    static func expand(prk: SecureBytes, info: [UInt8], outputByteCount: Int) -> SecureBytes {
        var okm = SecureBytes(zeros: outputByteCount)
        var previous = SecureBytes(zeros: 0)
        var written = 0
        var counter: UInt8 = 1
        while written < outputByteCount {
            let block = prk.withUnsafeBytes { prkBytes in
                hmac(key: prkBytes) { state in
                    previous.withUnsafeBytes { update(&state, $0) }
                    info.withUnsafeBytes { update(&state, $0) }
                    withUnsafeBytes(of: counter) { update(&state, $0) }
                }
            }
            let n = min(block.count, outputByteCount - written)
            okm.withUnsafeMutableBytes { out in
                block.withUnsafeBytes { (out.baseAddress! + written).copyMemory(from: $0.baseAddress!, byteCount: n) }
            }
            written += n
            previous = block
            counter &+= 1
        }
        return okm
    }

    private static func hmac(
        key: UnsafeRawBufferPointer, _ feed: (inout crypto_auth_hmacsha256_state) -> Void
    ) -> SecureBytes {
        var state = crypto_auth_hmacsha256_state()
        defer { sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size) }
        // init/update/final always return 0 in libsodium; the HMAC key may have any length.
        var empty: UInt8 = 0  // libsodium wants a valid pointer even for an empty key
        if let base = key.baseAddress, key.count > 0 {
            Sodium.checkCannotFail(
                crypto_auth_hmacsha256_init(&state, base.assumingMemoryBound(to: UInt8.self), key.count),
                "crypto_auth_hmacsha256_init")
        } else {
            Sodium.checkCannotFail(crypto_auth_hmacsha256_init(&state, &empty, 0), "crypto_auth_hmacsha256_init")
        }
        feed(&state)
        var out = SecureBytes(zeros: hashByteCount)
        out.withUnsafeMutableBytes {
            Sodium.checkCannotFail(
                crypto_auth_hmacsha256_final(&state, $0.baseAddress!.assumingMemoryBound(to: UInt8.self)),
                "crypto_auth_hmacsha256_final")
        }
        return out
    }

    private static func update(_ state: inout crypto_auth_hmacsha256_state, _ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        Sodium.checkCannotFail(
            crypto_auth_hmacsha256_update(&state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count)),
            "crypto_auth_hmacsha256_update")
    }
}
