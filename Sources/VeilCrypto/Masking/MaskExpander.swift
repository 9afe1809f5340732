import CSodium
import Dispatch
import VeilCore

/// Mask expansion: a 32-byte seed and a label become a pseudorandom vector over Z_(2^b).
///
/// The key is `VeilKDF(seed, "mask-expansion", salt empty, context = label, 32)`; the
/// keystream is IETF ChaCha20 under that key with an all-zero nonce, block counter from 0.
/// Element i is the `w = ⌈b/8⌉` keystream bytes at offset `w·i`, read little-endian and
/// reduced modulo 2^b. Since 2^b divides 2^(8w) every element is exactly uniform.
/// `Specs/primitives.md` ("Mask expansion") is normative.
///
/// The keystream is produced a few kilobytes at a time and folded straight into the caller's
/// buffer (overwrite, add or subtract), so adding k masks to a vector never materialises a
/// mask; several masks are folded piece by piece, on as many threads as asked
/// (``apply(_:to:workers:)``).
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

    /// The unit a vector is cut into, for several workers or for several masks at once:
    /// 1024 elements are 1024 · w keystream bytes, a whole number of 64-byte blocks, so a slice
    /// that starts on a multiple of it starts on a block. Each ChaCha20 call covers one to
    /// eight of them (at least 5 KB of keystream), for 8 to 64 KB of the target's elements.
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
        try Self.apply([(self, mode)], to: &vector)
    }

    /// Folds several masks into `vector` on `workers` threads, each taking a run of whole
    /// ``elementsPerChunk``-element chunks and folding every mask into it
    /// (``apply(_:to:from:)``). Addition in Z_(2^b) commutes, so the split changes nothing.
    /// - Throws: ``MaskExpansionError`` when a mask is over another ring than the vector, or
    ///   the vector is too long.
    public static func apply(
        _ masks: [(expander: MaskExpander, mode: Mode)], to vector: inout ModularVector, workers: Int = 1
    ) throws(MaskExpansionError) {
        if let other = masks.first(where: { $0.expander.bitWidth != vector.bitWidth }) {
            throw .bitWidthMismatch(expected: other.expander.bitWidth.bits, actual: vector.bitWidth.bits)
        }
        if let first = masks.first, vector.count > first.expander.maxCount {
            throw .tooLong(count: vector.count, max: first.expander.maxCount)
        }
        let chunks = (vector.count + elementsPerChunk - 1) / elementsPerChunk
        let workers = min(workers, chunks)
        vector.withUnsafeMutableElements { elements in
            guard workers > 1 else { return apply(masks, to: elements, from: 0) }
            // Each worker writes only its own elements; the buffer outlives the parallel section.
            nonisolated(unsafe) let elements = elements
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let lower = chunks * worker / workers * elementsPerChunk
                let upper = min(elements.count, chunks * (worker + 1) / workers * elementsPerChunk)
                apply(masks, to: UnsafeMutableBufferPointer(rebasing: elements[lower..<upper]), from: lower)
            }
        }
    }

    /// The kernel: folds mask elements 0..<target.count into `target`, whose elements must be
    /// reduced modulo 2^b. `target.count` must not exceed ``maxCount``.
    public func apply(_ mode: Mode, to target: UnsafeMutableBufferPointer<UInt64>) {
        Self.apply([(self, mode)], to: target, from: 0)
    }

    /// Folds several masks over one ring into `target` at once: mask elements
    /// `first..<first + target.count` of each, where `first` is a multiple of
    /// ``elementsPerChunk`` (a slice of a longer vector, for one worker of several).
    ///
    /// The target is walked one step (one ChaCha20 call's worth) at a time and every mask is
    /// folded into that step before the next: its 8 to 64 KB of elements stay in the L1 or L2
    /// cache for all k masks, instead of the whole vector passing through the caches once per
    /// mask.
    public static func apply(
        _ masks: [(expander: MaskExpander, mode: Mode)], to target: UnsafeMutableBufferPointer<UInt64>,
        from first: Int
    ) {
        guard let bitWidth = masks.first?.expander.bitWidth, let base = target.baseAddress, target.count > 0 else {
            return
        }
        precondition(masks.allSatisfy { $0.expander.bitWidth == bitWidth }, "masks over different rings")
        precondition(first >= 0 && first % elementsPerChunk == 0, "a slice must start on a chunk boundary")
        precondition(first + target.count <= masks[0].expander.maxCount, "vector longer than one mask key can cover")
        Sodium.ensureInitialized()
        let width = bitWidth.byteCount
        // One keystream call per step of at least 5 KB: with 1 KB per call, b = 8 ran at 0.56 of
        // the keystream's speed on one core instead of 0.62, b = 16 at 0.78 instead of 0.85.
        let step = elementsPerChunk * max(1, 8 / width)
        let stepBytes = step * width
        let blocksPerStep = UInt32(stepBytes / 64)
        // The keys side by side, so that one pointer reaches each (a SecureBytes, wiped when freed).
        let keySize = seedByteCount
        var keys = SecureBytes(zeros: masks.count * keySize)
        keys.withUnsafeMutableBytes { all in
            for (i, mask) in masks.enumerated() {
                mask.expander.key.withUnsafeBytes {
                    (all.baseAddress! + i * keySize).copyMemory(from: $0.baseAddress!, byteCount: keySize)
                }
            }
        }
        // The hot loop reads plain values, not the expanders (no reference counting per step).
        let modes = masks.map(\.mode)
        keys.withUnsafeBytes { keyBytes in
            let k = keyBytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            // 8 bytes of slack after a step's keystream: widths of 3, 5, 6 and 7 bytes are read
            // as whole 8-byte words (``fold``), the last one reaching past the keystream written.
            // All of it is zeroed first, so that no byte read was left uninitialised.
            withUnsafeTemporaryAllocation(byteCount: stepBytes + 8, alignment: 64) { buffer in
                let raw = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
                raw.initialize(repeating: 0, count: stepBytes + 8)
                var start = 0
                // Element `first` starts keystream block first·w / 64 (whole: 64 divides 1024·w).
                var counter = UInt32(first * width / 64)
                while start < target.count {
                    let n = min(step, target.count - start)
                    let out = UnsafeMutableBufferPointer(rebasing: target[start..<(start + n)])
                    for i in modes.indices {
                        let mode = modes[i]
                        if mode == .overwrite && width == 8 {
                            // The keystream already has the element layout: write it in place.
                            let inPlace = UnsafeMutableRawPointer(base + start)
                            keystream(
                                into: inPlace.assumingMemoryBound(to: UInt8.self), byteCount: n * 8, counter: counter,
                                key: k + i * keySize)
                            fold(.overwrite, bitWidth, n: n, from: UnsafeRawPointer(inPlace), into: out)
                        } else {
                            keystream(into: raw, byteCount: n * width, counter: counter, key: k + i * keySize)
                            fold(mode, bitWidth, n: n, from: UnsafeRawPointer(raw), into: out)
                        }
                    }
                    start += n
                    counter &+= blocksPerStep
                }
                sodium_memzero(buffer.baseAddress!, buffer.count)
            }
        }
    }

    @inline(__always)
    private static func keystream(
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
    private static func fold(
        _ mode: Mode, _ bitWidth: BitWidth, n: Int, from source: UnsafeRawPointer,
        into target: UnsafeMutableBufferPointer<UInt64>
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
            // 3, 5, 6 or 7 bytes: one unaligned little-endian 8-byte load per element, whose
            // bytes past the element the mask clears (b ≤ 8·w). Byte by byte ran at 0.35–0.4 of
            // the keystream's speed.
            @inline(__always) func element(_ i: Int) -> UInt64 {
                UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * width, as: UInt64.self))
            }
            switch mode {
            case .overwrite: for i in 0..<n { target[i] = element(i) & mask }
            case .add: for i in 0..<n { target[i] = (target[i] &+ element(i)) & mask }
            case .subtract: for i in 0..<n { target[i] = (target[i] &- element(i)) & mask }
            }
        }
    }

    @inline(__always)
    private static func combine<Word>(
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
