import Foundation
import VeilCore
import VeilCrypto

/// The project's `VEIL-SHAMIR` file: dealing (with the deterministic generator) and
/// reconstruction, valid and invalid.
enum ShamirRunner: VectorRunner {
    static let algorithm = "VEIL-SHAMIR"

    struct Group: Codable, Sendable {
        var threshold: Int
        var shareCount: Int
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// "split", "reconstruct" or "decode".
        var operation: String
        /// The secret dealt, or expected back.
        var secret: String
        /// For "split": the generator seed and the indices (all of 1...n when absent).
        var generatorSeed: String?
        var indices: [UInt32]?
        /// The encoded shares: dealt by "split", input to "reconstruct" and "decode".
        var shares: [String]
        /// For "decode": the indices of the shares decoding sets aside, ascending.
        var wrongIndices: [UInt32]? = nil
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    let scheme = try ShamirSecretSharing(threshold: group.threshold, shareCount: group.shareCount)
                    let secret = SecureBytes(copying: try hex(test.secret, "secret"))
                    switch test.operation {
                    case "split":
                        var generator = try ChaCha20Generator(
                            publicSeed: hex(test.generatorSeed ?? "", "generatorSeed"))
                        let indices = test.indices ?? (1...group.shareCount).map { UInt32($0) }
                        let shares = try scheme.split(secret, at: indices, using: &generator)
                        try expectEqual(
                            shares.map { Hex.encode($0.encoded.unsafeExposedBytes()) }, test.shares, "shares")
                        // Any t of them give the secret back: take the last t.
                        try expectEqual(
                            try scheme.reconstruct(Array(shares.suffix(group.threshold))), secret, "reconstruction")
                    case "reconstruct":
                        let shares = try test.shares.map {
                            try ShamirShare(encoded: SecureBytes(copying: hex($0, "shares")))
                        }
                        try expectEqual(try scheme.reconstruct(shares), secret, "secret")
                    case "decode":
                        let shares = try test.shares.map {
                            try ShamirShare(encoded: SecureBytes(copying: hex($0, "shares")))
                        }
                        let decoded = try scheme.decode(shares)
                        try expectEqual(decoded.secret, secret, "secret")
                        try expectEqual(decoded.wrongIndices, test.wrongIndices ?? [], "wrongIndices")
                    default:
                        throw VectorError.unreadable("unknown operation \(test.operation)")
                    }
                }
            }
        }
    }
}
