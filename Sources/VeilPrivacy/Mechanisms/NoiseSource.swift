import VeilCrypto

/// Where privacy noise comes from: a secret root from which each party's generator for each
/// round is derived, `VeilKDF(root, "privacy/noise", context = party ‖ 0x00 ‖ LE_8(round))`,
/// keying the ChaCha20 generator of `Specs/primitives.md` §3.3. A deployment draws the root
/// from the operating system and each participant keeps its own; a simulation derives it from
/// its seed so that runs repeat.
public struct NoiseSource: Sendable {
    /// The size of a root: a key-derivation input as strong as the keys derived from it.
    public static var rootByteCount: Int { VeilKDF.keyByteCount }

    private let root: SecureBytes

    /// A root from the operating system's generator.
    public static func system() -> NoiseSource { NoiseSource(root: SecureBytes.random(count: rootByteCount)) }

    /// A reproducible root for simulations: public, so the noise protects nothing outside them.
    public static func simulation(seed: UInt64) -> NoiseSource {
        var bytes = Array("veil simulation noise".utf8)
        withUnsafeBytes(of: seed.littleEndian) { bytes += $0 }
        return NoiseSource(root: SecureBytes(copying: SHA256.hash(bytes)))
    }

    private init(root: SecureBytes) { self.root = root }

    /// The generator of `party` (a participant's name, or "server") for `round`.
    public func generator(party: String, round: Int) -> NoiseGenerator {
        var context = Array(party.utf8) + [0]
        withUnsafeBytes(of: UInt64(truncatingIfNeeded: round).littleEndian) { context += $0 }
        let key = VeilKDF.derive32(.privacyNoise, from: root, context: context)
        // A 32-byte key cannot be refused.
        return NoiseGenerator(inner: try! ChaCha20Generator(seed: key))
    }
}

/// A cryptographic generator for noise (ChaCha20 under a derived key).
public struct NoiseGenerator: RandomNumberGenerator, Sendable {
    var inner: ChaCha20Generator

    public mutating func next() -> UInt64 { inner.next() }
}
