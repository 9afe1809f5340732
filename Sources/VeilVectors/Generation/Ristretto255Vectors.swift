import VeilCore
import VeilCrypto

extension ProjectVectors {
    static func ristretto255() throws -> VectorFile<Ristretto255Runner.Group> {
        var inputs = Inputs("ristretto255")
        var tests: [Ristretto255Runner.Test] = []
        func add(
            _ comment: String, _ operation: String, flags: [String], result: ExpectedResult = .valid,
            error: String? = nil, scalar: [UInt8]? = nil, wide: [UInt8]? = nil, element: [UInt8]? = nil,
            point: [UInt8]? = nil, shared: [UInt8]? = nil, context: [UInt8]? = nil, proof: [UInt8]? = nil
        ) {
            tests.append(
                .init(
                    tcId: tests.count + 1, comment: comment, flags: flags, result: result, error: error,
                    operation: operation, scalar: scalar.map(Hex.encode), wide: wide.map(Hex.encode),
                    element: element.map(Hex.encode), point: point.map(Hex.encode), shared: shared.map(Hex.encode),
                    context: context.map(Hex.encode), proof: proof.map(Hex.encode)))
        }
        func scalar(_ k: Int) -> [UInt8] {
            withUnsafeBytes(of: UInt64(k).littleEndian, Array.init) + [UInt8](repeating: 0, count: 24)
        }
        func randomKey() -> Ristretto255.PrivateKey {
            try! Ristretto255.PrivateKey(rawRepresentation: Ristretto255.reduce(SecureBytes(copying: inputs.bytes(64))))
        }

        // Multiples of the generator: RFC 9496 Appendix A.1 lists 0·B … 15·B.
        for k in 1...15 {
            let key = try Ristretto255.PrivateKey(rawRepresentation: SecureBytes(copying: scalar(k)))
            add(
                "\(k)·B (RFC 9496 A.1)", "base", flags: ["Rfc9496"], scalar: scalar(k),
                element: key.publicKey.rawRepresentation)
        }
        var keys: [Ristretto255.PrivateKey] = []
        for _ in 0..<4 { keys.append(randomKey()) }
        for key in keys {
            add(
                "a random scalar times B", "base", flags: ["Normal"],
                scalar: key.rawRepresentation.unsafeExposedBytes(),
                element: key.publicKey.rawRepresentation)
        }

        // Decoding: what is accepted and what is refused.
        add(
            "an element (the first random scalar times B) decodes", "decode", flags: ["Normal"],
            element: keys[0].publicKey.rawRepresentation)
        add(
            "the identity (32 zero bytes) is refused", "decode", flags: ["Identity"], result: .invalid,
            error: "invalidPoint", element: [UInt8](repeating: 0, count: 32))
        add(
            "s = p = 2^255 − 19 is not canonical", "decode", flags: ["NonCanonical"], result: .invalid,
            error: "invalidPoint", element: [0xED] + [UInt8](repeating: 0xFF, count: 30) + [0x7F])
        add(
            "all bytes 0xff: s ≥ p", "decode", flags: ["NonCanonical"], result: .invalid, error: "invalidPoint",
            element: [UInt8](repeating: 0xFF, count: 32))
        add(
            "s = 1 is negative (odd)", "decode", flags: ["Negative"], result: .invalid, error: "invalidPoint",
            element: [1] + [UInt8](repeating: 0, count: 31))
        // Even, canonical s that are not the encoding of any element (RFC 9496 §4.3.1 fails).
        var found = 0
        for s in stride(from: 2, to: 200, by: 2) where found < 3 {
            let bytes = [UInt8(s)] + [UInt8](repeating: 0, count: 31)
            if (try? Ristretto255.PublicKey(rawRepresentation: bytes)) == nil {
                add(
                    "s = \(s): even and below p, but not an element", "decode", flags: ["NotOnGroup"], result: .invalid,
                    error: "invalidPoint", element: bytes)
                found += 1
            }
        }

        // Reduction of 64-byte strings mod ℓ.
        let ell = try Hex.decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
        for (comment, wide) in [
            ("zero", [UInt8](repeating: 0, count: 64)),
            ("ℓ itself reduces to zero", ell + [UInt8](repeating: 0, count: 32)),
            ("2^512 − 1", [UInt8](repeating: 0xFF, count: 64)), ("random bytes", inputs.bytes(64)),
        ] {
            add(
                "Reduce: \(comment)", "reduce", flags: ["Reduce"],
                scalar: Ristretto255.reduce(SecureBytes(copying: wide)).unsafeExposedBytes(),
                wide: wide)
        }

        // Agreement: x·(y·B) = y·(x·B).
        for (x, y) in [(keys[0], keys[1]), (keys[1], keys[0]), (keys[2], keys[3])] {
            add(
                "agreement", "agree", flags: ["Agreement"], scalar: x.rawRepresentation.unsafeExposedBytes(),
                point: y.publicKey.rawRepresentation,
                shared: try x.sharedSecret(with: y.publicKey).unsafeExposedBytes())
        }

        // Proofs: made deterministically, then refused when any part changes.
        let contexts: [[UInt8]] = [[], Array("veil/v1/secagg/complaint".utf8) + [0] + inputs.bytes(40)]
        var made: [(x: Ristretto255.PrivateKey, y: Ristretto255.PublicKey, k: [UInt8], proof: [UInt8], ctx: [UInt8])] =
            []
        for (i, context) in contexts.enumerated() {
            let (x, y) = (keys[i], keys[i + 2].publicKey)
            let (shared, proof) = try EqualityProof.prove(secret: x, base: y, context: context)
            add(
                "a proof that log_B X = log_Y K, context of \(context.count) bytes", "prove", flags: ["Proof"],
                scalar: x.rawRepresentation.unsafeExposedBytes(), point: y.rawRepresentation,
                shared: shared.unsafeExposedBytes(), context: context, proof: proof.rawRepresentation)
            made.append((x, y, shared.unsafeExposedBytes(), proof.rawRepresentation, context))
        }
        let good = made[1]
        func refuse(
            _ comment: String, x: [UInt8]? = nil, y: [UInt8]? = nil, k: [UInt8]? = nil, ctx: [UInt8]? = nil,
            proof: [UInt8]? = nil
        ) {
            add(
                comment, "verify", flags: ["BadProof"], result: .invalid, error: "invalidProof",
                element: x ?? good.x.publicKey.rawRepresentation, point: y ?? good.y.rawRepresentation,
                shared: k ?? good.k, context: ctx ?? good.ctx, proof: proof ?? good.proof)
        }
        add(
            "the proof verifies", "verify", flags: ["Proof"], element: good.x.publicKey.rawRepresentation,
            point: good.y.rawRepresentation, shared: good.k, context: good.ctx, proof: good.proof)
        var flipped = good.proof
        flipped[0] ^= 1
        refuse("the challenge changed", proof: flipped)
        flipped = good.proof
        flipped[40] ^= 1
        refuse("the response changed", proof: flipped)
        refuse("another K (the element of another pair)", k: keys[3].publicKey.rawRepresentation)
        refuse("another context (the complaint replayed about another pair)", ctx: good.ctx + [0])
        refuse("X and Y exchanged", x: good.y.rawRepresentation, y: good.x.publicKey.rawRepresentation)
        refuse("a response of ℓ, not reduced", proof: Array(good.proof.prefix(32)) + ell)
        refuse("c = s = 0", proof: [UInt8](repeating: 0, count: 64))
        refuse("K the identity", k: [UInt8](repeating: 0, count: 32))

        return VectorFile(
            algorithm: Ristretto255Runner.algorithm, generatorVersion: version,
            header: [
                "ristretto255 (RFC 9496) and the equality-of-discrete-logarithms proof of Specs/primitives.md §12.",
                "operation: base (scalar·B = element), decode (element accepted or refused), reduce (64 bytes mod ℓ),",
                "agree (scalar·point = shared), prove (the deterministic proof for scalar, point = Y, context: shared K",
                "and proof = c ‖ s), verify (element = X, point = Y, shared = K, context, proof). Scalars and encodings are",
                "little-endian. Project vectors; the A.1 multiples are RFC 9496's, and Specs/reference/ recomputes all.",
            ],
            notes: [
                "Rfc9496": VectorNote(
                    bugType: "BASIC", description: "Multiples of the generator, as RFC 9496 lists them."),
                "Normal": VectorNote(bugType: "BASIC", description: "A valid operation."),
                "Identity": VectorNote(bugType: "EDGE_CASE", description: "The identity is refused as a key."),
                "NonCanonical": VectorNote(bugType: "CAN_OF_WORMS", description: "An encoding at or above p."),
                "Negative": VectorNote(bugType: "CAN_OF_WORMS", description: "An encoding with s negative (odd)."),
                "NotOnGroup": VectorNote(
                    bugType: "CAN_OF_WORMS", description: "A canonical s that decodes to nothing."),
                "Reduce": VectorNote(bugType: "BASIC", description: "A 64-byte string reduced mod ℓ."),
                "Agreement": VectorNote(bugType: "BASIC", description: "A shared element."),
                "Proof": VectorNote(bugType: "BASIC", description: "A valid proof."),
                "BadProof": VectorNote(bugType: "AUTH_BYPASS", description: "A proof that must not verify."),
            ],
            testGroups: [Ristretto255Runner.Group(tests: tests)], numberOfTests: tests.count)
    }
}
