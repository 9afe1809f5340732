import Foundation

/// The key files of `veil paillier keygen`: `public.json` = {"n": decimal}, `secret.json` =
/// {"p": decimal, "q": decimal}. Decimal strings, so that any language reads them exactly.
public enum PaillierKeyFiles {
    struct PublicFile: Codable {
        var n: String
    }

    struct SecretFile: Codable {
        var p: String
        var q: String
    }

    /// `public.json`.
    public static func publicFile(_ key: PaillierPublicKey) throws -> Data {
        try encoder.encode(PublicFile(n: key.n.decimal))
    }

    /// `secret.json`. The returned bytes hold the factors of n: write them to a file only the owner reads.
    public static func secretFile(_ key: PaillierPrivateKey) throws -> Data {
        let (p, q) = key.primes
        return try encoder.encode(SecretFile(p: p.decimal, q: q.decimal))
    }

    /// Reads `public.json`.
    /// - Throws: ``PaillierError`` for a file that does not parse or a modulus that is not a valid n.
    public static func publicKey(from data: Data) throws(PaillierError) -> PaillierPublicKey {
        let file: PublicFile
        do { file = try JSONDecoder().decode(PublicFile.self, from: data) } catch {
            throw .malformed("public key file: expected {\"n\": \"<decimal>\"}")
        }
        guard let n = BigInt(decimal: file.n) else { throw .malformed("public key file: n is not a decimal integer") }
        return try PaillierPublicKey(n: n)
    }

    /// Reads `secret.json`.
    /// - Throws: ``PaillierError`` for a file that does not parse or factors that do not make a key.
    public static func privateKey(from data: Data) throws(PaillierError) -> PaillierPrivateKey {
        let file: SecretFile
        do { file = try JSONDecoder().decode(SecretFile.self, from: data) } catch {
            throw .malformed("secret key file: expected {\"p\": \"<decimal>\", \"q\": \"<decimal>\"}")
        }
        guard let p = BigInt(decimal: file.p, secret: true), let q = BigInt(decimal: file.q, secret: true) else {
            throw .malformed("secret key file: p and q must be decimal integers")
        }
        return try PaillierPrivateKey(p: p, q: q)
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return encoder
    }
}
