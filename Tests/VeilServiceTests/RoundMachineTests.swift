import Foundation
import Logging
import Testing
import VeilCore
import VeilLearning
import VeilPaillier
import VeilSecAgg
import VeilTestSupport
import VeilWire

@testable import VeilService

/// A round attempt driven by hand: the coordinator's ``RoundMachine`` and real participant
/// agents (their message handling, ``ParticipantAgent/AgentState``) and key holder, passing
/// messages through arrays. No socket and no clock: a deadline passes when the test says so.
final class RoundBench {
    let network: NetworkSimulation
    let agents: [String: ParticipantAgent]
    /// The key holder, or the threshold key's holders.
    let keyHolders: [KeyHolderAgent]
    var keyHolder: KeyHolderAgent? { keyHolders.first }
    var machine: RoundMachine
    /// What the machine asked for, in order.
    var actions: [RoundAction] = []
    /// Participants whose messages are lost (killed after training, say).
    var silent: Set<String> = []
    /// Whether the key holder answers decryption requests.
    var keyHolderAnswers = true
    private var states: [String: ParticipantAgent.AgentState] = [:]
    private var mailbox: [(from: String, message: Veil_V1_ParticipantMessage)] = []
    /// Decryption requests not yet answered, and the key holder each is for.
    var toKeyHolder: [Veil_V1_DecryptRequest] = []
    var toKeyHolderIDs: [String] = []
    /// Key holders that deviate: their answer is changed by this before it is handed over.
    var deviations: [String: (inout Veil_V1_DecryptResult) -> Void] = [:]

    static let quiet = Logger(label: "veil.test.round") { _ in SwiftLogNoOpLogHandler() }

    init(clients: Int, paillier: Bool = false, threshold: (t: Int, l: Int)? = nil, directory: URL) throws {
        var c = FederatedConfiguration()
        c.clients = clients
        c.rounds = 1
        c.seed = 11
        // A threshold key is dealt from safe primes: 1024 bits keeps the dealing to seconds.
        network = try NetworkSimulation(
            configuration: c, directory: directory,
            paillierBits: threshold != nil ? 1024 : paillier ? 2048 : nil, thresholdHolders: threshold)
        var agents: [String: ParticipantAgent] = [:]
        for p in network.participants {
            let agent = try ParticipantAgent(configuration: p.join, data: p.data, logger: Self.quiet)
            agents[agent.identity.id] = agent
        }
        self.agents = agents
        keyHolders = try network.keyHolders.map { try KeyHolderAgent(configuration: $0, logger: Self.quiet) }
        let serve = network.serve
        let (_, identity, signingKey) = try serve.tls.credentials(role: .coordinator)
        let model = try makeModel(serve.model.description, featureCount: serve.features, classCount: serve.classes)
        var generator = Xoshiro256(seed: serve.seed, purpose: .initialParameters)
        let task = try RoundTask(
            number: 1, cohortSize: clients, configuration: serve,
            algorithm: serve.initialAlgorithm(model.initialParameters(using: &generator)), privacy: nil)
        let members = agents.keys.sorted().map { id in
            RoundMember(identity: agents[id]!.identity, policy: agents[id]!.hello().policy.declared)
        }
        let credentials = CoordinatorCredentials(identity: identity, signingKey: signingKey)
        let nonce = [UInt8](repeating: 7, count: 32)
        let deadlines = RoundDeadlines(training: .seconds(120), protocolRound: .seconds(30))
        let start: [RoundAction]
        if !keyHolders.isEmpty {
            // Who decrypts, as the coordinator's registry holds it after every holder's Hello.
            var registry = ConnectionRegistry(
                messagesPerSecond: 1, messageBurst: 2,
                threshold: try serve.loadThresholdKey().map {
                    ConnectionRegistry.ThresholdConfiguration(key: $0, holders: serve.keyHolders ?? [])
                })
            for holder in keyHolders {
                let (_, holderIdentity, _) = try holder.configuration.tls.credentials(role: .keyHolder)
                let outbox = AsyncStream.makeStream(of: Veil_V1_CoordinatorMessage.self).continuation
                guard case .keyHolder = registry.register(holderIdentity, hello: holder.hello(), outbox: outbox) else {
                    throw ConfigurationError("the registry refused key holder \(holderIdentity.id)")
                }
            }
            (machine, start) = try RoundMachine.paillier(
                number: 1, attempt: 1, members: members, task: task, maxAddends: serve.cohortSize,
                keyHolding: try #require(registry.keyHolding), coordinator: credentials, nonce: nonce,
                deadlines: deadlines)
        } else {
            (machine, start) = try RoundMachine.masking(
                number: 1, attempt: 1, members: members, task: task, threatModel: serve.coordinatorThreatModel(),
                coordinator: credentials, nonce: nonce, deadlines: deadlines)
        }
        for id in agents.keys {
            states[id] = ParticipantAgent.AgentState(agent: agents[id]!, tally: .init()) { [unowned self] message in
                self.mailbox.append((id, message))
            }
        }
        carryOut(start)
    }

    var ids: [String] { machine.cohort }

    /// Feeds the machine one event and carries out what it asks.
    func handle(_ event: RoundEvent) {
        carryOut(machine.handle(event))
    }

    private func carryOut(_ new: [RoundAction]) {
        actions += new
        for action in new {
            switch action {
            case .send(let message, let id): _ = try? states[id]?.handle(message)
            case .sendToKeyHolder(let message, let id):
                toKeyHolder.append(message.decrypt)
                toKeyHolderIDs.append(id)
            default: break
            }
        }
    }

    /// Delivers messages until nobody has anything to say.
    func settle() {
        while !mailbox.isEmpty || (keyHolderAnswers && !toKeyHolder.isEmpty) {
            if !mailbox.isEmpty {
                let (id, message) = mailbox.removeFirst()
                if silent.contains(id) { continue }
                switch message.kind {
                case .secagg(let m): handle(.secagg(m, from: id))
                case .paillier(let c): handle(.contribution(c, from: id))
                case .decline(let d): handle(.declined(d, from: id))
                default: break
                }
            } else {
                let id = toKeyHolderIDs.removeFirst()
                var answer = keyHolders.first { $0.identity.id == id }!.answer(toKeyHolder.removeFirst())
                deviations[id]?(&answer)
                handle(.decryption(answer, from: id))
            }
        }
    }

    /// The deadline the machine started last passes.
    func deadlinePasses() {
        handle(.deadline(generation: lastDeadline))
        settle()
    }

    var lastDeadline: Int {
        actions.reduce(0) { if case .startDeadline(let g, _) = $1 { return g } else { return $0 } }
    }

    var end: RoundEnd? {
        for case .ended(let end) in actions { return end }
        return nil
    }

    var abort: RoundAbort? {
        if case .aborted(let abort)? = end { return abort }
        return nil
    }

    var survivors: [ParticipantID]? {
        if case .completed(let result)? = end { return result.survivors }
        return nil
    }

    var attributions: [(id: String, code: String)] {
        actions.compactMap { if case .attributed(let id, let code, _, _) = $0 { (id, code) } else { nil } }
    }

    /// A threshold holder that signs a wrong partial: its first partial's value times (1 + n)
    /// — what the unverified combination would silently decrypt to another sum — under its own
    /// signature, so that only the proof gives it away.
    func cheat(_ holder: Int) throws {
        let agent = keyHolders[holder - 1]
        let (_, _, signingKey) = try agent.configuration.tls.credentials(role: .keyHolder)
        let key = try #require(try network.serve.loadThresholdKey())
        guard case .paillier(let collection) = machine.backend else { throw ConfigurationError("not a Paillier round") }
        let session = collection.session
        deviations[agent.identity.id] = { answer in
            guard !answer.partials.isEmpty, let request = self.toKeyHolderRequest else { return }
            let width = key.publicKey.ciphertextByteCount
            var bytes = Array(answer.partials[0])
            let value = BigInt(bigEndian: bytes[0..<width])
            let wrong = (value * (key.publicKey.n + 1)).modulo(key.publicKey.ciphertextModulus)
            bytes.replaceSubrange(0..<width, with: try! wrong.bigEndianBytes(width: width))
            answer.partials[0] = Data(bytes)
            answer.signature = Data(
                signingKey.signature(
                    for: session.partialDecryptionResult(
                        aggregateDigest: PaillierSession.aggregateDigest(request.ciphertexts.map { Array($0) }),
                        holder: holder, partials: answer.partials.map { Array($0) })))
        }
    }

    /// The last decryption request sent.
    var toKeyHolderRequest: Veil_V1_DecryptRequest? {
        for case .sendToKeyHolder(let message, _) in actions.reversed() { return message.decrypt }
        return nil
    }

    var drops: [(id: String, code: String, notice: String?)] {
        actions.compactMap {
            if case .dropped(let id, _, let code, let notice) = $0 { (id, code, notice) } else { nil }
        }
    }

    var refusals: [RefusalReason] {
        actions.compactMap { if case .refused(_, let reason) = $0 { reason } else { nil } }
    }

    /// The released sum's last coordinate: the sum of the contributors' weights n_k / scale.
    func weightCoordinate() throws -> Double? {
        guard case .completed(let result)? = end else { return nil }
        return try machine.codec.decode(result.sum).last
    }

    func expectedWeight(of ids: [String]) -> Double {
        ids.reduce(0) { $0 + Double(agents[$1]!.data!.count) } / network.serve.weightScale
    }
}

@Suite struct RoundMachineTests {
    func bench(_ clients: Int, paillier: Bool = false, threshold: (t: Int, l: Int)? = nil) throws -> (
        RoundBench, URL
    ) {
        let directory = try RepositoryPaths.temporaryDirectory("round-machine")
        return (
            try RoundBench(clients: clients, paillier: paillier, threshold: threshold, directory: directory), directory
        )
    }

    @Test func aMaskingRoundCompletesAndReleasesTheSumOfEveryInput() throws {
        let (bench, directory) = try bench(4)
        defer { try? FileManager.default.removeItem(at: directory) }
        // Assignments to all four, then the training deadline.
        #expect(bench.actions.count(where: { if case .send = $0 { true } else { false } }) == 4)
        #expect(bench.lastDeadline == 1)
        bench.settle()
        #expect(bench.survivors?.count == 4)
        let weight = try #require(try bench.weightCoordinate())
        #expect(abs(weight - bench.expectedWeight(of: bench.ids)) < 1e-6)
        // Four protocol rounds after R0, each with its deadline; no deadline had to pass.
        #expect(bench.lastDeadline == 5)
        #expect(!bench.actions.contains { if case .deadlinePassed = $0 { true } else { false } })
    }

    @Test func aSilentMemberIsDroppedAtTheDeadlineAndTheRoundCompletesWithoutIt() throws {
        let (bench, directory) = try bench(5)
        defer { try? FileManager.default.removeItem(at: directory) }
        let lost = bench.ids[2]
        bench.silent = [lost]
        bench.settle()
        #expect(bench.end == nil, "the round waits for the deadline")
        bench.deadlinePasses()
        #expect(bench.drops.map(\.id) == [lost])
        #expect(bench.drops.first?.code == "noResponse" && bench.drops.first?.notice == nil)
        #expect(bench.survivors?.count == 4)
        let weight = try #require(try bench.weightCoordinate())
        #expect(abs(weight - bench.expectedWeight(of: bench.ids.filter { $0 != lost })) < 1e-6)
    }

    @Test func aDisconnectedMemberClosesTheStageWithoutWaitingForTheDeadline() throws {
        let (bench, directory) = try bench(5)
        defer { try? FileManager.default.removeItem(at: directory) }
        let lost = bench.ids[0]
        bench.silent = [lost]
        bench.settle()
        bench.handle(.disconnected(lost))
        bench.settle()
        #expect(bench.survivors?.count == 4)
        #expect(!bench.actions.contains { if case .deadlinePassed = $0 { true } else { false } })
    }

    @Test func whenNoMemberContributesTheMaskingRoundAbortsAtTheDeadline() throws {
        let (bench, directory) = try bench(3)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.silent = Set(bench.ids)
        bench.settle()
        bench.deadlinePasses()
        #expect(bench.abort?.kind == .secureSum)
        #expect(bench.abort?.detail == "aborted in R0AdvertiseKeys: 0 participants remain, 3 needed")
        #expect(bench.drops.count == 3)
    }

    @Test func aStaleDeadlineAndLateMessagesChangeNothing() throws {
        let (bench, directory) = try bench(3)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.settle()
        #expect(bench.survivors?.count == 3)
        let before = bench.actions.count
        bench.handle(.deadline(generation: 1))
        #expect(bench.actions.count == before)
        // After the end, a participant's message is refused as out of round.
        bench.handle(.secagg(.with { $0.round = 1 }, from: bench.ids[0]))
        #expect(bench.refusals == [.outOfRound])
    }

    @Test func aMessageForAnotherRoundOrFromAStrangerIsRefused() throws {
        let (bench, directory) = try bench(3)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.handle(.secagg(.with { $0.round = 2 }, from: bench.ids[0]))
        bench.handle(.secagg(.with { $0.round = 1 }, from: "participant-99"))
        #expect(bench.refusals == [.outOfRound, .outOfRound])
        bench.settle()
        #expect(bench.survivors?.count == 3)
    }

    // MARK: - Threshold key holders (Specs/paillier.md §6.3)

    @Test func aThresholdRoundIsDecryptedByTOfTheHoldersToTheSumOfEveryInput() throws {
        let (bench, directory) = try bench(3, threshold: (2, 3))
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.settle()
        #expect(
            bench.toKeyHolderIDs.isEmpty
                && Set(
                    bench.actions.compactMap {
                        if case .sendToKeyHolder(_, let id) = $0 { id } else { nil }
                    }) == ["key-holder-1", "key-holder-2", "key-holder-3"]
        )
        #expect(bench.survivors?.count == 3)
        #expect(bench.attributions.isEmpty)
        let weight = try #require(try bench.weightCoordinate())
        #expect(abs(weight - bench.expectedWeight(of: bench.ids)) < 1e-6)
    }

    /// The attack: a holder signs a partial decryption changed by (1 + n). Its proof fails, it
    /// is named with its signed answer as evidence, and the others decrypt the true sum.
    @Test func aHolderWhoseProofFailsIsNamedAndTheOthersDecryptTheTrueSum() throws {
        let (bench, directory) = try bench(3, threshold: (2, 3))
        defer { try? FileManager.default.removeItem(at: directory) }
        try bench.cheat(1)
        bench.settle()
        #expect(bench.attributions.map(\.id) == ["key-holder-1"])
        #expect(bench.attributions.map(\.code) == ["wrong_partial_decryption"])
        guard case .paillier(let collection) = bench.machine.backend else { Issue.record("not Paillier"); return }
        #expect(collection.combinedFrom == [2, 3])
        let weight = try #require(try bench.weightCoordinate())
        #expect(abs(weight - bench.expectedWeight(of: bench.ids)) < 1e-6)
    }

    @Test func cheatersLeavingFewerThanTEndTheAttemptNamingThem() throws {
        let (bench, directory) = try bench(3, threshold: (2, 3))
        defer { try? FileManager.default.removeItem(at: directory) }
        try bench.cheat(1)
        try bench.cheat(3)
        bench.settle()
        #expect(Set(bench.attributions.map(\.id)) == ["key-holder-1", "key-holder-3"])
        #expect(bench.abort?.kind == .keyHolderMalformed)
        #expect(bench.abort?.detail.contains("key-holder-1: a partial decryption whose proof fails") == true)
    }

    /// An answer whose signature does not verify proves nothing against its holder: it is left
    /// out, not attributed, and the others decrypt.
    @Test func anUnsignedAnswerIsLeftOutWithoutAnAttribution() throws {
        let (bench, directory) = try bench(3, threshold: (2, 3))
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.deviations["key-holder-2"] = { $0.signature = Data(repeating: 0, count: 64) }
        bench.settle()
        #expect(bench.attributions.isEmpty)
        guard case .paillier(let collection) = bench.machine.backend else { Issue.record("not Paillier"); return }
        #expect(collection.leftOut.keys.sorted() == [2] && collection.combinedFrom == [1, 3])
        #expect(bench.survivors?.count == 3)
    }

    @Test func holdersThatDoNotAnswerEndTheAttemptAtTheDeadlineNamingThem() throws {
        let (bench, directory) = try bench(3, threshold: (2, 3))
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        #expect(bench.toKeyHolder.count == 3)
        let id = bench.toKeyHolderIDs.removeFirst()
        bench.handle(.decryption(bench.keyHolders[0].answer(bench.toKeyHolder.removeFirst()), from: id))
        #expect(bench.end == nil)
        bench.handle(.deadline(generation: bench.lastDeadline))
        #expect(bench.abort?.kind == .keyHolderSilent)
        #expect(bench.abort?.detail.contains("silent: key-holder-2, key-holder-3") == true)
    }

    /// Each threshold holder checks the request itself, as the one key holder does: a partial
    /// product (a receipt missing), a session that names it under another number, or a holder
    /// that did not sign its share, is refused — and nothing is recorded.
    @Test func eachThresholdHolderRefusesWhatTheOneKeyHolderWould() throws {
        let (bench, directory) = try bench(3, threshold: (2, 3))
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        let request = try #require(bench.toKeyHolder.first)
        let holder = bench.keyHolders[0]
        var partial = request
        partial.receipts.removeLast()
        #expect(holder.answer(partial).refusal.contains("no receipt from position 3"))
        var renumbered = request
        renumbered.thresholdHolders[0].holder = 3
        renumbered.thresholdHolders.removeLast()
        #expect(holder.answer(renumbered).refusal.contains("did not sign its share of this key"))
        var unnamed = request
        unnamed.thresholdHolders.removeFirst()
        #expect(holder.answer(unnamed).refusal.contains("does not name this key holder as holder 1"))
        #expect(holder.record.entries.isEmpty)
        // The request as sent is answered: P partials, signed.
        let answer = holder.answer(request)
        #expect(answer.refusal.isEmpty && answer.holder == 1 && answer.partials.count == request.ciphertexts.count)
        #expect(holder.record.entries.count == 1)
    }

    @Test func refusalsLeavingFewerThanTEndTheAttemptAtOnce() throws {
        let (bench, directory) = try bench(3, threshold: (2, 3))
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        let nonce = try #require(bench.toKeyHolder.first).nonce
        for id in ["key-holder-1", "key-holder-2"] {
            bench.handle(
                .decryption(
                    .with {
                        $0.round = 1; $0.nonce = nonce; $0.refusal = "no"
                    }, from: id))
        }
        #expect(bench.abort?.kind == .keyHolderRefused)
    }

    @Test func aPaillierRoundCompletesWhenEveryMemberContributes() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.settle()
        #expect(bench.survivors?.count == 3)
        let weight = try #require(try bench.weightCoordinate())
        #expect(abs(weight - bench.expectedWeight(of: bench.ids)) < 1e-6)
    }

    @Test func whenNoMemberContributesThePaillierRoundAbortsNamingThem() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.silent = Set(bench.ids)
        bench.settle()
        bench.deadlinePasses()
        #expect(bench.abort?.kind == .missingContributions)
        #expect(bench.abort?.detail.hasPrefix("3 of 3 members did not contribute") == true)
        #expect(bench.machine.missingContributors.sorted() == bench.ids.sorted())
    }

    @Test func theKeyHolderThatDoesNotAnswerAbortsTheRoundAtTheDeadline() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        #expect(bench.machine.stage == .decrypting)
        bench.deadlinePasses()
        #expect(bench.abort == RoundAbort(.keyHolderSilent, "the key holder did not answer before the deadline"))
    }

    /// The key holder decrypts a round once: an attempt it may already have answered is not
    /// thrown away when its stream drops or the coordinator stops; the deadline decides.
    @Test func aKeyHolderLostWhileDecryptingIsWaitedForUntilTheDeadline() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        bench.handle(.keyHolderDisconnected(bench.keyHolder!.identity.id))
        var machine = bench.machine
        #expect(machine.interrupt().isEmpty && bench.end == nil)
        bench.deadlinePasses()
        #expect(bench.abort == RoundAbort(.keyHolderAbsent, "the key holder disconnected and did not answer"))
    }

    /// The review's finding: a key holder that decrypted but whose answer was lost with its
    /// stream refused every later request for the round, which blocked the round for good. Now
    /// the machine asks again, unchanged, when it is back; it answers the same request again.
    @Test func aKeyHolderBackBeforeTheDeadlineIsAskedTheSameAgain() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        #expect(bench.toKeyHolder.count == 1)
        let first = bench.toKeyHolder.removeFirst()
        let lost = bench.keyHolder!.answer(first)  // decrypted and recorded; the answer never arrives
        #expect(lost.refusal.isEmpty && !lost.sum.isEmpty)
        bench.handle(.keyHolderDisconnected(bench.keyHolder!.identity.id))
        bench.handle(.keyHolderConnected(bench.keyHolder!.identity.id))
        #expect(bench.toKeyHolder == [first], "the same request, resent")
        bench.keyHolderAnswers = true
        bench.settle()
        #expect(bench.survivors?.count == 3, "\(String(describing: bench.end))")
    }

    @Test func aKeyHolderAbsentAtTheEndOfCollectionAbortsTheRound() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.handle(.keyHolderDisconnected(bench.keyHolder!.identity.id))
        bench.settle()
        #expect(bench.abort == RoundAbort(.keyHolderAbsent, "the key holder is not connected"))
    }

    @Test func aMalformedContributionDropsOnlyItsSender() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let rogue = bench.ids[1]
        bench.handle(
            .contribution(
                .with {
                    $0.round = 1; $0.ciphertexts = [Data([1, 2, 3])]
                }, from: rogue))
        #expect(bench.drops.map(\.id) == [rogue])
        #expect(bench.drops.first?.notice?.hasPrefix("dropped from round 1") == true)
        bench.silent = [rogue]
        bench.settle()
        // A Paillier sum needs the whole roster: the attempt ends, naming the rogue.
        #expect(bench.abort?.kind == .missingContributions)
        #expect(bench.machine.missingContributors == [rogue])
    }

    @Test func aKeyHolderRefusalAbortsWithItsReason() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        let nonce = try #require(bench.toKeyHolder.first).nonce
        // An answer to another attempt of the round (another nonce) is not this one's.
        let holder = try #require(bench.keyHolder).identity.id
        bench.handle(
            .decryption(
                .with {
                    $0.round = 1; $0.refusal = "stale"; $0.nonce = Data(repeating: 8, count: nonce.count)
                }, from: holder))
        #expect(bench.end == nil && bench.machine.stage == .decrypting)
        bench.handle(
            .decryption(
                .with {
                    $0.round = 1; $0.refusal = "too few\ncontributions"; $0.nonce = nonce
                }, from: holder))
        #expect(bench.abort?.kind == .keyHolderRefused)
        #expect(bench.abort?.detail == "the key holder refused: too few\\ncontributions")
    }

    /// The key holder signs the sum it releases; a sum without its signature — a coordinator's
    /// own, or another aggregate's — is not taken.
    @Test func aSumTheKeyHolderDidNotSignIsNotTaken() throws {
        let (bench, directory) = try bench(3, paillier: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        bench.keyHolderAnswers = false
        bench.settle()
        let request = try #require(bench.toKeyHolder.first)
        var answer = bench.keyHolder!.answer(request)
        #expect(answer.refusal.isEmpty && !answer.signature.isEmpty)
        answer.sum[0] ^= 1
        bench.handle(.decryption(answer, from: bench.keyHolder!.identity.id))
        #expect(bench.abort?.kind == .keyHolderMalformed)
        #expect(bench.abort?.detail == "the key holder's signature on the sum does not verify")
    }

    @Test func anInterruptedRoundEndsAtOnce() throws {
        let (bench, directory) = try bench(3)
        defer { try? FileManager.default.removeItem(at: directory) }
        var machine = bench.machine
        let actions = machine.interrupt()
        guard case .ended(.aborted(let abort))? = actions.first else {
            Issue.record("no end: \(actions)")
            return
        }
        #expect(abort.kind == .interrupted)
    }
}
