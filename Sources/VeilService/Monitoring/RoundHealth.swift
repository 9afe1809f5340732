import Foundation

/// What the coordinator observed of one attempt, for the dashboard, the report and the
/// anomaly detectors (`Specs/wire.md` §9.2). Kept in the store, one row per attempt. Nothing
/// here is an individual update: the aggregate's evaluation and norm, counts and timings.
public struct RoundHealth: Codable, Hashable, Sendable {
    public struct Dropouts: Codable, Hashable, Sendable {
        public var protocolRound: String
        public var reason: String
        public var count: Int

        enum CodingKeys: String, CodingKey {
            case protocolRound = "protocol_round", reason, count
        }
    }

    // Spelled out: a key strategy would also rewrite the dictionaries' keys (stage names).
    enum CodingKeys: String, CodingKey {
        case number, attempt, outcome, started, finished, cohort, survivors, threshold, seconds
        case stageSeconds = "stage_seconds", bytesIn = "bytes_in", bytesOut = "bytes_out", accuracy, loss
        case abortKind = "abort_kind", abortReason = "abort_reason", dropouts, declines
        case epsilonMax = "epsilon_max", epsilonMean = "epsilon_mean", updateNorm = "update_norm"
    }

    public var number: Int
    public var attempt: Int
    /// completed, aborted or interrupted.
    public var outcome: String
    public var started: Double
    public var finished: Double
    public var cohort: Int
    public var survivors: Int
    /// The fewest survivors the attempt's sum could be released with (t; nil for Paillier).
    public var threshold: Int?
    public var seconds: Double
    /// Wall time of each protocol round (stage) of the attempt.
    public var stageSeconds: [String: Double] = [:]
    public var bytesIn: Int
    public var bytesOut: Int
    public var accuracy: Double?
    public var loss: Double?
    public var abortKind: String?
    public var abortReason: String?
    public var dropouts: [Dropouts] = []
    public var declines: [String: Int] = [:]
    /// The most, and the mean, ε spent by any participant after the attempt (with privacy).
    public var epsilonMax: Double?
    public var epsilonMean: Double?
    /// The L2 norm of the step the attempt's released aggregate applied to the model.
    public var updateNorm: Double?

    public init(
        number: Int, attempt: Int, outcome: String, started: Double, finished: Double, cohort: Int, survivors: Int,
        seconds: Double, bytesIn: Int = 0, bytesOut: Int = 0
    ) {
        self.number = number
        self.attempt = attempt
        self.outcome = outcome
        self.started = started
        self.finished = finished
        self.cohort = cohort
        self.survivors = survivors
        self.seconds = seconds
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }

    /// The record with every value inside the bounds the coordinator writes (a store is a file
    /// anyone with access can edit: what it says must not overflow a count, hang a chart, or
    /// bloat a report): counts in 0…10⁶, at most 64 dropout and decline entries and 16 stages,
    /// non-finite numbers left out, texts shortened.
    func sanitized() -> RoundHealth {
        func count(_ n: Int) -> Int { min(max(n, 0), 1_000_000) }
        func bounded(_ x: Double?, _ range: ClosedRange<Double>) -> Double? {
            guard let x, x.isFinite else { return nil }
            return min(max(x, range.lowerBound), range.upperBound)
        }
        func text(_ s: String, _ limit: Int) -> String { String(s.prefix(limit)) }
        var h = self
        h.number = count(self.number)
        h.attempt = count(attempt)
        h.outcome = ["completed", "aborted", "interrupted"].contains(outcome) ? outcome : "aborted"
        h.started = bounded(started, 0...1e11) ?? 0
        h.finished = bounded(finished, 0...1e11) ?? h.started
        h.cohort = count(cohort)
        h.survivors = count(survivors)
        h.threshold = threshold.map(count)
        h.seconds = bounded(seconds, 0...1e7) ?? 0
        h.stageSeconds = Dictionary(
            uniqueKeysWithValues: stageSeconds.sorted { $0.key < $1.key }.prefix(16).compactMap { key, value in
                bounded(value, 0...1e7).map { (text(key, 64), $0) }
            })
        h.bytesIn = min(max(bytesIn, 0), 1 << 53)
        h.bytesOut = min(max(bytesOut, 0), 1 << 53)
        h.accuracy = bounded(accuracy, 0...1)
        h.loss = bounded(loss, 0...1e9)
        h.abortKind = abortKind.map { text($0, 64) }
        h.abortReason = abortReason.map { text($0, 500) }
        h.dropouts = dropouts.prefix(64).map {
            Dropouts(protocolRound: text($0.protocolRound, 64), reason: text($0.reason, 64), count: count($0.count))
        }
        h.declines = Dictionary(
            declines.sorted { $0.key < $1.key }.prefix(64).map { (text($0.key, 64), count($0.value)) },
            uniquingKeysWith: +)
        h.epsilonMax = bounded(epsilonMax, 0...1e9)
        h.epsilonMean = bounded(epsilonMean, 0...1e9)
        h.updateNorm = bounded(updateNorm, 0...1e15)
        return h
    }

    /// Members dropped in any protocol round.
    public var droppedCount: Int { dropouts.reduce(0) { $0 + $1.count } }

    mutating func noteDropout(protocolRound: String, reason: String) {
        if let i = dropouts.firstIndex(where: { $0.protocolRound == protocolRound && $0.reason == reason }) {
            dropouts[i].count += 1
        } else {
            dropouts.append(Dropouts(protocolRound: protocolRound, reason: reason, count: 1))
        }
    }
}
