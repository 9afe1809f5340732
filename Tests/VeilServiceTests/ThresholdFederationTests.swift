import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilPaillier
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// A Paillier federation whose key is dealt to three key holders, two of whom decrypt
/// (`Specs/paillier.md` §6.3), over loopback gRPC with mutual TLS: the round machine's
/// combination, the holders' own checks and the audit records of the real processes' code.
@Suite(.serialized) struct ThresholdFederationTests {
    /// With a threshold key, an aggregate that t holders' records show decrypted must have its
    /// sum named; one holder's record given twice (a copy) counts once.
    @Test func aRecordGivenTwiceIsOneHolders() throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-threshold-records")
        defer { try? FileManager.default.removeItem(at: directory) }
        let session = String(repeating: "ab", count: 32)
        let aggregate = String(repeating: "cd", count: 32)
        var report = RoundAudit.FileReport(path: "record.json", round: 1, problems: [])
        report.sessionID = session
        report.paillier = ([:], aggregate, false)
        report.decryptionsToRelease = 2
        let line =
            #"{"aggregate":"\#(aggregate)","decrypted_at":"2026-12-04T00:00:00Z","members":["p1","p2","p3"],"round":1,"session":"\#(session)"}"#
            + "\n"
        let first = directory.appendingPathComponent("holder-1.jsonl")
        let copy = directory.appendingPathComponent("copy-of-holder-1.jsonl")
        let second = directory.appendingPathComponent("holder-2.jsonl")
        try Data(line.utf8).write(to: first)
        try Data(line.utf8).write(to: copy)
        try Data(
            line.replacingOccurrences(of: "p1", with: "p1").replacingOccurrences(of: "00:00:00", with: "00:00:01").utf8
        )
        .write(to: second)
        let once = try RoundAudit.check([report], keyHolderRecords: [first.path, copy.path])
        #expect(once.allSatisfy { $0.problems.isEmpty }, "\(once.map(\.problems))")
        let twice = try RoundAudit.check([report], keyHolderRecords: [first.path, second.path])
        #expect(twice[0].problems.first?.contains("2 key holder record(s) show the aggregate decrypted") == true)
    }

    /// Two released sums of one Paillier round (two sessions, each decrypted by its own quorum)
    /// are named on both files; an aborted attempt beside a completed one is not.
    @Test func twoReleasedSumsOfOneRoundAreNamed() {
        func report(_ path: String, round: Int, session: String, released: Bool, sequence: Int) -> RoundAudit.FileReport
        {
            var report = RoundAudit.FileReport(path: path, round: round, problems: [])
            report.sessionID = session
            report.sequence = sequence
            report.bytes = Array(path.utf8)
            // Chained: b's `previous` is a's hash.
            report.previous = sequence == 2 ? Hex.encode(RoundAuditRecord.hash(Array("a".utf8))) : nil
            report.paillier = ([:], released ? "aggregate" : nil, released)
            return report
        }
        let twice = RoundAudit.acrossFiles([
            report("a", round: 4, session: "s1", released: true, sequence: 1),
            report("b", round: 4, session: "s2", released: true, sequence: 2),
        ])
        #expect(
            twice.map(\.problems) == [
                ["b names another released sum of round 4"], ["a names another released sum of round 4"],
            ])
        let once = RoundAudit.acrossFiles([
            report("a", round: 4, session: "s1", released: false, sequence: 1),
            report("b", round: 4, session: "s2", released: true, sequence: 2),
        ])
        #expect(once.allSatisfy { $0.problems.isEmpty })
    }

    @Test func twoOfThreeHoldersDecryptEveryRoundAndTheRecordsRecombineTheSum() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-threshold-federation")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 3
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(
            configuration: c, directory: directory, roundDeadlineSeconds: 20, paillierBits: 1024,
            thresholdHolders: (2, 3))
        // Holder 3 never connects: two of three suffice, and the sessions name only those two.
        let absent = network.keyHolders.removeLast()
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 2, "\(summary.rounds.map(\.abortReason))")
        #expect(summary.rounds.allSatisfy { $0.completed })
        #expect((summary.finalAccuracy ?? 0) > 0.5)
        for holder in network.keyHolders {
            let record = try DecryptionRecord(path: holder.record)
            #expect(record.entry(round: 1) != nil && record.entry(round: 2) != nil, "\(holder.record)")
        }
        #expect(!FileManager.default.fileExists(atPath: absent.record))

        // The records: each names the two holders' signed partials, which recombine to its sum.
        let out = directory.appendingPathComponent("audit")
        let files = try RoundAudit.export(store: network.serve.store, rounds: 1...2, to: out).map {
            out.appendingPathComponent($0)
        }
        let ca = try FederationCA.loadCertificate(network.serve.tls.ca)
        let reports = RoundAudit.verify(files: files, ca: ca)
        #expect(reports.map(\.problems) == [[], []], "\(reports.map(\.problems))")
        let records = network.keyHolders.map(\.record)
        #expect(try RoundAudit.check(reports, keyHolderRecords: records).allSatisfy { $0.problems.isEmpty })
        // The Python verifier, written from Specs/audit.md §7 alone, recombines them too.
        #expect(try await AuditReferenceTests.reference(files, ca: network.serve.tls.ca) == [nil, nil])
        let record = try PaillierAuditTests.record(files[1])
        #expect(record.partials?.map(\.holder) == [1, 2] && record.resultSignature == nil)
        #expect(record.session.thresholdHolders?.map(\.holder) == [1, 2])

        // A partial changed in the export no longer matches its holder's signature.
        let original = try Data(contentsOf: files[1])
        try AuditTests.edit(files[1]) { object in
            var paillier = object["paillier"] as! [String: Any]
            var partials = paillier["partials"] as! [[String: Any]]
            var values = partials[0]["values"] as! [String]
            values[0] = String(values[0].dropLast()) + (values[0].hasSuffix("0") ? "1" : "0")
            partials[0]["values"] = values
            paillier["partials"] = partials
            object["paillier"] = paillier
        }
        let changed = RoundAudit.verify(files: files, ca: ca)
        #expect(
            changed[1].problems == ["holder 1's partials are not the ones it signed for this aggregate"],
            "\(changed[1].problems)")
        #expect(try await AuditReferenceTests.reference(files, ca: network.serve.tls.ca) == [nil, "8"])
        try original.write(to: files[1])

        // The coordinator records a sum of one holder's partials only: fewer than t.
        let (_, _, key) = try network.serve.tls.credentials(role: .coordinator)
        try AuditTests.edit(files[1]) { object in
            var record = try PaillierAuditTests.record(files[1])
            record.partials = Array(record.partials!.prefix(1))
            let bytes = record.canonicalBytes
            object["record"] = Data(bytes).base64EncodedString()
            object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: key))
            var paillier = object["paillier"] as! [String: Any]
            paillier["partials"] = Array((paillier["partials"] as! [[String: Any]]).prefix(1))
            object["paillier"] = paillier
        }
        let short = RoundAudit.verify(files: files, ca: ca)
        let shortProblems = short[1].problems
        #expect(shortProblems.first?.hasPrefix("a threshold sum must name at least t") == true, "\(shortProblems)")
        #expect(try await AuditReferenceTests.reference(files, ca: network.serve.tls.ca) == [nil, "8"])
        try original.write(to: files[1])

        // A hostile record naming holder −1 (re-signed by the coordinator): reported, never a trap
        // (review, helper-22); the Python verifier refuses it at step 3.
        try AuditTests.edit(files[1]) { object in
            var record = try PaillierAuditTests.record(files[1])
            record.session.thresholdHolders![0].holder = -1
            let bytes = record.canonicalBytes
            object["record"] = Data(bytes).base64EncodedString()
            object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: key))
        }
        let hostile = RoundAudit.verify(files: files, ca: ca)
        let hostileProblems = hostile[1].problems
        #expect(hostileProblems.first?.contains("distinct numbers in 1…64") == true, "\(hostileProblems)")
        #expect(try await AuditReferenceTests.reference(files, ca: network.serve.tls.ca) == [nil, "3"])
        try original.write(to: files[1])

        // The command line, with each holder's record.
        let ok = try await VeilProcess.run(
            ["audit", "verify", "--ca", network.serve.tls.ca]
                + records.flatMap { ["--key-holder-record", $0] } + files.map(\.path))
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
    }
}
