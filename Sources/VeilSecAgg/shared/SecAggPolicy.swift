/// What a participant requires of every session it joins, whatever the server proposes
/// (`Specs/secagg.md` §2.2): its own threat model, the smallest cohort, and the fewest inputs
/// a released sum may cover. The server's parameters are checked against it, never trusted:
/// a server that announces its own threat model, or a threshold computed from one, changes
/// nothing about what the participant accepts.
public struct SecAggPolicy: Hashable, Sendable {
    /// The adversary, γ, δ and σ this participant assumes.
    public let threatModel: ThreatModel
    /// The smallest n it joins.
    public let minimumCohort: Int
    /// The fewest participants a sum may be released over: t must be at least this (the
    /// server cannot unmask with fewer than t masked inputs, and the participant checks
    /// |U3| ≥ t before it reveals anything).
    public let minimumContributors: Int

    /// - Throws: ``SecAggParameterError/invalidThreatModel(_:)`` unless both floors are at least 2.
    public init(threatModel: ThreatModel, minimumCohort: Int, minimumContributors: Int) throws(SecAggParameterError) {
        guard minimumCohort >= 2, minimumContributors >= SecAggParameters.thresholdFloor else {
            throw .invalidThreatModel(
                "the smallest cohort (\(minimumCohort)) and the fewest contributors (\(minimumContributors)) must be at least 2"
            )
        }
        self.threatModel = threatModel
        self.minimumCohort = minimumCohort
        self.minimumContributors = minimumContributors
    }

    /// The smallest threshold this policy accepts for n participants with k neighbours, or
    /// nil when it accepts none (a malicious server on a sparse graph, or a cohort below the
    /// policy's smallest). A coordinator that knows its participants' policies uses this to
    /// propose parameters they will accept.
    public func requiredThreshold(clientCount n: Int, neighborCount k: Int) -> Int? {
        guard n >= minimumCohort,
            let t = SecAggParameters.minimumThreshold(clientCount: n, neighborCount: k, threatModel: threatModel)
        else { return nil }
        let required = max(t, minimumContributors)
        return required <= k + 1 ? required : nil
    }

    /// Checks a server's proposal.
    /// - Throws: ``SecAggPolicyRefusal`` naming the rule the proposal breaks.
    public func check(clientCount n: Int, threshold t: Int, neighborCount k: Int) throws(SecAggPolicyRefusal) {
        guard n >= minimumCohort else { throw .cohortTooSmall(clients: n, minimum: minimumCohort) }
        guard t >= minimumContributors else { throw .releaseBelowFloor(threshold: t, minimum: minimumContributors) }
        // The threat model's rules, under this participant's γ, δ and σ (rules 1–4 of the spec).
        do {
            try SecAggParameters.validate(clientCount: n, threshold: t, neighborCount: k, threatModel: threatModel)
        } catch {
            throw .parameters(error)
        }
    }
}

/// Why a participant declines a session's parameters.
public enum SecAggPolicyRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    case cohortTooSmall(clients: Int, minimum: Int)
    case releaseBelowFloor(threshold: Int, minimum: Int)
    case parameters(SecAggParameterError)

    public var description: String {
        switch self {
        case .cohortTooSmall(let n, let minimum):
            "a cohort of \(n) is below the \(minimum) this participant's policy requires"
        case .releaseBelowFloor(let t, let minimum):
            "threshold \(t) would let a sum of fewer than the \(minimum) contributors this participant's policy requires be released"
        case .parameters(let error):
            "under this participant's own threat model: \(error)"
        }
    }
}
