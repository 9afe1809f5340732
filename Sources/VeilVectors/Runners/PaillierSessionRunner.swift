import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier

/// The project's `VEIL-PAILLIER-SESSION` file (`Specs/paillier.md` §6.1): from a key, the
/// parties' Ed25519 seeds, the members' inputs and their DJN exponents — the key statement,
/// the session id, each member's masks, ciphertexts and receipt, and what the key holder
/// decrypts or refuses.
enum PaillierSessionRunner: VectorRunner {
    static let algorithm = "VEIL-PAILLIER-SESSION"

    struct Group: Codable, Sendable {
        var p: String
        var q: String
        var bits: Int
        var maxAddends: Int
        var dimension: Int
        var round: String
        var nonce: String
        /// The session context (the round plan's digest in the service), hex.
        var context: String
        var keyHolderSeed: String
        var coordinatorSeed: String
        var memberSeeds: [String]
        /// h_s of the members' DJN encryptions.
        var djnBase: String
        /// Per member: its input (decimal elements of Z_2^b), and DJN's α per ciphertext.
        var inputs: [[String]]
        var exponents: [[String]]
        var tests: [Test]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// statement, session, contribution, decrypt.
        var kind: String
        var member: Int?
        var fingerprint: String?
        var signature: String?
        var sessionId: String?
        var masks: [String]?
        var ciphertexts: [String]?
        var receiptDigest: String?
        /// decrypt: the members whose ciphertexts are multiplied into the aggregate, the
        /// positions whose receipts are handed over (one flipped bit in `forged`'s), the key
        /// holder's minimum, and the sum it returns.
        var aggregateOf: [Int]?
        var receiptsOf: [Int]?
        var forged: Int?
        var minimumContributors: Int?
        var sum: [String]?
    }

    struct Setting {
        let key: PaillierPrivateKey
        let session: PaillierSession
        let keyHolder: Ed25519.PrivateKey
        let coordinator: Ed25519.PrivateKey
        let members: [Ed25519.PrivateKey]
        let encryptor: DJNEncryptor
        let inputs: [ModularVector]
        let exponents: [[BigInt]]
    }

    static func integer(_ text: String, _ field: String) throws -> BigInt {
        guard let value = BigInt(decimal: text) else {
            throw VectorError.unreadable("field \(field) is not a decimal integer")
        }
        return value
    }

    static func identity(_ seed: String, _ field: String) throws -> Ed25519.PrivateKey {
        try Ed25519.PrivateKey(seed: SecureBytes(copying: hex(seed, field)))
    }

    static func setting(_ group: Group) throws -> Setting {
        let key = try PaillierPrivateKey(p: integer(group.p, "p"), q: integer(group.q, "q"))
        let bitWidth = try BitWidth(group.bits)
        let packing = try PaillierPacking(bitWidth: bitWidth, maxAddends: group.maxAddends, keyBits: key.publicKey.bits)
        let keyHolder = try identity(group.keyHolderSeed, "keyHolderSeed")
        let members = try group.memberSeeds.map { try identity($0, "memberSeeds") }
        guard let round = UInt64(group.round) else { throw VectorError.unreadable("field round") }
        let coordinator = try identity(group.coordinatorSeed, "coordinatorSeed")
        let session = try PaillierSession(
            publicKey: key.publicKey, packing: packing, dimension: group.dimension, round: round,
            nonce: hex(group.nonce, "nonce"), keyHolder: keyHolder.publicKey,
            coordinator: coordinator.publicKey, roster: members.map(\.publicKey),
            context: hex(group.context, "context"))
        let encryptor = DJNEncryptor(
            publicKey: key.publicKey, base: try integer(group.djnBase, "djnBase"), precomputeTable: false)
        let inputs = try group.inputs.map {
            try ModularVector(elements: $0.map { try decimal($0, "inputs") }, bitWidth: bitWidth)
        }
        let exponents = try group.exponents.map { try $0.map { try integer($0, "exponents") } }
        return Setting(
            key: key, session: session, keyHolder: keyHolder, coordinator: coordinator, members: members,
            encryptor: encryptor, inputs: inputs,
            exponents: exponents)
    }

    static func contribution(_ s: Setting, _ member: Int) throws -> (
        ciphertexts: [PaillierCiphertext], receipt: PaillierReceipt
    ) {
        try MaskedPaillierContributor(
            session: s.session, position: ParticipantID(UInt32(member)), signingKey: s.members[member - 1],
            encryptor: s.encryptor
        ).contribute(s.inputs[member - 1], exponents: s.exponents[member - 1])
    }

    /// What the key holder returns for the product of `aggregateOf`'s ciphertexts and the
    /// receipts of `receiptsOf` (the one of `forged` with a flipped signature bit).
    /// The key holder's decryption: the sum, and its signature over what it released
    /// (`Specs/paillier.md` §6.1, "veil/v1/paillier/decrypted").
    static func decrypt(
        _ s: Setting, aggregateOf: [Int], receiptsOf: [Int], forged: Int?, minimumContributors: Int
    ) throws -> (sum: [String], signature: String) {
        let parts = try (1...s.members.count).map { try contribution(s, $0) }
        var aggregate: [PaillierCiphertext]?
        for member in aggregateOf {
            let next = parts[member - 1].ciphertexts
            aggregate = try aggregate.map { try zip($0, next).map { try s.key.publicKey.add($0, $1) } } ?? next
        }
        let receipts = receiptsOf.map { position in
            let receipt = parts[position - 1].receipt
            guard position == forged else { return receipt }
            var signature = receipt.signature
            signature[0] ^= 1
            return PaillierReceipt(
                position: receipt.position, ciphertextDigest: receipt.ciphertextDigest, signature: signature)
        }
        let holder = PaillierKeyHolder(
            privateKey: s.key, packing: s.session.packing, minimumContributors: minimumContributors)
        let sum = try holder.decrypt(
            aggregate ?? [], session: s.session, receipts: receipts, identity: s.keyHolder.publicKey
        )
        .sum.elements
        let digest = PaillierSession.aggregateDigest((aggregate ?? []).map { $0.bigEndianBytes() })
        let signature = s.keyHolder.signature(for: s.session.decryptionResult(aggregateDigest: digest, sum: sum))
        return (sum.map { String($0) }, Hex.encode(signature))
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in judge(test) { try check(setting(group), test) } }
        }
    }

    static func check(_ s: Setting, _ test: Test) throws {
        switch test.kind {
        case "statement":
            let statement = PaillierKeyStatement(signing: s.key.publicKey, with: s.keyHolder)
            try expectEqual(Hex.encode(statement.signature), test.signature, "signature")
            try expectEqual(PaillierKeyStatement.fingerprint(s.key.publicKey), test.fingerprint, "fingerprint")
        case "session":
            try expectEqual(Hex.encode(s.session.id), test.sessionId, "sessionId")
            try expectEqual(
                Hex.encode(s.coordinator.signature(for: s.session.announcement)), test.signature, "signature")
        case "contribution":
            let member = test.member ?? 0
            let masks = try s.session.mask(for: ParticipantID(UInt32(member)), signingKey: s.members[member - 1])
            try expectEqual(masks.map(\.decimal), test.masks, "masks")
            let (ciphertexts, receipt) = try contribution(s, member)
            try expectEqual(ciphertexts.map(\.decimal), test.ciphertexts, "ciphertexts")
            try expectEqual(Hex.encode(receipt.ciphertextDigest), test.receiptDigest, "receiptDigest")
            try expectEqual(Hex.encode(receipt.signature), test.signature, "signature")
        case "decrypt":
            let (sum, signature) = try decrypt(
                s, aggregateOf: test.aggregateOf ?? [], receiptsOf: test.receiptsOf ?? [], forged: test.forged,
                minimumContributors: test.minimumContributors ?? 2)
            try expectEqual(sum, test.sum, "sum")
            try expectEqual(signature, test.signature, "signature")
        default:
            throw VectorError.unreadable("unknown kind \(test.kind)")
        }
    }
}
