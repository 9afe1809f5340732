import Foundation
import VeilCore
import VeilCrypto

/// The files of `veil paillier deal`, `partial-decrypt` and `combine` (`Specs/paillier.md` §8.2):
/// the threshold key (public), one share per holder (secret), and a holder's partial
/// decryptions of a ciphertext file with their proofs (public). Integers are decimal strings;
/// every reader refuses unknown keys by name.
public enum PaillierThresholdFiles {
    struct KeyFile: Codable {
        var n: String
        var damgardJurik: Int
        var threshold: Int
        var holders: Int
        var v: String
        var verificationKeys: [String]
        enum CodingKeys: String, CodingKey {
            case n, damgardJurik = "damgard_jurik", threshold, holders, v, verificationKeys = "verification_keys"
        }
    }

    struct ShareFile: Codable {
        var holder: Int
        var share: String
    }

    struct PartialsFile: Codable {
        var format: String
        var key: String
        var holder: Int
        var ciphertexts: String
        var partials: [Partial]
    }

    struct Partial: Codable {
        var value: String
        var challenge: String
        var response: String
    }

    static let partialsFormat = "veil-paillier-partials/1"

    /// `threshold.json`: n, s, t, ℓ, v and v_1 … v_ℓ.
    public static func keyFile(_ key: ThresholdPaillierPublicKey) throws -> Data {
        guard let verification = key.verification else {
            throw PaillierError.malformed("the key has no verification keys")
        }
        return try encoder.encode(
            KeyFile(
                n: key.publicKey.n.decimal, damgardJurik: key.publicKey.s, threshold: key.threshold,
                holders: key.holders, v: verification.v.decimal,
                verificationKeys: verification.holderKeys.map(\.decimal)))
    }

    /// `share-i.json`. The bytes hold a share of the decryption key: write them where only
    /// holder i reads them.
    public static func shareFile(_ share: ThresholdKeyShare) throws -> Data {
        try encoder.encode(ShareFile(holder: share.holder, share: share.secretValue.decimal))
    }

    /// Reads `threshold.json`.
    /// - Throws: ``PaillierError`` for an unknown or missing key, a value that is not a decimal
    ///   integer, or parameters the key rules refuse.
    public static func key(from data: Data) throws(PaillierError) -> ThresholdPaillierPublicKey {
        try refuseUnknownKeys(data, known: ["n", "damgard_jurik", "threshold", "holders", "v", "verification_keys"])
        let file: KeyFile
        do { file = try JSONDecoder().decode(KeyFile.self, from: data) } catch {
            throw .malformed(
                "threshold key file: expected n, damgard_jurik, threshold, holders, v and verification_keys")
        }
        let publicKey = try PaillierPublicKey(n: try decimal(file.n, "n"), s: file.damgardJurik)
        let verification = ThresholdVerificationKeys(
            v: try decimal(file.v, "v"),
            holderKeys: try file.verificationKeys.map { text throws(PaillierError) in
                try decimal(text, "verification_keys")
            })
        return try ThresholdPaillierPublicKey(
            publicKey: publicKey, threshold: file.threshold, holders: file.holders, verification: verification)
    }

    /// Reads `share-i.json` for `key`, and checks the share against the dealer's v_i — the
    /// holder's own check of the dealing (§6.2): a share that does not match is refused.
    public static func share(from data: Data, key: ThresholdPaillierPublicKey) throws(PaillierError)
        -> ThresholdKeyShare
    {
        try refuseUnknownKeys(data, known: ["holder", "share"])
        let file: ShareFile
        do { file = try JSONDecoder().decode(ShareFile.self, from: data) } catch {
            throw .malformed("share file: expected {\"holder\": i, \"share\": \"<decimal>\"}")
        }
        guard let value = BigInt(decimal: file.share, secret: true), value.signum >= 0 else {
            throw .malformed("share file: share must be a non-negative decimal integer")
        }
        let share = try ThresholdKeyShare(holder: file.holder, thresholdKey: key, secret: value)
        guard let verification = key.verification else { throw .malformed("the key has no verification keys") }
        let expected = verification.holderKeys[share.holder - 1]
        guard verification.v.securePower(key.delta * value, modulo: key.publicKey.ciphertextModulus) == expected
        else {
            throw .invalidThresholdParameters(
                "holder \(share.holder)'s share does not match the dealer's verification key v_\(share.holder)")
        }
        return share
    }

    /// SHA-256 of the ciphertexts in their fixed-width encoding, in hex: what a holder's
    /// partials are bound to.
    public static func digest(_ ciphertexts: [PaillierCiphertext]) -> String {
        Hex.encode(SHA256.hash(ciphertexts.flatMap { $0.bigEndianBytes() }))
    }

    /// A holder's partial decryptions of `ciphertexts`, with their proofs.
    public static func partialsFile(
        _ partials: [PartialDecryption], holder: Int, of ciphertexts: [PaillierCiphertext],
        key: ThresholdPaillierPublicKey
    ) throws -> Data {
        let file = PartialsFile(
            format: partialsFormat, key: PaillierKeyStatement.fingerprint(key.publicKey), holder: holder,
            ciphertexts: digest(ciphertexts),
            partials: try partials.map { partial in
                guard let proof = partial.proof else { throw PaillierError.malformed("a partial without its proof") }
                return Partial(
                    value: partial.value.decimal, challenge: proof.challenge.decimal, response: proof.response.decimal)
            })
        return try encoder.encode(file)
    }

    /// Reads a partials file for `ciphertexts` under `key`: the holder's partials, one per
    /// ciphertext in order.
    /// - Throws: ``PaillierError`` for another key, another ciphertext file, a count that is not
    ///   the ciphertexts', an unknown key or a value that is not a decimal integer. (Whether the
    ///   values are right is the proofs' business, at combination.)
    public static func partials(from data: Data, key: ThresholdPaillierPublicKey, of ciphertexts: [PaillierCiphertext])
        throws(PaillierError) -> [PartialDecryption]
    {
        try refuseUnknownKeys(data, known: ["format", "key", "holder", "ciphertexts", "partials"])
        if let entries = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["partials"] as? [Any] {
            for entry in entries {
                guard let object = entry as? [String: Any] else { throw .malformed("a partial is not a JSON object") }
                if let unknown = object.keys.sorted().first(where: { !["value", "challenge", "response"].contains($0) })
                {
                    throw .malformed("unknown key \(String(reflecting: unknown)) in a partial")
                }
            }
        }
        let file: PartialsFile
        do { file = try JSONDecoder().decode(PartialsFile.self, from: data) } catch {
            throw .malformed("partials file: expected format, key, holder, ciphertexts and partials")
        }
        guard file.format == partialsFormat else { throw .malformed("format must be \"\(partialsFormat)\"") }
        guard file.key == PaillierKeyStatement.fingerprint(key.publicKey) else { throw .keyMismatch }
        guard file.ciphertexts == digest(ciphertexts) else {
            throw .malformed("the partials are of another ciphertext file")
        }
        guard file.partials.count == ciphertexts.count else {
            throw .malformed("\(file.partials.count) partials for \(ciphertexts.count) ciphertexts")
        }
        var out: [PartialDecryption] = []
        for (partial, c) in zip(file.partials, ciphertexts) {
            out.append(
                PartialDecryption(
                    holder: file.holder, ciphertext: c.value, value: try decimal(partial.value, "value"),
                    proof: PartialDecryptionProof(
                        challenge: try decimal(partial.challenge, "challenge"),
                        response: try decimal(partial.response, "response"))))
        }
        return out
    }

    private static func decimal(_ text: String, _ field: String) throws(PaillierError) -> BigInt {
        guard let value = BigInt(decimal: text) else { throw .malformed("\(field) is not a decimal integer") }
        return value
    }

    private static func refuseUnknownKeys(_ data: Data, known: Set<String>) throws(PaillierError) {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw .malformed("not a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw .malformed("unknown key \(String(reflecting: unknown))")
        }
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
