import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier

/// The project's `VEIL-PAILLIER-SESSION` file (`Specs/paillier.md` §6.1, §6.3): from a key, the
/// parties' Ed25519 seeds, the members' inputs and their DJN exponents — the key statement,
/// the session id, each member's masks, ciphertexts and receipt, and what the key holder
/// decrypts or refuses; in a group with `threshold`, the threshold key's encoding and its
/// holders' statements, each holder's signed, proved partials (from given r) or refusal, and
/// their combination.
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
        /// The one key holder's seed; absent in a threshold group.
        var keyHolderSeed: String?
        var coordinatorSeed: String
        var memberSeeds: [String]
        /// h_s of the members' DJN encryptions.
        var djnBase: String
        /// Per member: its input (decimal elements of Z_2^b), and DJN's α per ciphertext.
        var inputs: [[String]]
        var exponents: [[String]]
        /// A threshold group: the dealt key (its n is p·q), the holders, the session's named ones.
        var threshold: Threshold?
        var tests: [Test]
    }

    /// A t-of-ℓ key dealt from p and q (§6.2): v, v_1 … v_ℓ, the shares s_i (decimal), each
    /// holder's Ed25519 seed, the holders the session names, and each holder's proof r per
    /// ciphertext.
    struct Threshold: Codable, Sendable {
        var t: Int
        var holders: Int
        var v: String
        var verificationKeys: [String]
        var shares: [String]
        var holderSeeds: [String]
        var named: [Int]
        var proofRandomness: [[String]]
    }

    struct Test: VectorCase {
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// statement, session, contribution, decrypt; thresholdKey, partial, combine.
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
        /// thresholdKey: the canonical encoding (hex) and each holder's share statement (hex).
        var encoding: String?
        var statements: [String]?
        /// partial: the holder answering, and its partials in their wire form (hex).
        var holder: Int?
        var partials: [String]?
        /// combine: the holders whose answers are given, the one whose first partial is
        /// multiplied by (1 + n), and the holders left out.
        var answers: [Int]?
        var cheat: Int?
        var rejected: [Int]?
    }

    struct Setting {
        let key: PaillierPrivateKey
        let session: PaillierSession
        /// The one key holder (a threshold group: holder 1, unused).
        let keyHolder: Ed25519.PrivateKey
        let threshold: ThresholdSetting?
        let coordinator: Ed25519.PrivateKey
        let members: [Ed25519.PrivateKey]
        let encryptor: DJNEncryptor
        let inputs: [ModularVector]
        let exponents: [[BigInt]]
    }

    struct ThresholdSetting {
        let key: ThresholdPaillierPublicKey
        let shares: [ThresholdKeyShare]
        let holders: [Ed25519.PrivateKey]
        let proofRandomness: [[BigInt]]
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
        let members = try group.memberSeeds.map { try identity($0, "memberSeeds") }
        guard let round = UInt64(group.round) else { throw VectorError.unreadable("field round") }
        let coordinator = try identity(group.coordinatorSeed, "coordinatorSeed")
        let keyHolder: Ed25519.PrivateKey
        let decryptors: PaillierDecryptors
        var thresholdSetting: ThresholdSetting?
        if let t = group.threshold {
            let thresholdKey = try ThresholdPaillierPublicKey(
                publicKey: key.publicKey, threshold: t.t, holders: t.holders,
                verification: ThresholdVerificationKeys(
                    v: try integer(t.v, "v"),
                    holderKeys: try t.verificationKeys.map { try integer($0, "verificationKeys") }))
            let holders = try t.holderSeeds.map { try identity($0, "holderSeeds") }
            let shares = try t.shares.enumerated().map { index, text in
                try ThresholdKeyShare(
                    holder: index + 1, thresholdKey: thresholdKey, secret: try integer(text, "shares"))
            }
            keyHolder = holders[0]
            decryptors = .threshold(
                ThresholdKeyHolders(
                    key: thresholdKey,
                    signingKeys: Dictionary(uniqueKeysWithValues: t.named.map { ($0, holders[$0 - 1].publicKey) })))
            thresholdSetting = ThresholdSetting(
                key: thresholdKey, shares: shares, holders: holders,
                proofRandomness: try t.proofRandomness.map { try $0.map { try integer($0, "proofRandomness") } })
        } else {
            keyHolder = try identity(group.keyHolderSeed ?? "", "keyHolderSeed")
            decryptors = .keyHolder(keyHolder.publicKey)
        }
        let session = try PaillierSession(
            publicKey: key.publicKey, packing: packing, dimension: group.dimension, round: round,
            nonce: hex(group.nonce, "nonce"), decryptors: decryptors,
            coordinator: coordinator.publicKey, roster: members.map(\.publicKey),
            context: hex(group.context, "context"))
        let encryptor = DJNEncryptor(
            publicKey: key.publicKey, base: try integer(group.djnBase, "djnBase"), precomputeTable: false)
        let inputs = try group.inputs.map {
            try ModularVector(elements: $0.map { try decimal($0, "inputs") }, bitWidth: bitWidth)
        }
        let exponents = try group.exponents.map { try $0.map { try integer($0, "exponents") } }
        return Setting(
            key: key, session: session, keyHolder: keyHolder, threshold: thresholdSetting, coordinator: coordinator,
            members: members,
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
        let (aggregate, receipts) = try request(s, aggregateOf: aggregateOf, receiptsOf: receiptsOf, forged: forged)
        let holder = PaillierKeyHolder(
            privateKey: s.key, packing: s.session.packing, minimumContributors: minimumContributors)
        let sum = try holder.decrypt(aggregate, session: s.session, receipts: receipts, identity: s.keyHolder.publicKey)
            .sum.elements
        let digest = PaillierSession.aggregateDigest(aggregate.map { $0.bigEndianBytes() })
        let signature = s.keyHolder.signature(for: s.session.decryptionResult(aggregateDigest: digest, sum: sum))
        return (sum.map { String($0) }, Hex.encode(signature))
    }

    /// The product of `aggregateOf`'s ciphertexts, and the receipts of `receiptsOf` (the one of
    /// `forged` with a flipped signature bit).
    static func request(_ s: Setting, aggregateOf: [Int], receiptsOf: [Int], forged: Int?) throws -> (
        aggregate: [PaillierCiphertext], receipts: [PaillierReceipt]
    ) {
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
        return (aggregate ?? [], receipts)
    }

    /// Threshold holder `holder`'s answer (§6.3): its partials of the aggregate in their wire
    /// form, from the group's r, and its signature of them.
    static func partials(
        _ s: Setting, holder: Int, aggregateOf: [Int], receiptsOf: [Int], forged: Int?, minimumContributors: Int
    ) throws -> (partials: [[UInt8]], signature: [UInt8]) {
        guard let t = s.threshold else {
            throw VectorError.unreadable("a partial decryption outside a threshold group")
        }
        let (aggregate, receipts) = try request(s, aggregateOf: aggregateOf, receiptsOf: receiptsOf, forged: forged)
        let sessionHolder = ThresholdSessionHolder(
            share: t.shares[holder - 1], packing: s.session.packing, minimumContributors: minimumContributors)
        let partials = try sessionHolder.partiallyDecrypt(
            aggregate, session: s.session, receipts: receipts, identity: t.holders[holder - 1].publicKey,
            proofRandomness: t.proofRandomness[holder - 1])
        let digest = PaillierSession.aggregateDigest(aggregate.map { $0.bigEndianBytes() })
        let signature = t.holders[holder - 1].signature(
            for: s.session.partialDecryptionResult(aggregateDigest: digest, holder: holder, partials: partials))
        return (partials, signature)
    }

    /// The coordinator's combination of the answers of `answers` (every member's aggregate,
    /// every receipt), `cheat`'s first partial multiplied by (1 + n): the sum and who is left out.
    static func combine(_ s: Setting, answers: [Int], cheat: Int?) throws -> (sum: [String], rejected: [Int]) {
        guard let t = s.threshold else { throw VectorError.unreadable("a combination outside a threshold group") }
        let everyone = Array(1...s.members.count)
        let (aggregate, _) = try request(s, aggregateOf: everyone, receiptsOf: everyone, forged: nil)
        var given: [Int: [PartialDecryption]] = [:]
        for holder in answers {
            var wire = try partials(
                s, holder: holder, aggregateOf: everyone, receiptsOf: everyone, forged: nil,
                minimumContributors: s.members.count
            ).partials
            if holder == cheat {
                let width = t.key.publicKey.ciphertextByteCount
                let value = BigInt(bigEndian: wire[0][0..<width])
                let wrong = (value * (t.key.publicKey.n + 1)).modulo(t.key.publicKey.ciphertextModulus)
                wire[0].replaceSubrange(0..<width, with: try wrong.bigEndianBytes(width: width))
            }
            given[holder] = try zip(wire, aggregate).map { try t.key.decodePartial($0, holder: holder, of: $1) }
        }
        let (sum, rejected) = try s.session.combine(given, of: aggregate)
        return (sum.elements.map { String($0) }, rejected)
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
        case "thresholdKey":
            guard let t = s.threshold else {
                throw VectorError.unreadable("a thresholdKey case outside a threshold group")
            }
            try expectEqual(Hex.encode(t.key.canonicalEncoding), test.encoding, "encoding")
            try expectEqual(t.key.fingerprint, test.fingerprint, "fingerprint")
            try expectEqual(
                zip(t.shares, t.holders).map { Hex.encode(ThresholdShareStatement(signing: $0, with: $1).signature) },
                test.statements, "statements")
        case "partial":
            let (wire, signature) = try partials(
                s, holder: test.holder ?? 0, aggregateOf: test.aggregateOf ?? [], receiptsOf: test.receiptsOf ?? [],
                forged: test.forged, minimumContributors: test.minimumContributors ?? 2)
            try expectEqual(wire.map { Hex.encode($0) }, test.partials, "partials")
            try expectEqual(Hex.encode(signature), test.signature, "signature")
        case "combine":
            let (sum, rejected) = try combine(s, answers: test.answers ?? [], cheat: test.cheat)
            try expectEqual(sum, test.sum, "sum")
            try expectEqual(rejected, test.rejected ?? [], "rejected")
        default:
            throw VectorError.unreadable("unknown kind \(test.kind)")
        }
    }
}
