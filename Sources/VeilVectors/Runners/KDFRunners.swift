import Foundation
import VeilCrypto

/// Wycheproof `HkdfTest` files for HKDF-SHA-256 (RFC 5869).
enum HKDFRunner: VectorRunner {
    static let algorithm = "HKDF-SHA-256"

    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var ikm: String
        var salt: String
        var info: String
        var size: Int
        var okm: String
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let okm = try HKDFSHA256.deriveKey(
                        ikm: SecureBytes(copying: hex(test.ikm, "ikm")), salt: hex(test.salt, "salt"),
                        info: hex(test.info, "info"), outputByteCount: test.size)
                    try expectEqual(okm, SecureBytes(copying: hex(test.okm, "okm")), "okm")
                }
            }
        }
    }
}

/// The project's `VEIL-KDF` file: HKDF-SHA-256 with Veil's labelled info string.
enum VeilKDFRunner: VectorRunner {
    static let algorithm = "VEIL-KDF"

    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        var label: String
        var ikm: String
        var salt: String
        var context: String
        var size: Int
        var okm: String
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let okm = try VeilKDF.derive(
                        VeilKDF.Label(test.label), from: SecureBytes(copying: hex(test.ikm, "ikm")),
                        salt: hex(test.salt, "salt"),
                        context: hex(test.context, "context"), outputByteCount: test.size)
                    try expectEqual(okm, SecureBytes(copying: hex(test.okm, "okm")), "okm")
                }
            }
        }
    }
}
