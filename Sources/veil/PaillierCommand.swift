import ArgumentParser
import Foundation
import VeilCrypto
import VeilPaillier

struct PaillierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "paillier",
        abstract: "Paillier keys, encryption, homomorphic addition and decryption, for interoperability checks.",
        discussion: """
            Ciphertexts are decimal integers, one per line; values are signed decimal integers (a value v is \
            encrypted as v mod n and decrypted back into −⌊(n−1)/2⌋…⌊(n−1)/2⌋). Keys are JSON files of decimal \
            strings: public.json {"n"}, secret.json {"p", "q"} (g = n + 1, as in python-paillier).
            """,
        subcommands: [Keygen.self, Fingerprint.self, Encrypt.self, Add.self, Decrypt.self]
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
        static let configuration = CommandConfiguration(abstract: "Encrypt signed integers: one ciphertext per line.")

        @Option(help: "The public key file.")
        var `public`: String

        @Option(parsing: .unconditional, help: "Comma-separated signed decimal integers, e.g. 5,-3,0.")
        var values: String

        func run() throws {
            let key = try loadPublicKey(`public`)
            for field in values.split(separator: ",", omittingEmptySubsequences: false) {
                let text = field.trimmingCharacters(in: .whitespaces)
                guard let value = BigInt(decimal: text) else {
                    throw usageError("\"\(text)\" is not a decimal integer")
                }
                print(try paillier { () throws(PaillierError) in try key.encrypt(signed: value) }.decimal)
            }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Add ciphertext files element-wise (line i of the output encrypts the sum of line i of each file).")

        @Option(help: "The public key file.")
        var `public`: String

        @Argument(help: "Files of ciphertexts, one per line, all of the same length.")
        var files: [String]

        func validate() throws {
            guard !files.isEmpty else { throw ValidationError("give at least one ciphertext file") }
        }

        func run() throws {
            let key = try loadPublicKey(`public`)
            let columns = try files.map { try readCiphertexts($0, key) }
            guard Set(columns.map(\.count)).count == 1 else {
                throw usageError("the files hold different numbers of ciphertexts: \(columns.map(\.count))")
            }
            for row in 0..<columns[0].count {
                var sum = columns[0][row]
                for column in columns.dropFirst() {
                    sum = try paillier { () throws(PaillierError) in try key.add(sum, column[row]) }
                }
                print(sum.decimal)
            }
        }
    }

    struct Decrypt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt a ciphertext file: one signed integer per line.")

        @Option(help: "The secret key file.")
        var secret: String

        @Argument(help: "A file of ciphertexts, one per line.")
        var file: String

        func run() throws {
            let data = try readFile(secret)
            let key = try paillier { () throws(PaillierError) in try PaillierKeyFiles.privateKey(from: data) }
            for c in try readCiphertexts(file, key.publicKey) {
                print(try paillier { () throws(PaillierError) in try key.decryptSigned(c) }.decimal)
            }
        }
    }
}

private func readFile(_ path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else { throw usageError("cannot read \(path)") }
    return data
}

private func loadPublicKey(_ path: String) throws -> PaillierPublicKey {
    let data = try readFile(path)
    return try paillier { () throws(PaillierError) in try PaillierKeyFiles.publicKey(from: data) }
}

/// The ciphertexts of a file, one decimal per non-empty line; a bad line is named.
private func readCiphertexts(_ path: String, _ key: PaillierPublicKey) throws -> [PaillierCiphertext] {
    let text = String(decoding: try readFile(path), as: UTF8.self)
    var out: [PaillierCiphertext] = []
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { continue }
        do { out.append(try key.ciphertext(decimal: trimmed)) } catch {
            throw usageError("\(path):\(number + 1): \(error)")
        }
    }
    return out
}

/// Runs a Paillier operation; a refusal prints its explanation and exits with status 1.
private func paillier<T>(_ body: () throws(PaillierError) -> T) throws -> T {
    do { return try body() } catch {
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
