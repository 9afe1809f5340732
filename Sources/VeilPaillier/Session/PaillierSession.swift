import VeilCore
import VeilCrypto

/// One Paillier round among an announced cohort (`Specs/paillier.md` §6.1): the key it
/// encrypts under, the packing, the round, a fresh nonce, the signing keys of the key holder,
/// the coordinator and every member, and the round plan's digest, which together define the
/// session id.
///
/// Each member adds to its packed plaintexts a pairwise mask with every other member — the
/// lower position adds, the higher subtracts — so the masks cancel only in the product of
/// *all* the members' ciphertexts. Whatever the coordinator hands the key holder, unless it
/// is that whole product, decrypts to residues masked by secrets neither of them holds. Each
/// member also signs a receipt, which the key holder checks for every member before it
/// decrypts anything.
public struct PaillierSession: Sendable {
    /// The size of the coordinator's nonce.
    public static let nonceByteCount = 32
    /// The size of the context: a SHA-256 digest of the round's model and plans.
    public static var contextByteCount: Int { SHA256.digestByteCount }

    public let publicKey: PaillierPublicKey
    public let packing: PaillierPacking
    /// d, the length of the packed vectors.
    public let dimension: Int
    /// The federation's round number (the key holder decrypts at most once per round).
    public let round: UInt64
    /// The coordinator's fresh 32 bytes.
    public let nonce: [UInt8]
    /// Who may decrypt the aggregate: one key holder, or t of ℓ threshold key holders.
    public let decryptors: PaillierDecryptors
    public let coordinator: Ed25519.PublicKey
    /// The members' signing keys, position i + 1 at index i.
    public let roster: [Ed25519.PublicKey]
    /// 32 bytes every member must agree on: the digest of the round's model and plans.
    public let context: [UInt8]
    /// SHA-256 of everything above (`Specs/paillier.md` §6.1).
    public let id: [UInt8]

    /// A session decrypted by one key holder.
    /// - Throws: ``PaillierSessionError`` for fewer than two members, more than the packing's
    ///   K, a repeated key, or a nonce that is not 32 bytes.
    public init(
        publicKey: PaillierPublicKey, packing: PaillierPacking, dimension: Int, round: UInt64, nonce: [UInt8],
        keyHolder: Ed25519.PublicKey, coordinator: Ed25519.PublicKey, roster: [Ed25519.PublicKey], context: [UInt8]
    ) throws(PaillierSessionError) {
        try self.init(
            publicKey: publicKey, packing: packing, dimension: dimension, round: round, nonce: nonce,
            decryptors: .keyHolder(keyHolder), coordinator: coordinator, roster: roster, context: context)
    }

    /// A session decrypted by one key holder or by t of ℓ threshold key holders (whose key
    /// must be `publicKey`).
    /// - Throws: ``PaillierSessionError`` as above, and for threshold holders that are fewer
    ///   than t, numbered outside 1…ℓ or twice, or hold shares of another key.
    public init(
        publicKey: PaillierPublicKey, packing: PaillierPacking, dimension: Int, round: UInt64, nonce: [UInt8],
        decryptors: PaillierDecryptors, coordinator: Ed25519.PublicKey, roster: [Ed25519.PublicKey],
        context: [UInt8]
    ) throws(PaillierSessionError) {
        guard nonce.count == Self.nonceByteCount else {
            throw .malformed("a nonce of \(nonce.count) bytes, expected \(Self.nonceByteCount)")
        }
        guard context.count == Self.contextByteCount else {
            throw .malformed("a context of \(context.count) bytes, expected \(Self.contextByteCount)")
        }
        guard roster.count >= 2 else { throw .tooFewMembers(have: roster.count, need: 2) }
        guard roster.count <= packing.maxAddends else {
            throw .malformed("\(roster.count) members exceed the packing's \(packing.maxAddends) addends")
        }
        guard Set(roster).count == roster.count else { throw .malformed("a signing key appears twice in the roster") }
        guard dimension >= 1, packing.keyBits == publicKey.bits else {
            throw .malformed("the packing or the dimension does not fit the key")
        }
        // Masks are drawn mod n and the statements name n alone: a session is Paillier's (s = 1,
        // Specs/paillier.md §9), and a Damgård–Jurik key would decrypt to the sum plus a
        // multiple of n (review, helper-20).
        guard publicKey.s == 1, packing.degree == 1 else {
            throw .malformed(
                "a masked session runs under a Paillier key (s = 1), not s = \(max(publicKey.s, packing.degree))")
        }
        // The id encodes K and d in 4 bytes each: larger values (from a hostile file) are refused,
        // not truncated or trapped on.
        guard dimension <= Int(UInt32.max), packing.maxAddends <= Int(UInt32.max) else {
            throw .malformed("K and d must be below 2^32")
        }
        self.publicKey = publicKey
        self.packing = packing
        self.dimension = dimension
        self.round = round
        if case .threshold(let holders) = decryptors { try holders.check(for: publicKey) }
        self.nonce = nonce
        self.decryptors = decryptors
        self.coordinator = coordinator
        self.roster = roster
        self.context = context
        var writer = ByteWriter()
        // A threshold session has its own domain, and binds the threshold key (t, ℓ and the
        // verification keys, by its digest) and every holder's signing key by number.
        switch decryptors {
        case .keyHolder: writer.raw(Array("veil/v1/paillier/session".utf8) + [0])
        case .threshold: writer.raw(Array("veil/v1/paillier/threshold-session".utf8) + [0])
        }
        writer.raw(nonce)
        writer.u64(round)
        writer.u32(UInt32(roster.count))
        writer.u8(UInt8(packing.bitWidth.bits))
        writer.u32(UInt32(packing.maxAddends))
        writer.u32(UInt32(dimension))
        writer.u32(UInt32(publicKey.modulusByteCount))
        writer.raw(publicKey.bigEndianBytes)
        switch decryptors {
        case .keyHolder(let keyHolder): writer.raw(keyHolder.rawRepresentation)
        case .threshold(let holders):
            writer.raw(SHA256.hash(holders.key.canonicalEncoding))
            writer.u32(UInt32(holders.signingKeys.count))
            for (number, key) in holders.signingKeys.sorted(by: { $0.key < $1.key }) {
                writer.u32(UInt32(number))
                writer.raw(key.rawRepresentation)
            }
        }
        writer.raw(coordinator.rawRepresentation)
        for key in roster { writer.raw(key.rawRepresentation) }
        writer.raw(context)
        id = SHA256.hash(writer.bytes)
    }

    /// What the coordinator signs when it announces the session to the members:
    /// "veil/v1/paillier/assignment" ‖ 0x00 ‖ session id. Only the coordinator the session
    /// names — holding its signing key, not merely its certificate — can run a session.
    public var announcement: [UInt8] { Array("veil/v1/paillier/assignment".utf8) + [0] + id }

    /// What the coordinator signs when it asks for a decryption:
    /// "veil/v1/paillier/decrypt" ‖ 0x00 ‖ session id ‖ SHA-256(aggregate ciphertexts, fixed width).
    public func decryptionRequest(_ aggregate: [PaillierCiphertext]) -> [UInt8] {
        Array("veil/v1/paillier/decrypt".utf8) + [0] + id + Self.aggregateDigest(aggregate.map { $0.bigEndianBytes() })
    }

    /// What the key holder signs when it releases a sum: "veil/v1/paillier/decrypted" ‖ 0x00 ‖
    /// session id ‖ SHA-256 of the aggregate's ciphertexts ‖ LE_8 of each sum element. The
    /// coordinator then holds the key holder to the sum, and the key holder cannot be made to
    /// answer for another one.
    /// `aggregateDigest` is ``aggregateDigest(_:)``, which both parties already hold.
    public func decryptionResult(aggregateDigest: [UInt8], sum: [UInt64]) -> [UInt8] {
        var writer = ByteWriter(capacity: 8 * sum.count)
        for element in sum { writer.u64(element) }
        return Array("veil/v1/paillier/decrypted".utf8) + [0] + id + aggregateDigest + writer.bytes
    }

    /// SHA-256 of an aggregate's ciphertexts in their fixed-width encoding (§2): what the
    /// decryption request and result sign.
    public static func aggregateDigest(_ encodedCiphertexts: [[UInt8]]) -> [UInt8] {
        SHA256.hash(encodedCiphertexts.flatMap { $0 })
    }

    /// n, the number of members.
    public var memberCount: Int { roster.count }
    /// P, the number of plaintexts (and ciphertexts) of one contribution.
    public var plaintextCount: Int { packing.plaintextCount(dimension: dimension) }
    /// The bytes drawn per mask residue: ⌈(|n| + 128) / 8⌉, so that reducing mod n leaves a
    /// bias below 2^−128.
    public var maskByteCount: Int { (publicKey.bits + 128 + 7) / 8 }

    /// The seed shared by members `a` and `b`: VeilKDF(X25519(a's scalar, b's point),
    /// "paillier/pairwise-seed", salt = session id, context = LE_4(min) ‖ LE_4(max)), both
    /// keys the X25519 form of the members' Ed25519 signing keys.
    func pairwiseSeed(own: X25519.PrivateKey, _ a: ParticipantID, _ b: ParticipantID) throws(PaillierSessionError)
        -> SecureBytes
    {
        let peer: X25519.PublicKey
        let secret: SecureBytes
        do {
            peer = try roster[Int(b.rawValue) - 1].agreementKey()
            secret = try own.sharedSecret(with: peer)
        } catch { throw .weakMemberKey(position: b.rawValue) }
        var context = ByteWriter(capacity: 8)
        context.u32(min(a, b).rawValue)
        context.u32(max(a, b).rawValue)
        return VeilKDF.derive32(.paillierPairwiseSeed, from: secret, salt: id, context: context.bytes)
    }

    /// M_a: the P residues member `position` adds to its plaintexts,
    /// Σ_{b ≠ a} ±m_ab mod n (+ when a < b), m_ab[j] = the j-th ⌈(|n| + 128)/8⌉ bytes of
    /// `ChaCha20Generator(seed_ab)`, big-endian, mod n.
    /// - Throws: ``PaillierSessionError/notAMember(_:)`` when the key is not the roster's at
    ///   that position; ``PaillierSessionError/weakMemberKey(position:)`` for a roster key
    ///   that is not a valid point.
    public func mask(for position: ParticipantID, signingKey: Ed25519.PrivateKey) throws(PaillierSessionError)
        -> [BigInt]
    {
        guard position.rawValue >= 1, Int(position.rawValue) <= roster.count,
            roster[Int(position.rawValue) - 1] == signingKey.publicKey
        else { throw .notAMember(position.rawValue) }
        let own: X25519.PrivateKey
        do { own = try signingKey.agreementKey() } catch { throw .weakMemberKey(position: position.rawValue) }
        let n = publicKey.n
        var total = [BigInt](repeating: BigInt(0).asSecret(), count: plaintextCount)
        for peer in 1...roster.count where peer != Int(position.rawValue) {
            let b = ParticipantID(UInt32(peer))
            let seed = try pairwiseSeed(own: own, position, b)  // a weak roster key throws here
            var stream = try! ChaCha20Generator(seed: seed)  // a 32-byte seed
            let adds = position < b
            for j in 0..<total.count {
                let m = BigInt(bigEndian: stream.bytes(count: maskByteCount)).modulo(n)
                total[j] = (adds ? total[j] + m : total[j] - m).modulo(n)
            }
        }
        return total
    }
}

extension PaillierSession {
    /// A key holder's checks before it decrypts anything (one holder or each of the threshold
    /// holders alike): at least `minimumContributors` members, a valid receipt from every one
    /// of them, and an aggregate of the session's size under the holder's packing.
    public func checkDecryptable(
        _ aggregate: [PaillierCiphertext], receipts: [PaillierReceipt], packing: PaillierPacking,
        minimumContributors: Int
    ) throws(PaillierSessionError) {
        guard memberCount >= minimumContributors else {
            throw .tooFewMembers(have: memberCount, need: minimumContributors)
        }
        var seen: Set<ParticipantID> = []
        for receipt in receipts {
            guard receipt.isValid(in: self) else { throw .invalidReceipt(position: receipt.position.rawValue) }
            guard seen.insert(receipt.position).inserted else {
                throw .malformed("two receipts for position \(receipt.position)")
            }
        }
        if let missing = (1...memberCount).map({ ParticipantID(UInt32($0)) }).first(where: { !seen.contains($0) }) {
            throw .missingReceipt(position: missing.rawValue)
        }
        guard aggregate.count == plaintextCount, self.packing == packing else {
            throw .malformed("\(aggregate.count) ciphertexts; the session's packing takes \(plaintextCount)")
        }
    }
}

/// A member's signed statement that it contributed these ciphertexts to this session: the
/// key holder's evidence, which the coordinator cannot forge.
///
///     digest  = SHA-256(ciphertext 1 ‖ … ‖ ciphertext P), each in the fixed-width encoding
///     message = "veil/v1/paillier/receipt" ‖ 0x00 ‖ session id ‖ LE_4(position) ‖ digest
public struct PaillierReceipt: Hashable, Sendable {
    public let position: ParticipantID
    public let ciphertextDigest: [UInt8]
    public let signature: [UInt8]

    public init(position: ParticipantID, ciphertextDigest: [UInt8], signature: [UInt8]) {
        self.position = position
        self.ciphertextDigest = ciphertextDigest
        self.signature = signature
    }

    /// Signs a receipt.
    public init(
        session: PaillierSession, position: ParticipantID, ciphertexts: [PaillierCiphertext],
        signingKey: Ed25519.PrivateKey
    ) {
        let digest = Self.digest(ciphertexts)
        self.init(
            position: position, ciphertextDigest: digest,
            signature: signingKey.signature(for: Self.message(session: session, position: position, digest: digest)))
    }

    public static func digest(_ ciphertexts: [PaillierCiphertext]) -> [UInt8] {
        SHA256.hash(ciphertexts.flatMap { $0.bigEndianBytes() })
    }

    static func message(session: PaillierSession, position: ParticipantID, digest: [UInt8]) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/paillier/receipt".utf8) + [0])
        writer.raw(session.id)
        writer.u32(position.rawValue)
        writer.raw(digest)
        return writer.bytes
    }

    /// Whether the member at `position` of `session` signed this receipt.
    public func isValid(in session: PaillierSession) -> Bool {
        guard position.rawValue >= 1, Int(position.rawValue) <= session.roster.count,
            ciphertextDigest.count == SHA256.digestByteCount
        else { return false }
        return session.roster[Int(position.rawValue) - 1].isValidSignature(
            signature, for: Self.message(session: session, position: position, digest: ciphertextDigest))
    }
}

/// A member's side: pack, mask, encrypt, sign the receipt.
public struct MaskedPaillierContributor: Sendable {
    public let session: PaillierSession
    public let position: ParticipantID
    private let signingKey: Ed25519.PrivateKey
    public let encryptor: DJNEncryptor

    public init(
        session: PaillierSession, position: ParticipantID, signingKey: Ed25519.PrivateKey, encryptor: DJNEncryptor
    ) {
        self.session = session
        self.position = position
        self.signingKey = signingKey
        self.encryptor = encryptor
    }

    /// The masked ciphertexts of `vector` and their receipt.
    /// - Parameter exponents: DJN's α for each ciphertext (vectors only); fresh when nil.
    public func contribute(_ vector: ModularVector, exponents: [BigInt]? = nil) throws -> (
        ciphertexts: [PaillierCiphertext], receipt: PaillierReceipt
    ) {
        guard vector.count == session.dimension else {
            throw PaillierSessionError.malformed(
                "a vector of \(vector.count) elements, the session sums \(session.dimension)")
        }
        let plaintexts = try session.packing.pack(vector)
        let masks = try session.mask(for: position, signingKey: signingKey)
        let n = session.publicKey.n
        let ciphertexts = try plaintexts.indices.map { j in
            let masked = (plaintexts[j] + masks[j]).modulo(n)
            if let exponents { return try encryptor.encrypt(residue: masked, exponent: exponents[j]) }
            return try encryptor.encrypt(residue: masked)
        }
        return (
            ciphertexts,
            PaillierReceipt(session: session, position: position, ciphertexts: ciphertexts, signingKey: signingKey)
        )
    }
}

extension PaillierKeyHolder {
    /// Decrypts a session's aggregate — only with a valid receipt from every member, and only
    /// when the session has at least `minimumContributors` members, is under this key, and
    /// names `identity` as its key holder. A partial product decrypts to masked residues, so
    /// the receipts are what make a refusal explicit rather than a release of noise.
    /// - Throws: ``PaillierSessionError``, or ``PaillierError`` for a malformed aggregate.
    public func decrypt(
        _ aggregate: [PaillierCiphertext], session: PaillierSession, receipts: [PaillierReceipt],
        identity: Ed25519.PublicKey
    ) throws -> SecureSumResult {
        guard session.publicKey == publicKey, session.decryptors == .keyHolder(identity) else {
            throw PaillierSessionError.notThisKeyHolder
        }
        try session.checkDecryptable(
            aggregate, receipts: receipts, packing: packing, minimumContributors: minimumContributors)
        return try decrypt(
            EncryptedAggregate(
                ciphertexts: aggregate, dimension: session.dimension,
                contributors: (1...session.memberCount).map { ParticipantID(UInt32($0)) }))
    }
}

/// Why a Paillier session, contribution or decryption was refused. ``code`` names each.
public enum PaillierSessionError: Error, Hashable, Sendable, CustomStringConvertible {
    case malformed(String)
    case tooFewMembers(have: Int, need: Int)
    case notAMember(UInt32)
    case weakMemberKey(position: UInt32)
    case invalidReceipt(position: UInt32)
    case missingReceipt(position: UInt32)
    case notThisKeyHolder

    public var code: String {
        switch self {
        case .malformed: "malformed"
        case .tooFewMembers: "tooFewMembers"
        case .notAMember: "notAMember"
        case .weakMemberKey: "weakMemberKey"
        case .invalidReceipt: "invalidReceipt"
        case .missingReceipt: "missingReceipt"
        case .notThisKeyHolder: "notThisKeyHolder"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let why): "malformed Paillier session: \(why)"
        case .tooFewMembers(let have, let need): "\(have) members; at least \(need) are needed"
        case .notAMember(let position): "the signing key is not the roster's at position \(position)"
        case .weakMemberKey(let position): "the roster key at position \(position) is not a valid curve point"
        case .invalidReceipt(let position): "the receipt of position \(position) is not signed by that member"
        case .missingReceipt(let position): "no receipt from position \(position): every member must have contributed"
        case .notThisKeyHolder: "the session is for another key or another key holder"
        }
    }
}

/// The key holder's signed statement of its public key (`Specs/paillier.md` §6.1): what a
/// participant checks, against the key holder's certificate, before it encrypts anything.
///
///     message     = "veil/v1/paillier/public-key" ‖ 0x00 ‖ LE_4(⌈|n|/8⌉) ‖ n (big-endian)
///     fingerprint = SHA-256(message), in hex
public struct PaillierKeyStatement: Hashable, Sendable {
    public let publicKey: PaillierPublicKey
    public let signature: [UInt8]

    public init(publicKey: PaillierPublicKey, signature: [UInt8]) {
        self.publicKey = publicKey
        self.signature = signature
    }

    /// The key holder signs its key.
    public init(signing publicKey: PaillierPublicKey, with key: Ed25519.PrivateKey) {
        self.init(publicKey: publicKey, signature: key.signature(for: Self.message(publicKey)))
    }

    static func message(_ key: PaillierPublicKey) -> [UInt8] { message(modulus: key.bigEndianBytes) }

    static func message(modulus: [UInt8]) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/paillier/public-key".utf8) + [0])
        writer.u32(UInt32(modulus.count))
        writer.raw(modulus)
        return writer.bytes
    }

    /// Whether `key` signed the statement of a modulus given as its big-endian bytes (no
    /// leading zero): checkable before the modulus is parsed, so that an auditor tests the
    /// primality of no modulus the key holder did not sign.
    public static func isSigned(modulus: [UInt8], signature: [UInt8], by key: Ed25519.PublicKey) -> Bool {
        key.isValidSignature(signature, for: message(modulus: modulus))
    }

    /// The key's fingerprint, which a participant may pin.
    public static func fingerprint(_ key: PaillierPublicKey) -> String { Hex.encode(SHA256.hash(message(key))) }

    public func isSigned(by holder: Ed25519.PublicKey) -> Bool {
        holder.isValidSignature(signature, for: Self.message(publicKey))
    }
}
