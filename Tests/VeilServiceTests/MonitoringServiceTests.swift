import Foundation
import Logging
import Testing
import VeilLearning
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// The dashboard's HTTP side, the webhooks and `veil report`, against real federations over
/// loopback (`Specs/wire.md` §9.2–§9.5).
@Suite(.serialized) struct MonitoringServiceTests {
    let token = String(repeating: "t0k3n", count: 8)

    func federation(clients: Int = 3, rounds: Int = 3, _ body: (inout NetworkSimulation) throws -> Void = { _ in })
        throws -> (NetworkSimulation, URL)
    {
        let directory = try RepositoryPaths.temporaryDirectory("veil-monitoring")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = rounds
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 20)
        try body(&network)
        return (network, directory)
    }

    /// Starts the federation with the dashboard on a free port, kept up `hold` after its end.
    func start(_ network: NetworkSimulation, token: String?, hold: Duration) async throws -> (
        port: Int, run: Task<FederationSummary, any Error>
    ) {
        var network = network
        network.serve.metricsPort = 0
        let (ports, continuation) = AsyncStream.makeStream(of: Int?.self)
        let started = network
        let run = Task {
            defer { continuation.finish() }
            return try await started.run(
                logger: quietLogger(), dashboardToken: token, holdAfterFederation: hold,
                ready: { continuation.yield($0.metricsPort) })
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() ?? nil else {
            _ = try await run.value
            throw ConfigurationError("the dashboard did not start")
        }
        return (port, run)
    }

    func snapshot(_ port: Int) throws -> MonitoringSnapshot? {
        let answer = LoopbackHTTP.get(port: port, "/api/snapshot", headers: ["Authorization": "Bearer \(token)"])
        guard answer.status == 200 else { return nil }
        return try JSONDecoder().decode(MonitoringSnapshot.self, from: Data(answer.body.utf8))
    }

    @Test func theDashboardsDataNeedItsBearerToken() async throws {
        let (network, directory) = try federation()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (port, run) = try await start(network, token: token, hold: .seconds(120))
        defer { run.cancel() }
        #expect(await eventually(timeout: 60) { (try? snapshot(port))??.federation.roundsCompleted == 3 })
        let finished = try #require(try snapshot(port))
        // Everything the page draws is there: three completed rounds with their stages, each
        // participant with its own resource report, the coordinator's own readings.
        #expect(finished.rounds.filter { $0.outcome == "completed" }.count == 3)
        #expect(finished.rounds.allSatisfy { $0.stageSeconds.keys.contains("R2MaskedInputCollection") })
        #expect(finished.participants.map(\.id) == ["participant-1", "participant-2", "participant-3"])
        #expect(finished.participants.allSatisfy { ($0.resources?.round ?? 0) >= 1 && $0.completed >= 1 })
        #expect(finished.coordinator.map { $0.residentBytes > 0 } == true && !finished.live == false)

        let page = LoopbackHTTP.exchange(port: port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(
            page.hasPrefix("HTTP/1.1 200")
                && page.contains(#"<script id="veil-snapshot" type="application/json"></script>"#))
        #expect(page.contains("Content-Security-Policy: default-src 'none'") && !page.contains(token))
        for headers in [
            [:], ["Authorization": "Bearer wrong"], ["Authorization": "Bearer \(token)x"],
            ["Authorization": "Bearer \(token.dropLast())"], ["Authorization": "Basic \(token)"],
            ["Authorization": token],
        ] {
            for path in ["/api/snapshot", "/api/events"] {
                let refused = LoopbackHTTP.get(port: port, path, headers: headers)
                #expect(refused.status == 401 && refused.body.contains("bearer token"), "\(path) \(headers)")
                #expect(!refused.body.contains("rounds"))
            }
        }
        #expect(
            LoopbackHTTP.get(port: port, "/api/snapshot", headers: ["Authorization": "bearer \(token)"]).status == 200)
        #expect(LoopbackHTTP.get(port: port, "/api/snapshot", method: "POST").status == 405)
        #expect(LoopbackHTTP.get(port: port, "/api/other", headers: ["Authorization": "Bearer \(token)"]).status == 404)
        // The live stream: a snapshot event at once.
        let stream = LoopbackHTTP.exchange(
            port: port,
            "GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\n\r\n", until: "\n\n", timeout: 20)
        #expect(stream.contains("Content-Type: text/event-stream") && stream.contains("event: snapshot\ndata: {"))
        // /metrics stays open to the scraper, with the participants' reported resources.
        let metrics = LoopbackHTTP.get(port: port, "/metrics")
        #expect(
            metrics.status == 200
                && metrics.body.contains(#"veil_participant_cpu_fraction{participant="participant-1"}"#))
        #expect(
            metrics.body.contains("veil_coordinator_resident_bytes ")
                && metrics.body.contains("# TYPE veil_alerts_firing gauge"))
        let lint = try await PromTool.checkMetrics(metrics.body)
        #expect(lint == nil || lint == "", "promtool check metrics: \(lint ?? "")")
    }

    /// The finding (helper-40): connections that never finished a request stayed open for
    /// ever, until the process ran out of descriptors and crashed. Now a request must arrive
    /// within 10 s, and at most 128 connections are open at once (the rest are closed at once).
    @Test func idleConnectionsAreClosedAndTheirNumberIsCapped() async throws {
        let (network, directory) = try federation(rounds: 1)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (port, run) = try await start(network, token: token, hold: .seconds(120))
        defer { run.cancel() }
        let idle = (0..<MonitoringServer.maxConnections).map { _ in LoopbackHTTP.Idle(port: port) }
        #expect(idle.allSatisfy { $0.connected })
        try await Task.sleep(for: .milliseconds(500))
        // One more is closed at once: it gets no answer.
        #expect(LoopbackHTTP.get(port: port, "/healthz").status == 0)
        // Within the request timeout every idle one is closed, and the port answers again.
        #expect(await eventually(timeout: 30) { idle.allSatisfy { $0.closedByPeer() } })
        #expect(await eventually(timeout: 10) { LoopbackHTTP.get(port: port, "/healthz").body == "ok\n" })
        for connection in idle { connection.close() }
    }

    /// The finding (helper-41): `veil simulate --dashboard-port` on a port already taken waited
    /// for ever, silently. It now fails, saying why.
    @Test func simulateSaysSoWhenItsDashboardPortIsTaken() async throws {
        let holder = try LoopbackHTTP.Receiver()
        defer { holder.stop() }
        let run = try await VeilProcess.run([
            "simulate", "--rounds", "1", "--clients", "3", "--dashboard-port", "\(holder.port)",
        ])
        #expect(run.status != 0 && run.stderr.contains("Address already in use"), "\(run.stderr)")
    }

    @Test func withoutATokenTheDashboardsDataAreRefusedToEveryone() async throws {
        let (network, directory) = try federation(rounds: 1)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (port, run) = try await start(network, token: nil, hold: .seconds(120))
        defer { run.cancel() }
        let refused = LoopbackHTTP.get(port: port, "/api/snapshot", headers: ["Authorization": "Bearer \(token)"])
        #expect(refused.status == 401 && refused.body.contains("monitoring.token_file"))
        #expect(
            LoopbackHTTP.get(port: port, "/").status == 200 && LoopbackHTTP.get(port: port, "/healthz").body == "ok\n")
    }

    /// A dropout in round 2 makes a `dropout_spike` rule fire and round 3 resolve it: each
    /// webhook gets the firing once and the resolution once, while a receiver that never
    /// answers neither delays the rounds nor the other receiver.
    @Test func alertsReachEachWebhookOnceWhenTheyFireAndOnceWhenTheyResolve() async throws {
        let good = try LoopbackHTTP.Receiver()
        let dead = try LoopbackHTTP.Receiver(hang: true)
        defer {
            good.stop()
            dead.stop()
        }
        // Participant 2 goes silent in round 2 and leaves; the other four go on.
        let (network, directory) = try federation(clients: 5, rounds: 4) { network in
            network.serve.minParticipants = 4
            network.serve.cohortSize = 5
            network.failures = [1: (round: 2, messages: 1)]
            var monitoring = ServiceMonitoring()
            monitoring.alerts = [
                AlertRule(name: "dropouts", detector: .dropoutSpike, threshold: 0.1, window: 1, severity: .critical)
            ]
            var hanging = ServiceMonitoring.Webhook(url: "http://127.0.0.1:\(dead.port)/hook")
            hanging.timeoutSeconds = 3
            hanging.retries = 1
            monitoring.webhooks = [
                hanging, ServiceMonitoring.Webhook(url: "http://127.0.0.1:\(good.port)/veil?key=s3cret"),
            ]
            network.serve.monitoring = monitoring
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 4)
        // The rounds did not wait for the receiver that never answers (3 s per attempt).
        #expect(summary.rounds.allSatisfy { $0.seconds < 3 }, "\(summary.rounds.map(\.seconds))")
        let posted = try good.received.map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(posted.map { $0["status"] as? String } == ["firing", "resolved"], "\(good.received)")
        let alerts = posted.compactMap { $0["alert"] as? [String: Any] }
        #expect(alerts.map { $0["id"] as? String } == ["dropouts|", "dropouts|"])
        #expect(alerts.first?["since_round"] as? Int == 2 && alerts.first?["severity"] as? String == "critical")
        #expect(alerts.last?["resolved_round"] as? Int == 3)
        #expect(Set(posted.compactMap { $0["notification"] as? String }).count == 2)
        #expect(posted.allSatisfy { $0["federation"] as? String == "veil" })
        #expect(!dead.received.isEmpty)
    }

    @Test func theReportIsWrittenFromTheStoreOfAFinishedFederation() async throws {
        let (network, directory) = try federation(clients: 5, rounds: 3) { network in
            network.serve.minParticipants = 4
            network.serve.cohortSize = 5
            network.failures = [2: (round: 2, messages: 1)]
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try await network.run(logger: quietLogger())
        let serve = directory.appendingPathComponent("serve.json")
        try Data(
            """
            {"federation": "veil", "state": "coordinator.sqlite", "rounds": 3, "cohort_size": 5, "min_participants": 4,
             "tls": {"ca": "ca.cert.pem", "certificate": "coordinator.cert.pem", "key": "coordinator.key.pem",
                     "signing_key": "coordinator.signing.key"}}
            """.utf8
        ).write(to: serve)
        let out = directory.appendingPathComponent("report")
        let written = try await VeilProcess.run(["report", "--config", serve.path, "--out", out.path])
        #expect(written.status == 0, "\(written.stderr)")
        let names = ["report.html", "federation.json", "rounds.csv", "participants.csv", "alerts.csv"]
        #expect(
            written.stdout.split(separator: "\n").map { URL(fileURLWithPath: String($0)).lastPathComponent } == names)
        let snapshot = try JSONDecoder().decode(
            MonitoringSnapshot.self, from: Data(contentsOf: out.appendingPathComponent("federation.json")))
        #expect(!snapshot.live && snapshot.federation.roundsCompleted == 3)
        #expect(snapshot.participants.count == 5 && snapshot.participants.allSatisfy { !$0.connected })
        let dropped = snapshot.rounds.first { $0.number == 2 }?.dropouts ?? []
        #expect(dropped.reduce(0) { $0 + $1.count } == 1, "\(snapshot.rounds)")
        let rounds = try String(contentsOf: out.appendingPathComponent("rounds.csv"), encoding: .utf8)
            .split(separator: "\r\n")
        #expect(rounds.first?.hasPrefix("round,attempt,outcome,") == true && rounds.count == snapshot.rounds.count + 1)
        let participants = try String(contentsOf: out.appendingPathComponent("participants.csv"), encoding: .utf8)
        #expect(participants.split(separator: "\r\n").count == 6 && participants.contains("participant-3,false,"))
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        #expect(html.contains(#"<script id="veil-snapshot" type="application/json">{"#))
        // A second run replaces the files; a store that does not exist is refused by name.
        #expect(try await VeilProcess.run(["report", "--config", serve.path, "--out", out.path]).status == 0)
        // A store edited by hand (helper-40): an unreadable record is reported from the rounds
        // table and counted, an absurd one is read within bounds — no crash, no 64 MB reason.
        let store = try CoordinatorStore(path: directory.appendingPathComponent("coordinator.sqlite").path)
        let huge =
            #"{"number":3,"attempt":1,"outcome":"completed","started":0,"finished":1,"cohort":-5,"survivors":4,"seconds":1e300,"bytes_in":0,"bytes_out":0,"stage_seconds":{},"declines":{},"dropouts":[{"protocol_round":"R1","reason":"x","count":9223372036854775807},{"protocol_round":"R2","reason":"y","count":9223372036854775807}],"abort_reason":"\#(String(repeating: "z", count: 100_000))"}"#
        try store.database.write { db in
            try db.execute("UPDATE round_health SET health = ? WHERE number = 1", [Data("{not json".utf8)])
            try db.execute("UPDATE round_health SET health = ? WHERE number = 3", [Data(huge.utf8)])
            try db.execute("UPDATE meta SET value = '[1, 2' WHERE key = 'alert_book'")
        }
        try store.close()
        let edited = try await VeilProcess.run(["report", "--config", serve.path, "--out", out.path])
        #expect(edited.status == 0 && edited.stderr.contains("1 attempt record(s)"), "\(edited.stderr)")
        #expect(edited.stderr.contains("alert book could not be read"), "\(edited.stderr)")
        let read = try JSONDecoder().decode(
            MonitoringSnapshot.self, from: Data(contentsOf: out.appendingPathComponent("federation.json")))
        let third = try #require(read.rounds.first { $0.number == 3 })
        #expect(third.cohort == 0 && third.droppedCount == 2_000_000 && third.seconds == 1e7)
        #expect(third.abortReason?.count == 500)
        #expect(read.rounds.first { $0.number == 1 }?.outcome == "completed")
        try Data(
            #"{"state": "absent.sqlite", "tls": {"ca": "a", "certificate": "b", "key": "c", "signing_key": "d"}}"#.utf8
        )
        .write(to: serve)
        let missing = try await VeilProcess.run(["report", "--config", serve.path, "--out", out.path])
        #expect(missing.status != 0 && missing.stderr.contains("no store at"), "\(missing.stderr)")
    }
}

/// Prometheus' own linter on an exposition: nil when promtool is not installed (CI installs
/// it, and sets VEIL_REQUIRE_TOOLS so that its absence fails the test instead).
enum PromTool {
    static func checkMetrics(_ text: String) async throws -> String? {
        let path = "/usr/bin/promtool"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            if ProcessInfo.processInfo.environment["VEIL_REQUIRE_TOOLS"] == "1" { return "promtool is not installed" }
            return nil
        }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("veil-metrics-\(UUID()).txt")
        try Data(text.utf8).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }
        let output = try await ProcessRunner.run("/bin/sh", ["-c", "\(path) check metrics < \(input.path) 2>&1"])
        return output.status == 0 ? "" : output.stdout + output.stderr
    }
}
