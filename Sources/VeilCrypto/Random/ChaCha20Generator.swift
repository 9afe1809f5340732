import CSodium

/// A deterministic cryptographic generator: the ChaCha20 keystream under a key derived from
/// a 32-byte seed, read as little-endian 64-bit words.
///
/// Protocol state machines draw all their randomness from an injected generator; with this
/// one and a fixed seed a whole run is reproducible, which is how `Vectors/` can hold
/// transcripts. `Specs/primitives.md` ("Deterministic generator") is normative:
/// key = VeilKDF(seed, label "drbg", salt empty, context empty, 32 bytes); the keystream is
/// IETF ChaCha20 (RFC 8439) with an all-zero 96-bit nonce and block counter starting at 0;
/// `next()` returns the next 8 keystream bytes as a little-endian `UInt64`.
public struct ChaCha20Generator: RandomNumberGenerator, Sendable {
    /// The size of a seed.
    public static let seedByteCount = 32

    private static let blocksPerRefill = 16
    private static let blockBytes = 64

    private let key: SecureBytes
    private var buffer: SecureBytes
    private var offset: Int
    private var nextBlock: UInt32

    /// Creates a generator from a 32-byte seed.
    /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)`` unless the seed is 32 bytes.
    public init(seed: SecureBytes) throws(CryptoError) {
        try checkLength("generator seed", seed.count, Self.seedByteCount)
        key = VeilKDF.derive32(.deterministicGenerator, from: seed)
        buffer = SecureBytes(zeros: Self.blocksPerRefill * Self.blockBytes)
        offset = buffer.count
        nextBlock = 0
    }

    /// A generator for tests and vectors whose seed is a public constant.
    public init(publicSeed: [UInt8]) throws(CryptoError) {
        try self.init(seed: SecureBytes(copying: publicSeed))
    }

    public mutating func next() -> UInt64 {
        if offset == buffer.count { refill() }
        let word = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
        offset += 8
        return UInt64(littleEndian: word)
    }

    /// Fills `count` bytes of the keystream (in order, continuing where `next()` left off)
    /// into a new secret: keys and nonces drawn for a protocol run.
    public mutating func bytes(count: Int) -> SecureBytes {
        SecureBytes.random(count: count, using: &self)
    }

    private mutating func refill() {
        let counter = nextBlock
        // 2^32 blocks (256 GiB) exhaust the IETF counter; reusing the keystream would repeat output.
        precondition(counter <= UInt32.max - UInt32(Self.blocksPerRefill) + 1, "ChaCha20Generator exhausted")
        key.withUnsafeBytes { keyBytes in
            buffer.withUnsafeMutableBytes { out in
                out.initializeMemory(as: UInt8.self, repeating: 0)
                let nonce = [UInt8](repeating: 0, count: Int(crypto_stream_chacha20_ietf_noncebytes()))
                // In-place XOR over zeros is the keystream itself; the output buffer may alias the input.
                let base = out.baseAddress!.assumingMemoryBound(to: UInt8.self)
                Sodium.checkCannotFail(
                    crypto_stream_chacha20_ietf_xor_ic(
                        base, base, UInt64(out.count), nonce, counter,
                        keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)),
                    "crypto_stream_chacha20_ietf_xor_ic")
            }
        }
        nextBlock = counter &+ UInt32(Self.blocksPerRefill)
        offset = 0
    }
}
