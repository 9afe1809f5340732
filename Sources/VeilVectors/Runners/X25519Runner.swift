import Foundation
import VeilCrypto

/// Wycheproof `XdhComp` files: RFC 7748 and Wycheproof's x25519_test.json.
enum X25519Runner: VectorRunner {
    static let algorithm = "XDH"

    struct Group: Codable, Sendable {
        var curve: String
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var `public`: String
        var `private`: String
        var shared: String
        /// Veil extension for RFC 7748's iterated test: (k, u) ← (X25519(k, u), k), then compare k.
        var iterations: Int?
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    guard group.curve == "curve25519" else { throw VectorError.unreadable("curve \(group.curve)") }
                    var scalar = try hex(test.private, "private")
                    var point = try hex(test.public, "public")
                    for _ in 0..<(test.iterations ?? 1) {
                        let key = try X25519.PrivateKey(rawRepresentation: SecureBytes(copying: scalar))
                        let next = try key.sharedSecret(with: X25519.PublicKey(rawRepresentation: point))
                            .unsafeExposedBytes()
                        (scalar, point) = (next, scalar)
                    }
                    try expectEqual(scalar, try hex(test.shared, "shared"), "shared secret")
                }
            }
        }
    }
}
