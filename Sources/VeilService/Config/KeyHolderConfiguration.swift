import Foundation
import VeilSecAgg

/// `veil keyholder --config FILE`: the party that holds the Paillier secret key.
public struct KeyHolderConfiguration: Codable, Hashable, Sendable {
    public var host = "127.0.0.1"
    public var port = 7443
    public var coordinator = "coordinator"
    public var tls: TLSFiles
    /// The secret key file of `veil paillier keygen` — or, for a threshold key holder, none:
    /// `threshold_key` (threshold.json of `veil paillier deal`) and `share` (its share-i.json).
    public var secretKey: String?
    public var thresholdKey: String?
    public var share: String?
    /// Aggregates of fewer contributions are refused.
    public var minimumContributors = 3
    /// The packing the key holder accepts: the most bits b and the most addends K.
    public var bits = 64
    public var maxAddends = 1000
    public var reconnectAttempts = 20
    /// The file of what it has decrypted (JSON lines): read at start, appended before each answer.
    public var record = "decryptions.jsonl"

    public init(tls: TLSFiles, secretKey: String) {
        self.tls = tls
        self.secretKey = secretKey
    }

    /// A threshold key holder's configuration.
    public init(tls: TLSFiles, thresholdKey: String, share: String) {
        self.tls = tls
        self.thresholdKey = thresholdKey
        self.share = share
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case host, port, coordinator, tls, secretKey, thresholdKey, share, minimumContributors, bits, maxAddends
        case reconnectAttempts, record
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "the configuration")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.tls = try c.decode(TLSFiles.self, forKey: .tls)
        secretKey = try c.decodeIfPresent(String.self, forKey: .secretKey)
        thresholdKey = try c.decodeIfPresent(String.self, forKey: .thresholdKey)
        share = try c.decodeIfPresent(String.self, forKey: .share)
        try c.take(.host, &host); try c.take(.port, &port); try c.take(.coordinator, &coordinator)
        try c.take(.minimumContributors, &minimumContributors); try c.take(.bits, &bits);
        try c.take(.maxAddends, &maxAddends)
        try c.take(.reconnectAttempts, &reconnectAttempts); try c.take(.record, &record)
    }

    public static func load(path: String) throws -> KeyHolderConfiguration {
        var configuration: KeyHolderConfiguration = try decodeFile(path)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        configuration.tls = configuration.tls.resolved(against: base)
        func resolved(_ path: String?) -> String? { path.map(base.resolving) }
        configuration.secretKey = resolved(configuration.secretKey)
        configuration.thresholdKey = resolved(configuration.thresholdKey)
        configuration.share = resolved(configuration.share)
        guard (configuration.secretKey != nil) != (configuration.thresholdKey != nil || configuration.share != nil),
            (configuration.thresholdKey == nil) == (configuration.share == nil)
        else {
            throw ConfigurationError(
                "give secret_key (one key holder) or threshold_key and share (a threshold key holder), not both or neither"
            )
        }
        configuration.record = base.resolving(configuration.record)
        guard configuration.minimumContributors >= SecAggParameters.thresholdFloor else {
            throw ConfigurationError("minimum_contributors must be at least 2: a sum of one is that one's input")
        }
        return configuration
    }
}
