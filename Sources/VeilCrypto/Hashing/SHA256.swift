import CSodium

/// SHA-256 (FIPS 180-4), on libsodium's `crypto_hash_sha256`: session identifiers and the
/// digests of survivor lists that participants sign.
public enum SHA256 {
    /// The digest size.
    public static var digestByteCount: Int { Int(crypto_hash_sha256_bytes()) }

    /// The digest of the concatenation of `parts` (no separators: callers length-prefix
    /// whatever is variable).
    public static func hash(_ parts: [UInt8]...) -> [UInt8] {
        Sodium.ensureInitialized()
        var state = crypto_hash_sha256_state()
        Sodium.checkCannotFail(crypto_hash_sha256_init(&state), "crypto_hash_sha256_init")
        for part in parts where !part.isEmpty {
            Sodium.checkCannotFail(
                crypto_hash_sha256_update(&state, part, UInt64(part.count)), "crypto_hash_sha256_update")
        }
        var digest = [UInt8](repeating: 0, count: digestByteCount)
        Sodium.checkCannotFail(crypto_hash_sha256_final(&state, &digest), "crypto_hash_sha256_final")
        return digest
    }
}

/// SHA-512 (FIPS 180-4), on libsodium's `crypto_hash_sha512`: the 64-byte strings that
/// ristretto255 reduces to uniform scalars (RFC 9496 §4.4 draws scalars the same way).
public enum SHA512 {
    /// The digest size.
    public static var digestByteCount: Int { Int(crypto_hash_sha512_bytes()) }

    /// The digest of the concatenation of `parts` (callers length-prefix what is variable).
    public static func hash(_ parts: [UInt8]...) -> [UInt8] {
        Sodium.ensureInitialized()
        var state = crypto_hash_sha512_state()
        Sodium.checkCannotFail(crypto_hash_sha512_init(&state), "crypto_hash_sha512_init")
        for part in parts where !part.isEmpty {
            Sodium.checkCannotFail(
                crypto_hash_sha512_update(&state, part, UInt64(part.count)), "crypto_hash_sha512_update")
        }
        var digest = [UInt8](repeating: 0, count: digestByteCount)
        Sodium.checkCannotFail(crypto_hash_sha512_final(&state, &digest), "crypto_hash_sha512_final")
        return digest
    }
}
