import Foundation
import VeilCore
import VeilCrypto
import VeilSecAgg

/// The project's `VEIL-SECAGG` file: whole protocol runs replayed byte for byte, and forged
/// or replayed messages that a participant or the server must refuse with a named reason.
enum SecAggRunner: VectorRunner {
    static let algorithm = "VEIL-SECAGG"

    struct Drop: Codable, Sendable {
        var participant: UInt32
        var round: UInt8
    }

    struct Group: Codable, Sendable {
        var clients: Int
        var threshold: Int
        var neighbors: Int
        var bits: Int
        var dim: Int
        /// "honest-but-curious" or "malicious".
        var adversary: String
        var corruptFraction: Double
        var dropoutFraction: Double
        var securityBits: Int
        /// The simulation seed: every key, input and nonce derives from it.
        var seed: String
        /// Participants that go offline in a round (they do not send that round's message).
        var drops: [Drop]
        var tests: [Test]
    }

    struct Message: Codable, Sendable, Equatable {
        var round: UInt8
        var sender: UInt32
        var recipient: UInt32
        var message: String
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// "transcript": a whole run; "substitution": other bytes delivered in place of one message.
        var kind: String
        // transcript
        var transcript: [Message]?
        var survivors: [UInt32]?
        var sum: [String]?
        /// The server's abort code, when the run must end in an abort.
        var abort: String?
        /// A transcript whose message `substitutedIndex` was replaced by `substitutedMessage`
        /// (a rogue participant's, signed with its own key) before the run went on.
        var substitutedIndex: Int?
        var substitutedMessage: String?
        /// The faults the server attributed, as "fault:participant:counterpart", in order.
        var attributions: [String]?
        // substitution
        var index: Int?
        var deliveries: [String]?
        /// The party whose refusal is expected: 0 for the server (which drops `dropped`), else a participant.
        var party: UInt32?
        var dropped: UInt32?
        /// A valid substitution a participant answers: the complaints its reply must carry, as
        /// "accused:unsigned" or "accused:undecryptable".
        var complaints: [String]?
    }

    /// A refusal with the code the implementation gave it, for ``judge``.
    struct Refusal: Error {
        let code: String
    }

    static func configuration(_ group: Group) throws -> SecAggSimulation.Configuration {
        let adversary: ThreatModel.Adversary =
            switch group.adversary {
            case "honest-but-curious": .honestButCuriousServer
            case "malicious": .maliciousServer
            default: throw VectorError.unreadable("unknown adversary \(group.adversary)")
            }
        let model = try ThreatModel(
            adversary: adversary, corruptFraction: group.corruptFraction, dropoutFraction: group.dropoutFraction,
            securityBits: group.securityBits)
        let parameters = try SecAggParameters(
            clientCount: group.clients, threshold: group.threshold, neighborCount: group.neighbors,
            bitWidth: BitWidth(group.bits), dimension: group.dim, threatModel: model)
        var drops: [ParticipantID: SecAggRound] = [:]
        for drop in group.drops {
            guard let round = SecAggRound(rawValue: drop.round) else {
                throw VectorError.unreadable("round \(drop.round)")
            }
            drops[ParticipantID(drop.participant)] = round
        }
        return .init(parameters: parameters, seed: try hex(group.seed, "seed"), forcedDrops: drops)
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    var configuration = try configuration(group)
                    switch test.kind {
                    case "transcript":
                        if let index = test.substitutedIndex {
                            configuration.substitution = .init(
                                transcriptIndex: index, deliveries: [try hex(test.substitutedMessage ?? "", "message")],
                                continues: true)
                        }
                        try replay(test, configuration)
                    case "substitution":
                        configuration.substitution = .init(
                            transcriptIndex: test.index ?? -1,
                            deliveries: try (test.deliveries ?? []).map { try hex($0, "deliveries") })
                        try substitute(test, configuration)
                    default: throw VectorError.unreadable("unknown kind \(test.kind)")
                    }
                }
            }
        }
    }

    /// Runs the session again and compares every message, then the result.
    static func replay(_ test: Test, _ configuration: SecAggSimulation.Configuration) throws {
        var configuration = configuration
        configuration.recordsTranscript = true
        let report = try SecAggSimulation.run(configuration)
        let transcript = report.transcript.map {
            Message(
                round: $0.round.rawValue, sender: $0.sender, recipient: $0.recipient, message: Hex.encode($0.encoded))
        }
        let expected = test.transcript ?? []
        try expectEqual(transcript.count, expected.count, "number of messages")
        for (i, (actual, wanted)) in zip(transcript, expected).enumerated() {
            try expectEqual(actual, wanted, "message \(i)")
        }
        try expectEqual(report.attributions.map(describe), test.attributions ?? [], "attributions")
        if let abort = test.abort {
            try expectEqual(report.abort?.reason.code, abort, "abort")
        } else {
            try expectEqual(report.result?.survivors.map(\.rawValue), test.survivors, "survivors")
            try expectEqual(report.result?.sum.elements.map { String($0) }, test.sum, "sum")
            try expectEqual(report.sumCorrect, true, "sum against the plaintext inputs")
        }
    }

    /// Delivers the substituted bytes and checks that the last one is refused as named.
    static func substitute(_ test: Test, _ configuration: SecAggSimulation.Configuration) throws {
        let report = try SecAggSimulation.run(configuration)
        switch report.substitutionOutcome {
        case .participant(let actions)?:
            try expectEqual(test.party != 0, true, "the refusing party")
            for action in actions.dropLast() {
                guard case .send = action else { throw Mismatch("a delivery before the last was refused: \(action)") }
            }
            if case .aborted(let abort)? = actions.last { throw Refusal(code: abort.reason.code) }
            if let complaints = test.complaints {
                guard case .send(let reply)? = actions.last else { throw Mismatch("no reply to the last delivery") }
                try expectEqual(
                    try SecAggForgery.complaints(inMaskedInput: reply.body).map(describe), complaints, "complaints")
            }
        case .server(let deliveries)?:
            try expectEqual(test.party, 0, "the refusing party")
            for action in deliveries.last ?? [] {
                if case .dropped(let id, let reason) = action, id.rawValue == test.dropped {
                    throw Refusal(code: reason.code)
                }
            }
        case nil:
            throw Mismatch("the substituted message was never delivered")
        }
    }

    static func describe(_ evidence: SecAggEvidence) -> String {
        "\(evidence.fault.rawValue):\(evidence.participant.rawValue):\(evidence.counterpart.rawValue)"
    }

    static func describe(_ complaint: ShareComplaint) -> String {
        switch complaint.evidence {
        case .unsigned: "\(complaint.accused):unsigned"
        case .undecryptable: "\(complaint.accused):undecryptable"
        }
    }
}
