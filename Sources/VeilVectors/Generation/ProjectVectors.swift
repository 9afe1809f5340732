import Foundation
import VeilCore
import VeilCrypto

/// Generates the project's own known-answer files — the ones no outside document publishes —
/// deterministically, so that `veil vectors generate` reproduces the committed files byte
/// for byte. The Python implementation in `Specs/reference/` recomputes every value in them
/// independently; only that agreement makes them worth anything.
public enum ProjectVectors {
    /// Where each generated file goes, relative to `Vectors/`, and its bytes.
    public static func all() throws -> [(path: String, data: Data)] {
        [
            ("kdf/veil_kdf.json", try kdf().encoded()),
            ("drbg/veil_chacha20_generator.json", try generator().encoded()),
            ("mask/veil_mask_expansion.json", try maskExpansion().encoded()),
            ("shamir/veil_shamir.json", try shamir().encoded()),
            ("codec/veil_fixed_point.json", try fixedPoint().encoded()),
            ("secagg/veil_secagg.json", try secAgg().encoded()),
            ("secagg/veil_secagg_parameters.json", try secAggParameters().encoded()),
            ("paillier/veil_paillier.json", try paillier().encoded()),
            ("paillier/veil_paillier_session.json", try paillierSession().encoded()),
            ("dp/veil_privacy.json", try privacy().encoded()),
        ]
    }

    /// Writes every generated file under `directory`, creating folders as needed.
    /// - Returns: the paths written, relative to `directory`.
    @discardableResult
    public static func write(to directory: URL) throws -> [String] {
        try all().map { path, data in
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
            return path
        }
    }

    static let version = "veil-vectors-1"

    /// Public, arbitrary-looking inputs: the deterministic generator under a fixed seed.
    struct Inputs {
        var generator: ChaCha20Generator

        init(generator: ChaCha20Generator) { self.generator = generator }

        init(_ name: String) {
            var seed = [UInt8](repeating: 0, count: ChaCha20Generator.seedByteCount)
            for (i, byte) in name.utf8.prefix(ChaCha20Generator.seedByteCount).enumerated() { seed[i] = byte }
            generator = try! ChaCha20Generator(publicSeed: seed)  // the seed size by construction
        }

        mutating func bytes(_ count: Int) -> [UInt8] { generator.bytes(count: count).unsafeExposedBytes() }
        mutating func hex(_ count: Int) -> String { Hex.encode(bytes(count)) }
    }

    // MARK: - VEIL-KDF

    static func kdf() throws -> VectorFile<VeilKDFRunner.Group> {
        var inputs = Inputs("kdf")
        var tests: [VeilKDFRunner.Test] = []
        func add(
            _ comment: String, label: String, ikm: [UInt8], salt: [UInt8], context: [UInt8], size: Int,
            flags: [String] = ["Normal"]
        ) throws {
            let okm = try VeilKDF.derive(
                VeilKDF.Label(label), from: SecureBytes(copying: ikm), salt: salt, context: context,
                outputByteCount: size)
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: comment, flags: flags, result: .valid, error: nil, label: label,
                    ikm: Hex.encode(ikm), salt: Hex.encode(salt), context: Hex.encode(context), size: size,
                    okm: Hex.encode(okm.unsafeExposedBytes())))
        }
        func refuse(_ comment: String, label: String, size: Int, error: String) {
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: comment, flags: ["Refused"], result: .invalid, error: error,
                    label: label,
                    ikm: Hex.encode([UInt8](repeating: 7, count: 32)), salt: "", context: "", size: size, okm: ""))
        }
        try add(
            "the deterministic generator's key: label drbg, empty salt and context", label: "drbg",
            ikm: inputs.bytes(32), salt: [], context: [], size: 32)
        try add(
            "the mask expansion key: label mask-expansion, a vector name as context", label: "mask-expansion",
            ikm: inputs.bytes(32), salt: [], context: Array("session-1/round-2/weights".utf8), size: 32)
        try add(
            "a salt and a binary context", label: "secagg/pairwise-mask", ikm: inputs.bytes(32), salt: inputs.bytes(16),
            context: inputs.bytes(40), size: 32)
        try add(
            "a one-byte output", label: "drbg", ikm: inputs.bytes(32), salt: [], context: [], size: 1,
            flags: ["EdgeCase"])
        try add(
            "a 100-byte output spans four HMAC blocks", label: "mask-expansion", ikm: inputs.bytes(32), salt: [],
            context: [1, 2, 3], size: 100, flags: ["EdgeCase"])
        try add(
            "the largest output, 255 HMAC blocks", label: "drbg", ikm: inputs.bytes(16), salt: [], context: [],
            size: 8160, flags: ["EdgeCase"])
        try add(
            "the longest label, 64 characters", label: String(repeating: "a", count: 64), ikm: inputs.bytes(32),
            salt: [], context: [], size: 32, flags: ["EdgeCase"])
        try add("an empty input key", label: "drbg", ikm: [], salt: [], context: [], size: 32, flags: ["EdgeCase"])
        // Same IKM, different labels: the outputs must differ (domain separation).
        let shared = inputs.bytes(32)
        try add(
            "domain separation: one IKM under label a", label: "a", ikm: shared, salt: [], context: [], size: 32,
            flags: ["DomainSeparation"])
        try add(
            "domain separation: the same IKM under label b", label: "b", ikm: shared, salt: [], context: [], size: 32,
            flags: ["DomainSeparation"])
        try add(
            "domain separation: label a with context 00 differs from label a, empty context", label: "a", ikm: shared,
            salt: [], context: [0], size: 32, flags: ["DomainSeparation"])
        refuse("an empty label", label: "", size: 32, error: "invalidLabel")
        refuse("a label with an upper-case letter", label: "Drbg", size: 32, error: "invalidLabel")
        refuse(
            "a label with a NUL byte, which would make the info string ambiguous", label: "a\u{0}b", size: 32,
            error: "invalidLabel")
        refuse("a label of 65 characters", label: String(repeating: "a", count: 65), size: 32, error: "invalidLabel")
        refuse("an empty output", label: "drbg", size: 0, error: "outputLengthOutOfRange")
        refuse("8161 bytes exceed 255 HMAC blocks", label: "drbg", size: 8161, error: "outputLengthOutOfRange")
        return VectorFile(
            algorithm: VeilKDFRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's KDF (Specs/primitives.md, Key derivation): HKDF-SHA-256 with",
                "info = \"veil/v1/\" || label || 0x00 || context. All values hex except label (ASCII) and size (bytes).",
                "Project vectors, generated by `veil vectors generate`, confirmed by Specs/reference/.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "An ordinary derivation."),
                "EdgeCase": VectorNote(bugType: "EDGE_CASE", description: "An input at a limit."),
                "DomainSeparation": VectorNote(
                    bugType: "BASIC", description: "The same key material under different labels or contexts."),
                "Refused": VectorNote(
                    bugType: "DEFINED", description: "Parameters the KDF must refuse with the named error."),
            ],
            testGroups: [.init(tests: tests)], numberOfTests: tests.count)
    }

    // MARK: - VEIL-CHACHA20-DRBG

    static func generator() throws -> VectorFile<ChaCha20GeneratorRunner.Group> {
        var inputs = Inputs("drbg")
        var tests: [ChaCha20GeneratorRunner.Test] = []
        func add(_ comment: String, seed: [UInt8], count: Int) throws {
            var generator = try ChaCha20Generator(publicSeed: seed)
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: comment, flags: ["Normal"], result: .valid, error: nil,
                    seed: Hex.encode(seed), outputs: (0..<count).map { _ in String(generator.next()) }))
        }
        try add(
            "the all-zero seed, first 8 outputs", seed: [UInt8](repeating: 0, count: ChaCha20Generator.seedByteCount),
            count: 8)
        try add(
            "seed 00 01 ... 1f, first 8 outputs", seed: (0..<ChaCha20Generator.seedByteCount).map(UInt8.init), count: 8)
        try add(
            "a random seed, 300 outputs: crosses the 128-word refill boundary twice",
            seed: inputs.bytes(ChaCha20Generator.seedByteCount),
            count: 300
        )
        for (comment, length) in [("a 31-byte seed", 31), ("a 33-byte seed", 33), ("an empty seed", 0)] {
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: comment, flags: ["Refused"], result: .invalid,
                    error: "invalidLength",
                    seed: Hex.encode([UInt8](repeating: 1, count: length)), outputs: []))
        }
        return VectorFile(
            algorithm: ChaCha20GeneratorRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's deterministic generator (Specs/primitives.md, Deterministic generator): key = VeilKDF(seed, \"drbg\"),",
                "IETF ChaCha20 keystream, zero nonce, counter from 0, read as little-endian UInt64 words (decimal strings here).",
                "Project vectors, generated by `veil vectors generate`, confirmed by Specs/reference/.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "The first outputs for a seed."),
                "Refused": VectorNote(bugType: "DEFINED", description: "A seed that is not 32 bytes."),
            ],
            testGroups: [.init(tests: tests)], numberOfTests: tests.count)
    }

    // MARK: - VEIL-MASK-EXPANSION

    static func maskExpansion() throws -> VectorFile<MaskExpansionRunner.Group> {
        var inputs = Inputs("mask")
        var groups: [MaskExpansionRunner.Group] = []
        var tcId = 0
        // 1030 elements cross the 1024-element chunk boundary; 13 and 100 end inside a ChaCha20 block.
        let plan: [(bits: Int, counts: [Int])] = [
            (1, [1, 13, 1030]), (7, [13, 100, 1030]), (8, [13]), (16, [13]), (24, [13, 100]), (32, [1, 13, 100, 1030]),
            (33, [13, 100, 1030]), (48, [13]), (56, [13]), (63, [13, 100, 1030]), (64, [1, 13, 100, 1030]),
        ]
        for (bits, counts) in plan {
            var tests: [MaskExpansionRunner.Test] = []
            for count in counts {
                let seed = inputs.bytes(MaskExpander.seedByteCount)
                let label = Array("vector/\(bits)/\(count)".utf8)
                let mask = try MaskExpander(seed: SecureBytes(copying: seed), label: label, bitWidth: BitWidth(bits))
                    .expand(count: count)
                tcId += 1
                tests.append(
                    .init(
                        tcId: tcId, comment: "\(count) elements of Z_2^\(bits)",
                        flags: count > 1024 ? ["ChunkBoundary"] : ["Normal"],
                        result: .valid, error: nil, seed: Hex.encode(seed), label: Hex.encode(label), count: count,
                        elements: mask.elements.map { String($0) }))
            }
            groups.append(.init(bits: bits, tests: tests))
        }
        // The same seed under two labels gives unrelated masks.
        let seed = inputs.bytes(MaskExpander.seedByteCount)
        var separation: [MaskExpansionRunner.Test] = []
        for label in ["weights", "bias"] {
            let mask = try MaskExpander(
                seed: SecureBytes(copying: seed), label: Array(label.utf8), bitWidth: BitWidth(32)
            ).expand(count: 8)
            tcId += 1
            separation.append(
                .init(
                    tcId: tcId, comment: "one seed, label \"\(label)\"", flags: ["DomainSeparation"], result: .valid,
                    error: nil,
                    seed: Hex.encode(seed), label: Hex.encode(Array(label.utf8)), count: 8,
                    elements: mask.elements.map { String($0) }))
        }
        groups.append(.init(bits: 32, tests: separation))
        for bits in [0, 65] {
            tcId += 1
            groups.append(
                .init(
                    bits: bits,
                    tests: [
                        .init(
                            tcId: tcId, comment: "bit width \(bits) is outside 1...64", flags: ["Refused"],
                            result: .invalid,
                            error: "bitWidthOutOfRange", seed: Hex.encode(seed), label: "", count: 4, elements: [])
                    ]))
        }
        tcId += 1
        groups.append(
            .init(
                bits: 32,
                tests: [
                    .init(
                        tcId: tcId, comment: "a 16-byte seed", flags: ["Refused"], result: .invalid,
                        error: "invalidLength", seed: Hex.encode(seed.prefix(16)), label: "", count: 4, elements: [])
                ]))
        return VectorFile(
            algorithm: MaskExpansionRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's mask expansion (Specs/primitives.md, Mask expansion): key = VeilKDF(seed, \"mask-expansion\", context = label);",
                "IETF ChaCha20 keystream, zero nonce, counter from 0; element i = the ceil(b/8) bytes at offset i*ceil(b/8),",
                "little-endian, mod 2^b. seed and label are hex; elements are decimal strings.",
                "Project vectors, generated by `veil vectors generate`, confirmed by Specs/reference/.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "An ordinary expansion."),
                "ChunkBoundary": VectorNote(
                    bugType: "EDGE_CASE", description: "More elements than one 1024-element chunk."),
                "DomainSeparation": VectorNote(bugType: "BASIC", description: "One seed under two labels."),
                "Refused": VectorNote(
                    bugType: "DEFINED", description: "Parameters that must be refused with the named error."),
            ],
            testGroups: groups, numberOfTests: tcId)
    }

    // MARK: - VEIL-SHAMIR

    static func shamir() throws -> VectorFile<ShamirRunner.Group> {
        var inputs = Inputs("shamir")
        var groups: [ShamirRunner.Group] = []
        var tcId = 0
        func test(
            _ comment: String, _ flags: [String], _ result: ExpectedResult, error: String? = nil, operation: String,
            secret: [UInt8], seed: [UInt8]? = nil, indices: [UInt32]? = nil, shares: [String]
        ) -> ShamirRunner.Test {
            tcId += 1
            return .init(
                tcId: tcId, comment: comment, flags: flags, result: result, error: error, operation: operation,
                secret: Hex.encode(secret), generatorSeed: seed.map { Hex.encode($0) }, indices: indices, shares: shares
            )
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
        return VectorFile(
            algorithm: ShamirRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's Shamir secret sharing (Specs/primitives.md, Shamir secret sharing) over GF(2^61 - 1), 7-byte chunks.",
                "A share is index (u32 LE) || secret length (u8) || one u64 LE value per chunk, hex here. \"split\" deals with the",
                "deterministic generator seeded with generatorSeed; \"reconstruct\" combines the shares given.",
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

    // MARK: - VEIL-FIXED-POINT

    static func fixedPoint() throws -> VectorFile<FixedPointRunner.Group> {
        var inputs = Inputs("codec")
        var groups: [FixedPointRunner.Group] = []
        var tcId = 0
        let values: [Double] = [
            0, 1, -1, 0.5, -0.5, 0.3, -0.3, 1e-9, -1e-9, 0.999999, 5, -5, 0.123456789, -0.75, 2.5e-5,
        ]

        for (clip, f, bits, n) in [
            (1.0, 16, 32, 100), (4.0, 20, 64, 1000), (0.5, 8, 16, 10), (1.0, 0, 2, 1), (2.0, 30, 64, 1 << 20),
        ] {
            let codec = try FixedPointCodec(clip: clip, fractionalBits: f, bitWidth: BitWidth(bits), maxAddends: n)
            var tests: [FixedPointRunner.Test] = []
            var encodings: [ModularVector] = []
            for round in 0..<3 {
                let seed = inputs.bytes(ChaCha20Generator.seedByteCount)
                var generator = try ChaCha20Generator(publicSeed: seed)
                let encoded = try codec.encode(values, using: &generator)
                encodings.append(encoded)
                tcId += 1
                tests.append(
                    .init(
                        tcId: tcId,
                        comment: "encode with generator seed #\(round + 1): clipping at ±\(clip), stochastic rounding",
                        flags: ["Normal"], result: .valid, error: nil, operation: "encode", values: values,
                        generatorSeed: Hex.encode(seed), encoded: encoded.elements.map { String($0) }))
            }
            let addendCount = min(n, encodings.count)
            var sum = encodings[0]
            for e in encodings[1..<addendCount] { try sum.add(e) }
            tcId += 1
            tests.append(
                .init(
                    tcId: tcId, comment: "decode the sum of \(addendCount) encodings", flags: ["Normal"],
                    result: .valid, error: nil,
                    operation: "decodeSum", addends: encodings[0..<addendCount].map { $0.elements.map { String($0) } },
                    sum: sum.elements.map { String($0) }, decoded: try codec.decode(sum)))
            // The worst case the bound allows: n encodings of +c and of −c sum without wrapping.
            let worst = min(n, 64)
            let top = ModularVector(
                reducing: [codec.maxMagnitude, codec.bitWidth.element(-Int64(codec.maxMagnitude))],
                bitWidth: codec.bitWidth)
            var worstSum = top
            for _ in 1..<worst { try worstSum.add(top) }
            tcId += 1
            tests.append(
                .init(
                    tcId: tcId, comment: "\(worst) encodings of +c and of -c sum without wrapping", flags: ["EdgeCase"],
                    result: .valid,
                    error: nil, operation: "decodeSum",
                    addends: Array(repeating: top.elements.map { String($0) }, count: worst),
                    sum: worstSum.elements.map { String($0) }, decoded: try codec.decode(worstSum)))
            groups.append(.init(clip: clip, fractionalBits: f, bits: bits, maxAddends: n, tests: tests))
        }

        for (comment, clip, f, bits, n, error) in [
            ("65536 addends of up to 2^16 reach 2^32, beyond 2^31 - 1", 1.0, 16, 32, 65536, "sumCouldWrap"),
            ("one value of 2^31 already exceeds 2^31 - 1", 1.0, 31, 32, 1, "sumCouldWrap"),
            ("a clip of 2^62 at f = 2 cannot even be represented", 0x1p62, 2, 64, 1, "sumCouldWrap"),
            ("a zero clip", 0.0, 16, 32, 10, "invalidClip"),
            ("a negative clip", -1.0, 16, 32, 10, "invalidClip"),
            ("63 fractional bits", 1.0, 63, 64, 1, "fractionalBitsOutOfRange"),
            ("no addends", 1.0, 16, 32, 0, "invalidAddendCount"),
            ("bit width 65", 1.0, 16, 65, 10, "bitWidthOutOfRange"),
        ] as [(String, Double, Int, Int, Int, String)] {
            tcId += 1
            groups.append(
                .init(
                    clip: clip, fractionalBits: f, bits: bits, maxAddends: n,
                    tests: [
                        .init(
                            tcId: tcId, comment: comment, flags: ["Refused"], result: .invalid, error: error,
                            operation: "encode", values: [0.5],
                            generatorSeed: Hex.encode([UInt8](repeating: 0, count: ChaCha20Generator.seedByteCount)),
                            encoded: [])
                    ]))
        }
        return VectorFile(
            algorithm: FixedPointRunner.algorithm, generatorVersion: version,
            header: [
                "Veil's fixed-point codec (Specs/primitives.md, Fixed-point codec): clip to [-c, c], scale by 2^f, round up with",
                "probability equal to the fraction (u = (next() >> 11) * 2^-53 from the deterministic generator, one draw per value,",
                "up iff u < fraction), two's complement mod 2^b. Encodings and sums are decimal strings; reals are JSON numbers.",
                "Construction refuses n * ceil(c * 2^f) > 2^(b-1) - 1. Project vectors, generated by `veil vectors generate`,",
                "confirmed by Specs/reference/.",
            ],
            notes: [
                "Normal": VectorNote(bugType: "BASIC", description: "Encoding or decoding that must succeed."),
                "EdgeCase": VectorNote(bugType: "EDGE_CASE", description: "The largest sums the bound allows."),
                "Refused": VectorNote(
                    bugType: "DEFINED", description: "Parameters the codec must refuse with the named error."),
            ],
            testGroups: groups, numberOfTests: tcId)
    }
}
