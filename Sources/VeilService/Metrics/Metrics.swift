import Foundation
import Synchronization

/// The coordinator's metrics, rendered in Prometheus' text exposition format (version 0.0.4)
/// at `/metrics`. Counters only grow; gauges are set; each series is a name plus sorted labels.
public final class Metrics: Sendable {
    private struct Series: Hashable, Comparable {
        let name: String
        let labels: [String: String]

        var rendered: String {
            guard !labels.isEmpty else { return name }
            let pairs = labels.keys.sorted().map { key in
                let value = labels[key]!.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
                return "\(key)=\"\(value)\""
            }
            return "\(name){\(pairs.joined(separator: ","))}"
        }

        static func < (a: Series, b: Series) -> Bool { a.rendered < b.rendered }
    }

    private struct State {
        var counters: [Series: Double] = [:]
        var gauges: [Series: Double] = [:]
    }

    /// Help text for each metric name, as the exposition's `# HELP` and `# TYPE` lines.
    public static let catalogue: [(name: String, type: String, help: String)] = [
        ("veil_rounds_total", "counter", "Secure-aggregation rounds by outcome (completed, aborted, interrupted)."),
        ("veil_participants_connected", "gauge", "Participants with an open stream."),
        ("veil_participants_registered_total", "counter", "Registrations (Hello) accepted."),
        ("veil_round_cohort", "gauge", "Participants selected in the current or last round."),
        ("veil_round_survivors", "gauge", "Participants whose input is in the last round's sum."),
        ("veil_dropouts_total", "counter", "Participants dropped, by protocol round and reason."),
        ("veil_round_seconds", "gauge", "Wall time of the last finished round."),
        ("veil_round_seconds_total", "counter", "Wall time of all finished rounds."),
        ("veil_bytes_received_total", "counter", "Protocol message bytes received from participants."),
        ("veil_bytes_sent_total", "counter", "Protocol message bytes sent to participants."),
        ("veil_aborts_total", "counter", "Aborted rounds by reason."),
        ("veil_refused_messages_total", "counter", "Participant messages refused, by reason."),
        ("veil_model_accuracy", "gauge", "Test accuracy of the global model after the last round, when evaluated."),
        ("veil_rounds_completed", "gauge", "Completed rounds of the federation (resumed from the store)."),
    ]

    private let state = Mutex(State())

    public init() {}

    public func increment(_ name: String, by amount: Double = 1, labels: [String: String] = [:]) {
        state.withLock { $0.counters[Series(name: name, labels: labels), default: 0] += amount }
    }

    public func set(_ name: String, _ value: Double, labels: [String: String] = [:]) {
        state.withLock { $0.gauges[Series(name: name, labels: labels)] = value }
    }

    /// The value of a series (tests and the dashboard).
    public func value(_ name: String, labels: [String: String] = [:]) -> Double? {
        state.withLock { s in
            let series = Series(name: name, labels: labels)
            return s.counters[series] ?? s.gauges[series]
        }
    }

    /// The exposition text.
    public func render() -> String {
        let snapshot = state.withLock { $0 }
        var out = ""
        for (name, type, help) in Self.catalogue {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            let source = type == "counter" ? snapshot.counters : snapshot.gauges
            for (series, value) in source.filter({ $0.key.name == name }).sorted(by: { $0.key < $1.key }) {
                out += "\(series.rendered) \(Self.format(value))\n"
            }
        }
        return out
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
