import Foundation
import VeilCore
import VeilCrypto
import VeilSecAgg
import VeilWire

extension ParticipantAgent {
    /// How one connection ended: with the coordinator's reason when it finished the federation.
    struct SessionOutcome: Sendable {
        var finished: String?
    }

    /// The participant's side of one round: the secure-sum client and what it needs.
    struct RoundState {
        let number: UInt64
        var client: SecAggClient<SystemRandom>
        /// What this participant sent and received in the session, for its audit journal.
        var sent: [[UInt8]] = []
        var received: [[UInt8]] = []
    }

    /// A session to journal (`Specs/audit.md` §6, §7.4): the entry so far, and the session id and
    /// coordinator key its receipt must verify under.
    struct JournalledSession {
        var entry: AuditJournalEntry
        let sessionID: [UInt8]
        let serverKey: Ed25519.PublicKey
    }

    /// Handles the coordinator's messages on one connection.
    struct AgentState {
        let agent: ParticipantAgent
        let tally: Tally
        let send: (Veil_V1_ParticipantMessage) -> Void
        var outcome = SessionOutcome()
        var round: RoundState?
        var sentThisRound = 0
        /// What this process used over the round it is a member of (reported after its result).
        var meter: ResourceMeter?
        /// The Paillier round this participant sent its ciphertexts for, and its journal entry.
        var contributed: UInt64?
        var paillierJournal: JournalledSession?

        /// Returns true when the federation is finished.
        mutating func handle(_ message: Veil_V1_CoordinatorMessage) throws -> Bool {
            switch message.kind {
            case .welcome(let welcome):
                agent.logger.info(
                    "registered",
                    metadata: ["federation": "\(welcome.federation)", "next_round": "\(welcome.nextRound)"])
            case .assignment(let assignment) where assignment.hasPaillier:
                tally.add(assigned: 1)
                startMeter(assignment)
                journal(result: nil)
                round = nil
                do {
                    let preparing = ContinuousClock.now
                    let made = try agent.contribute(assignment)
                    tally.add(training: seconds(since: preparing))
                    if let failure = agent.failure, !tally.struck, failure.round == assignment.round {
                        tally.injected = true
                        throw ParticipantError.failureInjected
                    }
                    contributed = assignment.round
                    if let report = agent.lossReport(assignment) { send(.with { $0.loss = report }) }
                    // The journal names its contribution by the digest its receipt signs (§7.4).
                    paillierJournal = JournalledSession(
                        entry: AuditJournalEntry(
                            participant: agent.identity.id, position: assignment.position, round: assignment.round,
                            session: Hex.encode(made.session.id),
                            serverKey: Hex.encode(made.session.coordinator.rawRepresentation),
                            sent: [Hex.encode(made.digest)], received: []),
                        sessionID: made.session.id, serverKey: made.session.coordinator)
                    meter?.count(made.contribution.ciphertexts.reduce(0) { $0 + $1.count })
                    send(.with { $0.paillier = made.contribution })
                } catch let declined as Declined {
                    decline(assignment.round, declined)
                }
            case .assignment(let assignment):
                tally.add(assigned: 1)
                startMeter(assignment)
                sentThisRound = 0
                journal(result: nil)
                do {
                    let preparing = ContinuousClock.now
                    var prepared = try agent.prepare(assignment)
                    tally.add(training: seconds(since: preparing))
                    if let report = agent.lossReport(assignment) { send(.with { $0.loss = report }) }
                    let starting = ContinuousClock.now
                    let action = prepared.client.start()
                    tally.add(crypto: seconds(since: starting))
                    round = RoundState(number: assignment.round, client: prepared.client)
                    try forward(action, round: assignment.round)
                } catch let declined as Declined {
                    round = nil
                    decline(assignment.round, declined)
                }
            case .secagg(let secagg):
                guard var current = round, current.number == secagg.round else { return false }
                let handling = ContinuousClock.now
                current.received.append(Array(secagg.signed))
                meter?.count(secagg.signed.count)
                let action = current.client.handle(encoded: Array(secagg.signed))
                tally.add(crypto: seconds(since: handling))
                round = current
                try forward(action, round: secagg.round)
            case .result(let result):
                if result.completed,
                    (round?.number == result.round && round?.client.isCompleted == true) || contributed == result.round
                {
                    tally.add(completed: 1)
                }
                if round?.number == result.round || paillierJournal?.entry.round == result.round {
                    journal(result: result)
                }
                contributed = nil
                if let measured = meter, measured.round == result.round {
                    meter = nil
                    send(.with { $0.resources = measured.report() })
                }
                agent.logger.info(
                    "round result",
                    metadata: [
                        "round": "\(result.round)", "completed": "\(result.completed)",
                        "survivors": "\(result.survivors)",
                    ])
                round = nil
            case .failure(let failure):
                agent.logger.warning(
                    "coordinator says", metadata: ["code": "\(failure.code)", "message": "\(failure.message)"])
                if failure.code == .failurePrivacyBudget { tally.privacyNotice = failure.message }
                if failure.code == .failureOverloaded { tally.retry = RetryHint(failure) }
                if failure.code == .failureNotAParticipant || failure.code == .failureProtocolVersion {
                    tally.refusal = failure.message
                    throw ParticipantError.refused(failure.message)
                }
            case .finished(let finished):
                outcome.finished = finished.reason
                return true
            case .offer(let offer):
                if let answer = agent.answer(offer, tally: tally) { send(answer) }
            case .decrypt:
                break  // for the key holder only
            case .challenge:
                break  // the WebSocket binding's; a native participant authenticates by TLS
            case nil:
                break
            }
            return false
        }

        /// Writes the journal entry of the session under way (`Specs/audit.md` §6), with the
        /// round's result when it came, and forgets the session. A receipt that the session's
        /// server key did not sign is kept as it came (it is evidence) and logged.
        mutating func journal(result: Veil_V1_RoundResult?) {
            guard let directory = agent.configuration.auditJournal else { return }
            let journalled: JournalledSession
            if let current = round {
                round = nil
                let session = current.client.session
                journalled = JournalledSession(
                    entry: AuditJournalEntry(
                        participant: agent.identity.id, position: current.client.id.rawValue, round: current.number,
                        session: Hex.encode(session.id),
                        serverKey: Hex.encode(session.serverIdentity.rawRepresentation),
                        sent: current.sent.map { Hex.encode($0) }, received: current.received.map { Hex.encode($0) }),
                    sessionID: session.id, serverKey: session.serverIdentity)
            } else if let pending = paillierJournal {
                paillierJournal = nil
                journalled = pending
            } else {
                return
            }
            var entry = journalled.entry
            let number = entry.round
            if let result {
                entry.completed = result.completed
                if !result.auditRecordHash.isEmpty {
                    let hash = Array(result.auditRecordHash)
                    entry.recordHash = Hex.encode(hash)
                    entry.receipt = Hex.encode(Array(result.auditReceipt))
                    if !RoundAuditRecord.isReceipt(
                        Array(result.auditReceipt), sessionID: journalled.sessionID, recordHash: hash,
                        by: journalled.serverKey)
                    {
                        agent.logger.error(
                            "the coordinator's audit receipt does not verify", metadata: ["round": "\(number)"])
                    }
                } else {
                    agent.logger.warning("the round result carries no audit receipt", metadata: ["round": "\(number)"])
                }
            }
            do { try AuditJournal(directory: URL(fileURLWithPath: directory)).write(entry) } catch {
                agent.logger.error(
                    "cannot write the audit journal", metadata: ["round": "\(number)", "error": "\(error)"])
            }
        }

        /// Starts measuring a round this participant is assigned to (`report_resources`).
        mutating func startMeter(_ assignment: Veil_V1_RoundAssignment) {
            guard agent.configuration.reportResources else { return meter = nil }
            meter = ResourceMeter(round: assignment.round)
            meter?.count((try? assignment.serializedData().count) ?? 0)
        }

        /// Tells the coordinator that this participant will not take part in `number` (or stops
        /// taking part), why, and counts it.
        func decline(_ number: UInt64, _ declined: Declined) {
            agent.logger.warning(
                "declining a round",
                metadata: ["round": "\(number)", "code": "\(declined.code.name)", "reason": "\(declined.reason)"])
            tally.decline(declined)
            send(
                .with {
                    $0.decline = .with {
                        $0.round = number
                        $0.code = declined.code
                        $0.reason = declined.reason
                    }
                })
        }

        mutating func forward(_ action: ClientAction, round number: UInt64) throws {
            if let failure = agent.failure, !tally.struck, failure.round == number, sentThisRound >= failure.messages {
                agent.logger.info("failure injected: going silent", metadata: ["round": "\(number)"])
                tally.injected = true
                throw ParticipantError.failureInjected
            }
            switch action {
            case .send(var message):
                if let misbehaviour = agent.misbehaviour {
                    message = misbehaviour.apply(to: message, signingKey: agent.signingKey)
                }
                sentThisRound += 1
                round?.sent.append(message.encoded)
                meter?.count(message.encoded.count)
                send(
                    .with {
                        $0.secagg = .with {
                            $0.round = number
                            $0.signed = Data(message.encoded)
                        }
                    })
            case .aborted(let abort):
                // Said, not only logged: the coordinator learns why, and closes the round without
                // waiting for a deadline.
                decline(number, Declined(.declineAborted, abort.description))
            case .ignored:
                break
            }
        }
    }
}
