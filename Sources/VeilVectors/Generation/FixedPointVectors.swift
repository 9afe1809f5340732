import VeilCore
import VeilCrypto

extension ProjectVectors {
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
