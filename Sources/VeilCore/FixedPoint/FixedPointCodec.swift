/// The fixed-point codec: real values in and out of Z_(2^b).
///
/// Encoding clips a value to [−c, c], scales it by 2^f, rounds it stochastically (up with
/// probability equal to the fractional part, so the encoding is unbiased), and writes the
/// integer in two's complement modulo 2^b. A sum of at most `maxAddends` encodings decodes
/// exactly: construction refuses parameters for which `n · ⌈c · 2^f⌉` exceeds 2^(b−1) − 1,
/// the largest magnitude the signed reading of Z_(2^b) can hold.
///
/// `Specs/primitives.md` ("Fixed-point codec") is normative for every step.
public struct FixedPointCodec: Hashable, Sendable {
    /// The clipping bound c > 0.
    public let clip: Double
    /// The number of fractional bits f.
    public let fractionalBits: Int
    /// The ring the encodings live in.
    public let bitWidth: BitWidth
    /// The largest number n of encodings whose sum decodes exactly.
    public let maxAddends: Int
    /// ⌈c · 2^f⌉: the largest magnitude of one encoded value.
    public let maxMagnitude: UInt64

    /// The valid range of `fractionalBits`.
    public static let fractionalBitsRange: ClosedRange<Int> = 0...62

    /// Creates a codec, refusing parameters under which a sum could wrap.
    /// - Parameters:
    ///   - clip: the clipping bound c; finite and positive.
    ///   - fractionalBits: f, the scale is 2^f; 0...62.
    ///   - bitWidth: the ring Z_(2^b).
    ///   - maxAddends: n ≥ 1, how many encodings may be summed.
    /// - Throws: ``FixedPointError`` naming the parameter at fault.
    public init(clip: Double, fractionalBits: Int, bitWidth: BitWidth, maxAddends: Int) throws(FixedPointError) {
        guard clip.isFinite, clip > 0 else { throw .invalidClip(clip) }
        guard Self.fractionalBitsRange.contains(fractionalBits) else {
            throw .fractionalBitsOutOfRange(fractionalBits)
        }
        guard maxAddends >= 1 else { throw .invalidAddendCount(maxAddends) }
        let scaled = (clip * Double(sign: .plus, exponent: fractionalBits, significand: 1)).rounded(.up)
        // 2^63 is the first Double that does not fit an Int64; anything that large wraps anyway.
        guard scaled < 0x1p63 else {
            throw .sumCouldWrap(clip: clip, fractionalBits: fractionalBits, bits: bitWidth.bits, addends: maxAddends)
        }
        let magnitude = UInt64(scaled)
        let (worstSum, overflow) = magnitude.multipliedReportingOverflow(by: UInt64(maxAddends))
        guard !overflow, worstSum <= bitWidth.maxSigned else {
            throw .sumCouldWrap(clip: clip, fractionalBits: fractionalBits, bits: bitWidth.bits, addends: maxAddends)
        }
        self.clip = clip
        self.fractionalBits = fractionalBits
        self.bitWidth = bitWidth
        self.maxAddends = maxAddends
        self.maxMagnitude = magnitude
    }

    /// The most precise codec for a ring, a clip and a number of addends: the most fractional
    /// bits, at most 32, under which `maxAddends` clipped encodings cannot wrap. The simulation
    /// engine and the coordinator both choose their payload codec here, so a federation decodes
    /// the same sum whichever of them runs it.
    /// - Throws: ``FixedPointError/sumCouldWrap(clip:fractionalBits:bits:addends:)`` with f = 0
    ///   when not even whole numbers fit, or the construction error for an invalid clip.
    public static func finest(clip: Double, bitWidth: BitWidth, maxAddends: Int) throws(FixedPointError) -> Self {
        let addends = max(maxAddends, 1)
        // 32 bits of fraction are already far below any update's noise; more only shrinks the
        // room for addends.
        for bits in stride(from: 32, to: 0, by: -1) {
            if let codec = try? Self(clip: clip, fractionalBits: bits, bitWidth: bitWidth, maxAddends: addends) {
                return codec
            }
        }
        return try Self(clip: clip, fractionalBits: 0, bitWidth: bitWidth, maxAddends: addends)
    }

    /// Encodes one value.
    /// - Parameters:
    ///   - value: a finite real.
    ///   - generator: the source of the rounding decision; one `next()` per value.
    /// - Throws: ``FixedPointError/nonFiniteValue(index:)`` for NaN or ±∞.
    public func encode(_ value: Double, using generator: inout some RandomNumberGenerator) throws(FixedPointError)
        -> UInt64
    {
        guard value.isFinite else { throw .nonFiniteValue(index: 0) }
        return encodeFinite(value, using: &generator)
    }

    /// Encodes a vector, one generator draw per element, in order.
    /// - Throws: ``FixedPointError/nonFiniteValue(index:)`` naming the first NaN or ±∞.
    public func encode(_ values: [Double], using generator: inout some RandomNumberGenerator) throws(FixedPointError)
        -> ModularVector
    {
        if let index = values.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteValue(index: index) }
        let elements = values.map { encodeFinite($0, using: &generator) }  // each already reduced
        return ModularVector(reducing: elements, bitWidth: bitWidth)
    }

    /// Decodes a sum of at most `maxAddends` encodings (one encoding is a sum of one).
    public func decode(_ element: UInt64) -> Double {
        Double(bitWidth.signed(element & bitWidth.mask))
            * Double(sign: .plus, exponent: -fractionalBits, significand: 1)
    }

    /// Decodes a vector of sums element-wise.
    /// - Throws: ``FixedPointError/bitWidthMismatch(expected:actual:)`` when the vector is over another ring.
    public func decode(_ sum: ModularVector) throws(FixedPointError) -> [Double] {
        guard sum.bitWidth == bitWidth else {
            throw .bitWidthMismatch(expected: bitWidth.bits, actual: sum.bitWidth.bits)
        }
        return sum.elements.map(decode)
    }

    @inline(__always)
    private func encodeFinite(_ value: Double, using generator: inout some RandomNumberGenerator) -> UInt64 {
        let clipped = min(max(value, -clip), clip)
        let scaled = clipped * Double(sign: .plus, exponent: fractionalBits, significand: 1)
        let floor = scaled.rounded(.down)
        let fraction = scaled - floor
        // A uniform draw from the 2^53 multiples of 2^−53 in [0, 1); exact in binary64.
        let uniform = Double(generator.next() >> 11) * 0x1p-53
        let rounded = Int64(floor) + (uniform < fraction ? 1 : 0)
        return bitWidth.element(rounded)
    }
}

/// Why a fixed-point codec or encoding was refused.
public enum FixedPointError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The clipping bound is not a finite positive number.
    case invalidClip(Double)
    /// The fractional bits are outside 0...62.
    case fractionalBitsOutOfRange(Int)
    /// The number of addends is below 1.
    case invalidAddendCount(Int)
    /// n worst-case encodings could sum past 2^(b−1) − 1 and wrap.
    case sumCouldWrap(clip: Double, fractionalBits: Int, bits: Int, addends: Int)
    /// A value to encode is NaN or infinite.
    case nonFiniteValue(index: Int)
    /// A sum over another ring was handed to this codec.
    case bitWidthMismatch(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .invalidClip(let c):
            return "clipping bound \(c) must be finite and positive"
        case .fractionalBitsOutOfRange(let f):
            return "fractional bits \(f) are outside \(FixedPointCodec.fractionalBitsRange)"
        case .invalidAddendCount(let n):
            return "number of addends \(n) must be at least 1"
        case .sumCouldWrap(let c, let f, let b, let n):
            return "the sum of \(n) values clipped to ±\(c) and scaled by 2^\(f) could reach "
                + "\(n) · ⌈\(c) · 2^\(f)⌉, beyond 2^\(b - 1) − 1, and wrap in Z_2^\(b): "
                + "lower the clip or the fractional bits, raise the bit width, or sum fewer values"
        case .nonFiniteValue(let index):
            return "value \(index) is not finite"
        case .bitWidthMismatch(let expected, let actual):
            return "sum over Z_2^\(actual) handed to a codec over Z_2^\(expected)"
        }
    }
}
