import Foundation
import Testing
import VeilPaillier
import VeilTestSupport

@Suite struct PaillierCommandTests {
    @Test func keygenEncryptAddDecryptRoundTrip() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let keygen = try await VeilProcess.run(["paillier", "keygen", "--bits", "2048", "--out", directory.path])
        #expect(keygen.status == 0, "\(keygen.stderr)")
        let secret = directory.appendingPathComponent("secret.json")
        let attributes = try FileManager.default.attributesOfItem(atPath: secret.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let publicKey = directory.appendingPathComponent("public.json").path

        let first = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--values", "5,-3,0,123456789012345678901234567890",
        ])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.split(separator: "\n").count == 4)
        let second = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--values", "-10, 3 ,7,-1",
        ])
        try first.stdout.write(to: directory.appendingPathComponent("a.txt"), atomically: true, encoding: .utf8)
        try second.stdout.write(to: directory.appendingPathComponent("b.txt"), atomically: true, encoding: .utf8)

        let sums = try await VeilProcess.run([
            "paillier", "add", "--public", publicKey,
            directory.appendingPathComponent("a.txt").path, directory.appendingPathComponent("b.txt").path,
        ])
        #expect(sums.status == 0)
        try sums.stdout.write(to: directory.appendingPathComponent("sum.txt"), atomically: true, encoding: .utf8)
        // A regular file is mapped; a pipe, which cannot be, is read into memory: the same sum.
        let fifo = directory.appendingPathComponent("b.fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let writer = Thread {
            let handle = FileHandle(forWritingAtPath: fifo)  // blocks until veil opens the pipe
            handle?.write(Data(second.stdout.utf8))
            try? handle?.close()
        }
        writer.start()
        let piped = try await VeilProcess.run([
            "paillier", "add", "--public", publicKey, directory.appendingPathComponent("a.txt").path, fifo,
        ])
        #expect(piped.status == 0 && piped.stdout == sums.stdout, "\(piped.stderr)")
        let decrypted = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", secret.path, directory.appendingPathComponent("sum.txt").path,
        ])
        #expect(decrypted.status == 0)
        #expect(decrypted.stdout == "-5\n0\n7\n123456789012345678901234567889\n")

        // Files of 64 KiB and more are mapped rather than read (60 ciphertexts: about 74 KB).
        let values = (0..<60).map { $0 * 1_000_003 - 29_000_000 }
        var large: [String] = []
        for (name, factor) in [("l1.txt", 1), ("l2.txt", -3)] {
            let encrypted = try await VeilProcess.run([
                "paillier", "encrypt", "--public", publicKey,
                "--values", values.map { String($0 * factor) }.joined(separator: ","),
            ])
            let path = directory.appendingPathComponent(name).path
            try encrypted.stdout.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0 >= 1 << 16)
            large.append(path)
        }
        let mappedSum = try await VeilProcess.run(["paillier", "add", "--public", publicKey] + large)
        #expect(mappedSum.status == 0, "\(mappedSum.stderr)")
        try mappedSum.stdout.write(to: directory.appendingPathComponent("l.txt"), atomically: true, encoding: .utf8)
        let mappedPlain = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", secret.path, directory.appendingPathComponent("l.txt").path,
        ])
        #expect(mappedPlain.stdout == values.map { "\(-2 * $0)\n" }.joined())
    }

    @Test func refusesBadInputWithAClearMessage() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try await VeilProcess.run(["paillier", "keygen", "--out", directory.path])
        let publicKey = directory.appendingPathComponent("public.json").path
        let badValue = try await VeilProcess.run(["paillier", "encrypt", "--public", publicKey, "--values", "1,x"])
        #expect(badValue.status == 64)
        #expect(badValue.stderr.contains("\"x\" is not a decimal integer"))
        let file = directory.appendingPathComponent("bad.txt")
        try "0\n".write(to: file, atomically: true, encoding: .utf8)
        let outOfRange = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", directory.appendingPathComponent("secret.json").path, file.path,
        ])
        #expect(outOfRange.status == 64)
        #expect(outOfRange.stderr.contains("bad.txt:1: ciphertext is not in Z*_(n²)"))
        // `add` tests coprimality with n on the sums, and names the input line that broke it:
        // here p itself, among ciphertexts that are fine.
        let secretFile = try JSONSerialization.jsonObject(
            with: Data(contentsOf: directory.appendingPathComponent("secret.json")))
        let p = try #require((secretFile as? [String: String])?["p"])
        let good = try await VeilProcess.run(["paillier", "encrypt", "--public", publicKey, "--values", "1,2,3"])
        let lines = good.stdout.split(separator: "\n")
        try "\(lines[0])\n\(p)\n\(lines[2])\n".write(to: file, atomically: true, encoding: .utf8)
        try good.stdout.write(to: directory.appendingPathComponent("good.txt"), atomically: true, encoding: .utf8)
        let factor = try await VeilProcess.run([
            "paillier", "add", "--public", publicKey, directory.appendingPathComponent("good.txt").path, file.path,
        ])
        #expect(
            factor.status == 64 && factor.stderr.contains("bad.txt:2: ciphertext is not in Z*_(n²)"), "\(factor.stderr)"
        )
        let wrongSize = try await VeilProcess.run(["paillier", "keygen", "--bits", "1024", "--out", directory.path])
        #expect(wrongSize.status == 64)
        try "{\"n\": \"15\"}".write(to: file, atomically: true, encoding: .utf8)
        let weakKey = try await VeilProcess.run(["paillier", "encrypt", "--public", file.path, "--values", "1"])
        #expect(weakKey.status == 1)
        #expect(weakKey.stderr.contains("invalid Paillier modulus"))
    }

    /// Three parties' signed 32-bit values (the extremes included), packed in the veil format
    /// with headroom for three files: summed and decrypted to the exact sums; a fourth addend,
    /// mixed formats, another key's file and a damaged line are refused by name.
    @Test func packedFilesSumToTheExactSignedSumsAndRefuseMore() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        #expect(try await VeilProcess.run(["paillier", "keygen", "--out", path("key")]).status == 0)
        #expect(try await VeilProcess.run(["paillier", "keygen", "--out", path("other")]).status == 0)
        let publicKey = path("key/public.json")
        var generator = SplitMix64(seed: 11)
        var parties: [[Int64]] = (0..<3).map { _ in
            (0..<130).map { _ in Int64(Int32(truncatingIfNeeded: generator.next())) }
        }
        for p in parties.indices { parties[p][0...1] = [Int64(Int32.min), Int64(Int32.max)] }
        for (p, values) in parties.enumerated() {
            try values.map { "\($0)\n" }.joined().write(toFile: path("v\(p).txt"), atomically: true, encoding: .utf8)
            let encrypted = try await VeilProcess.run([
                "paillier", "encrypt", "--public", publicKey, "--input", path("v\(p).txt"), "--format", "veil",
                "--pack", "--addends", "3",
            ])
            #expect(encrypted.status == 0, "\(encrypted.stderr)")
            try encrypted.stdout.write(toFile: path("p\(p).txt"), atomically: true, encoding: .utf8)
        }
        // 2048-bit key, 36-bit residues in 40-bit slots: 51 per ciphertext, 130 values in 3.
        let header = try String(contentsOfFile: path("p0.txt"), encoding: .utf8).prefix { $0 != "\n" }
        #expect(header.hasSuffix(#""count":3,"summed":1,"packing":{"value_bits":32,"addends":3,"values":130}}"#))
        let sum = try await VeilProcess.run([
            "paillier", "add", "--public", publicKey, path("p0.txt"), path("p1.txt"), path("p2.txt"),
        ])
        #expect(sum.status == 0, "\(sum.stderr)")
        try sum.stdout.write(toFile: path("sum.txt"), atomically: true, encoding: .utf8)
        let decrypted = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", path("key/secret.json"), path("sum.txt"),
        ])
        #expect(decrypted.status == 0, "\(decrypted.stderr)")
        let expected = (0..<130).map { i in parties.reduce(0) { $0 + $1[i] } }
        #expect(decrypted.stdout == expected.map { "\($0)\n" }.joined())

        let fourth = try await VeilProcess.run([
            "paillier", "add", "--public", publicKey, path("sum.txt"), path("p0.txt"),
        ])
        #expect(fourth.status == 64 && fourth.stderr.contains("4 addends exceed the 3"), "\(fourth.stderr)")
        let decimal = try await VeilProcess.run(["paillier", "encrypt", "--public", publicKey, "--values", "1,2,3"])
        try decimal.stdout.write(toFile: path("d.txt"), atomically: true, encoding: .utf8)
        let mixed = try await VeilProcess.run(["paillier", "add", "--public", publicKey, path("p0.txt"), path("d.txt")])
        #expect(mixed.status == 64 && mixed.stderr.contains("d.txt is in the decimal format"), "\(mixed.stderr)")
        let otherKey = try await VeilProcess.run([
            "paillier", "add", "--public", path("other/public.json"), path("p0.txt"),
        ])
        #expect(otherKey.status == 64 && otherKey.stderr.contains("p0.txt:1: the ciphertext belongs to another key"))
        var lines = try String(contentsOfFile: path("p1.txt"), encoding: .utf8).split(separator: "\n").map(String.init)
        lines[2] = "!" + lines[2].dropFirst()  // not base64
        try lines.joined(separator: "\n").write(toFile: path("p1.txt"), atomically: true, encoding: .utf8)
        let damaged = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", path("key/secret.json"), path("p1.txt"),
        ])
        #expect(damaged.status == 64 && damaged.stderr.contains("p1.txt:3: "), "\(damaged.stderr)")
        let unpackedVeil = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--values", "1", "--pack", "--addends", "2",
        ])
        #expect(unpackedVeil.status == 64 && unpackedVeil.stderr.contains("--pack needs --format veil"))
        let bitsAlone = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--values", "1", "--value-bits", "16",
        ])
        #expect(bitsAlone.status == 64 && bitsAlone.stderr.contains("--addends and --value-bits are for --pack"))
        let tooWide = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--values", "2147483648", "--format", "veil", "--pack",
            "--addends", "2",
        ])
        #expect(tooWide.status == 1 && tooWide.stderr.contains("value 1 (2147483648) is not a signed 32-bit integer"))
    }

    /// Damgård–Jurik s = 3 from the command line (Specs/paillier.md §9): the same key files, a
    /// header that names s, ⌈4·|n|/8⌉-byte lines, exact sums, and s refused where it does not fit.
    @Test func damgardJurikFilesSumExactlyAndNameTheirS() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        #expect(try await VeilProcess.run(["paillier", "keygen", "--out", path("key")]).status == 0)
        let publicKey = path("key/public.json")
        let values: [[Int64]] = [
            (0..<200).map { Int64($0) * 10_000_019 - 1_000_000_000 }, (0..<200).map { -Int64($0) * 7 },
        ]
        for (p, party) in values.enumerated() {
            try party.map { "\($0)\n" }.joined().write(toFile: path("v\(p).txt"), atomically: true, encoding: .utf8)
            let encrypted = try await VeilProcess.run([
                "paillier", "encrypt", "--public", publicKey, "--damgard-jurik", "3", "--input", path("v\(p).txt"),
                "--format", "veil", "--pack", "--addends", "2",
            ])
            #expect(encrypted.status == 0, "\(encrypted.stderr)")
            try encrypted.stdout.write(toFile: path("p\(p).txt"), atomically: true, encoding: .utf8)
        }
        // 33-bit residues in 34-bit slots over 3·2047 bits: 180 per ciphertext, 200 values in 2.
        let lines = try String(contentsOfFile: path("p0.txt"), encoding: .utf8).split(separator: "\n")
        #expect(lines[0].contains(#","damgard_jurik":3,"count":2,"summed":1,"#))
        #expect(lines.count == 3 && Data(base64Encoded: String(lines[1]))?.count == 1024)
        let sum = try await VeilProcess.run([
            "paillier", "add", "--public", publicKey, "--damgard-jurik", "3", path("p0.txt"), path("p1.txt"),
        ])
        #expect(sum.status == 0, "\(sum.stderr)")
        try sum.stdout.write(toFile: path("sum.txt"), atomically: true, encoding: .utf8)
        let decrypted = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", path("key/secret.json"), "--damgard-jurik", "3", path("sum.txt"),
        ])
        #expect(decrypted.status == 0, "\(decrypted.stderr)")
        #expect(decrypted.stdout == (0..<200).map { "\(values[0][$0] + values[1][$0])\n" }.joined())

        let forgotten = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", path("key/secret.json"), path("sum.txt"),
        ])
        #expect(
            forgotten.status == 64
                && forgotten.stderr.contains(
                    "sum.txt:1: malformed Paillier data: the ciphertexts are for Damgård–Jurik s = 3, the key given has s = 1"
                ),
            "\(forgotten.stderr)")
        let otherS = try await VeilProcess.run([
            "paillier", "add", "--public", publicKey, "--damgard-jurik", "2", path("p0.txt"),
        ])
        #expect(otherS.status == 64 && otherS.stderr.contains("for Damgård–Jurik s = 3, the key given has s = 2"))
        let decimal = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--damgard-jurik", "3", "--values", "1",
        ])
        #expect(decimal.status == 64 && decimal.stderr.contains("--damgard-jurik needs --format veil"))
        let five = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--damgard-jurik", "5", "--values", "1", "--format", "veil",
        ])
        #expect(five.status == 64 && five.stderr.contains("--damgard-jurik must be 1 to 4"))
        // A plaintext beyond n (Paillier's space) and within ±(n³ − 1)/2 round-trips unpacked.
        let wide = "-" + String(repeating: "9", count: 1200)
        let big = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--damgard-jurik", "3", "--values", "\(wide),7", "--format",
            "veil",
        ])
        #expect(big.status == 0, "\(big.stderr)")
        try big.stdout.write(toFile: path("big.txt"), atomically: true, encoding: .utf8)
        let back = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", path("key/secret.json"), "--damgard-jurik", "3", path("big.txt"),
        ])
        #expect(back.stdout == "\(wide)\n7\n", "\(back.stderr)")
        let paillierRange = try await VeilProcess.run([
            "paillier", "encrypt", "--public", publicKey, "--values", wide,
        ])
        #expect(paillierRange.status == 1 && paillierRange.stderr.contains("outside the key's plaintext range"))
    }

    /// Threshold decryption from the command line (Specs/paillier.md §6.2, §8.2): 2 of 3
    /// holders decrypt a packed sum; a holder who sends a wrong partial is named and left out,
    /// and with too few correct holders nothing is decrypted.
    @Test func thresholdHoldersDecryptAndACheaterIsNamed() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let deal = try await VeilProcess.run([
            "paillier", "deal", "--threshold", "2", "--holders", "3", "--out", path("dealt"),
        ])
        #expect(deal.status == 0, "\(deal.stderr)")
        // The threshold fingerprint participants pin (§6.3) is the threshold key's, as the library computes it.
        let dealt = try PaillierThresholdFiles.key(
            from: Data(contentsOf: URL(fileURLWithPath: path("dealt/threshold.json"))))
        #expect(deal.stdout.contains("threshold fingerprint \(dealt.fingerprint)\n"), "\(deal.stdout)")
        let attributes = try FileManager.default.attributesOfItem(atPath: path("dealt/share-2.json"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // The public key file for encrypt is n alone, read from threshold.json.
        let key = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("dealt/threshold.json"))))
                as? [String: Any])
        try #"{"n":"\#(key["n"] as! String)"}"#.write(toFile: path("public.json"), atomically: true, encoding: .utf8)
        let encrypted = try await VeilProcess.run([
            "paillier", "encrypt", "--public", path("public.json"), "--values", "5,-3,1000000", "--format", "veil",
            "--pack", "--addends", "2",
        ])
        #expect(encrypted.status == 0, "\(encrypted.stderr)")
        try encrypted.stdout.write(toFile: path("c.txt"), atomically: true, encoding: .utf8)
        for holder in 1...3 {
            let partial = try await VeilProcess.run([
                "paillier", "partial-decrypt", "--key", path("dealt/threshold.json"), "--share",
                path("dealt/share-\(holder).json"), path("c.txt"),
            ])
            #expect(partial.status == 0, "\(partial.stderr)")
            try partial.stdout.write(toFile: path("p\(holder).json"), atomically: true, encoding: .utf8)
        }
        let combined = try await VeilProcess.run([
            "paillier", "combine", "--key", path("dealt/threshold.json"), path("c.txt"), path("p3.json"),
            path("p1.json"),
        ])
        #expect(combined.status == 0 && combined.stdout == "5\n-3\n1000000\n", "\(combined.stderr)")

        // Holder 1 multiplies its partial by (1 + n), keeping its proof: the unverified
        // combination would shift the plaintext; here holder 1 is named and 2, 3 decrypt.
        var forged = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("p1.json"))))
                as? [String: Any])
        var partials = try #require(forged["partials"] as? [[String: Any]])
        let n = BigIntText(key["n"] as! String)
        partials[0]["value"] = n.timesOnePlusN(partials[0]["value"] as! String)
        forged["partials"] = partials
        try JSONSerialization.data(withJSONObject: forged).write(to: URL(fileURLWithPath: path("forged.json")))
        let named = try await VeilProcess.run([
            "paillier", "combine", "--key", path("dealt/threshold.json"), path("c.txt"), path("forged.json"),
            path("p2.json"), path("p3.json"),
        ])
        #expect(named.status == 0 && named.stdout == "5\n-3\n1000000\n", "\(named.stderr)")
        #expect(named.stderr.contains("holder 1: the proof of correct decryption fails for ciphertext(s) 1; left out"))
        let tooFew = try await VeilProcess.run([
            "paillier", "combine", "--key", path("dealt/threshold.json"), path("c.txt"), path("forged.json"),
            path("p2.json"),
        ])
        #expect(
            tooFew.status == 1 && tooFew.stdout.isEmpty
                && tooFew.stderr.contains("too few correct partial decryptions: the proofs of holder(s) 1 fail"),
            "\(tooFew.stderr)")
        // Partials of another ciphertext file, and a share that is not the dealer's, are refused.
        let other = try await VeilProcess.run([
            "paillier", "encrypt", "--public", path("public.json"), "--values", "1", "--format", "veil", "--pack",
            "--addends", "2",
        ])
        try other.stdout.write(toFile: path("other.txt"), atomically: true, encoding: .utf8)
        let mismatched = try await VeilProcess.run([
            "paillier", "combine", "--key", path("dealt/threshold.json"), path("other.txt"), path("p1.json"),
            path("p2.json"),
        ])
        #expect(
            mismatched.status == 1
                && mismatched.stderr.contains(
                    "p1.json: malformed Paillier data: the partials are of another ciphertext file; left out")
                && mismatched.stderr.contains("0 partial decryptions, 2 needed"),
            "\(mismatched.stderr)")
        // One holder's unreadable file does not stop the others.
        try "{}".write(toFile: path("junk.json"), atomically: true, encoding: .utf8)
        let junk = try await VeilProcess.run([
            "paillier", "combine", "--key", path("dealt/threshold.json"), path("c.txt"), path("junk.json"),
            path("p2.json"), path("p3.json"),
        ])
        #expect(junk.status == 0 && junk.stdout == "5\n-3\n1000000\n" && junk.stderr.contains("junk.json: "))
        try #"{"holder":2,"share":"12345"}"#.write(toFile: path("bad-share.json"), atomically: true, encoding: .utf8)
        let badShare = try await VeilProcess.run([
            "paillier", "partial-decrypt", "--key", path("dealt/threshold.json"), "--share", path("bad-share.json"),
            path("c.txt"),
        ])
        #expect(
            badShare.status == 1
                && badShare.stderr.contains("holder 2's share does not match the dealer's verification key v_2"),
            "\(badShare.stderr)")
        // A decimal file cannot say it is Damgård–Jurik: read with s > 1 it is refused.
        let decimal = try await VeilProcess.run([
            "paillier", "encrypt", "--public", path("public.json"), "--values", "5",
        ])
        try decimal.stdout.write(toFile: path("d.txt"), atomically: true, encoding: .utf8)
        let asDJ = try await VeilProcess.run([
            "paillier", "add", "--public", path("public.json"), "--damgard-jurik", "3", path("d.txt"), path("d.txt"),
        ])
        #expect(
            asDJ.status == 64
                && asDJ.stderr.contains(
                    "d.txt:1: malformed Paillier data: a decimal file holds Paillier ciphertexts (s = 1)"),
            "\(asDJ.stderr)")
    }

    @Test func benchPaillierComparesDamgardJurikWithPaillier() async throws {
        let output = try await VeilProcess.run([
            "bench", "paillier", "--seconds", "0.02", "--damgard-jurik", "3", "--addends", "8", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let dj = try #require(object["damgard_jurik"] as? [String: Any])
        #expect(dj["s"] as? Int == 3 && dj["addends"] as? Int == 8)
        let three = try #require(dj["damgard_jurik"] as? [String: Any])
        let one = try #require(dj["paillier"] as? [String: Any])
        // 2048 bits, K = 8: 35-bit slots, ⌊6141/35⌋ = 175 per 1,024 bytes; ⌊2047/35⌋ = 58 per 512.
        #expect(three["slots_per_ciphertext"] as? Int == 175 && one["slots_per_ciphertext"] as? Int == 58)
        #expect(abs((three["ciphertext_bytes_per_value"] as? Double ?? 0) - 1024.0 / 175) < 1e-9)
        for figures in [one, three] {
            for key in [
                "encrypted_values_per_second_one_core", "encrypted_values_per_second_all_cores",
                "decrypted_values_per_second_one_core",
            ] {
                #expect((figures[key] as? Double ?? 0) > 0, "\(key)")
            }
        }
        #expect((dj["encrypted_values_per_second_ratio"] as? Double ?? 0) > 0)
        let refused = try await VeilProcess.run(["bench", "paillier", "--damgard-jurik", "1"])
        #expect(refused.status == 64 && refused.stderr.contains("--damgard-jurik must be 2 to 4"))
    }

    @Test func benchPaillierReportsEachOperationBesideRawGMP() async throws {
        let output = try await VeilProcess.run(["bench", "paillier", "--seconds", "0.02", "--json"])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        for name in ["encrypt", "encrypt_djn", "encrypt_djn_table", "decrypt_crt", "add"] {
            let entry = try #require(object[name] as? [String: Any], "\(name)")
            #expect((entry["per_second"] as? Double ?? 0) > 0)
            #expect((entry["raw_gmp_per_second"] as? Double ?? 0) > 0)
        }
        #expect((object["packed_values_per_second"] as? Double ?? 0) > 0)
        #expect(abs((object["ciphertext_bytes_per_value"] as? Double ?? 0) - 512.0 / 52) < 1e-9)
    }
}

/// value · (1 + n) mod n² on decimal strings, for a test that forges a partial.
private struct BigIntText {
    let n: String
    init(_ n: String) { self.n = n }
    func timesOnePlusN(_ value: String) -> String {
        let n = BigInt(decimal: self.n)!
        return (BigInt(decimal: value)! * (n + 1)).modulo(n * n).decimal
    }
}
