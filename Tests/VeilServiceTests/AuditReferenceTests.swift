import Foundation
import Testing
import VeilCore
import VeilCrypto
import VeilSecAgg
import VeilTestSupport
import VeilWire

@testable import VeilService

/// `Specs/reference/audit_reference.py`, a verifier of exported audit records written from
/// `Specs/audit.md` alone, against ``RoundAudit/verify(files:ca:)``: the same verdict on every
/// file of a real federation's export and of tampered copies that reach every check of §4.
@Suite(.serialized) struct AuditReferenceTests {
    /// One tampered copy of the export (two records, chained): what changes, in which file, and
    /// for each file the step of `Specs/audit.md` §4 that must refuse it ("1"…"8", "chain"), nil
    /// where it must pass. Changes go to the second record unless the chain is the point: a
    /// re-signed first record breaks the link from the second, which would hide the check meant.
    struct Case {
        let name: String
        /// Index of the file changed; nil when the files are as exported.
        var file: Int? = 1
        let steps: [String?]
        var foreignCA = false
        var change: (_ object: inout [String: Any], _ key: Ed25519.PrivateKey) throws -> Void = { _, _ in }

        var passes: [Bool] { steps.map { $0 == nil } }
    }

    typealias JSON = [String: Any]

    static func record(_ object: JSON) throws -> RoundAuditRecord {
        let text = try #require(object["record"] as? String)
        let bytes = try #require(Data(base64Encoded: text))
        return try JSONDecoder().decode(RoundAuditRecord.self, from: bytes)
    }

    /// Stores `record` in the export, signed again by the coordinator's key.
    static func resign(_ object: inout JSON, _ record: RoundAuditRecord, _ key: Ed25519.PrivateKey) {
        let bytes = record.canonicalBytes
        object["record"] = Data(bytes).base64EncodedString()
        object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: key))
    }

    /// The record re-signed after `change`.
    static func resigned(_ change: @escaping (inout RoundAuditRecord) -> Void) -> (
        inout JSON, Ed25519.PrivateKey
    ) throws -> Void {
        { object, key in
            var record = try Self.record(object)
            change(&record)
            resign(&object, record, key)
        }
    }

    /// Changes the log, then names its new length and digest in the record and re-signs it: only
    /// the replay can tell.
    static func relogged(_ change: @escaping (inout [JSON], Ed25519.PrivateKey) throws -> Void) -> (
        inout JSON, Ed25519.PrivateKey
    ) throws -> Void {
        { object, key in
            var events = try #require(object["events"] as? [JSON])
            try change(&events, key)
            object["events"] = events
            let log = try events.map { event -> SecAggAuditEvent in
                let message = try Hex.decode(try #require(event["message"] as? String))
                switch event["kind"] as? String {
                case "received":
                    let party = try #require((event["party"] as? NSNumber)?.uint32Value)
                    return .received(ParticipantID(party), message)
                case "deadline": return .deadline
                default: return .sent(message)
                }
            }
            var record = try Self.record(object)
            record.eventCount = log.count
            record.eventsDigest = Hex.encode(SecAggAuditEvent.digest(log))
            resign(&object, record, key)
        }
    }

    /// Flips one hex digit of the message of the first or last event of `kind`.
    static func flip(_ kind: String, first: Bool = false, in events: inout [JSON]) throws {
        let matches = { (event: JSON) in event["kind"] as? String == kind }
        let index = try #require(first ? events.firstIndex(where: matches) : events.lastIndex(where: matches))
        var hex = Array(try #require(events[index]["message"] as? String))
        hex[200] = hex[200] == "0" ? "1" : "0"
        events[index]["message"] = String(hex)
    }

    /// The first message the server sent in `round`, its last byte before the signature flipped
    /// and signed again with the coordinator's key (the session's server key): only the
    /// comparison with what the replay owes can tell.
    static func resignSent(round: UInt8, in events: inout [JSON], key: Ed25519.PrivateKey) throws {
        let index = try #require(
            events.firstIndex { event in
                guard event["kind"] as? String == "sent", let hex = event["message"] as? String,
                    let bytes = try? Hex.decode(hex), bytes.count > 33
                else { return false }
                return bytes[33] == round  // version ‖ session id ‖ round
            })
        var unsigned = Array(try Hex.decode(try #require(events[index]["message"] as? String)).dropLast(64))
        unsigned[unsigned.count - 1] ^= 1
        let signature = key.signature(for: Array("veil/v1/secagg/message".utf8) + [0] + unsigned)
        events[index]["message"] = Hex.encode(unsigned + signature)
    }

    static func flip(_ kind: String) -> (inout JSON, Ed25519.PrivateKey) throws -> Void {
        { object, _ in
            var events = try #require(object["events"] as? [JSON])
            try flip(kind, in: &events)
            object["events"] = events
        }
    }

    static var cases: [Case] {
        [
            Case(name: "the export as it is", file: nil, steps: [nil, nil]),
            Case(name: "the round plan left out", steps: [nil, "5"], change: { object, _ in object["plan"] = nil }),
            Case(
                name: "the round plan changed (another learning rate)", steps: [nil, "5"],
                change: { object, _ in
                    var plan = try Veil_V1_RoundPlan(
                        serializedBytes: [UInt8](try #require(Data(base64Encoded: object["plan"] as! String))))
                    plan.training.learningRate *= 2
                    object["plan"] = Data(try plan.serializedBytes() as [UInt8]).base64EncodedString()
                }),
            Case(name: "a byte of a received message", steps: [nil, "6"], change: flip("received")),
            Case(name: "a byte of a sent message", steps: [nil, "6"], change: flip("sent")),
            Case(
                name: "a byte of the first received message, the log's digest re-signed", steps: [nil, "7"],
                change: relogged { events, _ in try flip("received", first: true, in: &events) }),
            Case(
                name: "a byte of the last sent message, the log's digest re-signed", steps: [nil, "7"],
                change: relogged { events, _ in try flip("sent", in: &events) }),
            Case(
                name: "the first received message dropped, the log's digest re-signed", steps: [nil, "7"],
                change: relogged { events, _ in
                    events.remove(at: try #require(events.firstIndex { $0["kind"] as? String == "received" }))
                }),
            Case(
                name: "the last sent message dropped, the log's digest re-signed", steps: [nil, "7"],
                change: relogged { events, _ in
                    events.remove(at: try #require(events.lastIndex { $0["kind"] as? String == "sent" }))
                }),
            Case(
                name: "a received message's party off the roster, the log's digest re-signed", steps: [nil, "7"],
                change: relogged { events, _ in
                    let index = try #require(events.firstIndex { $0["kind"] as? String == "received" })
                    events[index]["party"] = 99
                }),
            Case(
                name: "a KeysBroadcast changed and signed again with the server key, re-signed", steps: [nil, "7"],
                change: relogged { events, key in try resignSent(round: 1, in: &events, key: key) }),
            Case(
                name: "a SurvivorList changed and signed again with the server key, re-signed", steps: [nil, "7"],
                change: relogged { events, key in try resignSent(round: 3, in: &events, key: key) }),
            Case(
                name: "the first sent message moved before the event that called for it, re-signed",
                steps: [nil, "7"],
                change: relogged { events, _ in
                    let sent = try #require(events.firstIndex { $0["kind"] as? String == "sent" })
                    events.swapAt(sent, sent - 1)
                }),
            Case(
                name: "one byte of the record, not re-signed", steps: [nil, "2"],
                change: { object, _ in
                    let bytes = try #require(Data(base64Encoded: object["record"] as! String))
                    let text = String(decoding: bytes, as: UTF8.self)
                    #expect(text.contains("\"attempt\":1,"))
                    object["record"] = Data(
                        text.replacingOccurrences(of: "\"attempt\":1,", with: "\"attempt\":2,").utf8
                    )
                    .base64EncodedString()
                }),
            Case(
                name: "the record re-signed with a space in its bytes", steps: [nil, "1"],
                change: { object, key in
                    var bytes = try Self.record(object).canonicalBytes
                    bytes.insert(UInt8(ascii: " "), at: 1)
                    object["record"] = Data(bytes).base64EncodedString()
                    object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: key))
                }),
            Case(name: "the record re-signed with version 2", steps: [nil, "1"], change: resigned { $0.version = 2 }),
            // The review's F6 and F3: one participant at two roster positions; two records with
            // one sequence number (history rewritten), which fails both.
            Case(
                name: "the record re-signed with one member at two roster positions", steps: [nil, "3"],
                change: resigned { $0.session.roster[1] = $0.session.roster[0] }),
            Case(
                name: "the second record re-signed with the first one's sequence", steps: ["chain", "chain"],
                change: resigned { $0.sequence = 1 }),
            // The review's crash: the chain check computed sequence − 1 of Int.min and trapped.
            Case(
                name: "the record re-signed with the smallest sequence", steps: [nil, "1"],
                change: resigned { $0.sequence = Int.min }),
            Case(
                name: "the record re-signed with a survivor fewer", steps: [nil, "8"],
                change: resigned { $0.survivors.removeLast() }),
            Case(
                name: "the record re-signed with another sum digest", steps: [nil, "8"],
                change: resigned { $0.sumDigest = String(repeating: "0", count: 64) }),
            Case(
                name: "the record re-signed with an attribution more", steps: [nil, "8"],
                change: resigned { $0.attributions.append("wrongShare:2:3") }),
            Case(
                // An attempt can end after its sum (a release that cannot be decoded): its record
                // then names the sum the coordinator learned, and that is valid.
                name: "the record re-signed as aborted, keeping its survivors and sum", steps: [nil, nil],
                change: resigned {
                    $0.outcome = "aborted"
                    $0.abort = "tooFewSurvivors"
                }),
            // The review's F1: a coordinator that learned the sum records a failure, to ask again.
            Case(
                name: "the record re-signed as aborted, without survivors or sum", steps: [nil, "8"],
                change: resigned {
                    $0.outcome = "aborted"
                    $0.abort = "tooFewSurvivors"
                    $0.survivors = []
                    $0.sumDigest = nil
                }),
            Case(
                name: "the record re-signed with a threshold one higher", steps: [nil, "7"],
                change: resigned { $0.session.threshold += 1 }),
            Case(
                name: "the record re-signed with a threshold the parameter rules refuse", steps: [nil, "4"],
                change: resigned { $0.session.threshold = 1 }),
            Case(
                name: "the record re-signed with another session nonce", steps: [nil, "7"],
                change: resigned { $0.session.nonce = String(repeating: "0", count: 64) }),
            Case(
                name: "the record re-signed with the first two roster members in each other's place",
                steps: [nil, "7"], change: resigned { $0.session.roster.swapAt(0, 1) }),
            Case(
                name: "the record re-signed with two roster members' certificates exchanged", steps: [nil, "3"],
                change: resigned { record in
                    let first = record.session.roster[0].certificate
                    record.session.roster[0].certificate = record.session.roster[1].certificate
                    record.session.roster[1].certificate = first
                }),
            Case(
                name: "the record re-signed with a participant's certificate as the coordinator's", steps: [nil, "2"],
                change: resigned { $0.coordinatorCertificate = $0.session.roster[0].certificate }),
            Case(
                name: "the record re-signed with a time before the certificates", steps: [nil, "2"],
                change: resigned { $0.recorded = 0 }),
            Case(
                name: "record 1 rewritten and re-signed by the coordinator: the chain breaks", file: 0,
                steps: [nil, "chain"], change: resigned { $0.recorded += 1 }),
            Case(name: "a foreign CA", file: nil, steps: ["2", "2"], foreignCA: true),
        ]
    }

    /// The Python verifier's verdicts (`--json`), one per file: nil for a pass, else the step of
    /// its first problem ("step 7: …" gives "7").
    static func reference(_ files: [URL], ca: String) async throws -> [String?] {
        let script = RepositoryPaths.root.appendingPathComponent("Specs/reference/audit_reference.py").path
        let output = try await ProcessRunner.run(
            "/usr/bin/env", ["python3", script, "--json", "--ca", ca] + files.map(\.path))
        #expect(output.status == 0 || output.status == 1, "\(output.stderr)")
        let verdicts = try #require(
            try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]], "\(output.stderr)")
        let steps = verdicts.map { verdict -> String? in
            guard verdict["ok"] as? Bool != true else { return nil }
            let first = (verdict["problems"] as? [String])?.first ?? "step ?: no problem named"
            return first.hasPrefix("step ") ? String(first.dropFirst(5).prefix { $0 != ":" }) : first
        }
        #expect(output.status == (steps.allSatisfy { $0 == nil } ? 0 : 1))
        return steps
    }

    @Test func thePythonVerifierAndRoundAuditGiveTheSameVerdictOnEveryFile() async throws {
        let (directory, files, network) = try await AuditTests.exported()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(files.count == 2)
        let (_, _, key) = try network.serve.tls.credentials(role: .coordinator)
        let foreignDirectory = directory.appendingPathComponent("other-ca")
        let foreign = try FederationCA.create(in: foreignDirectory)
        let originals = try files.map { try Data(contentsOf: $0) }
        for (number, testCase) in Self.cases.enumerated() {
            let folder = directory.appendingPathComponent("case-\(number)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let copies = files.map { folder.appendingPathComponent($0.lastPathComponent) }
            for (original, copy) in zip(originals, copies) { try original.write(to: copy) }
            if let index = testCase.file {
                var object = try #require(try JSONSerialization.jsonObject(with: originals[index]) as? JSON)
                try testCase.change(&object, key)
                try JSONSerialization.data(withJSONObject: object).write(to: copies[index])
            }
            let caPath =
                testCase.foreignCA
                ? foreignDirectory.appendingPathComponent("ca.cert.pem").path : network.serve.tls.ca
            let swift = RoundAudit.verify(
                files: copies, ca: testCase.foreignCA ? foreign.certificate : try FederationCA.loadCertificate(caPath))
            let python = try await Self.reference(copies, ca: caPath)
            let swiftPasses = swift.map(\.problems.isEmpty)
            #expect(swiftPasses == testCase.passes, "\(testCase.name): RoundAudit \(swift.map(\.problems))")
            #expect(python == testCase.steps, "\(testCase.name): audit_reference.py")
            #expect(python.map { $0 == nil } == swiftPasses, "\(testCase.name): the verifiers disagree")
        }
    }
}
