import Foundation
import Testing
import VeilTestSupport
import VeilVectors

@Suite struct VectorSuiteTests {
    /// Every folder of `Vectors/` is a family, and none may be left without a runner.
    static var families: [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: RepositoryPaths.vectors.path)) ?? []
        return entries.filter { !$0.contains(".") }.sorted()
    }

    @Test func everyCommittedVectorPasses() async throws {
        let report = try await offCooperativePool { try VectorSuite.verify(directory: RepositoryPaths.vectors) }
        let failures = report.files.flatMap { file in
            file.outcomes.filter { !$0.passed }.map { "\(file.path) tcId \($0.tcId): \($0.reason ?? "")" }
        }
        #expect(failures.isEmpty, "\(failures)")
        #expect(report.files.allSatisfy { $0.error == nil }, "\(report.files.compactMap(\.error))")
        #expect(report.failed == 0)
        #expect(report.families.map(\.family) == Self.families)
        #expect(Self.families.count >= 11)
        #expect(report.families.allSatisfy { $0.passed > 0 })
        // The Wycheproof suites are read unchanged, every case of them.
        let wycheproof = report.files.filter {
            $0.path.hasSuffix("x25519_test.json") || $0.path.hasSuffix("ed25519_test.json")
        }
        #expect(wycheproof.map(\.outcomes.count).sorted() == [150, 518])
    }

    @Test func theGeneratorReproducesTheCommittedProjectFiles() async throws {
        for (path, data) in try await offCooperativePool({ try ProjectVectors.all() }) {
            let committed = try Data(contentsOf: RepositoryPaths.vectors.appendingPathComponent(path))
            #expect(committed == data, "\(path) differs from `veil vectors generate` output")
        }
    }

    /// For each family: the file, and the JSON path of an expected value to alter by one character.
    static let tamperings: [(file: String, tcId: Int)] = [
        ("x25519/rfc7748.json", 1), ("x25519/x25519_test.json", 1), ("ed25519/rfc8032.json", 1),
        ("ed25519/ed25519_test.json", 1),
        ("xchacha20poly1305/draft_irtf_cfrg_xchacha.json", 1), ("kdf/hkdf_sha256_rfc5869.json", 1),
        ("kdf/veil_kdf.json", 1),
        ("drbg/veil_chacha20_generator.json", 1), ("mask/veil_mask_expansion.json", 1), ("shamir/veil_shamir.json", 1),
        ("codec/veil_fixed_point.json", 1), ("sha256/sha256_fips180.json", 1), ("secagg/veil_secagg.json", 1),
        ("paillier/iso18033_6_ipcl.json", 1), ("paillier/veil_paillier.json", 1),
        ("subset/veil_coordinate_subset.json", 4),
    ]

    @Test(arguments: tamperings)
    func changingOneByteOfAnExpectedValueFails(_ tampering: (file: String, tcId: Int)) async throws {
        let copy = try RepositoryPaths.copyOfVectors()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let url = copy.appendingPathComponent(tampering.file)
        try VectorTampering.alterExpectedValue(in: url, tcId: tampering.tcId)

        let report = try await offCooperativePool { try VectorSuite.verify(directory: copy) }
        let file = try #require(report.files.first { $0.path == tampering.file })
        #expect(file.outcomes.filter { !$0.passed }.map(\.tcId) == [tampering.tcId])
        #expect(report.failed == 1)
    }

    @Test func unreadableUnknownAndMiscountedFilesFail() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("{ not json".utf8).write(to: directory.appendingPathComponent("broken.json"))
        try Data(#"{"algorithm": "ROT13", "numberOfTests": 0, "testGroups": []}"#.utf8).write(
            to: directory.appendingPathComponent("unknown.json"))
        let kdf = try String(
            contentsOf: RepositoryPaths.vectors.appendingPathComponent("kdf/veil_kdf.json"), encoding: .utf8)
        try kdf.replacingOccurrences(of: "\"numberOfTests\" : 17", with: "\"numberOfTests\" : 18")
            .write(to: directory.appendingPathComponent("miscounted.json"), atomically: true, encoding: .utf8)

        let report = try await offCooperativePool { try VectorSuite.verify(directory: directory) }
        #expect(report.failed == 3)
        let errors = Dictionary(uniqueKeysWithValues: report.files.map { ($0.path, $0.error) })
        #expect(errors["unknown.json"] == .unknownAlgorithm("ROT13"))
        #expect(errors["miscounted.json"] == .countMismatch(declared: 18, actual: 17))
        if case .unreadable = errors["broken.json"] {
        } else {
            Issue.record("broken.json: \(String(describing: errors["broken.json"]))")
        }
        #expect(throws: (any Error).self) {
            try VectorSuite.verify(directory: directory.appendingPathComponent("missing"))
        }
    }

    /// Rewrites the Paillier project file of a copy of `Vectors/` with `change`.
    static func malformedPaillierReport(_ change: (inout [[String: Any]]) throws -> Void) async throws
        -> VectorSuite.FileReport
    {
        let copy = try RepositoryPaths.copyOfVectors()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let url = copy.appendingPathComponent("paillier/veil_paillier.json")
        var root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        var groups = try #require(root["testGroups"] as? [[String: Any]])
        try change(&groups)
        root["testGroups"] = groups
        try JSONSerialization.data(withJSONObject: root).write(to: url)
        let report = try await offCooperativePool { try VectorSuite.verify(directory: copy) }
        return try #require(report.files.first { $0.path == "paillier/veil_paillier.json" })
    }

    /// A malformed field of a Paillier file fails the cases that read it, naming the field and
    /// the case (it used to trap `veil vectors verify`), even a case that expects a rejection.
    @Test func malformedPaillierFieldsFailTheirCasesByName() async throws {
        // Group 4 holds the threshold cases 40...51; 43...51 are invalid (43 notEnoughPartialDecryptions,
        // 44...51 invalidPartialDecryption).
        let badModulus = try await Self.malformedPaillierReport { groups in groups[3]["n"] = "0x1f" }
        #expect(badModulus.error == nil)
        let failed = badModulus.outcomes.filter { !$0.passed }
        #expect(failed.map(\.tcId) == Array(40...51))
        #expect(
            failed.first?.reason
                == VectorError.malformedField(tcId: 40, field: "n", detail: "\"0x1f\" is not a decimal integer")
                .description)
        #expect(failed.first?.reason == "test case 40, field n: \"0x1f\" is not a decimal integer")

        let missingCiphertext = try await Self.malformedPaillierReport { groups in
            var tests = try #require(groups[3]["tests"] as? [[String: Any]])
            tests[1]["c"] = nil
            groups[3]["tests"] = tests
        }
        #expect(missingCiphertext.outcomes.filter { !$0.passed }.map(\.tcId) == [41])
        #expect(missingCiphertext.outcomes.first { $0.tcId == 41 }?.reason == "test case 41, field c: missing")

        let strangerPartial = try await Self.malformedPaillierReport { groups in
            var tests = try #require(groups[3]["tests"] as? [[String: Any]])
            var partials = try #require(tests[0]["partials"] as? [[String: Any]])
            partials[0]["holder"] = 9
            tests[0]["partials"] = partials
            groups[3]["tests"] = tests
        }
        #expect(
            strangerPartial.outcomes.first { $0.tcId == 40 }?.reason
                == "test case 40, field partials: holder 9 has no share in the group")

        // A packing width outside 1...64 is an input the implementation refuses, by its code.
        let wideSlots = try await Self.malformedPaillierReport { groups in
            var tests = try #require(groups[2]["tests"] as? [[String: Any]])
            tests[0]["bits"] = 65
            groups[2]["tests"] = tests
        }
        #expect(wideSlots.outcomes.first { $0.tcId == 31 }?.reason == "rejected a valid case: bitWidthOutOfRange")
    }

    @Test func aValidCaseMarkedInvalidFails() async throws {
        let copy = try RepositoryPaths.copyOfVectors()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let url = copy.appendingPathComponent("shamir/veil_shamir.json")
        let text = try String(contentsOf: url, encoding: .utf8)
        // The first result in the file belongs to tcId 1, a valid dealing.
        let range = try #require(text.range(of: "\"result\" : \"valid\""))
        try text.replacingCharacters(in: range, with: "\"result\" : \"invalid\"").write(
            to: url, atomically: true, encoding: .utf8)
        let report = try await offCooperativePool { try VectorSuite.verify(directory: copy) }
        #expect(report.failed == 1)
    }
}
