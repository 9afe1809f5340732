import Foundation
import VeilCrypto

/// Wycheproof `AeadTest` files for XChaCha20-Poly1305.
enum XChaCha20Poly1305Runner: VectorRunner {
    static let algorithm = "XCHACHA20-POLY1305"

    typealias Group = TestGroup<Test>

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var key: String
        var iv: String
        var aad: String
        var msg: String
        var ct: String
        var tag: String
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let key = try XChaCha20Poly1305.Key(rawRepresentation: SecureBytes(copying: hex(test.key, "key")))
                    let nonce = try XChaCha20Poly1305.Nonce(rawRepresentation: hex(test.iv, "iv"))
                    let aad = try hex(test.aad, "aad")
                    let sealed = try hex(test.ct, "ct") + hex(test.tag, "tag")
                    let message = try hex(test.msg, "msg")
                    if test.result == .valid {
                        let output = XChaCha20Poly1305.seal(
                            SecureBytes(copying: message), using: key, nonce: nonce, authenticating: aad)
                        try expectEqual(output, sealed, "ciphertext and tag")
                    }
                    let opened = try XChaCha20Poly1305.open(sealed, using: key, nonce: nonce, authenticating: aad)
                    try expectEqual(opened, SecureBytes(copying: message), "plaintext")
                }
            }
        }
    }
}
