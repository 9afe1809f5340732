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
            var y = BigInt(0)
            while y.signum == 0 || BigInt.gcd(y, pk.n) != 1 {
                y = BigInt.random(bits: pk.bits - 1, using: &inputs.generator).declassified()
            }
            let base = (pk.n - (y * y).modulo(pk.n)).modulo(pk.n).power(pk.n, modulo: pk.ciphertextModulus)
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
                tcId += 1
                var test = PaillierSessionRunner.Test(
                    tcId: tcId, comment: comment, flags: result == .valid ? ["Normal"] : ["Refused"], result: result,
                    error: error, kind: kind)
                try fill(&test)
                group.tests.append(test)
            }
            let statement = PaillierKeyStatement(signing: pk, with: s.keyHolder)
            add("statement", "the key holder's signed statement of its modulus, and the fingerprint") {
                $0.signature = Hex.encode(statement.signature)
                $0.fingerprint = PaillierKeyStatement.fingerprint(pk)
            }
            add(
                "session",
                "the session id of \(members) members, round \(round), and the coordinator's announcement signature"
            ) {
                $0.sessionId = Hex.encode(s.session.id)
                $0.signature = Hex.encode(s.coordinator.signature(for: s.session.announcement))
            }
            let parts = try (1...members).map { try PaillierSessionRunner.contribution(s, $0) }
            for member in 1...members {
                let masks = try s.session.mask(for: ParticipantID(UInt32(member)), signingKey: s.members[member - 1])
                add("contribution", "member \(member): its masks, masked DJN ciphertexts and signed receipt") {
                    $0.member = member
                    $0.masks = masks.map(\.decimal)
                    $0.ciphertexts = parts[member - 1].ciphertexts.map(\.decimal)
                    $0.receiptDigest = Hex.encode(parts[member - 1].receipt.ciphertextDigest)
                    $0.signature = Hex.encode(parts[member - 1].receipt.signature)
                }
            }
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
        return VectorFile(
            algorithm: PaillierSessionRunner.algorithm, generatorVersion: version,
            header: [
                "Masked Paillier sessions (Specs/paillier.md §6.1): the key holder's key statement, session ids,",
                "pairwise masks from the members' Ed25519 keys in X25519 form, masked DJN encryption with given α,",
                "receipts, and the key holder's decryption or refusal. Integers are decimal strings; keys 512 bits.",
            ],
            notes: [
                "Refused": VectorNote(bugType: "BASIC", description: "The key holder must refuse; `error` names why.")
            ],
            testGroups: groups, numberOfTests: tcId)
    }
}
