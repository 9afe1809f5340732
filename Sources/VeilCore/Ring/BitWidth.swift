/// The bit width `b` of the ring Z_(2^b) in which Veil adds vectors, 1 ≤ b ≤ 64.
///
/// Elements are handled as `UInt64` with the bits above `b` always zero, so addition in the
/// ring is a wrapping addition followed by `& mask`; a ``ModularVector`` stores each in a lane
/// of ``laneByteCount`` bytes.
public struct BitWidth: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The number of bits, 1...64.
    public let bits: Int

    /// The valid range of `bits`.
    public static let range: ClosedRange<Int> = 1...64

    /// Creates a bit width.
    /// - Throws: ``RingError/bitWidthOutOfRange(_:)`` unless `1 ≤ bits ≤ 64`.
    public init(_ bits: Int) throws(RingError) {
        guard Self.range.contains(bits) else { throw .bitWidthOutOfRange(bits) }
        self.bits = bits
    }

    /// `2^b − 1`: the largest element, and the mask that reduces a `UInt64` modulo 2^b.
    @inlinable public var mask: UInt64 { bits == 64 ? .max : (1 << UInt64(bits)) &- 1 }

    /// The number of whole bytes that hold one element: ⌈b / 8⌉.
    @inlinable public var byteCount: Int { (bits + 7) / 8 }

    /// The bytes of the lane a ``ModularVector`` keeps an element in: the smallest power of
    /// two that holds ⌈b / 8⌉ bytes (1, 2, 4 or 8).
    @inlinable public var laneByteCount: Int {
        switch byteCount {
        case 1: 1
        case 2: 2
        case 3, 4: 4
        default: 8
        }
    }

    /// The largest value of the signed (two's complement) reading of the ring: 2^(b−1) − 1.
    @inlinable public var maxSigned: UInt64 { mask >> 1 }

    /// Reads an element as a two's complement signed integer in [−2^(b−1), 2^(b−1) − 1].
    @inlinable public func signed(_ element: UInt64) -> Int64 {
        let shift = UInt64(64 - bits)
        return Int64(bitPattern: element << shift) >> Int64(shift)
    }

    /// The element of Z_(2^b) congruent to a signed integer.
    @inlinable public func element(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: value) & mask
    }

    public static func < (lhs: BitWidth, rhs: BitWidth) -> Bool { lhs.bits < rhs.bits }

    public var description: String { "\(bits) bits" }
}

/// Errors in the arithmetic of Z_(2^b).
public enum RingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A bit width outside 1...64.
    case bitWidthOutOfRange(Int)
    /// Two vectors of different lengths were combined.
    case lengthMismatch(expected: Int, actual: Int)
    /// Two vectors over different rings were combined.
    case bitWidthMismatch(expected: Int, actual: Int)
    /// An element has bits set above the bit width.
    case elementOutOfRange(index: Int)

    public var description: String {
        switch self {
        case .bitWidthOutOfRange(let bits):
            "bit width \(bits) is outside 1...64"
        case .lengthMismatch(let expected, let actual):
            "vector length \(actual) does not match \(expected)"
        case .bitWidthMismatch(let expected, let actual):
            "vector over Z_2^\(actual) cannot be combined with one over Z_2^\(expected)"
        case .elementOutOfRange(let index):
            "element \(index) has bits set above the bit width"
        }
    }
}
