import Foundation
import Logging
import Testing
import VeilLearning
import VeilTestSupport
import VeilWire

@testable import VeilService

/// The coordinator's connection registry and its actor, without sockets: streams are
/// in-memory outboxes, and time is a ``ManualClock`` or explicit instants.
// The time limit is a backstop for a run that never ends: the test run shares two cores with
// every other suite, so a wait that is short here is long there.
@Suite(.timeLimit(.minutes(30))) struct CoordinatorDriverTests {
    enum DriverTestError: Error { case neverWaited }

    static let quiet = Logger(label: "veil.test.driver") { _ in SwiftLogNoOpLogHandler() }

    func federation(_ clients: Int = 3, paillier: Bool = false) throws -> (NetworkSimulation, URL) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-driver")
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = 1
        return (
            try NetworkSimulation(configuration: c, directory: directory, paillierBits: paillier ? 2048 : nil),
            directory
        )
    }

    func identity(_ network: NetworkSimulation, _ index: Int) throws -> FederationIdentity {
        try network.participants[index].join.tls.credentials(role: .participant).identity
    }

    /// Everything an outbox received so far (it must have been finished).
    func drain(_ stream: AsyncStream<Veil_V1_CoordinatorMessage>) async -> [Veil_V1_CoordinatorMessage] {
        var messages: [Veil_V1_CoordinatorMessage] = []
        for await message in stream { messages.append(message) }
        return messages
    }

    @Test func aSecondStreamUnderTheSameIdReplacesTheFirst() async throws {
        let (network, directory) = try federation()
        defer { try? FileManager.default.removeItem(at: directory) }
        let alice = try identity(network, 0)
        var registry = ConnectionRegistry(messagesPerSecond: 10, messageBurst: 10)
        let (first, firstOutbox) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        let (_, secondOutbox) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        guard case .participant(let g1) = registry.register(alice, hello: .init(), outbox: firstOutbox),
            case .participant(let g2) = registry.register(alice, hello: .init(), outbox: secondOutbox)
        else { Issue.record("a participant's Hello was refused"); return }
        #expect(g1 != g2)
        // The first stream is told why and closed.
        let told = await drain(first)
        #expect(told.map(\.failure.code) == [.failureDuplicateConnection])
        #expect(registry.participants.count == 1 && registry.connection(alice.id, generation: g2) != nil)
        // The first stream's end does not unregister the second.
        guard case .stale = registry.unregister(id: alice.id, generation: g1) else { Issue.record("not stale"); return }
        #expect(registry.participants.count == 1)
        guard case .participant = registry.unregister(id: alice.id, generation: g2) else {
            Issue.record("kept"); return
        }
        #expect(registry.participants.isEmpty)
    }

    @Test func eachHolderHasABucketThatReconnectingDoesNotRefill() async throws {
        let (network, directory) = try federation()
        defer { try? FileManager.default.removeItem(at: directory) }
        let alice = try identity(network, 0)
        var registry = ConnectionRegistry(messagesPerSecond: 1, messageBurst: 2)
        let (stream, outbox) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        guard case .participant(let generation) = registry.register(alice, hello: .init(), outbox: outbox) else {
            Issue.record("refused"); return
        }
        let t0 = ContinuousClock.now
        let admitted = (0..<3).map { _ in registry.admit(alice.id, generation: generation, now: t0) }
        #expect(admitted == [true, true, false])
        // A new stream under the same id gets the same, empty bucket.
        let (_, again) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        guard case .participant(let next) = registry.register(alice, hello: .init(), outbox: again) else {
            Issue.record("refused"); return
        }
        let later = [500, 1500].map { registry.admit(alice.id, generation: next, now: t0 + .milliseconds($0)) }
        #expect(later == [false, true])
        let told = await drain(stream)
        #expect(told.map(\.failure.code) == [.failureRateLimited, .failureDuplicateConnection])
    }

    @Test func aKeyHolderHelloWithoutASignedKeyIsRefused() async throws {
        let (network, directory) = try federation(paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let holder = try network.keyHolders[0].tls.credentials(role: .keyHolder).identity
        var registry = ConnectionRegistry(messagesPerSecond: 1, messageBurst: 2)
        let (stream, outbox) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        var hello = try KeyHolderAgent(configuration: network.keyHolders[0], logger: Self.quiet).hello()
        hello.paillierKey.signature = Data(repeating: 0, count: 64)
        guard case .refused = registry.register(holder, hello: hello, outbox: outbox) else {
            Issue.record("an unsigned key was accepted"); return
        }
        #expect(registry.keyHolders.isEmpty && registry.paillierKey == nil)
        #expect(await drain(stream).map(\.failure.code) == [.failureMalformed])
    }

    /// A coordinator of a federation nobody has joined, running on a manual clock, once it
    /// waits (asleep on that clock) for participants.
    func waitingCoordinator(_ directory: inout URL?) async throws -> (
        Coordinator, ManualClock, Task<FederationSummary, any Error>, NetworkSimulation
    ) {
        let (network, folder) = try federation()
        directory = folder
        let clock = ManualClock()
        let coordinator = try Coordinator(configuration: network.serve, logger: Self.quiet, clock: clock)
        let run = Task { try await coordinator.run() }
        guard await clock.waitForSleepers(1) else {
            // No advance would reach a run that is not asleep yet: stop it (stopping is
            // sticky, so even a run that has not begun waiting ends) rather than leave the
            // test, and the whole test run, awaiting it.
            await coordinator.stop()
            _ = try? await run.value
            throw DriverTestError.neverWaited
        }
        return (coordinator, clock, run, network)
    }

    /// The run's outcome; if the test is cancelled (its time limit), the coordinator is
    /// stopped, since awaiting `run.value` alone passes no cancellation on.
    func outcome(of run: Task<FederationSummary, any Error>, _ coordinator: Coordinator) async throws
        -> FederationSummary
    {
        try await withTaskCancellationHandler {
            try await run.value
        } onCancel: {
            Task { await coordinator.stop() }
        }
    }

    /// The registration timeout is a sleep on the injected clock: the test moves time, and
    /// the run ends with the count of participants it had.
    @Test func theRegistrationTimeoutRunsOnTheInjectedClock() async throws {
        var directory: URL?
        defer { directory.map { try? FileManager.default.removeItem(at: $0) } }
        let (coordinator, clock, run, _) = try await waitingCoordinator(&directory)
        clock.advance(by: .seconds(59))
        #expect(clock.sleeperCount == 1, "not yet")
        clock.advance(by: .seconds(1))
        do {
            _ = try await outcome(of: run, coordinator)
            Issue.record("the run did not time out")
        } catch {
            #expect("\(error)" == "only 0 of the 3 participants needed connected within 60.0 s")
        }
    }

    /// The review's finding: a federation that ended with an error (here the registration
    /// timeout) closed its streams without a word. Whoever is connected is told why.
    @Test func aFederationThatFailsTellsItsParticipantsWhy() async throws {
        var directory: URL?
        defer { directory.map { try? FileManager.default.removeItem(at: $0) } }
        let (coordinator, clock, run, network) = try await waitingCoordinator(&directory)
        let alice = try identity(network, 0)
        let (stream, outbox) = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self)
        #expect(await coordinator.connect(identity: alice, hello: .init(), outbox: outbox) != nil)
        clock.advance(by: .seconds(60))
        await #expect(throws: ConfigurationError.self) { try await outcome(of: run, coordinator) }
        let told = await drain(stream)
        #expect(told.count == 2 && told.first?.welcome.participantID == alice.id)
        #expect(told.last?.finished.reason == "only 1 of the 3 participants needed connected within 60.0 s")
    }

    /// Stopping while waiting for participants ends the run at once, cleanly.
    @Test func stoppingWhileWaitingEndsTheRun() async throws {
        var directory: URL?
        defer { directory.map { try? FileManager.default.removeItem(at: $0) } }
        let (coordinator, _, run, _) = try await waitingCoordinator(&directory)
        await coordinator.stop()
        let summary = try await outcome(of: run, coordinator)
        #expect(summary.completedRounds == 0 && summary.stopReason == "the coordinator was stopped")
    }
}
