import Foundation
import FuzzSupport
import VeilPaillier

// The Paillier files of `veil paillier` and the encodings a key holder and participants send:
// public.json ({"n"}), secret.json ({"p", "q"}), ciphertext files (decimal or veil format,
// read as `veil paillier add` and `decrypt` read them, re-encoded, decrypted and unpacked), and the fixed-width
// big-endian modulus and ciphertext of the wire (`Specs/paillier.md`).
//
// Input: one selector byte, then the bytes under test.
//   0 public.json   1 secret.json   2 a ciphertext file (decimal or veil) under a fixed 512-bit key
//   3 a big-endian modulus   4 a big-endian ciphertext under the fixed key

/// A fixed key, the same in every run (seeded), small so that decryption is fast.
let fixedKey: PaillierPrivateKey = {
    var generator = SplitMix64(seed: 0x5EED)
    return try! PaillierPrivateKey.generate(bits: 512, using: &generator)  // fixed parameters, always valid
}()

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
        // As `veil paillier add` and `decrypt` read it, in either format (§8.1).
        guard let file = try? PaillierCiphertextFile.decode(Data(body), key: fixedKey.publicKey) else { return 0 }
        let again: PaillierCiphertextFile
        do {
            again = try PaillierCiphertextFile.decode(
                try file.encoded(key: fixedKey.publicKey), key: fixedKey.publicKey)
        } catch { violated("ciphertext file: an accepted file does not round-trip: \(error)") }
        guard again.ciphertexts == file.ciphertexts, again.format == file.format, again.summed == file.summed,
            again.packing == file.packing
        else { violated("ciphertext file: decode(encode(file)) is another file") }
        let plaintexts: [BigInt]
        do { plaintexts = try PaillierBatch.decrypt(file.ciphertexts, key: fixedKey) } catch {
            violated("an accepted ciphertext does not decrypt: \(error)")
        }
        // Arbitrary ciphertexts may overflow their slots (a typed refusal), never trap.
        if let packing = file.packing {
            _ = try? packing.layout.unpack(plaintexts, dimension: packing.values, addends: file.summed)
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

/// A packed veil file of three signed 32-bit values, summed from two (fixed values, always valid).
func packedSeed(_ key: PaillierPublicKey) throws -> PaillierCiphertextFile {
    let packing = try PaillierCiphertextFile.Packing(valueBits: 32, addends: 2, values: 3, keyBits: key.bits)
    let files = try [[1, -2, Int64(Int32.max)], [-1, 5, Int64(Int32.min)]].map {
        try PaillierBatch.encrypt(residues: try packing.layout.pack(try packing.residues($0)), key: key)
    }
    return PaillierCiphertextFile(
        format: .veil, ciphertexts: try PaillierBatch.sum(files, key: key), summed: 2, packing: packing)
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
        (
            "ciphertexts.veil",
            [2] + Array(try! PaillierCiphertextFile(format: .veil, ciphertexts: ciphertexts).encoded(key: key))
        ),
        ("packed.veil", [2] + Array(try! packedSeed(key).encoded(key: key))),
        ("modulus.bin", [3] + key.bigEndianBytes),
        ("ciphertext.bin", [4] + ciphertexts[3].bigEndianBytes()),
    ]
    for (name, bytes) in seeds {
        _ = FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data(bytes))
    }
    exit(0)
}
