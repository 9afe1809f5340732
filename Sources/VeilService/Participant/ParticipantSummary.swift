import Synchronization
import VeilWire

/// What a participant did in a federation.
public struct ParticipantSummary: Sendable {
    public let id: String
    public let roundsAssigned: Int
    public let roundsCompleted: Int
    public let finishedReason: String?
    /// Local training and encoding, and the secure-sum client's work, in seconds.
    public let trainingSeconds: Double
    public let cryptoSeconds: Double
    /// What the coordinator said when this participant's privacy budget kept it out, if it did.
    public var privacyNotice: String? = nil
    /// With a budget of its own: the ε this participant's ledger says it has spent.
    public var privacySpent: Double? = nil
    /// With DP-SGD: the example-level ε its ledger says it has spent (at `dp_sgd.delta`), over
    /// how many local trainings and steps.
    public var exampleEpsilon: Double? = nil
    public var exampleRounds: Int? = nil
    public var exampleSteps: Int? = nil
    /// The rounds it declined or withdrew from, by ``Veil_V1_DeclineCode/name``, and the
    /// last reason it gave.
    public var declines: [String: Int] = [:]
    public var lastDecline: String? = nil
}

/// Why the participant stopped.
public enum ParticipantError: Error, CustomStringConvertible {
    case refused(String)
    case session(String)
    /// ``ParticipantAgent/failure`` struck.
    case failureInjected

    public var description: String {
        switch self {
        case .failureInjected: "failure injected"
        case .refused(let why): "the coordinator refused this participant: \(why)"
        case .session(let why): why
        }
    }
}

extension ParticipantAgent {
    /// Rounds assigned and completed, times and declines, across reconnections: what
    /// ``ParticipantSummary`` reports.
    final class Tally: Sendable {
        private struct Counts {
            var assigned = 0
            var completed = 0
            var trainingSeconds = 0.0
            var cryptoSeconds = 0.0
            var injected = false
            /// The injected failure has struck, in this session or an earlier one.
            var struck = false
            var refusal: String?
            var privacyNotice: String?
            var declines: [String: Int] = [:]
            var lastDecline: String?
            var retry: RetryHint?
        }

        private let counts = Mutex(Counts())

        var assigned: Int { counts.withLock { $0.assigned } }
        var completed: Int { counts.withLock { $0.completed } }
        var trainingSeconds: Double { counts.withLock { $0.trainingSeconds } }
        var cryptoSeconds: Double { counts.withLock { $0.cryptoSeconds } }
        var declines: [String: Int] { counts.withLock { $0.declines } }
        var lastDecline: String? { counts.withLock { $0.lastDecline } }

        var injected: Bool {
            get { counts.withLock { $0.injected } }
            set {
                counts.withLock {
                    $0.injected = newValue
                    $0.struck = $0.struck || newValue
                }
            }
        }
        /// An injected failure strikes once: a participant that rejoins after it (a dropout the
        /// federation recovers from) is not failed again by a later attempt of the same round.
        var struck: Bool { counts.withLock { $0.struck } }
        var refusal: String? {
            get { counts.withLock { $0.refusal } }
            set { counts.withLock { $0.refusal = newValue } }
        }
        var privacyNotice: String? {
            get { counts.withLock { $0.privacyNotice } }
            set { counts.withLock { $0.privacyNotice = newValue } }
        }
        /// An overloaded aggregator's hint (`Specs/wire.md` §6.3), until the next connection takes it.
        var retry: RetryHint? {
            get { counts.withLock { $0.retry } }
            set { counts.withLock { $0.retry = newValue } }
        }
        func takeRetry() -> RetryHint? {
            counts.withLock { counts in
                defer { counts.retry = nil }
                return counts.retry
            }
        }

        func add(assigned: Int = 0, completed: Int = 0) {
            counts.withLock {
                $0.assigned += assigned
                $0.completed += completed
            }
        }

        func add(training: Double = 0, crypto: Double = 0) {
            counts.withLock {
                $0.trainingSeconds += training
                $0.cryptoSeconds += crypto
            }
        }

        func decline(_ declined: Declined) {
            counts.withLock {
                $0.declines[declined.code.name, default: 0] += 1
                $0.lastDecline = declined.description
            }
        }
    }
}

/// Where and when an aggregator that refused a participant for its load asks it to connect
/// again (`FAILURE_OVERLOADED`, `Specs/wire.md` §6.3). The addresses are only tried: each must
/// still hold a coordinator certificate of the federation's CA, as any address the
/// participant connects to.
struct RetryHint: Sendable {
    /// At most a minute: a hint cannot park a participant for longer.
    let after: Duration
    /// At most eight, each `host:port`.
    let addresses: [(host: String, port: Int)]

    init(_ failure: Veil_V1_Failure) {
        after = .milliseconds(Int(min(failure.retryAfterMillis, 60_000)))
        addresses = failure.retryAddresses.prefix(8).compactMap(JoinConfiguration.address)
    }
}
