import VeilCrypto

extension ChaCha20Generator {
    /// The deterministic generator whose public seed is `label`'s bytes, zero-padded to 32:
    /// a named, reproducible stream for statistical tests.
    public init(label: String) {
        var seed = [UInt8](repeating: 0, count: 32)
        for (i, byte) in label.utf8.prefix(32).enumerated() { seed[i] = byte }
        try! self.init(publicSeed: seed)  // 32 bytes by construction
    }
}
