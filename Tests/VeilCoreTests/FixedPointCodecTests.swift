import Testing
import VeilCore
import VeilTestSupport

@Suite struct FixedPointCodecTests {
    func codec(_ clip: Double, _ f: Int, _ bits: Int, _ n: Int) throws -> FixedPointCodec {
        try FixedPointCodec(clip: clip, fractionalBits: f, bitWidth: BitWidth(bits), maxAddends: n)
    }

    // (clip, f, bits, n): n · ⌈c·2^f⌉ exactly at 2^(b−1) − 1 is allowed, one more addend is not.
    @Test func theWrapBoundIsExact() throws {
        // ⌈1 · 2^8⌉ = 256; 2^15 − 1 = 32767 = 127 · 256 + 255, so 127 addends fit and 128 do not.
        #expect(try codec(1, 8, 16, 127).maxMagnitude == 256)
        #expect(throws: FixedPointError.sumCouldWrap(clip: 1, fractionalBits: 8, bits: 16, addends: 128)) {
            try codec(1, 8, 16, 128)
        }
        // b = 2: the signed range is −2…1, so one value of magnitude 1 fits, two do not.
        #expect(try codec(1, 0, 2, 1).maxMagnitude == 1)
        #expect(throws: FixedPointError.self) { try codec(1, 0, 2, 2) }
        // b = 1 can hold no non-zero signed value at all.
        #expect(throws: FixedPointError.self) { try codec(1, 0, 1, 1) }
        // 64 bits: 2^62 · 1 ≤ 2^63 − 1, but 2^62 · 2 is not.
        #expect(try codec(1, 62, 64, 1).maxMagnitude == 1 << 62)
        #expect(throws: FixedPointError.self) { try codec(1, 62, 64, 2) }
        // A non-integral c·2^f rounds up: ⌈0.3 · 2^4⌉ = ⌈4.8⌉ = 5.
        #expect(try codec(0.3, 4, 8, 25).maxMagnitude == 5)
        #expect(throws: FixedPointError.self) { try codec(0.3, 4, 8, 26) }
    }

    // The finest codec is the largest f ≤ 32 that fits: for c = 1 in Z_2^32 with 100 addends,
    // 100 · 2^f ≤ 2^31 − 1 holds up to f = 24 (100 · 2^24 ≈ 1.68e9) and fails at f = 25.
    @Test func theFinestCodecTakesTheMostFractionalBitsThatFit() throws {
        #expect(try FixedPointCodec.finest(clip: 1, bitWidth: BitWidth(32), maxAddends: 100).fractionalBits == 24)
        // In Z_2^64 the cap of 32 bits decides, not the ring.
        #expect(try FixedPointCodec.finest(clip: 1, bitWidth: BitWidth(64), maxAddends: 1000).fractionalBits == 32)
        // No addends still means room for one.
        #expect(try FixedPointCodec.finest(clip: 1, bitWidth: BitWidth(16), maxAddends: 0).maxAddends == 1)
        // Whole numbers only: ⌈100⌉ · 300 = 30000 ≤ 32767, and nothing finer fits.
        #expect(try FixedPointCodec.finest(clip: 100, bitWidth: BitWidth(16), maxAddends: 300).fractionalBits == 0)
        #expect(throws: FixedPointError.sumCouldWrap(clip: 100, fractionalBits: 0, bits: 16, addends: 400)) {
            try FixedPointCodec.finest(clip: 100, bitWidth: BitWidth(16), maxAddends: 400)
        }
    }

    @Test(arguments: [
        (0.0, 8, 16, 1, FixedPointError.invalidClip(0)),
        (-1.0, 8, 16, 1, .invalidClip(-1)),
        (Double.infinity, 8, 16, 1, .invalidClip(.infinity)),
        (1.0, -1, 16, 1, .fractionalBitsOutOfRange(-1)),
        (1.0, 63, 64, 1, .fractionalBitsOutOfRange(63)),
        (1.0, 8, 16, 0, .invalidAddendCount(0)),
    ])
    func refusesInvalidParameters(_ clip: Double, _ f: Int, _ bits: Int, _ n: Int, _ error: FixedPointError) {
        #expect(throws: error) { try codec(clip, f, bits, n) }
    }

    @Test func nanIsRefusedAndTheMessageNamesTheParameters() throws {
        #expect(throws: FixedPointError.nonFiniteValue(index: 0)) {
            var generator = SplitMix64(seed: 0)
            return try codec(1.0, 8, 16, 1).encode(Double.nan, using: &generator)
        }
        var generator = SplitMix64(seed: 1)
        #expect(throws: FixedPointError.nonFiniteValue(index: 2)) {
            try codec(1.0, 8, 16, 1).encode([0, 1, -.infinity], using: &generator)
        }
        let message = FixedPointError.sumCouldWrap(clip: 1, fractionalBits: 8, bits: 16, addends: 128).description
        #expect(message.contains("128") && message.contains("2^8") && message.contains("Z_2^16"))
    }

    @Test func clipsAndRoundsExactValuesWithoutRandomness() throws {
        let c = try codec(2, 4, 16, 10)
        var generator = SplitMix64(seed: 7)
        // Multiples of 2^−4 encode exactly whatever the draw; beyond ±2 they clip.
        let encoded = try c.encode([0, 1.5, -1.5, 2, -2, 100, -100, 0.0625], using: &generator)
        #expect(encoded.elements == [0, 24, 65512, 32, 65504, 32, 65504, 1])
        #expect(try c.decode(encoded) == [0, 1.5, -1.5, 2, -2, 2, -2, 0.0625])
    }

    @Test func roundsUpExactlyWhenTheDrawIsBelowTheFraction() throws {
        let c = try codec(1, 2, 8, 1)  // scale 4: 0.3 → 1.2, fraction 0.2
        // u = (word >> 11) · 2^−53; the draw that gives u just below 0.2 rounds up, just above does not.
        let below = UInt64((0.2 * 0x1p53).rounded(.down) - 1) << 11
        let above = UInt64((0.2 * 0x1p53).rounded(.up) + 1) << 11
        var up = ScriptedGenerator([below])
        var down = ScriptedGenerator([above])
        #expect(try c.encode(0.3, using: &up) == 2)
        #expect(try c.encode(0.3, using: &down) == 1)
        // Negative values round towards −∞ first: −0.3 · 4 = −1.2 = −2 + 0.8.
        var upNegative = ScriptedGenerator([0])
        #expect(c.bitWidth.signed(try c.encode(-0.3, using: &upNegative)) == -1)
    }

    @Test func stochasticRoundingIsUnbiased() throws {
        let c = try codec(1, 3, 32, 1 << 20)
        var generator = SplitMix64(seed: 42)
        let trials = 200_000
        let encoded = try c.encode(Array(repeating: 0.3, count: trials), using: &generator)
        let mean = encoded.elements.map { Double(c.bitWidth.signed($0)) }.reduce(0, +) / Double(trials)
        // 0.3 · 8 = 2.4: values 2 or 3 with p(3) = 0.4; the standard error is √(0.24/200000) ≈ 0.0011.
        #expect(abs(mean - 2.4) < 0.006)
        #expect(Set(encoded.elements) == [2, 3])
    }

    @Test func sumsOfMaximalEncodingsDecodeWithoutWrapping() throws {
        let c = try codec(1, 8, 16, 127)
        var generator = SplitMix64(seed: 3)
        var sum = ModularVector(zeros: 2, bitWidth: c.bitWidth)
        for _ in 0..<127 { try sum.add(c.encode([1, -1], using: &generator)) }
        #expect(try c.decode(sum) == [127, -127])
        #expect(throws: FixedPointError.bitWidthMismatch(expected: 16, actual: 17)) {
            try c.decode(ModularVector(zeros: 1, bitWidth: BitWidth(17)))
        }
    }

    @Test func sameGeneratorStateSameEncoding() throws {
        let c = try codec(1, 10, 32, 100)
        let values = (0..<100).map { Double($0) / 37 - 1.3 }
        var first = SplitMix64(seed: 99)
        var second = SplitMix64(seed: 99)
        #expect(try c.encode(values, using: &first) == c.encode(values, using: &second))
    }
}
