import Foundation
import VeilCore
import VeilCrypto
import VeilSecAgg
import X509

/// One exported audit record: its exact bytes, the coordinator's signature and the log
/// (`Specs/audit.md` §3). One JSON file per attempt.
public struct RoundAuditExport: Codable, Sendable {
    public struct Event: Codable, Sendable {
        /// `received`, `deadline` or `sent`.
        public var kind: String
        /// The roster position of a received message's sender (0 otherwise).
        public var party: UInt32
        /// The message, hex (empty for a deadline).
        public var message: String
    }

    /// The record's canonical bytes, base64.
    public var record: String
    public var signature: String
    public var events: [Event]

    init(_ stored: CoordinatorStore.StoredAudit) {
        record = Data(stored.record).base64EncodedString()
        signature = Hex.encode(stored.signature)
        events = stored.events.map { event in
            switch event {
            case .received(let party, let bytes):
                Event(kind: "received", party: party.rawValue, message: Hex.encode(bytes))
            case .deadline: Event(kind: "deadline", party: 0, message: "")
            case .sent(let bytes): Event(kind: "sent", party: 0, message: Hex.encode(bytes))
            }
        }
    }

    /// The file name of a record: `round-R-attempt-A.json`, zero-padded so that names sort.
    static func fileName(round: Int, attempt: Int) -> String {
        String(format: "round-%06d-attempt-%03d.json", round, attempt)
    }
}

/// `veil audit export` and `veil audit verify`.
public enum RoundAudit {
    /// Writes the records of rounds `rounds` from the coordinator's store into `directory`.
    /// - Returns: the files written.
    public static func export(store path: String, rounds: ClosedRange<Int>, to directory: URL) throws -> [String] {
        let store = try CoordinatorStore(readingAt: path)
        let audits = try store.audits(rounds: rounds)
        guard !audits.isEmpty else { throw ConfigurationError("the store has no audit record for rounds \(rounds)") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try audits.map { audit in
            let name = RoundAuditExport.fileName(round: audit.round, attempt: audit.attempt)
            try encoder.encode(RoundAuditExport(audit)).write(to: directory.appendingPathComponent(name))
            return name
        }
    }

    /// What checking one file found.
    public struct FileReport: Sendable {
        public var path: String
        public var round: Int?
        public var attempt: Int?
        public var sequence: Int?
        public var problems: [String]
        /// The record's bytes, for the chain check.
        var bytes: [UInt8]?
        var previous: String?
    }

    /// Checks exported records offline with only the CA certificate: each file on its own
    /// (``check(_:ca:)``), then the chain between the records of consecutive sequence numbers.
    public static func verify(files: [URL], ca: Certificate) -> [FileReport] {
        var reports = files.map { url -> FileReport in
            do { return check(try Data(contentsOf: url), path: url.path, ca: ca) } catch {
                return FileReport(path: url.path, problems: ["cannot read: \(error)"])
            }
        }
        let bySequence = Dictionary(
            reports.enumerated().compactMap { i, r in r.sequence.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        for (i, report) in reports.enumerated() {
            guard let sequence = report.sequence, let previousIndex = bySequence[sequence - 1],
                let previousBytes = reports[previousIndex].bytes
            else { continue }
            if report.previous != Hex.encode(RoundAuditRecord.hash(previousBytes)) {
                reports[i].problems.append(
                    "the chain is broken: `previous` is not the hash of record \(sequence - 1) (\(reports[previousIndex].path))"
                )
            }
        }
        return reports
    }

    /// Checks one exported record: canonical bytes; the coordinator's certificate (issued by
    /// `ca`, role coordinator, valid when the record was made) and its signature; every roster
    /// certificate and key; the session recomputed from the record; the log's digest; then the
    /// replay of the log (``SecAggAudit``), whose outcome must be the record's — survivors, the
    /// sum's digest, attributions.
    static func check(_ data: Data, path: String, ca: Certificate) -> FileReport {
        var report = FileReport(path: path, problems: [])
        func fail(_ problem: String) -> FileReport {
            report.problems.append(problem)
            return report
        }
        let export: RoundAuditExport
        do { export = try JSONDecoder().decode(RoundAuditExport.self, from: data) } catch {
            return fail("not an audit export: \(error)")
        }
        guard let bytes = Data(base64Encoded: export.record).map({ [UInt8]($0) }) else {
            return fail("the record is not base64")
        }
        let record: RoundAuditRecord
        do { record = try JSONDecoder().decode(RoundAuditRecord.self, from: Data(bytes)) } catch {
            return fail("the record does not parse: \(error)")
        }
        report.round = record.round
        report.attempt = record.attempt
        report.sequence = record.sequence
        report.bytes = bytes
        report.previous = record.previous
        guard record.canonicalBytes == bytes else { return fail("the record's bytes are not its canonical encoding") }
        guard record.version == 1 else { return fail("the record's version is \(record.version), not 1") }
        let at = Date(timeIntervalSince1970: record.recorded)

        // The coordinator, and its signature.
        let coordinator: FederationIdentity
        do {
            coordinator = try identity(record.coordinatorCertificate, ca: ca, at: at)
        } catch { return fail("the coordinator's certificate: \(error)") }
        guard coordinator.role == .coordinator else { return fail("the record's signer is not a coordinator") }
        guard let signature = try? Hex.decode(export.signature),
            RoundAuditRecord.isSigned(bytes, signature: signature, by: coordinator.signingKey)
        else { return fail("the coordinator's signature on the record does not verify") }
        guard Hex.encode(coordinator.signingKey.rawRepresentation) == record.session.serverKey else {
            return fail("the session's server key is not the coordinator's certified key")
        }

        // The roster, and the session its members signed into.
        var keys: [Ed25519.PublicKey] = []
        for (position, member) in record.session.roster.enumerated() {
            do {
                let certified = try identity(member.certificate, ca: ca, at: at)
                guard certified.role == .participant, certified.id == member.id,
                    Hex.encode(certified.signingKey.rawRepresentation) == member.key
                else { return fail("roster position \(position + 1) (\(member.id)): certificate and key disagree") }
                keys.append(certified.signingKey)
            } catch { return fail("roster position \(position + 1) (\(member.id)): \(error)") }
        }
        let session: SecAggSession
        do {
            let s = record.session
            guard let adversary = ThreatModel.Adversary(rawValue: s.adversary) else {
                return fail("unknown adversary \(s.adversary)")
            }
            let parameters = try SecAggParameters(
                clientCount: s.clients, threshold: s.threshold, neighborCount: s.neighbors, bitWidth: BitWidth(s.bits),
                dimension: s.dimension,
                threatModel: try ThreatModel(
                    adversary: adversary, corruptFraction: s.corruptFraction, dropoutFraction: s.dropoutFraction,
                    securityBits: s.securityBits))
            session = try SecAggSession(
                parameters: parameters, serverIdentity: coordinator.signingKey, clientIdentities: keys,
                nonce: try Hex.decode(s.nonce), context: try Hex.decode(s.context))
        } catch { return fail("the session's parameters: \(error)") }

        // The log.
        var events: [SecAggAuditEvent] = []
        for (index, event) in export.events.enumerated() {
            guard let message = try? Hex.decode(event.message) else { return fail("event \(index) is not hex") }
            switch event.kind {
            case "received": events.append(.received(ParticipantID(event.party), message))
            case "deadline": events.append(.deadline)
            case "sent": events.append(.sent(message))
            default: return fail("event \(index): unknown kind \(event.kind)")
            }
        }
        guard events.count == record.eventCount, Hex.encode(SecAggAuditEvent.digest(events)) == record.eventsDigest
        else { return fail("the log is not the one the record names (its digest differs)") }

        // The replay: what the recorded messages make the server do.
        let outcome: SecAggAuditOutcome
        do { outcome = try SecAggAudit.replay(events, session: session) } catch { return fail("the log: \(error)") }
        let faults = outcome.attributions.map {
            "\($0.fault.rawValue):\($0.participant.rawValue):\($0.counterpart.rawValue)"
        }
        if faults != record.attributions {
            report.problems.append("the attributions are not the ones the log proves: \(faults)")
        }
        switch (record.outcome, outcome.result) {
        case ("completed", let result?):
            if result.survivors.map(\.rawValue) != record.survivors {
                report.problems.append("the survivors are not the ones the log leaves")
            }
            if Hex.encode(RoundAuditRecord.sumDigest(result.sum)) != record.sumDigest {
                report.problems.append("the released sum is not the one the log's masked inputs and shares give")
            }
        case ("completed", nil):
            report.problems.append(
                "the record says completed, but the log \(outcome.abort.map { "aborts: \($0)" } ?? "does not finish")")
        case ("aborted", _):
            // An attempt can also end after its sum (a release that cannot be decoded, a stop).
            if record.survivors != [] || record.sumDigest != nil {
                report.problems.append("an aborted record names survivors or a sum")
            }
        default:
            report.problems.append("unknown outcome \(record.outcome)")
        }
        return report
    }

    static func identity(_ base64: String, ca: Certificate, at date: Date) throws -> FederationIdentity {
        guard let der = Data(base64Encoded: base64) else { throw ConfigurationError("not base64") }
        return try FederationIdentity(certificate: try Certificate(derEncoded: [UInt8](der)), ca: ca, now: date)
    }
}
