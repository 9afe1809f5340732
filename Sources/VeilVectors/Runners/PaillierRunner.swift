import Foundation
import VeilCore
import VeilCrypto
import VeilPaillier

/// `PAILLIER` files: the ISO/IEC 18033-6 values (Intel IPCL) and the project's own known
/// answers — key generation from a seed, the modulus and private-key rules, encryption with
/// given randomness, DJN, homomorphic operations, packing and threshold decryption. Integers
/// are decimal strings.
enum PaillierRunner: VectorRunner {
    static let algorithm = "PAILLIER"

    struct Share: Codable, Sendable {
        var holder: Int
        var value: String
        /// A partial decryption's claimed ciphertext, when it is not the test's `c`.
        var ciphertext: String?
        /// A partial decryption's proof (§6.2): challenge e, response z, and — for an honest
        /// one — the prover's r, from which it is recomputed.
        var challenge: String?
        var response: String?
        var r: String?
    }

    struct Group: Codable, Sendable {
        /// The key's primes (absent for packing-only groups).
        var p: String?
        var q: String?
        /// Damgård–Jurik's s for the group's key (absent: 1, Paillier).
        var s: Int?
        /// Threshold groups: the modulus, t, ℓ and the dealt shares.
        var n: String?
        var threshold: Int?
        var holders: Int?
        var shares: [Share]?
        /// Verified threshold groups (§6.2): v and v_1 … v_ℓ.
        var v: String?
        var verificationKeys: [String]?
        var tests: [Test]
    }

    struct Test: VectorCase {
        /// generate, deal, publicKey, pack, unpack: Damgård–Jurik's s (absent: 1).
        var s: Int?
        var tcId: Int
        var comment: String
        var flags: [String]
        var result: ExpectedResult
        var error: String?
        /// generate, deal, publicKey, privateKey, encrypt, decrypt, add, addPlain, multiply, djn, pack,
        /// unpack, partialDecrypt.
        var operation: String
        /// generate/deal: the ChaCha20 generator's seed (hex); keyBits is the key size.
        var seed: String?
        /// generate, publicKey, privateKey, deal: the modulus and its factors.
        var n: String?
        var p: String?
        var q: String?
        /// deal: t, ℓ and the dealt shares.
        var threshold: Int?
        var holders: Int?
        var shares: [Share]?
        var m: String?
        var r: String?
        var c: String?
        var c1: String?
        var c2: String?
        var k: String?
        var base: String?
        var alpha: String?
        var bits: Int?
        var maxAddends: Int?
        var keyBits: Int?
        var vector: [String]?
        var plaintexts: [String]?
        var addends: Int?
        var partials: [Share]?
        /// partialDecrypt with proofs: the holders whose proofs fail, ascending.
        var rejected: [Int]?
    }

    struct Refusal: Error {
        let code: String
    }

    static func run(_ data: Data) throws(VectorError) -> [CaseOutcome] {
        try runGroups(data, as: Group.self) { group in
            group.tests.map { test in judge(test) { try check(group, test) } }
        }
    }

    static func integer(_ text: String?, _ field: String) throws(VectorError) -> BigInt {
        guard let text else { throw .malformedField(tcId: nil, field: field, detail: "missing") }
        guard let value = BigInt(decimal: text) else {
            throw .malformedField(tcId: nil, field: field, detail: "\"\(text.prefix(40))\" is not a decimal integer")
        }
        return value
    }

    /// Runs a Paillier operation, turning its error into a refusal with the vector's code.
    static func paillier<T>(_ body: () throws(PaillierError) -> T) throws -> T {
        do { return try body() } catch { throw Refusal(code: code(error)) }
    }

    static func code(_ error: PaillierError) -> String {
        switch error {
        case .invalidModulus: "invalidModulus"
        case .invalidPrivateKey: "invalidPrivateKey"
        case .unsupportedKeySize: "unsupportedKeySize"
        case .unsupportedDegree: "unsupportedDegree"
        case .ciphertextOutOfRange: "ciphertextOutOfRange"
        case .plaintextOutOfRange: "plaintextOutOfRange"
        case .keyMismatch: "keyMismatch"
        case .malformed: "malformed"
        case .invalidPacking: "invalidPacking"
        case .tooManyAddends: "tooManyAddends"
        case .notEnoughPartialDecryptions: "notEnoughPartialDecryptions"
        case .invalidPartialDecryption: "invalidPartialDecryption"
        case .incorrectPartialDecryptions: "incorrectPartialDecryptions"
        case .invalidThresholdParameters: "invalidThresholdParameters"
        }
    }

    static func check(_ group: Group, _ test: Test) throws {
        switch test.operation {
        case "pack", "unpack":
            // A width outside 1...64 is refused by BitWidth, as the vector may intend.
            let bitWidth = try BitWidth(test.bits ?? 0)
            let packing = try paillier { () throws(PaillierError) in
                try PaillierPacking(
                    bitWidth: bitWidth, maxAddends: test.maxAddends ?? 0, keyBits: test.keyBits ?? 0,
                    degree: test.s ?? 1)
            }
            let vector = try ModularVector(
                elements: (test.vector ?? []).map { try decimal($0, "vector") }, bitWidth: bitWidth)
            let plaintexts = try (test.plaintexts ?? []).map { try integer($0, "plaintexts") }
            if test.operation == "pack" {
                try expectEqual(
                    try paillier { () throws(PaillierError) in try packing.pack(vector) }, plaintexts, "plaintexts")
            } else {
                let unpacked = try paillier { () throws(PaillierError) in
                    try packing.unpack(plaintexts, dimension: vector.count, addends: test.addends ?? 0)
                }
                try expectEqual(unpacked, vector, "vector")
            }
            return
        case "generate":
            var generator = try ChaCha20Generator(publicSeed: hex(test.seed ?? "", "seed"))
            let key = try paillier { () throws(PaillierError) in
                try PaillierPrivateKey.generate(bits: test.keyBits ?? 0, s: test.s ?? 1, using: &generator)
            }
            try expectEqual(key.primes.p, try integer(test.p, "p"), "p")
            try expectEqual(key.primes.q, try integer(test.q, "q"), "q")
            try expectEqual(key.publicKey.n, try integer(test.n, "n"), "n")
            return
        case "deal":
            var generator = try ChaCha20Generator(publicSeed: hex(test.seed ?? "", "seed"))
            let (key, shares) = try paillier { () throws(PaillierError) in
                try ThresholdPaillierDealer.deal(
                    bits: test.keyBits ?? 0, threshold: test.threshold ?? 0, holders: test.holders ?? 0,
                    s: test.s ?? 1, using: &generator)
            }
            try expectEqual(key.publicKey.n, try integer(test.n, "n"), "n")
            try expectEqual(
                shares.map { $0.secretValue }, try (test.shares ?? []).map { try integer($0.value, "shares") },
                "shares")
            return
        case "publicKey":
            let n = try integer(test.n, "n")
            let key = try paillier { () throws(PaillierError) in try PaillierPublicKey(n: n, s: test.s ?? 1) }
            try expectEqual(key.n, n, "n")
            return
        case "privateKey":
            let (p, q) = (try integer(test.p, "p"), try integer(test.q, "q"))
            let key = try paillier { () throws(PaillierError) in try PaillierPrivateKey(p: p, q: q) }
            try expectEqual(key.publicKey.n, try integer(test.n, "n"), "n")
            return
        case "partialDecrypt":
            let n = try integer(group.n, "n")
            let publicKey = try paillier { () throws(PaillierError) in try PaillierPublicKey(n: n, s: group.s ?? 1) }
            var verification: ThresholdVerificationKeys?
            if let v = group.v {
                verification = ThresholdVerificationKeys(
                    v: try integer(v, "v"),
                    holderKeys: try (group.verificationKeys ?? []).map { try integer($0, "verificationKeys") })
            }
            let thresholdKey = try paillier { () throws(PaillierError) in
                try ThresholdPaillierPublicKey(
                    publicKey: publicKey, threshold: group.threshold ?? 0, holders: group.holders ?? 0,
                    verification: verification)
            }
            let shares = try (group.shares ?? []).map { share in
                let value = try integer(share.value, "shares")
                return try paillier { () throws(PaillierError) in
                    try ThresholdKeyShare(holder: share.holder, thresholdKey: thresholdKey, secret: value)
                }
            }
            let cValue = try integer(test.c, "c")
            let c = try paillier { () throws(PaillierError) in try publicKey.ciphertext(cValue) }
            let given = try (test.partials ?? []).map { partial in
                var proof: PartialDecryptionProof?
                if let e = partial.challenge {
                    proof = PartialDecryptionProof(
                        challenge: try integer(e, "challenge"), response: try integer(partial.response, "response"))
                }
                return PartialDecryption(
                    holder: partial.holder,
                    ciphertext: try partial.ciphertext.map { try integer($0, "ciphertext") } ?? c.value,
                    value: try integer(partial.value, "partials"), proof: proof)
            }
            // An honest prover's partial (r given) is recomputed from its share, proof and all.
            for (partial, stated) in zip(given, test.partials ?? []) {
                guard let r = stated.r else { continue }
                guard let share = shares.first(where: { $0.holder == partial.holder }) else {
                    throw VectorError.malformedField(
                        tcId: nil, field: "partials", detail: "holder \(partial.holder) has no share in the group")
                }
                let rValue = try integer(r, "r")
                let computed = try paillier { () throws(PaillierError) in
                    try share.partiallyDecrypt(c, proofRandomness: rValue)
                }
                try expectEqual(computed, partial, "partial decryption and proof of holder \(partial.holder)")
            }
            if test.result == .valid && verification == nil {
                // Every partial of a valid case is recomputed from its holder's share.
                for partial in given {
                    guard let share = shares.first(where: { $0.holder == partial.holder }) else {
                        throw VectorError.malformedField(
                            tcId: nil, field: "partials", detail: "holder \(partial.holder) has no share in the group")
                    }
                    let computed = try paillier { () throws(PaillierError) in try share.partiallyDecrypt(c) }
                    try expectEqual(computed.value, partial.value, "partial decryption of holder \(partial.holder)")
                }
            }
            let result = try paillier { () throws(PaillierError) in try thresholdKey.decrypt(given, of: c) }
            try expectEqual(publicKey.signed(residue: result.plaintext), try integer(test.m, "m"), "combined plaintext")
            if verification != nil {
                try expectEqual(result.rejected, test.rejected ?? [], "holders whose proofs fail")
            }
            return
        default:
            break
        }
        let p = try integer(group.p, "p")
        let q = try integer(group.q, "q")
        let key = try paillier { () throws(PaillierError) in try PaillierPrivateKey(p: p, q: q, s: group.s ?? 1) }
        let pk = key.publicKey
        func ciphertext(_ text: String?, _ field: String) throws -> PaillierCiphertext {
            let value = try integer(text, field)
            return try paillier { () throws(PaillierError) in try pk.ciphertext(value) }
        }
        switch test.operation {
        case "encrypt":
            let m = try integer(test.m, "m")
            let r = try integer(test.r, "r")
            let c = try paillier { () throws(PaillierError) in
                try pk.encrypt(residue: try pk.residue(signed: m), randomness: r)
            }
            try expectEqual(c.value, try integer(test.c, "c"), "ciphertext")
            try expectEqual(try paillier { () throws(PaillierError) in try key.decryptSigned(c) }, m, "decryption")
        case "decrypt":
            let c = try ciphertext(test.c, "c")
            try expectEqual(
                try paillier { () throws(PaillierError) in try key.decryptSigned(c) }, try integer(test.m, "m"),
                "plaintext")
        case "add":
            let c1 = try ciphertext(test.c1, "c1")
            let c2 = try ciphertext(test.c2, "c2")
            let sum = try paillier { () throws(PaillierError) in try pk.add(c1, c2) }
            try expectEqual(sum.value, try integer(test.c, "c"), "product of ciphertexts")
            try expectEqual(
                try paillier { () throws(PaillierError) in try key.decryptSigned(sum) }, try integer(test.m, "m"), "sum"
            )
        case "addPlain", "multiply":
            let c1 = try ciphertext(test.c1, "c1")
            let k = try integer(test.k, "k")
            let out = try paillier { () throws(PaillierError) in
                test.operation == "addPlain" ? try pk.add(c1, plaintext: k) : try pk.multiply(c1, by: k)
            }
            try expectEqual(out.value, try integer(test.c, "c"), "ciphertext")
            try expectEqual(
                try paillier { () throws(PaillierError) in try key.decryptSigned(out) }, try integer(test.m, "m"),
                "plaintext")
        case "djn":
            let base = try integer(test.base, "base")
            let alpha = try integer(test.alpha, "alpha")
            let m = try integer(test.m, "m")
            for table in [false, true] {
                let encryptor = DJNEncryptor(publicKey: pk, base: base, precomputeTable: table, window: 4)
                let c = try paillier { () throws(PaillierError) in
                    try encryptor.encrypt(residue: try pk.residue(signed: m), exponent: alpha)
                }
                try expectEqual(
                    c.value, try integer(test.c, "c"), table ? "ciphertext (fixed-base table)" : "ciphertext")
            }
        default:
            throw VectorError.unreadable("unknown operation \(test.operation)")
        }
    }
}
