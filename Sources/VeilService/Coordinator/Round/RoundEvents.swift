import Foundation
import VeilCore
import VeilSecAgg
import VeilWire

/// What can happen to a round attempt (``RoundMachine/handle(_:)``).
enum RoundEvent {
    /// A participant's secure-aggregation message (masking rounds).
    case secagg(Veil_V1_SecAggMessage, from: String)
    /// A participant's ciphertexts and receipt (Paillier rounds).
    case contribution(Veil_V1_PaillierContribution, from: String)
    /// A participant will not take part (its policy refused the round, or its client aborted).
    case declined(Veil_V1_Decline, from: String)
    /// A key holder's answer (Paillier rounds), by its id.
    case decryption(Veil_V1_DecryptResult, from: String)
    /// A participant's stream closed.
    case disconnected(String)
    /// A key holder's stream opened or closed, by its id.
    case keyHolderConnected(String)
    case keyHolderDisconnected(String)
    /// The deadline started by `.startDeadline(generation:after:)` passed.
    case deadline(generation: Int)

    /// The participant whose message this is, if any: a message after the end is refused.
    var participantMessageSender: String? {
        switch self {
        case .secagg(_, let id), .contribution(_, let id): id
        default: nil
        }
    }
}

/// What the driver is asked to do.
enum RoundAction: Sendable {
    case send(Veil_V1_CoordinatorMessage, to: String)
    case sendToKeyHolder(Veil_V1_CoordinatorMessage, id: String)
    /// Feed `.deadline(generation:)` back after `after`.
    case startDeadline(generation: Int, after: Duration)
    case stageStarted(RoundStage)
    case deadlinePassed(RoundStage?)
    /// A member is out of the round; `notice`, when present, is what it is told.
    case dropped(id: String, stage: RoundStage, code: String, notice: String?)
    /// A member's signed messages show a fault (`SecAggEvidence.Fault`): recorded with the
    /// evidence, logged, counted, and — past the configured count — the member is excluded.
    case attributed(id: String, code: String, detail: String, evidence: [UInt8])
    /// A message that belongs to no stage of this round (late, early, or for another round).
    case refused(from: String, RefusalReason)
    case ended(RoundEnd)
}

/// Where a round attempt is.
enum RoundStage: Hashable, Sendable, CustomStringConvertible {
    /// A protocol round of the masking session.
    case masking(SecAggRound)
    /// Paillier: waiting for every member's ciphertexts.
    case collecting
    /// Paillier: waiting for the key holder (or t of the threshold holders).
    case decrypting

    /// The participants train before their first message of the round.
    var includesTraining: Bool { self == .masking(.advertiseKeys) || self == .collecting }

    /// The bounded label of metrics and logs.
    var description: String {
        switch self {
        case .masking(let round): round.description
        case .collecting: "paillier_collection"
        case .decrypting: "paillier_decryption"
        }
    }
}

/// How long each stage may take.
struct RoundDeadlines: Sendable {
    /// The stage in which participants train.
    var training: Duration
    /// Every later stage.
    var protocolRound: Duration

    init(training: Duration, protocolRound: Duration) {
        self.training = training
        self.protocolRound = protocolRound
    }

    init(_ c: ServeConfiguration) {
        training = .milliseconds(Int((c.trainingDeadlineSeconds * 1000).rounded()))
        protocolRound = .milliseconds(Int((c.roundDeadlineSeconds * 1000).rounded()))
    }
}

enum RoundEnd: Sendable {
    case completed(SecureSumResult)
    case aborted(RoundAbort)
}

/// Why an attempt ended without a sum: a kind from a closed set (the metrics label) and the
/// detail (logs, the store, the participants' round result).
struct RoundAbort: Error, Hashable, Sendable, CustomStringConvertible {
    enum Kind: String, CaseIterable, Sendable {
        /// The secure sum could not finish (too few survivors, inconsistent views, …).
        case secureSum = "secure_sum"
        /// Paillier: not every member contributed.
        case missingContributions = "missing_contributions"
        case keyHolderAbsent = "key_holder_absent"
        case keyHolderSilent = "key_holder_silent"
        case keyHolderRefused = "key_holder_refused"
        case keyHolderMalformed = "key_holder_malformed"
        /// No session could be planned for the cohort (see ``RoundMachine/sessionParameters``).
        case setup
        /// The coordinator stopped during the round.
        case interrupted
        /// The sum was released but could not be decoded or applied.
        case release
    }

    let kind: Kind
    let detail: String

    init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    var description: String { detail }
}

/// Why a participant's message was refused (a closed set: the metrics label).
package enum RefusalReason: String, CaseIterable, Sendable {
    case rateLimited = "rate_limited"
    case outOfRound = "out_of_round"
    case malformed
    case certificate
}
