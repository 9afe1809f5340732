import Foundation
import Testing
import VeilCore
import VeilLearning
import VeilSecAgg
import VeilTestSupport
import VeilTransport

@testable import VeilService

/// Signed, chained round records (`Specs/audit.md`): exported from a real federation's store and
/// checked offline with only the CA certificate; one changed byte anywhere fails, by name.
@Suite(.serialized) struct AuditTests {
    /// A finished federation of two rounds with a rogue (so that a record carries an attribution),
    /// exported: the files, the CA certificate and the coordinator's TLS files.
    static func exported() async throws -> (directory: URL, files: [URL], network: NetworkSimulation) {
        let directory = try RepositoryPaths.temporaryDirectory("veil-audit")
        var c = FederatedConfiguration()
        c.clients = 5
        c.rounds = 2
        c.partition = .iid
        var network = try NetworkSimulation(configuration: c, directory: directory, roundDeadlineSeconds: 10)
        network.misbehaviours = [0: .garbageShares]
        network.serve.excludeAfterFaults = 0
        let result = try await network.run(logger: quietLogger())
        #expect(result.completedRounds == 2)
        let out = directory.appendingPathComponent("audit")
        let names = try RoundAudit.export(store: network.serve.store, rounds: 1...2, to: out)
        return (directory, names.map { out.appendingPathComponent($0) }, network)
    }

    static func problems(_ files: [URL], _ network: NetworkSimulation) throws -> [[String]] {
        RoundAudit.verify(files: files, ca: try FederationCA.loadCertificate(network.serve.tls.ca)).map(\.problems)
    }

    /// Rewrites the JSON of an exported file.
    static func edit(_ url: URL, _ change: (inout [String: Any]) throws -> Void) throws {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        try change(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    @Test func aFederationsRecordsVerifyAndAnyChangeFails() async throws {
        let (directory, files, network) = try await Self.exported()
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(files.count == 2)
        #expect(try Self.problems(files, network) == [[], []])
        let first = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: files[0])) as? [String: Any])
        let encodedRecord = try #require(first["record"] as? String)
        let recordBytes = try #require(Data(base64Encoded: encodedRecord))
        let record = try JSONDecoder().decode(RoundAuditRecord.self, from: recordBytes)
        // The rogue's conviction is in the record (its position, and whichever neighbour's
        // complaint arrived first), and it is not among the survivors.
        #expect(record.attributions.count == 1 && record.attributions[0].hasPrefix("invalidShares:"))
        #expect(record.survivors.count == 4 && record.outcome == "completed" && record.sequence == 1)

        // One byte of one participant's message in the log.
        let original = try Data(contentsOf: files[0])
        try Self.edit(files[0]) { object in
            var events = object["events"] as! [[String: Any]]
            let index = try #require(events.lastIndex { $0["kind"] as? String == "received" })
            var hex = Array(events[index]["message"] as! String)
            hex[200] = hex[200] == "0" ? "1" : "0"
            events[index]["message"] = String(hex)
            object["events"] = events
        }
        let changedEvent = try Self.problems(files, network)
        #expect(changedEvent[0].contains { $0.contains("the log is not the one the record names") }, "\(changedEvent)")
        try original.write(to: files[0])

        // One byte of the record (its attempt number): its signature fails.
        try Self.edit(files[0]) { object in
            let text = String(decoding: Data(base64Encoded: object["record"] as! String)!, as: UTF8.self)
            #expect(text.contains("\"attempt\":1,"))
            let changed = text.replacingOccurrences(of: "\"attempt\":1,", with: "\"attempt\":2,")
            object["record"] = Data(changed.utf8).base64EncodedString()
        }
        let changedRecord = try Self.problems(files, network)
        #expect(changedRecord[0] == ["the coordinator's signature on the record does not verify"], "\(changedRecord)")
        try original.write(to: files[0])

        // History rewritten by the coordinator itself: record 1 re-signed with another time. It
        // verifies on its own, but record 2 names the hash of the original.
        let (_, _, signingKey) = try network.serve.tls.credentials(role: .coordinator)
        try Self.edit(files[0]) { object in
            var rewritten = record
            rewritten.recorded += 1
            let bytes = rewritten.canonicalBytes
            object["record"] = Data(bytes).base64EncodedString()
            object["signature"] = Hex.encode(RoundAuditRecord.sign(bytes, with: signingKey))
        }
        let rewritten = try Self.problems(files, network)
        #expect(rewritten[0].isEmpty, "\(rewritten)")
        #expect(rewritten[1].contains { $0.contains("the chain is broken") }, "\(rewritten)")
        try original.write(to: files[0])

        // A different CA: nothing of this federation verifies.
        let other = try FederationCA.create(in: directory.appendingPathComponent("other-ca"))
        let foreign = RoundAudit.verify(files: files, ca: other.certificate).map(\.problems)
        #expect(foreign.allSatisfy { $0.contains { $0.contains("the coordinator's certificate") } }, "\(foreign)")
    }
}
