import Foundation
import VeilCore
import VeilSecAgg

extension ProjectVectors {
    /// `secagg/veil_secagg_parameters.json`: each case's verdict is computed here; the
    /// reference (`Specs/reference/secagg_reference.py`) derives it again from the rules.
    static func secAggParameters() throws -> VectorFile<SecAggParametersRunner.Group> {
        typealias Case = (kind: String, n: Int, k: Int?, t: Int?, d: Int?, comment: String)
        func validate(_ n: Int, _ k: Int, _ t: Int, _ comment: String, d: Int? = nil) -> Case {
            ("validate", n, k, t, d, comment)
        }
        func recommend(_ n: Int, _ comment: String) -> Case { ("recommend", n, nil, nil, nil, comment) }
        let plan: [(adversary: String, gamma: Double, delta: Double, sigma: Int, population: Int?, cases: [Case])] = [
            (
                "honest-but-curious", 0.05, 0.33, 40, nil,
                [
                    validate(3, 2, 2, "n = 3: n_C = max(1, ⌈0.15⌉) = 1, so t = 2 is the smallest"),
                    validate(3, 2, 1, "t = 1: every share is the secret"),
                    validate(10, 9, 2, "n = 10: n_C = 1 (⌊0.5⌋ = 0 gave t = 1 before)"),
                    validate(10, 9, 1, "t = 1 at n = 10"),
                    validate(100, 99, 6, "rule 1: t > n_C = 5"),
                    validate(100, 99, 5, "rule 1: t = n_C"),
                    validate(1000, 72, 24, "rule 2: the SecAgg+ entry"),
                    validate(1000, 72, 23, "rule 2: one below"),
                    validate(1000, 20, 20, "rule 3: a 20-regular graph disconnects"),
                    validate(9, 3, 2, "no 3-regular Harary graph on 9 vertices"),
                    validate(1, 1, 2, "one participant"),
                    validate(10, 10, 3, "k = n"),
                    validate(10, 4, 6, "t > k + 1"),
                    validate(10, 9, 2, "a session of vectors of length 1", d: 1),
                    validate(10, 9, 2, "a session of vectors of length 0", d: 0),
                    recommend(3, "the README's federation"),
                    recommend(10, "the default simulation"),
                    recommend(100, "the table"),
                    recommend(1000, "the table: Google's finder gives (72, 24)"),
                ]
            ),
            (
                "malicious", 0.05, 0.33, 40, nil,
                [
                    validate(3, 2, 3, "rule 4: t > (3 + 1)/2"),
                    validate(3, 2, 2, "rule 4: t = 2 lets a split view through"),
                    validate(10, 9, 6, "rule 4: t > (10 + 1)/2"),
                    validate(10, 9, 5, "rule 4: one below"),
                    validate(10, 9, 3, "the review's split view: t = 3 of 10"),
                    validate(100, 72, 60, "rule 4: a malicious server needs the complete graph"),
                    recommend(3, "all three must survive"),
                    recommend(10, "t = 6"),
                    recommend(100, "t = 53"),
                    recommend(1000, "t = 526"),
                ]
            ),
            (
                "honest-but-curious", 0.29, 0, 40, nil,
                [
                    validate(100, 99, 30, "γ = 0.29 is 29/100: n_C = 29 (floating point says 28.999…)"),
                    validate(100, 99, 29, "t = n_C = 29"),
                ]
            ),
            (
                "honest-but-curious", 0.7, 0, 40, nil,
                [
                    validate(10, 9, 8, "γ = 0.7: n_C = 7 (floating point says 7.000…1, whose ceiling is 8)"),
                    validate(10, 9, 7, "t = n_C = 7"),
                ]
            ),
            (
                "honest-but-curious", 0, 0, 40, nil,
                [
                    validate(2, 1, 2, "γ = 0 still counts one corrupt participant"),
                    validate(2, 1, 1, "t = 1 even when nobody is assumed corrupt"),
                    validate(8, 2, 3, "a sparse graph at γ = 0"),
                ]
            ),
            (
                "honest-but-curious", 0.05, 0.1, 40, 10_000,
                [
                    validate(
                        100, 99, 27,
                        "a uniform cohort of 100 from 10,000 (500 corrupt): n_C = 26, the 2^-40 tail, not 5"),
                    validate(100, 99, 26, "t = n_C of the sampled cohort"),
                    recommend(1000, "a sampled cohort of 1,000"),
                ]
            ),
            (
                "malicious", 0.45, 0.33, 40, nil,
                [
                    recommend(
                        10,
                        "t > 5.5 and t > n_C = 5 of 10 while a third drop: no (k, t) keeps the abort probability below 2^-20"
                    )
                ]
            ),
            // Threat models the rules refuse (§2): every case of the group is refused by its model.
            ("honest-but-curious", 0.7, 0.3, 40, nil, [validate(10, 9, 8, "γ + δ = 1")]),
            ("honest-but-curious", 0.05, 0.1, 0, nil, [validate(10, 9, 3, "σ = 0")]),
            ("honest-but-curious", 0.05, 0.1, 129, nil, [validate(10, 9, 3, "σ = 129")]),
            ("honest-but-curious", 0.05, 0.1, 40, 1, [validate(10, 9, 3, "a population of one")]),
            (
                "honest-but-curious", 1.5e-19, 0.1, 40, nil,
                [validate(10, 9, 3, "γ = 1.5e-19 needs 20 decimal places; at most 18 are read")]
            ),
        ]
        var tcId = 0
        var groups: [SecAggParametersRunner.Group] = []
        for entry in plan {
            var group = SecAggParametersRunner.Group(
                adversary: entry.adversary, corruptFraction: entry.gamma, dropoutFraction: entry.delta,
                securityBits: entry.sigma, population: entry.population, tests: [])
            for c in entry.cases {
                tcId += 1
                // A refused threat model (corruptCount then 0, never read) refuses its every case.
                var test = SecAggParametersRunner.Test(
                    tcId: tcId, comment: c.comment, flags: [], result: .valid, error: nil, kind: c.kind, clients: c.n,
                    neighbors: c.k, threshold: c.t, dimension: c.d, corruptCount: 0)
                do {
                    let model = try SecAggParametersRunner.threatModel(group)
                    test.corruptCount = model.corruptCount(of: c.n)
                    if let recommended = try SecAggParametersRunner.evaluate(test, model: model) {
                        (test.neighbors, test.threshold) = recommended
                    }
                } catch {
                    test.result = .invalid
                    test.error = errorCode(error)
                    test.flags = ["Refused"]
                }
                group.tests.append(test)
            }
            groups.append(group)
        }
        return VectorFile(
            algorithm: SecAggParametersRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's secure-aggregation parameter rules (Specs/secagg.md §2): n_C = max(1, ⌈γn⌉) with γ read",
                "as the decimal it is written as (or, with a population N, the 2^-σ tail of Hyp(N, ⌈γN⌉, n)),",
                "t ≥ 2, rules 1–4, and the recommended (k, t). Recomputed by Specs/reference/secagg_reference.py.",
            ],
            notes: [
                "Refused": VectorNote(
                    bugType: "BASIC", description: "The rules refuse these parameters; `error` names the rule.")
            ],
            testGroups: groups, numberOfTests: tcId)
    }
}
