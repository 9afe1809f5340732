import Foundation
import VeilCore
import VeilCrypto
import VeilLearning
import VeilPaillier
import VeilPrivacy
import VeilSecAgg
import VeilWire

/// What the coordinator knows of an attempt before its secure sum starts.
struct RoundReport {
    let number: Int
    let attempt: Int
    let cohort: Int
    let started: ContinuousClock.Instant
    let budgetRefusals: [String]
    let budgetAlerts: [String]
}

/// The end of an attempt: the sum released (decoded, noised when the plan says so), the model
/// updated, the ledger charged and the checkpoint written in one transaction, the members told,
/// the metrics counted.
extension Coordinator {
    func conclude(_ report: RoundReport, outcome: RoundEnd, machine: RoundMachine) throws -> RoundSummary {
        let result: SecureSumResult
        switch outcome {
        case .completed(let sum): result = sum
        case .aborted(let abort):
            try record(report, abort: abort, machine: machine)
            return summarize(report, outcome: outcome, machine: machine)
        }
        let sum: [Double]
        do { sum = try release(result, machine: machine) } catch {
            // The secure sum finished, but what it released cannot be applied (a malformed
            // distributed-DP encoding): nothing is charged and the model is unchanged.
            let abort = RoundAbort(.release, "the round's sum could not be decoded: \(error)")
            try record(report, abort: abort, machine: machine, released: result)
            return summarize(report, outcome: .aborted(abort), machine: machine)
        }
        let contributors = result.survivors.map { machine.id(of: $0) }
        let orchestration = orchestrationRecords(machine, contributors: contributors, abort: nil)
        if let privacy {
            // A subset round's mechanism: what the participants charge themselves, at most a full round.
            let cost = machine.distributedMechanism.map(ServicePrivacyPlan.participation) ?? privacy.participation
            ledger?.charge(contributors, round: cost)
        }
        // Asynchronous: every member trained on one offer, so the buffer has one staleness τ, and
        // the step is s(τ) times the buffer's mean update — a stale buffer moves the model less
        // (FedBuff's server rule, §4.4).
        var applied = sum
        if let buffer = currentBuffer, buffer.version <= UInt64(report.number - 1) {
            let s = ServiceAsynchrony.weight(staleness: UInt64(report.number - 1) - buffer.version)
            for i in 0..<(applied.count - 1) { applied[i] *= s }
        }
        algorithm.serverUpdate(sum: applied, contributors: result.survivors.count)
        monitoring.attempt.updateNorm = Self.meanStepNorm(applied)
        let evaluated = evaluationResult()
        lastAccuracy = evaluated?.accuracy ?? lastAccuracy
        let recordHash = try store.finishRound(
            report.number, attempt: report.attempt,
            record: .init(
                outcome: "completed", survivors: result.survivors.count, abortReason: nil,
                transcriptHash: machine.transcript, bytesIn: machine.bytesIn, bytesOut: machine.bytesOut,
                contributors: contributors, participation: orchestration.participation,
                credits: orchestration.credits),
            checkpoint: algorithm, accuracy: evaluated?.accuracy, ledger: ledger,
            audit: auditDraft(machine, result: result, abort: nil))
        learn(orchestration.participation, credits: orchestration.credits)
        completedRounds = report.number
        metrics.set("veil_rounds_completed", Double(completedRounds))
        if let accuracy = evaluated?.accuracy { metrics.set("veil_model_accuracy", accuracy) }
        broadcastResult(
            machine, completed: true, survivors: result.survivors.count, reason: nil, recordHash: recordHash)
        logger.info(
            "round completed",
            metadata: [
                "round": "\(report.number)", "survivors": "\(result.survivors.count)/\(report.cohort)",
                "accuracy": "\(evaluated.map { String(format: "%.4f", $0.accuracy) } ?? "-")",
            ])
        var summary = summarize(report, outcome: outcome, machine: machine, evaluated: evaluated)
        if privacy == nil, sum.count == algorithm.payloadLength { summary.totalWeight = sum.last }
        return summary
    }

    /// The sum as the model update sees it: decoded, with the coordinator's noise in the
    /// central mode (the only release of the sum is the noisy one), or decoded from the
    /// participants' noisy encoding in the distributed modes.
    func release(_ result: SecureSumResult, machine: RoundMachine) throws -> [Double] {
        if case .masking(let masking) = machine.backend, let distributed = masking.distributed {
            // The sum already carries every contributor's noise share; the fixed denominator
            // as in the central mode.
            let decoded = try distributed.mechanism.decode(
                result.sum, bound: privacy!.settings.clip, rotation: distributed.rotation)
            let sum = Array(decoded.prefix(distributed.mechanism.dimension)) + [Double(machine.cohort.count)]
            return machine.subset.map { $0.expand(sum) } ?? sum
        }
        var sum = try machine.codec.decode(result.sum)
        // Central noise on what was summed (a subset's k coordinates), then back in place.
        if let privacy { sum = privacy.release(sum: sum, cohort: machine.cohort.count, round: machine.number) }
        return machine.subset.map { $0.expand(sum) } ?? sum
    }

    /// Writes an aborted (or interrupted) attempt to the store and tells its members. An attempt
    /// that ends after its secure sum (`released`) names that sum in its audit record: the
    /// coordinator learned it (`Specs/audit.md` §4 step 8).
    func record(
        _ report: RoundReport, abort: RoundAbort, machine: RoundMachine?, released: SecureSumResult? = nil
    ) throws {
        // An attempt that failed before its assignments were sent (no machine) has no rows.
        let participation = machine.map { orchestrationRecords($0, contributors: [], abort: abort).participation } ?? []
        let recordHash = try store.finishRound(
            report.number, attempt: report.attempt,
            record: .init(
                outcome: abort.kind == .interrupted ? "interrupted" : "aborted", survivors: 0,
                abortReason: abort.detail, transcriptHash: machine?.transcript ?? [], bytesIn: machine?.bytesIn ?? 0,
                bytesOut: machine?.bytesOut ?? 0, contributors: [], participation: participation),
            checkpoint: nil, accuracy: nil, ledger: nil,
            audit: machine.flatMap { auditDraft($0, result: released, abort: abort) })
        learn(participation, credits: [])
        if let machine {
            broadcastResult(machine, completed: false, survivors: 0, reason: abort.detail, recordHash: recordHash)
        }
        logger.warning(
            "round aborted",
            metadata: ["round": "\(report.number)", "kind": "\(abort.kind.rawValue)", "reason": "\(abort)"])
    }

    /// An attempt's audit record, to be sealed in the transaction that ends the round
    /// (`Specs/audit.md`): a masking record with its log, or a Paillier record with its evidence.
    func auditDraft(_ machine: RoundMachine, result: SecureSumResult?, abort: RoundAbort?) -> CoordinatorStore
        .AuditDraft?
    {
        if let audited = machine.auditedPaillier, case .paillier(let collection) = machine.backend {
            return paillierAuditDraft(machine, collection, audited, abort: abort)
        }
        guard let audited = machine.auditedSession else { return nil }
        let session = audited.session
        let parameters = session.parameters
        let model = parameters.threatModel
        let events = machine.auditLog
        let draft = RoundAuditRecord(
            federation: configuration.federation, sequence: 0, previous: "", round: machine.number,
            attempt: machine.attempt, recorded: Date().timeIntervalSince1970,
            outcome: abort == nil ? "completed" : "aborted", abort: abort.map { "\($0)" },
            session: .init(
                clients: parameters.clientCount, threshold: parameters.threshold, neighbors: parameters.neighborCount,
                bits: parameters.bitWidth.bits, dimension: parameters.dimension, adversary: model.adversary.rawValue,
                corruptFraction: model.corruptFraction, dropoutFraction: model.dropoutFraction,
                securityBits: model.securityBits, nonce: Hex.encode(session.nonce),
                context: Hex.encode(session.context),
                serverKey: Hex.encode(session.serverIdentity.rawRepresentation),
                roster: zip(audited.members, session.clientIdentities).map { member, key in
                    .init(
                        id: member.id, key: Hex.encode(key.rawRepresentation),
                        certificate: Data(member.certificateDER).base64EncodedString())
                }),
            coordinatorCertificate: Data(credentials.identity.certificateDER).base64EncodedString(),
            survivors: result?.survivors.map(\.rawValue) ?? [],
            sumDigest: result.map { Hex.encode(RoundAuditRecord.sumDigest($0.sum)) },
            attributions: machine.auditedFaults, eventsDigest: Hex.encode(SecAggAuditEvent.digest(events)),
            eventCount: events.count)
        let key = credentials.signingKey
        return CoordinatorStore.AuditDraft(events: events, plan: audited.plan) { sequence, previous in
            var record = draft
            record.sequence = sequence
            record.previous = Hex.encode(previous)
            let bytes = record.canonicalBytes
            return (bytes, RoundAuditRecord.sign(bytes, with: key))
        }
    }

    /// A Paillier attempt's record (`Specs/audit.md` §7): the accepted contributions with their
    /// receipts, the aggregate asked for and the re-randomisers that made it, the signed sum.
    private func paillierAuditDraft(
        _ machine: RoundMachine, _ collection: RoundMachine.PaillierCollection, _ audited: AuditedPaillierSession,
        abort: RoundAbort?
    ) -> CoordinatorStore.AuditDraft {
        let session = collection.session
        let positions = collection.receipts.keys.sorted()
        var evidence = PaillierAuditEvidence()
        evidence.contributions = positions.map { position in
            .init(
                position: position.rawValue,
                ciphertexts: (collection.ciphertexts[position] ?? []).map { Hex.encode(Array($0)) })
        }
        var draft = PaillierAuditRecord(
            federation: configuration.federation, sequence: 0, previous: "", round: machine.number,
            attempt: machine.attempt, recorded: Date().timeIntervalSince1970,
            outcome: abort == nil ? "completed" : "aborted", abort: abort.map { "\($0)" },
            session: .init(
                modulus: Hex.encode(session.publicKey.bigEndianBytes),
                modulusSignature: audited.keyHolding.single.map { Hex.encode($0.statement.signature) },
                keyHolderCertificate: audited.keyHolding.single.map {
                    Data($0.identity.certificateDER).base64EncodedString()
                },
                thresholdKey: session.thresholdHolders.map { Hex.encode($0.key.canonicalEncoding) },
                thresholdHolders: session.thresholdHolders == nil
                    ? nil
                    : audited.keyHolding.wireHolders.map {
                        .init(
                            holder: Int($0.holder), certificate: $0.certificate.base64EncodedString(),
                            signature: Hex.encode(Array($0.signature)))
                    },
                bits: session.packing.bitWidth.bits, capacity: session.packing.maxAddends,
                dimension: session.dimension, nonce: Hex.encode(session.nonce), context: Hex.encode(session.context),
                serverKey: Hex.encode(session.coordinator.rawRepresentation),
                assignmentSignature: Hex.encode(audited.assignmentSignature),
                roster: zip(audited.members, session.roster).map { member, key in
                    .init(
                        id: member.id, key: Hex.encode(key.rawRepresentation),
                        certificate: Data(member.certificateDER).base64EncodedString())
                }),
            coordinatorCertificate: Data(credentials.identity.certificateDER).base64EncodedString(),
            contributions: positions.map { position in
                let receipt = collection.receipts[position]!
                return .init(
                    position: position.rawValue, digest: Hex.encode(receipt.ciphertextDigest),
                    receipt: Hex.encode(receipt.signature))
            },
            survivors: [])
        if let request = collection.request {
            let width = session.publicKey.modulusByteCount
            draft.aggregateDigest = Hex.encode(PaillierSession.aggregateDigest(request.ciphertexts.map { Array($0) }))
            draft.requestSignature = Hex.encode(Array(request.coordinatorSignature))
            evidence.aggregate = request.ciphertexts.map { Hex.encode(Array($0)) }
            // r < N by construction, so it fits N's width.
            evidence.rerandomization = collection.rerandomizers.map { Hex.encode(try! $0.bigEndianBytes(width: width)) }
        }
        // The key holder released a sum (its signature checked): the record names it, whatever
        // ended the attempt afterwards — the coordinator learned it.
        if let released = collection.released,
            let sum = try? ModularVector(elements: released.sum, bitWidth: session.packing.bitWidth)
        {
            draft.sumDigest = Hex.encode(RoundAuditRecord.sumDigest(sum))
            draft.resultSignature = Hex.encode(released.signature)
            draft.survivors = (1...UInt32(session.memberCount)).map { $0 }
            evidence.sum = PaillierAuditEvidence.encodeSum(released.sum)
        }
        // t threshold holders' partials combined into the sum (their proofs checked): the
        // record names the answers, and the sum the coordinator combined from them.
        if !collection.combinedFrom.isEmpty, case .completed(let result)? = machine.ended {
            let answers = collection.combinedFrom.compactMap { collection.answers[$0]?.result }
            draft.sumDigest = Hex.encode(RoundAuditRecord.sumDigest(result.sum))
            draft.partials = answers.map {
                .init(
                    holder: Int($0.holder), digest: Hex.encode(SHA256.hash($0.partials.flatMap { Array($0) })),
                    signature: Hex.encode(Array($0.signature)))
            }
            draft.survivors = (1...UInt32(session.memberCount)).map { $0 }
            evidence.sum = PaillierAuditEvidence.encodeSum(result.sum.elements)
            evidence.partials = answers.map {
                .init(holder: Int($0.holder), values: $0.partials.map { Hex.encode(Array($0)) })
            }
        }
        let key = credentials.signingKey
        let sealed = draft
        return CoordinatorStore.AuditDraft(events: [], plan: audited.plan, paillier: evidence.encoded) {
            sequence, previous in
            var record = sealed
            record.sequence = sequence
            record.previous = Hex.encode(previous)
            let bytes = record.canonicalBytes
            return (bytes, RoundAuditRecord.sign(bytes, with: key))
        }
    }

    func summarize(
        _ report: RoundReport, outcome: RoundEnd, machine: RoundMachine?,
        evaluated: (accuracy: Double, loss: Double)? = nil
    ) -> RoundSummary {
        let elapsed = seconds(since: report.started)
        let survivors: Int
        let abort: RoundAbort?
        switch outcome {
        case .completed(let result): (survivors, abort) = (result.survivors.count, nil)
        case .aborted(let reason): (survivors, abort) = (0, reason)
        }
        let label = abort == nil ? "completed" : abort!.kind == .interrupted ? "interrupted" : "aborted"
        metrics.increment("veil_rounds_total", labels: ["outcome": label])
        metrics.observe("veil_round_duration_seconds", elapsed)
        metrics.set("veil_round_seconds", elapsed)
        metrics.increment("veil_round_seconds_total", by: elapsed)
        metrics.set("veil_round_survivors", Double(survivors))
        if let abort { metrics.increment("veil_aborts_total", labels: ["reason": abort.kind.rawValue]) }
        let epsilon = ledger.map { ledger in ledger.balances.map(\.epsilon).max() ?? 0 }
        if let epsilon { metrics.set("veil_privacy_epsilon_max", epsilon) }
        var summary = RoundSummary(
            number: report.number, attempt: report.attempt, completed: abort == nil, cohort: report.cohort,
            survivors: survivors, abortReason: abort?.detail, seconds: elapsed, bytesIn: machine?.bytesIn ?? 0,
            bytesOut: machine?.bytesOut ?? 0, accuracy: evaluated?.accuracy, loss: evaluated?.loss,
            cryptoSeconds: cryptoSeconds, threshold: machine?.threshold, epsilon: epsilon,
            budgetRefusals: report.budgetRefusals, budgetAlerts: report.budgetAlerts)
        summary.interrupted = abort?.kind == .interrupted
        if let machine {
            // The ring the inputs were summed in: the distributed mechanism's, when it has one.
            let bits = machine.distributedMechanism?.bitWidth.bits ?? machine.codec.bitWidth.bits
            summary.payloadBits = bits
            summary.subsetFraction = machine.subset?.fraction ?? 1
            metrics.set("veil_round_modulus_log2", Double(bits))
            metrics.set("veil_round_subset_fraction", summary.subsetFraction!)
        }
        recordHealth(summary, abort: abort)
        return summary
    }

    /// The L2 norm of the mean update a released sum carries: its coordinates over its last
    /// one, the total weight (examples, or the cohort under DP). What the detectors watch for
    /// a jump (§9.3) — a property of the aggregate, never of one update.
    static func meanStepNorm(_ sum: [Double]) -> Double? {
        guard let weight = sum.last, weight > 0, sum.count > 1 else { return nil }
        var squares = 0.0
        for value in sum.dropLast() { squares += value * value }
        let norm = squares.squareRoot() / weight
        return norm.isFinite ? norm : nil
    }

    /// Tells the cohort how the attempt ended, with the hash of the audit record just sealed and
    /// a receipt for it that each member keeps (`Specs/audit.md` §6).
    func broadcastResult(
        _ machine: RoundMachine, completed: Bool, survivors: Int, reason: String?, recordHash: [UInt8]?
    ) {
        var result = Self.result(
            round: machine.number, completed: completed, survivors: survivors, reason: reason,
            transcript: machine.transcript)
        if let recordHash, let sessionID = machine.auditedSessionID {
            result.auditRecordHash = Data(recordHash)
            result.auditReceipt = Data(
                RoundAuditRecord.receipt(sessionID: sessionID, recordHash: recordHash, by: credentials.signingKey))
        }
        for id in machine.cohort { registry.send(.with { $0.result = result }, to: id) }
    }

    /// A round's result as its members are told it.
    static func result(round: Int, completed: Bool, survivors: Int, reason: String?, transcript: [UInt8])
        -> Veil_V1_RoundResult
    {
        .with {
            $0.round = UInt64(round)
            $0.completed = completed
            $0.survivors = UInt32(survivors)
            $0.abortReason = reason ?? ""
            $0.transcriptHash = Data(transcript)
        }
    }

    /// Runs a store operation whose failure must not stop the federation (a participant's
    /// resources, the selection history): logged and counted, never swallowed.
    @discardableResult
    func recording<T>(_ operation: String, _ body: () throws -> T) -> T? {
        do { return try body() } catch {
            metrics.increment("veil_store_errors_total")
            logger.error("store operation failed", metadata: ["operation": "\(operation)", "error": "\(error)"])
            return nil
        }
    }
}
