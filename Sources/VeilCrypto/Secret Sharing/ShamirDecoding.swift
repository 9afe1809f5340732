/// Reconstruction that survives wrong shares: Reed–Solomon decoding of Shamir shares.
///
/// Shamir shares of one chunk are a Reed–Solomon codeword: the values of a polynomial of
/// degree < t at N distinct points. With N shares, the polynomial is the only one of degree
/// < t that agrees with at least N − e of them, for e = ⌊(N − t)/2⌋: two such polynomials
/// would agree on at least N − 2e ≥ t points, hence be equal. So up to e wrong shares are
/// found and set aside, whoever changed them, and the secret is still recovered. Decoding
/// is Berlekamp–Welch (`Specs/primitives.md` §9.6): the result is that unique polynomial,
/// whatever algorithm finds it.
extension ShamirSecretSharing {
    /// A secret decoded from shares of which some may be wrong.
    public struct Decoding: Sendable {
        /// The secret.
        public let secret: SecureBytes
        /// The indices of the shares off the polynomial in at least one chunk, ascending.
        public let wrongIndices: [UInt32]
    }

    /// The most wrong shares that `count` shares can correct: ⌊(count − t)/2⌋.
    public func correctableErrors(among count: Int) -> Int { max(0, (count - threshold) / 2) }

    /// Decodes the secret from N ≥ t shares, of which up to ⌊(N − t)/2⌋ may be wrong.
    ///
    /// Checks as ``reconstruct(_:)`` does (lengths, indices, at least t shares); then, chunk
    /// by chunk, finds the polynomial of degree < t that agrees with at least N − e shares.
    /// - Throws: ``ShamirError/tooManyWrongShares(correctable:)`` when no such polynomial
    ///   exists (more than e shares are wrong), ``ShamirError/inconsistentShares`` when its
    ///   constant term is no chunk of a secret, and the checks' errors.
    public func decode(_ shares: [ShamirShare]) throws(ShamirError) -> Decoding {
        try validate(shares)  // the checks of reconstruction, in the same order
        let sorted = shares.sorted { $0.index < $1.index }
        let xs = sorted.map { UInt64($0.index) }
        let errors = correctableErrors(among: sorted.count)
        let length = sorted[0].secretByteCount
        let chunkCount = sorted[0].chunkCount
        var columns = sorted.map { share in share.withValues { Array($0) } }
        defer { for i in columns.indices { wipe(&columns[i]) } }
        var wrong: Set<UInt32> = []
        var constants = [UInt64](repeating: 0, count: chunkCount)
        defer { wipe(&constants) }
        for j in 0..<chunkCount {
            var ys = columns.map { $0[j] }
            defer { wipe(&ys) }
            guard var polynomial = Self.berlekampWelch(xs: xs, ys: ys, degreeBound: threshold, errors: errors) else {
                throw .tooManyWrongShares(correctable: errors)
            }
            defer { wipe(&polynomial) }
            var off = 0
            for (i, x) in xs.enumerated() where Self.evaluate(polynomial, at: x) != ys[i] {
                wrong.insert(UInt32(x))
                off += 1
            }
            guard off <= errors else { throw .tooManyWrongShares(correctable: errors) }
            constants[j] = polynomial[0]
        }
        return Decoding(secret: try Self.assemble(constants, length: length), wrongIndices: wrong.sorted())
    }

    /// The coefficients (constant first) of the polynomial P of degree < `degreeBound` that
    /// agrees with all but at most `errors` of the points, or nil when none does.
    ///
    /// Berlekamp–Welch: find E monic of degree `errors` and Q of degree < `degreeBound` +
    /// `errors` with Q(x_i) = y_i · E(x_i) for every i — a linear system in the t + 2e
    /// unknown coefficients, solvable whenever P exists (E vanishing on the wrong points) —
    /// then P = Q / E, which must divide exactly.
    static func berlekampWelch(xs: [UInt64], ys: [UInt64], degreeBound t: Int, errors e: Int) -> [UInt64]? {
        let q = t + e  // coefficients of Q
        let unknowns = q + e
        // Row i: Σ_k Q_k x^k − y Σ_{k<e} E_k x^k = y x^e.
        var rows: [[UInt64]] = xs.indices.map { i in
            var row = [UInt64](repeating: 0, count: unknowns + 1)
            var power: UInt64 = 1
            for k in 0..<max(q, e + 1) {
                if k < q { row[k] = power }
                if k < e { row[q + k] = Mersenne61.subtract(0, Mersenne61.multiply(ys[i], power)) }
                if k == e { row[unknowns] = Mersenne61.multiply(ys[i], power) }
                power = Mersenne61.multiply(power, xs[i])
            }
            return row
        }
        defer { for i in rows.indices { wipe(&rows[i]) } }
        guard var solution = solve(&rows, unknowns: unknowns) else { return nil }
        defer { wipe(&solution) }
        let quotientNumerator = Array(solution[0..<q])
        let errorLocator = Array(solution[q..<unknowns]) + [1]
        guard let (quotient, remainder) = divide(quotientNumerator, by: errorLocator),
            remainder.allSatisfy({ $0 == 0 })
        else { return nil }
        // Q has t + e coefficients and E degree e, so the quotient has exactly t: degree < t.
        return quotient
    }

    /// Gaussian elimination modulo p on an augmented matrix; one solution (free unknowns 0)
    /// or nil when the system is inconsistent.
    static func solve(_ rows: inout [[UInt64]], unknowns: Int) -> [UInt64]? {
        var pivotColumns: [Int] = []
        var r = 0
        for c in 0..<unknowns where r < rows.count {
            guard let pivot = (r..<rows.count).first(where: { rows[$0][c] != 0 }) else { continue }
            rows.swapAt(r, pivot)
            let inverse = Mersenne61.inverse(rows[r][c])
            for k in c...unknowns { rows[r][k] = Mersenne61.multiply(rows[r][k], inverse) }
            for other in rows.indices where other != r && rows[other][c] != 0 {
                let factor = rows[other][c]
                for k in c...unknowns {
                    rows[other][k] = Mersenne61.subtract(rows[other][k], Mersenne61.multiply(factor, rows[r][k]))
                }
            }
            pivotColumns.append(c)
            r += 1
        }
        // A row 0 = b with b ≠ 0 left below the pivots: no solution.
        for row in rows[r...] where row[unknowns] != 0 { return nil }
        var solution = [UInt64](repeating: 0, count: unknowns)
        for (row, column) in pivotColumns.enumerated() { solution[column] = rows[row][unknowns] }
        return solution
    }

    /// Polynomial long division over GF(p) by a monic divisor (coefficients constant first).
    static func divide(_ numerator: [UInt64], by divisor: [UInt64]) -> (quotient: [UInt64], remainder: [UInt64])? {
        guard let lead = divisor.last, lead == 1 else { return nil }
        let d = divisor.count - 1
        var remainder = numerator
        guard remainder.count > d else { return ([0], remainder) }
        var quotient = [UInt64](repeating: 0, count: remainder.count - d)
        for k in stride(from: remainder.count - 1, through: d, by: -1) {
            let factor = remainder[k]
            quotient[k - d] = factor
            if factor == 0 { continue }
            for i in 0...d {
                remainder[k - d + i] = Mersenne61.subtract(
                    remainder[k - d + i], Mersenne61.multiply(factor, divisor[i]))
            }
        }
        return (quotient, Array(remainder[0..<d]))
    }

    /// P(x) by Horner's rule (coefficients constant first).
    static func evaluate(_ polynomial: [UInt64], at x: UInt64) -> UInt64 {
        polynomial.reversed().reduce(0) { Mersenne61.add(Mersenne61.multiply($0, x), $1) }
    }
}
