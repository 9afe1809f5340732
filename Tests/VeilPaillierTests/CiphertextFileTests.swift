import Foundation
import Testing
import VeilCore
import VeilTestSupport

@testable import VeilPaillier

/// The ciphertext files of `veil paillier` (Specs/paillier.md §8.1): both formats round-trip,
/// and a veil header is read strictly.
@Suite struct CiphertextFileTests {
    let key = testKey

    func encrypted(_ values: [Int]) throws -> [PaillierCiphertext] {
        try PaillierBatch.encrypt(
            residues: values.map { try key.publicKey.residue(signed: BigInt($0)) }, key: key.publicKey)
    }

    /// `add`'s fused pass over decimal files gives the careful path's bytes, and leaves to it
    /// (nil) every file it cannot take, so that the careful path names the file and line.
    @Test func theFusedDecimalSumIsTheBatchSumAndRefusesWhatItCannotTake() throws {
        let columns = try (0..<3).map { column in try encrypted((0..<150).map { $0 * 31 - 2000 + column }) }
        let files = try columns.map {
            [UInt8](try PaillierCiphertextFile(format: .decimal, ciphertexts: $0).encoded(key: key.publicKey))
        }
        func fused(_ files: [[UInt8]]) -> [UInt8]? { fusedSum(files) }
        let expected = try PaillierCiphertextFile(
            format: .decimal, ciphertexts: try PaillierBatch.sum(columns, key: key.publicKey)
        ).encoded(key: key.publicKey)
        #expect(fused(files) == [UInt8](expected))
        #expect(fused([files[0]]) == files[0])
        func replacingLine(_ file: [UInt8], _ index: Int, with text: String) -> [UInt8] {
            var lines = String(decoding: file, as: UTF8.self).split(separator: "\n").map(String.init)
            lines[index] = text
            return Array((lines.joined(separator: "\n") + "\n").utf8)
        }
        let n2 = key.publicKey.ciphertextModulus
        for (why, text) in [
            ("a sign", "-" + String(String(decoding: files[1], as: UTF8.self).split(separator: "\n")[70])),
            ("zero", "0"), ("n²", n2.decimal), ("above n²", (n2 + 1).decimal), ("a letter", "12a4"),
            ("a multiple of p", key.primes.p.decimal),
        ] {
            #expect(fused([files[0], replacingLine(files[1], 70, with: text), files[2]]) == nil, "\(why)")
        }
        #expect(fused([files[0], Array(files[1].prefix(files[1].count / 2))]) == nil, "files of different lengths")
        // A line longer than n²'s digits and 64 leading zeros goes to the careful reader.
        let first = String(String(decoding: files[1], as: UTF8.self).split(separator: "\n")[5])
        // One past the bound, which sizeinbase may overstate by one.
        let zeros = String(repeating: "0", count: n2.decimal.count + 66 - first.count)
        #expect(fused([files[0], replacingLine(files[1], 5, with: zeros + first), files[2]]) == nil)
        // A leading zero is the same integer.
        let padded = replacingLine(
            files[1], 3, with: "000" + String(String(decoding: files[1], as: UTF8.self).split(separator: "\n")[3]))
        #expect(fused([files[0], padded, files[2]]) == [UInt8](expected))
    }

    /// The fused pass over files held as buffers (as `veil paillier add` maps them), its pieces
    /// joined.
    func fusedSum(_ files: [[UInt8]]) -> [UInt8]? {
        func withBuffers<R>(
            _ rest: ArraySlice<[UInt8]>, _ held: [UnsafeBufferPointer<UInt8>],
            _ body: ([UnsafeBufferPointer<UInt8>]) -> R
        ) -> R {
            guard let first = rest.first else { return body(held) }
            return first.withUnsafeBufferPointer { withBuffers(rest.dropFirst(), held + [$0], body) }
        }
        return withBuffers(files[...], []) { buffers in
            DecimalColumnSum.sum(buffers, lines: buffers.map(PaillierCiphertextFile.lineRanges), key: key.publicKey)?
                .flatMap { $0 }
        }
    }

    /// The fused parser takes 19 digits per step (a head of count mod 19 first, then 8 + 8 + 3
    /// per step): every length and leading zeros give the integer, and a non-digit anywhere —
    /// in the head, in either 8-byte word, in the 3-digit tail — sends the file to the careful
    /// reader.
    @Test func theFusedParserReadsEveryLengthAndRefusesAByteAnywhere() throws {
        var generator = Xoshiro256(seed: 19)
        let limit = key.publicKey.ciphertextModulus.decimal.count - 1
        var lines: [String] = []
        for length in 1...limit {
            var digits = (0..<length).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) }
            digits[length - 1] = "7"  // never zero
            lines.append(String(repeating: "0", count: Int.random(in: 0...3, using: &generator)) + String(digits))
        }
        let file = Array((lines.joined(separator: "\n") + "\n").utf8)
        let canonical = lines.map { String($0.drop { $0 == "0" }) }.joined(separator: "\n") + "\n"
        #expect(fusedSum([file]) == Array(canonical.utf8))
        let line = lines[limit - 1]  // ⌈…⌉ digits: a head, then whole steps
        let head = line.count % 19
        for position in [0, head - 1, head, head + 5, head + 8, head + 15, head + 16, head + 18, line.count - 1] {
            for byte: UInt8 in [0x2F, 0x3A, 0x61, 0x20, 0x80, 0xFF, 0xB0] {
                var bad = Array(line.utf8)
                bad[position] = byte
                if byte == 0x20 && position == line.count - 1 { continue }  // a trailing space is allowed
                #expect(fusedSum([bad + [0x0A]]) == nil, "byte \(byte) at \(position)")
            }
        }
    }

    @Test(arguments: PaillierCiphertextFile.Format.allCases)
    func bothFormatsRoundTrip(format: PaillierCiphertextFile.Format) throws {
        // 40 values: the batch takes the fixed-base table.
        let values = (0..<40).map { $0 * 7919 - 100_000 }
        let file = PaillierCiphertextFile(format: format, ciphertexts: try encrypted(values))
        let data = try file.encoded(key: key.publicKey)
        let read = try PaillierCiphertextFile.decode(data, key: key.publicKey)
        #expect(read.format == format && read.ciphertexts == file.ciphertexts && read.summed == 1)
        #expect(
            try PaillierBatch.decrypt(read.ciphertexts, key: key).map { key.publicKey.signed(residue: $0) }
                == values.map { BigInt($0) })
        // Windows line ends, trailing spaces and blank lines read the same.
        let loose = String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\n", with: "  \r\n\n")
        #expect(try PaillierCiphertextFile.decode(Data(loose.utf8), key: key.publicKey).ciphertexts == file.ciphertexts)
    }

    @Test func packedSignedValuesSumExactlyAtTheEdgesOfTheirRange() throws {
        // w = 62 + 2 = 64: the widest residue, where the sign decoding has no spare bit.
        let packing = try PaillierCiphertextFile.Packing(
            valueBits: 62, addends: 4, values: 3, keyBits: key.publicKey.bits)
        #expect(packing.layout.bitWidth.bits == 64 && packing.layout.slotBits == 66)
        let low = -(Int64(1) << 61)
        let high = (Int64(1) << 61) - 1
        let files = try [[low, high, -1], [low, high, 0], [low, high, 5], [low, high, -7]].map {
            try PaillierBatch.encrypt(residues: try packing.layout.pack(try packing.residues($0)), key: key.publicKey)
        }
        let sum = try PaillierBatch.sum(files, key: key.publicKey)
        let plaintexts = try PaillierBatch.decrypt(sum, key: key)
        let unpacked = try packing.layout.unpack(plaintexts, dimension: 3, addends: 4)
        #expect(packing.signed(unpacked) == [4 * low, 4 * high, -3])
        #expect(throws: PaillierError.invalidPacking("value 2 (\(high + 1)) is not a signed 62-bit integer")) {
            try packing.residues([0, high + 1])
        }
        #expect(throws: PaillierError.self) {
            try PaillierCiphertextFile.Packing(valueBits: 62, addends: 5, values: 1, keyBits: key.publicKey.bits)
        }
    }

    /// Every signed value at the edges of its range comes back from its residue, at every
    /// residue width w = B + ⌈log₂ K⌉ up to 64 — w = 63 used to trap on a negative value
    /// (review, helper-18): the decoding formed 2^63 in an Int64.
    @Test func signedValuesRoundTripAtEveryResidueWidth() throws {
        for (valueBits, addends) in [(2, 1), (31, 2), (32, 10), (60, 8), (61, 3), (62, 2), (62, 4), (43, 1 << 20)] {
            let packing = try PaillierCiphertextFile.Packing(
                valueBits: valueBits, addends: addends, values: 5, keyBits: key.publicKey.bits)
            let bound = Int64(1) << Int64(valueBits - 1)
            let values = [-bound, -1, 0, 1, bound - 1]
            #expect(packing.signed(try packing.residues(values)) == values, "B = \(valueBits), K = \(addends)")
        }
        // And through encryption, summed, at w = 63.
        let packing = try PaillierCiphertextFile.Packing(
            valueBits: 62, addends: 2, values: 2, keyBits: key.publicKey.bits)
        #expect(packing.layout.bitWidth.bits == 63)
        let low = -(Int64(1) << 61)
        let files = try [[low, -1], [low, -5]].map {
            try PaillierBatch.encrypt(residues: try packing.layout.pack(try packing.residues($0)), key: key.publicKey)
        }
        let plaintexts = try PaillierBatch.decrypt(try PaillierBatch.sum(files, key: key.publicKey), key: key)
        #expect(packing.signed(try packing.layout.unpack(plaintexts, dimension: 2, addends: 2)) == [2 * low, -6])
    }

    @Test func aPrivateKeyWithNegativeFactorsIsRefused() {
        let (p, q) = key.primes
        #expect(throws: PaillierError.invalidPrivateKey("p and q must be positive")) {
            try PaillierPrivateKey(p: -p, q: -q)
        }
    }

    /// Each header fault is refused at line 1, naming what is wrong.
    @Test func aVeilHeaderIsReadStrictly() throws {
        let packing = try PaillierCiphertextFile.Packing(
            valueBits: 32, addends: 2, values: 3, keyBits: key.publicKey.bits)
        let ciphertexts = try PaillierBatch.encrypt(
            residues: try packing.layout.pack(try packing.residues([1, -2, 3])), key: key.publicKey)
        let good = String(
            decoding: try PaillierCiphertextFile(format: .veil, ciphertexts: ciphertexts, packing: packing).encoded(
                key: key.publicKey), as: UTF8.self)
        #expect(try PaillierCiphertextFile.decode(Data(good.utf8), key: key.publicKey).packing == packing)
        func refusal(_ from: String, _ to: String) -> PaillierCiphertextFile.DecodingError? {
            #expect(good.contains(from), "\(from)")
            do {
                _ = try PaillierCiphertextFile.decode(
                    Data(good.replacingOccurrences(of: from, with: to).utf8), key: key.publicKey)
                return nil
            } catch { return error }
        }
        let cases: [(String, String, String)] = [
            (#""summed":1"#, #""summed":1,"extra":0"#, #"unknown header key "extra""#),
            (#""values":3"#, #""values":3,"slots":9"#, #"unknown packing key "slots""#),
            (#""count":1"#, #""count":1.5"#, "integers as integers"),
            (#""count":1"#, #""count":2"#, "the header says 2 ciphertexts, the file holds 1"),
            (#""values":3"#, #""values":300"#, "300 packed values take"),
            (#""summed":1"#, #""summed":3"#, "3 addends exceed the 2"),
            ("veil-paillier-ciphertexts/1", "veil-paillier-ciphertexts/2", "format must be"),
            (#""value_bits":32"#, #""value_bits":63"#, "value bits must be in 2...62"),
            (#""key":""#, #""key":"0"#, "another key"),
            // Only the canonical line: readers on other JSON parsers would see another header.
            (#""count":1"#, #""count":1.0"#, "not written as Specs/paillier.md §8.1 writes it"),
            (#""summed":1"#, #""summed":1,"summed":1"#, "not written as"),
            (#""summed":1"#, #""summed": 1"#, "not written as"),
            (#"{"format""#, #"{"\u0066ormat""#, "not written as"),
            (#""summed":1,"packing""#, #""packing""#, "needs format, key, count and summed"),
            // A key holding an escape sequence (JSON \u001b) is named escaped, not replayed.
            (#""summed":1"#, #""summed":1,"\u001b[31m":0"#, #"unknown header key "\u{1B}[31m""#),
        ]
        for (from, to, message) in cases {
            let error = refusal(from, to)
            #expect(
                error?.line == 1 && "\(error?.reason.description ?? "accepted")".contains(message),
                "\(to): \(String(describing: error))")
        }
        // A ciphertext line that is not canonical base64 (here: padding removed) is named.
        let lines = good.split(separator: "\n")
        let unpadded = lines[0] + "\n" + lines[1].replacingOccurrences(of: "=", with: "")
        if lines[1].hasSuffix("=") {
            #expect(throws: PaillierCiphertextFile.DecodingError.self) {
                try PaillierCiphertextFile.decode(Data(unpadded.utf8), key: key.publicKey)
            }
        }
        // A value sharing a factor with n (here p, or p times a ciphertext) is found by the
        // file's one gcd and named by its line, wherever it is.
        let (p, _) = key.primes
        for (index, bad) in [
            p.declassified(), (p * ciphertexts[0].value).modulo(key.publicKey.ciphertextModulus).declassified(),
        ]
        .enumerated() {
            var lines = (0..<300).map { _ in ciphertexts[0].decimal }
            lines[100 + index * 150] = bad.decimal
            #expect(
                throws: PaillierCiphertextFile.DecodingError(line: 101 + index * 150, reason: .ciphertextOutOfRange)
            ) {
                try PaillierCiphertextFile.decode(Data(lines.joined(separator: "\n").utf8), key: key.publicKey)
            }
        }
        // A decimal file: a sign, a letter or a non-unit is named by its line.
        for bad in ["-5", "12a", "0"] {
            #expect(
                throws: PaillierCiphertextFile.DecodingError(
                    line: 2, reason: bad == "0" ? .ciphertextOutOfRange : .malformed("not a decimal integer"))
            ) {
                try PaillierCiphertextFile.decode(Data("\(ciphertexts[0].decimal)\n\(bad)\n".utf8), key: key.publicKey)
            }
        }
    }
}
