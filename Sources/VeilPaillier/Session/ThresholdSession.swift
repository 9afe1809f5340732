import VeilCore
import VeilCrypto

/// Who may decrypt a session's aggregate (`Specs/paillier.md` §6.1, §6.3).
public enum PaillierDecryptors: Hashable, Sendable {
    /// One key holder, holding the whole secret key.
    case keyHolder(Ed25519.PublicKey)
    /// t of ℓ holders of a dealt threshold key, each with its share.
    case threshold(ThresholdKeyHolders)
}

/// A threshold key and the signing keys of (some of) its holders, by holder number: the
/// holders a session names. Every one of them has signed that it holds its share of this key
/// (``ThresholdShareStatement``); at least t are named, or nothing could be decrypted.
public struct ThresholdKeyHolders: Hashable, Sendable {
    public let key: ThresholdPaillierPublicKey
    /// Holder number (1…ℓ) → its Ed25519 signing key.
    public let signingKeys: [Int: Ed25519.PublicKey]

    public init(key: ThresholdPaillierPublicKey, signingKeys: [Int: Ed25519.PublicKey]) {
        self.key = key
        self.signingKeys = signingKeys
    }

    func check(for publicKey: PaillierPublicKey) throws(PaillierSessionError) {
        guard key.hasIntersectingQuorums else {
            throw .malformed(
                "a \(key.threshold)-of-\(key.holders) key: two quorums of holders may be disjoint (2t ≤ ℓ), so each holder's once-per-round record would not stop a second sum of a round"
            )
        }
        guard key.publicKey == publicKey, key.verification != nil else {
            throw .malformed("the threshold key is not the session's key, or has no verification keys")
        }
        guard signingKeys.count >= key.threshold, signingKeys.keys.allSatisfy({ (1...key.holders).contains($0) })
        else {
            throw .malformed(
                "\(signingKeys.count) threshold holders named (numbers \(signingKeys.keys.sorted())); a \(key.threshold)-of-\(key.holders) key needs at least \(key.threshold), numbered 1…\(key.holders)"
            )
        }
        guard Set(signingKeys.values).count == signingKeys.count else {
            throw .malformed("a signing key holds two shares of the threshold key")
        }
    }
}

extension ThresholdPaillierPublicKey {
    /// What the holders sign and sessions bind (`Specs/paillier.md` §6.3), W = ⌈(s + 1)·|n|/8⌉:
    ///
    ///     "veil/v1/paillier/threshold-key" ‖ 0x00 ‖ LE_4(s) ‖ LE_4(t) ‖ LE_4(ℓ) ‖ LE_4(⌈|n|/8⌉) ‖ n
    ///     ‖ LE_4(W) ‖ v ‖ v_1 ‖ … ‖ v_ℓ        (n in ⌈|n|/8⌉ bytes, each v in W bytes, big-endian)
    ///
    /// Empty for a key without verification keys, which no session runs under.
    public var canonicalEncoding: [UInt8] {
        guard let verification else { return [] }
        let width = publicKey.ciphertextByteCount
        var writer = ByteWriter()
        writer.raw(Array(Self.encodingDomain.utf8) + [0])
        writer.u32(UInt32(publicKey.s))
        writer.u32(UInt32(threshold))
        writer.u32(UInt32(holders))
        writer.u32(UInt32(publicKey.modulusByteCount))
        writer.raw(publicKey.bigEndianBytes)
        writer.u32(UInt32(width))
        // Every verification key is below n^(s+1) (checked on wrapping), so it fits W.
        for value in [verification.v] + verification.holderKeys { writer.raw(try! value.bigEndianBytes(width: width)) }
        return writer.bytes
    }

    static let encodingDomain = "veil/v1/paillier/threshold-key"

    /// Whether any two sets of t holders share one (2t > ℓ): what makes each holder's
    /// once-per-round record bind the whole key (`Specs/paillier.md` §6.3). Sessions require it.
    public var hasIntersectingQuorums: Bool { 2 * threshold > holders }

    /// SHA-256 of ``canonicalEncoding``, in hex: what a participant pins.
    public var fingerprint: String { Hex.encode(SHA256.hash(canonicalEncoding)) }

    /// Reads ``canonicalEncoding`` back, with every check of ``init(publicKey:threshold:holders:verification:)``.
    /// - Throws: ``PaillierError`` for any other bytes.
    public init(canonicalEncoding bytes: [UInt8]) throws(PaillierError) {
        var offset = 0
        func take(_ count: Int) throws(PaillierError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - offset >= count else {
                throw .malformed("a threshold key encoding cut short")
            }
            defer { offset += count }
            return bytes[offset..<offset + count]
        }
        func u32() throws(PaillierError) -> Int {
            Int(try take(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        guard try take(Self.encodingDomain.utf8.count + 1).elementsEqual(Array(Self.encodingDomain.utf8) + [0]) else {
            throw .malformed("not a threshold key encoding")
        }
        let s = try u32()
        let t = try u32()
        let l = try u32()
        let modulusBytes = try u32()
        guard (1...1024).contains(modulusBytes), (1...Self.maxHolders).contains(l) else {
            throw .malformed("a threshold key of \(modulusBytes) modulus bytes and \(l) holders")
        }
        let modulus = try take(modulusBytes)
        guard modulus.first != 0 else { throw .malformed("n has a leading zero byte") }
        let publicKey = try PaillierPublicKey(n: BigInt(bigEndian: modulus), s: s)
        let width = try u32()
        guard width == publicKey.ciphertextByteCount else {
            throw .malformed("verification keys of \(width) bytes, not \(publicKey.ciphertextByteCount)")
        }
        var values: [BigInt] = []
        for _ in 0...l { values.append(BigInt(bigEndian: try take(width))) }
        guard offset == bytes.count else { throw .malformed("bytes after the threshold key") }
        try self.init(
            publicKey: publicKey, threshold: t, holders: l,
            verification: ThresholdVerificationKeys(v: values[0], holderKeys: Array(values.dropFirst())))
    }

    /// The fixed width of a partial decryption on the wire: value (W bytes) ‖ challenge (32)
    /// ‖ response (⌈(B + 257)/8⌉, B = ``proofRandomnessBits``), each big-endian.
    public var partialByteCount: Int { publicKey.ciphertextByteCount + 32 + (proofRandomnessBits + 257 + 7) / 8 }

    /// A proved partial decryption in its wire form.
    public func encode(_ partial: PartialDecryption) throws(PaillierError) -> [UInt8] {
        guard let proof = partial.proof, publicKey.isInCiphertextRange(partial.value) else {
            throw .invalidPartialDecryption("only a proved partial in range has a wire form")
        }
        do {
            return try partial.value.bigEndianBytes(width: publicKey.ciphertextByteCount)
                + proof.challenge.bigEndianBytes(width: 32)
                + proof.response.bigEndianBytes(width: (proofRandomnessBits + 257 + 7) / 8)
        } catch { throw .invalidPartialDecryption("a proof wider than its bounds") }
    }

    /// Reads a partial of holder `holder` for `c` from its wire form; whether it is correct is
    /// ``verify(_:of:)``'s to say.
    public func decodePartial(_ bytes: [UInt8], holder: Int, of c: PaillierCiphertext) throws(PaillierError)
        -> PartialDecryption
    {
        let width = publicKey.ciphertextByteCount
        guard bytes.count == partialByteCount else {
            throw .invalidPartialDecryption("a partial decryption is \(partialByteCount) bytes, got \(bytes.count)")
        }
        return PartialDecryption(
            holder: holder, ciphertext: c.value, value: BigInt(bigEndian: bytes[0..<width]),
            proof: PartialDecryptionProof(
                challenge: BigInt(bigEndian: bytes[width..<width + 32]),
                response: BigInt(bigEndian: bytes[(width + 32)...])))
    }
}

/// A threshold holder's signed statement that it holds share `holder` of `key`
/// (`Specs/paillier.md` §6.3): what a participant checks, against the holder's certificate,
/// before it encrypts under a threshold key.
///
///     message = "veil/v1/paillier/threshold-share" ‖ 0x00 ‖ SHA-256(key encoding) ‖ LE_4(holder)
public struct ThresholdShareStatement: Hashable, Sendable {
    public let key: ThresholdPaillierPublicKey
    public let holder: Int
    public let signature: [UInt8]

    public init(key: ThresholdPaillierPublicKey, holder: Int, signature: [UInt8]) {
        self.key = key
        self.holder = holder
        self.signature = signature
    }

    /// The holder of `share` signs it.
    public init(signing share: ThresholdKeyShare, with signingKey: Ed25519.PrivateKey) {
        self.init(
            key: share.thresholdKey, holder: share.holder,
            signature: signingKey.signature(for: Self.message(share.thresholdKey, holder: share.holder)))
    }

    static func message(_ key: ThresholdPaillierPublicKey, holder: Int) -> [UInt8] {
        message(encoding: key.canonicalEncoding, holder: holder)
    }

    static func message(encoding: [UInt8], holder: Int) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/paillier/threshold-share".utf8) + [0])
        writer.raw(SHA256.hash(encoding))
        writer.u32(UInt32(holder))
        return writer.bytes
    }

    /// Whether `signingKey` signed the statement for a key given as its canonical encoding:
    /// checkable before the key is parsed, so that an auditor tests no modulus no holder signed.
    public static func isSigned(encoding: [UInt8], holder: Int, signature: [UInt8], by signingKey: Ed25519.PublicKey)
        -> Bool
    {
        // A number from a hostile record, outside 1…64, is no holder's (review, helper-22: it trapped).
        (1...ThresholdPaillierPublicKey.maxHolders).contains(holder)
            && signingKey.isValidSignature(signature, for: message(encoding: encoding, holder: holder))
    }

    public func isSigned(by signingKey: Ed25519.PublicKey) -> Bool {
        (1...key.holders).contains(holder) && key.verification != nil
            && signingKey.isValidSignature(signature, for: Self.message(key, holder: holder))
    }
}

extension PaillierSession {
    /// The threshold key and holders, for a threshold session.
    public var thresholdHolders: ThresholdKeyHolders? {
        if case .threshold(let holders) = decryptors { return holders }
        return nil
    }

    /// What threshold holder `holder` signs when it releases its partial decryptions of an
    /// aggregate: "veil/v1/paillier/partially-decrypted" ‖ 0x00 ‖ session id ‖ SHA-256 of the
    /// aggregate's ciphertexts ‖ LE_4(holder) ‖ SHA-256(partial 1 ‖ … ‖ partial P), each in its
    /// wire form (``ThresholdPaillierPublicKey/encode(_:)``).
    public func partialDecryptionResult(aggregateDigest: [UInt8], holder: Int, partials: [[UInt8]]) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("veil/v1/paillier/partially-decrypted".utf8) + [0])
        writer.raw(id)
        writer.raw(aggregateDigest)
        writer.u32(UInt32(holder))
        writer.raw(SHA256.hash(partials.flatMap { $0 }))
        return writer.bytes
    }

    /// Combines the proved partial decryptions of the aggregate from the holders in `answers`
    /// (holder number → one partial per ciphertext, already decoded) into the session's sum.
    /// A holder any of whose partials fails its proof is left out entirely and named in
    /// `rejected`.
    /// - Throws: ``PaillierError/incorrectPartialDecryptions(holders:)`` or
    ///   ``PaillierError/notEnoughPartialDecryptions(have:need:)`` when fewer than t holders'
    ///   partials are all correct.
    public func combine(_ answers: [Int: [PartialDecryption]], of aggregate: [PaillierCiphertext]) throws -> (
        sum: ModularVector, rejected: [Int]
    ) {
        guard let holders = thresholdHolders else { throw PaillierSessionError.notThisKeyHolder }
        let key = holders.key
        guard aggregate.count == plaintextCount else {
            throw PaillierSessionError.malformed(
                "\(aggregate.count) ciphertexts; the session's packing takes \(plaintextCount)")
        }
        // Each proof alone (two exponentiations each, on every core): a holder is correct only
        // when every one of its partials is — one wrong partial would corrupt a slot of the sum.
        let numbers = answers.keys.sorted()
        let verdicts = try numbers.parallelMap { number in
            let partials = answers[number]!
            return holders.signingKeys[number] != nil && partials.count == aggregate.count
                && zip(partials, aggregate).allSatisfy { $0.holder == number && key.verify($0, of: $1) }
        }
        let correct = zip(numbers, verdicts).filter(\.1).map(\.0)
        let rejected = zip(numbers, verdicts).filter { !$0.1 }.map(\.0)
        guard correct.count >= key.threshold else {
            if rejected.isEmpty {
                throw PaillierError.notEnoughPartialDecryptions(have: correct.count, need: key.threshold)
            }
            throw PaillierError.incorrectPartialDecryptions(holders: rejected)
        }
        let chosen = Array(correct.prefix(key.threshold))
        let plaintexts = try Array(aggregate.indices).parallelMap { j in
            try key.combine(chosen.map { answers[$0]![j] }, of: aggregate[j])
        }
        return (try packing.unpack(plaintexts, dimension: dimension, addends: memberCount), rejected)
    }
}

/// A threshold key holder's side of a session: the same checks as the one key holder's
/// (every member's receipt, enough members, the holder's packing), then a proved partial
/// decryption of each ciphertext — which is useless to anyone without t − 1 others.
public struct ThresholdSessionHolder: Sendable {
    public let share: ThresholdKeyShare
    public let packing: PaillierPacking
    public let minimumContributors: Int

    public init(share: ThresholdKeyShare, packing: PaillierPacking, minimumContributors: Int) {
        self.share = share
        self.packing = packing
        self.minimumContributors = max(1, minimumContributors)
    }

    /// The proved partial decryptions of `aggregate`, in the wire form, or a refusal.
    /// - Throws: ``PaillierSessionError`` when the session does not name `identity` as this
    ///   share's holder, or a check fails; ``PaillierError`` for a malformed aggregate.
    /// - Parameter proofRandomness: each proof's r (vectors only; secret); fresh when nil.
    public func partiallyDecrypt(
        _ aggregate: [PaillierCiphertext], session: PaillierSession, receipts: [PaillierReceipt],
        identity: Ed25519.PublicKey, proofRandomness: [BigInt]? = nil
    ) throws -> [[UInt8]] {
        guard let holders = session.thresholdHolders, holders.key == share.thresholdKey,
            holders.signingKeys[share.holder] == identity
        else { throw PaillierSessionError.notThisKeyHolder }
        try session.checkDecryptable(
            aggregate, receipts: receipts, packing: packing, minimumContributors: minimumContributors)
        let share = share
        if let proofRandomness {
            guard proofRandomness.count == aggregate.count else {
                throw PaillierSessionError.malformed(
                    "\(proofRandomness.count) proof randomisers for \(aggregate.count) ciphertexts")
            }
            return try zip(aggregate, proofRandomness).map { c, r in
                try share.thresholdKey.encode(try share.partiallyDecrypt(c, proofRandomness: r))
            }
        }
        return try aggregate.parallelMap { c in
            try share.thresholdKey.encode(try share.partiallyDecrypt(c))
        }
    }
}
