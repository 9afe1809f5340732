import Foundation
import Testing
import VeilCore
import VeilCrypto

@testable import VeilPaillier

/// Verified threshold decryption (`Specs/paillier.md` §6.2): each partial decryption proves
/// itself, and a key holder who sends anything else is named and left out.
@Suite struct ThresholdProofTests {
    static let dealt: (ThresholdPaillierPublicKey, [ThresholdKeyShare]) = {
        var generator = try! ChaCha20Generator(publicSeed: [UInt8](repeating: 9, count: 32))
        return try! ThresholdPaillierDealer.deal(bits: 512, threshold: 3, holders: 5, using: &generator)
    }()

    @Test func honestPartialsProveThemselves() throws {
        let (key, shares) = Self.dealt
        let verification = try #require(key.verification)
        #expect(verification.holderKeys.count == 5)
        let m = BigInt(-31_337)
        let c = try key.publicKey.encrypt(signed: m)
        let partials = try shares.map { try $0.partiallyDecrypt(c) }
        for partial in partials { #expect(key.verify(partial, of: c)) }
        let result = try key.decrypt(partials, of: c)
        #expect(key.publicKey.signed(residue: result.plaintext) == m && result.rejected.isEmpty)
    }

    /// The attack: holder 2 shifts its partial (its value times (1 + n)^k would shift the sum)
    /// and keeps its honest proof, or makes up a value. Without proofs the combination silently
    /// decrypts to a wrong plaintext; with them holder 2 is named and the other holders decrypt.
    @Test func aWrongPartialIsNamedAndLeftOut() throws {
        let (key, shares) = Self.dealt
        let pk = key.publicKey
        let m = BigInt(42)
        let c = try pk.encrypt(signed: m)
        let honest = try shares.map { try $0.partiallyDecrypt(c) }
        let shifted = PartialDecryption(
            holder: 2, ciphertext: c.value,
            value: (honest[1].value * pk.gPower(BigInt(1000))).modulo(pk.ciphertextModulus),
            proof: honest[1].proof)
        let unverified = try ThresholdPaillierPublicKey(publicKey: pk, threshold: 3, holders: 5)
        #expect(try unverified.combineSigned([honest[0], shifted, honest[2]], of: c) != m)  // the old silence

        #expect(!key.verify(shifted, of: c))
        let result = try key.decrypt([honest[0], shifted, honest[2], honest[3]], of: c)
        #expect(pk.signed(residue: result.plaintext) == m && result.rejected == [2])
        #expect(throws: PaillierError.incorrectPartialDecryptions(holders: [2])) {
            try key.decrypt([honest[0], shifted, honest[2]], of: c)
        }
        // Two cheaters among five, t = 3: still decrypted, both named.
        let invented = PartialDecryption(holder: 5, ciphertext: c.value, value: BigInt(7), proof: honest[4].proof)
        let both = try key.decrypt([honest[0], shifted, honest[2], honest[3], invented], of: c)
        #expect(pk.signed(residue: both.plaintext) == m && both.rejected == [2, 5])
    }

    /// No partial, however malformed, stops t correct ones: a stranger's number, a value
    /// outside Z*_(n²), another ciphertext's partial and a forged copy of an honest holder's
    /// are all left out and named (review, helper-21).
    @Test func malformedPartialsCannotStopTheHonestOnes() throws {
        let (key, shares) = Self.dealt
        let pk = key.publicKey
        let c = try pk.encrypt(signed: BigInt(-9))
        let other = try pk.encrypt(signed: BigInt(9))
        let honest = try shares.prefix(3).map { try $0.partiallyDecrypt(c) }
        let hostile = [
            PartialDecryption(holder: 7, ciphertext: c.value, value: honest[0].value, proof: honest[0].proof),
            PartialDecryption(holder: 4, ciphertext: c.value, value: BigInt(0), proof: honest[0].proof),
            try shares[4].partiallyDecrypt(other),
            PartialDecryption(holder: 2, ciphertext: c.value, value: BigInt(5), proof: honest[1].proof),
        ]
        let result = try key.decrypt(hostile + honest, of: c)
        #expect(pk.signed(residue: result.plaintext) == -9 && result.rejected == [2, 4, 5, 7])
        #expect(throws: PaillierError.incorrectPartialDecryptions(holders: [2, 4, 5, 7])) {
            try key.decrypt(hostile + honest.prefix(2), of: c)
        }
    }

    @Test func aVerificationKeyOfOrderTwoIsRefused() throws {
        let (key, _) = Self.dealt
        let modulus = key.publicKey.ciphertextModulus
        for v in [BigInt(1), modulus - 1] {
            #expect(throws: PaillierError.self) {
                try ThresholdPaillierPublicKey(
                    publicKey: key.publicKey, threshold: 3, holders: 5,
                    verification: ThresholdVerificationKeys(v: v, holderKeys: Array(repeating: v, count: 5)))
            }
        }
    }

    @Test func borrowedMissingOrStretchedProofsFail() throws {
        let (key, shares) = Self.dealt
        let pk = key.publicKey
        let c = try pk.encrypt(signed: BigInt(1))
        let other = try pk.encrypt(signed: BigInt(2))
        let mine = try shares[2].partiallyDecrypt(c)
        let proof = try #require(mine.proof)
        func with(_ proof: PartialDecryptionProof?, value: BigInt? = nil, holder: Int = 3) -> PartialDecryption {
            PartialDecryption(holder: holder, ciphertext: c.value, value: value ?? mine.value, proof: proof)
        }
        #expect(key.verify(with(proof), of: c))
        #expect(!key.verify(with(nil), of: c))  // no proof
        #expect(!key.verify(with(try shares[1].partiallyDecrypt(c).proof), of: c))  // holder 2's proof
        #expect(!key.verify(with(try shares[2].partiallyDecrypt(other).proof), of: c))  // another ciphertext's
        #expect(!key.verify(with(proof, holder: 4), of: c))  // claimed for holder 4
        let e = proof.challenge
        let z = proof.response
        #expect(!key.verify(with(PartialDecryptionProof(challenge: e + 1, response: z)), of: c))
        #expect(!key.verify(with(PartialDecryptionProof(challenge: e, response: z + 1)), of: c))
        #expect(!key.verify(with(PartialDecryptionProof(challenge: e, response: -z)), of: c))
        // A response past any honest one's bound is refused before it costs an exponentiation.
        let huge = BigInt(1).shiftedLeft(key.proofRandomnessBits + 300)
        #expect(!key.verify(with(PartialDecryptionProof(challenge: e, response: huge)), of: c))
        // −c_i has c_i's square, so the proof (about c_i²) holds for it, and harmlessly: the
        // combination raises every partial to an even power, where the sign vanishes.
        let negated = with(proof, value: pk.ciphertextModulus - mine.value)
        #expect(key.verify(negated, of: c))
        let others = try [0, 1].map { try shares[$0].partiallyDecrypt(c) }
        #expect(try key.decrypt(others + [negated], of: c) == key.decrypt(others + [mine], of: c))
    }

    @Test(arguments: [2, 3]) func damgardJurikPartialsProveThemselves(s: Int) throws {
        var generator = try ChaCha20Generator(publicSeed: [UInt8](repeating: UInt8(s), count: 32))
        let (key, shares) = try ThresholdPaillierDealer.deal(
            bits: 512, threshold: 2, holders: 3, s: s, using: &generator)
        let m = key.publicKey.n * 12_345 + 6
        let c = try key.publicKey.encrypt(signed: m)
        let partials = try shares.map { try $0.partiallyDecrypt(c) }
        let wrong = PartialDecryption(
            holder: 1, ciphertext: c.value, value: partials[1].value, proof: partials[0].proof)
        let result = try key.decrypt([wrong, partials[1], partials[2]], of: c)
        #expect(key.publicKey.signed(residue: result.plaintext) == m && result.rejected == [1])
    }
}
