import Foundation
import Testing
import VeilTestSupport

@testable import VeilService

/// Three `veil serve` processes on one PostgreSQL store (`Specs/wire.md` §6.2): one leads, two
/// wait; the participants know all three addresses.
extension ProcessFederationTests {
    /// A port nobody listens on now (the standbys listen only once they lead, so their ports
    /// are chosen here, not by them).
    func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw ConfigurationError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The leader is SIGKILLed mid-federation: a standby takes over within the lease and a
    /// third of it, resuming from the last committed round. That leader is then frozen
    /// (SIGSTOP) until the last process has taken over, and thawed: it finds itself fenced off,
    /// commits nothing, and exits 3. The federation ends with every round committed once.
    @Test func aTierOfThreeCoordinatorsSurvivesAKilledAndAFrozenLeader() async throws {
        guard let (location, remove) = try await StoreKind.postgres.make("tier") else { return }
        defer { Task { await remove() } }
        let directory = try RepositoryPaths.temporaryDirectory("veil-tier")
        defer { try? FileManager.default.removeItem(at: directory) }
        guard case .postgres(var settings) = location else { return }
        settings.leaseSeconds = 3
        let store = try StoreKind.postgres.serveEntry(.postgres(settings))
        let veil = try VeilProcess.executable
        _ = try await enrol(in: directory, participants: 4)
        let rounds = 250
        let ports = try (0..<3).map { _ in try freePort() }
        let metrics = try (0..<3).map { _ in try freePort() }
        for (i, port) in ports.enumerated() {
            try """
            {"tls": {"ca": "coordinator/ca.cert.pem", "certificate": "coordinator/coordinator.cert.pem",
                     "key": "coordinator/coordinator.key.pem", "signing_key": "coordinator/coordinator.signing.key"},
             "port": \(port), "metrics_port": \(metrics[i]), "rounds": \(rounds), "min_participants": 3, "cohort_size": 4,
             \(store), "round_deadline_seconds": 3, "training_deadline_seconds": 10}
            """.write(to: directory.appendingPathComponent("serve\(i).json"), atomically: true, encoding: .utf8)
        }
        // The first to start leads; the others, started once it does, wait.
        var tier = [try ProcessRunner.start(veil, ["serve", "--config", "serve0.json"], in: directory, name: "serve0")]
        defer { tier.forEach { $0.kill() } }
        func leads(_ i: Int, epoch: Int) -> Bool { tier[i].stderr.contains("leading under epoch \(epoch) ") }
        #expect(await waitUntil(60) { leads(0, epoch: 1) && listeningPort(tier[0]) == ports[0] }, "\(tier[0].stderr)")
        for i in 1...2 {
            tier.append(
                try ProcessRunner.start(
                    veil, ["serve", "--config", "serve\(i).json"], in: directory, name: "serve\(i)"))
        }
        // The others wait, and say for whom; neither listens.
        #expect(await waitUntil(30) { tier[1...].allSatisfy { $0.stderr.contains("standby: ") } })
        #expect(tier[1...].allSatisfy { listeningPort($0) == nil })
        // Health checks tell them apart: all are alive, only the leader is ready.
        #expect(metrics.allSatisfy { LoopbackHTTP.get(port: $0, "/healthz").status == 200 })
        #expect(metrics.map { LoopbackHTTP.get(port: $0, "/readyz").status } == [200, 503, 503])

        let failover = ports.dropFirst().map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", ")
        let participants = try (1...4).map { i in
            try """
            {"port": \(ports[0]), "failover_addresses": [\(failover)],
             "tls": {"ca": "p\(i)/ca.cert.pem", "certificate": "p\(i)/p\(i).cert.pem",
             "key": "p\(i)/p\(i).key.pem", "signing_key": "p\(i)/p\(i).signing.key"}, "clients": 4, "index": \(i - 1),
             "partition": "iid"}
            """.write(to: directory.appendingPathComponent("join\(i).json"), atomically: true, encoding: .utf8)
            return try ProcessRunner.start(
                veil, ["join", "--config", "join\(i).json"], in: directory, name: "join\(i)")
        }
        defer { participants.forEach { $0.kill() } }

        // The leader dies without a word.
        #expect(await waitUntil(60) { completedRounds(tier[0].stdout).count >= 4 }, "\(tier[0].stderr)")
        tier[0].kill()
        let killed = ContinuousClock.now
        #expect(await waitUntil(30) { leads(1, epoch: 2) || leads(2, epoch: 2) })
        let takeover = ContinuousClock.now - killed
        // The lease (3 s) runs out, and a standby asks within a third of it (and 3 s for a
        // loaded machine).
        #expect(takeover < .seconds(3 + 1 + 3), "took over after \(takeover)")
        let x = leads(1, epoch: 2) ? 1 : 2
        let y = 3 - x
        // The new leader's port now says it is ready; the last standby's still does not.
        #expect(await waitUntil(10) { LoopbackHTTP.get(port: metrics[x], "/readyz").status == 200 })
        #expect(LoopbackHTTP.get(port: metrics[y], "/readyz").status == 503)
        let committed = try #require(
            try CoordinatorStore(reading: location, driver: StoreKind.driver).latestCheckpoint()?.round)
        #expect(await waitUntil(60) { completedRounds(tier[x].stdout).count >= 2 }, "\(tier[x].stderr.suffix(2000))")
        #expect(completedRounds(tier[x].stdout).first == committed + 1, "resumed after \(committed)")

        // The new leader freezes: its lease runs out and the last process leads under epoch 3.
        kill(tier[x].process.processIdentifier, SIGSTOP)
        #expect(await waitUntil(30) { leads(y, epoch: 3) }, "\(tier[y].stderr.suffix(2000))")
        let frozenAt = completedRounds(tier[x].stdout).last ?? 0
        kill(tier[x].process.processIdentifier, SIGCONT)
        // Thawed, it is fenced off: it commits nothing more and stops.
        #expect(await tier[x].wait(timeout: 30), "the fenced leader kept running: \(tier[x].stderr.suffix(2000))")
        #expect(tier[x].process.terminationStatus == 3)
        #expect(tier[x].stderr.contains("lost the leadership"), "\(tier[x].stderr.suffix(2000))")
        #expect((completedRounds(tier[x].stdout).last ?? 0) <= frozenAt + 1)

        #expect(await tier[y].wait(timeout: 180), "\(tier[y].stderr.suffix(2000))")
        #expect(tier[y].process.terminationStatus == 0, "\(tier[y].stderr.suffix(2000))")
        #expect(tier[y].stdout.contains("federation finished: \(rounds) rounds completed"))
        for p in participants {
            #expect(await p.wait(timeout: 30))
            #expect(p.stdout.contains("all rounds completed"), "\(p.stderr.suffix(2000))")
        }
        // Every round was committed exactly once, whoever led it: no checkpoint lost or doubled.
        let reader = try CoordinatorStore(reading: location, driver: StoreKind.driver)
        let attempts = try reader.rounds()
        let completed = attempts.filter { $0.outcome == "completed" }.map(\.number)
        #expect(completed.sorted() == Array(1...rounds), "\(attempts.filter { $0.outcome != "completed" })")
        #expect(try reader.latestRound() == rounds && reader.currentLease()?.epoch == 3)
    }
}
