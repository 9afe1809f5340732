#if _endian(big)
    // The lanes are kept in host byte order and read as little-endian keystream and wire bytes.
    #error("ModularVector's lanes assume a little-endian host")
#endif

/// A vector over Z_(2^b): the payload every secure-sum backend adds.
///
/// The elements are kept reduced (no bit above `b` set); every initializer checks that, and
/// every operation preserves it. Each element is stored in a lane of its own width
/// (``BitWidth/laneByteCount``: 1, 2, 4 or 8 bytes), so that at b = 8 a vector of a million
/// elements is 1 MB, not 8, and adding a mask moves as many bytes as the mask's keystream (at 8
/// bytes per element, b = 8 ran at half the keystream's speed).
public struct ModularVector: Hashable, Sendable {
    /// The ring the elements live in.
    public let bitWidth: BitWidth
    /// The number of elements.
    public let count: Int
    /// The lanes side by side in host byte order from the first byte; every byte past the last
    /// lane is zero (so equal vectors have equal words).
    private var words: [UInt64]

    /// A vector of `count` zeros.
    public init(zeros count: Int, bitWidth: BitWidth) {
        precondition(count >= 0, "a vector has a non-negative count")
        self.bitWidth = bitWidth
        self.count = count
        self.words = Array(repeating: 0, count: (count * bitWidth.laneByteCount + 7) / 8)
    }

    /// Wraps reduced elements.
    /// - Throws: ``RingError/elementOutOfRange(index:)`` when an element has bits above `b`.
    public init(elements: [UInt64], bitWidth: BitWidth) throws(RingError) {
        if let index = elements.firstIndex(where: { $0 & ~bitWidth.mask != 0 }) {
            throw .elementOutOfRange(index: index)
        }
        self.init(reducing: elements, bitWidth: bitWidth)
    }

    /// Reduces arbitrary `UInt64` values modulo 2^b.
    public init(reducing values: [UInt64], bitWidth: BitWidth) {
        self.init(zeros: values.count, bitWidth: bitWidth)
        let mask = bitWidth.mask
        values.withUnsafeBufferPointer { source in
            withUnsafeMutableLaneBytes { bytes in
                switch bitWidth.laneByteCount {
                case 1: Self.fill(bytes, UInt8.self, from: source, mask: mask)
                case 2: Self.fill(bytes, UInt16.self, from: source, mask: mask)
                case 4: Self.fill(bytes, UInt32.self, from: source, mask: mask)
                default: Self.fill(bytes, UInt64.self, from: source, mask: mask)
                }
            }
        }
    }

    /// The elements, each widened to a `UInt64` (a copy: kernels use
    /// ``withUnsafeMutableLaneBytes(_:)``).
    public var elements: [UInt64] {
        [UInt64](unsafeUninitializedCapacity: count) { out, initialized in
            withUnsafeLaneBytes { bytes in
                switch bitWidth.laneByteCount {
                case 1: Self.widen(bytes, UInt8.self, into: out)
                case 2: Self.widen(bytes, UInt16.self, into: out)
                case 4: Self.widen(bytes, UInt32.self, into: out)
                default: Self.widen(bytes, UInt64.self, into: out)
                }
            }
            initialized = count
        }
    }

    /// Element `index`.
    public subscript(index: Int) -> UInt64 {
        precondition(index >= 0 && index < count, "index out of range")
        let width = bitWidth.laneByteCount
        return withUnsafeLaneBytes { bytes in
            switch width {
            case 1: UInt64(bytes.load(fromByteOffset: index, as: UInt8.self))
            case 2: UInt64(bytes.load(fromByteOffset: 2 * index, as: UInt16.self))
            case 4: UInt64(bytes.load(fromByteOffset: 4 * index, as: UInt32.self))
            default: bytes.load(fromByteOffset: 8 * index, as: UInt64.self)
            }
        }
    }

    /// Adds `other` element-wise modulo 2^b.
    public mutating func add(_ other: ModularVector) throws(RingError) {
        try checkCompatible(other)
        combine(other, subtracting: false)
    }

    /// Subtracts `other` element-wise modulo 2^b.
    public mutating func subtract(_ other: ModularVector) throws(RingError) {
        try checkCompatible(other)
        combine(other, subtracting: true)
    }

    /// Gives direct access to the lanes' bytes — `count` lanes of ``BitWidth/laneByteCount``
    /// bytes in host byte order, 8-byte aligned — for kernels that keep them reduced (mask
    /// expansion writes straight into this buffer; bind it to `UInt8`, `UInt16`, `UInt32` or
    /// `UInt64` as the lane width says).
    ///
    /// The closure must leave every element in `0...bitWidth.mask`.
    public mutating func withUnsafeMutableLaneBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows
        -> R
    {
        let byteCount = count * bitWidth.laneByteCount
        return try words.withUnsafeMutableBytes { try body(UnsafeMutableRawBufferPointer(rebasing: $0[..<byteCount])) }
    }

    /// Read access to the lanes' bytes (see ``withUnsafeMutableLaneBytes(_:)``).
    public func withUnsafeLaneBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let byteCount = count * bitWidth.laneByteCount
        return try words.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[..<byteCount])) }
    }

    private mutating func combine(_ other: ModularVector, subtracting: Bool) {
        let mask = bitWidth.mask
        let width = bitWidth.laneByteCount
        other.withUnsafeLaneBytes { source in
            withUnsafeMutableLaneBytes { target in
                switch width {
                case 1: Self.combine(target, source, UInt8.self, mask: mask, subtracting: subtracting)
                case 2: Self.combine(target, source, UInt16.self, mask: mask, subtracting: subtracting)
                case 4: Self.combine(target, source, UInt32.self, mask: mask, subtracting: subtracting)
                default: Self.combine(target, source, UInt64.self, mask: mask, subtracting: subtracting)
                }
            }
        }
    }

    @inline(__always)
    private static func combine<Lane: FixedWidthInteger & UnsignedInteger>(
        _ target: UnsafeMutableRawBufferPointer, _ source: UnsafeRawBufferPointer, _: Lane.Type, mask: UInt64,
        subtracting: Bool
    ) {
        let mask = Lane(truncatingIfNeeded: mask)
        target.withMemoryRebound(to: Lane.self) { target in
            source.withMemoryRebound(to: Lane.self) { source in
                // Two loops rather than a branch inside one, so that each vectorises.
                if subtracting {
                    for i in target.indices { target[i] = (target[i] &- source[i]) & mask }
                } else {
                    for i in target.indices { target[i] = (target[i] &+ source[i]) & mask }
                }
            }
        }
    }

    @inline(__always)
    private static func fill<Lane: FixedWidthInteger & UnsignedInteger>(
        _ target: UnsafeMutableRawBufferPointer, _: Lane.Type, from source: UnsafeBufferPointer<UInt64>, mask: UInt64
    ) {
        target.withMemoryRebound(to: Lane.self) { target in
            for i in target.indices { target[i] = Lane(truncatingIfNeeded: source[i] & mask) }
        }
    }

    @inline(__always)
    private static func widen<Lane: FixedWidthInteger & UnsignedInteger>(
        _ source: UnsafeRawBufferPointer, _: Lane.Type, into target: UnsafeMutableBufferPointer<UInt64>
    ) {
        source.withMemoryRebound(to: Lane.self) { source in
            for i in source.indices { target[i] = UInt64(source[i]) }
        }
    }

    private func checkCompatible(_ other: ModularVector) throws(RingError) {
        guard other.bitWidth == bitWidth else {
            throw .bitWidthMismatch(expected: bitWidth.bits, actual: other.bitWidth.bits)
        }
        guard other.count == count else { throw .lengthMismatch(expected: count, actual: other.count) }
    }
}
