import Foundation
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

    func validate() throws {
        do { _ = try bounds } catch { throw ConfigurationError("adaptive_compression: \(error)") }
    }
}
