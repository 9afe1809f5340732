import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier

extension ProjectVectors {
    static func paillier() throws -> VectorFile<PaillierRunner.Group> {
        var tcId = 0
        var inputs = Inputs("paillier")
        func test(
            _ operation: String, _ comment: String, _ flags: [String] = ["Normal"], result: ExpectedResult = .valid,
            error: String? = nil, configure: (inout PaillierRunner.Test) -> Void
        ) -> PaillierRunner.Test {
            tcId += 1
            var t = PaillierRunner.Test(
                tcId: tcId, comment: comment, flags: flags, result: result, error: error, operation: operation)
            configure(&t)
            return t
        }
        func uniform(below bound: BigInt) -> BigInt {
            while true {
                let candidate = BigInt.random(bits: bound.bitWidth, using: &inputs.generator).declassified()
                if candidate.signum > 0 && candidate < bound && BigInt.gcd(candidate, bound) == 1 { return candidate }
            }
        }
        var groups: [PaillierRunner.Group] = []

        for bits in [512, 2048] {
            var keyGenerator = try ChaCha20Generator(publicSeed: Array(SHA256.hash(Array("paillier key \(bits)".utf8))))
            let key = try PaillierPrivateKey.generate(bits: bits, using: &keyGenerator)
            let pk = key.publicKey
            let (p, q) = key.primes
            var tests: [PaillierRunner.Test] = []
            let top = pk.maxSignedMagnitude
            for (label, m) in [
                ("0", BigInt(0)), ("1", BigInt(1)), ("-1", BigInt(-1)), ("2^31 - 1", BigInt(Int(Int32.max))),
                ("-2^31", BigInt(Int(Int32.min))), ("⌊(n−1)/2⌋, the largest signed value", top),
                ("−⌊(n−1)/2⌋, the smallest", -top),
            ] {
                let r = uniform(below: pk.n)
                let c = try pk.encrypt(residue: pk.residue(signed: m), randomness: r)
                tests.append(
                    test("encrypt", "\(bits)-bit key: encrypt \(label) with given r") {
                        $0.m = m.decimal; $0.r = r.decimal; $0.c = c.decimal
                    })
            }
            let a = try pk.encrypt(residue: pk.residue(signed: BigInt(1_000_000)), randomness: uniform(below: pk.n))
            let b = try pk.encrypt(residue: pk.residue(signed: BigInt(-2_500_000)), randomness: uniform(below: pk.n))
            let sum = try pk.add(a, b)
            tests.append(
                test("add", "\(bits)-bit key: E(10^6) · E(−2.5·10^6) decrypts to −1.5·10^6") {
                    $0.c1 = a.decimal; $0.c2 = b.decimal; $0.c = sum.decimal; $0.m = "-1500000"
                })
            let plus = try pk.add(a, plaintext: BigInt(-1_000_001))
            tests.append(
                test("addPlain", "\(bits)-bit key: E(10^6) · g^(−10^6 − 1) decrypts to −1") {
                    $0.c1 = a.decimal; $0.k = "-1000001"; $0.c = plus.decimal; $0.m = "-1"
                })
            let times = try pk.multiply(b, by: BigInt(-3))
            tests.append(
                test("multiply", "\(bits)-bit key: E(−2.5·10^6)^(−3) decrypts to 7.5·10^6") {
                    $0.c1 = b.decimal; $0.k = "-3"; $0.c = times.decimal; $0.m = "7500000"
                })
            let y = uniform(below: pk.n)
            let h = (pk.n - (y * y).modulo(pk.n)).modulo(pk.n)
            let base = h.power(pk.n, modulo: pk.ciphertextModulus)
            let djn = DJNEncryptor(publicKey: pk, base: base, precomputeTable: false)
            for m in [BigInt(0), BigInt(42), BigInt(-42)] {
                let alpha = BigInt.random(bits: djn.exponentBits, using: &inputs.generator).declassified()
                let c = try djn.encrypt(residue: pk.residue(signed: m), exponent: alpha)
                tests.append(
                    test("djn", "\(bits)-bit key: DJN encryption of \(m.decimal), h_s = (−y²)^n mod n², given α") {
                        $0.m = m.decimal; $0.base = base.decimal; $0.alpha = alpha.decimal; $0.c = c.decimal
                    })
            }
            tests.append(
                test(
                    "decrypt", "\(bits)-bit key: c = n² is out of range", ["OutOfRange"], result: .invalid,
                    error: "ciphertextOutOfRange"
                ) {
                    $0.c = pk.ciphertextModulus.decimal; $0.m = "0"
                })
            tests.append(
                test(
                    "decrypt", "\(bits)-bit key: c = q shares a factor with n", ["OutOfRange"], result: .invalid,
                    error: "ciphertextOutOfRange"
                ) {
                    $0.c = q.decimal; $0.m = "0"
                })
            groups.append(PaillierRunner.Group(p: p.decimal, q: q.decimal, tests: tests))
        }

        // Packing.
        var packingTests: [PaillierRunner.Test] = []
        for (bits, addends, keyBits, count) in [
            (32, 100, 2048, 60), (7, 3, 512, 100), (64, 1, 512, 9), (1, 1000, 512, 700),
        ] {
            let width = try BitWidth(bits)
            let packing = try PaillierPacking(bitWidth: width, maxAddends: addends, keyBits: keyBits)
            let vectors = try (0..<3).map { _ in
                try ModularVector(
                    elements: (0..<count).map { _ in inputs.generator.next() & width.mask }, bitWidth: width)
            }
            let plaintexts = try packing.pack(vectors[0])
            packingTests.append(
                test(
                    "pack",
                    "b = \(bits), K = \(addends), \(keyBits)-bit key: \(count) elements in \(plaintexts.count) plaintexts of \(packing.slotsPerPlaintext) \(packing.slotBits)-bit slots"
                ) {
                    $0.bits = bits; $0.maxAddends = addends; $0.keyBits = keyBits
                    $0.vector = vectors[0].elements.map { String($0) }; $0.plaintexts = plaintexts.map(\.decimal)
                })
            // The plaintext sum of three packed vectors unpacks to their sum in Z_2^b.
            let packed = try vectors.map { try packing.pack($0) }
            let summed = (0..<packed[0].count).map { j in packed.reduce(BigInt(0)) { $0 + $1[j] } }
            var expected = vectors[0]
            for v in vectors.dropFirst() { try expected.add(v) }
            if addends >= 3 {
                packingTests.append(
                    test(
                        "unpack",
                        "b = \(bits), K = \(addends): the sum of 3 packed vectors unpacks to their sum mod 2^\(bits)"
                    ) {
                        $0.bits = bits; $0.maxAddends = addends; $0.keyBits = keyBits; $0.addends = 3
                        $0.vector = expected.elements.map { String($0) }; $0.plaintexts = summed.map(\.decimal)
                    })
            } else {
                packingTests.append(
                    test(
                        "unpack", "b = \(bits), K = \(addends): 3 addends exceed the headroom", ["Refused"],
                        result: .invalid, error: "tooManyAddends"
                    ) {
                        $0.bits = bits; $0.maxAddends = addends; $0.keyBits = keyBits; $0.addends = 3
                        $0.vector = expected.elements.map { String($0) }; $0.plaintexts = summed.map(\.decimal)
                    })
            }
        }
        packingTests.append(
            test(
                "pack", "a 65-bit slot cannot fit a 64-bit key", ["Refused"], result: .invalid, error: "invalidPacking"
            ) {
                $0.bits = 64; $0.maxAddends = 2; $0.keyBits = 64; $0.vector = ["1"]; $0.plaintexts = []
            })
        groups.append(PaillierRunner.Group(tests: packingTests))

        // Threshold decryption, 3 of 5, a 512-bit dealt key.
        var dealer = try ChaCha20Generator(publicSeed: Array(SHA256.hash(Array("paillier threshold".utf8))))
        let (thresholdKey, shares) = try ThresholdPaillierDealer.deal(
            bits: 512, threshold: 3, holders: 5, using: &dealer)
        let tpk = thresholdKey.publicKey
        var thresholdTests: [PaillierRunner.Test] = []
        for (m, holders) in [(BigInt(31_337), [1, 2, 3]), (BigInt(-5), [5, 3, 1]), (BigInt(0), [2, 3, 4, 5])] {
            let c = try tpk.encrypt(residue: tpk.residue(signed: m), randomness: uniform(below: tpk.n))
            let partials = try holders.map { h in try shares[h - 1].partiallyDecrypt(c) }
            thresholdTests.append(
                test("partialDecrypt", "3 of 5: holders \(holders) decrypt \(m.decimal)") {
                    $0.c = c.decimal; $0.m = m.decimal
                    $0.partials = partials.map { .init(holder: $0.holder, value: $0.value.decimal) }
                })
        }
        let c = try tpk.encrypt(residue: BigInt(9), randomness: uniform(below: tpk.n))
        let two = try [1, 4].map { h in try shares[h - 1].partiallyDecrypt(c) }
        thresholdTests.append(
            test(
                "partialDecrypt", "3 of 5: two holders cannot decrypt", ["BelowThreshold"], result: .invalid,
                error: "notEnoughPartialDecryptions"
            ) {
                $0.c = c.decimal; $0.m = "9";
                $0.partials = two.map { .init(holder: $0.holder, value: $0.value.decimal) }
            })
        // Refused combinations (§6): each breaks one rule of an otherwise decryptable set.
        let c9 = c
        let three = try [1, 2, 3].map { h in try shares[h - 1].partiallyDecrypt(c9) }
        let other = try tpk.encrypt(residue: BigInt(10), randomness: uniform(below: tpk.n))
        let otherPartial = try shares[2].partiallyDecrypt(other)
        func given(_ partials: [PartialDecryption]) -> [PaillierRunner.Share] {
            partials.map {
                .init(
                    holder: $0.holder, value: $0.value.decimal,
                    ciphertext: $0.ciphertext == c9.value ? nil : $0.ciphertext.decimal)
            }
        }
        func replacing(_ index: Int, holder: Int? = nil, value: BigInt? = nil) -> [PartialDecryption] {
            var partials = three
            let old = partials[index]
            partials[index] = PartialDecryption(
                holder: holder ?? old.holder, ciphertext: old.ciphertext, value: value ?? old.value)
            return partials
        }
        for (why, partials) in [
            ("holder 2 appears twice", three + [three[1]]),
            ("holder 6 is a stranger to a 5-holder key", replacing(2, holder: 6)),
            ("holder 0 is a stranger (holders are numbered from 1)", replacing(0, holder: 0)),
            ("holder 3 sends a partial of another ciphertext", [three[0], three[1], otherPartial]),
            ("holder 3's value is 0", replacing(2, value: BigInt(0))),
            ("holder 3's value is n², outside Z*_(n²)", replacing(2, value: tpk.ciphertextModulus)),
            ("holder 3's value is n, which shares n's factors", replacing(2, value: tpk.n)),
            ("holder 2 appears twice in a set below t", [three[1], three[1]]),
        ] {
            thresholdTests.append(
                test(
                    "partialDecrypt", "3 of 5: refused, \(why)", ["InvalidPartial"], result: .invalid,
                    error: "invalidPartialDecryption"
                ) {
                    $0.c = c9.decimal; $0.m = "9"; $0.partials = given(partials)
                })
        }
        // A wrong value inside Z*_(n²) is not detected without proofs of correct decryption
        // (`Specs/paillier.md` §6): no case can ask for a refusal, and a "wrong plaintext"
        // case would only pin a value nobody should rely on.
        groups.append(
            PaillierRunner.Group(
                n: tpk.n.decimal, threshold: 3, holders: 5,
                shares: shares.map { .init(holder: $0.holder, value: $0.secretValue.decimal) }, tests: thresholdTests))

        groups.append(
            PaillierRunner.Group(tests: try keyTests { test($0, $1, $2, result: $3, error: $4, configure: $5) }))

        // Damgård–Jurik (§9): the 512-bit key's primes with s = 2, 3, 4.
        var keyGenerator = try ChaCha20Generator(publicSeed: Array(SHA256.hash(Array("paillier key 512".utf8))))
        let paillierKey = try PaillierPrivateKey.generate(bits: 512, using: &keyGenerator)
        for s in 2...4 {
            let key = try paillierKey.withDegree(s)
            let pk = key.publicKey
            let (p, q) = key.primes
            let top = pk.maxSignedMagnitude
            var tests: [PaillierRunner.Test] = []
            for (label, m) in [
                ("0", BigInt(0)), ("-1", BigInt(-1)), ("n + 5, two base-n digits", pk.n + 5),
                ("⌊(n^s−1)/2⌋, the largest signed value", top), ("−⌊(n^s−1)/2⌋, the smallest", -top),
            ] {
                let r = uniform(below: pk.n)
                let c = try pk.encrypt(residue: pk.residue(signed: m), randomness: r)
                tests.append(
                    test("encrypt", "s = \(s): encrypt \(label) with given r, c = (1 + n)^m r^(n^s) mod n^(s+1)") {
                        $0.m = m.decimal; $0.r = r.decimal; $0.c = c.decimal
                    })
            }
            let a = try pk.encrypt(residue: pk.residue(signed: pk.n * 3), randomness: uniform(below: pk.n))
            let b = try pk.encrypt(residue: pk.residue(signed: BigInt(-2_500_000)), randomness: uniform(below: pk.n))
            let sum = try pk.add(a, b)
            let expected = pk.n * 3 - 2_500_000
            tests.append(
                test("add", "s = \(s): E(3n) · E(−2.5·10^6) decrypts to 3n − 2.5·10^6") {
                    $0.c1 = a.decimal; $0.c2 = b.decimal; $0.c = sum.decimal; $0.m = expected.decimal
                })
            let plus = try pk.add(a, plaintext: BigInt(-1))
            tests.append(
                test("addPlain", "s = \(s): E(3n) · g^(−1) decrypts to 3n − 1") {
                    $0.c1 = a.decimal; $0.k = "-1"; $0.c = plus.decimal; $0.m = (pk.n * 3 - 1).decimal
                })
            let times = try pk.multiply(b, by: BigInt(-3))
            tests.append(
                test("multiply", "s = \(s): E(−2.5·10^6)^(−3) decrypts to 7.5·10^6") {
                    $0.c1 = b.decimal; $0.k = "-3"; $0.c = times.decimal; $0.m = "7500000"
                })
            let y = uniform(below: pk.n)
            let h = (pk.n - (y * y).modulo(pk.n)).modulo(pk.n)
            let base = h.power(pk.plaintextModulus, modulo: pk.ciphertextModulus)
            let djn = DJNEncryptor(publicKey: pk, base: base, precomputeTable: false)
            for m in [BigInt(42), -(pk.n * pk.n / 7)] {
                let alpha = BigInt.random(bits: djn.exponentBits, using: &inputs.generator).declassified()
                let c = try djn.encrypt(residue: pk.residue(signed: m), exponent: alpha)
                tests.append(
                    test("djn", "s = \(s): DJN encryption of \(m.decimal), h_s = (−y²)^(n^s) mod n^(s+1), given α") {
                        $0.m = m.decimal; $0.base = base.decimal; $0.alpha = alpha.decimal; $0.c = c.decimal
                    })
            }
            tests.append(
                test(
                    "encrypt", "s = \(s): ⌊(n^s−1)/2⌋ + 1 is outside the signed range", ["OutOfRange"],
                    result: .invalid, error: "plaintextOutOfRange"
                ) {
                    $0.m = (top + 1).decimal; $0.r = "2"; $0.c = "1"
                })
            tests.append(
                test(
                    "decrypt", "s = \(s): c = n^(s+1) is out of range", ["OutOfRange"], result: .invalid,
                    error: "ciphertextOutOfRange"
                ) {
                    $0.c = pk.ciphertextModulus.decimal; $0.m = "0"
                })
            tests.append(
                test(
                    "decrypt", "s = \(s): c = q^s shares a factor with n", ["OutOfRange"], result: .invalid,
                    error: "ciphertextOutOfRange"
                ) {
                    $0.c = (1..<s).reduce(q) { x, _ in x * q }.decimal; $0.m = "0"
                })
            groups.append(PaillierRunner.Group(p: p.decimal, q: q.decimal, s: s, tests: tests))
        }
        // Damgård–Jurik packing, key rules and a threshold key over n^2.
        var degreeTests: [PaillierRunner.Test] = []
        for (bits, addends, keyBits, s, count) in [
            (32, 100, 2048, 3, 160), (32, 8, 2048, 3, 175), (16, 4, 512, 4, 130),
        ] {
            let width = try BitWidth(bits)
            let packing = try PaillierPacking(bitWidth: width, maxAddends: addends, keyBits: keyBits, degree: s)
            let vectors = try (0..<3).map { _ in
                try ModularVector(
                    elements: (0..<count).map { _ in inputs.generator.next() & width.mask }, bitWidth: width)
            }
            let plaintexts = try packing.pack(vectors[0])
            degreeTests.append(
                test(
                    "pack",
                    "s = \(s), b = \(bits), K = \(addends), \(keyBits)-bit key: \(count) elements in \(plaintexts.count) plaintexts of \(packing.slotsPerPlaintext) \(packing.slotBits)-bit slots"
                ) {
                    $0.s = s; $0.bits = bits; $0.maxAddends = addends; $0.keyBits = keyBits
                    $0.vector = vectors[0].elements.map { String($0) }; $0.plaintexts = plaintexts.map(\.decimal)
                })
            let packed = try vectors.map { try packing.pack($0) }
            let summed = (0..<packed[0].count).map { j in packed.reduce(BigInt(0)) { $0 + $1[j] } }
            var expected = vectors[0]
            for v in vectors.dropFirst() { try expected.add(v) }
            degreeTests.append(
                test("unpack", "s = \(s), b = \(bits), K = \(addends): the sum of 3 packed vectors") {
                    $0.s = s; $0.bits = bits; $0.maxAddends = addends; $0.keyBits = keyBits; $0.addends = 3
                    $0.vector = expected.elements.map { String($0) }; $0.plaintexts = summed.map(\.decimal)
                })
        }
        let seed = Array(SHA256.hash(Array("paillier threshold".utf8)))
        for s in [0, 5] {
            degreeTests.append(
                test(
                    "publicKey", "s = \(s) is not supported", ["Refused"], result: .invalid, error: "unsupportedDegree"
                ) {
                    $0.s = s; $0.n = paillierKey.publicKey.n.decimal
                })
            degreeTests.append(
                test("generate", "s = \(s) is not supported", ["Refused"], result: .invalid, error: "unsupportedDegree")
                {
                    $0.s = s; $0.seed = Hex.encode(seed); $0.keyBits = 512
                })
        }
        var dealerS2 = try ChaCha20Generator(publicSeed: seed)
        let (dealtS2, sharesS2) = try ThresholdPaillierDealer.deal(
            bits: 512, threshold: 3, holders: 5, s: 2, using: &dealerS2)
        degreeTests.append(
            test(
                "deal", "s = 2: the 3-of-5 key of the seed SHA-256(\"paillier threshold\"), shares over Z_(n²·m)",
                ["KeyGeneration"]
            ) {
                $0.s = 2; $0.seed = Hex.encode(seed); $0.keyBits = 512; $0.threshold = 3; $0.holders = 5
                $0.n = dealtS2.publicKey.n.decimal
                $0.shares = sharesS2.map { .init(holder: $0.holder, value: $0.secretValue.decimal) }
            })
        groups.append(PaillierRunner.Group(tests: degreeTests))
        let tpk2 = dealtS2.publicKey
        var thresholdS2: [PaillierRunner.Test] = []
        for (m, holders) in [(tpk2.n * 2 + 9, [1, 2, 3]), (BigInt(-5), [5, 4, 2])] {
            let c = try tpk2.encrypt(residue: tpk2.residue(signed: m), randomness: uniform(below: tpk2.n))
            let partials = try holders.map { h in try sharesS2[h - 1].partiallyDecrypt(c) }
            thresholdS2.append(
                test("partialDecrypt", "s = 2, 3 of 5: holders \(holders) decrypt \(m.decimal)") {
                    $0.c = c.decimal; $0.m = m.decimal
                    $0.partials = partials.map { .init(holder: $0.holder, value: $0.value.decimal) }
                })
        }
        let c2 = try tpk2.encrypt(residue: BigInt(9), randomness: uniform(below: tpk2.n))
        let three2 = try [1, 2, 3].map { h in try sharesS2[h - 1].partiallyDecrypt(c2) }
        thresholdS2.append(
            test(
                "partialDecrypt", "s = 2, 3 of 5: refused, holder 3's value is n³, outside Z*_(n³)", ["InvalidPartial"],
                result: .invalid, error: "invalidPartialDecryption"
            ) {
                $0.c = c2.decimal; $0.m = "9"
                $0.partials =
                    [three2[0], three2[1]].map { .init(holder: $0.holder, value: $0.value.decimal) }
                    + [.init(holder: 3, value: tpk2.ciphertextModulus.decimal)]
            })
        // Verified threshold decryption (§6.2): the 3-of-5 key of "paillier threshold" with its
        // verification keys, honest proofs from given r, and holders whose proofs fail.
        var verifiedDealer = try ChaCha20Generator(publicSeed: seed)
        let (verifiedKey, verifiedShares) = try ThresholdPaillierDealer.deal(
            bits: 512, threshold: 3, holders: 5, using: &verifiedDealer)
        let vpk = verifiedKey.publicKey
        let verification = verifiedKey.verification!  // the dealer always publishes them
        let cv = try vpk.encrypt(residue: vpk.residue(signed: BigInt(-77)), randomness: uniform(below: vpk.n))
        func honest(_ holder: Int) throws -> (PaillierRunner.Share, PartialDecryption) {
            let r = BigInt.random(bits: verifiedKey.proofRandomnessBits, using: &inputs.generator).declassified()
            let partial = try verifiedShares[holder - 1].partiallyDecrypt(cv, proofRandomness: r)
            return (
                .init(
                    holder: holder, value: partial.value.decimal, challenge: partial.proof!.challenge.decimal,
                    response: partial.proof!.response.decimal, r: r.decimal),
                partial
            )
        }
        let proven = try (1...5).map(honest)
        func claimed(_ holder: Int, value: BigInt? = nil, challenge: BigInt? = nil, proofOf other: Int? = nil)
            -> PaillierRunner.Share
        {
            let source = proven[(other ?? holder) - 1].1
            return .init(
                holder: holder, value: (value ?? source.value).decimal,
                challenge: (challenge ?? source.proof!.challenge).decimal, response: source.proof!.response.decimal)
        }
        let shifted = (proven[1].1.value * (vpk.n * 1000 + 1)).modulo(vpk.ciphertextModulus)  // × (1 + n)^1000
        var verifiedTests: [PaillierRunner.Test] = []
        for (why, partials, rejected, result, error) in [
            (
                "holders 1, 2, 3 prove their partials", [proven[0].0, proven[1].0, proven[2].0], [Int](),
                ExpectedResult.valid, String?.none
            ),
            (
                "holder 2's value is shifted by (1 + n)^1000 under its honest proof: named, 1, 3, 4 decrypt",
                [proven[0].0, claimed(2, value: shifted), proven[2].0, proven[3].0], [2], .valid, nil
            ),
            (
                "holder 2's shifted value among exactly t: refused, naming holder 2",
                [proven[0].0, claimed(2, value: shifted), proven[2].0], [2], .invalid, "incorrectPartialDecryptions"
            ),
            (
                "holder 4's challenge is off by one: named, 1, 2, 3 decrypt",
                [proven[0].0, proven[1].0, proven[2].0, claimed(4, challenge: proven[3].1.proof!.challenge + 1)], [4],
                .valid, nil
            ),
            (
                "holder 5 borrows holder 3's proof and holder 1 sends none: both named",
                [
                    PaillierRunner.Share(holder: 1, value: proven[0].1.value.decimal), proven[1].0, proven[2].0,
                    proven[3].0, claimed(5, proofOf: 3),
                ], [1, 5], .valid, nil
            ),
            (
                "malformed partials are left out, not obeyed: a value of 0 for holder 4, a stranger numbered 7",
                [
                    proven[0].0, PaillierRunner.Share(holder: 4, value: "0", challenge: "1", response: "1"),
                    claimed(7, proofOf: 2), proven[1].0, proven[2].0,
                ], [4, 7], .valid, nil
            ),
            (
                "two partials claim holder 3, a forged one first: named, and the correct one counts",
                [claimed(3, value: shifted, proofOf: 3), proven[0].0, proven[1].0, proven[2].0], [3], .valid, nil
            ),
        ] {
            verifiedTests.append(
                test(
                    "partialDecrypt", "verified 3 of 5: \(why)", result == .valid ? ["Normal"] : ["WrongPartial"],
                    result: result, error: error
                ) {
                    $0.c = cv.decimal; $0.m = "-77"; $0.partials = partials; $0.rejected = rejected
                })
        }
        groups.append(
            PaillierRunner.Group(
                n: vpk.n.decimal, threshold: 3, holders: 5,
                shares: verifiedShares.map { .init(holder: $0.holder, value: $0.secretValue.decimal) },
                v: verification.v.decimal, verificationKeys: verification.holderKeys.map(\.decimal),
                tests: verifiedTests))
        // The same proofs over n³ (s = 2), and a response past the bound no honest prover reaches.
        var dealerProofS2 = try ChaCha20Generator(publicSeed: Array(SHA256.hash(Array("paillier proofs s = 2".utf8))))
        let (keyS2, sharesS2Proven) = try ThresholdPaillierDealer.deal(
            bits: 512, threshold: 2, holders: 3, s: 2, using: &dealerProofS2)
        let pkS2 = keyS2.publicKey
        let mS2 = pkS2.n * 5 - 3
        let cS2 = try pkS2.encrypt(residue: pkS2.residue(signed: mS2), randomness: uniform(below: pkS2.n))
        let provenS2 = try (1...3).map { holder in
            let r = BigInt.random(bits: keyS2.proofRandomnessBits, using: &inputs.generator).declassified()
            let partial = try sharesS2Proven[holder - 1].partiallyDecrypt(cS2, proofRandomness: r)
            return PaillierRunner.Share(
                holder: holder, value: partial.value.decimal, challenge: partial.proof!.challenge.decimal,
                response: partial.proof!.response.decimal, r: r.decimal)
        }
        var stretched = provenS2[2]
        stretched.r = nil
        stretched.response = BigInt(1).shiftedLeft(keyS2.proofRandomnessBits + 257).decimal
        var proofTestsS2: [PaillierRunner.Test] = []
        for (why, partials, rejected) in [
            ("holders 1 and 2 prove their partials", [provenS2[0], provenS2[1]], [Int]()),
            (
                "holder 3's response is 2^(B+257), past any honest one: named, 1 and 2 decrypt",
                [stretched, provenS2[0], provenS2[1]], [3]
            ),
        ] {
            proofTestsS2.append(
                test("partialDecrypt", "verified 2 of 3, s = 2: \(why)") {
                    $0.c = cS2.decimal; $0.m = mS2.decimal; $0.partials = partials; $0.rejected = rejected
                })
        }
        groups.append(
            PaillierRunner.Group(
                s: 2, n: pkS2.n.decimal, threshold: 2, holders: 3,
                shares: sharesS2Proven.map { .init(holder: $0.holder, value: $0.secretValue.decimal) },
                v: keyS2.verification!.v.decimal, verificationKeys: keyS2.verification!.holderKeys.map(\.decimal),
                tests: proofTestsS2))
        groups.append(
            PaillierRunner.Group(
                s: 2, n: tpk2.n.decimal, threshold: 3, holders: 5,
                shares: sharesS2.map { .init(holder: $0.holder, value: $0.secretValue.decimal) }, tests: thresholdS2))

        return VectorFile(
            algorithm: PaillierRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's Paillier (Specs/paillier.md), g = n + 1; integers in decimal. Keys are generated from the deterministic",
                "generator, so that `veil vectors generate` reproduces them: generate/deal state the seed and the key it gives",
                "(section 1, section 6); publicKey/privateKey: the modulus and factor rules. encrypt: (p, q, m, r) -> c = (1 + mn) r^n mod n^2 and",
                "back; add/addPlain/multiply: the homomorphic operations; djn: c = (1 + mn) h_s^alpha mod n^2 (with and without the",
                "fixed-base table); pack/unpack: the slot layout; partialDecrypt: c^(2 Delta s_i) and their combination.",
                "Groups and cases with \"s\" are Damgard-Jurik (section 9): plaintexts mod n^s, c = (1 + n)^m r^(n^s) mod n^(s+1),",
                "DJN with h_s = (-y^2)^(n^s), packing over s(|n| - 1) bits, threshold shares over Z_(n^s m).",
                "Groups with \"v\" are verified threshold decryption (section 6.2): partials carry proofs (challenge,",
                "response; r for an honest prover), and \"rejected\" lists the holders whose proofs fail.",
                "Project vectors, generated by `veil vectors generate`, confirmed by Specs/reference/ (python-paillier and",
                "an independent implementation of DJN, packing and threshold combination).",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "An operation that must succeed."),
                "OutOfRange": VectorNote(bugType: "DEFINED", description: "A value outside its range."),
                "Refused": VectorNote(bugType: "DEFINED", description: "Parameters that must be refused."),
                "BelowThreshold": VectorNote(bugType: "DEFINED", description: "Fewer than t partial decryptions."),
                "WrongPartial": VectorNote(
                    bugType: "DEFINED",
                    description: "A partial decryption whose proof of correctness fails, among exactly t."),
                "InvalidPartial": VectorNote(
                    bugType: "DEFINED",
                    description: "A partial decryption from a stranger, twice, of another c, or outside Z*_(n^2)."),
                "KeyGeneration": VectorNote(
                    bugType: "FUNCTIONALITY", description: "A key generated from a stated seed."),
                "InvalidModulus": VectorNote(bugType: "DEFINED", description: "A modulus the public-key rules refuse."),
                "InvalidPrivateKey": VectorNote(
                    bugType: "DEFINED", description: "Factors the private-key rules refuse."),
                "WeakModulus": VectorNote(
                    bugType: "KNOWN_LIMITATION",
                    description: "n = p^2 passes the public rules (they cannot factor n); its factors are refused."),
            ],
            testGroups: groups, numberOfTests: tcId)
    }
}

extension ProjectVectors {
    /// Key generation from stated seeds (§1, §6) and the modulus and private-key rules (§1).
    static func keyTests(
        _ test: (
            _ operation: String, _ comment: String, _ flags: [String], _ result: ExpectedResult, _ error: String?,
            _ configure: (inout PaillierRunner.Test) -> Void
        ) -> PaillierRunner.Test
    ) throws -> [PaillierRunner.Test] {
        var tests: [PaillierRunner.Test] = []
        func seed(_ label: String) -> [UInt8] { Array(SHA256.hash(Array(label.utf8))) }
        var keys: [Int: PaillierPrivateKey] = [:]
        for (bits, label) in [(256, "paillier keygen 256"), (512, "paillier key 512"), (2048, "paillier key 2048")] {
            var generator = try ChaCha20Generator(publicSeed: seed(label))
            let key = try PaillierPrivateKey.generate(bits: bits, using: &generator)
            keys[bits] = key
            tests.append(
                test(
                    "generate", "a \(bits)-bit key from the seed SHA-256(\"\(label)\")", ["KeyGeneration"], .valid, nil
                ) {
                    $0.seed = Hex.encode(seed(label)); $0.keyBits = bits; $0.p = key.primes.p.decimal
                    $0.q = key.primes.q.decimal; $0.n = key.publicKey.n.decimal
                })
        }
        for bits in [255, 254, 8194] {
            tests.append(
                test("generate", "\(bits) bits is not a supported size", ["Refused"], .invalid, "unsupportedKeySize") {
                    $0.seed = Hex.encode(seed("paillier keygen 256")); $0.keyBits = bits
                })
        }
        var dealer = try ChaCha20Generator(publicSeed: seed("paillier threshold"))
        let (dealt, shares) = try ThresholdPaillierDealer.deal(bits: 512, threshold: 3, holders: 5, using: &dealer)
        tests.append(
            test(
                "deal", "a 3-of-5 512-bit key dealt from the seed SHA-256(\"paillier threshold\")", ["KeyGeneration"],
                .valid, nil
            ) {
                $0.seed = Hex.encode(seed("paillier threshold")); $0.keyBits = 512; $0.threshold = 3; $0.holders = 5
                $0.n = dealt.publicKey.n.decimal
                $0.shares = shares.map { .init(holder: $0.holder, value: $0.secretValue.decimal) }
            })
        tests.append(
            test("deal", "t = 6 of ℓ = 5 holders is refused", ["Refused"], .invalid, "invalidThresholdParameters") {
                $0.seed = Hex.encode(seed("paillier threshold")); $0.keyBits = 512; $0.threshold = 6; $0.holders = 5
                $0.shares = []
            })

        let small = keys[256]!
        let key = keys[512]!
        let (p, q) = key.primes
        let n = key.publicKey.n
        tests.append(
            test("publicKey", "the 256-bit modulus: the smallest size accepted", ["Normal"], .valid, nil) {
                $0.n = small.publicKey.n.decimal
            })
        tests.append(test("publicKey", "a 512-bit modulus", ["Normal"], .valid, nil) { $0.n = n.decimal })
        tests.append(
            test(
                "publicKey", "n = p² passes the public rules, which cannot factor n", ["WeakModulus"], .acceptable, nil
            ) {
                $0.n = (p * p).decimal
            })
        let composite254 = BigInt(3) * (BigInt(1).shiftedLeft(252) + 1)
        for (why, value) in [
            ("n + 1 is even", n + 1), ("n = 0", BigInt(0)), ("n is negative", BigInt(0) - n),
            ("n = 3·(2^252 + 1) is odd and composite but has 254 bits", composite254),
            ("n = 1", BigInt(1)), ("n is a 1024-bit prime (a factor of the 2048-bit key)", keys[2048]!.primes.p),
        ] {
            tests.append(
                test("publicKey", "refused: \(why)", ["InvalidModulus"], .invalid, "invalidModulus") {
                    $0.n = value.decimal
                })
        }

        tests.append(
            test("privateKey", "the 512-bit key's factors give its modulus", ["Normal"], .valid, nil) {
                $0.p = p.decimal; $0.q = q.decimal; $0.n = n.decimal
            })
        var oddComposite = q + 2
        while oddComposite.isProbablePrime() { oddComposite = oddComposite + 2 }
        for (why, first, second, code) in [
            ("p = q", p, p, "invalidPrivateKey"),
            ("p has 128 bits and q 256", small.primes.p, q, "invalidPrivateKey"),
            ("q + 1 is even, not prime", p, q + 1, "invalidPrivateKey"),
            ("q is odd and composite", p, oddComposite, "invalidPrivateKey"),
            ("p = 2, q = 3: gcd(n, (p − 1)(q − 1)) = 2", BigInt(2), BigInt(3), "invalidPrivateKey"),
            (
                "p = 5, q = 7 are valid factors of a 6-bit n, which the modulus rules refuse", BigInt(5), BigInt(7),
                "invalidModulus"
            ),
        ] {
            tests.append(
                test(
                    "privateKey", "refused: \(why)",
                    [code == "invalidModulus" ? "InvalidModulus" : "InvalidPrivateKey"], .invalid, code
                ) {
                    $0.p = first.decimal; $0.q = second.decimal; $0.n = (first * second).decimal
                })
        }
        return tests
    }
}
