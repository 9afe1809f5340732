import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier
import X509

extension RoundAudit {
    /// Checks one exported Paillier record (`Specs/audit.md` §7.3): canonical bytes; the
    /// coordinator's certificate and signature; the roster's and the key holder's certificates;
    /// the session rebuilt, its key signed by the key holder and its announcement by the
    /// coordinator; the plan; every contribution against its member's receipt; the aggregate as
    /// the product of exactly those contributions, re-randomised by the published r_j; the sum
    /// as the key holder signed it; the outcome.
    static func checkPaillier(_ export: RoundAuditExport, bytes: [UInt8], report original: FileReport, ca: Certificate)
        -> FileReport
    {
        var report = original
        func fail(_ problem: String) -> FileReport {
            report.problems.append(problem)
            return report
        }
        // 1. The record.
        let record: PaillierAuditRecord
        do { record = try JSONDecoder().decode(PaillierAuditRecord.self, from: Data(bytes)) } catch {
            return fail("the record does not parse: \(error)")
        }
        if let problem = chainedRecordProblem(record, bytes: bytes, report: &report) { return fail(problem) }
        guard let evidence = export.paillier, export.events.isEmpty else {
            return fail("a Paillier export must hold its evidence (`paillier`) and no log")
        }
        let at = Date(timeIntervalSince1970: record.recorded)

        // 2–3. The coordinator and its signature; the roster; the key holder (or holders).
        let coordinator: FederationIdentity
        let keys: [Ed25519.PublicKey]
        do {
            coordinator = try signer(
                of: bytes, signature: export.signature, certificate: record.coordinatorCertificate,
                serverKey: record.session.serverKey, ca: ca, at: at)
            keys = try rosterKeys(record.session.roster, ca: ca, at: at)
        } catch { return fail("\(error)") }

        // 4. The session: the key as the key holder (or every threshold holder named) signed
        // it, the announcement as the coordinator did.
        let session: PaillierSession
        do {
            session = try paillierSession(record, coordinator: coordinator.signingKey, roster: keys, ca: ca, at: at)
        } catch { return fail("the session: \(error)") }
        let key = session.publicKey

        // 5. The plan the session binds.
        guard let planText = export.plan, let planBytes = strictBase64(planText) else {
            return fail("the export holds no round plan")
        }
        guard RoundPlanDigest.of(encoded: planBytes) == session.context else {
            return fail("the round plan is not the one the session binds (its digest is not the session's context)")
        }
        do { report.plan = try planSummary(planBytes, nil) } catch { return fail("the round plan: \(error)") }

        // 6. Every contribution, against its member's receipt.
        let positions = record.contributions.map(\.position)
        guard positions == positions.sorted(), Set(positions).count == positions.count,
            positions.allSatisfy({ $0 >= 1 && Int($0) <= keys.count })
        else { return fail("the record's contributions are not distinct roster positions in ascending order") }
        guard evidence.contributions.map(\.position) == positions else {
            return fail("the export's contributions are not the record's")
        }
        // Made once the first contribution has shown P ciphertexts: the record's dimension alone
        // could ask for any size.
        var aggregator: PaillierAggregator?
        for (contribution, given) in zip(record.contributions, evidence.contributions) {
            let position = ParticipantID(contribution.position)
            let who = "position \(position.rawValue) (\(record.session.roster[Int(position.rawValue) - 1].id))"
            guard given.ciphertexts.count == session.plaintextCount else {
                return fail(
                    "\(who): \(given.ciphertexts.count) ciphertexts, the session's packing takes \(session.plaintextCount)"
                )
            }
            let ciphertexts: [PaillierCiphertext]
            do { ciphertexts = try given.ciphertexts.map { try key.ciphertext(bigEndian: try strictHex($0)) } } catch {
                return fail("\(who): a ciphertext is malformed: \(error)")
            }
            guard Hex.encode(PaillierReceipt.digest(ciphertexts)) == contribution.digest else {
                return fail("\(who): the ciphertexts are not the ones its receipt's digest names")
            }
            guard let signature = try? strictHex(contribution.receipt),
                PaillierReceipt(
                    position: position, ciphertextDigest: PaillierReceipt.digest(ciphertexts), signature: signature
                ).isValid(in: session)
            else { return fail("\(who): the receipt is not the member's signature of its contribution") }
            do {
                var running =
                    aggregator
                    ?? PaillierAggregator(publicKey: key, packing: session.packing, dimension: session.dimension)
                try running.add(ciphertexts, from: position)
                aggregator = running
            } catch { return fail("\(who): \(error)") }
        }
        report.sessionID = Hex.encode(session.id)
        report.decryptionsToRelease = session.thresholdHolders?.key.threshold ?? 1
        report.serverKey = coordinator.signingKey
        report.rosterIDs = record.session.roster.map(\.id)
        report.paillier = (
            Dictionary(uniqueKeysWithValues: record.contributions.map { ($0.position, $0.digest) }),
            record.aggregateDigest, record.sumDigest != nil
        )

        // 7. The aggregate: the product of exactly these contributions, re-randomised.
        guard let aggregateDigest = record.aggregateDigest else {
            guard record.requestSignature == nil, record.sumDigest == nil, record.resultSignature == nil,
                record.partials == nil, evidence.aggregate.isEmpty, evidence.rerandomization.isEmpty,
                evidence.sum.isEmpty, evidence.partials == nil
            else { return fail("the record asks for no decryption, yet names a request, a sum or their evidence") }
            return checkedOutcome(record, released: false, members: keys.count, report)
        }
        guard positions.count == keys.count, let aggregator else {
            return fail(
                "a decryption was asked for without every member's contribution (the masks cancel only over all)")
        }
        let aggregate: [PaillierCiphertext]
        do {
            guard evidence.aggregate.count == session.plaintextCount else {
                throw ConfigurationError("\(evidence.aggregate.count) ciphertexts, not \(session.plaintextCount)")
            }
            aggregate = try evidence.aggregate.map { try key.ciphertext(bigEndian: try strictHex($0)) }
        } catch { return fail("the export's aggregate: \(error)") }
        guard Hex.encode(PaillierSession.aggregateDigest(aggregate.map { $0.bigEndianBytes() })) == aggregateDigest
        else { return fail("the export's aggregate is not the one the record names") }
        guard let requestSignature = try? strictHex(record.requestSignature ?? ""),
            coordinator.signingKey.isValidSignature(requestSignature, for: session.decryptionRequest(aggregate))
        else { return fail("the coordinator's signature of the decryption request does not verify") }
        do {
            let width = key.modulusByteCount
            let randomness = try evidence.rerandomization.map { text in
                let bytes = try strictHex(text)
                guard bytes.count == width else {
                    throw ConfigurationError("an r of \(bytes.count) bytes, not \(width)")
                }
                return BigInt(bigEndian: bytes)
            }
            guard try aggregator.aggregate(rerandomizedBy: randomness).ciphertexts == aggregate else {
                return fail(
                    "the aggregate is not the product of the contributions re-randomised by the published r: it decrypts to another sum"
                )
            }
        } catch PaillierError.ciphertextOutOfRange {
            return fail("the re-randomisers: an r_j is not in Z*_N")
        } catch { return fail("the re-randomisers: \(error)") }

        // 8. The sum, as the key holder signed it (or as t threshold holders' partials give it).
        guard let sumDigest = record.sumDigest else {
            guard record.resultSignature == nil, record.partials == nil, evidence.sum.isEmpty, evidence.partials == nil
            else {
                return fail("the record names no sum, yet holds the key holder's signature or a sum")
            }
            return checkedOutcome(record, released: false, members: keys.count, report)
        }
        guard let sumBytes = try? strictHex(evidence.sum), sumBytes.count == 8 * session.dimension else {
            return fail("the export's sum is not \(session.dimension) elements of 8 bytes")
        }
        let elements = stride(from: 0, to: sumBytes.count, by: 8).map { start in
            sumBytes[start..<start + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }  // LE_8
        }
        guard let vector = try? ModularVector(elements: elements, bitWidth: session.packing.bitWidth) else {
            return fail("the export's sum has an element not below 2^\(session.packing.bitWidth.bits)")
        }
        guard Hex.encode(RoundAuditRecord.sumDigest(vector)) == sumDigest else {
            return fail("the export's sum is not the one the record names")
        }
        switch session.decryptors {
        case .keyHolder(let holder):
            guard record.partials == nil, evidence.partials == nil,
                let resultSignature = try? strictHex(record.resultSignature ?? ""),
                holder.isValidSignature(
                    resultSignature,
                    for: session.decryptionResult(aggregateDigest: try! strictHex(aggregateDigest), sum: elements))
            else { return fail("the key holder's signature of the sum does not verify") }
        case .threshold(let holders):
            if let problem = thresholdSumProblem(
                record, evidence, session: session, holders: holders, aggregate: aggregate, sum: vector)
            {
                return fail(problem)
            }
        }
        return checkedOutcome(record, released: true, members: keys.count, report)
    }

    /// §7.3 step 8 for a threshold session: at least t answers, each signed by the holder it
    /// names over the partials the export holds, whose proofs all hold and which combine to
    /// the sum — or what is wrong.
    private static func thresholdSumProblem(
        _ record: PaillierAuditRecord, _ evidence: PaillierAuditEvidence, session: PaillierSession,
        holders: ThresholdKeyHolders, aggregate: [PaillierCiphertext], sum: ModularVector
    ) -> String? {
        guard record.resultSignature == nil, let named = record.partials, let given = evidence.partials,
            named.map(\.holder) == given.map(\.holder), named.count >= holders.key.threshold,
            Set(named.map(\.holder)).count == named.count, named.map(\.holder) == named.map(\.holder).sorted()
        else {
            return
                "a threshold sum must name at least t distinct holders' partials, ascending, as the export holds them, and no key holder's signature"
        }
        let aggregateDigest = PaillierSession.aggregateDigest(aggregate.map { $0.bigEndianBytes() })
        var answers: [Int: [PartialDecryption]] = [:]
        for (entry, partials) in zip(named, given) {
            guard let signingKey = holders.signingKeys[entry.holder] else {
                return "holder \(entry.holder)'s partials: the session names no such holder"
            }
            guard let wire = try? partials.values.map({ try strictHex($0) }), wire.count == aggregate.count,
                Hex.encode(SHA256.hash(wire.flatMap { $0 })) == entry.digest,
                let signature = try? strictHex(entry.signature),
                signingKey.isValidSignature(
                    signature,
                    for: session.partialDecryptionResult(
                        aggregateDigest: aggregateDigest, holder: entry.holder, partials: wire))
            else { return "holder \(entry.holder)'s partials are not the ones it signed for this aggregate" }
            do {
                answers[entry.holder] = try zip(wire, aggregate).map { bytes, c in
                    try holders.key.decodePartial(bytes, holder: entry.holder, of: c)
                }
            } catch { return "holder \(entry.holder)'s partials: \(error)" }
        }
        do {
            let (combined, rejected) = try session.combine(answers, of: aggregate)
            guard rejected.isEmpty else {
                return "the partials of holders \(rejected) fail their proofs: the sum was combined from wrong partials"
            }
            guard combined == sum else { return "the threshold holders' partials combine to another sum" }
        } catch { return "the threshold holders' partials do not combine: \(error)" }
        return nil
    }

    /// The session of §7.3 step 4, or why not.
    private static func paillierSession(
        _ record: PaillierAuditRecord, coordinator: Ed25519.PublicKey, roster: [Ed25519.PublicKey], ca: Certificate,
        at: Date
    ) throws -> PaillierSession {
        let s = record.session
        let modulus = try strictHex(s.modulus)
        // The cheap checks and the key holders' signatures before the primality test, whose
        // cost a hostile modulus would otherwise choose.
        guard modulus.first != 0, modulus.count <= PaillierPublicKey.maximumBits / 8 else {
            throw ConfigurationError("the modulus has a leading zero byte, or more than 8192 bits")
        }
        let key: PaillierPublicKey
        let decryptors: PaillierDecryptors
        switch (s.keyHolderCertificate, s.modulusSignature, s.thresholdKey, s.thresholdHolders) {
        case (let certificate?, let signature?, nil, nil):
            let holder: FederationIdentity
            do { holder = try identity(certificate, ca: ca, at: at) } catch {
                throw ConfigurationError("the key holder's certificate: \(error)")
            }
            guard holder.role == .keyHolder else {
                throw ConfigurationError("the key holder's certificate is not a key holder's")
            }
            guard
                PaillierKeyStatement.isSigned(
                    modulus: modulus, signature: try strictHex(signature), by: holder.signingKey)
            else { throw ConfigurationError("the modulus is not the one the key holder signed") }
            key = try PaillierPublicKey(bigEndian: modulus)
            decryptors = .keyHolder(holder.signingKey)
        case (nil, nil, let encodingText?, let named?):
            let encoding = try strictHex(encodingText)
            // Numbers ascending, each once, in 1…64, and at least one signature of a certified
            // holder before the key is read and its n tested (review, helper-22).
            let numbers = named.map(\.holder)
            guard !numbers.isEmpty, numbers == numbers.sorted(), Set(numbers).count == numbers.count,
                numbers.allSatisfy({ (1...ThresholdPaillierPublicKey.maxHolders).contains($0) })
            else {
                throw ConfigurationError(
                    "the threshold holders must be named by distinct numbers in 1…64, ascending, at least one")
            }
            var signingKeys: [Int: Ed25519.PublicKey] = [:]
            for entry in named {
                let holder: FederationIdentity
                do { holder = try identity(entry.certificate, ca: ca, at: at) } catch {
                    throw ConfigurationError("threshold holder \(entry.holder)'s certificate: \(error)")
                }
                guard holder.role == .keyHolder, signingKeys[entry.holder] == nil,
                    ThresholdShareStatement.isSigned(
                        encoding: encoding, holder: entry.holder, signature: try strictHex(entry.signature),
                        by: holder.signingKey)
                else {
                    throw ConfigurationError(
                        "threshold holder \(entry.holder) is named twice, is not a key holder, or did not sign its share of this key"
                    )
                }
                signingKeys[entry.holder] = holder.signingKey
            }
            let thresholdKey = try ThresholdPaillierPublicKey(canonicalEncoding: encoding)
            key = thresholdKey.publicKey
            guard key.bigEndianBytes == modulus else {
                throw ConfigurationError("the modulus is not the threshold key's n")
            }
            decryptors = .threshold(ThresholdKeyHolders(key: thresholdKey, signingKeys: signingKeys))
        default:
            throw ConfigurationError(
                "a session names either one key holder (its certificate and signature of the modulus) or a threshold key and its holders"
            )
        }
        let packing = try PaillierPacking(bitWidth: try BitWidth(s.bits), maxAddends: s.capacity, keyBits: key.bits)
        let session = try PaillierSession(
            publicKey: key, packing: packing, dimension: s.dimension, round: UInt64(record.round),
            nonce: try strictHex(s.nonce), decryptors: decryptors, coordinator: coordinator, roster: roster,
            context: try strictHex(s.context))
        guard coordinator.isValidSignature(try strictHex(s.assignmentSignature), for: session.announcement) else {
            throw ConfigurationError("the coordinator's signature of the session's announcement does not verify")
        }
        return session
    }

    /// §7.3 step 9: a completed record names the sum and every member; an aborted one names
    /// every member when a sum was released (it ended after), none otherwise.
    private static func checkedOutcome(
        _ record: PaillierAuditRecord, released: Bool, members: Int, _ report: FileReport
    ) -> FileReport {
        var report = report
        let everyone = (1...UInt32(members)).map { $0 }
        switch record.outcome {
        case "completed":
            if !released || record.survivors != everyone {
                report.problems.append("a completed record must name the released sum and every member as survivors")
            }
        case "aborted":
            if record.survivors != (released ? everyone : []) {
                report.problems.append(
                    released
                        ? "the key holder released the sum: the aborted record must name every member as survivors"
                        : "an aborted record without a released sum names survivors")
            }
        default:
            report.problems.append("unknown outcome \(record.outcome)")
        }
        return report
    }
}
