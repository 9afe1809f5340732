import Foundation
import VeilCore
import VeilCrypto
import VeilSecAgg
import VeilWire
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
    /// The round plan's protobuf encoding (`Specs/wire.md` §4), base64: its digest is the
    /// session's context, so it is the plan every participant signed into.
    public var plan: String?
    /// A Paillier record's evidence (`Specs/audit.md` §7.2); nil for a masking record.
    public var paillier: PaillierAuditEvidence?

    init(_ stored: CoordinatorStore.StoredAudit) {
        record = Data(stored.record).base64EncodedString()
        signature = Hex.encode(stored.signature)
        plan = stored.plan.map { Data($0).base64EncodedString() }
        paillier = stored.paillier.flatMap { try? JSONDecoder().decode(PaillierAuditEvidence.self, from: Data($0)) }
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
    public static func export(
        store location: StoreLocation, stores: any StoreDriver = SQLiteStoreDriver(), rounds: ClosedRange<Int>,
        to directory: URL
    ) throws -> [String] {
        let store = try CoordinatorStore(reading: location, driver: stores)
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
        /// Notes that are not failures (a roster member with no journal entry, say).
        public var notes: [String] = []
        /// The record's outcome (`completed` or `aborted`).
        public var outcome: String?
        /// What the round plan asked of the participants, privacy first (when it checked).
        public var plan: String?
        /// The record's bytes, for the chain check.
        var bytes: [UInt8]?
        var previous: String?
        /// What a participant's journal is checked against: the session id (hex), the
        /// coordinator's key, the roster's ids and the log.
        var sessionID: String?
        var serverKey: Ed25519.PublicKey?
        var rosterIDs: [String] = []
        var events: [SecAggAuditEvent] = []
        /// A Paillier record's contributions (position → digest, hex), aggregate digest and
        /// whether it names a released sum: what a journal and the key holder's record check.
        var paillier: (contributions: [UInt32: String], aggregateDigest: String?, released: Bool)?
        /// How many key holders' decryptions release a Paillier sum: 1, or a threshold key's t.
        var decryptionsToRelease = 1
    }

    /// Checks exported records offline with only the CA certificate: each file on its own
    /// (``check(_:ca:)``), then the chain between the records of consecutive sequence numbers.
    public static func verify(files: [URL], ca: Certificate) -> [FileReport] {
        let reports = files.map { url -> FileReport in
            do { return check(try Data(contentsOf: url), path: url.path, ca: ca) } catch {
                return FileReport(path: url.path, problems: ["cannot read: \(error)"])
            }
        }
        return acrossFiles(reports)
    }

    /// The checks across files (`Specs/audit.md` §4, §7.3): two accounts of one sequence number
    /// or session, two released sums of one Paillier round, and the chain.
    static func acrossFiles(_ checked: [FileReport]) -> [FileReport] {
        var reports = checked
        let bySequence = Dictionary(
            reports.enumerated().compactMap { i, r in r.sequence.map { ($0, i) } }, uniquingKeysWith: { a, _ in a })
        // Two different signed records with one sequence number, or two records of one session,
        // are two accounts of history: each is named on both files.
        for (i, report) in reports.enumerated() {
            for (j, other) in reports.enumerated() where j != i {
                guard let bytes = report.bytes, let otherBytes = other.bytes, bytes != otherBytes else { continue }
                if let sequence = report.sequence, sequence == other.sequence {
                    reports[i].problems.append(
                        "\(other.path) is another record with sequence \(sequence): the history was rewritten")
                }
                if let session = report.sessionID, session == other.sessionID {
                    reports[i].problems.append("\(other.path) is another record of the same session")
                }
                // A Paillier round releases one sum: its key holders decrypt a round once
                // (`Specs/paillier.md` §6.1, §6.3), so a second released sum of a round means
                // holders deviated, or a record lies (review, helper-22).
                if let round = report.round, round == other.round, report.paillier?.released == true,
                    other.paillier?.released == true, report.sessionID != other.sessionID
                {
                    reports[i].problems.append("\(other.path) names another released sum of round \(round)")
                }
            }
        }
        for (i, report) in reports.enumerated() {
            // A sequence below 1 has failed its own check; it has no predecessor to name.
            guard let sequence = report.sequence, sequence > 1, let previousIndex = bySequence[sequence - 1],
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
        // A key written twice is refused, not resolved: decoders disagree on which value wins
        // (Swift's keeps one, Python's the other), and two readers must see one export.
        do { try ConfigurationKeys.check([UInt8](data), rules: .audit) } catch {
            return fail("not an audit export: \(error)")
        }
        do { export = try JSONDecoder().decode(RoundAuditExport.self, from: data) } catch {
            return fail("not an audit export: \(error)")
        }
        guard let bytes = strictBase64(export.record) else {
            return fail("the record is not base64")
        }
        struct Kind: Decodable { var secureSum: String? }
        if let secureSum = (try? JSONDecoder().decode(Kind.self, from: Data(bytes)))?.secureSum {
            guard secureSum == "paillier" else { return fail("the record's secureSum is \(secureSum), not paillier") }
            return checkPaillier(export, bytes: bytes, report: report, ca: ca)
        }
        let record: RoundAuditRecord
        do { record = try JSONDecoder().decode(RoundAuditRecord.self, from: Data(bytes)) } catch {
            return fail("the record does not parse: \(error)")
        }
        if let problem = chainedRecordProblem(record, bytes: bytes, report: &report) { return fail(problem) }
        let at = Date(timeIntervalSince1970: record.recorded)

        // The coordinator, and its signature; the roster, and the session its members signed into.
        let coordinator: FederationIdentity
        let keys: [Ed25519.PublicKey]
        do {
            coordinator = try signer(
                of: bytes, signature: export.signature, certificate: record.coordinatorCertificate,
                serverKey: record.session.serverKey, ca: ca, at: at)
            keys = try rosterKeys(record.session.roster, ca: ca, at: at)
        } catch { return fail("\(error)") }
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
                nonce: try strictHex(s.nonce), context: try strictHex(s.context))
        } catch { return fail("the session's parameters: \(error)") }

        // The plan the session binds: what every participant agreed to carry out.
        guard let planText = export.plan, let planBytes = strictBase64(planText) else {
            return fail("the export holds no round plan")
        }
        guard RoundPlanDigest.of(encoded: planBytes) == session.context else {
            return fail("the round plan is not the one the session binds (its digest is not the session's context)")
        }
        do { report.plan = try planSummary(planBytes, session.parameters) } catch {
            return fail("the round plan: \(error)")
        }

        // The log.
        var events: [SecAggAuditEvent] = []
        for (index, event) in export.events.enumerated() {
            guard let message = try? strictHex(event.message) else { return fail("event \(index) is not hex") }
            switch event.kind {
            case "received": events.append(.received(ParticipantID(event.party), message))
            case "deadline": events.append(.deadline)
            case "sent": events.append(.sent(message))
            default: return fail("event \(index): unknown kind \(event.kind)")
            }
        }
        guard events.count == record.eventCount, Hex.encode(SecAggAuditEvent.digest(events)) == record.eventsDigest
        else { return fail("the log is not the one the record names (its digest differs)") }
        report.sessionID = Hex.encode(session.id)
        report.serverKey = coordinator.signingKey
        report.rosterIDs = record.session.roster.map(\.id)
        report.events = events

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
        case ("aborted", let result?):
            // The log completes the secure sum: the coordinator learned it. An attempt can still
            // end after its sum (a release that cannot be decoded), but its record must say which
            // sum was released — else a coordinator could learn a sum, record a failure and ask again.
            if result.survivors.map(\.rawValue) != record.survivors
                || Hex.encode(RoundAuditRecord.sumDigest(result.sum)) != record.sumDigest
            {
                report.problems.append(
                    "the record says aborted, but the log completes the secure sum: the record must name its survivors and sum"
                )
            }
        case ("aborted", nil):
            if record.survivors != [] || record.sumDigest != nil {
                report.problems.append("an aborted record names survivors or a sum the log does not give")
            }
        default:
            report.problems.append("unknown outcome \(record.outcome)")
        }
        return report
    }

    /// What a round plan asked, privacy first; a distributed-DP plan is checked as a participant
    /// checks it before taking part (`Specs/wire.md` §4.3): a valid mechanism whose noise
    /// shares the threshold guarantees, on the session's ring and length.
    /// `parameters` is nil for a Paillier session, which carries no distributed-DP plan (its
    /// noise is summed by masking only).
    static func planSummary(_ bytes: [UInt8], _ parameters: SecAggParameters?) throws -> String {
        let plan = try strictPlan(bytes)
        let k = plan.encoding.subsetSize
        let training =
            "\(plan.training.model), \(plan.training.localEpochs) local epochs"
            + (k > 0 ? "; a coordinate subset of \(k) values" : "")
        guard plan.hasDistributedDp else {
            if plan.training.dpClip > 0 {
                return
                    "central DP: updates clipped to \(plan.training.dpClip); the coordinator adds the noise after the sum (not shown by the log); \(training)"
            }
            return "no differential privacy; \(training)"
        }
        guard let parameters else {
            throw ConfigurationError(
                "a Paillier session carries no distributed-DP plan (its noise is summed by masking)")
        }
        let mechanism = try ServicePrivacyPlan.checked(plan.distributedDp, against: parameters)
        // The noise of a subset round is for its k values (Specs/export.md §5.4).
        guard k == 0 || mechanism.dimension == Int(k) else {
            throw ConfigurationError(
                "the distributed-DP plan is for \(mechanism.dimension) values, but the round sends a subset of \(k)")
        }
        let (epsilon, _) = ServicePrivacyPlan.participation(mechanism).epsilon(delta: 1e-5)
        return
            "distributed DP (\(plan.distributedDp.noise)): clip \(plan.distributedDp.clip), at least \(mechanism.minimumParticipants) noise shares in every released sum, ε = \(String(format: "%.4g", epsilon)) per round at δ = 1e-5; \(training)"
    }

    /// Checks verified records against one participant's journal (`Specs/audit.md` §6): for
    /// every record whose roster names `participant` and whose session the journal holds, the
    /// record must be the one the coordinator's receipt names, the log must hold every message
    /// the participant sent — from its position, unchanged, in order, and nothing else from it —
    /// and every message it received must be in the log as sent by the server. A record that
    /// names the participant without a journal entry gets a note, not a failure.
    public static func check(
        _ reports: [FileReport], participant: String, journal: [(path: String, entry: AuditJournalEntry)]
    ) -> [FileReport] {
        let bySession = Dictionary(
            journal.filter { $0.entry.participant == participant }.map { ($0.entry.session, $0) },
            uniquingKeysWith: { a, _ in a })
        var checked = reports.map { original in
            var report = original
            guard let session = report.sessionID, let position = report.rosterIDs.firstIndex(of: participant) else {
                return report
            }
            guard let (path, entry) = bySession[session] else {
                report.notes.append("\(participant) is in the roster, but its journal has no entry for this session")
                return report
            }
            report.problems += journalProblems(entry, path: path, report: report, position: UInt32(position + 1))
            return report
        }
        // A record the participant holds a receipt for must be among the files: a coordinator
        // that withholds one (the latest leaves no gap in the chain) is caught here.
        let given = Set(reports.compactMap(\.sessionID))
        for (path, entry) in bySession.values.sorted(by: { $0.path < $1.path })
        where entry.recordHash != nil && !given.contains(entry.session) {
            checked.append(
                FileReport(
                    path: path, round: Int(exactly: entry.round),
                    problems: [
                        "\(participant) holds the coordinator's receipt for round \(entry.round) (session \(entry.session.prefix(16))…), but no record of that session was given"
                    ]))
        }
        return checked
    }

    private static func journalProblems(
        _ entry: AuditJournalEntry, path: String, report: FileReport, position: UInt32
    ) -> [String] {
        var problems: [String] = []
        let who = "\(entry.participant) (journal \(path))"
        if entry.position != position {
            problems.append("\(who) took part at position \(entry.position), the record lists it at \(position)")
        }
        if entry.round != UInt64(exactly: report.round ?? -1) {
            problems.append(
                "\(who) took part in this session as round \(entry.round), the record says \(report.round ?? 0)")
        }
        if entry.serverKey != report.serverKey.map({ Hex.encode($0.rawRepresentation) }) {
            problems.append("\(who) was given another server key than the record's")
        }
        if let completed = entry.completed, completed != (report.outcome == "completed") {
            problems.append(
                "\(who) was told the round \(completed ? "completed" : "aborted"), the record says \(report.outcome ?? "-")"
            )
        }
        if let hash = entry.recordHash {
            if !hasValidReceipt(entry, serverKey: report.serverKey) {
                problems.append("\(who): the receipt is not the coordinator's signature over the session and hash")
            } else if hash != report.bytes.map({ Hex.encode(RoundAuditRecord.hash($0)) }) {
                problems.append(
                    "\(who): the coordinator gave a receipt for another record of this session (SHA-256 \(hash)): it signed two accounts"
                )
            }
        } else if entry.completed != nil {
            problems.append("\(who): the round's result came without a receipt for its record")
        }
        if let paillier = report.paillier {
            return problems
                + paillierJournalProblems(entry, who: who, path: path, recorded: paillier.contributions[position])
        }
        let logged = report.events.compactMap { event -> String? in
            if case .received(let party, let bytes) = event, party.rawValue == position { return Hex.encode(bytes) }
            return nil
        }
        if logged != entry.sent {
            let missing = entry.sent.first { !logged.contains($0) }
            let extra = logged.first { !entry.sent.contains($0) }
            if let missing {
                problems.append(
                    "\(who) sent a \(roundName(missing)) message that is not in the log (lost on the way, or left out or changed by the coordinator)"
                )
            } else if let extra {
                // The log's messages from the participant passed the replay's signature check: a
                // message the journal lacks is the journal's gap, not the coordinator's forgery.
                problems.append(
                    "the log holds a \(roundName(extra)) message signed by \(entry.participant) that its journal \(path) does not list (the journal is incomplete)"
                )
            } else {
                problems.append("the log holds \(who)'s messages in another order or number than it sent them")
            }
        }
        let sent = Set(
            report.events.compactMap { event -> String? in
                if case .sent(let bytes) = event { return Hex.encode(bytes) }
                return nil
            })
        // A message in the journal is evidence only if the coordinator signed it, for this
        // session and this participant; anything else is the journal's fault.
        for message in entry.received where !sent.contains(message) {
            guard let bytes = try? strictHex(message), let signed = try? SignedMessage(encoded: bytes),
                let serverKey = report.serverKey, signed.isSigned(by: serverKey), signed.sender == 0,
                Hex.encode(signed.sessionID) == entry.session, signed.recipient == position
            else {
                problems.append(
                    "\(who) lists a received message that the coordinator did not sign for it in this session (the journal is at fault)"
                )
                continue
            }
            problems.append(
                "the server sent \(who) a \(signed.round) message that is not in its log: it showed this participant another view"
            )
        }
        return problems
    }

    /// A Paillier session's journal entry (`Specs/audit.md` §7.4): the contribution the
    /// participant sent (its digest) must be the one the record holds at its position.
    private static func paillierJournalProblems(
        _ entry: AuditJournalEntry, who: String, path: String, recorded: String?
    ) -> [String] {
        guard entry.sent.count <= 1, entry.received.isEmpty else {
            return [
                "\(who) is not a Paillier session's entry (one digest sent, nothing received): the journal is at fault"
            ]
        }
        switch (entry.sent.first, recorded) {
        case (let sent?, nil):
            return [
                "\(who) sent its contribution (SHA-256 \(sent.prefix(16))…), which the record lacks (lost on the way, or left out by the coordinator)"
            ]
        case (let sent?, let recorded?) where sent != recorded:
            return ["\(who) sent a contribution other than the one the record holds at its position"]
        case (nil, _?):
            return [
                "the record holds a contribution receipted by \(entry.participant) that its journal \(path) does not list (the journal is incomplete)"
            ]
        default:
            return []
        }
    }

    /// Checks verified records against the key holders' decryption records (`Specs/audit.md`
    /// §7.3): every decryption a key holder made must be in a record of its session that names
    /// that aggregate, and once as many holders as release a sum (1, or a threshold key's t)
    /// decrypted it, the record must name a released sum — else the coordinator withheld or
    /// misreported it.
    public static func check(_ reports: [FileReport], keyHolderRecords paths: [String]) throws -> [FileReport] {
        var checked = reports
        // Session → the records (by path) that decrypted its aggregate.
        var decryptedBy: [String: Set<String>] = [:]
        // One record given twice (a copy, a symlink, another spelling of its path) is one
        // holder's, not two (review, helper-23): records are told apart by their content.
        var seen: Set<[UInt8]> = []
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError("the key holder's record \(path) does not exist or cannot be read")
            }
            guard seen.insert(SHA256.hash([UInt8](data))).inserted else { continue }
            for decryption in try DecryptionRecord(path: path).entries {
                let what =
                    "the key holder of \(path) decrypted round \(decryption.round) (session \(decryption.session.prefix(16))…)"
                guard let index = checked.firstIndex(where: { $0.sessionID == decryption.session }) else {
                    checked.append(
                        FileReport(
                            path: path, round: Int(exactly: decryption.round),
                            problems: ["\(what), but no record of that session was given"]))
                    continue
                }
                guard let paillier = checked[index].paillier, paillier.aggregateDigest == decryption.aggregate else {
                    checked[index].problems.append("\(what), but the record does not name that aggregate")
                    continue
                }
                decryptedBy[decryption.session, default: []].insert(path)
            }
        }
        for (session, holders) in decryptedBy.sorted(by: { $0.key < $1.key }) {
            let index = checked.firstIndex { $0.sessionID == session }!
            let needed = checked[index].decryptionsToRelease
            if holders.count >= needed, checked[index].paillier?.released != true {
                checked[index].problems.append(
                    "\(holders.count) key holder record(s) show the aggregate decrypted, and \(needed) release its sum, but the record names no sum"
                )
            }
        }
        return checked
    }

    /// Whether the entry's receipt is the coordinator's signature over its session and record hash.
    private static func hasValidReceipt(_ entry: AuditJournalEntry, serverKey: Ed25519.PublicKey?) -> Bool {
        guard let serverKey, let hash = try? strictHex(entry.recordHash ?? ""),
            let receipt = try? strictHex(entry.receipt ?? ""), let session = try? strictHex(entry.session)
        else { return false }
        return RoundAuditRecord.isReceipt(receipt, sessionID: session, recordHash: hash, by: serverKey)
    }

    /// The protocol round of a hex-encoded signed message, for a failure's wording.
    private static func roundName(_ hex: String) -> String {
        guard let bytes = try? strictHex(hex), let message = try? SignedMessage(encoded: bytes) else {
            return "malformed"
        }
        return "\(message.round)"
    }

    /// Step 1's checks of a record of either kind (`Specs/audit.md` §4, §7.3), after it parsed:
    /// its bytes canonical, version 1, sequence, round and attempt at least 1, `previous` 32
    /// bytes of lower-case hex (no later step reads it), `abort` exactly when not completed.
    /// Fills the report's place in the chain first, so that the chain check can name it.
    static func chainedRecordProblem(_ record: some ChainedRecord, bytes: [UInt8], report: inout FileReport)
        -> String?
    {
        report.round = record.round
        report.attempt = record.attempt
        report.outcome = record.outcome
        report.sequence = record.sequence
        report.bytes = bytes
        report.previous = record.previous
        guard record.canonicalBytes == bytes else { return "the record's bytes are not its canonical encoding" }
        guard record.version == 1 else { return "the record's version is \(record.version), not 1" }
        guard record.sequence >= 1, record.round >= 1, record.attempt >= 1 else {
            return "the record's sequence, round and attempt must be at least 1"
        }
        guard record.previous.utf8.count == 64, (try? strictHex(record.previous)) != nil else {
            return "the record's previous is not 32 bytes of lower-case hex"
        }
        guard (record.abort == nil) == (record.outcome == "completed") else {
            return "`abort` must be present exactly when the outcome is not completed"
        }
        return nil
    }

    /// The record's signer (`Specs/audit.md` §4 step 2): a coordinator certified by `ca` at `at`,
    /// whose key signed the bytes and is the session's server key.
    static func signer(
        of bytes: [UInt8], signature: String, certificate: String, serverKey: String, ca: Certificate, at: Date
    ) throws -> FederationIdentity {
        let coordinator: FederationIdentity
        do { coordinator = try identity(certificate, ca: ca, at: at) } catch {
            throw ConfigurationError("the coordinator's certificate: \(error)")
        }
        guard coordinator.role == .coordinator else {
            throw ConfigurationError("the record's signer is not a coordinator")
        }
        guard let signature = try? strictHex(signature),
            RoundAuditRecord.isSigned(bytes, signature: signature, by: coordinator.signingKey)
        else { throw ConfigurationError("the coordinator's signature on the record does not verify") }
        guard Hex.encode(coordinator.signingKey.rawRepresentation) == serverKey else {
            throw ConfigurationError("the session's server key is not the coordinator's certified key")
        }
        return coordinator
    }

    /// The roster's certified keys (§4 step 3): distinct members, each certified by `ca` at `at`
    /// as a participant with its id and key.
    static func rosterKeys(_ roster: [RoundAuditRecord.Member], ca: Certificate, at: Date) throws -> [Ed25519.PublicKey]
    {
        guard Set(roster.map(\.id)).count == roster.count, Set(roster.map(\.key)).count == roster.count else {
            throw ConfigurationError("the roster lists one participant (an id or a key) at two positions")
        }
        var keys: [Ed25519.PublicKey] = []
        for (position, member) in roster.enumerated() {
            let certified: FederationIdentity
            do { certified = try identity(member.certificate, ca: ca, at: at) } catch {
                throw ConfigurationError("roster position \(position + 1) (\(member.id)): \(error)")
            }
            guard certified.role == .participant, certified.id == member.id,
                Hex.encode(certified.signingKey.rawRepresentation) == member.key
            else {
                throw ConfigurationError("roster position \(position + 1) (\(member.id)): certificate and key disagree")
            }
            keys.append(certified.signingKey)
        }
        return keys
    }

    /// The plan, if its bytes are the canonical encoding of a `RoundPlan` with no field its
    /// schema does not name, at any level (strict JSON's plan rule, `Specs/audit.md` §4): a
    /// field of an unexpected wire type, an unknown one or a field written twice could be read
    /// differently by another protobuf library.
    static func strictPlan(_ bytes: [UInt8]) throws -> Veil_V1_RoundPlan {
        let plan = try Veil_V1_RoundPlan(serializedBytes: bytes)
        let unknown =
            [
                plan.unknownFields, plan.model.unknownFields, plan.training.unknownFields, plan.encoding.unknownFields,
                plan.distributedDp.unknownFields, plan.asynchronous.unknownFields,
            ] + plan.model.vectors.map(\.unknownFields)
        guard unknown.allSatisfy({ $0.data.isEmpty }) else {
            throw ConfigurationError("it has a field its schema does not name, or one of another wire type")
        }
        guard try plan.serializedBytes() as [UInt8] == bytes else {
            throw ConfigurationError("its bytes are not the canonical encoding of what they hold")
        }
        return plan
    }

    /// Canonical base64 only (strict JSON, `Specs/audit.md` §4): text that re-encodes to itself —
    /// padded, no stray `=`, zero padding bits — so that no two readers decode it differently.
    static func strictBase64(_ text: String) -> [UInt8]? {
        guard let data = Data(base64Encoded: text), data.base64EncodedString() == text else { return nil }
        return [UInt8](data)
    }

    /// Lower-case hex of even length only (strict JSON, `Specs/audit.md` §4): one spelling for
    /// each byte string, as the records write it.
    static func strictHex(_ text: String) throws -> [UInt8] {
        guard text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw ConfigurationError("hex must be lower case")
        }
        return try Hex.decode(text)
    }

    static func identity(_ base64: String, ca: Certificate, at date: Date) throws -> FederationIdentity {
        guard let der = strictBase64(base64) else { throw ConfigurationError("not canonical base64") }
        return try FederationIdentity(certificate: try Certificate(derEncoded: der), ca: ca, now: date)
    }
}
