import Foundation
import Testing
import VeilTestSupport
import VeilVectors

/// The folders of `Vectors/`.
var familyCount: Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: RepositoryPaths.vectors.path)) ?? []).filter {
        !$0.contains(".")
    }.count
}

@Suite struct VeilCommandTests {
    @Test func printsItsVersion() async throws {
        let output = try await VeilProcess.run(["--version"])
        #expect(output.status == 0)
        #expect(output.stdout == "0.1.0\n")
    }

    @Test func vectorsVerifyPrintsOneLinePerFamilyAndATotal() async throws {
        let output = try await VeilProcess.run(["vectors", "verify"])
        #expect(output.status == 0, "\(output.stdout)\(output.stderr)")
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == familyCount + 1)
        #expect(lines.dropLast().allSatisfy { $0.contains(" passed, 0 failed (") })
        let total = try #require(lines.last)
        #expect(total.hasPrefix("vectors: ") && total.hasSuffix(" passed, 0 failed"))
        #expect(lines.first?.hasPrefix("codec ") == true)
    }

    @Test func vectorsVerifyNamesTheFailingCaseAndExitsNonZero() async throws {
        let copy = try RepositoryPaths.copyOfVectors()
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        try VectorTampering.alterExpectedValue(
            in: copy.appendingPathComponent("mask/veil_mask_expansion.json"), tcId: 1)
        let output = try await VeilProcess.run(["vectors", "verify", copy.path])
        #expect(output.status == 1)
        #expect(
            output.stdout.contains(
                "FAIL mask/veil_mask_expansion.json tcId 1: elements differs from the expected value"))
        #expect(output.stdout.contains("\nvectors: "))
        #expect(output.stdout.hasSuffix(" passed, 1 failed\n"))
    }

    @Test func vectorsVerifyJSON() async throws {
        let output = try await VeilProcess.run(["vectors", "verify", "--json"])
        #expect(output.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        #expect(object["failed"] as? Int == 0)
        #expect((object["passed"] as? Int ?? 0) > 800)
        #expect((object["families"] as? [[String: Any]])?.count == familyCount)
        #expect((object["failures"] as? [Any])?.isEmpty == true)
    }

    @Test func vectorsVerifyRefusesAMissingDirectory() async throws {
        let output = try await VeilProcess.run(["vectors", "verify", "/nonexistent/vectors"])
        #expect(output.status != 0)
        #expect(output.stderr.contains("/nonexistent/vectors is not a directory"))
    }

    @Test func vectorsGenerateReproducesTheCommittedFiles() async throws {
        let directory = try RepositoryPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = try await VeilProcess.run(["vectors", "generate", directory.path])
        #expect(output.status == 0)
        let written = output.stdout.split(separator: "\n")
        #expect(written.count == (try ProjectVectors.all()).count)
        for line in written {
            let relative = String(line.dropFirst("wrote \(directory.path)/".count))
            let generated = try Data(contentsOf: directory.appendingPathComponent(relative))
            #expect(
                generated == (try Data(contentsOf: RepositoryPaths.vectors.appendingPathComponent(relative))),
                "\(relative)")
        }
    }

    @Test func benchPRGReportsBothThroughputsAndTheirRatio() async throws {
        let output = try await VeilProcess.run([
            "bench", "prg", "--dim", "20000", "--bits", "64", "--repetitions", "3", "--json",
        ])
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let keystream = try #require(object["keystream_gb_per_s"] as? Double)
        let expansion = try #require(object["expansion_gb_per_s"] as? Double)
        let ratio = try #require(object["ratio"] as? Double)
        #expect(keystream > 0 && expansion > 0)
        #expect(abs(ratio - expansion / keystream) < 1e-9)
        #expect(object["keystream_bytes"] as? Int == 160_000)
        // The same on every core.
        let keystreamAll = try #require(object["keystream_gb_per_s_all_cores"] as? Double)
        let maskingAll = try #require(object["masking_gb_per_s_all_cores"] as? Double)
        #expect(keystreamAll > 0 && maskingAll > 0)
        #expect(abs(try #require(object["masking_ratio_all_cores"] as? Double) - maskingAll / keystreamAll) < 1e-9)
        #expect((object["workers"] as? Int ?? 0) >= 1)
    }

    @Test(arguments: [
        (["bench", "prg", "--bits", "65"], "--bits must be in 1...64"),
        (["bench", "prg", "--dim", "0"], "--dim must be at least 1"),
        (["vectors", "frobnicate"], "Unexpected argument 'frobnicate'"),
    ])
    func refusesBadArgumentsWithAMessage(_ arguments: [String], _ message: String) async throws {
        let output = try await VeilProcess.run(arguments)
        #expect(output.status == 64)
        #expect(output.stderr.contains(message), "\(output.stderr)")
    }
}
