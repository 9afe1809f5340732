import Foundation
import VeilCrypto

/// The project's `VEIL-CHACHA20-DRBG` file: the deterministic generator's first outputs.
enum ChaCha20GeneratorRunner: VectorRunner {
    static let algorithm = "VEIL-CHACHA20-DRBG"

    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        var seed: String
        /// The first outputs of `next()`, as decimal strings.
        var outputs: [String]
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    var generator = try ChaCha20Generator(publicSeed: hex(test.seed, "seed"))
                    let expected = try test.outputs.map { try decimal($0, "outputs") }
                    try expectEqual(expected.map { _ in generator.next() }, expected, "outputs")
                }
            }
        }
    }
}
