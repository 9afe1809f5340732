import Foundation

/// The coordinator's alerts (`Specs/wire.md` §9.4), as a sans-IO state machine: after each
/// attempt it is given what every rule finds, and answers with the notifications to send.
/// An alert is one (rule, subject) pair: it is pending until its rule has held for
/// `for_rounds` consecutive evaluations, then firing until an evaluation no longer finds it,
/// then resolved. Each alert is notified once when it fires and once when it resolves, however
/// many evaluations keep finding it (deduplication). Kept in the store, so a restarted
/// coordinator neither forgets a firing alert nor fires it again.
public struct AlertBook: Codable, Hashable, Sendable {
    public enum State: String, Codable, Sendable {
        case pending, firing, resolved
    }

    public struct Alert: Codable, Hashable, Sendable {
        /// `rule|subject`: the deduplication key.
        public var id: String
        public var rule: String
        public var detector: String
        public var severity: String
        public var subject: String
        public var state: State
        public var since: Double
        public var sinceRound: Int
        public var resolved: Double?
        public var resolvedRound: Int?
        public var value: Double
        public var summary: String
        /// Consecutive evaluations that found it.
        var streak: Int

        enum CodingKeys: String, CodingKey {
            case id, rule, detector, severity, subject, state, since, sinceRound = "since_round", resolved
            case resolvedRound = "resolved_round", value, summary, streak
        }
    }

    /// A state change to notify: the alert as it now is.
    public struct Notice: Hashable, Sendable {
        public var alert: Alert
    }

    /// Pending and firing alerts, by id.
    public private(set) var open: [String: Alert] = [:]
    /// Resolved alerts, oldest first, the latest `pastLimit` of them.
    public private(set) var past: [Alert] = []
    static let pastLimit = 500

    public init() {}

    /// The book within the bounds the coordinator keeps (a store is a file its owner can edit):
    /// at most `openLimit` open alerts and `pastLimit` resolved ones, texts shortened.
    func sanitized() -> AlertBook {
        func bounded(_ alert: Alert) -> Alert {
            var a = alert
            a.id = String(a.id.prefix(400))
            a.rule = String(a.rule.prefix(64))
            a.detector = String(a.detector.prefix(64))
            a.severity = String(a.severity.prefix(16))
            a.subject = String(a.subject.prefix(300))
            a.summary = String(a.summary.prefix(500))
            a.value = a.value.isFinite ? a.value : 0
            return a
        }
        var book = AlertBook()
        for (id, alert) in open.sorted(by: { $0.key < $1.key }).prefix(Self.openLimit) {
            book.open[String(id.prefix(400))] = bounded(alert)
        }
        book.past = past.suffix(Self.pastLimit).map(bounded)
        return book
    }

    /// Open alerts kept at most: far above rules × participants in any federation.
    static let openLimit = 100_000

    /// The firing alerts, by id.
    public var firing: [Alert] { open.values.filter { $0.state == .firing }.sorted { $0.id < $1.id } }

    /// Folds one evaluation (after the attempt of round `round`) into the book.
    public mutating func evaluate(
        _ findings: [(rule: AlertRule, findings: [AnomalyDetector.Finding])], round: Int, at now: Double
    ) -> [Notice] {
        var notices: [Notice] = []
        for (rule, found) in findings {
            var seen = Set<String>()
            for finding in found {
                let id = rule.name + "|" + finding.subject
                guard seen.insert(id).inserted else { continue }
                var alert =
                    open[id]
                    ?? Alert(
                        id: id, rule: rule.name, detector: rule.detector.rawValue, severity: rule.severity.rawValue,
                        subject: finding.subject, state: .pending, since: now, sinceRound: round, value: finding.value,
                        summary: finding.summary, streak: 0)
                alert.streak += 1
                alert.value = finding.value
                alert.summary = finding.summary
                if alert.state == .pending, alert.streak >= rule.forRounds {
                    alert.state = .firing
                    alert.since = now
                    alert.sinceRound = round
                    notices.append(Notice(alert: alert))
                }
                open[id] = alert
            }
            // An alert of this rule that was not found again resolves (a pending one is forgotten).
            for (id, alert) in open where alert.rule == rule.name && !seen.contains(id) {
                open[id] = nil
                guard alert.state == .firing else { continue }
                var resolved = alert
                resolved.state = .resolved
                resolved.resolved = now
                resolved.resolvedRound = round
                past.append(resolved)
                notices.append(Notice(alert: resolved))
            }
        }
        // A rule taken out of the configuration leaves no alert open.
        let rules = Set(findings.map(\.rule.name))
        for (id, alert) in open where !rules.contains(alert.rule) { open[id] = nil }
        if past.count > Self.pastLimit { past.removeFirst(past.count - Self.pastLimit) }
        return notices.sorted {
            ($0.alert.state == .resolved ? 0 : 1, $0.alert.id) < ($1.alert.state == .resolved ? 0 : 1, $1.alert.id)
        }
    }
}
