import Foundation
import VeilCore
import VeilCrypto

/// Runs a whole session in one process: n participant state machines and the server state
/// machine, with chosen dropouts, everything derived from one 32-byte seed. The simulator,
/// the known-answer transcripts and the property tests all drive the protocol through this.
public struct SecAggSimulation {
    /// What to run.
    public struct Configuration: Sendable {
        public var parameters: SecAggParameters
        /// Every key, input, nonce and dropout decision derives from this.
        public var seed: [UInt8]
        /// The probability that a participant drops out in each of `dropRounds`.
        public var dropoutProbability: Double
        /// The rounds in which participants may drop (without sending that round's message).
        public var dropRounds: Set<SecAggRound>
        /// Participants that drop in a given round regardless of the probability.
        public var forcedDrops: [ParticipantID: SecAggRound]
        /// Inputs to use instead of those derived from the seed, one per participant in roster order.
        public var inputs: [ModularVector]?
        /// Whether to keep every message, in order.
        public var recordsTranscript: Bool
        /// Deliver other bytes in place of one message, then stop: how vectors test the
        /// checks of a participant or of the server against a forged or replayed message.
        public var substitution: Substitution?
        /// How many threads each participant and the server use for their endorsement checks
        /// and masks (nil: every core), for measurements on one core; the results do not
        /// depend on it.
        public var workers: Int?
        /// Whether ``Report/unmaskingSeconds`` times the unmasking by itself (for `veil bench`):
        /// before the last R4 message a copy of the server is closed without it and timed — the
        /// same reconstructions and masks, without that message's endorsement checks, which are
        /// R4's receiving and not its unmasking — and counted when the real message then
        /// completes the session with the same sum.
        public var timesUnmaskingAlone = false

        public init(
            parameters: SecAggParameters, seed: [UInt8], dropoutProbability: Double = 0,
            dropRounds: Set<SecAggRound> = [], forcedDrops: [ParticipantID: SecAggRound] = [:],
            inputs: [ModularVector]? = nil, recordsTranscript: Bool = false, substitution: Substitution? = nil
        ) {
            self.substitution = substitution
            self.inputs = inputs
            self.parameters = parameters
            self.seed = seed
            self.dropoutProbability = dropoutProbability
            self.dropRounds = dropRounds
            self.forcedDrops = forcedDrops
            self.recordsTranscript = recordsTranscript
        }
    }

    /// In place of the message at `transcriptIndex` (counting every message produced, from
    /// 0), deliver `deliveries` to the same recipient, in order, from the same sender; then
    /// stop, or, with `continues`, carry on the session with what the recipient did with the
    /// one delivery (a participant's message to the server only).
    public struct Substitution: Sendable {
        public let transcriptIndex: Int
        public let deliveries: [[UInt8]]
        public let continues: Bool

        public init(transcriptIndex: Int, deliveries: [[UInt8]], continues: Bool = false) {
            self.transcriptIndex = transcriptIndex
            self.deliveries = deliveries
            self.continues = continues
        }
    }

    /// What the recipient of a substitution did with each delivery.
    public enum SubstitutionOutcome: Sendable {
        case participant([ClientAction])
        case server([[ServerAction]])
    }

    /// One message as it crossed the (simulated) network.
    public struct TranscriptEntry: Hashable, Sendable {
        public let round: SecAggRound
        public let sender: UInt32
        public let recipient: UInt32
        public let encoded: [UInt8]
    }

    /// Time and traffic of one round.
    public struct RoundReport: Sendable {
        public let round: SecAggRound
        /// Participants that sent their message for this round.
        public var participants = 0
        /// Total participant compute time in the round, seconds.
        public var clientSeconds = 0.0
        /// Server compute time in the round, seconds.
        public var serverSeconds = 0.0
        /// Bytes participants sent to the server.
        public var bytesToServer = 0
        /// Bytes the server sent to participants.
        public var bytesFromServer = 0

        /// Mean compute time per participant that took part.
        public var clientSecondsPerParticipant: Double { participants == 0 ? 0 : clientSeconds / Double(participants) }
        /// Mean bytes sent plus received per participant that took part.
        public var bytesPerParticipant: Double {
            participants == 0 ? 0 : Double(bytesToServer + bytesFromServer) / Double(participants)
        }
    }

    /// The outcome of a run.
    public struct Report: Sendable {
        /// The server's result, or nil when the round aborted.
        public var result: SecureSumResult?
        /// The server's abort, if any.
        public var abort: SecAggAbort?
        /// The plaintext sum of the inputs of `result.survivors`.
        public var expectedSum: ModularVector?
        /// Participants the server dropped, with the round and reason.
        public var dropped: [(ParticipantID, SecAggRound, DropReason)] = []
        /// Shares revealed in R4 that their owners did not endorse, by who revealed them and whose they claimed to be.
        public var wrongShares: [(holder: ParticipantID, owner: ParticipantID)] {
            attributions.filter { $0.fault == .wrongShare }.map { (holder: $0.participant, owner: $0.counterpart) }
        }
        /// Every fault the server attributed, with its evidence.
        public var attributions: [SecAggEvidence] = []
        /// Participants that aborted their own part.
        public var clientAborts: [(ParticipantID, SecAggAbort)] = []
        /// Participants the simulation took offline, and when.
        public var offline: [ParticipantID: SecAggRound] = [:]
        /// Per-round figures, R0 to R4.
        public var rounds: [RoundReport] = SecAggRound.allCases.map { RoundReport(round: $0) }
        /// Every message, when recorded.
        public var transcript: [TranscriptEntry] = []
        /// The recipient's reactions, when a substitution was made (the run stops there).
        public var substitutionOutcome: SubstitutionOutcome?
        /// Seconds the server spent reconstructing the secrets and removing the masks: the event
        /// that finished the round (the last R4 message, with its endorsement checks, or the
        /// deadline), or with ``Configuration/timesUnmaskingAlone`` the unmasking by itself.
        public var unmaskingSeconds = 0.0

        /// Whether the server finished with exactly the sum of its survivors' inputs.
        public var sumCorrect: Bool { result != nil && result?.sum == expectedSum }
        /// Whether the run ended in an abort.
        public var aborted: Bool { abort != nil }
    }

    /// The deterministic identities, inputs and generators of a run.
    public struct Cast {
        public let session: SecAggSession
        public let serverKey: Ed25519.PrivateKey
        public let clientKeys: [Ed25519.PrivateKey]
        public let inputs: [ModularVector]
        public let generatorSeeds: [SecureBytes]

        /// Derives everything from the seed: `VeilKDF(seed, "secagg/simulation", context = what ‖ LE_4(i))`.
        public init(parameters: SecAggParameters, seed: [UInt8], inputs givenInputs: [ModularVector]? = nil) throws {
            let root = SecureBytes(copying: seed)
            func derive(_ what: String, _ index: Int = 0) -> SecureBytes {
                var context = Array(what.utf8)
                withUnsafeBytes(of: UInt32(index).littleEndian) { context += $0 }
                return VeilKDF.derive32(.secAggSimulation, from: root, context: context)
            }
            let n = parameters.clientCount
            serverKey = try Ed25519.PrivateKey(seed: derive("server identity"))
            clientKeys = try (1...n).map { try Ed25519.PrivateKey(seed: derive("identity", $0)) }
            generatorSeeds = (1...n).map { derive("generator", $0) }
            inputs =
                try givenInputs
                ?? (1...n).map { i in
                    var generator = try ChaCha20Generator(seed: derive("input", i))
                    return ModularVector(
                        reducing: (0..<parameters.dimension).map { _ in generator.next() },
                        bitWidth: parameters.bitWidth)
                }
            session = try SecAggSession(
                parameters: parameters, serverIdentity: serverKey.publicKey,
                clientIdentities: clientKeys.map(\.publicKey),
                nonce: derive("nonce").unsafeExposedBytes(), context: derive("context").unsafeExposedBytes())
            dropoutSeed = derive("dropouts")
        }

        let dropoutSeed: SecureBytes
    }

    /// Runs a session to its end. Never hangs: every round closes once its messages are in.
    public static func run(_ configuration: Configuration) throws -> Report {
        let cast = try Cast(
            parameters: configuration.parameters, seed: configuration.seed, inputs: configuration.inputs)
        let n = configuration.parameters.clientCount
        var report = Report()

        // Who goes offline when: draws in participant order, then round order.
        var dropoutDraws = try ChaCha20Generator(seed: cast.dropoutSeed)
        var dropsAt: [ParticipantID: SecAggRound] = configuration.forcedDrops
        for id in cast.session.participants where dropsAt[id] == nil {
            for round in configuration.dropRounds.sorted() {
                let u = Double(dropoutDraws.next() >> 11) * 0x1p-53
                if u < configuration.dropoutProbability {
                    dropsAt[id] = round
                    break
                }
            }
        }

        var server = try SecAggServer(session: cast.session, identityKey: cast.serverKey)
        var clients = try (0..<n).map { i in
            var client = try SecAggClient(
                session: cast.session, id: ParticipantID(UInt32(i + 1)), identityKey: cast.clientKeys[i],
                input: cast.inputs[i],
                generator: try ChaCha20Generator(seed: cast.generatorSeeds[i]))
            if let workers = configuration.workers { client.workers = workers }
            return client
        }
        if let workers = configuration.workers { server.workers = workers }
        var toServer: [(ParticipantID, SignedMessage, Int)] = []
        var produced = 0

        /// Counts and records a message; returns its transcript index.
        func record(_ message: SignedMessage, bytes: Int) -> Int {
            defer { produced += 1 }
            if configuration.recordsTranscript {
                report.transcript.append(
                    TranscriptEntry(
                        round: message.round, sender: message.sender, recipient: message.recipient,
                        encoded: message.encoded))
            }
            let round = Int(message.round.rawValue)
            if message.sender == SignedMessage.server {
                report.rounds[round].bytesFromServer += bytes
            } else {
                report.rounds[round].bytesToServer += bytes
                report.rounds[round].participants += 1
            }
            return produced
        }
        func substituted(_ index: Int) -> [[UInt8]]? {
            guard let substitution = configuration.substitution, substitution.transcriptIndex == index else {
                return nil
            }
            return substitution.deliveries
        }

        func clientActed(_ id: ParticipantID, _ action: ClientAction) {
            switch action {
            case .send(let message):
                toServer.append((id, message, record(message, bytes: message.encoded.count)))
            case .aborted(let abort): report.clientAborts.append((id, abort))
            case .ignored: break
            }
        }

        for i in 0..<n {
            let id = ParticipantID(UInt32(i + 1))
            if dropsAt[id] == .advertiseKeys {
                report.offline[id] = .advertiseKeys
                continue
            }
            let started = ContinuousClock.now
            let action = clients[i].start()
            report.rounds[0].clientSeconds += seconds(since: started)
            clientActed(id, action)
        }

        var finished = false
        while !finished {
            let serverRound = server.round ?? .unmasking
            // Before the last R4 message, the unmasking alone: a copy of the server closes R4
            // without it, timed first so that it meets the caches as the real finish would.
            var replayed: (seconds: Double, sum: ModularVector)?
            if configuration.timesUnmaskingAlone, serverRound == .unmasking, toServer.count == 1 {
                var replay = server
                let started = ContinuousClock.now
                let actions = replay.closeRound()
                if case .completed(let result) = actions.last { replayed = (seconds(since: started), result.sum) }
            }
            let started = ContinuousClock.now
            let actions: [ServerAction]
            if toServer.isEmpty {
                actions = server.closeRound()
            } else {
                let (sender, message, index) = toServer.removeFirst()
                if let substitution = configuration.substitution, substitution.transcriptIndex == index {
                    guard substitution.continues, substitution.deliveries.count == 1 else {
                        report.substitutionOutcome = .server(
                            substitution.deliveries.map { server.receive(encoded: $0, from: sender) })
                        return report
                    }
                    actions = server.receive(encoded: substitution.deliveries[0], from: sender)
                } else {
                    actions = server.receive(message, from: sender)
                }
            }
            let spent = seconds(since: started)
            report.rounds[Int(serverRound.rawValue)].serverSeconds += spent
            if server.round == nil, case .completed(let result) = actions.last {
                // The replay counts only when it removed the same masks.
                report.unmaskingSeconds = replayed.flatMap { $0.sum == result.sum ? $0.seconds : nil } ?? spent
            }
            for action in actions {
                switch action {
                case .send(let message):
                    let index = record(message, bytes: message.encoded.count)
                    let id = ParticipantID(message.recipient)
                    if let round = dropsAt[id], round <= message.round {
                        report.offline[id] = round
                        continue
                    }
                    if let deliveries = substituted(index) {
                        let recipient = Int(message.recipient) - 1
                        report.substitutionOutcome = .participant(
                            deliveries.map { clients[recipient].handle(encoded: $0) })
                        return report
                    }
                    let started = ContinuousClock.now
                    let reply = clients[Int(message.recipient) - 1].handle(message)
                    report.rounds[Int(message.round.rawValue)].clientSeconds += seconds(since: started)
                    clientActed(id, reply)
                case .dropped(let id, let reason):
                    report.dropped.append((id, serverRound, reason))
                case .attributed(let evidence):
                    report.attributions.append(evidence)
                case .completed(let result):
                    report.result = result
                    var expected = ModularVector(
                        zeros: configuration.parameters.dimension, bitWidth: configuration.parameters.bitWidth)
                    for id in result.survivors { try expected.add(cast.inputs[Int(id.rawValue) - 1]) }
                    report.expectedSum = expected
                    finished = true
                case .aborted(let abort):
                    report.abort = abort
                    finished = true
                }
            }
        }
        return report
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
}
