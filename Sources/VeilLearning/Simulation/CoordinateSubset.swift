import Foundation
import VeilCore
import VeilCrypto

/// Random-subset compression of a FedAvg-family payload (Specs/export.md §5.2): each round a
/// public 32-byte seed picks k of the d − 1 update coordinates, the same for every participant,
/// so that masks still cancel; each participant sends those coordinates times (d − 1)/k and,
/// always, the last coordinate (its weight) unscaled. The coordinator puts the summed
/// coordinates back in place with zeros elsewhere. Every coordinate is sent with probability
/// k/(d − 1), so each one's expectation is the uncompressed sum's (an unbiased estimate), at
/// the cost of variance.
public struct CoordinateSubset: Hashable, Sendable {
    public static let seedByteCount = ChaCha20Generator.seedByteCount

    /// The coordinates sent, ascending, the last (the weight) included.
    public let indices: [Int]
    public let length: Int
    /// The public seed that picked them (sent to participants over the network).
    public let seed: [UInt8]

    /// k: the update coordinates sent (the weight not counted).
    public var size: Int { indices.count - 1 }
    /// k/(d − 1): the share of update coordinates sent.
    public var fraction: Double { Double(size) / Double(length - 1) }

    /// The subset of `size` of the `length − 1` update coordinates that `seed` picks: the
    /// deterministic generator (Specs/primitives.md) keyed by the seed drives a partial
    /// Fisher–Yates shuffle, whose first `size` positions are the subset.
    public init(length: Int, size: Int, seed: [UInt8]) throws(DataError) {
        guard length >= 2 else {
            throw .invalidSpecification("a coordinate subset needs a payload of at least 2 values, got \(length)")
        }
        guard size >= 1, size <= length - 1 else {
            throw .invalidSpecification(
                "a subset of \(length - 1) update coordinates has 1…\(length - 1) of them, not \(size)")
        }
        guard seed.count == Self.seedByteCount, var generator = try? ChaCha20Generator(publicSeed: seed) else {
            throw .invalidSpecification("a subset seed is \(Self.seedByteCount) bytes, not \(seed.count)")
        }
        let updates = length - 1
        var order = Array(0..<updates)
        for i in 0..<size { order.swapAt(i, i + generator.below(updates - i)) }
        indices = order.prefix(size).sorted() + [updates]
        self.length = length
        self.seed = seed
    }

    /// k for a fraction F of d − 1 update coordinates: ⌈F·(d − 1)⌉, at least 1. The 10⁻⁹
    /// keeps F·(d − 1) that is an integer but for rounding (0.3 × 10) from gaining one.
    public static func size(length: Int, fraction: Double) -> Int {
        max(1, min(length - 1, Int((fraction * Double(length - 1) - 1e-9).rounded(.up))))
    }

    /// Round `round`'s public seed in a run seeded with `seed`: four outputs of the
    /// `coordinate-subset` stream (Specs/learning.md §6), little-endian. The in-process engine
    /// and the coordinator derive it alike; the coordinator sends it in the assignment.
    public static func seed(runSeed: UInt64, round: Int) -> [UInt8] {
        var generator = Xoshiro256(seed: runSeed, purpose: .coordinateSubset, round: round)
        return (0..<4).flatMap { _ in withUnsafeBytes(of: generator.next().littleEndian) { Array($0) } }
    }

    /// (d − 1)/k, rounded to binary64: what each update coordinate sent is multiplied by, and
    /// what the codec's clip is multiplied by so that a payload within ±C still fits.
    public var scale: Double { Double(length - 1) / Double(size) }

    /// What a participant sends: the chosen coordinates times ``scale`` (one more rounding),
    /// then the weight.
    public func compress(_ payload: [Double]) -> [Double] {
        let scale = scale
        return indices.dropLast().map { payload[$0] * scale } + [payload[length - 1]]
    }

    /// The full-length sum from the summed subset: zeros where nothing was sent.
    public func expand(_ sum: [Double]) -> [Double] {
        var full = [Double](repeating: 0, count: length)
        for (j, i) in indices.enumerated() { full[i] = sum[j] }
        return full
    }
}

/// Adaptive compression's bounds (Specs/export.md §5.3): the fewest bits per value and the
/// smallest subset fraction a round may use — the accuracy budget, set from measurements such
/// as README's ("Models out of Veil").
public struct AdaptiveCompression: Hashable, Sendable {
    public let minBits: Int
    public let minSubset: Double

    public init(minBits: Int, minSubset: Double) throws(DataError) {
        guard (2...32).contains(minBits) else {
            throw .invalidSpecification("the fewest bits per value must be in 2…32, got \(minBits)")
        }
        // At most 20 halvings: a ladder that always ends.
        guard minSubset >= 0x1p-20, minSubset <= 1 else {
            throw .invalidSpecification("the smallest subset fraction must be in [2^-20, 1], got \(minSubset)")
        }
        self.minBits = minBits
        self.minSubset = minSubset
    }

    /// The ring of a candidate of `bits` per value for a cohort of `cohort`: the codec keeps
    /// ⌈log₂ K⌉ bits of headroom so that K addends cannot wrap, within Z_2^8 … Z_2^64.
    public static func ring(bits: Int, cohort: Int) throws(RingError) -> BitWidth {
        let headroom = Int(log2(Double(max(cohort, 2))).rounded(.up))
        return try BitWidth(min(64, max(8, bits + headroom)))
    }

    /// The candidates, least compressed first: bits 32, 24, 16, 12, 8, 6, 4, 3, 2 down to
    /// `minBits` with every coordinate, then the fewest bits with fractions 1/2, 1/4, … down
    /// to `minSubset`.
    public var candidates: [(bits: Int, fraction: Double)] {
        let ladder = [32, 24, 16, 12, 8, 6, 4, 3, 2].filter { $0 >= minBits }
        var all = ladder.map { ($0, 1.0) }
        var fraction = 0.5
        while fraction >= minSubset * (1 - 1e-12) {
            all.append((ladder.last!, fraction))
            fraction /= 2
        }
        return all
    }
}
