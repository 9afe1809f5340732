import Foundation

/// serve.json's `monitoring` (`Specs/wire.md` §9.2–§9.4): the dashboard's bearer token, the
/// coordinator's own alert rules over what it may see under secure aggregation, and the
/// webhooks its alerts are posted to.
public struct ServiceMonitoring: Codable, Hashable, Sendable {
    /// A file holding the dashboard's bearer token (relative to the configuration file);
    /// nil: the dashboard's data are refused to everyone (the page still loads).
    public var tokenFile: String?
    public var webhooks: [Webhook] = []
    public var alerts: [AlertRule] = AlertRule.defaults

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case tokenFile, webhooks, alerts
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "monitoring")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tokenFile = try c.decodeIfPresent(String.self, forKey: .tokenFile)
        try c.take(.webhooks, &webhooks)
        try c.take(.alerts, &alerts)
    }

    func validate() throws {
        guard webhooks.count <= 16 else { throw ConfigurationError("monitoring.webhooks: at most 16") }
        for (i, hook) in webhooks.enumerated() { try hook.validate(at: "monitoring.webhooks.\(i)") }
        guard alerts.count <= 64 else { throw ConfigurationError("monitoring.alerts: at most 64 rules") }
        var names = Set<String>()
        for (i, rule) in alerts.enumerated() {
            try rule.validate(at: "monitoring.alerts.\(i)")
            guard names.insert(rule.name).inserted else {
                throw ConfigurationError("monitoring.alerts.\(i).name: \"\(rule.name)\" is used by another rule")
            }
        }
    }

    /// Reads the token file: one line of at least 32 printable characters, so that a guessable
    /// token cannot be configured by mistake, in a file only its owner can read (like an SSH key).
    public func loadToken() throws -> String? {
        guard let tokenFile else { return nil }
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            throw ConfigurationError("monitoring.token_file: cannot read \(tokenFile)")
        }
        let mode = (try? FileManager.default.attributesOfItem(atPath: tokenFile)[.posixPermissions] as? Int) ?? 0
        guard mode & 0o077 == 0 else {
            throw ConfigurationError(
                "monitoring.token_file: \(tokenFile) can be read by others (mode \(String(mode, radix: 8))): chmod 600 it"
            )
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 32, token.count <= 512, token.unicodeScalars.allSatisfy({ (33...126).contains($0.value) })
        else {
            throw ConfigurationError(
                "monitoring.token_file: the token must be one line of 32 to 512 printable ASCII characters without spaces"
            )
        }
        return token
    }

    /// A receiver of alert notifications: JSON POSTs, retried, each with a timeout.
    public struct Webhook: Codable, Hashable, Sendable {
        public var url: String
        public var timeoutSeconds = 5.0
        /// Further attempts after a failed one (1 s, 2 s, 4 s … apart).
        public var retries = 3

        public init(url: String) { self.url = url }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case url, timeoutSeconds, retries
        }

        public init(from decoder: any Decoder) throws {
            try refuseUnknownKeys(decoder, CodingKeys.self, in: "monitoring.webhooks")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            url = try c.decode(String.self, forKey: .url)
            try c.take(.timeoutSeconds, &timeoutSeconds)
            try c.take(.retries, &retries)
        }

        func validate(at path: String) throws {
            guard let parsed = URLComponents(string: url), ["http", "https"].contains(parsed.scheme ?? ""),
                parsed.host?.isEmpty == false
            else { throw ConfigurationError("\(path).url: \"\(url)\" is not an http:// or https:// URL") }
            guard timeoutSeconds > 0, timeoutSeconds <= 60 else {
                throw ConfigurationError("\(path).timeout_seconds must be in (0, 60]")
            }
            guard (0...10).contains(retries) else { throw ConfigurationError("\(path).retries must be in 0...10") }
        }
    }
}

/// One alert rule: a detector (`AnomalyDetector`), its threshold and window, how many
/// consecutive evaluations (one per finished attempt) it must hold before the alert fires, and
/// the alert's severity.
public struct AlertRule: Codable, Hashable, Sendable {
    public enum Severity: String, Codable, CaseIterable, Sendable, ConfigurationName {
        case info, warning, critical
    }

    public var name: String
    public var detector: AnomalyDetector.Kind
    /// nil: the detector's default (for `budget_exhaustion`, the privacy plan's `alert_fraction`).
    public var threshold: Double?
    public var window: Int
    public var forRounds = 1
    public var severity = Severity.warning

    public init(
        name: String, detector: AnomalyDetector.Kind, threshold: Double? = nil, window: Int? = nil,
        forRounds: Int = 1, severity: Severity = .warning
    ) {
        self.name = name
        self.detector = detector
        self.threshold = threshold
        self.window = window ?? detector.defaultWindow
        self.forRounds = forRounds
        self.severity = severity
    }

    /// The rules a `monitoring` section without `alerts` gets: every detector at its defaults.
    public static let defaults: [AlertRule] = AnomalyDetector.Kind.allCases.map {
        AlertRule(name: $0.rawValue, detector: $0)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, detector, threshold, window, forRounds, severity
    }

    public init(from decoder: any Decoder) throws {
        try refuseUnknownKeys(decoder, CodingKeys.self, in: "monitoring.alerts")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        guard let kind = try c.name(AnomalyDetector.Kind.self, forKey: .detector) else {
            throw ConfigurationError("monitoring.alerts: rule \"\(name)\" has no detector")
        }
        detector = kind
        window = kind.defaultWindow
        threshold = try c.decodeIfPresent(Double.self, forKey: .threshold)
        try c.take(.window, &window)
        try c.take(.forRounds, &forRounds)
        try c.take(.severity, &severity)
    }

    func validate(at path: String) throws {
        guard (1...64).contains(name.count),
            name.unicodeScalars.allSatisfy({
                CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyz0123456789_").contains($0)
            })
        else { throw ConfigurationError("\(path).name must be 1 to 64 of a-z, 0-9 and _") }
        let range = detector.thresholdRange
        if let threshold, !threshold.isFinite || !range.contains(threshold) {
            throw ConfigurationError(
                "\(path).threshold: \(threshold) is outside \(range.lowerBound)...\(range.upperBound) for \(detector.rawValue)"
            )
        }
        guard (1...1000).contains(window) else { throw ConfigurationError("\(path).window must be in 1...1000") }
        guard (1...1000).contains(forRounds) else { throw ConfigurationError("\(path).for_rounds must be in 1...1000") }
    }
}
