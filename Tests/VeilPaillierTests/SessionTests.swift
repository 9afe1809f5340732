import Testing
import VeilCore
import VeilCrypto
import VeilTestSupport

@testable import VeilPaillier

/// Masked Paillier sessions (`Specs/paillier.md` §6.1): the masks cancel only over the whole
/// roster, and the key holder decrypts only with a receipt from every member.
@Suite struct PaillierSessionTests {
    let key = testKey
    var members: [Ed25519.PrivateKey] {
        var generator = SplitMix64(seed: 11)
        return (0..<4).map { _ in Ed25519.PrivateKey(using: &generator) }
    }
    let holderIdentity = Ed25519.PrivateKey()
    let coordinator = Ed25519.PrivateKey()

    func session(_ members: [Ed25519.PrivateKey], round: UInt64 = 1) throws -> PaillierSession {
        try PaillierSession(
            publicKey: key.publicKey,
            packing: PaillierPacking(bitWidth: BitWidth(16), maxAddends: 8, keyBits: key.publicKey.bits),
            dimension: 40, round: round, nonce: [UInt8](repeating: 3, count: 32), keyHolder: holderIdentity.publicKey,
            coordinator: coordinator.publicKey, roster: members.map(\.publicKey),
            context: [UInt8](repeating: 2, count: 32))
    }

    func inputs(_ count: Int) throws -> [ModularVector] {
        try (0..<count).map { i in
            try ModularVector(elements: (0..<40).map { UInt64(($0 * 131 + i * 7) % 65536) }, bitWidth: BitWidth(16))
        }
    }

    func contributions(_ session: PaillierSession, _ members: [Ed25519.PrivateKey], _ vectors: [ModularVector]) throws
        -> [(ciphertexts: [PaillierCiphertext], receipt: PaillierReceipt)]
    {
        let encryptor = DJNEncryptor(publicKey: key.publicKey, precomputeTable: false)
        return try members.indices.map { i in
            try MaskedPaillierContributor(
                session: session, position: ParticipantID(UInt32(i + 1)), signingKey: members[i], encryptor: encryptor
            ).contribute(vectors[i])
        }
    }

    func product(_ parts: [[PaillierCiphertext]]) throws -> [PaillierCiphertext] {
        try parts.dropFirst().reduce(parts[0]) { acc, next in try zip(acc, next).map { try key.publicKey.add($0, $1) } }
    }

    var holder: PaillierKeyHolder {
        PaillierKeyHolder(
            privateKey: key,
            packing: try! PaillierPacking(bitWidth: BitWidth(16), maxAddends: 8, keyBits: key.publicKey.bits),
            minimumContributors: 3)
    }

    @Test func theMasksCancelOverTheWholeRosterAndOnlyThere() throws {
        let members = self.members
        let s = try session(members)
        let masks = try members.indices.map { try s.mask(for: ParticipantID(UInt32($0 + 1)), signingKey: members[$0]) }
        for j in 0..<s.plaintextCount {
            #expect(masks.reduce(BigInt(0)) { ($0 + $1[j]).modulo(key.publicKey.n) } == BigInt(0))
            // Any proper subset leaves a residue nobody outside the roster knows.
            #expect(masks.dropLast().reduce(BigInt(0)) { ($0 + $1[j]).modulo(key.publicKey.n) } != BigInt(0))
        }
        // Another session, other masks.
        let other = try session(members, round: 2)
        #expect(try other.mask(for: ParticipantID(1), signingKey: members[0])[0] != masks[0][0])
        #expect(throws: PaillierSessionError.notAMember(2)) {
            try s.mask(for: ParticipantID(2), signingKey: members[0])
        }
    }

    /// A roster key that is not a curve point (a coordinator can put one there) is a named
    /// refusal for the other members, not a trap: the failing key agreement used to sit
    /// inside a `try!`.
    @Test func aRosterKeyOffTheCurveIsRefusedByName() throws {
        var members = self.members.map(\.publicKey)
        // y = 2 has no x on edwards25519 (2 is not a square's image): the conversion to X25519 fails.
        members[2] = try Ed25519.PublicKey(rawRepresentation: [2] + [UInt8](repeating: 0, count: 31))
        let s = try PaillierSession(
            publicKey: key.publicKey,
            packing: PaillierPacking(bitWidth: BitWidth(16), maxAddends: 8, keyBits: key.publicKey.bits),
            dimension: 40, round: 1, nonce: [UInt8](repeating: 3, count: 32), keyHolder: holderIdentity.publicKey,
            coordinator: coordinator.publicKey, roster: members, context: [UInt8](repeating: 2, count: 32))
        #expect(throws: PaillierSessionError.weakMemberKey(position: 3)) {
            try s.mask(for: ParticipantID(1), signingKey: self.members[0])
        }
    }

    @Test func theWholeProductWithEveryReceiptDecryptsToTheSum() throws {
        let members = self.members
        let s = try session(members)
        let vectors = try inputs(members.count)
        let parts = try contributions(s, members, vectors)
        let result = try holder.decrypt(
            try product(parts.map(\.ciphertexts)), session: s, receipts: parts.map(\.receipt),
            identity: holderIdentity.publicKey)
        var expected = ModularVector(zeros: 40, bitWidth: try BitWidth(16))
        for v in vectors { try expected.add(v) }
        #expect(result.sum == expected)
        #expect(result.survivors.count == members.count)
    }

    /// The decryption oracle of the review, against the session: one member's ciphertexts
    /// handed over as if they were the aggregate. With every receipt present the key holder
    /// decrypts — and what comes back is the member's input under a mask of pairwise secrets
    /// that neither the coordinator nor the key holder holds.
    @Test func oneMembersCiphertextsDecryptToNoise() throws {
        let members = self.members
        let s = try session(members)
        let vectors = try inputs(members.count)
        let parts = try contributions(s, members, vectors)
        let leaked = try holder.decrypt(
            parts[0].ciphertexts, session: s, receipts: parts.map(\.receipt), identity: holderIdentity.publicKey)
        let agreeing = zip(leaked.sum.elements, vectors[0].elements).filter { $0 == $1 }.count
        #expect(agreeing <= 2, "\(agreeing) of 40 values of member 1's input came through")
    }

    @Test func everyRefusalOfTheKeyHolderIsNamed() throws {
        let members = self.members
        let s = try session(members)
        let parts = try contributions(s, members, try inputs(members.count))
        let aggregate = try product(parts.map(\.ciphertexts))
        let receipts = parts.map(\.receipt)
        let identity = holderIdentity.publicKey
        #expect(throws: PaillierSessionError.missingReceipt(position: 4)) {
            try holder.decrypt(aggregate, session: s, receipts: Array(receipts.dropLast()), identity: identity)
        }
        // A receipt the coordinator made up: signed by the wrong key.
        let forged = PaillierReceipt(
            session: s, position: ParticipantID(2), ciphertexts: parts[1].ciphertexts, signingKey: coordinator)
        #expect(throws: PaillierSessionError.invalidReceipt(position: 2)) {
            try holder.decrypt(
                aggregate, session: s, receipts: [receipts[0], forged, receipts[2], receipts[3]], identity: identity)
        }
        // A receipt of another session does not carry over.
        let other = try session(members, round: 9)
        let stale = PaillierReceipt(
            session: other, position: ParticipantID(3), ciphertexts: parts[2].ciphertexts, signingKey: members[2])
        #expect(throws: PaillierSessionError.invalidReceipt(position: 3)) {
            try holder.decrypt(
                aggregate, session: s, receipts: [receipts[0], receipts[1], stale, receipts[3]], identity: identity)
        }
        // Two members: below the key holder's minimum of three.
        let pair = try session(Array(members.prefix(2)))
        let pairParts = try contributions(pair, Array(members.prefix(2)), try inputs(2))
        #expect(throws: PaillierSessionError.tooFewMembers(have: 2, need: 3)) {
            try holder.decrypt(
                try product(pairParts.map(\.ciphertexts)), session: pair, receipts: pairParts.map(\.receipt),
                identity: identity)
        }
        #expect(throws: PaillierSessionError.notThisKeyHolder) {
            try holder.decrypt(aggregate, session: s, receipts: receipts, identity: coordinator.publicKey)
        }
    }

    @Test func theKeyStatementBindsTheModulusToTheHolder() throws {
        let statement = PaillierKeyStatement(signing: key.publicKey, with: holderIdentity)
        #expect(statement.isSigned(by: holderIdentity.publicKey))
        #expect(!statement.isSigned(by: coordinator.publicKey))
        let other = try PaillierPrivateKey.generate(bits: 512).publicKey
        #expect(
            !PaillierKeyStatement(publicKey: other, signature: statement.signature).isSigned(
                by: holderIdentity.publicKey))
        #expect(PaillierKeyStatement.fingerprint(key.publicKey).count == 64)
        #expect(PaillierKeyStatement.fingerprint(key.publicKey) != PaillierKeyStatement.fingerprint(other))
    }
}
