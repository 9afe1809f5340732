import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import Logging
import SwiftProtobuf
import Testing
import VeilLearning
import VeilSecAgg
import VeilTestSupport
import VeilTransport
import VeilWire

@testable import VeilService

/// Participants that misbehave on the wire: each costs only itself.
@Suite(.serialized) struct HostileParticipantTests {
    /// A participant with a valid certificate that sends whatever `reply` says to each assignment.
    func rogue(
        directory: URL, id: String, port: Int,
        reply: @escaping @Sendable (Veil_V1_RoundAssignment) -> Veil_V1_ParticipantMessage
    ) async throws -> String {
        try await rogue(directory: directory, id: id, port: port, replies: { [reply($0)] })
    }

    /// As above, with several messages in answer to each assignment.
    func rogue(
        directory: URL, id: String, port: Int,
        replies: @escaping @Sendable (Veil_V1_RoundAssignment) -> [Veil_V1_ParticipantMessage]
    ) async throws -> String {
        let tls = TLSFiles(directory: directory.path, id: id)
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: tls.certificate, format: .pem)],
                privateKey: .file(path: tls.key, format: .pem)
            ) { $0.trustRoots = .certificates([.file(path: tls.ca, format: .pem)]) },
            config: .defaults { $0.http2.authority = "coordinator" })
        return try await withGRPCClient(transport: transport) { client in
            let federation = Veil_V1_Federation.Client(wrapping: client)
            let (outbound, continuation) = AsyncStream.makeStream(of: Veil_V1_ParticipantMessage.self)
            continuation.yield(.with { $0.hello = .with { $0.protocolVersion = 1 } })
            do {
                return try await federation.participate(
                    request: StreamingClientRequest { writer in
                        for await message in outbound { try await writer.write(message) }
                    }
                ) { response in
                    var seen: [String] = []
                    for try await message in response.messages {
                        switch message.kind {
                        case .assignment(let a): for message in replies(a) { continuation.yield(message) }
                        case .failure(let f): seen.append("failure \(f.code): \(f.message)")
                        case .finished: continuation.finish(); return seen.joined(separator: "\n")
                        default: break
                        }
                    }
                    continuation.finish()
                    return seen.joined(separator: "\n")
                }
            } catch {
                continuation.finish()
                return "stream failed: \(error)"
            }
        }
    }

    func federation(extra: String) throws -> (NetworkSimulation, URL) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-hostile")
        var c = FederatedConfiguration()
        c.clients = 3
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        network.serve.minParticipants = 4
        network.serve.cohortSize = 4
        network.serve.maxMessageBytes = 1 << 20
        _ = try FederationCA(directory: directory).issue(id: extra, role: .participant)
        return (network, directory)
    }

    @Test func aGarbageProtocolMessageDropsOnlyItsSender() async throws {
        let (network, directory) = try federation(extra: "rogue")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (endpoints, running) = try await network.started(logger: quietLogger())
        let port = endpoints.grpcPort
        let seen = try await rogue(directory: directory, id: "rogue", port: port) { a in
            .with {
                $0.secagg = .with {
                    $0.round = a.round; $0.signed = Data(repeating: 0xAB, count: 100)
                }
            }
        }
        let result = try await running.value
        #expect(result.completedRounds == 2)
        #expect(result.rounds.allSatisfy { $0.cohort == 4 && $0.survivors == 3 })
        #expect(seen.contains("failureDropped"), "\(seen)")
    }

    /// Resource reports are the participant's word, shown on the dashboard: one out of bounds,
    /// for a round not yet run, or repeated is refused and told, and costs the federation nothing.
    @Test func aHostileResourceReportIsRefusedAndCostsOnlyItsSender() async throws {
        let (network, directory) = try federation(extra: "boaster")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (endpoints, running) = try await network.started(logger: quietLogger())
        let seen = try await rogue(directory: directory, id: "boaster", port: endpoints.grpcPort) { a in
            [
                .with {
                    $0.resources = .with {
                        // Round 1: a NaN CPU reading; round 2: a report for a round far ahead.
                        $0.round = a.round == 1 ? 1 : 1_000
                        $0.cpuFraction = a.round == 1 ? .nan : 0.5
                        $0.battery = -1
                        $0.gpuUtilisation = -1
                    }
                },
                // Then it declines, so that the rounds need not wait for its deadline.
                .with {
                    $0.decline = .with {
                        $0.round = a.round
                        $0.code = .declinePolicy
                        $0.reason = "not today"
                    }
                },
            ]
        }
        let result = try await running.value
        #expect(result.completedRounds == 2 && result.rounds.allSatisfy { $0.survivors == 3 })
        #expect(seen.contains("resource report: cpu_fraction must be in 0...4096"), "\(seen)")
        #expect(seen.contains("resource report: a report for round 1000 is not expected"), "\(seen)")
        let store = try CoordinatorStore(readingAt: network.serve.state)
        let reports = try store.resourceReports()
        #expect(reports["boaster"] == nil && reports.count == 3, "\(reports.keys.sorted())")
    }

    @Test func anOversizedMessageClosesOnlyItsSendersStream() async throws {
        let (network, directory) = try federation(extra: "flooder")
        defer { try? FileManager.default.removeItem(at: directory) }
        let (endpoints, running) = try await network.started(logger: quietLogger())
        let port = endpoints.grpcPort
        let seen = try await rogue(directory: directory, id: "flooder", port: port) { a in
            .with {
                $0.decline = .with {
                    $0.round = a.round; $0.reason = String(repeating: "x", count: 2 << 20)
                }
            }
        }
        #expect(seen.hasPrefix("stream failed"), "\(seen)")
        // The coordinator still serves, the honest three are still connected: the flooder may
        // come back (the federation needs four) and decline, and both rounds complete.
        #expect(await waitUntilListening(port: port))
        let again = try await rogue(directory: directory, id: "flooder", port: port) { a in
            .with {
                $0.decline = .with {
                    $0.round = a.round; $0.reason = "cannot train now"
                }
            }
        }
        #expect(!again.hasPrefix("stream failed"), "\(again)")
        let result = try await running.value
        #expect(result.completedRounds == 2)
    }

    /// Raw bytes on the Participate stream, as a rogue could send them.
    struct RawBytes: MessageSerializer {
        func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    }

    /// A participant that sends arbitrary bytes (after a valid Hello) and reports the failure
    /// codes it is sent back, or how its stream ended.
    func rawRogue(directory: URL, id: String, port: Int, messages: [[UInt8]]) async throws -> (
        codes: [Veil_V1_FailureCode], welcomed: Bool, ended: String
    ) {
        let tls = TLSFiles(directory: directory.path, id: id)
        let transport = try HTTP2ClientTransport.Posix(
            target: .ipv4(address: "127.0.0.1", port: port),
            transportSecurity: .mTLS(
                certificateChain: [.file(path: tls.certificate, format: .pem)],
                privateKey: .file(path: tls.key, format: .pem)
            ) { $0.trustRoots = .certificates([.file(path: tls.ca, format: .pem)]) },
            config: .defaults { $0.http2.authority = "coordinator" })
        let hello: [UInt8] = try Veil_V1_ParticipantMessage.with { $0.hello = .with { $0.protocolVersion = 1 } }
            .serializedBytes()
        return try await withGRPCClient(transport: transport) { client in
            do {
                return try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<[UInt8]> { writer in
                        try await writer.write(hello)
                        try await Task.sleep(for: .milliseconds(200))
                        for message in messages { try await writer.write(message) }
                        try await Task.sleep(for: .seconds(2))
                    },
                    descriptor: Veil_V1_Federation.Method.Participate.descriptor, serializer: RawBytes(),
                    deserializer: ProtobufDeserializer<Veil_V1_CoordinatorMessage>(), options: .defaults
                ) { response in
                    var codes: [Veil_V1_FailureCode] = []
                    var welcomed = false
                    for try await message in response.messages {
                        if case .failure(let f) = message.kind { codes.append(f.code) }
                        if case .welcome = message.kind { welcomed = true }
                    }
                    return (codes, welcomed, "closed by the coordinator")
                }
            } catch {
                return ([], false, "stream failed: \(error)")
            }
        }
    }

    /// The findings: the rate limiter refilled on every reconnection, and messages were decoded
    /// before it was consulted. A message that does not parse is now answered (not decoded by the
    /// transport, which used to kill the stream), a burst beyond the bucket is refused before
    /// decoding, and reconnecting does not refill the bucket.
    @Test func theRateLimiterComesBeforeDecodingAndSurvivesReconnection() async throws {
        let (built, directory) = try federation(extra: "flooder")
        var network = built
        defer { try? FileManager.default.removeItem(at: directory) }
        network.serve.messagesPerSecond = 0.01
        network.serve.messageBurst = 8
        // No round starts (five are needed, four come): the coordinator only listens, and gives
        // up once its registration timeout has passed — counted from its start, so it must
        // outlast both of the flooder's streams on a loaded machine (8 s did not, in one CI run).
        network.serve.minParticipants = 5
        network.serve.cohortSize = 5
        network.serve.registrationTimeoutSeconds = 30
        let (endpoints, federation) = try await network.started(logger: quietLogger())
        let port = endpoints.grpcPort
        let garbage = [UInt8](repeating: 0xFF, count: 64)  // not a protobuf message
        // Hello takes one token; seven garbage messages are answered as malformed; the rest are refused unread.
        let first = try await rawRogue(
            directory: directory, id: "flooder", port: port, messages: Array(repeating: garbage, count: 10))
        #expect(!first.ended.hasPrefix("stream failed") && first.welcomed, "\(first.ended)")
        #expect(first.codes.filter { $0 == .failureMalformed }.count == 7, "\(first.codes)")
        #expect(first.codes.filter { $0 == .failureRateLimited }.count == 3, "\(first.codes)")
        // A new stream: the bucket is still empty, so even the Hello is refused.
        let second = try await rawRogue(directory: directory, id: "flooder", port: port, messages: [garbage])
        #expect(!second.welcomed, "reconnecting refilled the bucket")
        #expect(second.codes == [.failureRateLimited, .failureRateLimited], "\(second.codes)")
        _ = try? await federation.value
    }

    /// The finding (helper-40): every refused message was answered, so a peer that floods
    /// malformed messages and never reads grew its outbox without bound. Answers now have a
    /// budget of ten at once and one a second; the refusals are still counted.
    @Test func aFloodOfRefusedMessagesGetsABoundedNumberOfAnswers() async throws {
        let (built, directory) = try federation(extra: "flooder")
        defer { try? FileManager.default.removeItem(at: directory) }
        // No round starts: the coordinator only listens, then gives up.
        var network = built
        network.serve.minParticipants = 5
        network.serve.cohortSize = 5
        network.serve.registrationTimeoutSeconds = 15
        let (endpoints, federation) = try await network.started(logger: quietLogger())
        let garbage = [UInt8](repeating: 0xFF, count: 64)
        let flood = try await rawRogue(
            directory: directory, id: "flooder", port: endpoints.grpcPort,
            messages: Array(repeating: garbage, count: 300))
        #expect(flood.welcomed, "\(flood.ended)")
        // Ten at once, then one a second over the flood's few seconds.
        #expect((10...16).contains(flood.codes.count), "\(flood.codes.count) answers")
        #expect(Set(flood.codes) == [.failureMalformed])
        _ = try? await federation.value
    }

    /// The finding: `Decline.reason` was logged unbounded. A participant's text reaches the
    /// log at most 200 characters long, on one line.
    @Test func aDeclineReasonIsLoggedBoundedAndOnOneLine() async throws {
        let (network, directory) = try federation(extra: "talker")
        defer { try? FileManager.default.removeItem(at: directory) }
        let lines = CapturedLog()
        let logger = Logger(label: "test") { _ in CapturingHandler(log: lines) }
        let (endpoints, running) = try await network.started(logger: logger)
        let port = endpoints.grpcPort
        let reason =
            "forged line\n[critical] the coordinator was compromised\n" + String(repeating: "x", count: 500_000)
        _ = try await rogue(directory: directory, id: "talker", port: port) { a in
            .with {
                $0.decline = .with {
                    $0.round = a.round; $0.reason = reason
                }
            }
        }
        _ = try await running.value
        let logged = lines.entries.filter { $0.message == "participant declined" }
        #expect(!logged.isEmpty)
        for entry in logged {
            let text = entry.metadata["reason"] ?? ""
            #expect(text.count < 260 && !text.contains("\n"), "\(text.prefix(300))")
            #expect(text.hasPrefix("forged line\\n[critical]"), "\(text.prefix(60))")
        }
    }
}

/// Log lines captured in a test.
final class CapturedLog: @unchecked Sendable {
    struct Entry {
        let message: String
        let metadata: [String: String]
    }
    private let lock = NSLock()
    private var stored: [Entry] = []
    var entries: [Entry] { lock.withLock { stored } }
    func append(_ entry: Entry) { lock.withLock { stored.append(entry) } }
}

struct CapturingHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        log.append(.init(message: "\(event.message)", metadata: (event.metadata ?? [:]).mapValues { "\($0)" }))
    }
}

/// The audit's finding: one participant sending garbage shares in R1, or a wrong share in R4,
/// stopped every round; nobody learned who; the same participant was selected again, and
/// after `max_round_attempts` `veil serve` exited 1. Here both misbehave in one federation,
/// running the real protocol with their own valid certificates and keys: both are named with
/// proof, and excluded.
@Suite(.serialized) struct RogueParticipantTests {
    @Test func roguesInR1AndR4CannotStopTheFederationAndAreNamed() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-rogues")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 9
        c.rounds = 4
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        // A round starts with seven connected (so that it can go on without the two excluded);
        // the first may therefore start before all nine connect.
        network.serve.minParticipants = 7
        network.serve.excludeAfterFaults = 2
        network.misbehaviours = [0: .garbageShares, 1: .wrongShares]
        let result = try await network.run(logger: quietLogger())

        // Every round completes, at its first attempt.
        #expect(result.completedRounds == 4)
        #expect(result.rounds.map(\.attempt) == [1, 1, 1, 1], "\(result.rounds.map(\.abortReason))")

        let store = try CoordinatorStore(path: network.serve.state)
        defer { try? store.close() }
        let attributions = try store.attributions()
        // participant-1 is convicted in R2 of each round it is in; participant-2 is dropped in R4
        // of each round it is in, for shares their owners did not endorse. Both faults are
        // proven: the second excludes each, and it is never selected again.
        let convictions = attributions.filter { $0.fault == "invalidShares" }
        #expect(convictions.map(\.participant) == ["participant-1", "participant-1"])
        let wrong = attributions.filter { $0.fault == "wrongShare" }
        #expect(wrong.map(\.participant) == ["participant-2", "participant-2"])
        #expect(attributions.count == convictions.count + wrong.count)
        let convicted = Set(convictions.map(\.round))
        let bothExcludedAfter = try #require((convictions + wrong).map(\.round).max())
        for round in result.rounds {
            // A participant dropped in R4 is still among the survivors: its input is in the sum.
            let lost = convicted.contains(round.number) ? 1 : 0
            #expect(round.survivors == round.cohort - lost, "round \(round.number)")
            if round.number > bothExcludedAfter { #expect(round.cohort == 7, "round \(round.number)") }
        }
        #expect(bothExcludedAfter < 4, "the rogues were still selected in the last round")
        // Each attribution's evidence decodes: the conviction names both parties, the wrong
        // share carries the holder's own R4 message.
        let shown = try SecAggEvidence(decoding: try #require(wrong.first).evidence)
        #expect(shown.fault == .wrongShare && shown.messages.map(\.round) == [.unmasking])
        let evidence = try SecAggEvidence(decoding: try #require(convictions.first).evidence)
        #expect(evidence.fault == .invalidShares && evidence.messages.count == 4 && evidence.complaint != nil)
    }
}
