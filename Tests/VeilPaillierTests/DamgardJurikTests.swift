import Foundation
import Testing
import VeilCore
import VeilCrypto

@testable import VeilPaillier

/// Damgård–Jurik, s = 1…4, on the 512-bit test key's primes (`Specs/paillier.md` §9).
@Suite struct DamgardJurikTests {
    static func key(_ s: Int) -> PaillierPrivateKey { try! testKey.withDegree(s) }

    /// The plaintext by the textbook route, without CRT or the precomputed h_p: c^λ mod
    /// n^(s+1) = (1 + n)^(λ·m), so m = log(c^λ)·λ^(−1) mod n^s. Two ways to one answer.
    static func decryptWithoutCRT(_ c: PaillierCiphertext, _ key: PaillierPrivateKey) -> BigInt {
        let pk = key.publicKey
        let (p, q) = key.primes
        let lambda = BigInt.lcm(p - 1, q - 1)
        let power = c.value.power(lambda, modulo: pk.ciphertextModulus)
        let log = PaillierPrivateKey.logarithm(power, base: pk.n, s: pk.s)
        return (log * lambda.inverse(modulo: pk.plaintextModulus)!).modulo(pk.plaintextModulus)
    }

    @Test(arguments: 1...4) func encryptionRoundTripsByBothDecryptions(s: Int) throws {
        let key = Self.key(s)
        let pk = key.publicKey
        #expect(pk.s == s && pk.ciphertextByteCount == (s + 1) * 64)
        let top = pk.maxSignedMagnitude
        let djn = DJNEncryptor(publicKey: pk, precomputeTable: true, window: 4)
        // Plaintexts of every size up to n^s: the logarithm's digits beyond the first matter.
        let wide = s == 1 ? top - 5 : pk.n + 5
        for m in [BigInt(0), BigInt(1), BigInt(-1), top, -top, wide, -BigInt.random(below: top)] {
            let residue = try pk.residue(signed: m)
            for c in [try pk.encrypt(residue: residue), try djn.encrypt(residue: residue)] {
                #expect(try key.decrypt(c) == residue)
                #expect(Self.decryptWithoutCRT(c, key) == residue)
                #expect(try key.decryptSigned(c) == m)
            }
        }
    }

    @Test(arguments: 2...4) func homomorphicOperationsHoldModNToTheS(s: Int) throws {
        let key = Self.key(s)
        let pk = key.publicKey
        let big = pk.n * (pk.n / 4)  // beyond Paillier's plaintext space: only s ≥ 2 holds it
        let a = try pk.encrypt(signed: big)
        let b = try pk.encrypt(signed: BigInt(-7))
        #expect(try key.decryptSigned(pk.add(a, b)) == big - 7)
        #expect(try key.decryptSigned(pk.add(a, plaintext: BigInt(-3))) == big - 3)
        #expect(try key.decryptSigned(pk.multiply(b, by: BigInt(-6))) == BigInt(42))
        let rerandomized = try pk.rerandomize(a)
        #expect(rerandomized != a)
        #expect(try key.decryptSigned(rerandomized) == big)
        #expect(try key.decryptSigned(pk.zero) == BigInt(0))
    }

    @Test func keysOfOneNButAnotherSAreDifferentKeys() throws {
        let three = Self.key(3).publicKey
        let c = try three.encrypt(signed: BigInt(5))
        #expect(throws: PaillierError.keyMismatch) { try testKey.decrypt(c) }
        #expect(throws: PaillierError.keyMismatch) { try testKey.publicKey.add(c, c) }
        #expect(throws: PaillierError.keyMismatch) { try Self.key(2).decrypt(c) }
        for s in [0, 5, -1] {
            #expect(throws: PaillierError.unsupportedDegree(s)) { try PaillierPublicKey(n: three.n, s: s) }
            #expect(throws: PaillierError.unsupportedDegree(s)) { try testKey.withDegree(s) }
            #expect(throws: PaillierError.unsupportedDegree(s)) {
                try PaillierPacking(bitWidth: BitWidth(32), maxAddends: 2, keyBits: 2048, degree: s)
            }
        }
    }

    @Test func rangesAreTheDegreesOwn() throws {
        let pk = Self.key(3).publicKey
        #expect(throws: PaillierError.ciphertextOutOfRange) { try pk.ciphertext(pk.ciphertextModulus) }
        #expect(throws: PaillierError.ciphertextOutOfRange) { try pk.ciphertext(testKey.primes.q) }
        // Above n² (Paillier's range) and below n⁴: a ciphertext for s = 3.
        #expect(try pk.ciphertext(pk.n * pk.n + 1).value == pk.n * pk.n + 1)
        #expect(throws: PaillierError.plaintextOutOfRange) { try pk.residue(signed: pk.maxSignedMagnitude + 1) }
        #expect(throws: PaillierError.plaintextOutOfRange) { try pk.encrypt(residue: pk.plaintextModulus) }
        #expect(throws: PaillierError.plaintextOutOfRange) {
            try PaillierBatch.encrypt(residues: [pk.plaintextModulus], key: pk)
        }
    }

    /// The layout's arithmetic at 2048 bits, b = 32: what `veil bench paillier` reports.
    @Test func bytesPerValueFallWithS() throws {
        func layout(_ addends: Int, _ s: Int) throws -> PaillierPacking {
            try PaillierPacking(bitWidth: BitWidth(32), maxAddends: addends, keyBits: 2048, degree: s)
        }
        #expect(try layout(100, 1).slotsPerPlaintext == 52)  // ⌊2047/39⌋
        #expect(try layout(100, 3).slotsPerPlaintext == 157)  // ⌊6141/39⌋
        #expect(try layout(100, 4).slotsPerPlaintext == 209)  // ⌊8188/39⌋
        #expect(try layout(8, 3).slotsPerPlaintext == 175)  // ⌊6141/35⌋
        #expect(abs(try layout(100, 3).ciphertextBytesPerValue - 1024.0 / 157) < 1e-12)
        #expect(try layout(8, 3).ciphertextBytesPerValue < 6)
        #expect(try layout(64, 4).ciphertextBytesPerValue < 6)  // 1280 / 215 = 5.95
        #expect(try layout(100, 3).ciphertextBytesPerValue > 6)  // the floor (s+1)/s·(b + log₂K)/8 is 6.44
    }

    /// A packed sum over n^s: slots past Paillier's |n| bits carry values too.
    @Test(arguments: 2...4) func packedSumsUnpackAcrossTheWholePlaintext(s: Int) throws {
        let key = Self.key(s)
        let packing = try PaillierPacking(bitWidth: BitWidth(32), maxAddends: 10, key: key.publicKey)
        #expect(packing.slotsPerPlaintext == s * 511 / 36)
        let d = packing.slotsPerPlaintext + 3
        var generator = try ChaCha20Generator(publicSeed: [UInt8](repeating: UInt8(s), count: 32))
        let vectors = try (0..<10).map { _ in
            try ModularVector(elements: (0..<d).map { _ in generator.next() & 0xFFFF_FFFF }, bitWidth: BitWidth(32))
        }
        let contributor = PaillierContributor(
            encryptor: DJNEncryptor(publicKey: key.publicKey, precomputeTable: false), packing: packing)
        var aggregator = PaillierAggregator(publicKey: key.publicKey, packing: packing, dimension: d)
        for (i, v) in vectors.enumerated() {
            try aggregator.add(contributor.encrypt(v), from: ParticipantID(UInt32(i + 1)))
        }
        let holder = PaillierKeyHolder(privateKey: key, packing: packing, minimumContributors: 2)
        var expected = vectors[0]
        for v in vectors.dropFirst() { try expected.add(v) }
        #expect(try holder.decrypt(aggregator.aggregate()).sum == expected)
    }

    @Test(arguments: [2, 3]) func thresholdDecryptionOverNToTheS(s: Int) throws {
        var generator = try ChaCha20Generator(publicSeed: [UInt8](repeating: 7, count: 32))
        let (key, shares) = try ThresholdPaillierDealer.deal(
            bits: 512, threshold: 3, holders: 5, s: s, using: &generator)
        let pk = key.publicKey
        #expect(pk.s == s)
        let m = pk.n * BigInt(1_000_003) - 11  // needs more than one base-n digit
        let c = try pk.encrypt(signed: m)
        for holders in [[1, 2, 3], [5, 3, 1], [2, 3, 4, 5]] {
            let partials = try holders.map { try shares[$0 - 1].partiallyDecrypt(c) }
            #expect(try key.combineSigned(partials, of: c) == m)
        }
        let two = try [1, 2].map { try shares[$0 - 1].partiallyDecrypt(c) }
        #expect(throws: PaillierError.notEnoughPartialDecryptions(have: 2, need: 3)) {
            try key.combine(two, of: c)
        }
        let outside = PartialDecryption(holder: 3, ciphertext: c.value, value: pk.ciphertextModulus)
        #expect(throws: PaillierError.self) { try key.combine(two + [outside], of: c) }
    }

    @Test func theSecureSumBackendSumsUnderEveryS() throws {
        var generator = try ChaCha20Generator(publicSeed: [UInt8](repeating: 3, count: 32))
        let inputs = try Dictionary(
            uniqueKeysWithValues: (1...6).map { id in
                (
                    ParticipantID(UInt32(id)),
                    try ModularVector(
                        elements: (0..<40).map { _ in generator.next() & 0xFFFF }, bitWidth: BitWidth(16))
                )
            })
        var expected = inputs[ParticipantID(1)]!
        for id in 2...6 { try expected.add(inputs[ParticipantID(UInt32(id))]!) }
        for (s, decryption) in [
            (3, PaillierSecureSum.Decryption.keyHolder(minimumContributors: 2)),
            (2, .threshold(threshold: 2, holders: 3)),
        ] {
            var backend = try PaillierSecureSum(
                keyBits: 512, s: s, bitWidth: BitWidth(16), maxAddends: 6, decryption: decryption)
            #expect(backend.name == "damgard-jurik-\(s)")
            #expect(try backend.sum(inputs, round: 1).sum == expected)
        }
    }

    @Test func ciphertextFilesNameTheirS() throws {
        let pk = Self.key(3).publicKey
        let file = PaillierCiphertextFile(
            format: .veil, ciphertexts: try PaillierBatch.encrypt(residues: [5, 6], key: pk))
        let data = try file.encoded(key: pk)
        let header = String(decoding: data.prefix(while: { $0 != 0x0A }), as: UTF8.self)
        #expect(header.contains(#","damgard_jurik":3,"count":2,"#))
        #expect(
            try PaillierBatch.decrypt(PaillierCiphertextFile.decode(data, key: pk).ciphertexts, key: Self.key(3)) == [
                5, 6,
            ])
        // The same n with another s is refused by name, not read as garbage.
        for other in [1, 2] {
            #expect {
                try PaillierCiphertextFile.decode(data, key: try pk.withDegree(other))
            } throws: { error in
                "\(error)".contains("Damgård–Jurik s = 3, the key given has s = \(other)")
            }
        }
        // A Paillier file has no such key, so its header is unchanged.
        let paillier = try PaillierCiphertextFile(
            format: .veil, ciphertexts: PaillierBatch.encrypt(residues: [5], key: testKey.publicKey)
        ).encoded(key: testKey.publicKey)
        #expect(!String(decoding: paillier, as: UTF8.self).contains("damgard_jurik"))
        #expect(throws: PaillierCiphertextFile.DecodingError.self) {
            try PaillierCiphertextFile.decode(paillier, key: pk)
        }
    }
}
