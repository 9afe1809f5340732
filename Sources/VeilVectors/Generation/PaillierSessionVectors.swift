import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier

extension ProjectVectors {
    /// `paillier/veil_paillier_session.json`: masked sessions, recomputed independently by
    /// `Specs/reference/paillier_reference.py` (PyNaCl for Ed25519 and its X25519 form, phe for
    /// decryption, plain integers for DJN and the masks).
    static func paillierSession() throws -> VectorFile<PaillierSessionRunner.Group> {
        var inputs = Inputs("paillier-session")
        var tcId = 0
        var groups: [PaillierSessionRunner.Group] = []
        for (members, bits, dimension, round) in [(4, 16, 40, UInt64(1)), (3, 32, 5, UInt64(7))] {
            var keyGenerator = try ChaCha20Generator(
                publicSeed: SHA256.hash(Array("paillier session key 512 \(members)".utf8)))
            let key = try PaillierPrivateKey.generate(bits: 512, using: &keyGenerator)
            let (p, q) = key.primes
            let pk = key.publicKey
            let packing = try PaillierPacking(bitWidth: BitWidth(bits), maxAddends: members, keyBits: pk.bits)
            let base = djnBase(pk, &inputs)
            let exponentBits = (pk.bits + 1) / 2
            let plaintexts = packing.plaintextCount(dimension: dimension)
            var group = PaillierSessionRunner.Group(
                p: p.decimal, q: q.decimal, bits: bits, maxAddends: members, dimension: dimension, round: String(round),
                nonce: inputs.hex(PaillierSession.nonceByteCount),
                context: inputs.hex(PaillierSession.contextByteCount),
                keyHolderSeed: inputs.hex(Ed25519.seedByteCount), coordinatorSeed: inputs.hex(Ed25519.seedByteCount),
                memberSeeds: (0..<members).map { _ in inputs.hex(Ed25519.seedByteCount) }, djnBase: base.decimal,
                inputs: (0..<members).map { _ in
                    (0..<dimension).map { _ in
                        String(inputs.generator.next() & (bits == 64 ? ~0 : (1 << UInt64(bits)) - 1))
                    }
                },
                exponents: (0..<members).map { _ in
                    (0..<plaintexts).map { _ in
                        BigInt.random(bits: exponentBits, using: &inputs.generator).declassified().decimal
                    }
                },
                tests: [])
            let s = try PaillierSessionRunner.setting(group)
            func add(
                _ kind: String, _ comment: String, result: ExpectedResult = .valid, error: String? = nil,
                _ fill: (inout PaillierSessionRunner.Test) throws -> Void
            ) rethrows {
                group.tests.append(try newCase(&tcId, kind, comment, result: result, error: error, fill))
            }
            let statement = PaillierKeyStatement(signing: pk, with: s.keyHolder)
            add("statement", "the key holder's signed statement of its modulus, and the fingerprint") {
                $0.signature = Hex.encode(statement.signature)
                $0.fingerprint = PaillierKeyStatement.fingerprint(pk)
            }
            try sessionCases(
                s,
                session:
                    "the session id of \(members) members, round \(round), and the coordinator's announcement signature",
                contribution: "its masks, masked DJN ciphertexts and signed receipt"
            ) { kind, comment, fill in add(kind, comment, fill) }
            let everyone = Array(1...members)
            func decrypted(_ aggregateOf: [Int], _ receiptsOf: [Int], minimum: Int) throws -> (
                sum: [String], signature: String
            ) {
                try PaillierSessionRunner.decrypt(
                    s, aggregateOf: aggregateOf, receiptsOf: receiptsOf, forged: nil, minimumContributors: minimum)
            }
            try add(
                "decrypt",
                "the product of every member's ciphertexts, every receipt: the sum, and the key holder's signature"
            ) {
                $0.aggregateOf = everyone; $0.receiptsOf = everyone; $0.minimumContributors = members
                (sum: $0.sum, signature: $0.signature) = try decrypted(everyone, everyone, minimum: members)
            }
            try add("decrypt", "member 1's ciphertexts alone, every receipt: its input under its mask, not its input") {
                $0.aggregateOf = [1]; $0.receiptsOf = everyone; $0.minimumContributors = members
                (sum: $0.sum, signature: $0.signature) = try decrypted([1], everyone, minimum: members)
            }
            add("decrypt", "the last member's receipt is missing", result: .invalid, error: "missingReceipt") {
                $0.aggregateOf = everyone; $0.receiptsOf = Array(everyone.dropLast()); $0.minimumContributors = members
            }
            add("decrypt", "member 2's receipt has a flipped signature bit", result: .invalid, error: "invalidReceipt")
            {
                $0.aggregateOf = everyone; $0.receiptsOf = everyone; $0.forged = 2; $0.minimumContributors = members
            }
            add(
                "decrypt", "the key holder's minimum is one more than the roster", result: .invalid,
                error: "tooFewMembers"
            ) {
                $0.aggregateOf = everyone; $0.receiptsOf = everyone; $0.minimumContributors = members + 1
            }
            groups.append(group)
        }
        groups.append(try thresholdSessionGroup(&inputs, tcId: &tcId))
        return VectorFile(
            algorithm: PaillierSessionRunner.algorithm, generatorVersion: version,
            header: [
                "Masked Paillier sessions (Specs/paillier.md §6.1): the key holder's key statement, session ids,",
                "pairwise masks from the members' Ed25519 keys in X25519 form, masked DJN encryption with given α,",
                "receipts, and the key holder's decryption or refusal. Integers are decimal strings; keys 512 bits.",
                "The last group's key is a 3-of-5 threshold key (§6.3) dealt from the safe primes p and q, with holders",
                "1, 2, 3 and 5 named: the key's encoding and the holders' statements, each holder's proved partials from",
                "the given r (wire form, hex) and signature, or refusal, and combinations with a holder that cheats.",
            ],
            notes: [
                "Refused": VectorNote(bugType: "BASIC", description: "The key holder must refuse; `error` names why.")
            ],
            testGroups: groups, numberOfTests: tcId)
    }

    /// DJN's h = (−y²)^n mod n² for a y drawn from the inputs' generator (a unit mod n).
    static func djnBase(_ pk: PaillierPublicKey, _ inputs: inout Inputs) -> BigInt {
        var y = BigInt(0)
        while y.signum == 0 || BigInt.gcd(y, pk.n) != 1 {
            y = BigInt.random(bits: pk.bits - 1, using: &inputs.generator).declassified()
        }
        return (pk.n - (y * y).modulo(pk.n)).modulo(pk.n).power(pk.n, modulo: pk.ciphertextModulus)
    }

    /// The next case, numbered, flagged by its result and filled in.
    static func newCase(
        _ tcId: inout Int, _ kind: String, _ comment: String, result: ExpectedResult, error: String?,
        _ fill: (inout PaillierSessionRunner.Test) throws -> Void
    ) rethrows -> PaillierSessionRunner.Test {
        tcId += 1
        var test = PaillierSessionRunner.Test(
            tcId: tcId, comment: comment, flags: result == .valid ? ["Normal"] : ["Refused"], result: result,
            error: error, kind: kind)
        try fill(&test)
        return test
    }

    /// The cases every group has: the session id with the coordinator's announcement, then each
    /// member's masks, ciphertexts and receipt.
    static func sessionCases(
        _ s: PaillierSessionRunner.Setting, session: String, contribution: String,
        add: (String, String, (inout PaillierSessionRunner.Test) -> Void) -> Void
    ) throws {
        add("session", session) {
            $0.sessionId = Hex.encode(s.session.id)
            $0.signature = Hex.encode(s.coordinator.signature(for: s.session.announcement))
        }
        let parts = try (1...s.members.count).map { try PaillierSessionRunner.contribution(s, $0) }
        for member in 1...s.members.count {
            let masks = try s.session.mask(for: ParticipantID(UInt32(member)), signingKey: s.members[member - 1])
            add("contribution", "member \(member): \(contribution)") {
                $0.member = member
                $0.masks = masks.map(\.decimal)
                $0.ciphertexts = parts[member - 1].ciphertexts.map(\.decimal)
                $0.receiptDigest = Hex.encode(parts[member - 1].receipt.ciphertextDigest)
                $0.signature = Hex.encode(parts[member - 1].receipt.signature)
            }
        }
    }

    /// The threshold group (`Specs/paillier.md` §6.3): a 3-of-5 key dealt from seeded safe
    /// primes, three members, holders 1, 2, 3 and 5 named.
    static func thresholdSessionGroup(_ inputs: inout Inputs, tcId: inout Int) throws -> PaillierSessionRunner.Group {
        let (members, bits, dimension, round) = (3, 16, 20, UInt64(3))
        var keyGenerator = try ChaCha20Generator(publicSeed: SHA256.hash(Array("paillier threshold session".utf8)))
        var p = ThresholdPaillierDealer.safePrime(bits: 256, using: &keyGenerator)
        var q = ThresholdPaillierDealer.safePrime(bits: 256, using: &keyGenerator)
        while p == q || (p * q).bitWidth != 512 {
            p = ThresholdPaillierDealer.safePrime(bits: 256, using: &keyGenerator)
            q = ThresholdPaillierDealer.safePrime(bits: 256, using: &keyGenerator)
        }
        let (thresholdKey, shares) = try ThresholdPaillierDealer.deal(
            p: p, q: q, threshold: 3, holders: 5, using: &keyGenerator)
        let pk = thresholdKey.publicKey
        let packing = try PaillierPacking(bitWidth: BitWidth(bits), maxAddends: members, keyBits: pk.bits)
        let base = djnBase(pk, &inputs)
        let plaintexts = packing.plaintextCount(dimension: dimension)
        let verification = thresholdKey.verification!  // dealt with verification keys
        var group = PaillierSessionRunner.Group(
            p: p.declassified().decimal, q: q.declassified().decimal, bits: bits, maxAddends: members,
            dimension: dimension, round: String(round), nonce: inputs.hex(PaillierSession.nonceByteCount),
            context: inputs.hex(PaillierSession.contextByteCount), keyHolderSeed: nil,
            coordinatorSeed: inputs.hex(Ed25519.seedByteCount),
            memberSeeds: (0..<members).map { _ in inputs.hex(Ed25519.seedByteCount) }, djnBase: base.decimal,
            inputs: (0..<members).map { _ in
                (0..<dimension).map { _ in String(inputs.generator.next() & ((1 << UInt64(bits)) - 1)) }
            },
            exponents: (0..<members).map { _ in
                (0..<plaintexts).map { _ in
                    BigInt.random(bits: (pk.bits + 1) / 2, using: &inputs.generator).declassified().decimal
                }
            },
            threshold: .init(
                t: 3, holders: 5, v: verification.v.decimal, verificationKeys: verification.holderKeys.map(\.decimal),
                shares: shares.map { $0.secretValue.declassified().decimal },
                holderSeeds: (0..<5).map { _ in inputs.hex(Ed25519.seedByteCount) }, named: [1, 2, 3, 5],
                proofRandomness: (0..<5).map { _ in
                    (0..<plaintexts).map { _ in
                        BigInt.random(bits: thresholdKey.proofRandomnessBits, using: &inputs.generator)
                            .declassified().decimal
                    }
                }),
            tests: [])
        let s = try PaillierSessionRunner.setting(group)
        func add(
            _ kind: String, _ comment: String, result: ExpectedResult = .valid, error: String? = nil,
            _ fill: (inout PaillierSessionRunner.Test) throws -> Void
        ) rethrows {
            group.tests.append(try newCase(&tcId, kind, comment, result: result, error: error, fill))
        }
        let t = s.threshold!  // a threshold group
        add("thresholdKey", "the threshold key's canonical encoding and fingerprint, and each holder's share statement")
        {
            $0.encoding = Hex.encode(t.key.canonicalEncoding)
            $0.fingerprint = t.key.fingerprint
            $0.statements = zip(t.shares, t.holders).map {
                Hex.encode(ThresholdShareStatement(signing: $0, with: $1).signature)
            }
        }
        try sessionCases(
            s, session: "the threshold session id (holders 1, 2, 3 and 5 named) and the coordinator's announcement",
            contribution: "its masks under the threshold session, ciphertexts and receipt"
        ) { kind, comment, fill in add(kind, comment, fill) }
        let everyone = Array(1...members)
        for holder in [1, 2, 3, 5] {
            try add("partial", "holder \(holder): its proved partials of the whole product, from the given r, signed") {
                $0.holder = holder; $0.aggregateOf = everyone; $0.receiptsOf = everyone
                $0.minimumContributors = members
                let (wire, signature) = try PaillierSessionRunner.partials(
                    s, holder: holder, aggregateOf: everyone, receiptsOf: everyone, forged: nil,
                    minimumContributors: members)
                $0.partials = wire.map { Hex.encode($0) }
                $0.signature = Hex.encode(signature)
            }
        }
        add("partial", "holder 4 is not named by the session", result: .invalid, error: "notThisKeyHolder") {
            $0.holder = 4; $0.aggregateOf = everyone; $0.receiptsOf = everyone; $0.minimumContributors = members
        }
        add("partial", "holder 2, the last member's receipt missing", result: .invalid, error: "missingReceipt") {
            $0.holder = 2; $0.aggregateOf = everyone; $0.receiptsOf = Array(everyone.dropLast())
            $0.minimumContributors = members
        }
        add("partial", "holder 5, member 1's receipt forged", result: .invalid, error: "invalidReceipt") {
            $0.holder = 5; $0.aggregateOf = everyone; $0.receiptsOf = everyone; $0.forged = 1
            $0.minimumContributors = members
        }
        try add("combine", "holders 1, 2 and 3 combine to the sum of every member's input") {
            $0.answers = [1, 2, 3]
            ($0.sum, $0.rejected) = try PaillierSessionRunner.combine(s, answers: [1, 2, 3], cheat: nil)
        }
        try add("combine", "holder 1's first partial times (1 + n): named, and holders 2, 3 and 5 give the same sum") {
            $0.answers = [1, 2, 3, 5]; $0.cheat = 1
            ($0.sum, $0.rejected) = try PaillierSessionRunner.combine(s, answers: [1, 2, 3, 5], cheat: 1)
        }
        add(
            "combine", "holder 5 cheats among exactly t: refused, naming it", result: .invalid,
            error: "incorrectPartialDecryptions"
        ) {
            $0.answers = [1, 2, 5]; $0.cheat = 5
        }
        return group
    }
}
