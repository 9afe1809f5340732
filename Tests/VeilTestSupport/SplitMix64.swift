/// A tiny seeded generator for tests that need reproducible, non-cryptographic randomness
/// (swift-argument-parser's `Examples/roll/SplitMix64.swift`). Cryptographic determinism
/// uses `ChaCha20Generator` instead.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// A generator that replays fixed words, for tests that steer a rounding decision or a
/// rejection loop.
public struct ScriptedGenerator: RandomNumberGenerator, Sendable {
    private var words: [UInt64]
    private var position = 0

    public init(_ words: [UInt64]) { self.words = words }

    /// Returns the scripted words in order, then repeats the last one.
    public mutating func next() -> UInt64 {
        defer { position = min(position + 1, words.count - 1) }
        return words[position]
    }
}
