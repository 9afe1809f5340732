import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing
import VeilCore
import VeilLearning
import VeilPostgres
import VeilPrivacy
import VeilSecAgg
import VeilTestSupport

@testable import VeilService

/// The coordinator's store, the same tests on SQLite and on PostgreSQL (`Specs/wire.md` §6):
/// every statement the store runs is run on both.
@Suite struct StoreTests {
    static var algorithm: FedAvgFamily {
        ServeConfiguration(tls: .init(ca: "", certificate: "", key: "", signingKey: ""))
            .initialAlgorithm([1, 2])
    }

    static func record(
        _ outcome: String = "completed", contributors: [String] = ["a"],
        participation: [CoordinatorStore.Participation] = [], credits: [CoordinatorStore.Credit] = []
    ) -> CoordinatorStore.RoundRecord {
        .init(
            outcome: outcome, survivors: contributors.count, abortReason: outcome == "aborted" ? "why" : nil,
            transcriptHash: [1, 2], bytesIn: 3, bytesOut: 4, contributors: contributors,
            participation: participation, credits: credits)
    }

    /// A draft that records the place the store gives it and seals a record naming it.
    static func draft(_ tag: UInt8, events: [SecAggAuditEvent] = [.deadline]) -> CoordinatorStore.AuditDraft {
        CoordinatorStore.AuditDraft(events: events, plan: [tag, tag]) { sequence, previous in
            (record: [tag, UInt8(sequence)] + previous, signature: [tag])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func recordsRoundsAndMarksInterruptedOnes(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-rounds") else { return }
        defer { Task { await remove() } }
        do {
            let store = try CoordinatorStore(location, driver: StoreKind.driver)
            #expect(try store.journalMode == (kind == .sqlite ? "wal" : nil))
            try store.recordParticipant(
                id: "a", cores: 2, memoryBytes: 1, battery: -1, linkBitsPerSecond: 0, sampleCount: 5)
            let attempt = try store.nextAttempt(of: 1)
            #expect(attempt == 1)
            try store.beginRound(1, attempt: attempt, cohort: 1)
            #expect(throws: (any Error).self, "an attempt is recorded once") {
                try store.beginRound(1, attempt: attempt, cohort: 1)
            }
            try store.finishRound(
                1, attempt: attempt, record: Self.record(), checkpoint: Self.algorithm, accuracy: 0.5, ledger: nil)
            try store.beginRound(2, attempt: 1, cohort: 1)  // left running: the coordinator "dies"
            try store.close()
        }
        let reopened = try CoordinatorStore(location, driver: StoreKind.driver)
        #expect(try reopened.rounds().map(\.outcome) == ["completed", "interrupted"])
        #expect(try reopened.rounds().first?.survivors == 1)
        #expect(try reopened.latestCheckpoint()?.round == 1)
        #expect(try reopened.latestCheckpoint()?.state.parameters == [1, 2])
        #expect(try reopened.roundsCompleted() == ["a": 1])
        #expect(try reopened.nextAttempt(of: 2) == 2)
        #expect(try reopened.latestRound() == 1 && reopened.accuracies() == [1: 0.5])
        try reopened.close()
    }

    /// The ledger is charged in the transaction that stores the checkpoint: when any statement
    /// of it fails, neither is kept and the attempt stays as it was.
    @Test(arguments: StoreKind.allCases)
    func aRoundsCheckpointAndLedgerCommitTogetherOrNotAtAll(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-atomic") else { return }
        defer { Task { await remove() } }
        let store = try CoordinatorStore(location, driver: StoreKind.driver)
        defer { try? store.close() }
        try store.beginRound(1, attempt: 1, cohort: 2)
        let ledger = PrivacyLedger(policy: .init(epsilon: 10, delta: 1e-6))
        let row = CoordinatorStore.Participation(
            participant: "a", round: 1, attempt: 1, outcome: .contributed, seconds: 1, examples: 5, deadline: 10)
        // The same participant twice: the second row breaks the primary key, after the
        // checkpoint and the ledger were written in the same transaction.
        #expect(throws: (any Error).self) {
            try store.finishRound(
                1, attempt: 1, record: Self.record(participation: [row, row]), checkpoint: Self.algorithm,
                accuracy: nil, ledger: ledger, audit: Self.draft(1))
        }
        #expect(try store.latestCheckpoint() == nil && store.ledger() == nil)
        #expect(try store.rounds().map(\.outcome) == ["running"])
        #expect(try store.participation().isEmpty && store.audits(rounds: 1...1).isEmpty)
        // The same round, well formed, commits all of it.
        try store.finishRound(
            1, attempt: 1, record: Self.record(participation: [row]), checkpoint: Self.algorithm, accuracy: nil,
            ledger: ledger, audit: Self.draft(1))
        #expect(try store.latestCheckpoint()?.round == 1 && store.ledger() == ledger)
        #expect(try store.participation() == [row] && store.audits(rounds: 1...1).count == 1)
    }

    @Test(arguments: StoreKind.allCases)
    func auditRecordsChainInSequenceWithTheirLogs(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-audit") else { return }
        defer { Task { await remove() } }
        let store = try CoordinatorStore(location, driver: StoreKind.driver)
        defer { try? store.close() }
        let events: [SecAggAuditEvent] = [.received(ParticipantID(7), [1, 2, 3]), .deadline, .sent([9])]
        for round in 1...3 {
            try store.beginRound(round, attempt: 1, cohort: 2)
            let hash = try store.finishRound(
                round, attempt: 1, record: Self.record(), checkpoint: Self.algorithm, accuracy: nil, ledger: nil,
                audit: Self.draft(UInt8(round), events: events))
            #expect(hash?.count == 32)
        }
        let audits = try store.audits(rounds: 2...3)
        #expect(audits.map(\.sequence) == [2, 3] && audits.map(\.round) == [2, 3])
        let first = try #require(try store.audits(rounds: 1...1).first)
        #expect(first.record == [1, 1] + [UInt8](repeating: 0, count: 32))
        #expect(audits[0].record == [2, 2] + RoundAuditRecord.hash(first.record))
        #expect(audits[1].record == [3, 3] + RoundAuditRecord.hash(audits[0].record))
        #expect(audits.allSatisfy { $0.events == events && $0.paillier == nil })
        #expect(audits.map(\.plan) == [[2, 2], [3, 3]] && audits.map(\.signature) == [[2], [3]])
    }

    /// Two stores on one database — two coordinators' processes — sealing records at once:
    /// the writers' lock keeps the chain whole (without it, both would read the same last
    /// record and one insert would fail on its sequence).
    @Test(arguments: StoreKind.allCases)
    func concurrentWritersKeepTheAuditChainWhole(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-writers") else { return }
        defer { Task { await remove() } }
        let stores = try (0..<2).map { _ in try CoordinatorStore(location, driver: StoreKind.driver) }
        defer { for store in stores { try? store.close() } }
        let perWriter = 15
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (w, store) in stores.enumerated() {
                group.addTask {
                    for i in 0..<perWriter {
                        let round = 1 + w * perWriter + i
                        try store.beginRound(round, attempt: 1, cohort: 2)
                        try store.finishRound(
                            round, attempt: 1, record: Self.record(), checkpoint: nil, accuracy: nil, ledger: nil,
                            audit: Self.draft(UInt8(w)))
                    }
                }
            }
            try await group.waitForAll()
        }
        let audits = try stores[0].audits(rounds: 1...(2 * perWriter))
        #expect(audits.map(\.sequence) == Array(1...(2 * perWriter)))
        for (previous, next) in zip(audits, audits.dropFirst()) {
            #expect(Array(next.record.dropFirst(2)) == RoundAuditRecord.hash(previous.record))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func attributionsParticipantsAndMetaReadBackAsWritten(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-records") else { return }
        defer { Task { await remove() } }
        let store = try CoordinatorStore(location, driver: StoreKind.driver)
        defer { try? store.close() }
        let faults = [
            CoordinatorStore.Attribution(
                participant: "b", round: 1, attempt: 1, fault: "equivocation", detail: "d", evidence: [0, 255]),
            .init(participant: "b", round: 2, attempt: 1, fault: "bad-share", detail: "e", evidence: []),
            .init(participant: "a", round: 2, attempt: 1, fault: "equivocation", detail: "f", evidence: [1]),
        ]
        for fault in faults { try store.recordAttribution(fault) }
        #expect(try store.attributions() == faults)
        #expect(try store.attributionCounts(faults: ["equivocation"]) == ["a": 1, "b": 1])
        #expect(try store.attributionCounts(faults: ["equivocation", "bad-share"]) == ["a": 1, "b": 2])
        #expect(try store.attributionCounts(faults: []) == [:])

        // Ids sort by their bytes in both stores ("B" before "a").
        for id in ["a", "B"] {
            try store.recordParticipant(
                id: id, cores: 4, memoryBytes: .max, battery: 0.5, linkBitsPerSecond: .max, sampleCount: 9)
        }
        try store.recordParticipant(id: "a", cores: 8, memoryBytes: 1, battery: 1, linkBitsPerSecond: 1, sampleCount: 1)
        try store.beginRound(1, attempt: 1, cohort: 2)
        let rows = ["a", "B"].map { id in
            CoordinatorStore.Participation(
                participant: id, round: 1, attempt: 1, outcome: id == "a" ? .contributed : .dropped,
                seconds: id == "a" ? 2.5 : nil, examples: 9, loss: id == "a" ? 0.25 : nil, deadline: 10)
        }
        let credits = [CoordinatorStore.Credit(participant: "a", round: 1, credits: 1.5, reputation: 0.75, examples: 9)]
        try store.finishRound(
            1, attempt: 1, record: Self.record(participation: rows, credits: credits), checkpoint: Self.algorithm,
            accuracy: nil, ledger: nil)
        #expect(try store.participation().map(\.participant) == ["B", "a"])
        #expect(try store.participation() == rows.reversed())
        #expect(try store.credits() == credits)
        let records = try store.participantRecords()
        #expect(records.map(\.id) == ["B", "a"])
        #expect(records.map(\.selected) == [1, 1] && records.map(\.completed) == [0, 1])
        #expect(records.map(\.dropped) == [1, 0] && records.map(\.faults) == [0, 1])
        #expect(records.map(\.credits) == [0, 1.5])

        #expect(try store.value("k") == nil)
        try store.setValue("one", for: "k")
        try store.setValue("two", for: "k")
        #expect(try store.value("k") == "two")
    }

    @Test(arguments: StoreKind.allCases)
    func healthResourcesAndAlertsReadBack(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-health") else { return }
        defer { Task { await remove() } }
        let store = try CoordinatorStore(location, driver: StoreKind.driver)
        defer { try? store.close() }
        try store.beginRound(1, attempt: 1, cohort: 3)
        try store.finishRound(
            1, attempt: 1, record: Self.record("aborted"), checkpoint: nil, accuracy: nil, ledger: nil)
        try store.beginRound(1, attempt: 2, cohort: 3)
        try store.finishRound(
            1, attempt: 2, record: Self.record(), checkpoint: Self.algorithm, accuracy: 0.75, ledger: nil)
        // Attempt 1 has only its rounds row; attempt 2 its recorded health, written twice.
        var health = RoundHealth(
            number: 1, attempt: 2, outcome: "completed", started: 10, finished: 12, cohort: 3, survivors: 3,
            seconds: 2, bytesIn: 5, bytesOut: 6)
        try store.recordHealth(health, resources: [:], alerts: AlertBook())
        health.bytesIn = 50
        try store.recordHealth(health, resources: [:], alerts: AlertBook())
        let (rounds, unreadable) = try store.roundHealth()
        #expect(unreadable == 0 && rounds.map(\.attempt) == [1, 2])
        #expect(rounds[0].outcome == "aborted" && rounds[0].abortReason == "why" && rounds[0].cohort == 3)
        #expect(rounds[1] == health.sanitized())
        #expect(try store.alertBook().readable && store.resourceReports().isEmpty)
    }

    @Test(arguments: StoreKind.allCases)
    func aReaderNeitherMigratesNorWrites(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-reader") else { return }
        defer { Task { await remove() } }
        #expect(throws: ConfigurationError.self, "no store there yet") {
            try CoordinatorStore(reading: location, driver: StoreKind.driver)
        }
        let writer = try CoordinatorStore(location, driver: StoreKind.driver)
        try writer.beginRound(1, attempt: 1, cohort: 2)
        let reader = try CoordinatorStore(reading: location, driver: StoreKind.driver)
        // A reader leaves a running round as it is: a coordinator may be running it.
        #expect(try reader.rounds().map(\.outcome) == ["running"])
        #expect(throws: (any Error).self) { try reader.setValue("x", for: "k") }
        #expect(try writer.value("k") == nil)
        try reader.close()
        try writer.close()
    }
}

/// Leadership (`Specs/wire.md` §6.2) on either store: the lease, its epochs, and the fence
/// that keeps a leader who lost it from writing.
@Suite struct LeadershipTests {
    @Test(arguments: StoreKind.allCases)
    func theLeaseGoesToOneHolderAtATimeAndEachNewLeaderFencesTheLast(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-leadership") else { return }
        defer { Task { await remove() } }
        let a = try CoordinatorStore(electingAt: location, driver: StoreKind.driver)
        let b = try CoordinatorStore(electingAt: location, driver: StoreKind.driver)
        defer { try? a.close(); try? b.close() }
        #expect(try a.currentLease() == nil)
        guard case .leading(let first) = try a.acquireLeadership(holder: "a", seconds: 0.5) else {
            Issue.record("the first holder did not lead")
            return
        }
        #expect(first.epoch == 1 && first.holder == "a")
        guard case .held(let held, let remaining) = try b.acquireLeadership(holder: "b", seconds: 0.5) else {
            Issue.record("a second holder took a lease that had not ended")
            return
        }
        #expect(held == first && remaining > 0 && remaining <= 0.5)

        // The leader writes behind its fence; a running round is left for it.
        do {
            let leader = try CoordinatorStore(location, driver: StoreKind.driver, fence: first)
            try leader.beginRound(1, attempt: 1, cohort: 2)
            try leader.close()
        }
        let renewed = try a.renewLeadership(first, seconds: 0.5)
        #expect(renewed.epoch == 1 && renewed.expires >= first.expires)
        // Run out but not taken (a leader slowed by a loaded machine): renewed, same epoch.
        try await Task.sleep(for: .milliseconds(700))
        let late = try a.renewLeadership(renewed, seconds: 0.5)
        #expect(late.epoch == 1 && late.expires > renewed.expires)

        // The lease runs out unrenewed (a paused leader): b takes over under epoch 2.
        try await Task.sleep(for: .milliseconds(700))
        guard case .leading(let second) = try b.acquireLeadership(holder: "b", seconds: 30) else {
            Issue.record("the lease did not pass on once it had ended")
            return
        }
        #expect(second.epoch == 2 && second.holder == "b")
        // The old leader can neither renew nor write — not even to open its store.
        #expect(throws: LeadershipLost(epoch: 1, current: 2, holder: "b")) {
            try a.renewLeadership(first, seconds: 0.5)
        }
        #expect(throws: LeadershipLost.self) { try CoordinatorStore(location, driver: StoreKind.driver, fence: first) }
        #expect(try a.rounds().map(\.outcome) == ["running"])
        let stale = try CoordinatorStore(reading: location, driver: StoreKind.driver)
        #expect(try stale.rounds().map(\.outcome) == ["running"])
        // The new leader's store marks the round it inherited as interrupted, and commits.
        let leader = try CoordinatorStore(location, driver: StoreKind.driver, fence: second)
        #expect(try leader.rounds().map(\.outcome) == ["interrupted"])
        try leader.beginRound(1, attempt: 2, cohort: 2)
        try leader.finishRound(
            1, attempt: 2, record: StoreTests.record(), checkpoint: StoreTests.algorithm, accuracy: nil, ledger: nil)
        #expect(try leader.latestCheckpoint()?.round == 1)

        // A clean stop releases the lease: the next holder need not wait 30 s.
        try b.releaseLeadership(second)
        guard case .leading(let third) = try a.acquireLeadership(holder: "a", seconds: 30) else {
            Issue.record("a released lease was still held")
            return
        }
        #expect(third.epoch == 3)
        #expect(throws: LeadershipLost.self, "epoch 2's store is fenced off now") {
            try leader.setValue("x", for: "k")
        }
        #expect(try leader.value("k") == nil)
        try leader.close()
        try stale.close()
    }
}

/// A driver whose databases refuse their first writes, as a database being restarted does.
struct UnreachableAtFirst: StoreDriver {
    let failures: Int

    func open(_ location: StoreLocation, forWriting: Bool) throws -> any StoreDatabase {
        Database(base: try StoreKind.driver.open(location, forWriting: forWriting), failures: failures)
    }

    final class Database: StoreDatabase {
        let base: any StoreDatabase
        let failures: Mutex<Int>

        init(base: any StoreDatabase, failures: Int) {
            self.base = base
            self.failures = Mutex(failures)
        }

        func read<T>(_ body: (any StoreTransaction) throws -> T) throws -> T { try base.read(body) }
        func write<T>(_ body: (any StoreTransaction) throws -> T) throws -> T {
            let fail = failures.withLock { left in
                defer { left = max(0, left - 1) }
                return left > 0
            }
            if fail { throw StoreError("PostgreSQL: connectionError: Connection refused") }
            return try base.write(body)
        }
        func close() throws { try base.close() }
    }
}

extension LeadershipTests {
    /// An epoch that comes round again — the row deleted, or restored from an older backup —
    /// does not let the old holder pass the fence: the holder is checked too (helper-56's F4).
    @Test(arguments: StoreKind.allCases)
    func aReusedEpochDoesNotReopenTheFence(kind: StoreKind) async throws {
        guard let (location, remove) = try await kind.make("store-reused-epoch") else { return }
        defer { Task { await remove() } }
        let a = try CoordinatorStore(electingAt: location, driver: StoreKind.driver)
        let b = try CoordinatorStore(electingAt: location, driver: StoreKind.driver)
        guard case .leading(let old) = try a.acquireLeadership(holder: "a", seconds: 30) else {
            Issue.record("a did not lead")
            return
        }
        let leader = try CoordinatorStore(location, driver: StoreKind.driver, fence: old)
        try a.database.write { try $0.execute("DELETE FROM leadership") }
        guard case .leading(let new) = try b.acquireLeadership(holder: "b", seconds: 30) else {
            Issue.record("b did not lead")
            return
        }
        #expect(new.epoch == old.epoch)
        #expect(throws: LeadershipLost.self) { try leader.setValue("x", for: "k") }
        #expect(throws: LeadershipLost.self) { try a.renewLeadership(old, seconds: 30) }
        #expect(try b.value("k") == nil)
        for store in [leader, a, b] { try store.close() }
    }

    /// join.json's `failover_addresses`: host:port, an IPv6 host in brackets, the port in digits.
    @Test func failoverAddressesAreHostAndPortOnly() {
        #expect(JoinConfiguration.address("10.0.0.2:7443")! == ("10.0.0.2", 7443))
        #expect(JoinConfiguration.address("[::1]:7443")! == ("::1", 7443))
        #expect(JoinConfiguration.address("db.example.org:1")! == ("db.example.org", 1))
        for refused in [
            "host", ":1", "host:", "[::1]:70000", "::1:80", "host:+80", "host:0", "a b:1", "[]:1", "h:007443",
        ] {
            #expect(JoinConfiguration.address(refused) == nil, "\(refused)")
        }
    }

    /// A standby outlives a database restart: it says so once and asks again.
    @Test func aStandbyAsksAgainWhileTheStoreCannotBeReached() async throws {
        guard let (location, remove) = try await StoreKind.sqlite.make("store-unreachable") else { return }
        defer { Task { await remove() } }
        let election = LeaderElection(
            store: try CoordinatorStore(electingAt: location, driver: UnreachableAtFirst(failures: 3)),
            holder: "standby", seconds: 0.3)
        let told = Mutex<[String]>([])
        let lease = try await election.lead(
            waiting: { _, _ in told.withLock { $0.append("waiting") } },
            unreachable: { error in told.withLock { $0.append("\(error)") } })
        #expect(lease.epoch == 1 && lease.holder == "standby")
        #expect(told.withLock { $0 } == ["PostgreSQL: connectionError: Connection refused"])
    }
}

/// What only the PostgreSQL store has: its settings, TLS and credentials.
@Suite struct PostgresStoreTests {
    @Test func theSettingsAreStrict() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-postgres-config")
        defer { try? FileManager.default.removeItem(at: directory) }
        let tls = #""tls": {"ca": "ca.pem", "certificate": "c.pem", "key": "k.pem", "signing_key": "s.key"}"#
        func load(_ body: String) throws -> ServeConfiguration {
            let file = directory.appendingPathComponent("serve.json")
            try "{\(tls), \(body)}".write(to: file, atomically: true, encoding: .utf8)
            return try ServeConfiguration.load(path: file.path)
        }
        let good = try load(
            #""postgres": {"host": "db", "database": "veil", "user": "veil", "password_file": "pw", "ca": "db-ca.pem"}"#
        )
        let settings = try #require(good.postgres)
        #expect(settings.port == 5432 && settings.tls == .require)
        #expect(settings.passwordFile == directory.appendingPathComponent("pw").path)
        #expect(settings.ca == directory.appendingPathComponent("db-ca.pem").path)
        #expect(good.store == .postgres(settings))
        #expect("\(good.store)" == "postgresql://veil@db:5432/veil")
        #expect(
            try load(#""state": "s.sqlite""#).store == .sqlite(path: directory.appendingPathComponent("s.sqlite").path))

        let refusals: [(String, String)] = [
            (
                #""state": "s.sqlite", "postgres": {"host": "db", "database": "veil", "user": "veil"}"#,
                "state (a SQLite file) and postgres are two stores: name one"
            ),
            (
                #""postgres": {"host": "db", "database": "veil", "user": "veil", "pasword_file": "pw"}"#,
                "unknown key \"pasword_file\""
            ),
            (#""postgres": {"host": "db", "database": "veil"}"#, "missing key postgres.user"),
            (
                #""postgres": {"host": "db", "database": "veil", "user": "veil", "tls": "prefer"}"#,
                "\"prefer\" is not one of require, disable"
            ),
            (
                #""postgres": {"host": "db", "database": "veil", "user": "veil", "tls": "disable", "ca": "x"}"#,
                "postgres.ca verifies the server's certificate: not with tls \"disable\""
            ),
            (#""postgres": {"host": "", "database": "veil", "user": "veil"}"#, "postgres.host must not be empty"),
            (
                #""postgres": {"host": "db", "port": 0, "database": "veil", "user": "veil"}"#,
                "postgres.port must be in 1...65535"
            ),
        ]
        for (body, message) in refusals {
            #expect(throws: ConfigurationError.self, "\(body)") { try load(body) }
            do { _ = try load(body) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }

    /// `tls: require` verifies the server's certificate against `ca` and its host name: the
    /// cluster's own CA and "localhost" connect; another CA, or a name the certificate does not
    /// carry, are refused before any password is sent.
    @Test func tlsVerifiesTheServersCertificateAndName() async throws {
        guard let (location, remove) = try await StoreKind.postgres.make("store-tls") else { return }
        defer { Task { await remove() } }
        guard case .postgres(var settings) = location, let passwordFile = settings.passwordFile else {
            Issue.record("not a PostgreSQL location")
            return
        }
        let clusterCA = URL(fileURLWithPath: passwordFile).deletingLastPathComponent().appendingPathComponent("ca.pem")
        settings.tls = .require
        settings.host = "localhost"
        settings.ca = clusterCA.path
        let store = try CoordinatorStore(.postgres(settings), driver: StoreKind.driver)
        try store.setValue("v", for: "k")
        try store.close()

        let directory = try RepositoryPaths.temporaryDirectory("veil-postgres-tls")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try FederationCA.create(in: directory)
        var wrongCA = settings
        wrongCA.ca = directory.appendingPathComponent("ca.cert.pem").path
        #expect(throws: StoreError.self) { try CoordinatorStore(.postgres(wrongCA), driver: StoreKind.driver) }
        var wrongName = settings
        wrongName.host = "127.0.0.2"
        #expect(throws: StoreError.self) { try CoordinatorStore(.postgres(wrongName), driver: StoreKind.driver) }
        var noCA = settings
        noCA.ca = nil
        #expect(throws: StoreError.self, "the system's roots do not know the test CA") {
            try CoordinatorStore(.postgres(noCA), driver: StoreKind.driver)
        }
    }

    /// A leader frozen inside a write transaction holds the writers' lock; the server ends its
    /// session after a lease, so a standby's election goes on and the frozen write fails.
    @Test func aWriterFrozenInATransactionDoesNotHoldTheElectionForEver() async throws {
        guard let (location, remove) = try await StoreKind.postgres.make("store-frozen") else { return }
        defer { Task { await remove() } }
        guard case .postgres(var settings) = location else { return }
        settings.leaseSeconds = 1
        let frozen = try CoordinatorStore(.postgres(settings), driver: StoreKind.driver)
        let standby = try CoordinatorStore(electingAt: .postgres(settings), driver: StoreKind.driver)
        // On a thread of its own: a frozen writer must not hold one of the tests' shared pool.
        let (ended, finished) = AsyncStream.makeStream(of: String?.self)
        Thread.detachNewThread {
            do {
                try frozen.database.write { db in
                    try db.execute("UPDATE meta SET value = 'x' WHERE key = 'none'")
                    Thread.sleep(forTimeInterval: 4)  // frozen, the writers' lock held
                }
                finished.yield(nil)
            } catch { finished.yield("\(error)") }
        }
        try await Task.sleep(for: .milliseconds(300))
        // Timed on its own thread too (not the tests' shared slots, which a loaded run keeps busy).
        let (asked, answer) = AsyncStream.makeStream(
            of: (Result<CoordinatorStore.LeaseAttempt, any Error>, Duration).self)
        Thread.detachNewThread {
            let clock = ContinuousClock()
            let started = clock.now
            let result = Result { try standby.acquireLeadership(holder: "standby", seconds: 1) }
            answer.yield((result, clock.now - started))
        }
        var answers = asked.makeAsyncIterator()
        guard let (result, waited) = await answers.next() else { return }
        let attempt = try result.get()
        guard case .leading = attempt else {
            Issue.record("the standby did not lead: \(attempt)")
            return
        }
        #expect(waited < .seconds(3), "the standby waited \(waited) for the frozen writer's lock")
        var outcome = ended.makeAsyncIterator()
        let failure = await outcome.next() ?? nil
        #expect(failure != nil, "the frozen writer's transaction was not ended")
        // Its store reconnects for the next call.
        #expect(try frozen.value("none") == nil)
        try frozen.close()
        try standby.close()
    }

    @Test func aWrongPasswordIsRefusedWithoutShowingIt() async throws {
        guard let (location, remove) = try await StoreKind.postgres.make("store-password") else { return }
        defer { Task { await remove() } }
        guard case .postgres(var settings) = location else { return }
        let directory = try RepositoryPaths.temporaryDirectory("veil-postgres-password")
        defer { try? FileManager.default.removeItem(at: directory) }
        let wrong = "not-the-password-\(UInt64.random(in: 0...UInt64.max))"
        let file = directory.appendingPathComponent("password")
        try "\(wrong)\n".write(to: file, atomically: true, encoding: .utf8)
        settings.passwordFile = file.path
        do {
            _ = try CoordinatorStore(.postgres(settings), driver: StoreKind.driver)
            Issue.record("a wrong password was accepted")
        } catch {
            #expect("\(error)".contains("password authentication failed"), "\(error)")
            #expect(!"\(error)".contains(wrong))
        }
    }

    /// A program with VeilService's driver alone says what it lacks.
    @Test func theSQLiteDriverRefusesPostgreSQLByName() {
        let settings = PostgresSettings(host: "db", database: "veil", user: "veil")
        #expect(throws: ConfigurationError.self) { try CoordinatorStore(.postgres(settings)) }
    }
}

/// The two stores the store's tests run against: a SQLite file, and a database of its own on
/// the test cluster that `Scripts/postgres-test-cluster.sh` starts (`VEIL_TEST_POSTGRES`
/// names its settings file). Without the cluster the PostgreSQL cases are skipped, unless
/// VEIL_REQUIRE_TOOLS is set (as CI sets it): then they fail.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The driver `veil` uses: both kinds.
    static let driver = PostgresStoreDriver()

    /// The cluster's settings (database `postgres`), or nil when there is none to use.
    static func clusterSettings() throws -> PostgresSettings? {
        guard let path = ProcessInfo.processInfo.environment["VEIL_TEST_POSTGRES"] else {
            if ProcessInfo.processInfo.environment["VEIL_REQUIRE_TOOLS"] == "1" {
                Issue.record("VEIL_TEST_POSTGRES is not set: Scripts/postgres-test-cluster.sh start DIR sets it up")
            }
            return nil
        }
        // The service's own reader of configuration files: strict keys, snake case.
        let settings: PostgresSettings = try decodeFile(path)
        return settings
    }

    /// A new, empty store location of this kind, and how to remove it; nil for PostgreSQL
    /// without a cluster (the test then returns early).
    func make(_ name: String) async throws -> (location: StoreLocation, remove: @Sendable () async -> Void)? {
        switch self {
        case .sqlite:
            let directory = try RepositoryPaths.temporaryDirectory(name)
            return (
                .sqlite(path: directory.appendingPathComponent("state.sqlite").path),
                { try? FileManager.default.removeItem(at: directory) }
            )
        case .postgres:
            guard var settings = try Self.clusterSettings() else { return nil }
            let database = "veil_\(name.replacingOccurrences(of: "-", with: "_"))_\(UInt32.random(in: 0...UInt32.max))"
            // ICU's English collation ("a" before "B"), as a production database may have: the store's
            // text columns must sort by bytes whatever the database's default.
            try await Self.administer(
                settings, "CREATE DATABASE \(database) TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
            let admin = settings
            settings.database = database
            return (
                .postgres(settings),
                { try? await Self.administer(admin, "DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
            )
        }
    }

    /// The serve.json entry naming `location`: `"state": …` or `"postgres": {…}`.
    func serveEntry(_ location: StoreLocation) throws -> String {
        switch location {
        case .sqlite(let path):
            return #""state": "\#(path)""#
        case .postgres(let settings):
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            return #""postgres": "# + String(decoding: try encoder.encode(settings), as: UTF8.self)
        }
    }

    /// Runs one statement outside a transaction (CREATE and DROP DATABASE refuse one).
    static func administer(_ settings: PostgresSettings, _ sql: String) async throws {
        try await PostgresAdministration.execute(sql, on: settings)
    }
}
