import Foundation
import Testing
import VeilCore
import VeilCrypto

@testable import VeilPaillier

/// Threshold sessions (`Specs/paillier.md` §6.3): the threshold key's canonical encoding reads
/// back to the same key and nothing else, a hostile holder number is no holder's, and a session
/// refuses a key whose two quorums may be disjoint.
@Suite struct ThresholdSessionTests {
    static func deal(_ t: Int, of l: Int, seed: UInt8 = 5) throws -> (ThresholdPaillierPublicKey, [ThresholdKeyShare]) {
        var generator = try ChaCha20Generator(publicSeed: [UInt8](repeating: seed, count: 32))
        return try ThresholdPaillierDealer.deal(bits: 512, threshold: t, holders: l, using: &generator)
    }

    @Test func theCanonicalEncodingReadsBackToTheKeyAndRefusesAnythingElse() throws {
        let (key, _) = try ThresholdProofTests.dealt
        let encoding = key.canonicalEncoding
        #expect(try ThresholdPaillierPublicKey(canonicalEncoding: encoding) == key)
        #expect(key.fingerprint == Hex.encode(SHA256.hash(encoding)))
        let domain = Array("veil/v1/paillier/threshold-key".utf8).count + 1
        var leadingZero = encoding
        leadingZero.replaceSubrange(domain + 12..<domain + 16, with: [65, 0, 0, 0])  // one byte more for n
        leadingZero.insert(0, at: domain + 16)
        var wrongWidth = encoding
        let widthAt = domain + 16 + key.publicKey.modulusByteCount
        wrongWidth[widthAt] &+= 1
        var manyHolders = encoding
        manyHolders.replaceSubrange(domain + 8..<domain + 12, with: [65, 0, 0, 0])
        var otherDomain = encoding
        otherDomain[0] ^= 1
        for (why, bytes) in [
            ("a trailing byte", encoding + [0]), ("cut short", Array(encoding.dropLast())),
            ("n with a leading zero byte", leadingZero), ("another width", wrongWidth),
            ("65 holders", manyHolders), ("another domain", otherDomain), ("empty", []),
        ] {
            #expect(throws: PaillierError.self, "\(why)") { try ThresholdPaillierPublicKey(canonicalEncoding: bytes) }
        }
    }

    /// A hostile audit record's holder number (−1, 0, 2^32 + 1) trapped while the statement was
    /// built (review, helper-22): it is now no holder's, and nothing traps.
    @Test func aHolderNumberOutOfRangeIsNoHolders() throws {
        let (key, shares) = try ThresholdProofTests.dealt
        let signer = try Ed25519.PrivateKey(seed: SecureBytes(copying: [UInt8](repeating: 1, count: 32)))
        let statement = ThresholdShareStatement(signing: shares[0], with: signer)
        #expect(statement.isSigned(by: signer.publicKey))
        #expect(
            ThresholdShareStatement.isSigned(
                encoding: key.canonicalEncoding, holder: 1, signature: statement.signature, by: signer.publicKey))
        for holder in [-1, 0, 65, 1 << 32 + 1, Int.max, Int.min] {
            #expect(
                !ThresholdShareStatement.isSigned(
                    encoding: key.canonicalEncoding, holder: holder, signature: statement.signature,
                    by: signer.publicKey))
        }
    }

    /// 2t ≤ ℓ would let two disjoint quorums each decrypt one session of a round: refused.
    @Test func aSessionRefusesAKeyWhoseQuorumsMayBeDisjoint() throws {
        let identities = try (1...6).map {
            try Ed25519.PrivateKey(seed: SecureBytes(copying: [UInt8](repeating: UInt8($0), count: 32))).publicKey
        }
        func session(_ key: ThresholdPaillierPublicKey) throws -> PaillierSession {
            try PaillierSession(
                publicKey: key.publicKey,
                packing: try PaillierPacking(bitWidth: BitWidth(16), maxAddends: 3, keyBits: key.publicKey.bits),
                dimension: 4, round: 1, nonce: [UInt8](repeating: 3, count: 32),
                decryptors: .threshold(
                    ThresholdKeyHolders(
                        key: key,
                        signingKeys: Dictionary(
                            uniqueKeysWithValues: (1...key.holders).map { ($0, identities[$0 - 1]) })
                    )), coordinator: identities[5], roster: Array(identities[0..<3]),
                context: [UInt8](repeating: 4, count: 32))
        }
        let (twoOfFour, _) = try Self.deal(2, of: 4)
        #expect(!twoOfFour.hasIntersectingQuorums)
        #expect(throws: PaillierSessionError.self) { try session(twoOfFour) }
        let (threeOfFour, _) = try Self.deal(3, of: 4)
        #expect(threeOfFour.hasIntersectingQuorums)
        #expect(try session(threeOfFour).thresholdHolders?.key == threeOfFour)
    }

    @Test func aPartialOfAnotherWidthIsRefused() throws {
        let (key, shares) = try ThresholdProofTests.dealt
        let c = try key.publicKey.encrypt(signed: BigInt(7))
        let wire = try key.encode(try shares[1].partiallyDecrypt(c))
        #expect(wire.count == key.partialByteCount)
        #expect(try key.decodePartial(wire, holder: 2, of: c).proof != nil)
        #expect(key.verify(try key.decodePartial(wire, holder: 2, of: c), of: c))
        #expect(throws: PaillierError.self) { try key.decodePartial(Array(wire.dropLast()), holder: 2, of: c) }
        #expect(throws: PaillierError.self) { try key.decodePartial(wire + [0], holder: 2, of: c) }
    }
}
