import VeilCore
import VeilCrypto

/// The Paillier backend of ``SecureSum``: participants pack and encrypt their vectors, an
/// aggregator multiplies the ciphertexts, and whoever holds the key — a separate key holder,
/// or t of ℓ threshold key holders — decrypts only the aggregate. A dropout is a missing
/// ciphertext.
public struct PaillierSecureSum: SecureSum {
    /// Who decrypts.
    public enum Decryption: Sendable {
        /// One key holder, separate from the aggregator, that decrypts sums of at least this many.
        case keyHolder(minimumContributors: Int)
        /// The key split t of ℓ by a trusted dealer; the aggregator combines t partial decryptions.
        case threshold(threshold: Int, holders: Int)
    }

    public let packing: PaillierPacking
    public let decryption: Decryption
    /// The probability that a participant's ciphertexts never arrive.
    public let dropoutProbability: Double
    private let contributor: PaillierContributor
    private let keyHolder: PaillierKeyHolder?
    private let thresholdShares: [ThresholdKeyShare]
    private var dropouts: ChaCha20Generator

    public var name: String { packing.degree == 1 ? "paillier" : "damgard-jurik-\(packing.degree)" }
    public var hidesIndividualContributions: Bool { true }

    /// The packed ciphertexts, (s + 1)·|n|/8 bytes each, in two exchanges (the key and
    /// round, then the ciphertexts).
    public func uploadCost(elements: Int, bitWidth: BitWidth, cohort: Int) -> UploadCost {
        let ciphertextBytes = (packing.degree + 1) * ((packing.keyBits + 7) / 8)
        return UploadCost(bytes: packing.plaintextCount(dimension: elements) * ciphertextBytes, exchanges: 2)
    }

    /// Generates the keys and prepares the roles.
    /// - Parameters:
    ///   - keyBits: |n|: 2048 or 3072 in production; 512 or more for tests.
    ///   - s: Damgård–Jurik's s, 1…4 (1 is Paillier): plaintexts mod n^s, ciphertexts mod n^(s+1).
    ///   - bitWidth: b of the vectors to sum.
    ///   - maxAddends: K, the most participants per round (the packing headroom).
    ///   - decryption: who decrypts.
    ///   - dropoutProbability: simulated loss of a participant's ciphertexts.
    ///   - seed: the seed of the simulated dropouts.
    public init(
        keyBits: Int, s: Int = 1, bitWidth: BitWidth, maxAddends: Int, decryption: Decryption,
        dropoutProbability: Double = 0, seed: UInt64 = 0
    ) throws(PaillierError) {
        packing = try PaillierPacking(bitWidth: bitWidth, maxAddends: maxAddends, keyBits: keyBits, degree: s)
        self.decryption = decryption
        self.dropoutProbability = dropoutProbability
        dropouts = try! ChaCha20Generator(  // a 32-byte seed by construction
            publicSeed: withUnsafeBytes(of: seed.littleEndian) { Array($0) } + [UInt8](repeating: 0, count: 24))
        switch decryption {
        case .keyHolder(let minimum):
            let key = try PaillierPrivateKey.generate(bits: keyBits, s: s)
            keyHolder = PaillierKeyHolder(privateKey: key, packing: packing, minimumContributors: minimum)
            thresholdShares = []
            contributor = PaillierContributor(
                encryptor: DJNEncryptor(publicKey: key.publicKey, precomputeTable: true), packing: packing)
        case .threshold(let t, let l):
            let (publicKey, shares) = try ThresholdPaillierDealer.deal(bits: keyBits, threshold: t, holders: l, s: s)
            keyHolder = nil
            thresholdShares = shares
            contributor = PaillierContributor(
                encryptor: DJNEncryptor(publicKey: publicKey.publicKey, precomputeTable: true), packing: packing)
        }
    }

    public mutating func sum(_ contributions: [ParticipantID: ModularVector], round: Int) throws -> SecureSumResult {
        guard let dimension = contributions.values.first?.count else { throw SecureSumError.noContributions }
        var aggregator = PaillierAggregator(
            publicKey: contributor.encryptor.publicKey, packing: packing, dimension: dimension)
        var arriving: [(ParticipantID, ModularVector)] = []
        for (id, vector) in contributions.sorted(by: { $0.key < $1.key }) {
            if dropoutProbability > 0, Double(dropouts.next() >> 11) * 0x1p-53 < dropoutProbability { continue }
            arriving.append((id, vector))
        }
        // Participants encrypt independently: in a simulation, on every core.
        let contributor = contributor
        let encrypted = try arriving.map { $0.1 }.parallelMap { try contributor.encrypt($0) }
        for ((id, _), ciphertexts) in zip(arriving, encrypted) { try aggregator.add(ciphertexts, from: id) }
        let aggregate = try aggregator.aggregate()
        switch decryption {
        case .keyHolder:
            return try keyHolder!.decrypt(aggregate)  // set for this mode
        case .threshold:
            guard !aggregate.contributors.isEmpty else {
                throw SecureSumError.tooFewSurvivors("every participant dropped out")
            }
            let key = thresholdShares[0].thresholdKey
            let holders = thresholdShares.prefix(key.threshold)
            let plaintexts = try aggregate.ciphertexts.parallelMap { c in
                try key.combine(try holders.map { try $0.partiallyDecrypt(c) }, of: c)
            }
            return SecureSumResult(
                sum: try packing.unpack(plaintexts, dimension: dimension, addends: aggregate.contributors.count),
                survivors: aggregate.contributors)
        }
    }
}
