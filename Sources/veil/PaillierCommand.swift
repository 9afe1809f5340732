import ArgumentParser
import Foundation
import VeilCrypto
import VeilPaillier

extension PaillierCiphertextFile.Format: ExpressibleByArgument {}

/// `--damgard-jurik S`: the same key files, used with Damgård–Jurik's s (Specs/paillier.md §9).
struct DamgardJurikOption: ParsableArguments {
    @Option(
        name: .customLong("damgard-jurik"),
        help: ArgumentHelp(
            "Damgård–Jurik's s, 1 to 4: plaintexts mod n^s, ciphertexts mod n^(s+1) (1 is Paillier).",
            valueName: "S"))
    var s = 1

    func validate() throws {
        guard PaillierPublicKey.degrees.contains(s) else { throw ValidationError("--damgard-jurik must be 1 to 4") }
    }
}

struct PaillierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paillier",
        abstract: "Paillier keys, encryption, homomorphic addition and decryption, for interoperability checks.",
        discussion: """
            Ciphertext files are decimal (one decimal integer per line, as python-paillier writes them) or veil \
            (a JSON header, then one base64 ciphertext per line: Specs/paillier.md §8.1). Values are signed \
            decimal integers (a value v is encrypted as v mod n and decrypted back into −⌊(n−1)/2⌋…⌊(n−1)/2⌋; \
            mod n^S and ±⌊(n^S−1)/2⌋ with --damgard-jurik S). \
            Keys are JSON files of decimal strings: public.json {"n"}, secret.json {"p", "q"} (g = n + 1, as in \
            python-paillier). With --damgard-jurik S the same keys encrypt under Damgård–Jurik's generalisation: \
            plaintexts mod n^S, ciphertexts mod n^(S+1), (S+1)/S times their plaintext's length instead of twice it.
            """,
        subcommands: [
            Keygen.self, Fingerprint.self, Encrypt.self, Add.self, Decrypt.self, Deal.self, PartialDecrypt.self,
            Combine.self,
        ]
    )

    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a key pair: DIR/public.json and DIR/secret.json (readable by the owner only).")

        @Option(help: "Modulus size in bits: 2048 or 3072.")
        var bits = 2048

        @Option(help: "The directory to write the key files into (created if missing).")
        var out: String

        func validate() throws {
            guard bits == 2048 || bits == 3072 else { throw ValidationError("--bits must be 2048 or 3072") }
        }

        func run() throws {
            let key = try PaillierPrivateKey.generate(bits: bits)
            let directory = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let secretURL = directory.appendingPathComponent("secret.json")
            do {
                try SecretFile.create(
                    atPath: secretURL.path, contents: SecureBytes(copying: try PaillierKeyFiles.secretFile(key)))
            } catch { throw usageError("\(error)") }
            try PaillierKeyFiles.publicFile(key.publicKey).write(to: directory.appendingPathComponent("public.json"))
            print("wrote \(directory.path)/public.json and \(directory.path)/secret.json (\(bits)-bit n)")
            print("fingerprint \(PaillierKeyStatement.fingerprint(key.publicKey))")
        }
    }

    struct Fingerprint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a public key's fingerprint, which participants may pin (policy.paillier_fingerprint).",
            discussion: "SHA-256 of the key's statement (Specs/paillier.md §6.1), in hex.")

        @Option(help: "The public key file.")
        var `public`: String

        func run() throws {
            print(PaillierKeyStatement.fingerprint(try loadPublicKey(`public`)))
        }
    }

    struct Encrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt signed integers, on every core.",
            discussion: """
                DJN encryption with the fixed-base table (Specs/paillier.md §3); the ciphertexts decrypt \
                in any Paillier implementation with g = n + 1 (for S = 1; Damgård–Jurik ciphertexts, §9, in \
                Veil or an implementation of §9). With --pack, several values share a \
                ciphertext (§8.1), with headroom for the sum of --addends files.
                """)

        @Option(help: "The public key file.")
        var `public`: String

        @OptionGroup var damgardJurik: DamgardJurikOption

        @Option(parsing: .unconditional, help: "Comma-separated signed decimal integers, e.g. 5,-3,0.")
        var values: String?

        @Option(help: "A file of signed decimal integers, one per line (instead of --values).")
        var input: String?

        @Option(help: "decimal: one decimal ciphertext per line (python-paillier's); veil: a header, then base64.")
        var format: PaillierCiphertextFile.Format = .decimal

        @Flag(help: "Pack several values into each ciphertext (needs --format veil and --addends).")
        var pack = false

        @Option(help: "With --pack: how many such files may be summed (headroom for their sum).")
        var addends: Int?

        @Option(
            name: .customLong("value-bits"),
            help: "With --pack: every value is a signed integer of this many bits (default 32).")
        var valueBits: Int?

        func validate() throws {
            guard (values == nil) != (input == nil) else { throw ValidationError("give either --values or --input") }
            if damgardJurik.s > 1, format != .veil {
                throw ValidationError("--damgard-jurik needs --format veil, whose header records s")
            }
            if pack {
                guard format == .veil else { throw ValidationError("--pack needs --format veil") }
                guard addends != nil else { throw ValidationError("--pack needs --addends K") }
            } else if addends != nil || valueBits != nil {
                throw ValidationError("--addends and --value-bits are for --pack")
            }
        }

        func run() throws {
            let key = try loadPublicKey(`public`, s: damgardJurik.s)
            let texts: [String]
            if let values {
                texts = values.split(separator: ",", omittingEmptySubsequences: false).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
            } else {
                texts = try lines(of: input!)
            }
            let file: PaillierCiphertextFile
            if pack {
                let numbers = try texts.enumerated().map { index, text in
                    guard let number = Int64(text) else {
                        throw usageError("value \(index + 1): \"\(text.prefix(24))\" is not a 64-bit decimal integer")
                    }
                    return number
                }
                file = try paillier { () throws(PaillierError) in
                    let packing = try PaillierCiphertextFile.Packing(
                        valueBits: valueBits ?? 32, addends: addends!, values: numbers.count, keyBits: key.bits,
                        degree: key.s)
                    let plaintexts = try packing.layout.pack(try packing.residues(numbers))
                    return PaillierCiphertextFile(
                        format: .veil, ciphertexts: try PaillierBatch.encrypt(residues: plaintexts, key: key),
                        packing: packing)
                }
            } else {
                let residues = try texts.enumerated().map { index, text in
                    guard let value = BigInt(decimal: text) else {
                        throw usageError("value \(index + 1): \"\(text.prefix(24))\" is not a decimal integer")
                    }
                    return try paillier { () throws(PaillierError) in try key.residue(signed: value) }
                }
                file = try paillier { () throws(PaillierError) in
                    PaillierCiphertextFile(
                        format: format, ciphertexts: try PaillierBatch.encrypt(residues: residues, key: key))
                }
            }
            try writeStandardOutput(try paillier { () throws(PaillierError) in try file.encoded(key: key) })
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Add ciphertext files element-wise (line i of the output encrypts the sum of line i of each file).",
            discussion: """
                The files are all decimal or all veil format, and the output is in theirs. Veil files must \
                name the key given and the same packing; their sum may not exceed the packing's addends.
                """)

        @Option(help: "The public key file.")
        var `public`: String

        @OptionGroup var damgardJurik: DamgardJurikOption

        @Argument(help: "Files of ciphertexts, all of the same length.")
        var files: [String]

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("give at least one ciphertext file") }
        }

        func run() throws {
            let key = try loadPublicKey(`public`, s: damgardJurik.s)
            // Each file is read once (a pipe cannot be read twice): mapped when it is a regular
            // file, which for ten 12 MB files saves a fifth of the work of reading them into arrays.
            let mapped = try files.map(MappedFile.init)
            // Decimal files (python-paillier's) take one fused pass on every core; whatever it
            // cannot take is left to the careful reader below, which names the file and line.
            if key.s == 1, files.count <= PaillierCiphertextFile.maxSummed {
                let summed = try withExtendedLifetime(mapped) {
                    nonisolated(unsafe) let raw = mapped.map(\.bytes)
                    let lines = try Array(raw.indices).parallelMap { PaillierCiphertextFile.lineRanges(raw[$0]) }
                    guard raw.allSatisfy({ ($0.first ?? 0) &- UInt8(ascii: "0") < 10 }) else {
                        return nil as [[UInt8]]?
                    }
                    return DecimalColumnSum.sum(raw, lines: lines, key: key)
                }
                if let summed {
                    for piece in summed { try piece.withUnsafeBytes(writeStandardOutput) }
                    return
                }
            }
            // The inputs' coprimality with n is tested once, on the sums (§8.1). Each file's bytes
            // are copied for its decoding only; the mapping or buffer stays for a second reading.
            let inputs = try zip(files, mapped).map {
                try decodeCiphertexts(Data($1.bytes), from: $0, key, checkingUnits: false)
            }
            let first = inputs[0]
            for (path, input) in zip(files, inputs).dropFirst() {
                guard input.format == first.format else {
                    throw usageError(
                        "\(path) is in the \(input.format) format, \(files[0]) in the \(first.format) format")
                }
                guard input.packing == first.packing else {
                    throw usageError("\(path) is packed differently from \(files[0])")
                }
            }
            guard Set(inputs.map(\.ciphertexts.count)).count == 1 else {
                throw usageError("the files hold different numbers of ciphertexts: \(inputs.map(\.ciphertexts.count))")
            }
            let summed = inputs.reduce(0) { $0 + $1.summed }
            guard summed <= PaillierCiphertextFile.maxSummed else {
                throw usageError(
                    "a sum of \(summed) files exceeds the \(PaillierCiphertextFile.maxSummed) a file may record")
            }
            if let packing = first.packing, summed > packing.addends {
                throw usageError("\(PaillierError.tooManyAddends(have: summed, max: packing.addends))")
            }
            let sum = try paillier { () throws(PaillierError) in
                PaillierCiphertextFile(
                    format: first.format, ciphertexts: try PaillierBatch.sum(inputs.map(\.ciphertexts), key: key),
                    summed: summed, packing: first.packing)
            }
            if key.firstNonUnit(sum.ciphertexts.map(\.value)) != nil {
                // Read again with the test, which names the file and line.
                for (path, file) in zip(files, mapped) { _ = try decodeCiphertexts(Data(file.bytes), from: path, key) }
            }
            try writeStandardOutput(try paillier { () throws(PaillierError) in try sum.encoded(key: key) })
        }
    }

    struct Decrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt a ciphertext file, on every core: one signed integer per line (per packed value).")

        @Option(help: "The secret key file.")
        var secret: String

        @OptionGroup var damgardJurik: DamgardJurikOption

        @Argument(help: "A file of ciphertexts, decimal or veil format.")
        var file: String

        func run() throws {
            let data = try readFile(secret)
            let key = try paillier { () throws(PaillierError) in
                try PaillierKeyFiles.privateKey(from: data).withDegree(damgardJurik.s)
            }
            let input = try readCiphertexts(file, key.publicKey)
            let residues = try paillier { () throws(PaillierError) in
                try PaillierBatch.decrypt(input.ciphertexts, key: key)
            }
            try printPlaintexts(residues, of: input, key: key.publicKey)
        }
    }
}

extension PaillierCommand {
    struct Deal: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deal a t-of-ℓ threshold key: DIR/threshold.json and DIR/share-1.json … share-ℓ.json.",
            discussion: """
                The trusted dealer of Specs/paillier.md §6 and §6.2: whoever runs this knows the whole key. Run it \
                as the ceremony of §6.2 says (offline, each share handed to its holder only, the machine wiped). \
                threshold.json is public (n, s, t, ℓ and the verification keys that let anyone check a partial \
                decryption); each share file is secret, created readable by its owner only.
                """)

        @Option(help: "Modulus size in bits: 2048 or 3072.")
        var bits = 2048

        @Option(help: "t: how many holders must take part in a decryption.")
        var threshold: Int

        @Option(help: "ℓ: how many holders receive a share (at most 64).")
        var holders: Int

        @OptionGroup var damgardJurik: DamgardJurikOption

        @Option(help: "The directory to write the key files into (created if missing).")
        var out: String

        func validate() throws {
            guard bits == 2048 || bits == 3072 else { throw ValidationError("--bits must be 2048 or 3072") }
            guard (1...64).contains(holders), (1...holders).contains(threshold) else {
                throw ValidationError("need 1 ≤ --threshold ≤ --holders ≤ 64")
            }
        }

        func run() throws {
            // Before dealing, which takes a minute: a directory with files of another deal
            // would be left holding shares of two keys.
            let names = ["threshold.json"] + (1...holders).map { "share-\($0).json" }
            if let existing = names.first(where: {
                FileManager.default.fileExists(atPath: URL(fileURLWithPath: out).appendingPathComponent($0).path)
            }) {
                throw usageError("\(out)/\(existing) exists already: deal into an empty directory")
            }
            let (key, shares) = try paillier { () throws(PaillierError) in
                try ThresholdPaillierDealer.deal(bits: bits, threshold: threshold, holders: holders, s: damgardJurik.s)
            }
            let directory = URL(fileURLWithPath: out)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for share in shares {
                let url = directory.appendingPathComponent("share-\(share.holder).json")
                do {
                    try SecretFile.create(
                        atPath: url.path, contents: SecureBytes(copying: try PaillierThresholdFiles.shareFile(share)))
                } catch { throw usageError("\(error)") }
            }
            try PaillierThresholdFiles.keyFile(key).write(to: directory.appendingPathComponent("threshold.json"))
            print(
                "wrote \(directory.path)/threshold.json and share-1.json … share-\(holders).json (\(threshold) of \(holders), \(bits)-bit n)"
            )
            print("fingerprint \(PaillierKeyStatement.fingerprint(key.publicKey))")
            print("threshold fingerprint \(key.fingerprint)")
        }
    }

    struct PartialDecrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "partial-decrypt",
            abstract: "One holder's partial decryptions of a ciphertext file, each with its proof (JSON on stdout).",
            discussion: """
                The ciphertexts are encrypted under the threshold key's n: `encrypt --public threshold.json` \
                reads n from it (with --damgard-jurik S --format veil when the key's damgard_jurik is S > 1). \
                The share is checked against the dealer's verification key first. Specs/paillier.md §6.2, §8.2.
                """)

        @Option(help: "The threshold key file (threshold.json).")
        var key: String

        @Option(help: "This holder's share file.")
        var share: String

        @Argument(help: "A file of ciphertexts, decimal or veil format.")
        var file: String

        func run() throws {
            let thresholdKey = try loadThresholdKey(key)
            let shareData = try readFile(share)
            let holderShare = try paillier { () throws(PaillierError) in
                try PaillierThresholdFiles.share(from: shareData, key: thresholdKey)
            }
            let input = try readCiphertexts(file, thresholdKey.publicKey)
            let partials = try paillier { () throws(PaillierError) in
                try input.ciphertexts.parallelMapTyped { c throws(PaillierError) in
                    try holderShare.partiallyDecrypt(c)
                }
            }
            try writeStandardOutput(
                try PaillierThresholdFiles.partialsFile(
                    partials, holder: holderShare.holder, of: input.ciphertexts, key: thresholdKey))
        }
    }

    struct Combine: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Decrypt a ciphertext file from the partial decryptions of at least t holders, checking every proof.",
            discussion: """
                Prints one signed integer per line (per packed value), as decrypt does. A holder whose proof fails \
                for any ciphertext is named on stderr and left out; with fewer than t correct holders, nothing is \
                decrypted and the exit status is 1. Specs/paillier.md §6.2.
                """)

        @Option(help: "The threshold key file (threshold.json).")
        var key: String

        @Argument(help: "The ciphertext file, then the holders' partials files.")
        var files: [String]

        func validate() throws {
            guard files.count >= 2 else {
                throw ValidationError("give the ciphertext file and at least one partials file")
            }
        }

        func run() throws {
            let thresholdKey = try loadThresholdKey(key)
            let input = try readCiphertexts(files[0], thresholdKey.publicKey)
            // A partials file that cannot be read is left out and named, like a wrong partial:
            // one holder's bad file must not stop the others (review, helper-21).
            let byHolder = files.dropFirst().compactMap { path -> [PartialDecryption]? in
                do {
                    return try PaillierThresholdFiles.partials(
                        from: try readFile(path), key: thresholdKey, of: input.ciphertexts)
                } catch {
                    FileHandle.standardError.write(Data("\(path): \(error); left out\n".utf8))
                    return nil
                }
            }
            let rows = Array(input.ciphertexts.enumerated())
            let results = try paillier { () throws(PaillierError) in
                try rows.parallelMapTyped { j, c throws(PaillierError) in
                    try thresholdKey.decrypt(byHolder.compactMap { $0.isEmpty ? nil : $0[j] }, of: c)
                }
            }
            let rejected = Set(results.flatMap { $0.rejected }).sorted()
            for holder in rejected {
                let failing = results.enumerated().filter { $0.element.rejected.contains(holder) }.map {
                    String($0.offset + 1)
                }
                FileHandle.standardError.write(
                    Data(
                        "holder \(holder): the proof of correct decryption fails for ciphertext(s) \(failing.joined(separator: ", ")); left out\n"
                            .utf8))
            }
            try printPlaintexts(results.map { $0.plaintext }, of: input, key: thresholdKey.publicKey)
        }
    }
}

/// What `decrypt` and `combine` print: one signed value per line, unpacked for a packed file.
private func printPlaintexts(_ residues: [BigInt], of input: PaillierCiphertextFile, key: PaillierPublicKey) throws {
    var out = ""
    if let packing = input.packing {
        let sum = try paillier { () throws(PaillierError) in
            try packing.layout.unpack(residues, dimension: packing.values, addends: input.summed)
        }
        for value in packing.signed(sum) { out += "\(value)\n" }
    } else {
        for residue in residues { out += key.signed(residue: residue).decimal + "\n" }
    }
    try writeStandardOutput(Data(out.utf8))
}

private func loadThresholdKey(_ path: String) throws -> ThresholdPaillierPublicKey {
    let data = try readFile(path)
    return try paillier { () throws(PaillierError) in try PaillierThresholdFiles.key(from: data) }
}

private func readFile(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else { throw usageError("cannot read \(path)") }
    return data
}

private func loadPublicKey(_ path: String, s: Int = 1) throws -> PaillierPublicKey {
    let data = try readFile(path)
    return try paillier { () throws(PaillierError) in try PaillierKeyFiles.publicKey(from: data).withDegree(s) }
}

/// A ciphertext file in either format; a bad line is named with the file.
private func readCiphertexts(_ path: String, _ key: PaillierPublicKey, checkingUnits: Bool = true) throws
    -> PaillierCiphertextFile
{
    try decodeCiphertexts(try readFile(path), from: path, key, checkingUnits: checkingUnits)
}

/// A ciphertext file's contents in either format, read from `path`; a bad line is named with it.
private func decodeCiphertexts(_ data: Data, from path: String, _ key: PaillierPublicKey, checkingUnits: Bool = true)
    throws -> PaillierCiphertextFile
{
    do { return try PaillierCiphertextFile.decode(data, key: key, checkingUnits: checkingUnits) } catch {
        throw usageError("\(path):\(error.line): \(error.reason)")
    }
}

/// The non-empty lines of a text file, trimmed.
private func lines(of path: String) throws -> [String] {
    let bytes = [UInt8](try readFile(path))
    return PaillierCiphertextFile.lineRanges(bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
}

/// Runs a Paillier operation; a refusal prints its explanation and exits with status 1.
private func paillier<T>(_ body: () throws(PaillierError) -> T) throws -> T {
    do { return try body() } catch {
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
