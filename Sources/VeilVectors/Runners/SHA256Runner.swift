import Foundation
import VeilCrypto

/// Hash test files for SHA-256 (FIPS 180-4 examples and padding-boundary cases).
enum SHA256Runner: VectorRunner {
    static let algorithm = "SHA-256"

    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var msg: String
        var digest: String
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    try expectEqual(SHA256.hash(hex(test.msg, "msg")), try hex(test.digest, "digest"), "digest")
                }
            }
        }
    }
}
