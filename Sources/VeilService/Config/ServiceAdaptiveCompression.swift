import Foundation
import VeilCore
import VeilLearning

/// serve.json's `adaptive_compression` (`Specs/export.md` §5.3): the floors of each round's
/// compression — the fewest bits per value and the smallest share of coordinates — which are
/// the federation's accuracy budget. The coordinator compresses no further than these,
/// whatever its participants report.
public struct ServiceAdaptiveCompression: Codable, Hashable, Sendable {
    public var minBits = 8
    public var minSubset = 1.0

    public init(minBits: Int = 8, minSubset: Double = 1) {
        self.minBits = minBits
        self.minSubset = minSubset
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case minBits, minSubset
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "adaptive_compression")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.take(.minBits, &minBits); try c.take(.minSubset, &minSubset)
    }

    /// The candidates' ladder with these floors.
    public var bounds: AdaptiveCompression {
        get throws { try AdaptiveCompression(minBits: minBits, minSubset: minSubset) }
    }

    /// The subset fractions of the ladder, largest (1: every coordinate) first: with privacy
    /// the ring is fixed and only these are tried (`Specs/export.md` §5.4).
    public var fractions: [Double] {
        get throws {
            var seen: Set<Double> = []
            return try bounds.candidates.map(\.fraction).filter { seen.insert($0).inserted }
        }
    }

    /// The floors, and that the narrowest ring they allow can still hold every cohort size
    /// from `minParticipants` to `cohortSize` of payloads clipped to `clip`: otherwise a few
    /// slow reports would push rounds into a ring nothing can be encoded in. With privacy
    /// (`ringIsFixed`) the ring is not the ladder's, and only `min_subset` applies.
    func validate(clip: Double, minParticipants: Int, cohortSize: Int, ringIsFixed: Bool = false) throws {
        guard (2...32).contains(minBits) else {
            throw ConfigurationError("adaptive_compression.min_bits must be in 2…32, got \(minBits)")
        }
        guard minSubset >= 0x1p-20, minSubset <= 1 else {
            throw ConfigurationError("adaptive_compression.min_subset must be in [2^-20, 1], got \(minSubset)")
        }
        guard !ringIsFixed else { return }
        // The ladder's last rung at or above min_bits is the fewest bits a round uses.
        let floor = try bounds.candidates.last!.bits
        let (low, high) = (max(1, min(minParticipants, cohortSize)), max(1, cohortSize))
        // Within one headroom ⌈log₂ K⌉ the ring is the same and the largest K the hardest:
        // each power of two in range, and the cohort size itself.
        let sizes = Set((0...30).map { 1 << $0 }.filter { $0 >= low && $0 <= high } + [high])
        for cohort in sizes.sorted() {
            let ring = try AdaptiveCompression.ring(bits: floor, cohort: cohort)
            do { _ = try FixedPointCodec.finest(clip: clip, bitWidth: ring, maxAddends: cohort) } catch {
                throw ConfigurationError(
                    "adaptive_compression.min_bits \(minBits): a ring of \(ring.bits) bits cannot hold \(cohort) payloads clipped to payload_clip \(clip); raise min_bits or lower payload_clip"
                )
            }
        }
    }
}
