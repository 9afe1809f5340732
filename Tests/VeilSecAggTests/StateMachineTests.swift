import Testing
import VeilCore
import VeilCrypto
import VeilSecAgg
import VeilTestSupport

/// A session with all its parties, for driving the state machines by hand.
struct Fixture {
    let cast: SecAggSimulation.Cast
    var server: SecAggServer
    var clients: [SecAggClient<ChaCha20Generator>]

    init(n: Int = 5, t: Int = 3, k: Int? = nil, d: Int = 8, seedByte: UInt8 = 1) throws {
        let p = try parameters(n: n, t: t, k: k, d: d)
        let cast = try SecAggSimulation.Cast(parameters: p, seed: seed(seedByte))
        self.cast = cast
        server = try SecAggServer(session: cast.session, identityKey: cast.serverKey)
        clients = try (0..<n).map { i in
            try SecAggClient(
                session: cast.session, id: ParticipantID(UInt32(i + 1)), identityKey: cast.clientKeys[i],
                input: cast.inputs[i],
                generator: ChaCha20Generator(seed: cast.generatorSeeds[i]))
        }
    }

    var session: SecAggSession { cast.session }

    /// Messages the server sent, by recipient.
    static func sends(_ actions: [ServerAction]) -> [UInt32: SignedMessage] {
        var out: [UInt32: SignedMessage] = [:]
        for case .send(let m) in actions { out[m.recipient] = m }
        return out
    }

    static func sent(_ action: ClientAction) throws -> SignedMessage {
        guard case .send(let m) = action else { throw Failure("expected a message, got \(action)") }
        return m
    }

    /// Runs R0 for everyone and returns the server's R1 messages.
    mutating func advertise(skipping: Set<UInt32> = []) throws -> [UInt32: SignedMessage] {
        var actions: [ServerAction] = []
        for i in clients.indices where !skipping.contains(UInt32(i + 1)) {
            actions += server.receive(try Self.sent(clients[i].start()), from: ParticipantID(UInt32(i + 1)))
        }
        if !skipping.isEmpty { actions += server.closeRound() }
        return Self.sends(actions)
    }

    /// Delivers server messages, sends the participants' replies back, returns the next server messages.
    mutating func exchange(_ messages: [UInt32: SignedMessage], skipping: Set<UInt32> = []) throws -> [ServerAction] {
        var actions: [ServerAction] = []
        for (recipient, message) in messages.sorted(by: { $0.key < $1.key }) where !skipping.contains(recipient) {
            let reply = try Self.sent(clients[Int(recipient) - 1].handle(message))
            actions += server.receive(reply, from: ParticipantID(recipient))
        }
        if !skipping.isEmpty { actions += server.closeRound() }
        return actions
    }
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite struct ClientStateMachineTests {
    /// Two keys and the proof that it knows the first's logarithm (32 + 32 + 64 bytes).
    @Test func advertisesTwoKeysSignedForTheServer() throws {
        var fixture = try Fixture()
        let message = try Fixture.sent(fixture.clients[0].start())
        #expect(message.round == .advertiseKeys)
        #expect(message.sender == 1 && message.recipient == SignedMessage.server)
        #expect(message.body.count == 128)
        #expect(message.isSigned(by: fixture.cast.clientKeys[0].publicKey))
        #expect(fixture.clients[0].start() == .ignored)
        #expect(fixture.clients[0].awaitedRound == .shareKeys)
    }

    @Test func aServerMessageBeforeStartAborts() throws {
        var fixture = try Fixture()
        let r1 = try fixture.advertise(skipping: [1])
        var late = fixture.clients[0]
        guard case .aborted(let abort) = late.handle(r1[2]!) else { throw Failure("not aborted") }
        #expect(abort.reason == .wrongRound(expected: .advertiseKeys, received: .shareKeys))
        #expect(late.handle(r1[2]!) == .ignored)
    }

    @Test func aParticipantWhoseNeighbourhoodShrinksBelowTAborts() throws {
        // k = 2, t = 3: each neighbourhood is exactly t strong; one silent neighbour breaks it.
        var fixture = try Fixture(n: 8, t: 3, k: 2)
        let silent = fixture.session.graph.neighbors(of: ParticipantID(1))[0]
        let r1 = try fixture.advertise(skipping: [silent.rawValue])
        guard case .aborted(let abort) = fixture.clients[0].handle(r1[1]!) else {
            throw Failure("participant 1 went on")
        }
        #expect(abort == SecAggAbort(round: .shareKeys, reason: .notEnoughNeighbors(have: 2, need: 3)))
        #expect(fixture.clients[0].abort == abort)
    }

    @Test func neverRevealsBothSharesOfOneOwner() throws {
        let report = try SecAggSimulation.run(
            .init(
                parameters: try parameters(n: 7, t: 3), seed: seed(40),
                forcedDrops: [ParticipantID(2): .maskedInputCollection, ParticipantID(5): .maskedInputCollection],
                recordsTranscript: true))
        #expect(report.sumCorrect)
        // Across all R4 messages each owner's shares are of one kind only: b for survivors, s for the dropped.
        var kinds: [UInt32: Set<UInt8>] = [:]
        for entry in report.transcript where entry.round == .unmasking && entry.sender != SignedMessage.server {
            let body = try SignedMessage(encoded: entry.encoded).body
            let count = Int(body[0]) | Int(body[1]) << 8
            for i in 0..<count {
                let offset = 4 + 114 * i  // owner ‖ kind ‖ share (45) ‖ endorsement (64)
                let owner = UInt32(body[offset]) | UInt32(body[offset + 1]) << 8
                kinds[owner, default: []].insert(body[offset + 4])
            }
        }
        #expect(kinds[2] == [1] && kinds[5] == [1])
        #expect(kinds.filter { $0.key != 2 && $0.key != 5 }.values.allSatisfy { $0 == [0] })
    }

    @Test func refusesInputsOfTheWrongShapeAndForeignIdentities() throws {
        let fixture = try Fixture()
        #expect(throws: SecAggSessionError.inputShape(expectedBits: 32, expectedDimension: 8, bits: 32, dimension: 7)) {
            try SecAggClient(
                session: fixture.session, id: ParticipantID(1), identityKey: fixture.cast.clientKeys[0],
                input: ModularVector(zeros: 7, bitWidth: BitWidth(32)), generator: SplitMix64(seed: 1))
        }
        #expect(throws: SecAggSessionError.identityMismatch(1)) {
            try SecAggClient(
                session: fixture.session, id: ParticipantID(1), identityKey: fixture.cast.clientKeys[1],
                input: fixture.cast.inputs[0], generator: SplitMix64(seed: 1))
        }
        #expect(throws: SecAggSessionError.unknownParticipant(6)) {
            try SecAggClient(
                session: fixture.session, id: ParticipantID(6), identityKey: fixture.cast.clientKeys[0],
                input: fixture.cast.inputs[0], generator: SplitMix64(seed: 1))
        }
        #expect(throws: SecAggSessionError.identityMismatch(0)) {
            try SecAggServer(session: fixture.session, identityKey: fixture.cast.clientKeys[0])
        }
    }
}

@Suite struct ServerStateMachineTests {
    @Test func advancesAsSoonAsEveryoneAnswered() throws {
        var fixture = try Fixture()
        let r1 = try fixture.advertise()
        #expect(r1.count == 5)
        #expect(fixture.server.round == .shareKeys)
        #expect(r1.values.allSatisfy { $0.isSigned(by: fixture.cast.serverKey.publicKey) })
    }

    @Test func ignoresRepeatsLateMessagesAndStrangers() throws {
        var fixture = try Fixture()
        var r0: [SignedMessage] = []
        for i in 0..<4 { r0.append(try Fixture.sent(fixture.clients[i].start())) }
        for (i, message) in r0.enumerated() { _ = fixture.server.receive(message, from: ParticipantID(UInt32(i + 1))) }
        // A repeat from participant 1 changes nothing.
        #expect(fixture.server.receive(r0[0], from: ParticipantID(1)).isEmpty)
        #expect(fixture.server.responded.count == 4)
        // A participant outside the roster is ignored.
        #expect(fixture.server.receive(r0[0], from: ParticipantID(9)).isEmpty)
        // At the deadline the silent participant is dropped and R1 goes out.
        let actions = fixture.server.closeRound()
        #expect(actions.first == .dropped(ParticipantID(5), .noResponse))
        #expect(Fixture.sends(actions).count == 4)
        // Participant 5's late R0 is ignored.
        #expect(fixture.server.receive(try Fixture.sent(fixture.clients[4].start()), from: ParticipantID(5)).isEmpty)
    }

    @Test func aBadMessageDropsOnlyItsSender() throws {
        var fixture = try Fixture()
        let garbage = fixture.server.receive(encoded: [1, 2, 3], from: ParticipantID(2))
        guard case .dropped(ParticipantID(2), .malformed)? = garbage.first else { throw Failure("\(garbage)") }
        var actions: [ServerAction] = []
        for i in [0, 2, 3, 4] {
            actions += fixture.server.receive(
                try Fixture.sent(fixture.clients[i].start()), from: ParticipantID(UInt32(i + 1)))
        }
        // Everyone else answered: the round closes without waiting, participant 2 left out.
        #expect(Set(Fixture.sends(actions).keys) == [1, 3, 4, 5])
    }

    @Test func abortsWhenFewerThanTRemain() throws {
        var fixture = try Fixture(n: 5, t: 3)
        _ = try fixture.advertise()
        #expect(fixture.server.expected.count == 5)
        // Nobody sends R1 before the deadline.
        let actions = fixture.server.closeRound()
        #expect(actions.last == .aborted(SecAggAbort(round: .shareKeys, reason: .tooFewSurvivors(have: 0, need: 3))))
        #expect(fixture.server.round == nil)
        #expect(fixture.server.closeRound().isEmpty)
    }
}
