import VeilCore

/// Random-subset compression of a FedAvg-family payload (Specs/export.md §5.2): each round a
/// public seed picks ⌈f·(d − 1)⌉ of the d − 1 update coordinates, the same for every
/// participant, so that masks still cancel; each participant sends those coordinates divided by
/// f and, always, the last coordinate (its weight) unscaled. The coordinator puts the summed
/// coordinates back in place with zeros elsewhere: every coordinate's expectation is the
/// uncompressed sum's (an unbiased estimate), at the cost of variance.
public struct CoordinateSubset: Hashable, Sendable {
    /// The coordinates sent, ascending, the last (the weight) included.
    public let indices: [Int]
    public let length: Int
    public let fraction: Double

    public init(length: Int, fraction: Double, using generator: inout Xoshiro256) {
        precondition(length >= 1 && fraction > 0 && fraction <= 1, "a subset of a non-empty payload")
        let updates = length - 1
        let count = min(updates, Int((fraction * Double(updates) - 1e-9).rounded(.up)))
        // A partial Fisher–Yates shuffle: the first `count` of a uniform permutation.
        var order = Array(0..<updates)
        for i in 0..<count {
            let j = i + Int(generator.below(updates - i))
            order.swapAt(i, j)
        }
        indices = order.prefix(count).sorted() + [updates]
        self.length = length
        self.fraction = fraction
    }

    /// What a participant sends: the chosen coordinates over the fraction, then the weight.
    public func compress(_ payload: [Double]) -> [Double] {
        indices.dropLast().map { payload[$0] / fraction } + [payload[length - 1]]
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
        guard minSubset > 0, minSubset <= 1 else {
            throw .invalidSpecification("the smallest subset fraction must be in (0, 1], got \(minSubset)")
        }
        self.minBits = minBits
        self.minSubset = minSubset
    }

    /// The candidates, least compressed first: bits 32, 24, 16, 12, 8, 6, 4, 3, 2 down to
    /// `minBits` with every coordinate, then the fewest bits with fractions 1/2, 1/4, … down
    /// to `minSubset`.
    public var candidates: [(bits: Int, fraction: Double)] {
        let ladder = [32, 24, 16, 12, 8, 6, 4, 3, 2].filter { $0 >= minBits }
        var all = ladder.map { ($0, 1.0) }
        var fraction = 0.5
        while fraction >= minSubset - 1e-12 {
            all.append((ladder.last!, fraction))
            fraction /= 2
        }
        return all
    }
}
