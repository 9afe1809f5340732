import VeilCore
import VeilCrypto

extension ProjectVectors {
    static func shamir() throws -> VectorFile<ShamirRunner.Group> {
        var inputs = Inputs("shamir")
        var groups: [ShamirRunner.Group] = []
        var tcId = 0
        func test(
            _ comment: String, _ flags: [String], _ result: ExpectedResult, error: String? = nil, operation: String,
            secret: [UInt8], seed: [UInt8]? = nil, indices: [UInt32]? = nil, shares: [String],
            wrong: [UInt32]? = nil
        ) -> ShamirRunner.Test {
            tcId += 1
            return .init(
                tcId: tcId, comment: comment, flags: flags, result: result, error: error, operation: operation,
                secret: Hex.encode(secret), generatorSeed: seed.map { Hex.encode($0) }, indices: indices,
                shares: shares,
                wrongIndices: wrong)
        }
        func deal(_ t: Int, _ n: Int, _ secret: [UInt8], seed: [UInt8], at indices: [UInt32]? = nil) throws -> [String]
        {
            var generator = try ChaCha20Generator(publicSeed: seed)
            let scheme = try ShamirSecretSharing(threshold: t, shareCount: n)
            return try scheme.split(
                SecureBytes(copying: secret), at: indices ?? (1...n).map { UInt32($0) }, using: &generator
            )
            .map { Hex.encode($0.encoded.unsafeExposedBytes()) }
        }

        // Dealing, for several (t, n) and secret lengths around the 7-byte chunk size.
        for (t, n, lengths) in [
            (1, 1, [32]), (2, 3, [32, 1]), (3, 5, [32, 7, 8, 14, 15, 31]), (5, 5, [32]), (10, 20, [32]),
        ] {
            var tests: [ShamirRunner.Test] = []
            for length in lengths {
                let secret = inputs.bytes(length)
                let seed = inputs.bytes(ChaCha20Generator.seedByteCount)
                tests.append(
                    test(
                        "deal a \(length)-byte secret \(t)-of-\(n)", ["Normal"], .valid, operation: "split",
                        secret: secret, seed: seed,
                        shares: try deal(t, n, secret, seed: seed)))
            }
            groups.append(.init(threshold: t, shareCount: n, tests: tests))
        }

        // Reconstruction in a 3-of-5 scheme, valid and invalid.
        let secret = inputs.bytes(ShamirSecretSharing.maxSecretByteCount)
        let seed = inputs.bytes(ChaCha20Generator.seedByteCount)
        let shares = try deal(3, 5, secret, seed: seed)
        let short = try deal(3, 5, inputs.bytes(16), seed: inputs.bytes(ChaCha20Generator.seedByteCount))
        var tests: [ShamirRunner.Test] = []
        tests.append(
            test(
                "deal at chosen indices, as SecAgg+ does for a participant's neighbours", ["Normal"], .valid,
                operation: "split",
                secret: secret, seed: seed, indices: [5, 2, 4],
                shares: try deal(3, 5, secret, seed: seed, at: [5, 2, 4])))
        tests.append(
            test(
                "any 3 shares: 1, 2, 3", ["Normal"], .valid, operation: "reconstruct", secret: secret,
                shares: [shares[0], shares[1], shares[2]]))
        tests.append(
            test(
                "any 3 shares: 5, 1, 3, out of order", ["Normal"], .valid, operation: "reconstruct", secret: secret,
                shares: [shares[4], shares[0], shares[2]]))
        tests.append(
            test(
                "all 5 shares (the three lowest indices are used)", ["Normal"], .valid, operation: "reconstruct",
                secret: secret, shares: shares))
        tests.append(
            test(
                "two shares are below the threshold", ["BelowThreshold"], .invalid, error: "notEnoughShares",
                operation: "reconstruct",
                secret: secret, shares: [shares[0], shares[3]]))
        tests.append(
            test(
                "no shares", ["BelowThreshold"], .invalid, error: "notEnoughShares", operation: "reconstruct",
                secret: secret, shares: []))
        tests.append(
            test(
                "share 2 given twice", ["DuplicateIndex"], .invalid, error: "duplicateIndex", operation: "reconstruct",
                secret: secret, shares: [shares[1], shares[1], shares[2]]))
        tests.append(
            test(
                "a share of a 16-byte secret mixed with shares of a 32-byte one", ["LengthMismatch"], .invalid,
                error: "inconsistentShareLengths", operation: "reconstruct", secret: secret,
                shares: [shares[0], shares[1], short[2]]))
        tests.append(
            test(
                "share index 6 in a scheme of 5", ["IndexOutOfRange"], .invalid, error: "indexOutOfRange",
                operation: "reconstruct",
                secret: secret, shares: [shares[0], shares[1], withIndex(shares[2], 6)]))
        tests.append(
            test(
                "share index 0, the secret's own position", ["IndexOutOfRange"], .invalid, error: "malformedShare",
                operation: "reconstruct", secret: secret, shares: [shares[0], shares[1], withIndex(shares[2], 0)]))
        tests.append(
            test(
                "a share value equal to p = 2^61 - 1", ["MalformedShare"], .invalid, error: "malformedShare",
                operation: "reconstruct",
                secret: secret, shares: [shares[0], shares[1], withFirstValue(shares[2], Mersenne61.p)]))
        tests.append(
            test(
                "a share one byte short", ["MalformedShare"], .invalid, error: "malformedShare",
                operation: "reconstruct",
                secret: secret, shares: [shares[0], shares[1], String(shares[2].dropLast(2))]))
        tests.append(
            test(
                "a tampered share interpolates to a chunk of 2^56 or more", ["TamperedShare"], .invalid,
                error: "inconsistentShares",
                operation: "reconstruct", secret: secret,
                shares: [shares[0], shares[1], try detectablyTampered(shares, secret)]))
        groups.append(.init(threshold: 3, shareCount: 5, tests: tests))

        let secret33 = inputs.bytes(33)
        groups.append(
            .init(
                threshold: 3, shareCount: 5,
                tests: [
                    test(
                        "a 33-byte secret is too long", ["Refused"], .invalid, error: "invalidSecretLength",
                        operation: "split", secret: secret33, seed: seed, shares: []),
                    test(
                        "an empty secret", ["Refused"], .invalid, error: "invalidSecretLength", operation: "split",
                        secret: [], seed: seed, shares: []),
                    test(
                        "fewer indices than the threshold", ["BelowThreshold"], .invalid, error: "notEnoughShares",
                        operation: "split",
                        secret: secret, seed: seed, indices: [1, 2], shares: []),
                    test(
                        "a repeated index when dealing", ["DuplicateIndex"], .invalid, error: "duplicateIndex",
                        operation: "split",
                        secret: secret, seed: seed, indices: [1, 2, 2], shares: []),
                ]))
        groups.append(
            .init(
                threshold: 4, shareCount: 3,
                tests: [
                    test(
                        "threshold 4 above 3 shares", ["Refused"], .invalid, error: "invalidThreshold",
                        operation: "split", secret: secret, seed: seed, shares: [])
                ]))
        groups.append(
            .init(
                threshold: 0, shareCount: 3,
                tests: [
                    test(
                        "threshold 0", ["Refused"], .invalid, error: "invalidThreshold", operation: "split",
                        secret: secret, seed: seed, shares: [])
                ]))
        // Decoding (§9.6): N shares set aside up to ⌊(N − t)/2⌋ wrong ones, chunk by chunk.
        var decoding: [ShamirRunner.Test] = []
        let secret7 = inputs.bytes(ShamirSecretSharing.maxSecretByteCount)
        let dealt7 = try deal(3, 7, secret7, seed: inputs.bytes(ChaCha20Generator.seedByteCount))
        func off(_ share: String, by delta: UInt64, chunk: Int = 0) -> String {
            // produced by this generator, so it parses
            let parsed = try! ShamirShare(encoded: SecureBytes(copying: Hex.decode(share)))
            return Hex.encode(parsed.movedOffPolynomial(chunk: chunk, by: delta).encoded.unsafeExposedBytes())
        }
        decoding.append(
            test(
                "7 correct shares: nothing set aside", ["Normal"], .valid, operation: "decode", secret: secret7,
                shares: dealt7, wrong: []))
        decoding.append(
            test(
                "shares 2 and 6 wrong in chunk 0 (e = 2): both set aside", ["WrongShares"], .valid, operation: "decode",
                secret: secret7,
                shares: [dealt7[0], off(dealt7[1], by: 1), dealt7[2], dealt7[3], dealt7[4], off(dealt7[5], by: 99)]
                    + [dealt7[6]], wrong: [2, 6]))
        decoding.append(
            test(
                "share 1 wrong in chunk 0, shares 4 and 5 in chunk 4: the bound is per chunk", ["WrongShares"], .valid,
                operation: "decode", secret: secret7,
                shares: [off(dealt7[0], by: 7), dealt7[1], dealt7[2], off(dealt7[3], by: 1, chunk: 4)]
                    + [off(dealt7[4], by: 2, chunk: 4), dealt7[5], dealt7[6]], wrong: [1, 4, 5]))
        decoding.append(
            test(
                "shares given out of order, one wrong", ["WrongShares"], .valid, operation: "decode", secret: secret7,
                shares: [dealt7[6], dealt7[2], off(dealt7[4], by: 5), dealt7[0], dealt7[3]], wrong: [5]))
        decoding.append(
            test(
                "three of 7 wrong in one chunk (e = 2): refused", ["TooManyWrong"], .invalid,
                error: "tooManyWrongShares", operation: "decode", secret: secret7,
                shares: [off(dealt7[0], by: 1), off(dealt7[1], by: 2), off(dealt7[2], by: 3)] + Array(dealt7[3...])))
        decoding.append(
            test(
                "4 shares of a 3-of-7 scheme, one wrong (e = 0): detected, not placed", ["TooManyWrong"], .invalid,
                error: "tooManyWrongShares", operation: "decode", secret: secret7,
                shares: [dealt7[0], dealt7[1], dealt7[2], off(dealt7[3], by: 1)]))
        decoding.append(
            test(
                "exactly t shares: decoding is reconstruction", ["Normal"], .valid, operation: "decode",
                secret: secret7, shares: [dealt7[1], dealt7[3], dealt7[5]], wrong: []))
        decoding.append(
            test(
                "two shares are below the threshold", ["BelowThreshold"], .invalid, error: "notEnoughShares",
                operation: "decode", secret: secret7, shares: [dealt7[0], dealt7[1]]))
        decoding.append(
            test(
                "share 3 given twice", ["DuplicateIndex"], .invalid, error: "duplicateIndex", operation: "decode",
                secret: secret7, shares: [dealt7[0], dealt7[2], dealt7[2], dealt7[3]]))
        groups.append(.init(threshold: 3, shareCount: 7, tests: decoding))

        return VectorFile(
            algorithm: ShamirRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's Shamir secret sharing (Specs/primitives.md, Shamir secret sharing) over GF(2^61 - 1), 7-byte chunks.",
                "A share is index (u32 LE) || secret length (u8) || one u64 LE value per chunk, hex here. \"split\" deals with the",
                "deterministic generator seeded with generatorSeed; \"reconstruct\" combines the shares given; \"decode\"",
                "decodes them (section 9.6), setting aside the wrong ones, whose indices wrongIndices lists.",
                "Project vectors, generated by `veil vectors generate`, confirmed by Specs/reference/.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "Dealing or reconstruction that must succeed."),
                "BelowThreshold": VectorNote(bugType: "DEFINED", description: "Fewer than t shares or indices."),
                "DuplicateIndex": VectorNote(bugType: "DEFINED", description: "One index twice."),
                "LengthMismatch": VectorNote(
                    bugType: "DEFINED", description: "Shares of secrets of different lengths."),
                "IndexOutOfRange": VectorNote(bugType: "DEFINED", description: "An index of 0 or above n."),
                "MalformedShare": VectorNote(bugType: "DEFINED", description: "An encoding that does not parse."),
                "TamperedShare": VectorNote(
                    bugType: "DEFINED", description: "A share altered so that reconstruction detects it."),
                "Refused": VectorNote(bugType: "DEFINED", description: "Parameters or a secret that must be refused."),
                "WrongShares": VectorNote(
                    bugType: "DEFINED", description: "Decoding sets wrong shares aside and still recovers the secret."),
                "TooManyWrong": VectorNote(
                    bugType: "DEFINED", description: "More wrong shares in a chunk than decoding can correct."),
            ],
            testGroups: groups, numberOfTests: tcId)
    }

    /// Rewrites the index of an encoded share.
    static func withIndex(_ share: String, _ index: UInt32) -> String {
        var bytes = try! Hex.decode(share)  // produced by this generator
        withUnsafeBytes(of: index.littleEndian) { for i in 0..<4 { bytes[i] = $0[i] } }
        return Hex.encode(bytes)
    }

    /// Rewrites the first value of an encoded share.
    static func withFirstValue(_ share: String, _ value: UInt64) -> String {
        var bytes = try! Hex.decode(share)  // produced by this generator
        withUnsafeBytes(of: value.littleEndian) { for i in 0..<8 { bytes[5 + i] = $0[i] } }
        return Hex.encode(bytes)
    }

    /// Share 3 with its first value replaced by the first pseudorandom field element that
    /// reconstruction detects (a wrong chunk lands at or above 2^56 with probability 31/32).
    static func detectablyTampered(_ shares: [String], _ secret: [UInt8]) throws -> String {
        let scheme = try ShamirSecretSharing(threshold: 3, shareCount: 5)
        var inputs = Inputs("tamper")
        while true {
            let candidate = withFirstValue(shares[2], Mersenne61.random(using: &inputs.generator))
            let set = try [shares[0], shares[1], candidate].map {
                try ShamirShare(encoded: SecureBytes(copying: Hex.decode($0)))
            }
            let outcome = Result { () throws(ShamirError) in try scheme.reconstruct(set) }
            if case .failure(.inconsistentShares) = outcome { return candidate }
        }
    }
}
