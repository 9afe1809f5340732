import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilSecAgg
import VeilTestSupport
import VeilTransport
import VeilWire

@testable import VeilService

/// A participant holding the coordinator to its records (`Specs/audit.md` §6): each keeps a
/// journal of what it sent and received and the coordinator's receipt for the round's record,
/// and checks exported records against it. The attacks are the coordinator's: another record
/// than the one it acknowledged, a participant's message left out of the log, a message shown
/// to one participant that the log does not hold.
@Suite(.serialized) struct ParticipantAuditTests {
    struct Federation {
        let directory: URL
        let files: [URL]
        let network: NetworkSimulation
        let journals: [String: URL]
    }

    /// Five participants with journals, two rounds, exported.
    static func federation() async throws -> Federation {
        let directory = try RepositoryPaths.temporaryDirectory("veil-participant-audit")
        var c = FederatedConfiguration()
        c.clients = 5
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        var journals: [String: URL] = [:]
        for i in network.participants.indices {
            let journal = directory.appendingPathComponent("journal-\(i)")
            network.participants[i].join.auditJournal = journal.path
            journals["participant-\(i + 1)"] = journal
        }
        let result = try await network.run(logger: quietLogger())
        #expect(result.completedRounds == 2)
        let out = directory.appendingPathComponent("audit")
        let names = try RoundAudit.export(store: network.serve.store, rounds: 1...2, to: out)
        return Federation(
            directory: directory, files: names.map { out.appendingPathComponent($0) }, network: network,
            journals: journals)
    }

    static func checked(_ f: Federation, _ id: String, files: [URL]? = nil) throws -> [RoundAudit.FileReport] {
        let reports = RoundAudit.verify(
            files: files ?? f.files, ca: try FederationCA.loadCertificate(f.network.serve.tls.ca))
        let entries = try AuditJournal(directory: try #require(f.journals[id])).entries()
        return RoundAudit.check(reports, participant: id, journal: entries)
    }

    /// Rewrites one journal entry of a participant.
    static func editJournal(_ f: Federation, _ id: String, _ change: (inout AuditJournalEntry) -> Void) throws {
        let journal = AuditJournal(directory: try #require(f.journals[id]))
        var (_, entry) = try #require(try journal.entries().first)
        change(&entry)
        try journal.write(entry)
    }

    @Test func everyParticipantChecksItsRoundsAndEachDeviationIsNamed() async throws {
        let f = try await Self.federation()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        let ids = f.journals.keys.sorted()
        // Every participant took part in both rounds: an entry each, with a valid receipt, and
        // every record checks against every journal.
        for id in ids {
            let entries = try AuditJournal(directory: try #require(f.journals[id])).entries()
            #expect(entries.count == 2, "\(id): \(entries.map(\.path))")
            #expect(
                entries.allSatisfy { $0.entry.completed == true && $0.entry.receipt != nil && !$0.entry.sent.isEmpty })
            let reports = try Self.checked(f, id)
            #expect(reports.map(\.problems) == [[], []], "\(id): \(reports.map(\.problems))")
            #expect(reports.allSatisfy { $0.notes.isEmpty })
        }
        let id = ids[1]

        // The coordinator re-signs another account of round 1 (here: another time). On its own
        // it verifies — it is signed by the coordinator and its log replays — but it is not the
        // record the participant holds a receipt for.
        let original = try Data(contentsOf: f.files[0])
        let (_, _, signingKey) = try f.network.serve.tls.credentials(role: .coordinator)
        try AuditTests.edit(f.files[0]) { object in
            var record = try JSONDecoder().decode(
                RoundAuditRecord.self, from: Data(base64Encoded: object["record"] as! String)!)
            record.recorded += 1
            let bytes = record.canonicalBytes
            object["record"] = Data(bytes).base64EncodedString()
            object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: signingKey))
        }
        let alone = RoundAudit.verify(
            files: [f.files[0]], ca: try FederationCA.loadCertificate(f.network.serve.tls.ca))
        #expect(alone[0].problems.isEmpty)
        let rewritten = try Self.checked(f, id, files: [f.files[0]])
        #expect(rewritten[0].problems.contains { $0.contains("it signed two accounts") }, "\(rewritten[0].problems)")
        try original.write(to: f.files[0])

        // A message the participant sent that the log does not hold (as the participant's
        // journal has it, the log lacks it): named with its protocol round.
        let journalURL = try #require(f.journals[id])
        let saved = try AuditJournal(directory: journalURL).entries()
        /// Puts the journal back as the participant wrote it, between deviations.
        func restore() throws { for (_, entry) in saved { try AuditJournal(directory: journalURL).write(entry) } }
        try Self.editJournal(f, id) { entry in
            var bytes = try! Hex.decode(entry.sent[1])
            bytes[bytes.count - 1] ^= 1
            entry.sent[1] = Hex.encode(bytes)
        }
        let omitted = try Self.checked(f, id)
        #expect(
            omitted[0].problems.contains { $0.contains("sent a R1ShareKeys message that is not in the log") },
            "\(omitted[0].problems)")

        // A message the server signed for this participant that is not in its log: equivocation.
        try restore()
        try Self.editJournal(f, id) { entry in
            let shown = try! SignedMessage(encoded: Hex.decode(entry.received[0]))
            var body = shown.body
            body[body.count - 1] ^= 1
            entry.received[0] = Hex.encode(SecAggForgery.resigned(shown, body: body, by: signingKey).encoded)
        }
        let equivocated = try Self.checked(f, id)
        #expect(
            equivocated[0].problems == [
                "the server sent \(id) (journal \(saved[0].path)) a R1ShareKeys message that is not in its log: it showed this participant another view"
            ], "\(equivocated[0].problems)")

        // The review's F2: the same change without the coordinator's signature is no evidence —
        // a participant cannot frame an honest coordinator with its own journal.
        try restore()
        try Self.editJournal(f, id) { entry in
            var bytes = try! Hex.decode(entry.received[0])
            bytes[bytes.count - 1] ^= 1
            entry.received[0] = Hex.encode(bytes)
            entry.received.append(String(repeating: "00", count: 200))
        }
        let framed = try Self.checked(f, id)
        #expect(
            framed[0].problems.count == 2 && framed[0].problems.allSatisfy { $0.contains("the journal is at fault") },
            "\(framed[0].problems)")
        // A message of its own the journal leaves out is the journal's gap: the log's copy
        // carries the participant's signature.
        try restore()
        try Self.editJournal(f, id) { entry in entry.sent.removeLast() }
        let gap = try Self.checked(f, id)
        #expect(gap[0].problems.contains { $0.contains("the journal is incomplete") }, "\(gap[0].problems)")

        // The review's F1 and F5: a participant told the round aborted, holding a receipt for a
        // record that says completed, is told so; a withheld record (the latest: no gap in the
        // chain) is named by the journal entry that holds its receipt.
        try restore()
        let withheld = try Self.checked(f, id, files: [f.files[0]])
        #expect(withheld.count == 2 && withheld[0].problems.isEmpty, "\(withheld.map(\.problems))")
        #expect(withheld[1].problems.contains { $0.contains("but no record of that session was given") })
        try Self.editJournal(f, id) { entry in entry.completed = false }
        let toldOtherwise = try Self.checked(f, id)
        #expect(
            toldOtherwise[0].problems.contains { $0.contains("was told the round aborted, the record says completed") },
            "\(toldOtherwise[0].problems)")

        // A receipt that is not the coordinator's signature is the journal's fault, said as such.
        try restore()
        try Self.editJournal(f, id) { entry in
            entry.receipt = String(repeating: "0", count: 128)
        }
        let forged = try Self.checked(f, id)
        #expect(forged[0].problems.contains { $0.contains("the receipt is not the coordinator's signature") })
        try restore()

        // The command: ok for the real records, exit 1 naming the deviation otherwise.
        let ca = f.network.serve.tls.ca
        let ok = try await VeilProcess.run(
            ["audit", "verify", "--ca", ca, "--participant", id, "--journal", journalURL.path] + f.files.map(\.path))
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("ok ") }.count == 2, "\(ok.stdout)")
        try Self.editJournal(f, id) { entry in
            entry.received[0] = entry.received[0].replacingOccurrences(of: "a", with: "b")
        }
        let failed = try await VeilProcess.run(
            ["audit", "verify", "--ca", ca, "--participant", id, "--journal", journalURL.path] + f.files.map(\.path))
        #expect(failed.status == 1)
        #expect(failed.stdout.contains("the journal is at fault"), "\(failed.stdout)")
        let lonely = try await VeilProcess.run(
            ["audit", "verify", "--ca", ca, "--participant", id] + f.files.map(\.path))
        #expect(lonely.status != 0 && lonely.stderr.contains("--participant and --journal go together"))
    }
}

/// The round plan in the export (`Specs/audit.md` §3): its digest is the session's context, so
/// it is the plan every participant signed into; the verifier shows it, privacy first, and
/// checks a distributed-DP plan as a participant does.
@Suite(.serialized) struct AuditPlanTests {
    @Test func theExportShowsTheDPPlanEveryParticipantAcceptedAndAnotherPlanFails() async throws {
        let directory = try RepositoryPaths.temporaryDirectory("veil-audit-plan")
        defer { try? FileManager.default.removeItem(at: directory) }
        var c = FederatedConfiguration()
        c.clients = 4
        c.rounds = 1
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        var privacy = ServicePrivacy(epsilon: 20, mode: .ddg)
        privacy.minContributors = 3
        network.serve.privacy = privacy
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 1)
        let out = directory.appendingPathComponent("audit")
        let file = out.appendingPathComponent(
            try #require(try RoundAudit.export(store: network.serve.store, rounds: 1...1, to: out).first))
        let ca = try FederationCA.loadCertificate(network.serve.tls.ca)

        let report = try #require(RoundAudit.verify(files: [file], ca: ca).first)
        #expect(report.problems.isEmpty, "\(report.problems)")
        // The independent verifier checks the distributed-DP plan too.
        #expect(try await AuditReferenceTests.reference([file], ca: network.serve.tls.ca) == [nil])
        let plan = try #require(report.plan)
        #expect(plan.hasPrefix("distributed DP (ddg): clip 1.0, at least 3 noise shares"), "\(plan)")
        // The ε the verifier states is the mechanism's own, computed as the participants cost it.
        let mechanism = try #require(
            try ServicePrivacyPlan(
                privacy, rounds: 1, updateLength: 650, minParticipants: network.serve.minParticipants,
                cohortSize: network.serve.cohortSize
            ).distributed)
        let epsilon = ServicePrivacyPlan.participation(mechanism).epsilon(delta: 1e-5).epsilon
        #expect(plan.contains("ε = \(String(format: "%.4g", epsilon)) per round at δ = 1e-5"), "\(plan)")

        // Another plan (a larger clip: less privacy than the participants accepted) does not
        // hash to the session's context; no plan at all is refused too.
        let original = try Data(contentsOf: file)
        try AuditTests.edit(file) { object in
            var decoded = try Veil_V1_RoundPlan(
                serializedBytes: [UInt8](Data(base64Encoded: object["plan"] as! String)!))
            decoded.distributedDp.clip *= 10
            object["plan"] = try Data(decoded.serializedBytes() as [UInt8]).base64EncodedString()
        }
        #expect(
            RoundAudit.verify(files: [file], ca: ca)[0].problems == [
                "the round plan is not the one the session binds (its digest is not the session's context)"
            ])
        #expect(try await AuditReferenceTests.reference([file], ca: network.serve.tls.ca) == ["5"])
        try original.write(to: file)
        // A second `plan` key (the review): Swift's decoder and Python's would each keep another
        // one, so both verifiers refuse the file instead.
        var text = try #require(String(data: original, encoding: .utf8))
        text.insert(contentsOf: #""plan" : "AAAA", "#, at: text.index(after: try #require(text.firstIndex(of: "{"))))
        try Data(text.utf8).write(to: file)
        #expect(RoundAudit.verify(files: [file], ca: ca)[0].problems.first?.contains("appears twice") == true)
        #expect(try await AuditReferenceTests.reference([file], ca: network.serve.tls.ca) == ["1"])
        try original.write(to: file)
        try AuditTests.edit(file) { object in object["plan"] = nil }
        #expect(RoundAudit.verify(files: [file], ca: ca)[0].problems == ["the export holds no round plan"])
    }
}
