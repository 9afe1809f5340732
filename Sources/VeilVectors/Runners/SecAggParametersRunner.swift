import Foundation
import VeilCore
import VeilSecAgg

/// The project's `VEIL-SECAGG-PARAMETERS` file: the corrupt count n_C = max(1, ⌈γn⌉) (or its
/// sampled-population tail), the rules that accept or refuse (n, k, t), and the recommended
/// (k, t) of `Specs/secagg.md` §2.
enum SecAggParametersRunner: VectorRunner {
    static let algorithm = "VEIL-SECAGG-PARAMETERS"

    struct Group: Codable, Sendable {
        var adversary: String
        var corruptFraction: Double
        var dropoutFraction: Double
        var securityBits: Int
        var population: Int?
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// `validate`: are (n, k, t) accepted — with a `dimension`, as a session's parameters
        /// (n, t, k, b = 32, d); `recommend`: the recommended (k, t) for n.
        var kind: String
        var clients: Int
        var neighbors: Int?
        var threshold: Int?
        var dimension: Int?
        var corruptCount: Int
    }

    static func threatModel(_ group: Group) throws -> ThreatModel {
        let adversary: ThreatModel.Adversary =
            switch group.adversary {
            case "honest-but-curious": .honestButCuriousServer
            case "malicious": .maliciousServer
            default: throw VectorError.unreadable("unknown adversary \(group.adversary)")
            }
        return try ThreatModel(
            adversary: adversary, corruptFraction: group.corruptFraction, dropoutFraction: group.dropoutFraction,
            securityBits: group.securityBits, population: group.population)
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let model = try threatModel(group)
                    try expectEqual(model.corruptCount(of: test.clients), test.corruptCount, "corruptCount")
                    if let recommended = try evaluate(test, model: model) {
                        try expectEqual(recommended.neighbors, test.neighbors, "neighbors")
                        try expectEqual(recommended.threshold, test.threshold, "threshold")
                    }
                }
            }
        }
    }

    /// A case's rules: `validate` checks (n, k, t) — with a dimension, as a session's
    /// parameters (b = 32, d) — and returns nil; `recommend` returns the recommended (k, t).
    static func evaluate(_ test: Test, model: ThreatModel) throws -> (neighbors: Int, threshold: Int)? {
        switch test.kind {
        case "validate":
            guard let k = test.neighbors, let t = test.threshold else {
                throw VectorError.unreadable("a validate case needs neighbors and threshold")
            }
            if let d = test.dimension {
                _ = try SecAggParameters(
                    clientCount: test.clients, threshold: t, neighborCount: k, bitWidth: BitWidth(32), dimension: d,
                    threatModel: model)
            } else {
                try SecAggParameters.validate(
                    clientCount: test.clients, threshold: t, neighborCount: k, threatModel: model)
            }
            return nil
        case "recommend":
            let p = try SecAggParameters.recommended(
                clientCount: test.clients, bitWidth: BitWidth(32), dimension: 1, threatModel: model)
            return (p.neighborCount, p.threshold)
        default:
            throw VectorError.unreadable("unknown kind \(test.kind)")
        }
    }
}
