import Foundation
import Testing
import VeilLearning
import VeilTestSupport

@testable import VeilService

/// `veil serve` and separate `veil join` processes: a federation that survives a participant
/// and the coordinator being killed with SIGKILL.
@Suite(.serialized) struct ProcessFederationTests {
    func waitUntil(_ timeout: Double, _ condition: () -> Bool) async -> Bool {
        await eventually(timeout: timeout, condition)
    }

    func completedRounds(_ output: String) -> [Int] {
        output.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count > 2, parts[0] == "round", parts[2] == "completed" else { return nil }
            return Int(parts[1])
        }
    }

    /// On either store: with PostgreSQL, the SIGKILLed coordinator's successor resumes from
    /// the round the database committed.
    @Test(arguments: StoreKind.allCases)
    func aFederationOfProcessesSurvivesKilledParticipantsAndARestartedCoordinator(kind: StoreKind) async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-processes")
        defer { try? FileManager.default.removeItem(at: directory) }
        let location: StoreLocation
        var remove: (@Sendable () async -> Void)? = nil
        switch kind {
        case .sqlite:
            location = .sqlite(path: directory.appendingPathComponent("state.sqlite").path)
        case .postgres:
            guard let made = try await kind.make("processes") else { return }
            (location, remove) = made
        }
        defer { if let remove { Task { await remove() } } }
        let state = try kind.serveEntry(location)
        let veil = try VeilProcess.executable
        let ca = try await enrol(in: directory, participants: 4)
        let caFiles = try FileManager.default.contentsOfDirectory(atPath: ca)
        #expect(
            caFiles.filter { $0.hasSuffix(".key.pem") } == ["ca.key.pem"]
                && !caFiles.contains { $0.hasSuffix(".signing.key") })
        let rounds = 60
        func writeServe(port: Int) throws {
            try """
            {"tls": {"ca": "coordinator/ca.cert.pem", "certificate": "coordinator/coordinator.cert.pem",
                     "key": "coordinator/coordinator.key.pem", "signing_key": "coordinator/coordinator.signing.key"},
             "port": \(port), "metrics_port": null, "rounds": \(rounds), "min_participants": 3, "cohort_size": 4,
             \(state), "round_deadline_seconds": 3, "training_deadline_seconds": 10}
            """.write(to: directory.appendingPathComponent("serve.json"), atomically: true, encoding: .utf8)
        }
        // The first coordinator picks a free port and says which; its successor reuses it, as
        // a restarted service would, so that the participants find it again.
        try writeServe(port: 0)
        let first = try ProcessRunner.start(veil, ["serve", "--config", "serve.json"], in: directory, name: "serve1")
        defer { first.kill() }
        #expect(await waitUntil(60) { listeningPort(first) != nil }, "\(first.stderr)")
        let port = try #require(listeningPort(first))
        try writeServe(port: port)
        for i in 1...4 {
            try """
            {"port": \(port), "tls": {"ca": "p\(i)/ca.cert.pem", "certificate": "p\(i)/p\(i).cert.pem",
             "key": "p\(i)/p\(i).key.pem", "signing_key": "p\(i)/p\(i).signing.key"}, "clients": 4, "index": \(i - 1),
             "partition": "iid"}
            """.write(to: directory.appendingPathComponent("join\(i).json"), atomically: true, encoding: .utf8)
        }

        let participants = try (1...4).map {
            try ProcessRunner.start(veil, ["join", "--config", "join\($0).json"], in: directory, name: "join\($0)")
        }
        defer { participants.forEach { $0.kill() } }

        // A participant dies for good after a few rounds: the federation goes on with three.
        #expect(await waitUntil(60) { completedRounds(first.stdout).count >= 5 }, "\(first.stderr)")
        participants[3].kill()
        // The coordinator dies mid-federation…
        #expect(await waitUntil(60) { completedRounds(first.stdout).count >= 15 }, "\(first.stderr)")
        first.kill()
        let before = completedRounds(first.stdout)
        #expect(before.count < rounds)
        // A round is committed before its line is printed, so SIGKILL between the two leaves a
        // committed round unprinted: the store, not stdout, says where the federation stands.
        let committed = try #require(
            try CoordinatorStore(reading: location, driver: StoreKind.driver).latestCheckpoint()?.round)
        #expect(committed >= (before.last ?? 0) && committed <= (before.last ?? 0) + 1, "committed \(committed)")

        // …and a new one resumes from the last completed round.
        let second = try ProcessRunner.start(veil, ["serve", "--config", "serve.json"], in: directory, name: "serve2")
        defer { second.kill() }
        #expect(await second.wait(timeout: 120), "\(second.stderr)")
        #expect(second.process.terminationStatus == 0, "\(second.stderr)")
        let after = completedRounds(second.stdout)
        #expect(after.first == committed + 1, "resumed at \(after.first ?? -1) after \(committed)")
        #expect(after.last == rounds)
        #expect(second.stdout.contains("federation finished: \(rounds) rounds completed"))
        for p in participants.prefix(3) {
            #expect(await p.wait(timeout: 30))
            #expect(p.stdout.contains("all rounds completed"), "\(p.stderr.suffix(2000))")
        }
        let store = try CoordinatorStore(reading: location, driver: StoreKind.driver)
        let attempts = try store.rounds()
        #expect(Set(attempts.filter { $0.outcome == "completed" }.map(\.number)) == Set(1...rounds))
        #expect(try store.latestCheckpoint()?.round == rounds)
        // Rounds after the participant died had three survivors, at the participants' t = 3.
        #expect(attempts.last?.survivors == 3)
        #expect(second.stdout.contains("survivors    3/3    t 3"), "\(second.stdout.suffix(500))")
    }

    /// The README's flow: each holder makes its keys and a request in its own folder (the
    /// coordinator's in `coordinator/`, participant i's in `pi/`); the CA signs the requests and
    /// never sees a private key. Returns the CA's folder.
    func enrol(in directory: URL, participants: Int) async throws -> String {
        let ca = directory.appendingPathComponent("ca").path
        #expect(try await VeilProcess.run(["ca", "init", "--dir", ca]).status == 0)
        let holders = [("coordinator", "coordinator")] + (1...participants).map { ("p\($0)", "participant") }
        for (id, role) in holders {
            let folder = directory.appendingPathComponent(id).path
            let request = try await VeilProcess.run(["ca", "request", "--id", id, "--role", role, "--out", folder])
            #expect(request.status == 0, "\(request.stderr)")
            let signed = try await VeilProcess.run([
                "ca", "sign", "--dir", ca, "--request", "\(folder)/\(id).csr.pem", "--role", role, "--out",
                "\(folder)/\(id).cert.pem",
            ])
            #expect(signed.status == 0 && signed.stdout.hasPrefix("signed \(role) \(id)"), "\(signed.stderr)")
            try FileManager.default.copyItem(atPath: "\(ca)/ca.cert.pem", toPath: "\(folder)/ca.cert.pem")
        }
        return ca
    }

    /// The port `veil serve` reports on stderr once it listens (it was asked for port 0).
    func listeningPort(_ serve: ProcessRunner.Background) -> Int? {
        guard let line = serve.stderr.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }),
            let port = line.dropFirst("listening on ".count).split(separator: ",").first?.split(separator: ":").last
        else { return nil }
        return Int(port)
    }

    /// SIGTERM mid-round: the round in flight is recorded as interrupted, the participants are
    /// told the federation is over and exit, the state file is closed, and the exit status is 0.
    @Test func sigtermStopsTheCoordinatorCleanlyMidRound() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-sigterm")
        defer { try? FileManager.default.removeItem(at: directory) }
        let veil = try VeilProcess.executable
        var c = VeilLearning.FederatedConfiguration()
        c.clients = 4
        let network = try NetworkSimulation(configuration: c, directory: directory)
        func tls(_ id: String) -> String {
            #""tls": {"ca": "ca.cert.pem", "certificate": "\#(id).cert.pem", "key": "\#(id).key.pem", "signing_key": "\#(id).signing.key"}"#
        }
        try """
        {\(tls("coordinator")), "port": 0, "metrics_port": null, "rounds": 500, "min_participants": 4, "cohort_size": 4,
         "state": "state.sqlite", "round_deadline_seconds": 60, "training_deadline_seconds": 60}
        """.write(to: directory.appendingPathComponent("serve.json"), atomically: true, encoding: .utf8)
        let serve = try ProcessRunner.start(veil, ["serve", "--config", "serve.json"], in: directory, name: "serve")
        defer { serve.kill() }
        #expect(await waitUntil(60) { listeningPort(serve) != nil }, "\(serve.stderr)")
        let port = try #require(listeningPort(serve))
        let participants = try network.participants.enumerated().map { i, p in
            try """
            {"port": \(port), \(tls(p.join.tls.certificate.split(separator: "/").last!.replacingOccurrences(of: ".cert.pem", with: ""))),
             "clients": 4, "index": \(i), "partition": "iid"}
            """.write(to: directory.appendingPathComponent("join\(i).json"), atomically: true, encoding: .utf8)
            return try ProcessRunner.start(
                veil, ["join", "--config", "join\(i).json"], in: directory, name: "join\(i)")
        }
        defer { participants.forEach { $0.kill() } }
        #expect(await waitUntil(120) { completedRounds(serve.stdout).count >= 2 }, "\(serve.stderr.suffix(2000))")
        // One participant freezes (its connection stays open): the round in flight waits for it.
        let frozen = participants[3].process.processIdentifier
        kill(frozen, SIGSTOP)
        defer { kill(frozen, SIGCONT) }
        let completedBefore = completedRounds(serve.stdout).count
        try await Task.sleep(for: .milliseconds(1500))
        #expect(completedRounds(serve.stdout).count <= completedBefore + 1, "a round went on without the frozen member")

        serve.signal(SIGTERM)
        #expect(await serve.wait(timeout: 30), "still running after SIGTERM: \(serve.stderr.suffix(2000))")
        guard !serve.process.isRunning else { return }
        #expect(serve.process.terminationStatus == 0, "\(serve.stderr.suffix(2000))")
        #expect(serve.stdout.contains("stopped early: the coordinator was stopped"), "\(serve.stdout.suffix(500))")
        for p in participants.prefix(3) {
            #expect(await p.wait(timeout: 30), "a participant did not hear that the federation is over")
            #expect(p.stdout.contains("the coordinator was stopped"), "\(p.stdout.suffix(500))")
        }
        // The store was closed cleanly (its write-ahead log folded in) and records the round
        // in flight as interrupted.
        let wal = directory.appendingPathComponent("state.sqlite-wal").path
        #expect(((try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0) == 0)
        let store = try CoordinatorStore(path: directory.appendingPathComponent("state.sqlite").path)
        let attempts = try store.rounds()
        #expect(attempts.last?.outcome == "interrupted", "\(attempts.suffix(3))")
        #expect(attempts.last?.abortReason == "the coordinator was stopped during the round")
        #expect(attempts.dropLast().allSatisfy { $0.outcome == "completed" })
    }
}
