import Testing
import VeilCore
import VeilSecAgg

@Suite struct ParametersTests {
    func make(_ n: Int, _ t: Int, _ k: Int, _ model: ThreatModel = .honestButCurious, d: Int = 10) throws
        -> SecAggParameters
    {
        try SecAggParameters(
            clientCount: n, threshold: t, neighborCount: k, bitWidth: BitWidth(32), dimension: d, threatModel: model)
    }

    @Test func refusesMalformedShapes() {
        #expect(throws: SecAggParameterError.clientCountOutOfRange(1)) { try make(1, 1, 1) }
        #expect(throws: SecAggParameterError.neighborCountOutOfRange(neighbors: 10, clients: 10)) {
            try make(10, 3, 10)
        }
        #expect(throws: SecAggParameterError.neighborCountOutOfRange(neighbors: 0, clients: 10)) { try make(10, 2, 0) }
        #expect(throws: SecAggParameterError.hararyGraphUndefined(neighbors: 3, clients: 9)) {
            try make(9, 2, 3, permissive)
        }
        #expect(throws: SecAggParameterError.thresholdOutOfRange(threshold: 6, neighbors: 4)) {
            try make(10, 6, 4, permissive)
        }
        #expect(throws: SecAggParameterError.thresholdOutOfRange(threshold: 0, neighbors: 9)) {
            try make(10, 0, 9, permissive)
        }
        #expect(throws: SecAggParameterError.dimensionOutOfRange(0)) { try make(10, 3, 9, permissive, d: 0) }
        #expect(throws: SecAggParameterError.self) {
            try ThreatModel(adversary: .maliciousServer, corruptFraction: 0.6, dropoutFraction: 0.5)
        }
    }

    @Test func honestButCuriousCompleteGraphNeedsMoreSharesThanCorruptParticipants() throws {
        // 5% of 100 is 5 corrupt participants: t must exceed 5 (Bonawitz et al. 2017, Theorem 6.3).
        #expect(try make(100, 6, 99).threshold == 6)
        do {
            _ = try make(100, 5, 99)
            Issue.record("t = 5 was accepted")
        } catch let error as SecAggParameterError {
            guard case .thresholdTooLow(5, 6, let why) = error else { throw error }
            #expect(why.contains("Theorem 6.3"))
            #expect(error.description.contains("threshold 5 is below the minimum 6"))
        }
    }

    @Test func maliciousServerNeedsTheCompleteGraphAndAMajorityThreshold() throws {
        // t > (n + n_C)/2 = (100 + 5)/2, so t ≥ 53.
        #expect(try make(100, 53, 99, .malicious).threshold == 53)
        #expect(throws: SecAggParameterError.self) { try make(100, 52, 99, .malicious) }
        #expect(throws: SecAggParameterError.maliciousRequiresCompleteGraph(neighbors: 72, clients: 100)) {
            try make(100, 60, 72, .malicious)
        }
    }

    @Test func aOneRegularGraphIsRefusedEvenWithoutCorruptionOrDropouts() {
        // k = 1 pairs participants off: the server would learn every pair's sum.
        #expect(throws: SecAggParameterError.self) { try make(10, 2, 1, permissive) }
        #expect(throws: Never.self) { try make(10, 2, 2, permissive) }
    }

    @Test func theThresholdIsNeverBelowTwo() throws {
        // t = 1: every share is the secret, and one survivor's "sum" is its input. Refused for
        // every threat model, even one that assumes nobody is corrupt.
        for n in [2, 3, 10, 100] {
            #expect(throws: SecAggParameterError.thresholdOutOfRange(threshold: 1, neighbors: n - 1)) {
                try make(n, 1, n - 1, permissive)
            }
            #expect(
                SecAggParameters.minimumThreshold(clientCount: n, neighborCount: n - 1, threatModel: permissive)! >= 2)
        }
        #expect(try make(2, 2, 1, permissive).threshold == 2)
    }

    /// n_C = max(1, ⌈γ·n⌉) with γ read as the decimal it is written as. The review's cases:
    /// γ = 5% gave n_C = 0 (so t = 1) below 20 participants; γ = 0.29, n = 100 gave 28 in
    /// floating point. Each row: γ, n, n_C.
    @Test(arguments: [
        (0.05, 3, 1), (0.05, 10, 1), (0.05, 19, 1), (0.05, 20, 1), (0.05, 21, 2), (0.05, 100, 5), (0.05, 101, 6),
        (0.0, 3, 1), (0.0, 1000, 1), (0.29, 100, 29), (0.57, 100, 57), (0.58, 100, 58), (0.1, 30, 3), (0.3, 10, 3),
        (0.7, 10, 7), (0.01, 999, 10), (0.2, 5, 1), (0.33, 3, 1), (0.34, 3, 2), (0.5, 1_048_576, 524_288),
        (0.123456789012345, 1_000_000, 123_457),
    ])
    func theCorruptCountIsRoundedUpExactly(_ gamma: Double, _ n: Int, _ corrupt: Int) throws {
        let model = try ThreatModel(adversary: .honestButCuriousServer, corruptFraction: gamma, dropoutFraction: 0)
        #expect(model.corruptCount(of: n) == corrupt)
    }

    /// Every (γ, n) below n = 1,000 with γ in hundredths where the floating-point product
    /// γ·n lands below the integer it equals: the count must still be that integer.
    @Test func noFloatingPointCaseIsLost() throws {
        var cases = 0
        for hundredths in 1..<100 {
            let gamma = Double(hundredths) / 100
            let model = try ThreatModel(adversary: .honestButCuriousServer, corruptFraction: gamma, dropoutFraction: 0)
            for n in stride(from: 100, to: 1000, by: 100) {
                let exact = hundredths * n / 100
                if (gamma * Double(n)).rounded(.down) < Double(exact) { cases += 1 }
                #expect(model.corruptCount(of: n) == max(1, exact), "γ = \(gamma), n = \(n)")
            }
        }
        #expect(cases > 0, "the floating-point product never fell short: the test lost its point")
    }

    @Test func theSmallCohortsOfTheReadmeGetARealThreshold() throws {
        // The default federations: 3 and 10 participants, γ = 5%. Honest-but-curious: t = 2;
        // malicious: t > (n + 1)/2.
        func threshold(_ n: Int, _ model: ThreatModel) throws -> Int {
            try SecAggParameters.recommended(clientCount: n, bitWidth: BitWidth(32), dimension: 1, threatModel: model)
                .threshold
        }
        #expect(try threshold(3, .honestButCurious) == 2)
        #expect(try threshold(3, .malicious) == 3)
        #expect(try threshold(10, .honestButCurious) == 2)
        #expect(try threshold(10, .malicious) == 6)
    }

    @Test func sparseGraphsMustStayConnectedAndOutnumberCorruptNeighbours() throws {
        #expect(try make(1000, 24, 72).neighborCount == 72)
        #expect(throws: SecAggParameterError.self) { try make(1000, 23, 72) }
        do {
            _ = try make(1000, 20, 20)
            Issue.record("a 20-regular graph on 1000 participants was accepted")
        } catch let error as SecAggParameterError {
            guard case .graphTooSparse(20, 1000, let p, 40) = error else { throw error }
            #expect(p > 0x1p-40)
        }
    }

    // Google's parameter finder, at 5% corrupt and 33% dropout (semi-honest): (72, 24) for
    // n = 1,000 and (86, 29) for n = 10,000. Veil's finder reproduces both.
    @Test(arguments: [
        (3, 2, 2), (10, 9, 2), (100, 68, 6), (1000, 72, 24), (10_000, 86, 29), (100_000, 96, 32),
    ])
    func recommendedHonestButCuriousParameters(_ n: Int, _ k: Int, _ t: Int) throws {
        let p = try SecAggParameters.recommended(
            clientCount: n, bitWidth: BitWidth(32), dimension: 1, threatModel: .honestButCurious)
        #expect(p.neighborCount == k)
        #expect(p.threshold == t)
        #expect(p.abortProbabilityBound <= 0x1p-20)
    }

    @Test(arguments: [(3, 3), (10, 6), (100, 53), (1000, 526), (10_000, 5251), (100_000, 52_501)])
    func recommendedMaliciousParameters(_ n: Int, _ t: Int) throws {
        let p = try SecAggParameters.recommended(
            clientCount: n, bitWidth: BitWidth(32), dimension: 1, threatModel: .malicious)
        #expect(p.isCompleteGraph)
        #expect(p.threshold == t)
    }
}

/// The participant's side: its own policy decides, whatever the server announces.
@Suite struct PolicyTests {
    let malicious = try! SecAggPolicy(threatModel: .malicious, minimumCohort: 3, minimumContributors: 3)

    @Test func theRequiredThresholdFollowsThePolicyNotTheServer() throws {
        #expect(malicious.requiredThreshold(clientCount: 10, neighborCount: 9) == 6)
        #expect(malicious.requiredThreshold(clientCount: 3, neighborCount: 2) == 3)
        // A malicious server on a sparse graph: no threshold is safe.
        #expect(malicious.requiredThreshold(clientCount: 100, neighborCount: 68) == nil)
        // Below the policy's smallest cohort: nothing.
        #expect(malicious.requiredThreshold(clientCount: 2, neighborCount: 1) == nil)
        // The contributor floor lifts a low honest-but-curious threshold.
        let curious = try SecAggPolicy(threatModel: .honestButCurious, minimumCohort: 2, minimumContributors: 4)
        #expect(curious.requiredThreshold(clientCount: 10, neighborCount: 9) == 4)
    }

    @Test func eachRuleOfThePolicyRefusesByName() throws {
        #expect(throws: Never.self) { try malicious.check(clientCount: 10, threshold: 6, neighborCount: 9) }
        // The finding: t = 3 of 10, which an honest-but-curious reading of γ = 5% allows.
        do {
            try malicious.check(clientCount: 10, threshold: 3, neighborCount: 9)
            Issue.record("t = 3 of 10 was accepted under the malicious model")
        } catch {
            guard case .parameters(.thresholdTooLow(3, 6, _)) = error else { throw error }
            #expect(error.description.contains("threshold 3 is below the minimum 6"))
        }
        #expect(throws: SecAggPolicyRefusal.cohortTooSmall(clients: 2, minimum: 3)) {
            try malicious.check(clientCount: 2, threshold: 2, neighborCount: 1)
        }
        let strict = try SecAggPolicy(threatModel: .honestButCurious, minimumCohort: 3, minimumContributors: 5)
        #expect(throws: SecAggPolicyRefusal.releaseBelowFloor(threshold: 4, minimum: 5)) {
            try strict.check(clientCount: 10, threshold: 4, neighborCount: 9)
        }
        #expect(throws: SecAggPolicyRefusal.parameters(.maliciousRequiresCompleteGraph(neighbors: 68, clients: 100))) {
            try malicious.check(clientCount: 100, threshold: 60, neighborCount: 68)
        }
        #expect(throws: SecAggParameterError.self) {
            try SecAggPolicy(threatModel: .malicious, minimumCohort: 3, minimumContributors: 1)
        }
    }
}

@Suite struct NeighborGraphTests {
    @Test(arguments: [(10, 4), (11, 6), (12, 3), (12, 5), (30, 8), (7, 6), (8, 7)])
    func everyParticipantHasExactlyKNeighboursSymmetrically(_ n: Int, _ k: Int) {
        let graph = NeighborGraph(sessionID: [UInt8](repeating: 9, count: 32), clientCount: n, neighborCount: k)
        for a in 1...n {
            let id = ParticipantID(UInt32(a))
            let neighbors = graph.neighbors(of: id)
            #expect(neighbors.count == k)
            #expect(!neighbors.contains(id))
            #expect(Set(neighbors).count == k)
            for b in 1...n where b != a {
                let other = ParticipantID(UInt32(b))
                #expect(graph.areNeighbors(id, other) == neighbors.contains(other))
                #expect(graph.areNeighbors(id, other) == graph.areNeighbors(other, id))
            }
        }
    }

    @Test func theGraphIsAFunctionOfTheSessionID() {
        let a = NeighborGraph(sessionID: [UInt8](repeating: 1, count: 32), clientCount: 40, neighborCount: 6)
        let b = NeighborGraph(sessionID: [UInt8](repeating: 1, count: 32), clientCount: 40, neighborCount: 6)
        let c = NeighborGraph(sessionID: [UInt8](repeating: 2, count: 32), clientCount: 40, neighborCount: 6)
        #expect(a == b)
        #expect(a != c)
        #expect(
            (1...40).map { a.neighbors(of: ParticipantID(UInt32($0))) }
                != (1...40).map { c.neighbors(of: ParticipantID(UInt32($0))) })
    }
}
