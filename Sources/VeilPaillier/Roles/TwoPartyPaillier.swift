import VeilCore

/// The aggregator of the two-party mode: it holds only the public key, receives each
/// participant's packed ciphertexts, multiplies them together, and hands the aggregate to
/// the key holder. It can neither read a contribution nor the sum.
public struct PaillierAggregator: Sendable {
    public let publicKey: PaillierPublicKey
    public let packing: PaillierPacking
    public let dimension: Int
    /// Encrypts the zeros that re-randomise the aggregate.
    private let rerandomizer: DJNEncryptor?
    private var running: [PaillierCiphertext]
    public private(set) var contributors: [ParticipantID] = []

    /// - Parameter rerandomizer: a DJN encryptor for the key, to re-randomise the aggregate
    ///   cheaply (by E(0)); without one, `r^n` is used.
    public init(
        publicKey: PaillierPublicKey, packing: PaillierPacking, dimension: Int, rerandomizer: DJNEncryptor? = nil
    ) {
        self.publicKey = publicKey
        self.packing = packing
        self.dimension = dimension
        self.rerandomizer = rerandomizer
        running = Array(repeating: publicKey.zero, count: packing.plaintextCount(dimension: dimension))
    }

    /// Folds in one participant's ciphertexts.
    /// - Throws: ``PaillierError`` for a second contribution from the same participant, the
    ///   wrong number of ciphertexts, ciphertexts of another key, or more than K addends.
    public mutating func add(_ ciphertexts: [PaillierCiphertext], from participant: ParticipantID) throws(PaillierError)
    {
        guard !contributors.contains(participant) else {
            throw .malformed("participant \(participant) contributed twice")
        }
        guard ciphertexts.count == running.count else {
            throw .malformed("\(ciphertexts.count) ciphertexts, expected \(running.count)")
        }
        guard contributors.count < packing.maxAddends else {
            throw .tooManyAddends(have: contributors.count + 1, max: packing.maxAddends)
        }
        for (i, c) in ciphertexts.enumerated() { running[i] = try publicKey.add(running[i], c) }
        contributors.append(participant)
    }

    /// The aggregate, re-randomised so that it cannot be linked to any one contribution.
    public func aggregate() throws(PaillierError) -> EncryptedAggregate {
        EncryptedAggregate(
            ciphertexts: try running.map { c throws(PaillierError) in try publicKey.rerandomize(c) },
            dimension: dimension,
            contributors: contributors)
    }

    /// The aggregate re-randomised by r_j^n for the given r_j ∈ Z*_n, one per ciphertext: a
    /// coordinator that publishes them in its audit record lets anyone check that the aggregate
    /// is the product of the contributions (`Specs/audit.md` §7.3).
    /// - Throws: ``PaillierError`` for a count that is not the aggregate's, or an r outside Z*_n.
    public func aggregate(rerandomizedBy randomness: [BigInt]) throws(PaillierError) -> EncryptedAggregate {
        guard randomness.count == running.count else {
            throw .malformed("\(randomness.count) re-randomisers for \(running.count) ciphertexts")
        }
        var ciphertexts: [PaillierCiphertext] = []
        for (c, r) in zip(running, randomness) { ciphertexts.append(try publicKey.rerandomize(c, with: r)) }
        return EncryptedAggregate(ciphertexts: ciphertexts, dimension: dimension, contributors: contributors)
    }

    /// Fresh re-randomisers for ``aggregate(rerandomizedBy:)``: uniform in Z*_n.
    public func freshRerandomizers() -> [BigInt] { running.map { _ in publicKey.freshRandomness() } }
}

/// What the aggregator sends the key holder: ciphertexts of the packed sum, and whose they are.
public struct EncryptedAggregate: Hashable, Sendable {
    public let ciphertexts: [PaillierCiphertext]
    /// d, the length of the packed vectors.
    public let dimension: Int
    public let contributors: [ParticipantID]

    public init(ciphertexts: [PaillierCiphertext], dimension: Int, contributors: [ParticipantID]) {
        self.ciphertexts = ciphertexts
        self.dimension = dimension
        self.contributors = contributors
    }
}

/// The key holder of the two-party mode: it decrypts aggregates, never individual
/// contributions — it refuses aggregates of fewer than `minimumContributors` participants.
/// (It cannot verify the count: the mode rests on the aggregator and the key holder not
/// colluding, `Specs/paillier.md`.)
public struct PaillierKeyHolder: Sendable {
    private let privateKey: PaillierPrivateKey
    public let packing: PaillierPacking
    public let minimumContributors: Int

    public init(privateKey: PaillierPrivateKey, packing: PaillierPacking, minimumContributors: Int) {
        self.privateKey = privateKey
        self.packing = packing
        self.minimumContributors = max(1, minimumContributors)
    }

    public var publicKey: PaillierPublicKey { privateKey.publicKey }

    /// Decrypts and unpacks the sum.
    /// - Throws: ``SecureSumError/tooFewSurvivors(_:)`` below the minimum, ``PaillierError`` otherwise.
    public func decrypt(_ aggregate: EncryptedAggregate) throws -> SecureSumResult {
        guard aggregate.contributors.count >= minimumContributors else {
            throw SecureSumError.tooFewSurvivors(
                "\(aggregate.contributors.count) contributions, the key holder decrypts sums of at least \(minimumContributors)"
            )
        }
        let key = privateKey
        let plaintexts = try aggregate.ciphertexts.parallelMap { try key.decrypt($0) }
        let sum = try packing.unpack(plaintexts, dimension: aggregate.dimension, addends: aggregate.contributors.count)
        return SecureSumResult(sum: sum, survivors: aggregate.contributors)
    }
}

/// A participant's side: pack and encrypt its vector.
public struct PaillierContributor: Sendable {
    public let encryptor: DJNEncryptor
    public let packing: PaillierPacking

    public init(encryptor: DJNEncryptor, packing: PaillierPacking) {
        self.encryptor = encryptor
        self.packing = packing
    }

    public func encrypt(_ vector: ModularVector) throws(PaillierError) -> [PaillierCiphertext] {
        try packing.pack(vector).map { m throws(PaillierError) in try encryptor.encrypt(residue: m) }
    }
}
