import Foundation
import Testing
import VeilLearning
import VeilWire

@testable import VeilService

/// The detectors, the alert book, the monitoring configuration and the resource reports, on
/// recorded series: each detector on one that must fire and one that must not.
struct MonitoringTests {
    /// A series of completed attempts, one per value, with `set` applied to each.
    func series(_ count: Int, _ set: (Int, inout RoundHealth) -> Void) -> [RoundHealth] {
        (0..<count).map { i in
            var health = RoundHealth(
                number: i + 1, attempt: 1, outcome: "completed", started: Double(i), finished: Double(i) + 1,
                cohort: 10, survivors: 10, seconds: 1)
            set(i, &health)
            return health
        }
    }

    func fires(
        _ detector: AnomalyDetector.Kind, threshold: Double? = nil, window: Int? = nil, _ input: AnomalyDetector.Input
    )
        -> [AnomalyDetector.Finding]
    {
        AnomalyDetector.findings(
            AlertRule(name: "r", detector: detector, threshold: threshold, window: window), in: input)
    }

    @Test func accuracyDropFiresOnARegressionBeyondTheToleranceOnly() {
        let dropped = series(4) { i, h in h.accuracy = [0.5, 0.6, 0.7, 0.62][i] }
        let found = fires(.accuracyDrop, AnomalyDetector.Input(rounds: dropped))
        #expect(found.count == 1 && abs(found[0].value - 0.08) < 1e-12 && found[0].subject == "")
        let noise = series(4) { i, h in h.accuracy = [0.5, 0.6, 0.7, 0.68][i] }
        #expect(fires(.accuracyDrop, AnomalyDetector.Input(rounds: noise)).isEmpty)
        // The best outside the window does not count: 0.9 was six rounds ago.
        let old = series(7) { i, h in h.accuracy = [0.9, 0.6, 0.6, 0.6, 0.6, 0.6, 0.58][i] }
        #expect(fires(.accuracyDrop, window: 5, AnomalyDetector.Input(rounds: old)).isEmpty)
        // Unevaluated and aborted attempts (no accuracy) are skipped, not read as 0.
        var gaps = series(3) { i, h in h.accuracy = [0.7, nil, 0.69][i] }
        gaps[1].outcome = "aborted"
        #expect(fires(.accuracyDrop, AnomalyDetector.Input(rounds: gaps)).isEmpty)
    }

    @Test func lossRiseIsRelativeToTheLowestInTheWindow() {
        let rising = series(4) { i, h in h.loss = [1.0, 0.8, 0.6, 0.9][i] }
        #expect(
            fires(.lossRise, AnomalyDetector.Input(rounds: rising)).map(\.value).first.map { abs($0 - 0.5) < 1e-12 }
                == true)
        let steady = series(4) { i, h in h.loss = [1.0, 0.8, 0.6, 0.7][i] }
        #expect(fires(.lossRise, AnomalyDetector.Input(rounds: steady)).isEmpty)
    }

    @Test func dropoutSpikeAveragesTheWindow() {
        let spike = series(3) { i, h in
            for _ in 0..<[0, 0, 4][i] { h.noteDropout(protocolRound: "R2MaskedInputCollection", reason: "noResponse") }
        }
        #expect(fires(.dropoutSpike, AnomalyDetector.Input(rounds: spike)).first?.value == 0.4)
        // Over a window of three the mean is 0.133: below 0.3.
        #expect(fires(.dropoutSpike, window: 3, AnomalyDetector.Input(rounds: spike)).isEmpty)
        let calm = series(3) { _, h in h.noteDropout(protocolRound: "R1ShareKeys", reason: "noResponse") }
        #expect(fires(.dropoutSpike, AnomalyDetector.Input(rounds: calm)).isEmpty)
    }

    @Test func abortSpikeCountsAbortsNotInterruptions() {
        let aborting = series(10) { i, h in if [2, 5, 8].contains(i) { h.outcome = "aborted" } }
        #expect(fires(.abortSpike, AnomalyDetector.Input(rounds: aborting)).first?.value == 3)
        let stopped = series(10) { i, h in
            h.outcome = [2, 5].contains(i) ? "aborted" : i == 8 ? "interrupted" : h.outcome
        }
        #expect(fires(.abortSpike, AnomalyDetector.Input(rounds: stopped)).isEmpty)
    }

    @Test func latencyOutlierNeedsThreeEarlierAttemptsAndAClearOutlier() {
        let slow = series(5) { i, h in h.seconds = [1, 1.1, 0.9, 1, 5][i] }
        #expect(fires(.latencyOutlier, AnomalyDetector.Input(rounds: slow)).first?.value == 5)
        let usual = series(5) { i, h in h.seconds = [1, 1.1, 0.9, 1, 2.5][i] }
        #expect(fires(.latencyOutlier, AnomalyDetector.Input(rounds: usual)).isEmpty)
        let young = series(3) { i, h in h.seconds = [1, 1, 50][i] }
        #expect(fires(.latencyOutlier, AnomalyDetector.Input(rounds: young)).isEmpty)
    }

    @Test func participantFailingNamesEachFailingParticipantOnItsRecentInvitations() {
        let invitations: [String: [ParticipationOutcome]] = [
            "flaky": [.contributed, .dropped, .faulted, .contributed, .dropped],
            "recovered": [
                .dropped, .dropped, .dropped, .contributed, .contributed, .contributed, .contributed, .contributed,
            ],
            "declining": [.declined, .declined, .declined, .excused, .declined],
        ]
        let found = fires(.participantFailing, AnomalyDetector.Input(rounds: [], invitations: invitations))
        #expect(found.map(\.subject) == ["flaky"] && found[0].value == 3)
    }

    @Test func updateNormJumpComparesWithTheMedianOfTheWindow() {
        let jump = series(5) { i, h in h.updateNorm = [1, 1.2, 0.8, 1, 6][i] }
        #expect(fires(.updateNormJump, AnomalyDetector.Input(rounds: jump)).first?.value == 6)
        let fine = series(5) { i, h in h.updateNorm = [1, 1.2, 0.8, 1, 4.9][i] }
        #expect(fires(.updateNormJump, AnomalyDetector.Input(rounds: fine)).isEmpty)
    }

    @Test func budgetExhaustionDefaultsToThePrivacyPlansAlertFraction() {
        let spent = ["a": 1.7, "b": 1.5, "c": 0.2]
        let atPlan = AnomalyDetector.Input(rounds: [], epsilon: spent, budget: 2, alertFraction: 0.75)
        #expect(fires(.budgetExhaustion, atPlan).map(\.subject) == ["a", "b"])
        let strict = AnomalyDetector.Input(rounds: [], epsilon: spent, budget: 2, alertFraction: 0.9)
        #expect(fires(.budgetExhaustion, strict).isEmpty)
        #expect(fires(.budgetExhaustion, threshold: 0.1, strict).count == 3)
        // Without privacy there is no budget to exhaust.
        #expect(fires(.budgetExhaustion, AnomalyDetector.Input(rounds: [], epsilon: spent)).isEmpty)
    }

    @Test func anAlertFiresAfterItsDurationIsNotifiedOnceAndResolvesOnce() throws {
        let rule = AlertRule(name: "drops", detector: .dropoutSpike, forRounds: 2, severity: .critical)
        let finding = AnomalyDetector.Finding(subject: "", value: 0.5, summary: "half dropped")
        var book = AlertBook()
        #expect(book.evaluate([(rule, [finding])], round: 1, at: 10).isEmpty)  // pending
        #expect(book.open["drops|"]?.state == .pending)
        let fired = book.evaluate([(rule, [finding])], round: 2, at: 20)
        #expect(fired.map(\.alert.state) == [.firing] && fired[0].alert.sinceRound == 2)
        #expect(fired[0].alert.severity == "critical")
        // Still found: no second notification (deduplicated), the value follows.
        var again = finding
        again.value = 0.6
        #expect(book.evaluate([(rule, [again])], round: 3, at: 30).isEmpty)
        #expect(book.firing.map(\.value) == [0.6])
        // The book survives a restart as the store keeps it.
        book = try JSONDecoder().decode(AlertBook.self, from: JSONEncoder().encode(book))
        let resolved = book.evaluate([(rule, [])], round: 4, at: 40)
        #expect(resolved.map(\.alert.state) == [.resolved] && resolved[0].alert.resolvedRound == 4)
        #expect(book.evaluate([(rule, [])], round: 5, at: 50).isEmpty)
        #expect(book.firing.isEmpty && book.past.count == 1)
        // A pending alert that stops being found is forgotten, never notified.
        #expect(book.evaluate([(rule, [finding])], round: 6, at: 60).isEmpty)
        #expect(book.evaluate([(rule, [])], round: 7, at: 70).isEmpty && book.open.isEmpty)
    }

    @Test func eachSubjectIsItsOwnAlert() {
        let rule = AlertRule(name: "budget", detector: .budgetExhaustion)
        func found(_ ids: [String]) -> [AnomalyDetector.Finding] {
            ids.map { AnomalyDetector.Finding(subject: $0, value: 0.9, summary: $0) }
        }
        var book = AlertBook()
        #expect(book.evaluate([(rule, found(["a"]))], round: 1, at: 1).map(\.alert.id) == ["budget|a"])
        #expect(book.evaluate([(rule, found(["a", "b"]))], round: 2, at: 2).map(\.alert.id) == ["budget|b"])
        #expect(book.firing.map(\.id) == ["budget|a", "budget|b"])
        // A rule removed from the configuration leaves nothing open.
        #expect(book.evaluate([], round: 3, at: 3).isEmpty && book.open.isEmpty)
    }

    func monitoring(_ json: String) throws -> ServiceMonitoring {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let decoded = try decoder.decode(ServiceMonitoring.self, from: Data(json.utf8))
        try decoded.validate()
        return decoded
    }

    func refusal(_ json: String) -> String {
        do {
            _ = try monitoring(json)
            return "accepted"
        } catch { return "\(error)" }
    }

    @Test func theMonitoringSectionIsStrict() throws {
        let parsed = try monitoring(
            #"{"alerts": [{"name": "slow", "detector": "latency_outlier", "threshold": 4, "window": 20, "for_rounds": 2, "severity": "critical"}], "webhooks": [{"url": "https://hooks.example/veil", "timeout_seconds": 2, "retries": 1}]}"#
        )
        #expect(
            parsed.alerts == [
                AlertRule(
                    name: "slow", detector: .latencyOutlier, threshold: 4, window: 20, forRounds: 2, severity: .critical
                )
            ])
        #expect(parsed.webhooks.first?.retries == 1)
        #expect(try monitoring("{}").alerts == AlertRule.defaults)
        #expect(AlertRule.defaults.count == AnomalyDetector.Kind.allCases.count)
        #expect(refusal(#"{"alert": []}"#).contains(#"unknown key "alert""#))
        #expect(refusal(#"{"alerts": [{"name": "x", "detector": "latency"}]}"#).contains("latency_outlier"))
        #expect(
            refusal(#"{"alerts": [{"name": "x", "detector": "abort_spike", "threshold": 0}]}"#).contains("threshold"))
        #expect(
            refusal(#"{"alerts": [{"name": "x", "detector": "abort_spike", "severity": "page"}]}"#).contains("critical")
        )
        #expect(refusal(#"{"alerts": [{"name": "Bad Name", "detector": "abort_spike"}]}"#).contains("name"))
        #expect(
            refusal(#"{"alerts": [{"name": "a", "detector": "abort_spike"}, {"name": "a", "detector": "loss_rise"}]}"#)
                .contains("used by another rule"))
        #expect(
            refusal(#"{"alerts": [{"name": "x", "detector": "abort_spike", "for_rounds": 0}]}"#).contains("for_rounds"))
        #expect(refusal(#"{"webhooks": [{"url": "ftp://x/y"}]}"#).contains("url"))
        #expect(refusal(#"{"webhooks": [{"url": "http://x/y", "timeout_seconds": 0}]}"#).contains("timeout_seconds"))
        #expect(refusal(#"{"webhooks": [{"url": "http://x/y", "retry": 2}]}"#).contains(#"unknown key "retry""#))
    }

    @Test func theDashboardTokenMustBeLongAndPrintable() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("veil-token-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func load(_ text: String) -> String {
            let file = directory.appendingPathComponent("token")
            try? Data(text.utf8).write(to: file)
            try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file.path)
            var m = ServiceMonitoring()
            m.tokenFile = file.path
            do { return try m.loadToken() ?? "none" } catch { return "refused: \(error)" }
        }
        let good = String(repeating: "k", count: 40)
        #expect(load(good + "\n") == good)
        #expect(load("short").hasPrefix("refused"))
        // A token others can read is no secret.
        let shared = directory.appendingPathComponent("shared")
        try Data(good.utf8).write(to: shared)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: shared.path)
        var readable = ServiceMonitoring()
        readable.tokenFile = shared.path
        #expect(throws: ConfigurationError.self) { try readable.loadToken() }
        #expect(load(String(repeating: "k", count: 20) + " " + String(repeating: "k", count: 20)).hasPrefix("refused"))
        var missing = ServiceMonitoring()
        missing.tokenFile = directory.appendingPathComponent("absent").path
        #expect(throws: ConfigurationError.self) { try missing.loadToken() }
    }

    @Test func aResourceReportOutOfBoundsIsRefusedWhole() throws {
        let good = Veil_V1_ResourceReport.with {
            $0.round = 3
            $0.cpuFraction = 0.5
            $0.memoryBytes = 1 << 30
            $0.networkBitsPerSecond = 1e6
            $0.battery = -1
            $0.gpuUtilisation = 0.25
        }
        let usage = try ResourceUsage(validating: good, at: 5)
        #expect(usage.round == 3 && usage.gpuUtilisation == 0.25 && usage.reported == 5)
        let bad: [(String, (inout Veil_V1_ResourceReport) -> Void)] = [
            ("round", { $0.round = 0 }), ("cpu_fraction", { $0.cpuFraction = .nan }),
            ("cpu_fraction", { $0.cpuFraction = -0.1 }), ("memory_bytes", { $0.memoryBytes = .max }),
            ("network_bits_per_second", { $0.networkBitsPerSecond = .infinity }),
            ("battery", { $0.battery = 1.5 }), ("battery", { $0.battery = -0.5 }),
            ("gpu_utilisation", { $0.gpuUtilisation = -2 }),
        ]
        for (field, spoil) in bad {
            var report = good
            spoil(&report)
            #expect(throws: ResourceUsage.Invalid.self, "\(field)") { try ResourceUsage(validating: report, at: 0) }
            #expect((try? ResourceUsage(validating: report, at: 0)) == nil)
            do { _ = try ResourceUsage(validating: report, at: 0) } catch { #expect("\(error)".contains(field)) }
        }
    }

    @Test func processReadingsComeFromTheKernelOrSayTheyAreMissing() throws {
        #expect(ProcessResources.residentBytes() > 1 << 20)
        #expect(ProcessResources.cpuSeconds() > 0)
        // A fake sysfs: a discharging battery at 42 %, a GPU at 17 %, and files to ignore.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("veil-sys-\(UUID())")
        defer { try? FileManager.default.removeItem(at: root) }
        func write(_ path: String, _ text: String) throws {
            let file = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
        }
        try write("power/AC/type", "Mains\n")
        try write("power/BAT0/type", "Battery\n")
        try write("power/BAT0/status", "Discharging\n")
        try write("power/BAT0/capacity", "42\n")
        try write("drm/card0/device/gpu_busy_percent", "17\n")
        try write("drm/card1/device/gpu_busy_percent", "banana\n")
        #expect(ProcessResources.battery(root: root.appendingPathComponent("power").path) == 0.42)
        #expect(ProcessResources.gpuUtilisation(root: root.appendingPathComponent("drm").path) == 0.17)
        try write("power/BAT0/status", "Charging\n")
        #expect(ProcessResources.battery(root: root.appendingPathComponent("power").path) == -1)
        #expect(ProcessResources.gpuUtilisation(root: root.appendingPathComponent("absent").path) == -1)
    }

    @Test func reportCellsAreQuotedAndNeverFormulas() {
        #expect(FederationReport.csv([["a,b", "say \"hi\"", "plain"]]) == "\"a,b\",\"say \"\"hi\"\"\",plain\r\n")
        #expect(FederationReport.text("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")")
        #expect(FederationReport.text("-1") == "'-1" && FederationReport.text("p-1") == "p-1")
        #expect(FederationReport.number(nil) == "" && FederationReport.number(.nan) == "")
    }

    @Test func aReportEmbedsItsSnapshotWithoutAnyLessThanSign() throws {
        let hostile = #"{"summary":"</script><!--<script>alert(1)</script>"}"#
        let page = String(decoding: try DashboardPage.report(embedding: Data(hostile.utf8)), as: UTF8.self)
        let start = try #require(page.range(of: #"<script id="veil-snapshot" type="application/json">"#))
        let body = page[start.upperBound...].prefix { $0 != "<" }
        #expect(body.contains(#"\u003c/script>\u003c!--\u003cscript>"#))
        // The embedded text is still the same JSON.
        let decoded = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String]
        #expect(decoded?["summary"] == "</script><!--<script>alert(1)</script>")
    }
}
