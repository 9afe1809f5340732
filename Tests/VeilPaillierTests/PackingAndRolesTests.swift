import Testing
import VeilCore
import VeilCrypto
import VeilPaillier
import VeilSecAgg
import VeilTestSupport

func randomVector(_ d: Int, bits: Int, seed: UInt64) -> ModularVector {
    var generator = SplitMix64(seed: seed)
    return ModularVector(reducing: (0..<d).map { _ in generator.next() }, bitWidth: try! BitWidth(bits))
}

@Suite struct PackingTests {
    @Test func slotLayoutMeetsTheIssueBound() throws {
        // 32-bit values with headroom for 100 addends: 39-bit slots, ⌊2047/39⌋ = 52 per 2048-bit plaintext,
        // 512 / 52 ≈ 9.85 bytes of ciphertext per value.
        let packing = try PaillierPacking(bitWidth: BitWidth(32), maxAddends: 100, keyBits: 2048)
        #expect(packing.slotBits == 39)
        #expect(packing.slotsPerPlaintext == 52)
        #expect(packing.ciphertextBytesPerValue < 11)
        #expect(try PaillierPacking(bitWidth: BitWidth(32), maxAddends: 128, keyBits: 2048).slotBits == 39)
        #expect(try PaillierPacking(bitWidth: BitWidth(32), maxAddends: 129, keyBits: 2048).slotBits == 40)
        #expect(try PaillierPacking(bitWidth: BitWidth(64), maxAddends: 1, keyBits: 3072).slotsPerPlaintext == 47)
        #expect(throws: PaillierError.self) {
            try PaillierPacking(bitWidth: BitWidth(32), maxAddends: 0, keyBits: 2048)
        }
        #expect(throws: PaillierError.self) {
            try PaillierPacking(bitWidth: BitWidth(64), maxAddends: 1 << 30, keyBits: 64)
        }
    }

    @Test(arguments: [1, 7, 32, 33, 64])
    func packedSumsUnpackToTheSumInTheRing(_ bits: Int) throws {
        let key = testKey
        let packing = try PaillierPacking(bitWidth: BitWidth(bits), maxAddends: 5, keyBits: key.publicKey.bits)
        let d = packing.slotsPerPlaintext * 2 + 3  // a partial last plaintext
        let vectors = (0..<5).map { randomVector(d, bits: bits, seed: UInt64($0 * 31 + bits)) }
        var expected = ModularVector(zeros: d, bitWidth: try BitWidth(bits))
        for v in vectors { try expected.add(v) }
        var total = try packing.pack(vectors[0]).map { try key.publicKey.encrypt(residue: $0) }
        for v in vectors.dropFirst() {
            let encrypted = try packing.pack(v).map { try key.publicKey.encrypt(residue: $0) }
            total = try zip(total, encrypted).map { try key.publicKey.add($0, $1) }
        }
        let sum = try packing.unpack(total.map { try key.decrypt($0) }, dimension: d, addends: 5)
        #expect(sum == expected)
        #expect(throws: PaillierError.tooManyAddends(have: 6, max: 5)) {
            try packing.unpack(total.map { try key.decrypt($0) }, dimension: d, addends: 6)
        }
    }

    @Test func worstCaseSlotsDoNotCarry() throws {
        // K maximal elements in every slot: the largest sum the headroom must hold.
        let packing = try PaillierPacking(bitWidth: BitWidth(32), maxAddends: 100, keyBits: testKey.publicKey.bits)
        let d = packing.slotsPerPlaintext
        let top = ModularVector(reducing: Array(repeating: UInt64(UInt32.max), count: d), bitWidth: try BitWidth(32))
        let c = try testKey.publicKey.encrypt(residue: packing.pack(top)[0])
        let hundred = try testKey.publicKey.multiply(c, by: BigInt(100))
        let sum = try packing.unpack([testKey.decrypt(hundred)], dimension: d, addends: 100)
        #expect(sum.elements == Array(repeating: UInt64(UInt32.max) &* 100 & 0xffff_ffff, count: d))
    }
}

@Suite struct ThresholdTests {
    static let dealt = try! ThresholdPaillierDealer.deal(bits: 512, threshold: 3, holders: 5)

    @Test func anyThresholdOfHoldersDecrypts() throws {
        let (key, shares) = Self.dealt
        let c = try key.publicKey.encrypt(signed: -424_242)
        for subset in [[0, 1, 2], [4, 2, 0], [1, 3, 4], [0, 1, 2, 3, 4]] {
            let partials = try subset.map { try shares[$0].partiallyDecrypt(c) }
            #expect(try key.combineSigned(partials, of: c) == BigInt(-424_242))
        }
    }

    @Test func fewerThanThresholdHoldersLearnNothingUseful() throws {
        let (key, shares) = Self.dealt
        let m = BigInt(123_456_789)
        let c = try key.publicKey.encrypt(signed: m)
        let two = try [shares[0], shares[1]].map { try $0.partiallyDecrypt(c) }
        #expect(throws: PaillierError.notEnoughPartialDecryptions(have: 2, need: 3)) { try key.combine(two, of: c) }
        // Two real partial decryptions completed by a guess for the third give an unrelated value, not m.
        for _ in 0..<5 {
            let guess = PartialDecryption(
                holder: 3, ciphertext: c.value,
                value: BigInt.random(below: key.publicKey.ciphertextModulus, secret: false))
            #expect((try? key.combine(two + [guess], of: c)) != m)
        }
    }

    @Test func refusesDuplicatesStrangersAndOtherCiphertexts() throws {
        let (key, shares) = Self.dealt
        let c = try key.publicKey.encrypt(signed: 7)
        let other = try key.publicKey.encrypt(signed: 8)
        let p0 = try shares[0].partiallyDecrypt(c)
        #expect(throws: PaillierError.self) { try key.combine([p0, p0, try shares[1].partiallyDecrypt(c)], of: c) }
        #expect(throws: PaillierError.self) {
            try key.combine([p0, try shares[1].partiallyDecrypt(other), try shares[2].partiallyDecrypt(c)], of: c)
        }
        #expect(throws: PaillierError.self) { try ThresholdPaillierDealer.deal(bits: 512, threshold: 4, holders: 3) }
    }
}

@Suite struct TwoPartyTests {
    @Test func aggregatorSumsWhatItCannotReadAndKeyHolderDecryptsOnlyAggregates() throws {
        let key = testKey
        let packing = try PaillierPacking(bitWidth: BitWidth(16), maxAddends: 10, keyBits: key.publicKey.bits)
        let contributor = PaillierContributor(
            encryptor: DJNEncryptor(publicKey: key.publicKey, precomputeTable: false), packing: packing)
        var aggregator = PaillierAggregator(publicKey: key.publicKey, packing: packing, dimension: 20)
        let holder = PaillierKeyHolder(privateKey: key, packing: packing, minimumContributors: 3)
        let vectors = (1...4).map { randomVector(20, bits: 16, seed: UInt64($0)) }
        var expected = ModularVector(zeros: 20, bitWidth: try BitWidth(16))
        for (i, v) in vectors.enumerated() {
            let ciphertexts = try contributor.encrypt(v)
            try aggregator.add(ciphertexts, from: ParticipantID(UInt32(i + 1)))
            try expected.add(v)
            // The aggregator's view of one contribution: ciphertexts, nothing in the clear.
            #expect(ciphertexts.allSatisfy { $0.value > key.publicKey.n })
        }
        #expect(throws: PaillierError.self) {
            try aggregator.add(try contributor.encrypt(vectors[0]), from: ParticipantID(1))
        }
        let result = try holder.decrypt(try aggregator.aggregate())
        #expect(result.sum == expected)
        #expect(result.survivors.map(\.rawValue) == [1, 2, 3, 4])

        // A single contribution dressed as an aggregate is refused.
        var lone = PaillierAggregator(publicKey: key.publicKey, packing: packing, dimension: 20)
        try lone.add(try contributor.encrypt(vectors[0]), from: ParticipantID(1))
        #expect(throws: SecureSumError.self) { try holder.decrypt(try lone.aggregate()) }
    }
}

@Suite struct SecureSumBackendTests {
    @Test func plainSecAggAndPaillierAgreeOnTheSameInputs() throws {
        let contributions = Dictionary(
            uniqueKeysWithValues: (1...6).map {
                (ParticipantID(UInt32($0 * 10)), randomVector(30, bits: 24, seed: UInt64($0)))
            })
        let plain = try PlainSum().sum(contributions, round: 0)
        var secagg = SecAggSecureSum(seed: 4)
        var paillier = try PaillierSecureSum(
            keyBits: 512, bitWidth: BitWidth(24), maxAddends: 10, decryption: .keyHolder(minimumContributors: 2))
        var threshold = try PaillierSecureSum(
            keyBits: 512, bitWidth: BitWidth(24), maxAddends: 10, decryption: .threshold(threshold: 2, holders: 3))
        for backend in [
            try secagg.sum(contributions, round: 1), try paillier.sum(contributions, round: 1),
            try threshold.sum(contributions, round: 1),
        ] {
            #expect(backend == plain)
        }
        #expect(
            !PlainSum().hidesIndividualContributions && secagg.hidesIndividualContributions
                && paillier.hidesIndividualContributions)
    }

    @Test func aDropoutIsAMissingCiphertext() throws {
        let contributions = Dictionary(
            uniqueKeysWithValues: (1...8).map {
                (ParticipantID(UInt32($0)), randomVector(10, bits: 32, seed: UInt64($0)))
            })
        var paillier = try PaillierSecureSum(
            keyBits: 512, bitWidth: BitWidth(32), maxAddends: 8, decryption: .keyHolder(minimumContributors: 2),
            dropoutProbability: 0.4, seed: 3)
        let result = try paillier.sum(contributions, round: 0)
        #expect(result.survivors.count < 8)
        let expected = try PlainSum().sum(contributions.filter { result.survivors.contains($0.key) }, round: 0)
        #expect(result.sum == expected.sum)
    }
}
