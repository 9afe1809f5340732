import CSodium

/// The operating system's cryptographic generator, through libsodium's `randombytes_buf`.
///
/// Production code draws fresh keys, nonces and rounding decisions from this; tests and
/// known-answer vectors inject a ``ChaCha20Generator`` instead.
public struct SystemRandom: RandomNumberGenerator, Sendable {
    public init() { Sodium.ensureInitialized() }

    public mutating func next() -> UInt64 {
        var word: UInt64 = 0
        randombytes_buf(&word, MemoryLayout<UInt64>.size)
        return word
    }
}
