import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The coordinator's metrics: recorded through swift-metrics into this coordinator's own
/// swift-prometheus registry (not the process-wide bootstrap, so that several coordinators in
/// one process — tests, `veil simulate` — keep separate counts), rendered in Prometheus' text
/// exposition format at `/metrics`. Every label value comes from a closed set (``RoundStage``,
/// ``RoundAbort/Kind``, ``RefusalReason``, drop and decline codes) or is a participant's
/// certificate subject, which only the federation CA issues: a peer cannot mint series.
public final class Metrics: Sendable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    /// Every metric the coordinator exports, with its help text (`Specs/wire.md` §9). A family
    /// appears at `/metrics` with its `# HELP` and `# TYPE` lines even before its first sample.
    public static let catalogue: [(name: String, kind: Kind, help: String)] = [
        ("veil_rounds_total", .counter, "Secure-aggregation rounds by outcome (completed, aborted, interrupted)."),
        ("veil_participants_connected", .gauge, "Participants with an open stream."),
        ("veil_participants_registered_total", .counter, "Registrations (Hello) accepted."),
        ("veil_round_cohort", .gauge, "Participants selected in the current or last round."),
        ("veil_round_survivors", .gauge, "Participants whose input is in the last round's sum."),
        ("veil_round_modulus_log2", .gauge, "The last started round's payload ring Z_(2^b): b."),
        (
            "veil_round_subset_fraction", .gauge,
            "The share of update coordinates the last started round sent (1: all of them)."
        ),
        (
            "veil_held_updates", .gauge,
            "Asynchronous federations: connected participants holding an update a round may sum."
        ),
        (
            "veil_round_staleness_mean", .gauge,
            "Asynchronous federations: the mean staleness of the updates in the last started round."
        ),
        ("veil_dropouts_total", .counter, "Participants dropped, by protocol round and reason."),
        (
            "veil_attributed_faults_total", .counter,
            "Faults that participants' own signed messages show, by fault (each is recorded with its evidence)."
        ),
        (
            "veil_excluded_participants", .gauge,
            "Participants left out of every cohort for reaching exclude_after_faults proven faults."
        ),
        ("veil_round_seconds", .gauge, "Wall time of the last finished round."),
        ("veil_round_seconds_total", .counter, "Wall time of all finished rounds."),
        ("veil_round_duration_seconds", .histogram, "Wall time of each round attempt."),
        ("veil_protocol_round_seconds", .histogram, "Wall time of each stage of a round, by protocol round."),
        ("veil_bytes_received_total", .counter, "Protocol message bytes received from participants."),
        ("veil_bytes_sent_total", .counter, "Protocol message bytes sent to participants."),
        ("veil_aborts_total", .counter, "Aborted rounds by kind of reason."),
        ("veil_refused_messages_total", .counter, "Participant messages refused, by reason."),
        ("veil_declines_total", .counter, "Rounds declined by participants, by code."),
        ("veil_model_accuracy", .gauge, "Test accuracy of the global model after the last round, when evaluated."),
        ("veil_rounds_completed", .gauge, "Completed rounds of the federation (resumed from the store)."),
        ("veil_privacy_epsilon_max", .gauge, "The most epsilon any participant has spent (with privacy)."),
        ("veil_privacy_refusals_total", .counter, "Participants left out of a cohort because of their budget."),
        ("veil_privacy_alerts_total", .counter, "Cohort members taken past the alert fraction of their budget."),
        ("veil_store_errors_total", .counter, "Store operations that failed and were logged (the federation went on)."),
        (
            "veil_participant_reputation", .gauge,
            "Each invited participant's reputation in (0, 1), from what the coordinator observed (Specs/orchestration.md §6)."
        ),
        (
            "veil_participant_credits_total", .counter,
            "Credits each participant's contributions earned (Specs/orchestration.md §7)."
        ),
        ("veil_privacy_epsilon_budget", .gauge, "Each participant's epsilon budget (with privacy)."),
        ("veil_round_dropout_fraction", .gauge, "The last finished attempt's dropped members over its cohort."),
        ("veil_round_update_norm", .gauge, "The L2 norm of the mean update the last completed round applied."),
        ("veil_alerts_firing", .gauge, "1 while the coordinator's alert rule is firing (for any subject), else 0."),
        ("veil_alert_notifications_total", .counter, "Alert notifications posted to webhooks, by outcome."),
        (
            "veil_participant_cpu_fraction", .gauge,
            "Each participant's reported CPU seconds per second in its last round."
        ),
        ("veil_participant_memory_bytes", .gauge, "Each participant's reported resident memory after its last round."),
        (
            "veil_participant_network_bytes_per_second", .gauge,
            "Each participant's reported protocol throughput in its last round."
        ),
        ("veil_participant_battery", .gauge, "Each participant's reported battery charge, 0 to 1 (-1: mains)."),
        (
            "veil_participant_gpu_utilisation", .gauge,
            "Each participant's reported GPU utilisation, 0 to 1 (-1: not measured)."
        ),
        (
            "veil_coordinator_cpu_fraction", .gauge,
            "The coordinator process's CPU seconds per second since the last sample."
        ),
        ("veil_coordinator_resident_bytes", .gauge, "The coordinator process's resident memory."),
    ]

    /// Bucket bounds in seconds: rounds take from a fraction of a second (small cohorts on
    /// loopback) to minutes (training deadlines).
    static let secondsBuckets: [Double] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

    private let registry = PrometheusCollectorRegistry()
    /// The coordinator process's last CPU reading, for the CPU fraction between two samples.
    private let processSample = Mutex<(cpu: Double, at: ContinuousClock.Instant, fraction: Double)?>(nil)
    private let factory: PrometheusMetricsFactory

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultValueHistogramBuckets = Self.secondsBuckets
        self.factory = factory
    }

    public func increment(_ name: String, by amount: Double = 1, labels: [String: String] = [:]) {
        FloatingPointCounter(label: name, dimensions: Self.dimensions(labels), factory: factory).increment(by: amount)
    }

    public func set(_ name: String, _ value: Double, labels: [String: String] = [:]) {
        Gauge(label: name, dimensions: Self.dimensions(labels), factory: factory).record(value)
    }

    /// Records one observation into a histogram.
    public func observe(_ name: String, _ value: Double, labels: [String: String] = [:]) {
        Recorder(label: name, dimensions: Self.dimensions(labels), aggregate: true, factory: factory).record(value)
    }

    private static func dimensions(_ labels: [String: String]) -> [(String, String)] {
        labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Samples this process's CPU and memory into `veil_coordinator_*` (on each scrape and
    /// dashboard snapshot). The CPU fraction is over the time since the previous sample, kept
    /// from it when less than a second has passed.
    @discardableResult
    public func sampleProcess() -> (cpuFraction: Double, residentBytes: UInt64) {
        let cpu = ProcessResources.cpuSeconds()
        let now = ContinuousClock.now
        let fraction = processSample.withLock { last -> Double in
            guard let previous = last else {
                last = (cpu, now, 0)
                return 0
            }
            let elapsed =
                Double((now - previous.at).components.attoseconds) / 1e18
                + Double((now - previous.at).components.seconds)
            guard elapsed >= 1 else { return previous.fraction }
            let fraction = max(0, (cpu - previous.cpu) / elapsed)
            last = (cpu, now, fraction)
            return fraction
        }
        let resident = ProcessResources.residentBytes()
        set("veil_coordinator_cpu_fraction", fraction)
        set("veil_coordinator_resident_bytes", Double(resident))
        return (fraction, resident)
    }

    /// The value of a series as exported (a histogram's `_count`/`_sum` by their full names).
    public func value(_ name: String, labels: [String: String] = [:]) -> Double? {
        let series =
            labels.isEmpty
            ? name : name + "{" + Self.dimensions(labels).map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",") + "}"
        for line in render().split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// The exposition text: the catalogue's families in order, each with its help and type,
    /// then its samples as swift-prometheus wrote them.
    public func render() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        var samples: [String: [Substring]] = [:]
        for line in String(decoding: buffer, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            let series = line.prefix { $0 != "{" && $0 != " " }
            samples[Self.family(of: String(series)), default: []].append(line)
        }
        var out = ""
        for (name, kind, help) in Self.catalogue {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
            for line in samples.removeValue(forKey: name) ?? [] { out += line + "\n" }
        }
        // A series missing from the catalogue is a bug in the coordinator, but still exported.
        for (_, lines) in samples.sorted(by: { $0.key < $1.key }) {
            for line in lines { out += line + "\n" }
        }
        return out
    }

    /// A histogram's `_bucket`, `_sum` and `_count` series belong to its family.
    private static func family(of series: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where series.hasSuffix(suffix) {
            let base = String(series.dropLast(suffix.count))
            if catalogue.contains(where: { $0.name == base && $0.kind == .histogram }) { return base }
        }
        return series
    }
}
