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

        /// The mode's number in the C kernels (`veil_fold_widening`).
        var kernelCode: Int32 {
            switch self {
            case .overwrite: 0
            case .add: 1
            case .subtract: 2
            }
        }
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
    /// (``apply(_:to:elements:)``). Addition in Z_(2^b) commutes, so the split changes nothing.
    /// - Throws: ``MaskExpansionError`` when a mask is over another ring than the vector, or
    ///   the vector is too long.
    public static func apply(
        _ masks: [(expander: MaskExpander, mode: Mode)], to vector: inout ModularVector, workers: Int = 1
    ) throws(MaskExpansionError) {
        try check(masks, vector)
        let chunks = (vector.count + elementsPerChunk - 1) / elementsPerChunk
        let workers = min(workers, chunks)
        let count = vector.count
        let bitWidth = vector.bitWidth
        vector.withUnsafeMutableLaneBytes { lanes in
            guard workers > 1 else { return fold(masks, bitWidth, into: lanes, elements: 0..<count) }
            // Each worker writes only its own lanes; the buffer outlives the parallel section.
            nonisolated(unsafe) let lanes = lanes
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                let lower = chunks * worker / workers * elementsPerChunk
                let upper = min(count, chunks * (worker + 1) / workers * elementsPerChunk)
                fold(masks, bitWidth, into: lanes, elements: lower..<upper)
            }
        }
    }

    /// Folds mask elements `elements` of each mask into the same elements of `vector`, where
    /// `elements.lowerBound` is a multiple of ``elementsPerChunk`` (one worker's share of a
    /// longer vector; the others are left as they are).
    /// - Throws: ``MaskExpansionError`` when a mask is over another ring than the vector, or
    ///   the vector is too long.
    public static func apply(
        _ masks: [(expander: MaskExpander, mode: Mode)], to vector: inout ModularVector, elements: Range<Int>
    ) throws(MaskExpansionError) {
        try check(masks, vector)
        precondition(elements.lowerBound >= 0 && elements.upperBound <= vector.count, "elements out of range")
        let bitWidth = vector.bitWidth
        vector.withUnsafeMutableLaneBytes { fold(masks, bitWidth, into: $0, elements: elements) }
    }

    private static func check(_ masks: [(expander: MaskExpander, mode: Mode)], _ vector: ModularVector)
        throws(MaskExpansionError)
    {
        if let other = masks.first(where: { $0.expander.bitWidth != vector.bitWidth }) {
            throw .bitWidthMismatch(expected: other.expander.bitWidth.bits, actual: vector.bitWidth.bits)
        }
        if let first = masks.first, vector.count > first.expander.maxCount {
            throw .tooLong(count: vector.count, max: first.expander.maxCount)
        }
    }

    /// The kernel: folds mask elements `elements` of every mask into those lanes of `lanes` (a
    /// vector's, ``ModularVector/withUnsafeMutableLaneBytes(_:)``).
    ///
    /// The elements are walked one step (one ChaCha20 call's worth) at a time and every mask is
    /// folded into that step before the next: its 6 to 64 KB of lanes stay in the L1 or L2 cache
    /// for all k masks, instead of the whole vector passing through the caches once per mask.
    private static func fold(
        _ masks: [(expander: MaskExpander, mode: Mode)], _ bitWidth: BitWidth,
        into lanes: UnsafeMutableRawBufferPointer,
        elements: Range<Int>
    ) {
        guard !masks.isEmpty, !elements.isEmpty, let base = lanes.baseAddress else { return }
        let first = elements.lowerBound
        precondition(first % elementsPerChunk == 0, "a run must start on a chunk boundary")
        Sodium.ensureInitialized()
        let width = bitWidth.byteCount
        let laneWidth = bitWidth.laneByteCount
        // Keystream written straight into the lanes when they have its layout: whole bytes per
        // element and no bit above b (else the mask clears them after).
        let inPlace = width == laneWidth
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
            // as whole 4- or 8-byte words (``fold``), the last one reaching past the keystream
            // written. All of it is zeroed first, so that no byte read was left uninitialised.
            withUnsafeTemporaryAllocation(byteCount: stepBytes + 8, alignment: 64) { buffer in
                let raw = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
                raw.initialize(repeating: 0, count: stepBytes + 8)
                var start = first
                // Element `first` starts keystream block first·w / 64 (whole: 64 divides 1024·w).
                var counter = UInt32(first * width / 64)
                while start < elements.upperBound {
                    let n = min(step, elements.upperBound - start)
                    let target = base + start * laneWidth
                    for i in modes.indices {
                        if modes[i] == .overwrite && inPlace {
                            let out = target.assumingMemoryBound(to: UInt8.self)
                            keystream(into: out, byteCount: n * width, counter: counter, key: k + i * keySize)
                            if bitWidth.bits < 8 * width {
                                fold(.overwrite, bitWidth, n: n, from: target, into: target)
                            }
                        } else {
                            keystream(into: raw, byteCount: n * width, counter: counter, key: k + i * keySize)
                            fold(modes[i], bitWidth, n: n, from: UnsafeRawPointer(raw), into: target)
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

    /// Combines `n` little-endian keystream elements of ⌈b/8⌉ bytes with `n` lanes.
    @inline(__always)
    private static func fold(
        _ mode: Mode, _ bitWidth: BitWidth, n: Int, from source: UnsafeRawPointer, into target: UnsafeMutableRawPointer
    ) {
        let mask = bitWidth.mask
        switch bitWidth.byteCount {
        case 8: combine(mode, n, source, target, UInt64.self, mask)
        case 4: combine(mode, n, source, target, UInt32.self, mask)
        case 2: combine(mode, n, source, target, UInt16.self, mask)
        case 1: combine(mode, n, source, target, UInt8.self, mask)
        case let width:
            // 3 bytes into 4-byte lanes, 5, 6 or 7 into 8-byte lanes: with AVX2 one byte shuffle
            // widens 8 or 4 elements (the scalar loop below ran b = 24 at 0.70 of the
            // keystream's speed, b = 40 at 0.83), the rest one unaligned load per element, whose
            // bytes past the element the mask clears (b ≤ 8·w).
            let done =
                useAVX2
                ? veil_fold_widening(
                    target, source.assumingMemoryBound(to: UInt8.self), n, Int32(width), mask, mode.kernelCode) : 0
            if width == 3 {
                let mask = UInt32(truncatingIfNeeded: mask)
                @inline(__always) func element(_ i: Int) -> UInt32 {
                    UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i * 3, as: UInt32.self))
                }
                target.withMemoryRebound(to: UInt32.self, capacity: n) { lanes in
                    switch mode {
                    case .overwrite: for i in done..<n { lanes[i] = element(i) & mask }
                    case .add: for i in done..<n { lanes[i] = (lanes[i] &+ element(i)) & mask }
                    case .subtract: for i in done..<n { lanes[i] = (lanes[i] &- element(i)) & mask }
                    }
                }
            } else {
                @inline(__always) func element(_ i: Int) -> UInt64 {
                    UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * width, as: UInt64.self))
                }
                target.withMemoryRebound(to: UInt64.self, capacity: n) { lanes in
                    switch mode {
                    case .overwrite: for i in done..<n { lanes[i] = element(i) & mask }
                    case .add: for i in done..<n { lanes[i] = (lanes[i] &+ element(i)) & mask }
                    case .subtract: for i in done..<n { lanes[i] = (lanes[i] &- element(i)) & mask }
                    }
                }
            }
        }
    }

    /// Whether the widening fold uses AVX2 (`veil_has_avx2`, asked once). Tests turn it off to
    /// check the scalar loop against the same definition; both give the same lanes, so another
    /// expansion running meanwhile is unaffected.
    nonisolated(unsafe) static var useAVX2 = veil_has_avx2() != 0

    /// Keystream elements of a lane's width (the host is little-endian, as the lanes are
    /// stored in host order: see ``ModularVector``).
    @inline(__always)
    private static func combine<Lane: FixedWidthInteger & UnsignedInteger>(
        _ mode: Mode, _ n: Int, _ source: UnsafeRawPointer, _ target: UnsafeMutableRawPointer, _: Lane.Type,
        _ mask: UInt64
    ) {
        let mask = Lane(truncatingIfNeeded: mask)
        // Rebound, not assumed: the lanes' memory is bound to UInt64, the keystream's to UInt8.
        source.withMemoryRebound(to: Lane.self, capacity: n) { words in
            target.withMemoryRebound(to: Lane.self, capacity: n) { lanes in
                // Three loops rather than a switch inside one, so that each vectorises.
                switch mode {
                case .overwrite: for i in 0..<n { lanes[i] = Lane(littleEndian: words[i]) & mask }
                case .add: for i in 0..<n { lanes[i] = (lanes[i] &+ Lane(littleEndian: words[i])) & mask }
                case .subtract: for i in 0..<n { lanes[i] = (lanes[i] &- Lane(littleEndian: words[i])) & mask }
                }
            }
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
