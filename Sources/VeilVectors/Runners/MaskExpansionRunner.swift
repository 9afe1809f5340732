import Foundation
import VeilCore
import VeilCrypto

/// The project's `VEIL-MASK-EXPANSION` file.
enum MaskExpansionRunner: VectorRunner {
    static let algorithm = "VEIL-MASK-EXPANSION"

    struct Group: Codable, Sendable {
        var bits: Int
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        var seed: String
        var label: String
        var count: Int
        /// The mask elements, as decimal strings.
        var elements: [String]
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let expander = try MaskExpander(
                        seed: SecureBytes(copying: hex(test.seed, "seed")), label: hex(test.label, "label"),
                        bitWidth: BitWidth(group.bits))
                    let mask = try expander.expand(count: test.count)
                    try expectEqual(mask.elements, try test.elements.map { try decimal($0, "elements") }, "elements")
                }
            }
        }
    }
}
