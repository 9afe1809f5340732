import Foundation
import VeilCrypto

/// The project's `VEIL-RISTRETTO255` file (`Specs/primitives.md` §12): the group's encodings,
/// scalar reduction, agreement, and the equality proofs SecAgg complaints carry.
enum Ristretto255Runner: VectorRunner {
    static let algorithm = "VEIL-RISTRETTO255"

    struct Group: Codable, Sendable {
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// "base" (scalar → element = scalar·B), "decode" (element accepted or not), "reduce"
        /// (wide → scalar), "agree" (scalar, point → shared), "prove" (scalar, point, context →
        /// shared, proof), "verify" (element = X, point = Y, shared = K, context, proof).
        var operation: String
        var scalar: String?
        var wide: String?
        var element: String?
        var point: String?
        var shared: String?
        var context: String?
        var proof: String?
    }

    /// The code of a proof that does not verify.
    struct ProofRefused: Error {}

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in
                judge(test) {
                    func field(_ value: String?, _ name: String) throws -> [UInt8] {
                        try hex(value ?? "", name)
                    }
                    switch test.operation {
                    case "base":
                        let key = try Ristretto255.PrivateKey(
                            rawRepresentation: SecureBytes(copying: field(test.scalar, "scalar")))
                        try expectEqual(key.publicKey.rawRepresentation, try field(test.element, "element"), "element")
                    case "decode":
                        _ = try Ristretto255.PublicKey(rawRepresentation: try field(test.element, "element"))
                    case "reduce":
                        let scalar = Ristretto255.reduce(SecureBytes(copying: try field(test.wide, "wide")))
                        try expectEqual(scalar.unsafeExposedBytes(), try field(test.scalar, "scalar"), "scalar")
                    case "agree":
                        let key = try Ristretto255.PrivateKey(
                            rawRepresentation: SecureBytes(copying: field(test.scalar, "scalar")))
                        let shared = try key.sharedSecret(
                            with: Ristretto255.PublicKey(rawRepresentation: try field(test.point, "point")))
                        try expectEqual(shared.unsafeExposedBytes(), try field(test.shared, "shared"), "shared")
                    case "prove":
                        let key = try Ristretto255.PrivateKey(
                            rawRepresentation: SecureBytes(copying: field(test.scalar, "scalar")))
                        let base = try Ristretto255.PublicKey(rawRepresentation: try field(test.point, "point"))
                        let context = try field(test.context, "context")
                        let (shared, proof) = try EqualityProof.prove(secret: key, base: base, context: context)
                        try expectEqual(shared.unsafeExposedBytes(), try field(test.shared, "shared"), "shared")
                        try expectEqual(proof.rawRepresentation, try field(test.proof, "proof"), "proof")
                        guard
                            proof.verify(
                                x: key.publicKey, base: base, shared: shared.unsafeExposedBytes(), context: context)
                        else { throw Mismatch("a proof just made does not verify") }
                    case "verify":
                        let x = try Ristretto255.PublicKey(rawRepresentation: try field(test.element, "element"))
                        let y = try Ristretto255.PublicKey(rawRepresentation: try field(test.point, "point"))
                        let proof = try EqualityProof(rawRepresentation: try field(test.proof, "proof"))
                        guard
                            proof.verify(
                                x: x, base: y, shared: try field(test.shared, "shared"),
                                context: try field(test.context, "context"))
                        else { throw ProofRefused() }
                    default:
                        throw VectorError.unreadable("unknown operation \(test.operation)")
                    }
                }
            }
        }
    }
}
