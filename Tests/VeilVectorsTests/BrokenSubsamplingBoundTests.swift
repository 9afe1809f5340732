import Foundation
import Testing
import VeilPrivacy
import VeilTestSupport

@testable import VeilVectors

/// The distributed-DP vectors must catch a wrong subsampling bound (`Specs/privacy.md` §5.3).
/// At order 2 Zhu and Wang's bound has no term l ≥ 3, so vectors whose optimal order is 2 see
/// those terms only if an error is large enough to move the optimum: a wrong weight passes them
/// all. The cases flagged `HighOrder` have optima from 3 to 1024. Each test runs
/// `Vectors/dp/veil_privacy.json` through the runner with a deliberately broken bound injected
/// through its seam and requires every such case at q < 1 to fail.
// Serialized: each case recomputes the accountant over every privacy vector on the cooperative
// pool, and several at once left the run's asynchronous tests without a thread to wake on.
@Suite(.serialized) struct BrokenSubsamplingBoundTests {
    struct Case {
        let tcId: Int
        let order: Double
        let samplingRate: Double
        let highOrder: Bool
    }

    static func file() throws -> (data: Data, cases: [Case]) {
        let url = RepositoryPaths.vectors.appendingPathComponent("dp/veil_privacy.json")
        let data = try Data(contentsOf: url)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let groups = try #require(json["testGroups"] as? [[String: Any]])
        let cases = groups.flatMap { ($0["tests"] as? [[String: Any]]) ?? [] }.compactMap { test -> Case? in
            guard test["operation"] as? String == "distributedEpsilon", test["result"] as? String == "valid",
                let tcId = test["tcId"] as? Int, let order = test["order"] as? Double,
                let q = test["samplingRate"] as? Double
            else { return nil }
            return Case(
                tcId: tcId, order: order, samplingRate: q,
                highOrder: (test["flags"] as? [String] ?? []).contains("HighOrder"))
        }
        return (data, cases)
    }

    /// Zhu and Wang's Theorem 9 written out again, with `weight` in place of the 3 that
    /// multiplies the terms l ≥ 3 (and without those terms when `weight` is 0), summed in log
    /// space so that no term overflows.
    static func zhuWang(_ alpha: Int, _ q: Double, _ epsilon: (Int) -> Double, weight: Double) -> Double {
        if q == 1 { return epsilon(alpha) }
        let a = Double(alpha)
        var terms = [
            (a - 1) * log1p(-q) + log(a * q - q + 1),
            log(a * (a - 1) / 2) + 2 * log(q) + (a - 2) * log1p(-q) + epsilon(2),
        ]
        if alpha >= 3 && weight > 0 {
            for l in 3...alpha {
                let x = Double(l)
                let logBinomial = lgamma(a + 1) - lgamma(x + 1) - lgamma(a - x + 1)
                terms.append(log(weight) + (x - 1) * epsilon(l) + logBinomial + (a - x) * log1p(-q) + x * log(q))
            }
        }
        let top = terms.max()!
        let total = top + log(terms.reduce(0) { $0 + exp($1 - top) })
        return min(total / (a - 1), epsilon(alpha))
    }

    /// The ways of breaking the bound, each a plausible slip in transcribing §5.3.
    static let mutations = [
        "the weight 3 of the terms l ≥ 3 written as 2", "the terms l ≥ 3 dropped", "ε(l ≥ 3) 1% too small",
    ]

    static func failing(_ data: Data, mutation: String) throws -> Set<Int> {
        switch mutation {
        case mutations[0]: try failing(data) { zhuWang($0, $1, $2, weight: 2) }
        case mutations[1]: try failing(data) { zhuWang($0, $1, $2, weight: 0) }
        default:
            try failing(data) { alpha, q, epsilon in
                PoissonSubsampledRDP.rdp(order: alpha, samplingRate: q) { l in l >= 3 ? 0.99 * epsilon(l) : epsilon(l) }
            }
        }
    }

    static func failing(_ data: Data, _ bound: SubsampledRDPBound) throws -> Set<Int> {
        Set(try PrivacyProjectRunner.run(data, subsampledBound: bound).filter { !$0.passed }.map(\.tcId))
    }

    @Test func theVectorsSpanTheOrders() throws {
        let (_, cases) = try Self.file()
        let high = cases.filter(\.highOrder)
        #expect(high.count >= 10)
        #expect(high.allSatisfy { $0.order > 2 })
        // Orders below 10, between 10 and 100, and above 100, most of them sampled (q < 1).
        #expect(high.contains { $0.order < 10 } && high.contains { (10...100).contains($0.order) })
        #expect(high.contains { $0.order > 100 && $0.samplingRate < 1 })
        #expect(Set(high.map(\.order)).count >= 10)
    }

    @Test func theTrueBoundPassesEveryCase() throws {
        let (data, _) = try Self.file()
        #expect(try Self.failing(data, PoissonSubsampledRDP.rdp).isEmpty)
    }

    @Test func theSeamReproducesTheTrueBound() throws {
        // The rewritten sum with weight 3 is the true bound: the mutations differ from it only where they say.
        let (data, _) = try Self.file()
        #expect(try Self.failing(data) { Self.zhuWang($0, $1, $2, weight: 3) }.isEmpty)
    }

    @Test(arguments: mutations)
    func aBrokenBoundFailsEveryHighOrderSampledCase(mutation: String) throws {
        let (data, cases) = try Self.file()
        let failing = try Self.failing(data, mutation: mutation)
        let exposed = cases.filter { $0.highOrder && $0.samplingRate < 1 }
        #expect(exposed.count >= 10)
        let missed = exposed.filter { !failing.contains($0.tcId) }.map(\.tcId)
        #expect(missed.isEmpty, "tcIds \(missed) still pass with \(mutation)")
    }

    /// Why the high-order cases were needed: every case that peaks at order 2 passes with the
    /// weight of the terms l ≥ 3 wrong, as issue 11 found.
    @Test func theOrderTwoCasesAloneMissAWrongWeight() throws {
        let (data, cases) = try Self.file()
        let failing = try Self.failing(data, mutation: Self.mutations[0])
        let orderTwo = cases.filter { $0.order == 2 }
        #expect(orderTwo.count >= 8)
        #expect(orderTwo.allSatisfy { !failing.contains($0.tcId) })
    }
}
