import Foundation
import Testing
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
        let decrypted = try await VeilProcess.run([
            "paillier", "decrypt", "--secret", secret.path, directory.appendingPathComponent("sum.txt").path,
        ])
        #expect(decrypted.status == 0)
        #expect(decrypted.stdout == "-5\n0\n7\n123456789012345678901234567889\n")
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
        let wrongSize = try await VeilProcess.run(["paillier", "keygen", "--bits", "1024", "--out", directory.path])
        #expect(wrongSize.status == 64)
        try "{\"n\": \"15\"}".write(to: file, atomically: true, encoding: .utf8)
        let weakKey = try await VeilProcess.run(["paillier", "encrypt", "--public", file.path, "--values", "1"])
        #expect(weakKey.status == 1)
        #expect(weakKey.stderr.contains("invalid Paillier modulus"))
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
