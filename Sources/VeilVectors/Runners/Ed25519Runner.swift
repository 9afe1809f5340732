import Foundation
import VeilCrypto

/// Wycheproof `EddsaVerify` files: RFC 8032 and Wycheproof's ed25519_test.json.
enum Ed25519Runner: VectorRunner {
    static let algorithm = "EDDSA"

    struct Group: Codable, Sendable {
        struct Key: Codable, Sendable { var pk: String }
        struct Seed: Codable, Sendable { var sk: String }
        var publicKey: Key
        /// Veil extension: the RFC 8032 private key, to check derivation and signing too.
        var privateKey: Seed?
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var msg: String
        var sig: String
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let publicKey = try Ed25519.PublicKey(rawRepresentation: hex(group.publicKey.pk, "pk"))
                    let message = try hex(test.msg, "msg")
                    let signature = try hex(test.sig, "sig")
                    if let seed = group.privateKey {
                        let key = try Ed25519.PrivateKey(seed: SecureBytes(copying: hex(seed.sk, "sk")))
                        try expectEqual(key.publicKey, publicKey, "derived public key")
                        if test.result == .valid {
                            try expectEqual(key.signature(for: message), signature, "signature")
                        }
                    }
                    guard publicKey.isValidSignature(signature, for: message) else {
                        throw CryptoError.authenticationFailure
                    }
                }
            }
        }
    }
}
