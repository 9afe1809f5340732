import Testing
import VeilTestSupport

@testable import VeilCrypto

@Suite struct Mersenne61Tests {
    let p = Mersenne61.p

    // (a, b, a·b mod p) with edges: 0, 1, p − 1, 2^60, values that need the final subtraction.
    static let table: [(UInt64, UInt64, UInt64)] = [
        (0, 0, 0), (1, 1, 1), (Mersenne61.p - 1, Mersenne61.p - 1, 1), (Mersenne61.p - 1, 2, Mersenne61.p - 2),
        (1 << 60, 2, 1), (1 << 60, 4, 2), (1 << 31, 1 << 30, 1),
        (123_456_789, 987_654_321, 121_932_631_112_635_269 % Mersenne61.p),
    ]

    @Test(arguments: table)
    func multiplicationTable(_ a: UInt64, _ b: UInt64, _ product: UInt64) {
        #expect(Mersenne61.multiply(a, b) == product)
        #expect(Mersenne61.multiply(b, a) == product)
    }

    @Test func inversesAdditionAndSubtraction() {
        var generator = SplitMix64(seed: 11)
        for _ in 0..<1_000 {
            let a = Mersenne61.random(using: &generator)
            let b = Mersenne61.random(using: &generator)
            #expect(a < p)
            if a != 0 { #expect(Mersenne61.multiply(a, Mersenne61.inverse(a)) == 1) }
            #expect(Mersenne61.subtract(Mersenne61.add(a, b), b) == a)
        }
        #expect(Mersenne61.add(p - 1, 1) == 0)
        #expect(Mersenne61.subtract(0, 1) == p - 1)
    }

    @Test func randomRejectsExactlyP() {
        var generator = ScriptedGenerator([UInt64.max, 5])  // low 61 bits of UInt64.max equal p
        #expect(Mersenne61.random(using: &generator) == 5)
    }
}

@Suite struct ShamirTests {
    func secret(_ length: Int, _ seed: UInt64 = 1) -> SecureBytes {
        var generator = SplitMix64(seed: seed)
        return SecureBytes.random(count: length, using: &generator)
    }

    @Test func everySubsetOfThresholdSizeReconstructs() throws {
        let scheme = try ShamirSecretSharing(threshold: 3, shareCount: 6)
        var generator = SplitMix64(seed: 5)
        let s = secret(32)
        let shares = try scheme.split(s, using: &generator)
        for a in 0..<6 {
            for b in (a + 1)..<6 {
                for c in (b + 1)..<6 {
                    #expect(try scheme.reconstruct([shares[c], shares[a], shares[b]]) == s)
                }
            }
        }
    }

    @Test(arguments: [1, 6, 7, 8, 13, 14, 15, 31, 32])
    func everySecretLengthRoundTrips(_ length: Int) throws {
        let scheme = try ShamirSecretSharing(threshold: 4, shareCount: 7)
        var generator = SplitMix64(seed: UInt64(length))
        let s = secret(length, UInt64(length))
        let shares = try scheme.split(s, using: &generator)
        #expect(shares.allSatisfy { $0.encoded.count == ShamirShare.encodedByteCount(secretByteCount: length) })
        let decoded = try shares.map { try ShamirShare(encoded: $0.encoded) }
        #expect(try scheme.reconstruct(Array(decoded.suffix(4))) == s)
    }

    @Test func coefficientsComputedOnceServeManySecrets() throws {
        let scheme = try ShamirSecretSharing(threshold: 5, shareCount: 9)
        var generator = SplitMix64(seed: 8)
        let coefficients = try scheme.lagrangeCoefficients(for: [9, 2, 7, 4, 1])
        for round in 0..<50 {
            let s = secret(32, UInt64(round))
            let shares = try scheme.split(s, at: [1, 2, 4, 7, 9], using: &generator)
            #expect(try scheme.reconstruct(shares, using: coefficients) == s)
        }
        let shares = try scheme.split(secret(32), using: &generator)
        #expect(throws: ShamirError.coefficientsMismatch) {
            try scheme.reconstruct(Array(shares.prefix(5)), using: coefficients)
        }
        #expect(throws: ShamirError.tooManyIndices(have: 6, need: 5)) {
            try scheme.lagrangeCoefficients(for: [1, 2, 3, 4, 5, 6])
        }
        #expect(throws: ShamirError.notEnoughShares(have: 4, need: 5)) {
            try scheme.lagrangeCoefficients(for: [1, 2, 3, 4])
        }
    }

    @Test func thresholdMinusOneSharesAreConsistentWithEverySecret() throws {
        // Perfect secrecy, checked on one chunk: for t − 1 shares and any candidate secret there is
        // a polynomial through both, so interpolating with a forged t-th share reaches any secret.
        let scheme = try ShamirSecretSharing(threshold: 2, shareCount: 3)
        var generator = SplitMix64(seed: 21)
        let shares = try scheme.split(secret(7), using: &generator)
        for candidate in [secret(7, 100), secret(7, 101), SecureBytes(zeros: 7)] {
            // With share 1 fixed and f(0) = candidate, the line gives share 2 = 2·f(1) − f(0).
            let y1 = shares[0].encoded.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 5, as: UInt64.self) }
            let s0 = candidate.withUnsafeBytes { bytes in
                (0..<7).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64(bytes[$1]) }
            }
            let y2 = Mersenne61.subtract(Mersenne61.add(y1, y1), s0)
            var forged = [UInt8](repeating: 0, count: 13)
            forged[0] = 2
            forged[4] = 7
            withUnsafeBytes(of: y2.littleEndian) { for i in 0..<8 { forged[5 + i] = $0[i] } }
            #expect(
                try scheme.reconstruct([shares[0], ShamirShare(encoded: SecureBytes(copying: forged))]) == candidate)
        }
    }

    @Test func refusals() throws {
        let scheme = try ShamirSecretSharing(threshold: 3, shareCount: 5)
        var generator = SplitMix64(seed: 2)
        let shares = try scheme.split(secret(32), using: &generator)
        let short = try scheme.split(secret(16), using: &generator)
        #expect(throws: ShamirError.notEnoughShares(have: 2, need: 3)) {
            try scheme.reconstruct(Array(shares.prefix(2)))
        }
        #expect(throws: ShamirError.notEnoughShares(have: 0, need: 3)) { try scheme.reconstruct([]) }
        #expect(throws: ShamirError.duplicateIndex(1)) { try scheme.reconstruct([shares[0], shares[0], shares[1]]) }
        #expect(throws: ShamirError.inconsistentShareLengths) {
            try scheme.reconstruct([shares[0], shares[1], short[2]])
        }
        let other = try ShamirSecretSharing(threshold: 3, shareCount: 4)
        #expect(throws: ShamirError.indexOutOfRange(index: 5, shareCount: 4)) {
            try other.reconstruct([shares[0], shares[1], shares[4]])
        }
        #expect(throws: ShamirError.invalidSecretLength(33)) { try scheme.split(secret(33), using: &generator) }
        #expect(throws: ShamirError.invalidSecretLength(0)) {
            try scheme.split(SecureBytes(zeros: 0), using: &generator)
        }
        #expect(throws: ShamirError.indexOutOfRange(index: 0, shareCount: 5)) {
            try scheme.split(secret(8), at: [0, 1, 2], using: &generator)
        }
        #expect(throws: ShamirError.invalidThreshold(threshold: 0, shareCount: 3)) {
            try ShamirSecretSharing(threshold: 0, shareCount: 3)
        }
        #expect(throws: ShamirError.invalidThreshold(threshold: 4, shareCount: 3)) {
            try ShamirSecretSharing(threshold: 4, shareCount: 3)
        }
        #expect(throws: ShamirError.self) { try ShamirShare(encoded: SecureBytes(copying: [1, 0, 0, 0])) }
        #expect(throws: ShamirError.self) { try ShamirShare(encoded: shares[0].encoded.slice(0..<44)) }
    }

    @Test func descriptionsRevealNoShareValue() throws {
        var generator = SplitMix64(seed: 9)
        let share = try ShamirSecretSharing(threshold: 1, shareCount: 1).split(
            SecureBytes(copying: [0x42]), using: &generator)[0]
        #expect(share.description == "ShamirShare(index: 1, secret: 1 bytes, redacted)")
    }

    /// N shares correct ⌊(N − t)/2⌋ wrong ones, whichever they are, and name them.
    @Test(arguments: [(3, 7), (3, 8), (5, 5), (5, 6), (10, 30)])
    func decodingSetsAsideUpToHalfTheSpareShares(_ t: Int, _ n: Int) throws {
        let scheme = try ShamirSecretSharing(threshold: t, shareCount: n)
        var generator = SplitMix64(seed: UInt64(10 * t + n))
        let s = secret(32, UInt64(n))
        let shares = try scheme.split(s, using: &generator)
        let e = scheme.correctableErrors(among: n)
        #expect(e == (n - t) / 2)
        #expect(try scheme.decode(shares).wrongIndices.isEmpty)
        #expect(try scheme.decode(shares).secret == s)
        // e wrong shares spread over the indices, all wrong in chunk 0 (the bound is per
        // chunk: wrong values spread over several chunks can number more than e in all).
        var corrupt = shares
        let victims = (0..<e).map { ($0 * 3 + 1) % n }
        for (k, victim) in victims.enumerated() {
            corrupt[victim] = shares[victim].movedOffPolynomial(chunk: 0, by: UInt64(k + 1))
        }
        let decoded = try scheme.decode(corrupt.reversed())
        #expect(decoded.secret == s)
        #expect(decoded.wrongIndices == victims.map { UInt32($0 + 1) }.sorted())
        // One more than e is refused, unless no share is spare at all.
        if n > t {
            var tooMany = corrupt
            let extra = (0..<n).first { !victims.contains($0) }!
            tooMany[extra] = shares[extra].movedOffPolynomial(by: 12345)
            #expect(throws: ShamirError.self) { try scheme.decode(tooMany) }
        }
    }

    /// The bound holds chunk by chunk: e wrong values in each of several chunks, on different
    /// shares, are all set aside (here 2 · e shares are named).
    @Test func theBoundIsPerChunk() throws {
        let scheme = try ShamirSecretSharing(threshold: 3, shareCount: 9)
        var generator = SplitMix64(seed: 4)
        let s = secret(32, 4)
        var shares = try scheme.split(s, using: &generator)
        for (victim, chunk) in [(0, 0), (1, 0), (2, 0), (4, 3), (5, 3), (6, 3)] {
            shares[victim] = shares[victim].movedOffPolynomial(chunk: chunk)
        }
        let decoded = try scheme.decode(shares)
        #expect(decoded.secret == s && decoded.wrongIndices == [1, 2, 3, 5, 6, 7])
    }

    /// With no spare share there is nothing to correct against: decoding is reconstruction.
    @Test func decodingWithExactlyTSharesIsReconstruction() throws {
        let scheme = try ShamirSecretSharing(threshold: 4, shareCount: 9)
        var generator = SplitMix64(seed: 3)
        let s = secret(20)
        let shares = Array(try scheme.split(s, using: &generator).prefix(4))
        #expect(try scheme.decode(shares).secret == s)
        // One spare share detects a wrong one but cannot say which: refused.
        let five = Array(try scheme.split(s, using: &generator).prefix(5))
        #expect(throws: ShamirError.tooManyWrongShares(correctable: 0)) {
            try scheme.decode([five[0].movedOffPolynomial()] + five.dropFirst())
        }
        // The checks of reconstruction come first, in its order.
        #expect(throws: ShamirError.notEnoughShares(have: 3, need: 4)) { try scheme.decode(Array(shares.prefix(3))) }
        #expect(throws: ShamirError.duplicateIndex(1)) { try scheme.decode(shares + [shares[0]]) }
    }

    /// Bytes built the slow way: the polynomial's values at every index, evaluated directly.
    @Test func berlekampWelchFindsThePolynomialThroughTheRightPoints() {
        // P(x) = 5 + 3x + 2x² over GF(p), at x = 1…7, with x = 2 and x = 6 wrong.
        let xs: [UInt64] = Array(1...7)
        var ys = xs.map { x in
            Mersenne61.add(
                5, Mersenne61.add(Mersenne61.multiply(3, x), Mersenne61.multiply(2, Mersenne61.multiply(x, x))))
        }
        ys[1] = Mersenne61.add(ys[1], 99)
        ys[5] = 0
        #expect(ShamirSecretSharing.berlekampWelch(xs: xs, ys: ys, degreeBound: 3, errors: 2) == [5, 3, 2])
        // With three wrong, no polynomial of degree < 3 agrees with five of the seven points.
        ys[3] = Mersenne61.add(ys[3], 1)
        #expect(ShamirSecretSharing.berlekampWelch(xs: xs, ys: ys, degreeBound: 3, errors: 2) == nil)
    }
}
