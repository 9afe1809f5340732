import Foundation
import VeilLearning

/// The project's `VEIL-COORDINATE-SUBSET` file: the coordinates a public seed picks, and what
/// a participant sends of a payload (Specs/export.md §5.2).
enum CoordinateSubsetRunner: VectorRunner {
    static let algorithm = "VEIL-COORDINATE-SUBSET"

    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// d, the payload's length (the last value its weight), and k, the update coordinates sent.
        var length: Int
        var size: Int
        var seed: String
        /// The coordinates sent, ascending, the weight's (d − 1) last.
        var indices: [Int]
        /// A payload and what is sent of it.
        var payload: [Double]
        var sent: [Double]
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let subset = try CoordinateSubset(
                        length: test.length, size: test.size, seed: hex(test.seed, "seed"))
                    try expectEqual(subset.indices, test.indices, "indices")
                    try expectEqual(subset.compress(test.payload), test.sent, "sent")
                }
            }
        }
    }
}
