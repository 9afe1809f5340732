import Foundation
import FuzzSupport
import VeilPaillier

// The Paillier files of `veil paillier` and the encodings a key holder and participants send:
// public.json ({"n"}), secret.json ({"p", "q"}), ciphertext files (one decimal per line, read
// as `veil paillier add` and `decrypt` read them, and decrypted), and the fixed-width
// big-endian modulus and ciphertext of the wire (`Specs/paillier.md`).
//
// Input: one selector byte, then the bytes under test.
//   0 public.json   1 secret.json   2 a ciphertext file under a fixed 512-bit key
//   3 a big-endian modulus   4 a big-endian ciphertext under the fixed key

/// A fixed key, the same in every run (seeded), small so that decryption is fast.
let fixedKey: PaillierPrivateKey = {
    var generator = SplitMix64(seed: 0x5EED)
    return try! PaillierPrivateKey.generate(bits: 512, using: &generator)  // fixed parameters, always valid
}()

/// The lines of a ciphertext file as `veil paillier` reads them: blank lines skipped, each
/// other line trimmed and parsed as a decimal ciphertext under `key`.
func ciphertexts(_ data: [UInt8], _ key: PaillierPublicKey) throws(PaillierError) -> [PaillierCiphertext] {
    let text = String(decoding: data, as: UTF8.self)
    var out: [PaillierCiphertext] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { continue }
        out.append(try key.ciphertext(decimal: trimmed))
    }
    return out
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let (selector, body) = split(bytes(data, size)) else { return 0 }
    switch selector % 5 {
    case 0:
        guard let key = try? PaillierKeyFiles.publicKey(from: Data(body)) else { return 0 }
        checkRoundTrip("public.json", key) {
            try PaillierKeyFiles.publicFile($0)
        } decode: {
            try PaillierKeyFiles.publicKey(from: $0)
        }
    case 1:
        guard let key = try? PaillierKeyFiles.privateKey(from: Data(body)) else { return 0 }
        let again: PaillierPrivateKey
        do { again = try PaillierKeyFiles.privateKey(from: try PaillierKeyFiles.secretFile(key)) } catch {
            violated("secret.json: an accepted key does not round-trip: \(error)")
        }
        guard again.publicKey == key.publicKey, again.primes == key.primes else {
            violated("secret.json: decode(encode(key)) is another key")
        }
        // A key that loads must work: E(m) decrypts to m.
        guard let c = try? key.publicKey.encrypt(signed: -7), (try? key.decryptSigned(c)) == -7 else {
            violated("secret.json: an accepted key does not decrypt what it encrypts")
        }
    case 2:
        guard let file = try? ciphertexts(body, fixedKey.publicKey) else { return 0 }
        for c in file {
            guard (try? fixedKey.publicKey.ciphertext(decimal: c.decimal)) == c else {
                violated("ciphertext file: a ciphertext does not round-trip through its decimal")
            }
            do { _ = try fixedKey.decryptSigned(c) } catch {
                violated("an accepted ciphertext does not decrypt: \(error)")
            }
        }
    case 3:
        guard let key = try? PaillierPublicKey(bigEndian: body) else { return 0 }
        checkRoundTrip("big-endian modulus", key) {
            $0.bigEndianBytes
        } decode: {
            try PaillierPublicKey(bigEndian: $0)
        }
    default:
        guard let c = try? fixedKey.publicKey.ciphertext(bigEndian: body) else { return 0 }
        if c.bigEndianBytes() != body { violated("big-endian ciphertext: accepted a non-canonical encoding") }
    }
    return 0
}

/// Builds the fixed key before the first input, and with `FUZZ_WRITE_SEEDS=DIR` writes the
/// project's own encodings of it there as seed inputs (one per mode) and exits.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_WRITE_SEEDS"] else {
        _ = fixedKey.publicKey
        return 0
    }
    let key = fixedKey.publicKey
    let values: [BigInt] = [0, 1, -1, 5, -3, key.maxSignedMagnitude]
    let ciphertexts = values.map { try! key.encrypt(signed: $0) }  // in range by construction
    let seeds: [(String, [UInt8])] = [
        ("public.json", [0] + Array(try! PaillierKeyFiles.publicFile(key))),
        ("secret.json", [1] + Array(try! PaillierKeyFiles.secretFile(fixedKey))),
        ("ciphertexts.txt", [2] + Array(ciphertexts.map(\.decimal).joined(separator: "\n").utf8) + [10]),
        ("modulus.bin", [3] + key.bigEndianBytes),
        ("ciphertext.bin", [4] + ciphertexts[3].bigEndianBytes()),
    ]
    for (name, bytes) in seeds {
        _ = FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data(bytes))
    }
    exit(0)
}
