import Foundation
import FuzzSupport
import Logging
import SwiftProtobuf
import VeilCore
import VeilLearning
import VeilPaillier
import VeilWire

@testable import VeilService

// The protobuf messages of the `Participate` stream (`Specs/proto/veil.proto`), decoded as the
// service decodes them and fed through the real sans-IO parts, as the tests' `RoundBench` does:
// the coordinator's `RoundMachine` (masking rounds, Paillier rounds with one key holder, and
// Paillier rounds with three threshold key holders, 2 of 3) and the participants'
// `ParticipantAgent.AgentState`, with no socket and no clock. Each input is delivered at one of
// the moments of an honest round (a snapshot taken before each honest delivery), then the round
// is let run on: the honest messages still in flight, then a deadline.
//
// Input: byte 0 picks the round (byte 0 % 3: masking, Paillier, threshold) and its snapshot
// (byte 0 / 3), byte 1 the direction and the party, the rest is the message.
//   byte 1 % 4 = 0  a ParticipantMessage from member (byte 1 / 4) to the coordinator
//              = 1  a CoordinatorMessage to member (byte 1 / 4)
//              = 2  a ParticipantMessage from key holder (byte 1 / 4) (its `decrypted` reaches the machine)
//              = 3  a CoordinatorMessage to key holder (byte 1 / 4) (its `decrypt` request is
//                   answered), or, with bit 4 of byte 1 set, a Hello registered with the
//                   coordinator under that key holder's identity (bit 3 clear) or a participant's
//                   (bit 3 set)
// Every decoded message must also serialize and decode back to itself.

let quiet = Logger(label: "veil.fuzz") { _ in SwiftLogNoOpLogHandler() }

/// One round attempt with everything it needs, driven by hand.
struct Round {
    var machine: RoundMachine
    var states: [String: ParticipantAgent.AgentState] = [:]
    var mailbox: [(from: String, message: Veil_V1_ParticipantMessage)] = []
    /// Decryption requests not yet answered, with the key holder each is for.
    var toKeyHolder: [(id: String, request: Veil_V1_DecryptRequest)] = []
    var lastDeadline = 0
}

/// The parties of a federation of three (a temporary CA and their files on disk), and a round's
/// snapshots: the round before each honest delivery.
final class Bench {
    enum Mode { case masking, paillier, threshold }

    let network: NetworkSimulation
    let agents: [String: ParticipantAgent]
    /// The key holder, or the threshold key's three holders.
    let keyHolders: [KeyHolderAgent]
    let registry: ConnectionRegistry.ThresholdConfiguration?
    var snapshots: [Round] = []
    /// The messages any party sent in the honest run: the seed corpus is made of them.
    var transcript: [(toCoordinator: Bool, party: Int, bytes: [UInt8])] = []

    init(_ mode: Mode) throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("veil-fuzz-wire-\(getpid())-\(mode)")
        var c = FederatedConfiguration()
        c.clients = 3
        c.rounds = 1
        c.seed = 11
        // A threshold key is dealt from safe primes: 1024 bits keeps the fixture to seconds.
        network = try NetworkSimulation(
            configuration: c, directory: directory,
            paillierBits: mode == .masking ? nil : mode == .paillier ? 2048 : 1024,
            thresholdHolders: mode == .threshold ? (2, 3) : nil)
        var agents: [String: ParticipantAgent] = [:]
        for p in network.participants {
            let agent = try ParticipantAgent(configuration: p.join, data: p.data, logger: quiet)
            agents[agent.identity.id] = agent
        }
        self.agents = agents
        keyHolders = try network.keyHolders.map { try KeyHolderAgent(configuration: $0, logger: quiet) }
        let serve = network.serve
        registry = try serve.loadThresholdKey().map {
            ConnectionRegistry.ThresholdConfiguration(key: $0, holders: serve.keyHolders ?? [])
        }
        let (_, identity, signingKey) = try serve.tls.credentials(role: .coordinator)
        let model = try makeModel(serve.model.description, featureCount: serve.features, classCount: serve.classes)
        var generator = Xoshiro256(seed: serve.seed, purpose: .initialParameters)
        let task = try RoundTask(
            number: 1, cohortSize: 3, configuration: serve,
            algorithm: serve.initialAlgorithm(model.initialParameters(using: &generator)), privacy: nil)
        let members = agents.keys.sorted().map { id in
            RoundMember(identity: agents[id]!.identity, policy: agents[id]!.hello().policy.declared)
        }
        let credentials = CoordinatorCredentials(identity: identity, signingKey: signingKey)
        let nonce = [UInt8](repeating: 7, count: 32)
        let deadlines = RoundDeadlines(training: .seconds(120), protocolRound: .seconds(30))
        var round: Round
        let start: [RoundAction]
        if !keyHolders.isEmpty {
            // Who decrypts, as the coordinator's registry holds it after every holder's Hello.
            var connections = ConnectionRegistry(messagesPerSecond: 10, messageBurst: 10, threshold: registry)
            for holder in keyHolders {
                let (_, outbox) = AsyncStream<Veil_V1_CoordinatorMessage>.makeStream()
                _ = connections.register(holder.identity, hello: holder.hello(), outbox: outbox)
            }
            guard let keyHolding = connections.keyHolding else { throw ConfigurationError("no key holding") }
            let (machine, actions) = try RoundMachine.paillier(
                number: 1, attempt: 1, members: members, task: task, maxAddends: serve.cohortSize,
                keyHolding: keyHolding, coordinator: credentials, nonce: nonce, deadlines: deadlines)
            (round, start) = (Round(machine: machine), actions)
        } else {
            let (machine, actions) = try RoundMachine.masking(
                number: 1, attempt: 1, members: members, task: task, threatModel: serve.coordinatorThreatModel(),
                coordinator: credentials, nonce: nonce, deadlines: deadlines)
            (round, start) = (Round(machine: machine), actions)
        }
        for id in agents.keys {
            round.states[id] = ParticipantAgent.AgentState(agent: agents[id]!, tally: .init()) { _ in }
        }
        carryOut(start, in: &round, record: true)
        // The honest run, one delivery at a time; a snapshot before each.
        while !round.mailbox.isEmpty || !round.toKeyHolder.isEmpty {
            snapshots.append(round)
            step(&round, record: true)
        }
        snapshots.append(round)
    }

    var ids: [String] { agents.keys.sorted() }

    func holderIndex(_ id: String) -> Int { keyHolders.firstIndex { $0.identity.id == id } ?? 0 }

    /// Carries out the machine's actions: messages to members are handled at once (their
    /// answers go to the mailbox), requests to the key holder are queued.
    func carryOut(_ actions: [RoundAction], in round: inout Round, record: Bool = false) {
        for action in actions {
            switch action {
            case .send(let message, let id):
                if record, let bytes = try? message.serializedBytes() as [UInt8] {
                    transcript.append((false, ids.firstIndex(of: id) ?? 0, bytes))
                }
                deliver(message, to: id, in: &round)
            case .sendToKeyHolder(let message, let id):
                if record, let bytes = try? message.serializedBytes() as [UInt8] {
                    transcript.append((false, 3 + holderIndex(id), bytes))
                }
                round.toKeyHolder.append((id, message.decrypt))
            case .startDeadline(let generation, _): round.lastDeadline = generation
            default: break
            }
        }
    }

    func deliver(_ message: Veil_V1_CoordinatorMessage, to id: String, in round: inout Round) {
        guard var state = round.states[id] else { return }
        var sent: [Veil_V1_ParticipantMessage] = []
        state = ParticipantAgent.AgentState(
            agent: state.agent, tally: state.tally, send: { sent.append($0) }, outcome: state.outcome,
            round: state.round, sentThisRound: state.sentThisRound, contributed: state.contributed)
        _ = try? state.handle(message)
        round.states[id] = state
        round.mailbox += sent.map { (id, $0) }
    }

    /// What the coordinator does with a participant's message (`Coordinator.receive`).
    func receive(_ message: Veil_V1_ParticipantMessage, from id: String, in round: inout Round, record: Bool = false) {
        if record, let bytes = try? message.serializedBytes() as [UInt8] {
            transcript.append((true, ids.firstIndex(of: id) ?? 0, bytes))
        }
        let event: RoundEvent
        switch message.kind {
        case .secagg(let m): event = .secagg(m, from: id)
        case .paillier(let c): event = .contribution(c, from: id)
        case .decline(let d):
            _ = loggable(d.reason)
            event = .declined(d, from: id)
        default: return
        }
        carryOut(round.machine.handle(event), in: &round, record: record)
    }

    /// One delivery: the next participant message, or else the next decryption request.
    func step(_ round: inout Round, record: Bool = false) {
        if !round.mailbox.isEmpty {
            let (id, message) = round.mailbox.removeFirst()
            receive(message, from: id, in: &round, record: record)
        } else if !round.toKeyHolder.isEmpty {
            let (id, request) = round.toKeyHolder.removeFirst()
            let answer = keyHolders[holderIndex(id)].answer(request)
            if record, let bytes = try? answer.serializedBytes() as [UInt8] {
                transcript.append((true, 3 + holderIndex(id), bytes))
            }
            carryOut(round.machine.handle(.decryption(answer, from: id)), in: &round, record: record)
        }
    }

    /// Lets the round run on after the fuzzed delivery: a bounded number of deliveries, then
    /// the last deadline passes, and what follows from it.
    func finish(_ round: inout Round) {
        for _ in 0..<64 where !round.mailbox.isEmpty || !round.toKeyHolder.isEmpty { step(&round) }
        carryOut(round.machine.handle(.deadline(generation: round.lastDeadline)), in: &round)
        for _ in 0..<64 where !round.mailbox.isEmpty || !round.toKeyHolder.isEmpty { step(&round) }
    }
}

// Fixed fixtures; a failure to build them is a bug to report.
nonisolated(unsafe) let masking = try! Bench(.masking)
nonisolated(unsafe) let paillier = try! Bench(.paillier)
nonisolated(unsafe) let threshold = try! Bench(.threshold)

/// Serialize, decode, serialize again: the same bytes. (Not decode-equality: a double field
/// may hold a NaN, which is never equal to itself.)
func checkRoundTrip<M: SwiftProtobuf.Message>(_ message: M) {
    do {
        let encoded: [UInt8] = try message.serializedBytes()
        let again: [UInt8] = try M(serializedBytes: encoded).serializedBytes()
        guard again == encoded else { violated("\(M.protoMessageName): serialize(decode(bytes)) != bytes") }
    } catch {
        violated("\(M.protoMessageName): an accepted message does not round-trip: \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = bytes(data, size)
    guard input.count >= 2 else { return 0 }
    let body = Array(input[2...])
    let bench = [masking, paillier, threshold][Int(input[0] % 3)]
    var round = bench.snapshots[Int(input[0] / 3) % bench.snapshots.count]
    let member = bench.ids[Int(input[1] / 4) % bench.ids.count]
    let holder = bench.keyHolders.isEmpty ? nil : bench.keyHolders[Int(input[1] / 4) % bench.keyHolders.count]
    switch input[1] % 4 {
    case 0:
        guard let message = try? Veil_V1_ParticipantMessage(serializedBytes: body) else { return 0 }
        checkRoundTrip(message)
        bench.receive(message, from: member, in: &round)
    case 1:
        guard let message = try? Veil_V1_CoordinatorMessage(serializedBytes: body) else { return 0 }
        checkRoundTrip(message)
        bench.deliver(message, to: member, in: &round)
    case 2:
        guard let message = try? Veil_V1_ParticipantMessage(serializedBytes: body) else { return 0 }
        checkRoundTrip(message)
        guard case .decrypted(let result) = message.kind, let holder else { return 0 }
        bench.carryOut(round.machine.handle(.decryption(result, from: holder.identity.id)), in: &round)
    default:
        if input[1] & 16 != 0 {
            guard let hello = try? Veil_V1_Hello(serializedBytes: body) else { return 0 }
            checkRoundTrip(hello)
            let identity = input[1] & 8 == 0 ? holder?.identity : bench.agents[member]?.identity
            guard let identity else { return 0 }
            var registry = ConnectionRegistry(messagesPerSecond: 10, messageBurst: 10, threshold: bench.registry)
            let (_, outbox) = AsyncStream<Veil_V1_CoordinatorMessage>.makeStream()
            _ = registry.register(identity, hello: hello, outbox: outbox)
            return 0
        }
        guard let message = try? Veil_V1_CoordinatorMessage(serializedBytes: body) else { return 0 }
        checkRoundTrip(message)
        guard case .decrypt(let request) = message.kind, let holder else { return 0 }
        carryOutAnswer(holder.answer(request), from: holder.identity.id, bench, &round)
        return 0
    }
    bench.finish(&round)
    return 0
}

func carryOutAnswer(_ answer: Veil_V1_DecryptResult, from id: String, _ bench: Bench, _ round: inout Round) {
    checkRoundTrip(answer)
    bench.carryOut(round.machine.handle(.decryption(answer, from: id)), in: &round)
}

/// Builds the fixtures before the first input (so that their time is not charged to it), and
/// with `FUZZ_WRITE_SEEDS=DIR` writes the honest runs' messages there as seed inputs and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_WRITE_SEEDS"] else {
        _ = (masking.snapshots.count, paillier.snapshots.count, threshold.snapshots.count)
        return 0
    }
    for (name, bench, mode) in [
        ("masking", masking, UInt8(0)), ("paillier", paillier, UInt8(1)), ("threshold", threshold, UInt8(2)),
    ] {
        for (i, entry) in bench.transcript.enumerated() {
            // The snapshot just before the message's own delivery, and its direction (parties
            // 3… are the key holders).
            let snapshot = UInt8(min(i, bench.snapshots.count - 1, 84)) * 3 + mode
            let direction: UInt8 =
                entry.party >= 3
                ? UInt8((entry.party - 3) * 4) + (entry.toCoordinator ? 2 : 3)
                : UInt8(entry.party * 4) + (entry.toCoordinator ? 0 : 1)
            let path = "\(directory)/\(name)-\(i)"
            _ = FileManager.default.createFile(atPath: path, contents: Data([snapshot, direction] + entry.bytes))
        }
    }
    exit(0)
}
