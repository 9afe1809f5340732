/// A vector over Z_(2^b): the payload every secure-sum backend adds.
///
/// The elements are kept reduced (no bit above `b` set); every initializer checks that, and
/// every operation preserves it.
public struct ModularVector: Hashable, Sendable {
    /// The ring the elements live in.
    public let bitWidth: BitWidth
    /// The elements, each in `0...bitWidth.mask`.
    public private(set) var elements: [UInt64]

    /// A vector of `count` zeros.
    public init(zeros count: Int, bitWidth: BitWidth) {
        self.bitWidth = bitWidth
        self.elements = Array(repeating: 0, count: count)
    }

    /// Wraps reduced elements.
    /// - Throws: ``RingError/elementOutOfRange(index:)`` when an element has bits above `b`.
    public init(elements: [UInt64], bitWidth: BitWidth) throws(RingError) {
        if let index = elements.firstIndex(where: { $0 & ~bitWidth.mask != 0 }) {
            throw .elementOutOfRange(index: index)
        }
        self.bitWidth = bitWidth
        self.elements = elements
    }

    /// Reduces arbitrary `UInt64` values modulo 2^b.
    public init(reducing values: [UInt64], bitWidth: BitWidth) {
        let mask = bitWidth.mask
        self.bitWidth = bitWidth
        self.elements = values.map { $0 & mask }
    }

    /// The number of elements.
    public var count: Int { elements.count }

    /// Adds `other` element-wise modulo 2^b.
    public mutating func add(_ other: ModularVector) throws(RingError) {
        try checkCompatible(other)
        let mask = bitWidth.mask
        other.elements.withUnsafeBufferPointer { source in
            elements.withUnsafeMutableBufferPointer { target in
                for i in target.indices { target[i] = (target[i] &+ source[i]) & mask }
            }
        }
    }

    /// Subtracts `other` element-wise modulo 2^b.
    public mutating func subtract(_ other: ModularVector) throws(RingError) {
        try checkCompatible(other)
        let mask = bitWidth.mask
        other.elements.withUnsafeBufferPointer { source in
            elements.withUnsafeMutableBufferPointer { target in
                for i in target.indices { target[i] = (target[i] &- source[i]) & mask }
            }
        }
    }

    /// Gives direct access to the elements for kernels that keep them reduced (mask
    /// expansion writes straight into this buffer).
    ///
    /// The closure must leave every element in `0...bitWidth.mask`.
    public mutating func withUnsafeMutableElements<R>(
        _ body: (UnsafeMutableBufferPointer<UInt64>) throws -> R
    ) rethrows -> R {
        try elements.withUnsafeMutableBufferPointer { buffer in try body(buffer) }
    }

    private func checkCompatible(_ other: ModularVector) throws(RingError) {
        guard other.bitWidth == bitWidth else {
            throw .bitWidthMismatch(expected: bitWidth.bits, actual: other.bitWidth.bits)
        }
        guard other.count == count else { throw .lengthMismatch(expected: count, actual: other.count) }
    }
}
