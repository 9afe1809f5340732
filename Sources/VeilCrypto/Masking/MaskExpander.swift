import CSodium
import VeilCore

/// Mask expansion: a 32-byte seed and a label become a pseudorandom vector over Z_(2^b).
///
/// The key is `VeilKDF(seed, "mask-expansion", salt empty, context = label, 32)`; the
/// keystream is IETF ChaCha20 under that key with an all-zero nonce, block counter from 0.
/// Element i is the `w = ⌈b/8⌉` keystream bytes at offset `w·i`, read little-endian and
/// reduced modulo 2^b. Since 2^b divides 2^(8w) every element is exactly uniform.
/// `Specs/primitives.md` ("Mask expansion") is normative.
///
/// The keystream is produced in chunks of ``elementsPerChunk`` elements and folded straight
/// into the caller's buffer (overwrite, add or subtract), so adding k masks to a vector
/// never materialises a mask.
public struct MaskExpander: Sendable {
    /// What to do with each expanded element.
    public enum Mode: Sendable {
        /// Replace the target element with the mask element.
        case overwrite
        /// Add the mask element modulo 2^b (masking an input).
        case add
        /// Subtract the mask element modulo 2^b (removing a mask).
        case subtract
    }

    /// How many elements each ChaCha20 call produces: 1024 · w bytes, a multiple of the
    /// 64-byte block, small enough to stay in the L1 cache.
    public static let elementsPerChunk = 1024

    /// The size of a mask seed.
    public static let seedByteCount = 32

    /// The ring of the output.
    public let bitWidth: BitWidth
    private let key: SecureBytes

    /// The largest vector one key can expand to: 2^32 ChaCha20 blocks.
    public var maxCount: Int { Int((UInt64(1) << 32) * 64 / UInt64(bitWidth.byteCount)) }

    /// Creates an expander.
    /// - Parameters:
    ///   - seed: 32 secret bytes.
    ///   - label: public bytes naming the vector (session, round, vector name), any length.
    ///   - bitWidth: the ring Z_(2^b).
    /// - Throws: ``CryptoError/invalidLength(what:expected:actual:)`` unless the seed is 32 bytes.
    public init(seed: SecureBytes, label: [UInt8], bitWidth: BitWidth) throws(CryptoError) {
        try checkLength("mask seed", seed.count, Self.seedByteCount)
        self.bitWidth = bitWidth
        self.key = VeilKDF.derive32(.maskExpansion, from: seed, context: label)
    }

    /// The first `count` mask elements as a new vector.
    /// - Throws: ``MaskExpansionError/tooLong(count:max:)``.
    public func expand(count: Int) throws(MaskExpansionError) -> ModularVector {
        var vector = ModularVector(zeros: count, bitWidth: bitWidth)
        try apply(.overwrite, to: &vector)
        return vector
    }

    /// Folds the mask into `vector` element-wise.
    /// - Throws: ``MaskExpansionError`` when the vector is over another ring or too long.
    public func apply(_ mode: Mode, to vector: inout ModularVector) throws(MaskExpansionError) {
        guard vector.bitWidth == bitWidth else {
            throw .bitWidthMismatch(expected: bitWidth.bits, actual: vector.bitWidth.bits)
        }
        guard vector.count <= maxCount else { throw .tooLong(count: vector.count, max: maxCount) }
        vector.withUnsafeMutableElements { apply(mode, to: $0) }
    }

    /// The kernel: folds mask elements 0..<target.count into `target`, whose elements must be
    /// reduced modulo 2^b. `target.count` must not exceed ``maxCount``.
    public func apply(_ mode: Mode, to target: UnsafeMutableBufferPointer<UInt64>) {
        precondition(target.count <= maxCount, "vector longer than one mask key can cover")
        guard let base = target.baseAddress, target.count > 0 else { return }
        Sodium.ensureInitialized()
        let width = bitWidth.byteCount
        let chunkBytes = Self.elementsPerChunk * width
        let blocksPerChunk = UInt32(chunkBytes / 64)
        key.withUnsafeBytes { keyBytes in
            let k = keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            withUnsafeTemporaryAllocation(byteCount: chunkBytes, alignment: 64) { chunk in
                let raw = chunk.baseAddress!.assumingMemoryBound(to: UInt8.self)
                var start = 0
                var counter: UInt32 = 0
                while start < target.count {
                    let n = min(Self.elementsPerChunk, target.count - start)
                    let out = UnsafeMutableBufferPointer(rebasing: target[start..<(start + n)])
                    if mode == .overwrite && width == 8 {
                        // The keystream already has the element layout: write it in place.
                        keystream(
                            into: UnsafeMutableRawPointer(base + start).assumingMemoryBound(to: UInt8.self),
                            byteCount: n * 8, counter: counter, key: k)
                        fold(.overwrite, n: n, from: UnsafeRawPointer(base + start), into: out)
                    } else {
                        keystream(into: raw, byteCount: n * width, counter: counter, key: k)
                        fold(mode, n: n, from: UnsafeRawPointer(raw), into: out)
                    }
                    start += n
                    counter &+= blocksPerChunk
                }
                sodium_memzero(chunk.baseAddress!, chunk.count)
            }
        }
    }

    @inline(__always)
    private func keystream(
        into out: UnsafeMutablePointer<UInt8>, byteCount: Int, counter: UInt32, key: UnsafePointer<UInt8>
    ) {
        out.initialize(repeating: 0, count: byteCount)
        // Zero nonce: every (seed, label) pair has its own key, so the nonce carries nothing.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 12) { nonce in
            nonce.initialize(repeating: 0)
            Sodium.checkCannotFail(
                crypto_stream_chacha20_ietf_xor_ic(out, out, UInt64(byteCount), nonce.baseAddress!, counter, key),
                "crypto_stream_chacha20_ietf_xor_ic")
        }
    }

    /// Combines `n` little-endian keystream elements of ⌈b/8⌉ bytes with the target.
    @inline(__always)
    private func fold(
        _ mode: Mode, n: Int, from source: UnsafeRawPointer, into target: UnsafeMutableBufferPointer<UInt64>
    ) {
        let mask = bitWidth.mask
        switch bitWidth.byteCount {
        case 8: combine(mode, n, source.assumingMemoryBound(to: UInt64.self), target, mask) { UInt64(littleEndian: $0) }
        case 4:
            combine(mode, n, source.assumingMemoryBound(to: UInt32.self), target, mask) {
                UInt64(UInt32(littleEndian: $0))
            }
        case 2:
            combine(mode, n, source.assumingMemoryBound(to: UInt16.self), target, mask) {
                UInt64(UInt16(littleEndian: $0))
            }
        case 1: combine(mode, n, source.assumingMemoryBound(to: UInt8.self), target, mask) { UInt64($0) }
        case let width:
            let bytes = source.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n {
                var value: UInt64 = 0
                for j in (0..<width).reversed() { value = value << 8 | UInt64(bytes[i * width + j]) }
                target[i] = Self.combined(mode, target[i], value, mask)
            }
        }
    }

    @inline(__always)
    private func combine<Word>(
        _ mode: Mode, _ n: Int, _ words: UnsafePointer<Word>, _ target: UnsafeMutableBufferPointer<UInt64>,
        _ mask: UInt64,
        _ widen: (Word) -> UInt64
    ) {
        // Three loops rather than a switch inside one, so that each vectorises.
        switch mode {
        case .overwrite: for i in 0..<n { target[i] = widen(words[i]) & mask }
        case .add: for i in 0..<n { target[i] = (target[i] &+ widen(words[i])) & mask }
        case .subtract: for i in 0..<n { target[i] = (target[i] &- widen(words[i])) & mask }
        }
    }

    @inline(__always)
    private static func combined(_ mode: Mode, _ old: UInt64, _ m: UInt64, _ mask: UInt64) -> UInt64 {
        switch mode {
        case .overwrite: m & mask
        case .add: (old &+ m) & mask
        case .subtract: (old &- m) & mask
        }
    }
}

/// Why a mask could not be applied.
public enum MaskExpansionError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The target vector is over another ring.
    case bitWidthMismatch(expected: Int, actual: Int)
    /// The vector needs more than 2^32 ChaCha20 blocks.
    case tooLong(count: Int, max: Int)

    public var description: String {
        switch self {
        case .bitWidthMismatch(let expected, let actual):
            "mask over Z_2^\(expected) cannot be applied to a vector over Z_2^\(actual)"
        case .tooLong(let count, let max):
            "vector of \(count) elements exceeds the \(max) one mask key can cover"
        }
    }
}
