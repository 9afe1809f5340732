/// Shamir t-of-n secret sharing of secrets of 1...32 bytes over GF(2^61 − 1).
///
/// The secret is cut into chunks of 7 bytes (the last may be shorter); chunk j, read
/// little-endian, is the constant term s_j of its own random polynomial
/// f_j(x) = s_j + a_j,1·x + … + a_j,t−1·x^(t−1). The share with index x holds f_j(x) for
/// every j. Any t shares interpolate each f_j at 0; fewer reveal nothing about s_j.
/// `Specs/primitives.md` ("Shamir secret sharing") is normative, including the order in
/// which coefficients are drawn from the generator.
public struct ShamirSecretSharing: Hashable, Sendable {
    /// The number of shares that reconstruct: t.
    public let threshold: Int
    /// The number of shares dealt, n; valid indices are 1...n.
    public let shareCount: Int

    /// The largest secret, in bytes.
    public static let maxSecretByteCount = 32
    /// Bytes per chunk: 7 · 8 = 56 bits < 61, so every chunk is a field element.
    public static let chunkByteCount = 7
    /// The largest n: indices are 32-bit.
    public static let maxShareCount = Int(UInt32.max)

    /// Creates a t-of-n scheme.
    /// - Throws: ``ShamirError/invalidThreshold(threshold:shareCount:)`` unless 1 ≤ t ≤ n ≤ 2^32 − 1.
    public init(threshold: Int, shareCount: Int) throws(ShamirError) {
        guard threshold >= 1, threshold <= shareCount, shareCount <= Self.maxShareCount else {
            throw .invalidThreshold(threshold: threshold, shareCount: shareCount)
        }
        self.threshold = threshold
        self.shareCount = shareCount
    }

    /// Deals shares with indices 1...n.
    public func split(_ secret: SecureBytes, using generator: inout some RandomNumberGenerator) throws(ShamirError)
        -> [ShamirShare]
    {
        try split(secret, at: (1...shareCount).map { UInt32($0) }, using: &generator)
    }

    /// Deals shares at chosen indices (in SecAgg+ only a participant's neighbours get one).
    ///
    /// Coefficients are drawn from `generator` chunk by chunk, a_j,1 first; shares come back
    /// in the order of `indices`.
    /// - Throws: ``ShamirError`` for an empty or oversized secret, or indices that are out of
    ///   range, duplicated, or fewer than t.
    public func split(
        _ secret: SecureBytes, at indices: [UInt32], using generator: inout some RandomNumberGenerator
    ) throws(ShamirError) -> [ShamirShare] {
        guard (1...Self.maxSecretByteCount).contains(secret.count) else {
            throw .invalidSecretLength(secret.count)
        }
        try validate(indices)
        guard indices.count >= threshold else { throw .notEnoughShares(have: indices.count, need: threshold) }
        let chunks = Self.chunks(of: secret)
        var values = [[UInt64]](repeating: [UInt64](repeating: 0, count: chunks.count), count: indices.count)
        // Horner evaluation of each chunk's polynomial at every index.
        var coefficients = [UInt64](repeating: 0, count: threshold)
        for (j, chunk) in chunks.enumerated() {
            coefficients[0] = chunk
            for k in 1..<threshold { coefficients[k] = Mersenne61.random(using: &generator) }
            for (i, index) in indices.enumerated() {
                let x = UInt64(index)
                var y: UInt64 = 0
                for k in stride(from: threshold - 1, through: 0, by: -1) {
                    y = Mersenne61.add(Mersenne61.multiply(y, x), coefficients[k])
                }
                values[i][j] = y
            }
        }
        wipe(&coefficients)
        return indices.enumerated().map { i, index in
            defer { wipe(&values[i]) }
            return ShamirShare(index: index, secretByteCount: secret.count, validValues: values[i])
        }
    }

    /// The Lagrange coefficients at 0 for exactly t distinct indices: compute once, reuse for
    /// every secret shared among the same participants.
    /// - Throws: ``ShamirError`` for indices out of range, duplicated, or not exactly t.
    public func lagrangeCoefficients(for indices: [UInt32]) throws(ShamirError) -> LagrangeCoefficients {
        try validate(indices)
        guard indices.count == threshold else {
            if indices.count < threshold { throw .notEnoughShares(have: indices.count, need: threshold) }
            throw .tooManyIndices(have: indices.count, need: threshold)
        }
        return LagrangeCoefficients(indices: indices)
    }

    /// Reconstructs the secret from at least t shares (the t with the smallest indices are used).
    /// - Throws: ``ShamirError`` for fewer than t shares, duplicate or out-of-range indices,
    ///   shares of different secrets' lengths, or shares that interpolate to no valid secret.
    public func reconstruct(_ shares: [ShamirShare]) throws(ShamirError) -> SecureBytes {
        try validate(shares)
        let chosen = shares.sorted { $0.index < $1.index }.prefix(threshold)
        return try combine(Array(chosen), LagrangeCoefficients(indices: chosen.map(\.index)))
    }

    /// Reconstructs with precomputed coefficients; the shares must carry exactly their indices.
    public func reconstruct(_ shares: [ShamirShare], using coefficients: LagrangeCoefficients) throws(ShamirError)
        -> SecureBytes
    {
        try validate(shares)
        guard shares.count == coefficients.indices.count,
            Set(shares.map(\.index)) == Set(coefficients.indices)
        else { throw .coefficientsMismatch }
        return try combine(shares, coefficients)
    }

    private func combine(_ shares: [ShamirShare], _ coefficients: LagrangeCoefficients) throws(ShamirError)
        -> SecureBytes
    {
        let length = shares[0].secretByteCount
        let chunkCount = shares[0].chunkCount
        var sums = [UInt64](repeating: 0, count: chunkCount)
        defer { wipe(&sums) }
        for share in shares {
            let lambda = coefficients.coefficient(for: share.index)
            share.withValues { values in
                for j in 0..<chunkCount { sums[j] = Mersenne61.add(sums[j], Mersenne61.multiply(lambda, values[j])) }
            }
        }
        return try Self.assemble(sums, length: length)
    }

    /// The secret of `length` bytes whose chunks are `chunks` (§9.5 steps 4–5).
    /// - Throws: ``ShamirError/inconsistentShares`` when a chunk is no chunk of a secret.
    static func assemble(_ chunks: [UInt64], length: Int) throws(ShamirError) -> SecureBytes {
        var secret = SecureBytes(zeros: length)
        var corrupt = false
        secret.withUnsafeMutableBytes { out in
            for j in chunks.indices {
                let start = j * chunkByteCount
                let width = min(chunkByteCount, length - start)
                // A chunk of w bytes is below 2^(8w); anything larger means inconsistent shares.
                if chunks[j] >> UInt64(8 * width) != 0 { corrupt = true }
                for b in 0..<width { out[start + b] = UInt8(truncatingIfNeeded: chunks[j] >> UInt64(8 * b)) }
            }
        }
        if corrupt { throw .inconsistentShares }
        return secret
    }

    private func validate(_ indices: [UInt32]) throws(ShamirError) {
        var seen = Set<UInt32>()
        for index in indices {
            guard index >= 1, Int(index) <= shareCount else {
                throw .indexOutOfRange(index: index, shareCount: shareCount)
            }
            guard seen.insert(index).inserted else { throw .duplicateIndex(index) }
        }
    }

    func validate(_ shares: [ShamirShare]) throws(ShamirError) {
        guard let first = shares.first else { throw .notEnoughShares(have: 0, need: threshold) }
        for share in shares where share.secretByteCount != first.secretByteCount {
            throw .inconsistentShareLengths
        }
        try validate(shares.map(\.index))
        guard shares.count >= threshold else { throw .notEnoughShares(have: shares.count, need: threshold) }
    }

    static func chunks(of secret: SecureBytes) -> [UInt64] {
        secret.withUnsafeBytes { bytes in
            stride(from: 0, to: bytes.count, by: chunkByteCount).map { start in
                var value: UInt64 = 0
                for b in (start..<min(start + chunkByteCount, bytes.count)).reversed() {
                    value = value << 8 | UInt64(bytes[b])
                }
                return value
            }
        }
    }

    static func chunkCount(secretByteCount: Int) -> Int { (secretByteCount + chunkByteCount - 1) / chunkByteCount }
}

/// λ_i = Π_{j≠i} x_j / (x_j − x_i) mod p for one set of indices.
public struct LagrangeCoefficients: Hashable, Sendable {
    /// The indices, in the order given.
    public let indices: [UInt32]
    private let values: [UInt64]
    private let position: [UInt32: Int]

    init(indices: [UInt32]) {
        self.indices = indices
        let xs = indices.map(UInt64.init)
        var values = [UInt64](repeating: 0, count: xs.count)
        for i in xs.indices {
            var numerator: UInt64 = 1
            var denominator: UInt64 = 1
            for j in xs.indices where j != i {
                numerator = Mersenne61.multiply(numerator, xs[j])
                denominator = Mersenne61.multiply(denominator, Mersenne61.subtract(xs[j], xs[i]))
            }
            values[i] = Mersenne61.multiply(numerator, Mersenne61.inverse(denominator))
        }
        self.values = values
        self.position = Dictionary(uniqueKeysWithValues: indices.enumerated().map { ($1, $0) })
    }

    /// The coefficient of the share with `index` (which must be one of ``indices``).
    public func coefficient(for index: UInt32) -> UInt64 {
        guard let i = position[index] else { preconditionFailure("share index \(index) has no coefficient here") }
        return values[i]
    }
}

/// One share: an index and one field element per 7-byte chunk of the secret.
public struct ShamirShare: Sendable, Equatable, CustomStringConvertible {
    /// The x-coordinate, ≥ 1.
    public let index: UInt32
    /// The length of the shared secret, 1...32 bytes.
    public let secretByteCount: Int
    /// The chunk values f_j(index), 8 bytes little-endian each.
    private let values: SecureBytes

    /// The number of field elements the share carries.
    public var chunkCount: Int { ShamirSecretSharing.chunkCount(secretByteCount: secretByteCount) }

    /// Bytes in the encoding: 4 (index) + 1 (length) + 8 per chunk.
    public static func encodedByteCount(secretByteCount: Int) -> Int {
        5 + 8 * ShamirSecretSharing.chunkCount(secretByteCount: secretByteCount)
    }

    init(index: UInt32, secretByteCount: Int, validValues: [UInt64]) {
        self.index = index
        self.secretByteCount = secretByteCount
        var bytes = SecureBytes(zeros: 8 * validValues.count)
        bytes.withUnsafeMutableBytes { out in
            for (j, v) in validValues.enumerated() {
                out.storeBytes(of: v.littleEndian, toByteOffset: 8 * j, as: UInt64.self)
            }
        }
        values = bytes
    }

    /// Decodes `index (u32 LE) ‖ secret length (u8) ‖ values (u64 LE each)`.
    /// - Throws: ``ShamirError/malformedShare(_:)`` when the length, the secret length, the
    ///   index or any value is out of range.
    public init(encoded: SecureBytes) throws(ShamirError) {
        guard encoded.count >= 5 else {
            throw .malformedShare("share of \(encoded.count) bytes is shorter than its header")
        }
        let (index, length) = encoded.withUnsafeBytes { bytes in
            (UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)), Int(bytes[4]))
        }
        guard index >= 1 else { throw .malformedShare("share index 0 is reserved for the secret") }
        guard (1...ShamirSecretSharing.maxSecretByteCount).contains(length) else {
            throw .malformedShare("secret length \(length) is outside 1...\(ShamirSecretSharing.maxSecretByteCount)")
        }
        guard encoded.count == Self.encodedByteCount(secretByteCount: length) else {
            throw .malformedShare("share of \(encoded.count) bytes does not fit a \(length)-byte secret")
        }
        let values = encoded.slice(5..<encoded.count)
        let inRange = values.withUnsafeBytes { bytes in
            (0..<(bytes.count / 8)).allSatisfy {
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)) < Mersenne61.p
            }
        }
        guard inRange else { throw .malformedShare("a share value is not below 2^61 - 1") }
        self.index = index
        self.secretByteCount = length
        self.values = values
    }

    /// The encoding read by ``init(encoded:)``; a secret, because t of them reveal the secret.
    public var encoded: SecureBytes {
        var header = SecureBytes(zeros: 5)
        header.withUnsafeMutableBytes { out in
            out.storeBytes(of: index.littleEndian, as: UInt32.self)
            out[4] = UInt8(secretByteCount)
        }
        return header.appending(values)
    }

    func withValues<R>(_ body: (UnsafeBufferPointer<UInt64>) throws -> R) rethrows -> R {
        try values.withUnsafeBytes { bytes in
            // Copy out little-endian words; on little-endian hosts this is the identity.
            var words = (0..<(bytes.count / 8)).map {
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))
            }
            defer { wipe(&words) }
            return try words.withUnsafeBufferPointer(body)
        }
    }

    /// This share with chunk `chunk`'s value moved by `delta` (mod p): well formed, of the same
    /// index and length, but off its polynomial. For tests and forged vectors (a participant
    /// revealing a wrong share); no protocol step calls it.
    public func movedOffPolynomial(chunk: Int = 0, by delta: UInt64 = 1) -> ShamirShare {
        var words = withValues { Array($0) }
        defer { wipe(&words) }
        words[chunk] = Mersenne61.add(words[chunk], delta % Mersenne61.p)
        return ShamirShare(index: index, secretByteCount: secretByteCount, validValues: words)
    }

    /// Names the index only; the values are secret.
    public var description: String { "ShamirShare(index: \(index), secret: \(secretByteCount) bytes, redacted)" }
}

/// Why sharing or reconstruction was refused.
public enum ShamirError: Error, Hashable, Sendable, CustomStringConvertible {
    /// t < 1, t > n, or n beyond 2^32 − 1.
    case invalidThreshold(threshold: Int, shareCount: Int)
    /// The secret is empty or longer than 32 bytes.
    case invalidSecretLength(Int)
    /// Fewer than t shares (or indices).
    case notEnoughShares(have: Int, need: Int)
    /// More indices than t were given for one coefficient set.
    case tooManyIndices(have: Int, need: Int)
    /// An index is 0 or above n.
    case indexOutOfRange(index: UInt32, shareCount: Int)
    /// Two shares carry the same index.
    case duplicateIndex(UInt32)
    /// Shares of secrets of different lengths were mixed.
    case inconsistentShareLengths
    /// The coefficients were computed for another set of indices.
    case coefficientsMismatch
    /// The shares interpolate to a value that no secret produces: at least one is wrong.
    case inconsistentShares
    /// An encoded share does not parse.
    case malformedShare(String)
    /// No polynomial of degree < t agrees with all but `correctable` of the shares: more
    /// shares are wrong than decoding can set aside.
    case tooManyWrongShares(correctable: Int)

    public var description: String {
        switch self {
        case .invalidThreshold(let t, let n): "threshold \(t) of \(n) shares: need 1 ≤ t ≤ n ≤ 2^32 - 1"
        case .invalidSecretLength(let n): "secret of \(n) bytes: must be 1...\(ShamirSecretSharing.maxSecretByteCount)"
        case .notEnoughShares(let have, let need): "\(have) shares given, \(need) needed"
        case .tooManyIndices(let have, let need): "\(have) indices given, exactly \(need) needed"
        case .indexOutOfRange(let index, let n): "share index \(index) is outside 1...\(n)"
        case .duplicateIndex(let index): "share index \(index) appears twice"
        case .inconsistentShareLengths: "shares of secrets of different lengths cannot be combined"
        case .coefficientsMismatch: "the Lagrange coefficients were computed for other indices"
        case .inconsistentShares: "the shares are inconsistent: at least one of them is wrong"
        case .malformedShare(let why): "malformed share: \(why)"
        case .tooManyWrongShares(let e): "more than \(e) of the shares are wrong: too many to correct"
        }
    }
}

@inline(__always)
func wipe(_ words: inout [UInt64]) {
    words.withUnsafeMutableBytes { if let base = $0.baseAddress { memzero(base, $0.count) } }
}
