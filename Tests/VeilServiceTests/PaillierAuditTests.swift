import Foundation
import Testing
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// Audit records of Paillier rounds (`Specs/audit.md` §7): each attempt's contributions with
/// their members' receipts, the aggregate as their product, the sum the key holder signed —
/// checked offline with the CA certificate, against each participant's journal and against the
/// key holder's own decryption record. The attacks are the coordinator's: a changed
/// contribution, an aggregate that is not the product, another sum, a decryption it hides, a
/// contribution it leaves out, a record it withholds.
@Suite(.serialized) struct PaillierAuditTests {
    struct Federation {
        let directory: URL
        let files: [URL]
        let network: NetworkSimulation
        let journals: [String: URL]
        var ca: String { network.serve.tls.ca }
        var keyHolderRecord: String { network.keyHolders[0].record }
    }

    /// Four participants with journals and a key holder, two rounds; participant 4 contributes
    /// nothing in round 2, so that round has an aborted attempt before the one that completes.
    static func federation() async throws -> Federation {
        let directory = try RepositoryPaths.temporaryDirectory("veil-paillier-audit")
        var c = FederatedConfiguration()
        c.clients = 4
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(
            configuration: c, directory: directory, roundDeadlineSeconds: 20, paillierBits: 1024)
        network.serve.minParticipants = 3
        network.failures = [3: (round: 2, messages: 0)]
        var journals: [String: URL] = [:]
        for i in network.participants.indices {
            let journal = directory.appendingPathComponent("journal-\(i)")
            network.participants[i].join.auditJournal = journal.path
            journals["participant-\(i + 1)"] = journal
        }
        let summary = try await network.run(logger: quietLogger())
        #expect(summary.completedRounds == 2)
        let out = directory.appendingPathComponent("audit")
        let names = try RoundAudit.export(store: network.serve.store, rounds: 1...2, to: out)
        return Federation(
            directory: directory, files: names.map { out.appendingPathComponent($0) }, network: network,
            journals: journals)
    }

    static func verified(_ f: Federation, files: [URL]? = nil) throws -> [RoundAudit.FileReport] {
        RoundAudit.verify(files: files ?? f.files, ca: try FederationCA.loadCertificate(f.ca))
    }

    static func record(_ url: URL) throws -> PaillierAuditRecord {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let text = try #require(object["record"] as? String)
        return try JSONDecoder().decode(PaillierAuditRecord.self, from: try #require(Data(base64Encoded: text)))
    }

    /// The record re-signed by the coordinator after `change`, with its evidence changed by `evidence`.
    static func resign(
        _ url: URL, _ f: Federation, _ change: (inout PaillierAuditRecord) -> Void,
        evidence: (inout [String: Any]) -> Void = { _ in }
    ) throws {
        let (_, _, key) = try f.network.serve.tls.credentials(role: .coordinator)
        var record = try Self.record(url)
        change(&record)
        try AuditTests.edit(url) { object in
            let bytes = record.canonicalBytes
            object["record"] = Data(bytes).base64EncodedString()
            object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: key))
            var paillier = object["paillier"] as! [String: Any]
            evidence(&paillier)
            object["paillier"] = paillier
        }
    }

    /// Rewrites the export's text (as the JSON encoder wrote it: pretty, with " : ").
    static func text(_ url: URL, _ change: (String) -> String) throws {
        try Data(change(try String(contentsOf: url, encoding: .utf8)).utf8).write(to: url)
    }

    /// Another plan for the record: the coordinator binds it as the session's context and signs
    /// the session's announcement again, so that only the plan's own check can refuse it.
    static func replan(_ url: URL, _ f: Federation, _ change: ([UInt8]) -> [UInt8]) throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let planText = try #require(object["plan"] as? String)
        let plan = change([UInt8](try #require(Data(base64Encoded: planText))))
        let (_, _, key) = try f.network.serve.tls.credentials(role: .coordinator)
        var record = try Self.record(url)
        record.session.context = Hex.encode(RoundPlanDigest.of(encoded: plan))
        let s = record.session
        let publicKey = try PaillierPublicKey(bigEndian: try Hex.decode(s.modulus))
        let holder = try RoundAudit.identity(
            try #require(s.keyHolderCertificate), ca: try FederationCA.loadCertificate(f.ca),
            at: Date(timeIntervalSince1970: record.recorded))
        let session = try PaillierSession(
            publicKey: publicKey,
            packing: try PaillierPacking(
                bitWidth: try BitWidth(s.bits), maxAddends: s.capacity, keyBits: publicKey.bits),
            dimension: s.dimension, round: UInt64(record.round), nonce: try Hex.decode(s.nonce),
            keyHolder: holder.signingKey, coordinator: key.publicKey,
            roster: try s.roster.map { try Ed25519.PublicKey(rawRepresentation: try Hex.decode($0.key)) },
            context: try Hex.decode(s.context))
        record.session.assignmentSignature = Hex.encode(key.signature(for: session.announcement))
        try AuditTests.edit(url) { object in
            let bytes = record.canonicalBytes
            object["record"] = Data(bytes).base64EncodedString()
            object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: key))
            object["plan"] = Data(plan).base64EncodedString()
        }
    }

    /// Flips one hex digit in the middle of a hex string.
    static func flipped(_ hex: String) -> String {
        var characters = Array(hex)
        let i = characters.count / 2
        characters[i] = characters[i] == "0" ? "1" : "0"
        return String(characters)
    }

    @Test func aPaillierFederationsRecordsVerifyAndEachDeviationIsNamed() async throws {
        let f = try await Self.federation()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        // Round 1, round 2's aborted attempt, round 2's completed attempt: all check, on their
        // own, against every journal and against the key holder's record.
        #expect(f.files.count == 3, "\(f.files.map(\.lastPathComponent))")
        let reports = try Self.verified(f)
        #expect(reports.map(\.problems) == [[], [], []], "\(reports.map(\.problems))")
        #expect(reports.map(\.outcome) == ["completed", "aborted", "completed"])
        #expect(try RoundAudit.check(reports, keyHolderRecords: [f.keyHolderRecord]).allSatisfy { $0.problems.isEmpty })
        // (Participant 4 may have joined only in round 2, and contributed nothing: no journal.)
        for (id, journal) in f.journals where FileManager.default.fileExists(atPath: journal.path) {
            let checked = RoundAudit.check(
                reports, participant: id, journal: try AuditJournal(directory: journal).entries())
            #expect(checked.allSatisfy { $0.problems.isEmpty }, "\(id): \(checked.map(\.problems))")
        }
        let first = try Self.record(f.files[0])
        #expect(first.contributions.count == first.session.roster.count && first.sumDigest != nil)
        #expect(first.survivors == (1...UInt32(first.session.roster.count)).map { $0 })
        // The aborted attempt holds the three contributions that came, and asked for nothing.
        let aborted = try Self.record(f.files[1])
        #expect(aborted.contributions.count == 3 && aborted.aggregateDigest == nil && aborted.survivors.isEmpty)
        let file = f.files[0]
        let original = try Data(contentsOf: file)
        func problems(_ files: [URL]? = nil) throws -> [String] {
            try Self.verified(f, files: files ?? [file])[0].problems
        }

        // One byte of one member's ciphertexts: its receipt no longer covers them.
        try AuditTests.edit(file) { object in
            var paillier = object["paillier"] as! [String: Any]
            var contributions = paillier["contributions"] as! [[String: Any]]
            var ciphertexts = contributions[1]["ciphertexts"] as! [String]
            ciphertexts[0] = Self.flipped(ciphertexts[0])
            contributions[1]["ciphertexts"] = ciphertexts
            paillier["contributions"] = contributions
            object["paillier"] = paillier
        }
        #expect(try problems().first?.contains("the ciphertexts are not the ones its receipt's digest names") == true)
        try original.write(to: file)

        // Another re-randomiser: the aggregate is no longer the product of the contributions.
        try AuditTests.edit(file) { object in
            var paillier = object["paillier"] as! [String: Any]
            var r = paillier["rerandomization"] as! [String]
            r[0] = Self.flipped(r[0])
            paillier["rerandomization"] = r
            object["paillier"] = paillier
        }
        #expect(try problems().first?.contains("the aggregate is not the product of the contributions") == true)
        try original.write(to: file)

        // Another sum than the key holder released.
        try AuditTests.edit(file) { object in
            var paillier = object["paillier"] as! [String: Any]
            paillier["sum"] = Self.flipped(paillier["sum"] as! String)
            object["paillier"] = paillier
        }
        #expect(try problems() == ["the export's sum is not the one the record names"])
        try original.write(to: file)

        // The coordinator claims the key holder's signature for another sum, re-signing its record.
        try Self.resign(file, f) { $0.sumDigest = Hex.encode(SHA256.hash(Array("another sum".utf8))) }
        #expect(try problems() == ["the export's sum is not the one the record names"])
        try original.write(to: file)

        // A decryption asked for without one member's contribution: the masks would not cancel.
        try Self.resign(file, f) {
            $0.contributions.removeLast()
        } evidence: { paillier in
            paillier["contributions"] = (paillier["contributions"] as! [[String: Any]]).dropLast().map { $0 }
        }
        #expect(try problems().first?.contains("without every member's contribution") == true)
        try original.write(to: file)

        // The rewrites below are of the latest record, whose change breaks no link in the chain.
        let last = f.files[2]
        let latest = try Data(contentsOf: last)
        func withoutDecryption(_ record: inout PaillierAuditRecord) {
            record.outcome = "aborted"
            record.aggregateDigest = nil
            record.requestSignature = nil
            record.sumDigest = nil
            record.resultSignature = nil
            record.survivors = []
        }
        func withoutDecryptionEvidence(_ paillier: inout [String: Any]) {
            paillier["aggregate"] = [String]()
            paillier["rerandomization"] = [String]()
            paillier["sum"] = ""
        }

        // The coordinator hides the decryption: it re-signs the record as aborted before the key
        // holder answered. On its own the record checks — only the key holder can tell.
        try Self.resign(last, f) { record in
            withoutDecryption(&record)
            record.abort = "the key holder did not answer before the deadline"
        } evidence: {
            withoutDecryptionEvidence(&$0)
        }
        let hidden = try Self.verified(f)
        #expect(hidden.map(\.problems) == [[], [], []], "\(hidden.map(\.problems))")
        let held = try RoundAudit.check(hidden, keyHolderRecords: [f.keyHolderRecord])
        let session = try #require(held[2].sessionID)
        #expect(
            held[2].problems == [
                "the key holder of \(f.keyHolderRecord) decrypted round 2 (session \(session.prefix(16))…), but the record does not name that aggregate"
            ], "\(held.map(\.problems))")
        try latest.write(to: last)

        // The coordinator leaves a member's contribution out of an attempt and aborts it for a
        // missing contribution: the record checks, that member's journal does not.
        let roster = try Self.record(last).session.roster
        let victim = try #require(roster.firstIndex { $0.id != "participant-4" })
        try Self.resign(last, f) { record in
            withoutDecryption(&record)
            record.abort = "1 of \(roster.count) members did not contribute (\(roster[victim].id))"
            record.contributions.remove(at: victim)
        } evidence: { paillier in
            var contributions = paillier["contributions"] as! [[String: Any]]
            contributions.remove(at: victim)
            paillier["contributions"] = contributions
            withoutDecryptionEvidence(&paillier)
        }
        let leftOut = try Self.verified(f)
        #expect(leftOut.map(\.problems) == [[], [], []], "\(leftOut.map(\.problems))")
        // What the member holds had the coordinator done it live: an aborted result, with the
        // coordinator's receipt for this very record.
        let journal = AuditJournal(directory: try #require(f.journals[roster[victim].id]))
        let journalled = try journal.entries()
        var entry = try #require(journalled.first { $0.entry.session == leftOut[2].sessionID }).entry
        let recordHash = RoundAuditRecord.hash(try #require(leftOut[2].bytes))
        let (_, _, coordinatorKey) = try f.network.serve.tls.credentials(role: .coordinator)
        entry.completed = false
        entry.recordHash = Hex.encode(recordHash)
        entry.receipt = Hex.encode(
            RoundAuditRecord.receipt(
                sessionID: try Hex.decode(entry.session), recordHash: recordHash, by: coordinatorKey))
        try journal.write(entry)
        let named = RoundAudit.check(leftOut, participant: roster[victim].id, journal: try journal.entries())
        #expect(
            named[2].problems.count == 1 && named[2].problems.first?.contains("which the record lacks") == true,
            "\(named.map(\.problems))")
        try latest.write(to: last)

        // A record withheld: the key holder decrypted round 1, and it is not among the files.
        let withheld = try RoundAudit.check(
            try Self.verified(f, files: Array(f.files.dropFirst())), keyHolderRecords: [f.keyHolderRecord])
        #expect(
            withheld.last?.problems.first?.hasSuffix("but no record of that session was given") == true,
            "\(withheld.map(\.problems))")

        // The command line: ok with the key holder's record, and exit 1 naming a changed byte.
        let ok = try await VeilProcess.run(
            ["audit", "verify", "--ca", f.ca, "--key-holder-record", f.keyHolderRecord] + f.files.map(\.path))
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(ok.stdout.components(separatedBy: "\nok ").count + (ok.stdout.hasPrefix("ok ") ? 1 : 0) >= 3)
        let cut = try await VeilProcess.run(
            ["audit", "verify", "--ca", f.ca, "--key-holder-record", f.keyHolderRecord]
                + f.files.dropFirst().map(\.path))
        #expect(cut.status == 1 && cut.stdout.contains("no record of that session was given"), "\(cut.stdout)")
    }

    /// `Specs/reference/audit_reference.py`, written from `Specs/audit.md` §7 alone, gives
    /// ``RoundAudit``'s verdict on a real federation's Paillier records and on tampered copies,
    /// failing each at the step of §7.3 it is meant to reach.
    @Test func thePythonVerifierGivesTheSameVerdicts() async throws {
        let f = try await Self.federation()
        defer { try? FileManager.default.removeItem(at: f.directory) }
        #expect(try await AuditReferenceTests.reference(f.files, ca: f.ca) == [nil, nil, nil])
        let last = f.files[2]
        let latest = try Data(contentsOf: last)
        func evidence(_ change: @escaping (inout [String: Any]) -> Void) -> () throws -> Void {
            {
                try AuditTests.edit(last) { object in
                    var paillier = object["paillier"] as! [String: Any]
                    change(&paillier)
                    object["paillier"] = paillier
                }
            }
        }
        let cases: [(name: String, step: String, change: () throws -> Void)] = [
            ("the record's secureSum changed", "1", { try Self.resign(last, f) { $0.secureSum = "paillier-v2" } }),
            // Strict JSON (`Specs/audit.md` §4): what two JSON readers could read differently.
            (
                "an escaped duplicate of the key record", "1",
                { try Self.text(last) { $0.replacingFirst("{", with: "{\"r\\u0065cord\": \"e30=\", ") } }
            ),
            (
                "a position written 1.0", "1",
                { try Self.text(last) { $0.replacingFirst("\"position\" : 1", with: "\"position\" : 1.0") } }
            ),
            (
                "a raw tab inside a string", "1",
                { try Self.text(last) { $0.replacingFirst("{", with: "{\"note\": \"a\tb\", ") } }
            ),
            (
                "a lone surrogate escaped in an ignored key", "1",
                { try Self.text(last) { $0.replacingFirst("{", with: "{\"note\": \"\\ud800\", ") } }
            ),
            (
                "the record's base64 with a stray =", "1",
                {
                    try AuditTests.edit(last) { $0["record"] = ($0["record"] as! String) + "=" }
                }
            ),
            ("abort on a completed record", "1", { try Self.resign(last, f) { $0.abort = "none" } }),
            ("previous in upper case", "1", { try Self.resign(last, f) { $0.previous = $0.previous.uppercased() } }),
            (
                "the context in upper case", "4",
                { try Self.resign(last, f) { $0.session.context = $0.session.context.uppercased() } }
            ),
            (
                "a plan with an unknown field, its session announced again", "5",
                {
                    try Self.replan(last, f) { $0 + [0x28, 0x01] }  // field 5, varint 1
                }
            ),
            (
                "a plan with its training written twice (a learning rate of +0.0), announced again", "5",
                {
                    try Self.replan(last, f) { $0 + [0x12, 0x09, 0x21] + [UInt8](repeating: 0, count: 8) }
                }
            ),
            (
                "an event in a Paillier export", "1",
                {
                    try AuditTests.edit(last) { $0["events"] = [["kind": "deadline", "party": 0, "message": ""]] }
                }
            ),
            (
                "the record changed without its signature", "2",
                {
                    try AuditTests.edit(last) { object in
                        let text = String(decoding: Data(base64Encoded: object["record"] as! String)!, as: UTF8.self)
                        object["record"] = Data(
                            text.replacingOccurrences(of: "\"attempt\":2", with: "\"attempt\":3").utf8
                        )
                        .base64EncodedString()
                    }
                }
            ),
            (
                "the key holder's certificate replaced by a participant's", "3",
                {
                    try Self.resign(last, f) { $0.session.keyHolderCertificate = $0.session.roster[0].certificate }
                }
            ),
            (
                "another nonce: the coordinator never announced that session", "4",
                {
                    try Self.resign(last, f) { $0.session.nonce = String(repeating: "0", count: 64) }
                }
            ),
            ("a capacity beyond 2^32", "4", { try Self.resign(last, f) { $0.session.capacity = 1 << 40 } }),
            (
                "one byte of a member's ciphertexts", "6",
                evidence { paillier in
                    var contributions = paillier["contributions"] as! [[String: Any]]
                    var ciphertexts = contributions[0]["ciphertexts"] as! [String]
                    ciphertexts[0] = Self.flipped(ciphertexts[0])
                    contributions[0]["ciphertexts"] = ciphertexts
                    paillier["contributions"] = contributions
                }
            ),
            (
                "another re-randomiser", "7",
                evidence { paillier in
                    var r = paillier["rerandomization"] as! [String]
                    r[0] = Self.flipped(r[0])
                    paillier["rerandomization"] = r
                }
            ),
            (
                "a decryption without one member's contribution", "7",
                {
                    try Self.resign(last, f) {
                        $0.contributions.removeLast()
                    } evidence: { paillier in
                        paillier["contributions"] = (paillier["contributions"] as! [[String: Any]]).dropLast().map {
                            $0
                        }
                    }
                }
            ),
            ("another sum", "8", evidence { $0["sum"] = Self.flipped($0["sum"] as! String) }),
            ("completed, naming fewer survivors", "9", { try Self.resign(last, f) { $0.survivors.removeLast() } }),
        ]
        for testCase in cases {
            try testCase.change()
            let swift = try Self.verified(f).map(\.problems)
            let python = try await AuditReferenceTests.reference(f.files, ca: f.ca)
            #expect(swift.map(\.isEmpty) == [true, true, false], "\(testCase.name): RoundAudit \(swift)")
            #expect(python == [nil, nil, testCase.step], "\(testCase.name): audit_reference.py")
            try latest.write(to: last)
        }
    }
}

extension String {
    /// The text with the first occurrence of `target` replaced (unchanged if there is none).
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
