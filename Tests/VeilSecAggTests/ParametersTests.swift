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
        #expect(throws: SecAggParameterError.neighborCountOutOfRange(neighbors: 0, clients: 10)) { try make(10, 1, 0) }
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
        #expect(throws: SecAggParameterError.self) { try make(10, 1, 1, permissive) }
        #expect(throws: Never.self) { try make(10, 1, 2, permissive) }
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
        (100, 68, 6), (1000, 72, 24), (10_000, 86, 29), (100_000, 96, 32),
    ])
    func recommendedHonestButCuriousParameters(_ n: Int, _ k: Int, _ t: Int) throws {
        let p = try SecAggParameters.recommended(
            clientCount: n, bitWidth: BitWidth(32), dimension: 1, threatModel: .honestButCurious)
        #expect(p.neighborCount == k)
        #expect(p.threshold == t)
        #expect(p.abortProbabilityBound <= 0x1p-20)
    }

    @Test(arguments: [(100, 53), (1000, 526), (10_000, 5251), (100_000, 52_501)])
    func recommendedMaliciousParameters(_ n: Int, _ t: Int) throws {
        let p = try SecAggParameters.recommended(
            clientCount: n, bitWidth: BitWidth(32), dimension: 1, threatModel: .malicious)
        #expect(p.isCompleteGraph)
        #expect(p.threshold == t)
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
