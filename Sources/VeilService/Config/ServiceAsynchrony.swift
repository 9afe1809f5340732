import Foundation

/// serve.json's `asynchronous`: buffered asynchronous aggregation (FedBuff, Nguyen et al.,
/// AISTATS 2022) in the service (`Specs/wire.md` §4.4). Participants train on the model they
/// were last offered, whenever they can, and hold the update; each round is one buffer of
/// `cohort_size` held updates summed securely, each weighted by its staleness.
public struct ServiceAsynchrony: Codable, Hashable, Sendable {
    /// The largest staleness τ (model versions between the one an update was trained from and
    /// the current one) an update may have; a staler one is replaced by training again.
    public var maxStaleness = 10
    /// How long a round waits for a full buffer (`cohort_size` held updates) once
    /// `min_participants` are held; then it sums what it has.
    public var bufferWaitSeconds = 30.0

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxStaleness, bufferWaitSeconds
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "asynchronous")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.take(.maxStaleness, &maxStaleness)
        try c.take(.bufferWaitSeconds, &bufferWaitSeconds)
    }

    func validate() throws {
        guard (0...1_000_000).contains(maxStaleness) else {
            throw ConfigurationError("asynchronous.max_staleness must be in 0...1000000")
        }
        guard bufferWaitSeconds > 0, bufferWaitSeconds <= 86_400 else {
            throw ConfigurationError("asynchronous.buffer_wait_seconds must be in (0, 86400]")
        }
    }

    /// FedBuff's staleness weight s(τ) = 1/√(1 + τ), which every member applies to its own update.
    public static func weight(staleness: UInt64) -> Double { 1 / (1 + Double(staleness)).squareRoot() }
}
